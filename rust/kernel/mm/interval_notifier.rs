// SPDX-License-Identifier: GPL-2.0

//! Interval notifiers: being told when a range of an address space changes.
//!
//! An [`IntervalNotifier<T>`] watches `[start, start + length)` of an address space. When the CPU
//! page table of any part of it is about to change (munmap, mprotect, migration, reclaim, fork's
//! copy-on-write, ...), the core MM calls [`Invalidate::invalidate`] with the range and a new
//! sequence number. The driver's data `T` lives in the notifier.
//!
//! The sequence protocol of `mmu_interval_notifier` is kept by the framework, not the driver:
//!
//! - [`IntervalNotifier::read_begin`] returns a [`ReadSeq`], taken before reading the CPU page
//!   table (the [`hmm`](super::hmm) range API does this for you).
//! - The notifier's lock is the one its data names ([`Invalidate::notifier_lock`]): a notifier
//!   cannot be created with another.
//! - When the range changes, the framework takes that lock, publishes the invalidation's
//!   sequence number (`mmu_interval_set_seq()`), and only then calls [`Invalidate::invalidate`]
//!   with the guard: a driver cannot skip the publication, make it without the lock, or make it
//!   with another notifier's number (it never sees one).
//! - [`ReadSeq::read_retry`], the check that a sequence number is still current, needs a guard
//!   of the lock: it only means something while the lock is held, until the device entries are
//!   written. A [`ReadSeq`] carries its notifier, so it is only ever checked against the
//!   notifier it was read from. Several notifiers may share a lock, so a guard of another lock
//!   of the same type is a bug caught at run time, as with [`LockedBy`](crate::sync::LockedBy).
//!
//! Each notifier has a [`RangeLock`]: the callback runs with the invalidated part of the
//! interval taken in it, so that it waits for the snapshots of overlapping ranges that are
//! being faulted in and committed ([`hmm::Range`](super::hmm::Range) takes their ranges). A
//! callback that may not block fails instead (the core MM then tries again).
//!
//! C header: [`include/linux/mmu_notifier.h`](srctree/include/linux/mmu_notifier.h)

use crate::{
    bindings,
    error::to_result,
    init::PinInit,
    mm::{
        notifier_lock::{NotifierGuard, NotifierLock},
        range_lock::RangeLock,
        Mm, MmWithUser,
    },
    prelude::*,
    try_pin_init,
    types::Opaque,
};
use core::{marker::PhantomPinned, pin::Pin, ptr};

/// What a driver does when part of a watched range changes.
///
/// # Examples
///
/// A mirror whose notifier lock protects what the device maps:
///
/// ```
/// use kernel::{
///     bindings, kunit,
///     mm::{
///         interval_notifier::{Event, IntervalNotifier, Invalidate, InvalidateRange},
///         notifier_lock::{NotifierGuard, NotifierLock},
///         MmWithUser,
///     },
///     new_notifier_lock,
///     page::PAGE_SIZE,
///     prelude::*,
///     sync::Arc,
/// };
///
/// /// What the device maps, and the last invalidation it was told of.
/// #[derive(Default)]
/// struct Device {
///     mapped: usize,
///     last: Option<(usize, usize, Event, bool)>,
/// }
///
/// struct Mirror(Arc<NotifierLock<Device>>);
///
/// impl Invalidate for Mirror {
///     type Locked = Device;
///
///     fn notifier_lock(&self) -> &NotifierLock<Device> {
///         &self.0
///     }
///
///     fn invalidate(
///         _notifier: &IntervalNotifier<Self>,
///         range: &InvalidateRange<'_>,
///         device: &mut NotifierGuard<'_, Device>,
///     ) -> bool {
///         // Stop the device from using the range: no allocation, no lock that allocations take.
///         device.mapped = 0;
///         device.last = Some((range.start(), range.end(), range.event(), range.may_block()));
///         true
///     }
/// }
///
/// let len = 4 * PAGE_SIZE;
/// let addr = kunit::vm_mmap(len, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// let mm = MmWithUser::current().ok_or(EINVAL)?;
/// let lock = Arc::pin_init(new_notifier_lock!(Device::default()), GFP_KERNEL)?;
/// let notifier = KBox::pin_init(
///     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
///     GFP_KERNEL,
/// )?;
/// lock.lock().mapped = len / PAGE_SIZE;
/// let dontneed = bindings::MADV_DONTNEED as _;
/// // SAFETY: `mm` is the test's address space, and the range one of its mappings.
/// let ret = unsafe { bindings::do_madvise(mm.as_raw(), addr as _, PAGE_SIZE, dontneed) };
/// assert_eq!(ret, 0);
/// let device = lock.lock();
/// assert_eq!(device.mapped, 0);
/// assert_eq!(device.last, Some((addr, addr + PAGE_SIZE, Event::Clear, true)));
/// # Ok::<(), Error>(())
/// ```
pub trait Invalidate: Send + Sync + Sized {
    /// What the notifier lock protects.
    type Locked: ?Sized;

