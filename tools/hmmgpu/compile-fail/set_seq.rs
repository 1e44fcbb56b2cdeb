// expect: E0599
// A driver publishing an invalidation's sequence number itself (another notifier's, or
// without the lock): only the framework does, under the notifier's own lock.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn publish(a: &IntervalNotifier<Data>, b: &IntervalNotifier<Data>) {
    let guard = a.data().notifier_lock().lock();
    let seq = a.read_begin();
    b.set_seq(&guard, seq);
}
