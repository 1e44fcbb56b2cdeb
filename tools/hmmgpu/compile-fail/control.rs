// expect: builds
// The uses the other snippets get wrong, done right: the check fails if this does not build,
// so that a snippet cannot fail for a reason of its own.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn mirror(n: &IntervalNotifier<Data>, range: &mut Range<'_, Data>) -> Result {
    let snapshot = range.fault(Fault::Read)?;
    let guard = n.data().notifier_lock().lock();
    let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
    if let Some(frame) = valid.at(n.start()).and_then(|p| p.frame()) {
        map(frame);
    }
    Ok(())
}

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn pinned(start: usize) -> Result {
    let pins = PinnedPages::pin_longterm(start, 4096, true)?;
    if let Some(frame) = pins.frames().frame(0) {
        map(frame);
    }
    Ok(())
}

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn retry(n: &IntervalNotifier<Data>) -> bool {
    let seq = n.read_begin();
    let guard = n.data().notifier_lock().lock();
    seq.read_retry(&guard)
}

/// The function table of a GEM object kind, in a `static`, as `const_funcs*.rs` cannot have it.
static FUNCS: kernel::drm::gem::ObjectFuncs<
    kernel::drm::gem::shmem::Object<kernel::drm::doctest::Object>,
> = kernel::drm::gem::shmem::funcs();

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn funcs() -> &'static kernel::drm::gem::ObjectFuncs<
    kernel::drm::gem::shmem::Object<kernel::drm::doctest::Object>,
> {
    &FUNCS
}

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn register_once(
    new: kernel::drm::NewDevice<kernel::drm::doctest::Driver>,
) -> Result<kernel::drm::Registration<kernel::drm::doctest::Driver>> {
    kernel::drm::Registration::new(new)
}