    /// The notifier lock: it orders the device page-table updates of this notifier's range with
    /// its invalidations. It must be the same lock for the notifier's whole life.
    fn notifier_lock(&self) -> &NotifierLock<Self::Locked>;

    /// Called before the CPU page table of `range` changes, with the part of `range` inside the
    /// notifier's interval taken in its [`RangeLock`], the notifier lock held (`guard`) and the
    /// invalidation's sequence number published: snapshots that began before it fail their
    /// commit from now on.
    ///
    /// The callback must stop the device from using the range's pages (clear its entries and
    /// wait, uninterruptibly, for work that may still use them, with
    /// [`Guard::do_unlocked`] if that work needs the lock) and return `true`. It must not
    /// allocate memory or take locks that allocations take. When it may not block
    /// ([`InvalidateRange::may_block`]) and would have to wait, it returns `false` instead, and
    /// the core MM tries again, blocking.
    ///
    /// [`Guard::do_unlocked`]: crate::sync::lock::Guard::do_unlocked
    fn invalidate(
        notifier: &IntervalNotifier<Self>,
        range: &InvalidateRange<'_>,
        guard: &mut NotifierGuard<'_, Self::Locked>,
    ) -> bool;
}

/// A sequence number from [`IntervalNotifier::read_begin`], with the notifier it was read from:
/// it is only ever checked against that notifier.
///
/// # Examples
///
/// ```
/// # use kernel::{
/// #     bindings, kunit,
/// #     mm::{
/// #         interval_notifier::{IntervalNotifier, Invalidate, InvalidateRange},
/// #         notifier_lock::{NotifierGuard, NotifierLock},
/// #         MmWithUser,
/// #     },
/// #     new_notifier_lock,
/// #     page::PAGE_SIZE,
/// #     prelude::*,
/// #     sync::Arc,
/// # };
/// # struct Mirror(Arc<NotifierLock<()>>);
/// # impl Invalidate for Mirror {
/// #     type Locked = ();
/// #     fn notifier_lock(&self) -> &NotifierLock<()> {
/// #         &self.0
/// #     }
/// #     fn invalidate(
/// #         _: &IntervalNotifier<Self>,
/// #         _: &InvalidateRange<'_>,
/// #         _: &mut NotifierGuard<'_, ()>,
/// #     ) -> bool {
/// #         true
/// #     }
/// # }
/// # let len = 4 * PAGE_SIZE;
/// # let addr = kunit::vm_mmap(len, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// # let mm = MmWithUser::current().ok_or(EINVAL)?;
/// # let lock = Arc::pin_init(new_notifier_lock!(()), GFP_KERNEL)?;
/// # let notifier = KBox::pin_init(
/// #     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
/// #     GFP_KERNEL,
/// # )?;
/// let seq = notifier.read_begin();
/// // Unchanged until the range is invalidated; with no invalidation running, the same without
/// // waiting.
/// assert!(notifier.read_begin() == seq);
/// assert!(notifier.try_read_begin() == Some(seq));
/// // SAFETY: The mapping is this test's; the notifier keeps watching the range.
/// assert_eq!(unsafe { bindings::vm_munmap(addr as _, PAGE_SIZE) }, 0);
/// let fresh = notifier.read_begin();
/// assert!(fresh != seq);
/// assert!(seq.check_retry() && !fresh.check_retry());
/// assert!(core::ptr::eq(seq.notifier(), &*notifier));
/// // Kept without the borrow, then checked again.
/// let kept = seq.detach();
/// assert!(notifier.attach(kept) == seq && notifier.attach(kept).check_retry());
/// # Ok::<(), Error>(())
/// ```
pub struct ReadSeq<'n, T: Invalidate> {
    notifier: &'n IntervalNotifier<T>,
    pub(crate) seq: usize,
}

