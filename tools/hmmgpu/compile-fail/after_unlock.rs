// expect: E0505
// The frames of a current snapshot used after the notifier lock is released: an invalidation
// may run in between.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn mirror(n: &IntervalNotifier<Data>, range: &mut Range<'_, Data>) -> Result {
    let snapshot = range.fault(Fault::Read)?;
    let guard = n.data().notifier_lock().lock();
    let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
    drop(guard);
    if let Some(frame) = valid.at(n.start()).and_then(|p| p.frame()) {
        map(frame);
    }
    Ok(())
}
