// expect: E0599
// A driver checking a sequence number read from one notifier against another: a `ReadSeq`
// carries the notifier it was read from, and is only ever checked against it.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn check(a: &IntervalNotifier<Data>, b: &IntervalNotifier<Data>) -> bool {
    let seq = a.read_begin();
    let guard = b.data().notifier_lock().lock();
    b.read_retry(&guard, seq)
}