impl<T: Invalidate> Clone for ReadSeq<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Invalidate> Copy for ReadSeq<'_, T> {}

impl<T: Invalidate> PartialEq for ReadSeq<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        ptr::eq(self.notifier, other.notifier) && self.seq == other.seq
    }
}

impl<T: Invalidate> Eq for ReadSeq<'_, T> {}

impl<T: Invalidate> core::fmt::Debug for ReadSeq<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadSeq")
            .field("notifier", &ptr::from_ref(self.notifier))
            .field("seq", &self.seq)
            .finish()
    }
}

impl<'n, T: Invalidate> ReadSeq<'n, T> {
    /// The notifier the sequence number was read from.
    pub fn notifier(&self) -> &'n IntervalNotifier<T> {
        self.notifier
    }

    /// Whether the range was invalidated since the sequence number was read, so that what was
    /// read must be read again. Needs the notifier lock: the answer holds until the lock is
    /// released.
    ///
    /// # Panics
    ///
    /// When `guard` is of another lock than the notifier's.
    pub fn read_retry(&self, guard: &NotifierGuard<'_, T::Locked>) -> bool {
        self.notifier.assert_lock(guard);
        // SAFETY: The notifier is inserted while it is borrowed.
        unsafe { bindings::mmu_interval_read_retry(self.notifier.notifier.get(), self.seq as _) }
    }

    /// A lockless hint that the sequence number is stale, to give up early on work that will be
    /// retried.
    pub fn check_retry(&self) -> bool {
        // SAFETY: The notifier is inserted while it is borrowed.
        unsafe { bindings::mmu_interval_check_retry(self.notifier.notifier.get(), self.seq as _) }
    }

    /// The sequence number without the borrow of its notifier, to keep beside an owning
    /// reference to the notifier (an `Arc`) and check later ([`IntervalNotifier::attach`]).
    pub fn detach(self) -> Seq {
        Seq(self.seq)
    }
}

/// A sequence number of an interval notifier, detached from it ([`ReadSeq::detach`]).
///
/// Attached again to another notifier than the one it was read from, it answers nothing
/// meaningful; no harm comes of it beyond that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seq(usize);

