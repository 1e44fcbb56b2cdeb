// expect: E0492
// A GEM object kind whose function table is a constant, which has no address of its own: a
// `const` may not hold a reference to one.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
const FUNCS: &kernel::drm::gem::ObjectFuncs<
    kernel::drm::gem::shmem::Object<kernel::drm::doctest::Object>,
> = &kernel::drm::gem::shmem::funcs();
