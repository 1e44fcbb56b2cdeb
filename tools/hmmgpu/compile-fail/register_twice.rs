// expect: E0382
// One DRM device registered twice: the registration consumes the only value that may register
// it, a `NewDevice`, which cannot be cloned.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn register_twice(
    new: kernel::drm::NewDevice<kernel::drm::doctest::Driver>,
) -> Result<kernel::drm::Registration<kernel::drm::doctest::Driver>> {
    let first = kernel::drm::Registration::new(new)?;
    drop(first);
    kernel::drm::Registration::new(new)
}