/// Why a range is being invalidated (`enum mmu_notifier_event`).
///
/// # Examples
///
/// With the notifier of [`Invalidate`]'s example, which records the last invalidation:
///
/// ```
/// # use kernel::{
/// #     bindings, kunit,
/// #     mm::{
/// #         interval_notifier::{Event, IntervalNotifier, Invalidate, InvalidateRange},
/// #         notifier_lock::{NotifierGuard, NotifierLock},
/// #         MmWithUser,
/// #     },
/// #     new_notifier_lock,
/// #     page::PAGE_SIZE,
/// #     prelude::*,
/// #     sync::Arc,
/// # };
/// #
/// # /// What the device maps, and the last invalidation it was told of.
/// # #[derive(Default)]
/// # struct Device {
/// #     mapped: usize,
/// #     last: Option<(usize, usize, Event, bool)>,
/// # }
/// #
/// # struct Mirror(Arc<NotifierLock<Device>>);
/// #
/// # impl Invalidate for Mirror {
/// #     type Locked = Device;
/// #
/// #     fn notifier_lock(&self) -> &NotifierLock<Device> {
/// #         &self.0
/// #     }
/// #
/// #     fn invalidate(
/// #         _notifier: &IntervalNotifier<Self>,
/// #         range: &InvalidateRange<'_>,
/// #         device: &mut NotifierGuard<'_, Device>,
/// #     ) -> bool {
/// #         // Stop the device from using the range: no allocation, no lock that allocations take.
/// #         device.mapped = 0;
/// #         device.last = Some((range.start(), range.end(), range.event(), range.may_block()));
/// #         true
/// #     }
/// # }
/// # let len = 4 * PAGE_SIZE;
/// # let addr = kunit::vm_mmap(len, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// # let mm = MmWithUser::current().ok_or(EINVAL)?;
/// # let lock = Arc::pin_init(new_notifier_lock!(Device::default()), GFP_KERNEL)?;
/// # let notifier = KBox::pin_init(
/// #     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
/// #     GFP_KERNEL,
/// # )?;
/// // SAFETY: The mapping is this test's.
/// assert_eq!(unsafe { bindings::vm_munmap(addr as _, len) }, 0);
/// assert_eq!(lock.lock().last, Some((addr, addr + len, Event::Unmap, true)));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The range is being unmapped (munmap, or a mapping replaced it).
    Unmap,
    /// Pages are being freed (`MADV_DONTNEED`, truncation).
    Clear,
    /// The protection of the range's VMA changed (mprotect).
    ProtectionVma,
    /// The protection of some pages changed (write-protection for copy-on-write, KSM).
    ProtectionPage,
    /// Soft-dirty tracking is being reset.
    SoftDirty,
    /// The notifier's address space is going away.
    Release,
    /// Pages are being migrated.
    Migrate,
    /// Pages are being made exclusive to a device.
    Exclusive,
    /// Any other event.
    Other(u32),
}

/// The range of an invalidation, as the callback sees it.
///
/// # Examples
///
/// With the notifier of [`Invalidate`]'s example, which records the last invalidation:
///
/// ```
/// # use kernel::{
/// #     bindings, kunit,
/// #     mm::{
/// #         interval_notifier::{Event, IntervalNotifier, Invalidate, InvalidateRange},
/// #         notifier_lock::{NotifierGuard, NotifierLock},
/// #         MmWithUser,
/// #     },
/// #     new_notifier_lock,
/// #     page::PAGE_SIZE,
/// #     prelude::*,
/// #     sync::Arc,
/// # };
/// #
/// # /// What the device maps, and the last invalidation it was told of.
/// # #[derive(Default)]
/// # struct Device {
/// #     mapped: usize,
/// #     last: Option<(usize, usize, Event, bool)>,
/// # }
/// #
/// # struct Mirror(Arc<NotifierLock<Device>>);
/// #
/// # impl Invalidate for Mirror {
/// #     type Locked = Device;
/// #
/// #     fn notifier_lock(&self) -> &NotifierLock<Device> {
/// #         &self.0
/// #     }
/// #
/// #     fn invalidate(
/// #         _notifier: &IntervalNotifier<Self>,
/// #         range: &InvalidateRange<'_>,
/// #         device: &mut NotifierGuard<'_, Device>,
/// #     ) -> bool {
/// #         // Stop the device from using the range: no allocation, no lock that allocations take.
/// #         device.mapped = 0;
/// #         device.last = Some((range.start(), range.end(), range.event(), range.may_block()));
/// #         true
/// #     }
/// # }
/// # let len = 4 * PAGE_SIZE;
/// # let addr = kunit::vm_mmap(len, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// # let mm = MmWithUser::current().ok_or(EINVAL)?;
/// # let lock = Arc::pin_init(new_notifier_lock!(Device::default()), GFP_KERNEL)?;
/// # let notifier = KBox::pin_init(
/// #     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
/// #     GFP_KERNEL,
/// # )?;
/// // The range is the core MM's, here the pages `MADV_DONTNEED` zaps; it may reach outside the
/// // notifier's interval.
/// let (start, dontneed) = (addr + PAGE_SIZE, bindings::MADV_DONTNEED as _);
/// // SAFETY: `mm` is the test's address space, and the range one of its mappings.
/// let ret = unsafe { bindings::do_madvise(mm.as_raw(), start as _, 2 * PAGE_SIZE, dontneed) };
/// assert_eq!(ret, 0);
/// let (start, end, _, may_block) = lock.lock().last.ok_or(EINVAL)?;
/// assert_eq!((start, end), (addr + PAGE_SIZE, addr + 3 * PAGE_SIZE));
/// assert!(may_block);
/// # Ok::<(), Error>(())
/// ```
pub struct InvalidateRange<'a>(&'a bindings::mmu_notifier_range);

