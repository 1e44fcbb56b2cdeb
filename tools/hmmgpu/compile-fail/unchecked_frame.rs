// expect: E0133
// A frame made from a bare page frame number, without the unsafe promise that keeps it
// allocated.

#[allow(dead_code)]
fn raw(pfn: usize) {
    map(Frame::new_unchecked(pfn, true, 0));
}
