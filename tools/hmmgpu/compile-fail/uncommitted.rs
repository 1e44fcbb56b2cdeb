// expect: E0599
// The frames of a snapshot read without checking, under the notifier lock, that no
// invalidation came since (a stale snapshot).

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn mirror(n: &IntervalNotifier<Data>, range: &mut Range<'_, Data>) -> Result {
    let snapshot = range.fault(Fault::Read)?;
    if let Some(frame) = snapshot.at(n.start()).and_then(|p| p.frame()) {
        map(frame);
    }
    Ok(())
}