impl InvalidateRange<'_> {
    /// The first address of the range.
    pub fn start(&self) -> usize {
        self.0.start
    }

    /// The address just past the range.
    pub fn end(&self) -> usize {
        self.0.end
    }

    /// Why the range is invalidated.
    pub fn event(&self) -> Event {
        match self.0.event {
            bindings::mmu_notifier_event_MMU_NOTIFY_UNMAP => Event::Unmap,
            bindings::mmu_notifier_event_MMU_NOTIFY_CLEAR => Event::Clear,
            bindings::mmu_notifier_event_MMU_NOTIFY_PROTECTION_VMA => Event::ProtectionVma,
            bindings::mmu_notifier_event_MMU_NOTIFY_PROTECTION_PAGE => Event::ProtectionPage,
            bindings::mmu_notifier_event_MMU_NOTIFY_SOFT_DIRTY => Event::SoftDirty,
            bindings::mmu_notifier_event_MMU_NOTIFY_RELEASE => Event::Release,
            bindings::mmu_notifier_event_MMU_NOTIFY_MIGRATE => Event::Migrate,
            bindings::mmu_notifier_event_MMU_NOTIFY_EXCLUSIVE => Event::Exclusive,
            other => Event::Other(other),
        }
    }

    /// Whether the callback may sleep.
    pub fn may_block(&self) -> bool {
        // SAFETY: The range is valid for the callback's duration.
        unsafe { bindings::mmu_notifier_range_blockable(self.0) }
    }

    /// Takes `lock` as the callback may: sleeping for it if the callback may block, else only
    /// if it is free. `None` means the callback must return `false`.
    fn lock<'a, T: ?Sized>(&self, lock: &'a NotifierLock<T>) -> Option<NotifierGuard<'a, T>> {
        match self.may_block() {
            true => Some(lock.lock()),
            false => lock.try_lock(),
        }
    }
}

