// expect: E0061
// A notifier created with a lock other than the one its data names.

#[allow(dead_code)]
fn watch(mm: &kernel::mm::MmWithUser, other: &NotifierLock<()>, data: Data) {
    let _ = IntervalNotifier::new(mm, 0x10000, 0x1000, other, true, data);
}
