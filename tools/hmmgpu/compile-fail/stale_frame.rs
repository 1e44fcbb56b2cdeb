// expect: E0597
// A frame of a snapshot kept past the notifier lock's guard, to write an entry from later:
// by then an invalidation may have freed the page.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn mirror(n: &IntervalNotifier<Data>, range: &mut Range<'_, Data>) -> Result {
    let snapshot = range.fault(Fault::Read)?;
    let frame = {
        let guard = n.data().notifier_lock().lock();
        let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
        valid.at(n.start()).and_then(|p| p.frame())
    };
    if let Some(frame) = frame {
        map(frame);
    }
    Ok(())
}