/// A watch on a range of an address space, with the driver's data `T`.
///
/// Dropping it removes the watch, waiting for callbacks still running.
///
/// # Examples
///
/// The sequence protocol, with the notifier of [`Invalidate`]'s example:
///
/// ```
/// # use kernel::{
/// #     bindings, kunit,
/// #     mm::{
/// #         interval_notifier::{Event, IntervalNotifier, Invalidate, InvalidateRange},
/// #         notifier_lock::{NotifierGuard, NotifierLock},
/// #         MmWithUser,
/// #     },
/// #     new_notifier_lock,
/// #     page::PAGE_SIZE,
/// #     prelude::*,
/// #     sync::Arc,
/// # };
/// #
/// # /// What the device maps, and the last invalidation it was told of.
/// # #[derive(Default)]
/// # struct Device {
/// #     mapped: usize,
/// #     last: Option<(usize, usize, Event, bool)>,
/// # }
/// #
/// # struct Mirror(Arc<NotifierLock<Device>>);
/// #
/// # impl Invalidate for Mirror {
/// #     type Locked = Device;
/// #
/// #     fn notifier_lock(&self) -> &NotifierLock<Device> {
/// #         &self.0
/// #     }
/// #
/// #     fn invalidate(
/// #         _notifier: &IntervalNotifier<Self>,
/// #         range: &InvalidateRange<'_>,
/// #         device: &mut NotifierGuard<'_, Device>,
/// #     ) -> bool {
/// #         // Stop the device from using the range: no allocation, no lock that allocations take.
/// #         device.mapped = 0;
/// #         device.last = Some((range.start(), range.end(), range.event(), range.may_block()));
/// #         true
/// #     }
/// # }
/// let len = 4 * PAGE_SIZE;
/// let addr = kunit::vm_mmap(len, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// let mm = MmWithUser::current().ok_or(EINVAL)?;
/// let lock = Arc::pin_init(new_notifier_lock!(Device::default()), GFP_KERNEL)?;
/// let notifier = KBox::pin_init(
///     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
///     GFP_KERNEL,
/// )?;
/// assert_eq!((notifier.start(), notifier.length()), (addr, len));
/// assert_eq!(notifier.mm().as_raw(), mm.as_raw());
/// assert_eq!(notifier.range_lock().queued(), 0);
///
/// // Read the CPU page table after `read_begin`, write the device's under the lock if `read_retry`
/// // says nothing changed since.
/// let seq = notifier.read_begin();
/// {
///     let mut device = lock.lock();
///     assert!(!seq.read_retry(&device));
///     device.mapped = len / PAGE_SIZE;
/// }
/// // SAFETY: The mapping is this test's.
/// assert_eq!(unsafe { bindings::vm_munmap(addr as _, len) }, 0);
/// let device = lock.lock();
/// assert!(seq.read_retry(&device));
/// assert_eq!(device.mapped, 0);
/// drop(device);
///
/// // The interval must not be empty nor wrap around.
/// let empty = KBox::pin_init(
///     IntervalNotifier::new(&mm, addr, 0, true, Mirror(lock.clone())),
///     GFP_KERNEL,
/// );
/// assert!(empty.err() == Some(EINVAL));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `notifier` was inserted with `mmu_interval_notifier_insert` and `Self::OPS`, and is removed
/// only when `self` is dropped.
#[pin_data(PinnedDrop)]
pub struct IntervalNotifier<T: Invalidate> {
    #[pin]
    data: T,
    #[pin]
    range_lock: RangeLock,
    start: usize,
    length: usize,
    #[pin]
    notifier: Opaque<bindings::mmu_interval_notifier>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The C notifier may be used from any thread; `T` is `Send + Sync`.
unsafe impl<T: Invalidate> Send for IntervalNotifier<T> {}
// SAFETY: See above.
unsafe impl<T: Invalidate> Sync for IntervalNotifier<T> {}

impl<T: Invalidate> IntervalNotifier<T> {
    const OPS: bindings::mmu_interval_notifier_ops = bindings::mmu_interval_notifier_ops {
        invalidate: Some(Self::invalidate_callback),
    };

    /// Watches `[start, start + length)` of `mm`, with `data`, which names the notifier lock
    /// ([`Invalidate::notifier_lock`]). With `range_locks` false, the notifier's [`RangeLock`]
    /// orders nothing: snapshots rely on sequence numbers alone.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an empty range or one that wraps around; errors of
    /// `mmu_interval_notifier_insert`.
    pub fn new(
        mm: &MmWithUser,
        start: usize,
        length: usize,
        range_locks: bool,
        data: impl PinInit<T, Error>,
    ) -> impl PinInit<Self, Error> {
        let mm = mm.as_raw();
        let insert = move |slot: *mut Opaque<bindings::mmu_interval_notifier>| {
            if length == 0 || start.checked_add(length).is_none() {
                return Err(EINVAL);
            }
            let slot = Opaque::raw_get(slot);
            // SAFETY: `slot` is valid and pinned, `mm` holds `mm_users` and `OPS` lives forever.
            // The insertion takes its own `mmgrab` of `mm`.
            unsafe {
                slot.write_bytes(0, 1);
                to_result(bindings::mmu_interval_notifier_insert(
                    slot,
                    mm,
                    start as _,
                    length as _,
                    &Self::OPS,
                ))
            }
        };
        try_pin_init!(Self {
            // `data` comes first: callbacks may run as soon as the notifier is inserted, and
            // a failed insertion drops it again.
            data <- data,
            range_lock <- RangeLock::new(range_locks),
            start,
            length,
            _pin: PhantomPinned,
            // SAFETY: The closure initialises the slot fully on success (the notifier is zeroed,
            // then filled in by its insertion) and leaves nothing to undo on failure.
            notifier <- unsafe { crate::init::pin_init_from_closure(insert) },
        }? Error)
    }

