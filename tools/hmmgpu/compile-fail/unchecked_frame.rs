// expect: E0133
// A frame made from a bare page frame number, without the unsafe promise that keeps it
// allocated.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn raw(pfn: usize) {
    map(Frame::new_unchecked(pfn, true, 0));
}
