// expect: E0515
// A GEM object kind whose function table is a constant, which has no address of its own: the
// compiler does not promote a table to a `'static` borrow.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn funcs() -> &'static kernel::drm::gem::ObjectFuncs<
    kernel::drm::gem::shmem::Object<kernel::drm::doctest::Object>,
> {
    &kernel::drm::gem::shmem::funcs()
}
