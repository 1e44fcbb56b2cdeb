// expect: E0061
// A notifier created with a lock other than the one its data names.

#[expect(
    dead_code,
    reason = "a snippet is only built, to see whether it compiles"
)]
fn watch(mm: &kernel::mm::MmWithUser, other: &NotifierLock<()>, data: Data) {
    let _ = IntervalNotifier::new(mm, 0x10000, 0x1000, other, true, data);
}