    /// The driver's data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The lock over ranges of the interval that orders snapshots with invalidations.
    pub fn range_lock(&self) -> &RangeLock {
        &self.range_lock
    }

    /// The first address watched.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The number of bytes watched.
    pub fn length(&self) -> usize {
        self.length
    }

    /// The C `struct mmu_interval_notifier`.
    pub(crate) fn raw(&self) -> *mut bindings::mmu_interval_notifier {
        self.notifier.get()
    }

    /// The watched address space.
    pub fn mm(&self) -> &Mm {
        // SAFETY: The inserted notifier holds `mmgrab` of its `mm` until it is removed.
        unsafe { Mm::from_raw((*self.notifier.get()).mm) }
    }

    /// Starts a read of the CPU page table: the sequence number to check afterwards with
    /// [`ReadSeq::read_retry`]. May sleep until a running invalidation ends.
    pub fn read_begin(&self) -> ReadSeq<'_, T> {
        ReadSeq {
            notifier: self,
            // SAFETY: By the type invariant the notifier is inserted.
            seq: unsafe { bindings::mmu_interval_read_begin(self.notifier.get()) } as usize,
        }
    }

    /// Starts a read of the CPU page table as [`IntervalNotifier::read_begin`] does, unless an
    /// invalidation of the range is running, or the notifier was inserted while any invalidation
    /// of the address space was running and they have not all ended: then `None`, at once. For
    /// a caller that must not wait for invalidations, because one may be waiting for it.
    pub fn try_read_begin(&self) -> Option<ReadSeq<'_, T>> {
        let mut seq = 0;
        // SAFETY: By the type invariant the notifier is inserted; `seq` is valid for writes.
        let ok = unsafe { bindings::mmu_interval_read_begin_nowait(self.notifier.get(), &mut seq) };
        ok.then_some(ReadSeq {
            notifier: self,
            seq,
        })
    }

    /// The sequence number `seq`, detached from this notifier ([`ReadSeq::detach`]), to check.
    pub fn attach(&self, seq: Seq) -> ReadSeq<'_, T> {
        ReadSeq {
            notifier: self,
            seq: seq.0,
        }
    }

    fn assert_lock(&self, guard: &NotifierGuard<'_, T::Locked>) {
        if !ptr::eq(guard.lock, self.data.notifier_lock()) {
            panic!("the guard is not of the notifier lock of this interval notifier");
        }
    }

    /// `mmu_interval_notifier_ops.invalidate`.
    ///
    /// # Safety
    ///
    /// `sub` must be the `notifier` of a live `Self` and `range` valid for the call.
    unsafe extern "C" fn invalidate_callback(
        sub: *mut bindings::mmu_interval_notifier,
        range: *const bindings::mmu_notifier_range,
        cur_seq: usize,
    ) -> bool {
        // SAFETY: The callback is only installed on `notifier` fields of `Self`, which stay
        // live (and `data` initialised) until removal waits for running callbacks.
        let this = unsafe {
            &*crate::container_of!(
                sub.cast::<Opaque<bindings::mmu_interval_notifier>>(),
                Self,
                notifier
            )
        };
        // SAFETY: The core MM passes a valid range.
        let range = InvalidateRange(unsafe { &*range });
        let start = range.start().max(this.start);
        let end = range.end().min(this.start + this.length);
        this.range_lock
            .invalidate(start, end, range.may_block(), || {
                let Some(mut guard) = range.lock(this.data.notifier_lock()) else {
                    return false;
                };
                // SAFETY: The notifier is inserted; its lock is held, so that a commit that
                // checks the sequence number under it sees this one.
                unsafe { bindings::mmu_interval_set_seq(this.notifier.get(), cur_seq as _) };
                T::invalidate(this, &range, &mut guard)
            })
            .unwrap_or(false)
    }
}

#[pinned_drop]
impl<T: Invalidate> PinnedDrop for IntervalNotifier<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the notifier is inserted; removal waits for callbacks
        // that are running, so none runs once `data` is dropped.
        unsafe { bindings::mmu_interval_notifier_remove(self.notifier.get()) };
    }
}
