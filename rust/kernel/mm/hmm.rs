// SPDX-License-Identifier: GPL-2.0

//! HMM range snapshots: reading the CPU page table of a watched range.
//!
//! A [`Range`] covers part of an [`IntervalNotifier`]'s interval. [`Range::fault`] runs the loop
//! of `Documentation/mm/hmm.rst`: take a sequence number, take the mmap lock, take the range in
//! the notifier's [`RangeLock`], run `hmm_range_fault`, and when it reports `-EBUSY` (an
//! invalidation raced with it) start again with a fresh sequence number, until a deadline that
//! grows with the range's size. The result is a [`Snapshot`], which cannot be read yet:
//! [`Snapshot::commit`] checks, under the notifier lock, that no invalidation happened since, and
//! only then gives out the page frames, as a [`Valid`] that lives no longer than the lock's
//! guard. A device page table written from a `Valid` is therefore never written from a stale
//! snapshot, nor after the lock is dropped.
//!
//! The range stays taken from the walk until the `Valid` is dropped (or the snapshot, if it is
//! dropped uncommitted): invalidations of the range that arrive meanwhile wait for the commit,
//! so that it succeeds (see [`range_lock`](super::range_lock)). [`Valid::hold_range`] keeps it
//! taken until the [`Range`] is dropped or faulted again, for a device to use what was
//! committed first. Invalidations wait for as long as the fault loop's deadline at most, and not
//! at all when they come from the faulting task itself.
//!
//! [`RangeLock`]: super::range_lock::RangeLock
//!
//! C header: [`include/linux/hmm.h`](srctree/include/linux/hmm.h)

use crate::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    bindings,
    error::code::{EAGAIN, EBUSY, EFAULT, EINVAL, EPERM},
    mm::{
        frame::Frame,
        interval_notifier::{IntervalNotifier, Invalidate, ReadSeq},
        notifier_lock::NotifierGuard,
        range_lock::{self, RangeWaiter},
        MmWithUser, MmapReadGuard,
    },
    page::PAGE_SIZE,
    prelude::*,
    time::msecs_to_jiffies,
};
use core::marker::PhantomData;

/// How [`Range::fault`] treats pages that are not present, or not writable, in the CPU page
/// table.
///
/// # Examples
///
/// `notifier` watches the `len` bytes at `addr` of the test's address space, with the
/// notifier lock `lock` (hidden lines, as in [`IntervalNotifier`]'s example):
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
/// # let addr = kunit::vm_mmap(len, bindings::PROT_READ)?;
/// # let mm = MmWithUser::current().ok_or(EINVAL)?;
/// # let lock = Arc::pin_init(new_notifier_lock!(()), GFP_KERNEL_ACCOUNT)?;
/// # let notifier = KBox::pin_init(
/// #     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
/// #     GFP_KERNEL,
/// # )?;
/// use kernel::mm::hmm::{Fault, Range};
///
/// // The mapping is read-only.
/// let mut range = Range::new(&notifier, addr, len)?;
/// assert!(range.fault(Fault::Write).err() == Some(EPERM));
/// let snapshot = range.fault(Fault::WriteOrRead)?;
/// let guard = lock.lock();
/// let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
/// assert!(valid.iter().all(|pfn| pfn.is_valid() && !pfn.is_writable()));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fault nothing in: report what is there. Missing pages come back not valid.
    Snapshot,
    /// Fault in pages for reading. Copy-on-write pages are left shared.
    Read,
    /// Fault in pages for writing, breaking copy-on-write. Fails with `EPERM` on a range that is
    /// not writable.
    Write,
    /// As [`Fault::Write`] if the whole range may be written, else as [`Fault::Read`]: for a
    /// device mapping that is writable where the CPU's is.
    WriteOrRead,
}

/// How many times [`Range::fault`] faults pages in itself, when `hmm_range_fault()` could not.
const MAX_FIXUPS: u32 = 4;

/// The most a `hmm_range_fault()` call walks: a range of many GiB is walked in aligned steps of
/// 1 GiB, yielding between them (`hmm_range_fault()` itself never does, and faulting in a
/// million pages takes seconds). Aligned, so that no huge page is split between two steps.
const WALK_STEP: usize = 1 << 30;

/// A range of a watched interval, and the buffer its snapshots are read into.
///
/// # Examples
///
/// `notifier` watches the `len` bytes at `addr` of the test's address space, with the
/// notifier lock `lock` (hidden lines, as in [`IntervalNotifier`]'s example):
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
/// # let lock = Arc::pin_init(new_notifier_lock!(()), GFP_KERNEL_ACCOUNT)?;
/// # let notifier = KBox::pin_init(
/// #     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
/// #     GFP_KERNEL,
/// # )?;
/// use kernel::mm::hmm::{Fault, Range};
///
/// let mut range = Range::new(&notifier, addr, len)?;
/// assert_eq!((range.start(), range.end()), (addr, addr + len));
/// assert!(core::ptr::eq(range.notifier(), &*notifier));
/// range.set_timeout_ms(100);
/// // Snapshot, then commit under the notifier lock; start again if the snapshot went stale.
/// let writable = loop {
///     let snapshot = range.fault(Fault::Write)?;
///     let guard = lock.lock();
///     // The device's page table is written from the frames, with the lock held.
///     let written = snapshot.commit(&guard).map(|valid| {
///         valid.iter().filter_map(|pfn| pfn.frame()).filter(|f| f.is_writable()).count()
///     });
///     if let Some(written) = written {
///         break written;
///     }
/// };
/// assert_eq!(writable, 4);
///
/// // Ranges are whole pages inside the notifier's interval.
/// assert!(Range::new(&notifier, addr + 1, PAGE_SIZE).err() == Some(EINVAL));
/// assert!(Range::new(&notifier, addr, len + PAGE_SIZE).err() == Some(EINVAL));
/// assert!(Range::new(&notifier, addr, 0).err() == Some(EINVAL));
/// # Ok::<(), Error>(())
/// ```
pub struct Range<'n, T: Invalidate> {
    notifier: &'n IntervalNotifier<T>,
    start: usize,
    end: usize,
    pfns: KVVec<usize>,
    retries: u64,
    /// Rounds of [`Range::mirror`] that invalidations overtook.
    overtaken: u64,
    /// The base of the fault loop's deadline, in milliseconds.
    base_timeout_ms: u32,
    /// Takes the range in the notifier's range lock.
    waiter: RangeWaiter<'n>,
}

impl<'n, T: Invalidate> Range<'n, T> {
    /// A range of `length` bytes from `start`, inside `notifier`'s interval. Allocates the
    /// snapshot buffer and the range lock's entry, so call it before taking locks.
    ///
    /// # Errors
    ///
    /// `EINVAL` when the range is empty, not page-aligned, or not inside the interval.
    pub fn new(notifier: &'n IntervalNotifier<T>, start: usize, length: usize) -> Result<Self> {
        let end = start.checked_add(length).ok_or(EINVAL)?;
        let interval_end = notifier.start() + notifier.length();
        if length == 0
            || start % PAGE_SIZE != 0
            || length % PAGE_SIZE != 0
            || start < notifier.start()
            || end > interval_end
        {
            return Err(EINVAL);
        }
        let npages = length / PAGE_SIZE;
        let mut pfns = KVVec::new();
        pfns.extend_with(npages, 0, GFP_KERNEL_ACCOUNT)?;
        Ok(Self {
            notifier,
            start,
            end,
            pfns,
            retries: 0,
            overtaken: 0,
            base_timeout_ms: 1000,
            waiter: notifier.range_lock().waiter()?,
        })
    }

    /// Sets how long [`Self::fault`] keeps retrying against invalidations before it gives up
    /// with `ETIMEDOUT`: `ms` milliseconds, plus a millisecond per 64 pages of the range. The
    /// default is a second, as `HMM_RANGE_DEFAULT_TIMEOUT`. It is also how long, at most, an
    /// invalidation of the range waits for a snapshot that holds it.
    pub fn set_timeout_ms(&mut self, ms: u32) {
        self.base_timeout_ms = ms;
    }

    /// The first address of the range.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The address just past the range.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The notifier the range belongs to.
    pub fn notifier(&self) -> &'n IntervalNotifier<T> {
        self.notifier
    }

    /// How many times [`Self::fault`] had to start again because an invalidation raced with it,
    /// over the range's life.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// How many rounds of [`Self::mirror`] invalidations overtook (their commits found the
    /// snapshot stale), over the range's life.
    pub fn overtaken(&self) -> u64 {
        self.overtaken
    }

    /// How long the fault loop keeps retrying: by default a second, as
    /// `HMM_RANGE_DEFAULT_TIMEOUT` (see [`Self::set_timeout_ms`]), plus a millisecond per 64
    /// pages, so that large ranges under steady invalidations still complete.
    fn timeout_ms(&self) -> u32 {
        range_lock::patience_ms(self.base_timeout_ms, self.end - self.start)
    }

    /// Reads the CPU page table of the range, faulting pages in as `fault` says.
    ///
    /// Takes the address space's mmap lock; must not be called with the notifier lock held.
    ///
    /// # Errors
    ///
    /// `EFAULT` when part of the range is not mapped (or the address space is gone) and
    /// `fault` is not [`Fault::Snapshot`]; `EPERM` for [`Fault::Write`] on a read-only
    /// mapping; `ETIMEDOUT` when invalidations kept racing past the deadline; `EINTR` or
    /// others from `hmm_range_fault`.
    pub fn fault(&mut self, fault: Fault) -> Result<Snapshot<'_, 'n, T>> {
        let mm = self.notifier.mm().mmget_not_zero().ok_or(EFAULT)?;
        let snapshot = self.fault_in(&mm, fault);
        // The snapshot keeps the range taken. If the process exited meanwhile, ours is the last
        // user, and tearing the address space down here would take its mmap lock, and
        // invalidate, with the range held: leave that to a workqueue.
        MmWithUser::put_async(mm);
        snapshot
    }

    /// The mirroring loop of Documentation/mm/hmm.rst: faults the range in ([`Self::fault`]),
    /// takes the notifier lock and commits the snapshot ([`Snapshot::commit_with`]), calling `f`
    /// with the frames and the data the lock protects, to write the device's entries; when an
    /// invalidation overtook the snapshot, starts again, `rounds` times at most. The range is
    /// taken from each walk to its commit, so only invalidations that came before it, or its
    /// own fault's, overtake it.
    ///
    /// Returns what `f` returned. Counts each round overtaken in [`Self::overtaken`].
    ///
    /// # Errors
    ///
    /// `EAGAIN` when invalidations overtook every round; the errors of [`Self::fault`].
    pub fn mirror<R>(
        &mut self,
        fault: Fault,
        rounds: u32,
        mut f: impl FnMut(Valid<'_>, &mut T::Locked) -> R,
    ) -> Result<R> {
        let notifier = self.notifier;
        for _ in 0..rounds {
            let snapshot = self.fault(fault)?;
            let mut guard = notifier.data().notifier_lock().lock();
            if let Some(result) = snapshot.commit_with(&mut guard, &mut f) {
                return Ok(result);
            }
            drop(guard);
            self.overtaken += 1;
        }
        Err(EAGAIN)
    }

    /// The loop of [`Self::fault`].
    fn fault_in(&mut self, mm: &MmWithUser, fault: Fault) -> Result<Snapshot<'_, 'n, T>> {
        let read = bindings::hmm_pfn_flags_HMM_PFN_REQ_FAULT;
        let mut flags = fault.flags();
        let deadline = jiffies().wrapping_add(msecs_to_jiffies(self.timeout_ms()));
        let mut fixups = 0;
        loop {
            let (seq, ret) = self.walk(mm, flags);
            match ret {
                0 => return Ok(Snapshot { range: self, seq }),
                e if e == EBUSY.to_errno() => {
                    self.retries += 1;
                    if time_after(jiffies(), deadline) {
                        return Err(Error::from_errno(-(bindings::ETIMEDOUT as i32)));
                    }
                }
                e if e == EPERM.to_errno() && fault == Fault::WriteOrRead && flags != read => {
                    flags = read;
                }
                e if e == EFAULT.to_errno()
                    && flags != 0
                    && fixups < MAX_FIXUPS
                    && mm.is_current() =>
                {
                    fixups += 1;
                    self.fixup(mm, flags != read)?;
                }
                e => return Err(Error::from_errno(e)),
            }
        }
    }

    /// One `hmm_range_fault()` over the range with `flags`, under a fresh sequence number and
    /// the mmap lock. On success the range stays taken in the range lock, for the snapshot.
    fn walk(&mut self, mm: &MmWithUser, flags: usize) -> (ReadSeq<'n, T>, crate::ffi::c_int) {
        // Released before `read_begin`, which may wait for an invalidation waiting for it.
        self.waiter.release();
        // A fresh sequence number on every try: a stale one would make every check fail.
        let seq = self.notifier.read_begin();
        let mmap = mm.mmap_read_lock();
        (seq, self.walk_locked(&mmap, seq, flags))
    }

    /// `hmm_range_fault()` over the range with `flags` under `seq`, with the mmap lock held by
    /// `_mmap`, in steps of [`WALK_STEP`] at most. Takes the range first (under the mmap lock:
    /// an munmap takes the range with the lock held for writing), and keeps it taken on success,
    /// for the snapshot.
    fn walk_locked(
        &mut self,
        _mmap: &MmapReadGuard<'_>,
        seq: ReadSeq<'n, T>,
        flags: usize,
    ) -> crate::ffi::c_int {
        self.waiter.release();
        self.waiter.acquire(self.start, self.end, self.timeout_ms());
        let mut start = self.start;
        let mut ret = 0;
        while start < self.end && ret == 0 {
            let end = core::cmp::min((start / WALK_STEP + 1) * WALK_STEP, self.end);
            let mut range = bindings::hmm_range {
                notifier: self.notifier.raw(),
                notifier_seq: seq.seq as _,
                start: start as _,
                end: end as _,
                // In bounds: `start` is a page of the range, which has a pfn per page.
                hmm_pfns: self.pfns[(start - self.start) / PAGE_SIZE..].as_mut_ptr(),
                default_flags: flags as _,
                pfn_flags_mask: 0,
                dev_private_owner: core::ptr::null_mut(),
            };
            // SAFETY: `range` is valid and its buffer holds a pfn per page of `[start, end)`; the
            // mmap lock is held and the notifier is inserted on this `mm`.
            ret = unsafe { bindings::hmm_range_fault(&mut range) };
            start = end;
            if start < self.end {
                // Only locks that sleep are held.
                crate::task::cond_resched();
            }
        }
        if ret != 0 {
            self.waiter.release();
        }
        ret
    }

    /// Faults in the pages of the range that are missing (or not writable, if `write`) through
    /// `fixup_user_fault()`, which may drop the mmap lock and retry.
    ///
    /// `hmm_range_fault()` faults without `FAULT_FLAG_ALLOW_RETRY`, so a range registered with
    /// userfaultfd fails there with `EFAULT` instead of waiting for its handler. A fault that
    /// may retry waits for it; truly unmapped pages still fail, with `EFAULT`.
    ///
    /// Only done in the address space's own process: the wait for a userfaultfd handler can
    /// only be ended by a fatal signal, which a kernel thread never gets, so a worker faulting
    /// for a process could wait forever for a process that waits for it.
    fn fixup(&mut self, mm: &MmWithUser, write: bool) -> Result {
        // Which pages are missing: a walk that faults nothing (all of them if it fails).
        let (_, ret) = self.walk(mm, 0);
        // Faulting may wait for a userfaultfd handler: not with the range taken.
        self.waiter.release();
        let mut fault_flags = 0;
        if write {
            fault_flags |= bindings::fault_flag_FAULT_FLAG_WRITE;
        }
        let guard = mm.mmap_read_lock();
        for (i, &raw) in self.pfns.iter().enumerate() {
            let present = ret == 0
                && raw & bindings::hmm_pfn_flags_HMM_PFN_VALID != 0
                && (!write || raw & bindings::hmm_pfn_flags_HMM_PFN_WRITE != 0);
            if present {
                continue;
            }
            let addr = self.start + i * PAGE_SIZE;
            let mut unlocked = false;
            // SAFETY: The mmap read lock of `mm` is held, as the function requires; it may drop
            // and retake it (reporting so in `unlocked`), and returns with it held, as `guard`
            // says.
            let ret = unsafe {
                bindings::fixup_user_fault(
                    guard.mm().as_raw(),
                    addr as _,
                    fault_flags as _,
                    &mut unlocked,
                )
            };
            if ret < 0 {
                return Err(Error::from_errno(ret));
            }
        }
        Ok(())
    }
}

impl Fault {
    /// The `hmm_range.default_flags` of a walk that faults as `self` says.
    fn flags(self) -> usize {
        let read = bindings::hmm_pfn_flags_HMM_PFN_REQ_FAULT;
        match self {
            Fault::Snapshot => 0,
            Fault::Read => read,
            Fault::Write | Fault::WriteOrRead => read | bindings::hmm_pfn_flags_HMM_PFN_REQ_WRITE,
        }
    }
}

/// Snapshots several ranges of the address space `mm` to commit them together, each faulted in
/// as `fault` says, with every range taken from its walk until it is committed (or its
/// snapshot dropped): invalidations of any of them that arrive meanwhile wait for the commit.
///
/// [`Range::fault`] on each in turn would take the mmap lock and a sequence number with the
/// ranges before it taken, and either may wait for an invalidation that waits for one of them
/// (an munmap holds the mmap lock for writing while it invalidates). So every sequence number is
/// read first, with no range taken, and every range is walked under one hold of the mmap lock.
///
/// Returns, in the order of `ranges`, a snapshot or an error for each range: the errors of
/// [`Range::fault`], and `EFAULT` also for pages only a fault that may drop the mmap lock can
/// bring in (userfaultfd), which [`Range::fault`] can. Fails with `EAGAIN` when an invalidation
/// came between the reading of the sequence numbers and a walk: call again; with `EINVAL` when a
/// range is not of `mm`.
///
/// # Examples
///
/// `notifier` watches the `len` bytes at `addr` of the test's address space, with the
/// notifier lock `lock` (hidden lines, as in [`IntervalNotifier`]'s example):
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
/// # let lock = Arc::pin_init(new_notifier_lock!(()), GFP_KERNEL_ACCOUNT)?;
/// # let notifier = KBox::pin_init(
/// #     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
/// #     GFP_KERNEL,
/// # )?;
/// use kernel::mm::hmm::{fault_all, Fault, Range};
///
/// let mut low = Range::new(&notifier, addr, 2 * PAGE_SIZE)?;
/// let mut high = Range::new(&notifier, addr + 2 * PAGE_SIZE, 2 * PAGE_SIZE)?;
/// let snapshots = fault_all(&mm, [&mut low, &mut high], |range| match range.start() == addr {
///     true => Fault::Write,
///     false => Fault::Snapshot,
/// })?;
/// let mut valid_pages = [0; 2];
/// // Nothing may allocate under the notifier lock (lockdep knows that reclaim takes it).
/// let guard = lock.lock();
/// for (count, snapshot) in valid_pages.iter_mut().zip(snapshots) {
///     let valid = snapshot?.commit(&guard).ok_or(EAGAIN)?;
///     *count = valid.iter().filter(|pfn| pfn.is_valid()).count();
/// }
/// // The high range was not faulted in.
/// assert_eq!(valid_pages, [2, 0]);
/// # Ok::<(), Error>(())
/// ```
pub fn fault_all<'r, 'n: 'r, T: Invalidate + 'n>(
    mm: &MmWithUser,
    ranges: impl IntoIterator<Item = &'r mut Range<'n, T>>,
    fault: impl Fn(&Range<'n, T>) -> Fault,
) -> Result<KVVec<Result<Snapshot<'r, 'n, T>>>> {
    let mut all = KVVec::new();
    for range in ranges {
        if range.notifier.mm().as_raw() != mm.as_raw() {
            return Err(EINVAL);
        }
        // None stays taken while the sequence numbers are read.
        range.waiter.release();
        let seq = range.notifier.read_begin();
        all.push((range, seq), GFP_KERNEL_ACCOUNT)?;
    }
    let mut out = KVVec::with_capacity(all.len(), GFP_KERNEL_ACCOUNT)?;
    let read = bindings::hmm_pfn_flags_HMM_PFN_REQ_FAULT;
    let mmap = mm.mmap_read_lock();
    for (range, seq) in all {
        // A driver may mirror a million ranges at once.
        // Only locks that sleep are held.
        crate::task::cond_resched();
        let wanted = fault(range);
        let mut ret = range.walk_locked(&mmap, seq, wanted.flags());
        if ret == EPERM.to_errno() && wanted == Fault::WriteOrRead {
            ret = range.walk_locked(&mmap, seq, read);
        }
        let result = match ret {
            0 => Ok(Snapshot {
                range: &*range,
                seq,
            }),
            // Dropping the snapshots releases their ranges.
            e if e == EBUSY.to_errno() => return Err(EAGAIN),
            e => Err(Error::from_errno(e)),
        };
        // There is room for every range.
        out.push(result, GFP_KERNEL_ACCOUNT)?;
    }
    Ok(out)
}

/// A snapshot of a range's CPU page table, not yet known to be current.
///
/// # Examples
///
/// `notifier` watches the `len` bytes at `addr` of the test's address space, with the
/// notifier lock `lock` and without range locks (hidden lines, as in [`IntervalNotifier`]'s
/// example, with `range_locks` false):
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
/// # let lock = Arc::pin_init(new_notifier_lock!(()), GFP_KERNEL_ACCOUNT)?;
/// # let notifier = KBox::pin_init(
/// #     IntervalNotifier::new(&mm, addr, len, false, Mirror(lock.clone())),
/// #     GFP_KERNEL,
/// # )?;
/// use kernel::mm::hmm::{Fault, Range};
///
/// let mut range = Range::new(&notifier, addr, len)?;
/// let snapshot = range.fault(Fault::Write)?;
/// assert!(core::ptr::eq(snapshot.notifier(), &*notifier));
/// assert!(!snapshot.seq().check_retry());
/// // An invalidation of the range makes it stale. (Range locks would keep it out until the
/// // commit, and forbid the snapshot's own task to take the mmap lock meanwhile.)
/// // SAFETY: The mapping is this test's.
/// assert_eq!(unsafe { bindings::vm_munmap(addr as _, PAGE_SIZE) }, 0);
/// assert!(snapshot.commit(&lock.lock()).is_none());
///
/// // Taken again, it commits; `commit_with` hands the frames and the locked data to a closure.
/// let snapshot = range.fault(Fault::Snapshot)?;
/// let mut guard = lock.lock();
/// let valid = snapshot.commit_with(&mut guard, |valid, _locked| {
///     valid.iter().filter(|pfn| pfn.is_valid()).count()
/// });
/// assert_eq!(valid, Some(3));
/// # Ok::<(), Error>(())
/// ```
pub struct Snapshot<'r, 'n, T: Invalidate> {
    range: &'r Range<'n, T>,
    seq: ReadSeq<'n, T>,
}

impl<'r, 'n, T: Invalidate> Snapshot<'r, 'n, T> {
    /// The sequence number the snapshot was taken under.
    pub fn seq(&self) -> ReadSeq<'n, T> {
        self.seq
    }

    /// The notifier of the snapshot's range.
    pub fn notifier(&self) -> &'n IntervalNotifier<T> {
        self.range.notifier
    }

    /// Checks, under the notifier lock `guard`, that no invalidation touched the range since the
    /// snapshot. Returns its page frames, usable while `guard` is held, or `None` when the
    /// snapshot is stale and must be taken again.
    pub fn commit<'g>(self, guard: &'g NotifierGuard<'_, T::Locked>) -> Option<Valid<'g>>
    where
        'r: 'g,
    {
        if self.seq.read_retry(guard) {
            return None;
        }
        Some(self.into_valid())
    }

    /// The snapshot's frames, which keep the range taken until they are dropped.
    fn into_valid<'g>(self) -> Valid<'g>
    where
        'r: 'g,
    {
        let range = self.range;
        // The `Valid` releases the range.
        core::mem::forget(self);
        Valid {
            start: range.start,
            end: range.end,
            pfns: &range.pfns,
            waiter: Some(&range.waiter),
        }
    }

    /// As [`Self::commit`], and calls `f` with the frames and the data the notifier lock
    /// protects, to write the device's page table from the frames while the lock is held.
    /// Returns what `f` returned, or `None` when the snapshot is stale. The range is released
    /// when `f` drops the frames, unless it calls [`Valid::hold_range`].
    pub fn commit_with<R>(
        self,
        guard: &mut NotifierGuard<'_, T::Locked>,
        f: impl FnOnce(Valid<'_>, &mut T::Locked) -> R,
    ) -> Option<R> {
        if self.seq.read_retry(guard) {
            return None;
        }
        Some(f(self.into_valid(), &mut **guard))
    }
}

impl<T: Invalidate> Drop for Snapshot<'_, '_, T> {
    fn drop(&mut self) {
        // Not committed: the range goes back.
        self.range.waiter.release();
    }
}

/// The page frames of a current snapshot, while the notifier lock is held.
///
/// # Examples
///
/// `notifier` watches the `len` bytes at `addr` of the test's address space, with the
/// notifier lock `lock` (hidden lines, as in [`IntervalNotifier`]'s example):
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
/// # let lock = Arc::pin_init(new_notifier_lock!(()), GFP_KERNEL_ACCOUNT)?;
/// # let notifier = KBox::pin_init(
/// #     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
/// #     GFP_KERNEL,
/// # )?;
/// use kernel::mm::hmm::{Fault, Range};
///
/// let mut range = Range::new(&notifier, addr, len)?;
/// let snapshot = range.fault(Fault::Read)?;
/// let guard = lock.lock();
/// let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
/// assert_eq!((valid.start(), valid.len()), (addr, 4));
/// assert!(!valid.is_empty());
/// assert!(valid.at(addr + len).is_none() && valid.at(addr - 1).is_none());
/// // Read, never-written private pages are the zero page: mapped, read-only.
/// assert!(valid.iter().all(|pfn| pfn.is_valid() && !pfn.is_writable()));
/// // The range stays taken in the range lock, after the lock is released, until the range goes.
/// valid.hold_range();
/// drop(guard);
/// assert_eq!(notifier.range_lock().queued(), 1);
/// drop(range);
/// assert_eq!(notifier.range_lock().queued(), 0);
/// # Ok::<(), Error>(())
/// ```
pub struct Valid<'g> {
    start: usize,
    end: usize,
    pfns: &'g [usize],
    /// Released when the frames are dropped, unless [`Valid::hold_range`] kept it.
    waiter: Option<&'g RangeWaiter<'g>>,
}

impl Drop for Valid<'_> {
    fn drop(&mut self) {
        if let Some(waiter) = self.waiter {
            waiter.release();
        }
    }
}

impl Valid<'_> {
    /// Keeps the range taken once the frames are dropped, until the [`Range`] is dropped or
    /// faulted again: invalidations of the range keep waiting (for the range's patience at
    /// most) while the device uses the entries written from the frames, after the notifier lock
    /// is released. For forward progress when invalidations keep undoing a device's faults
    /// before it uses what they mapped.
    pub fn hold_range(mut self) {
        self.waiter = None;
    }

    /// The first address of the range.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The number of pages of the range.
    pub fn len(&self) -> usize {
        self.pfns.len()
    }

    /// Whether the range has no pages (never: ranges are not empty).
    pub fn is_empty(&self) -> bool {
        self.pfns.is_empty()
    }

    /// The entry of the page at `addr`, or `None` outside the range. It lives no longer than
    /// the frames, and so than the notifier lock's guard.
    pub fn at(&self, addr: usize) -> Option<HmmPfn<'_>> {
        if addr < self.start || addr >= self.end {
            return None;
        }
        let index = (addr - self.start) / PAGE_SIZE;
        Some(HmmPfn {
            raw: self.pfns[index],
            addr: addr & !(PAGE_SIZE - 1),
            start: self.start,
            end: self.end,
            _valid: PhantomData,
        })
    }

    /// The entries of the range, page by page.
    pub fn iter(&self) -> impl Iterator<Item = HmmPfn<'_>> + '_ {
        (0..self.pfns.len()).filter_map(move |i| self.at(self.start + i * PAGE_SIZE))
    }
}

/// One page's entry in a current snapshot, while its [`Valid`] is borrowed (and so while the
/// notifier lock is held).
///
/// # Examples
///
/// `notifier` watches the `len` bytes at `addr` of the test's address space, with the
/// notifier lock `lock` (hidden lines, as in [`IntervalNotifier`]'s example):
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
/// # let lock = Arc::pin_init(new_notifier_lock!(()), GFP_KERNEL_ACCOUNT)?;
/// # let notifier = KBox::pin_init(
/// #     IntervalNotifier::new(&mm, addr, len, true, Mirror(lock.clone())),
/// #     GFP_KERNEL,
/// # )?;
/// use kernel::mm::hmm::{Fault, Range};
///
/// let mut range = Range::new(&notifier, addr, len)?;
/// drop(range.fault(Fault::Write)?);
/// // SAFETY: The mapping is this test's.
/// assert_eq!(unsafe { bindings::vm_munmap(addr as _, PAGE_SIZE) }, 0);
/// let snapshot = range.fault(Fault::Snapshot)?;
/// let guard = lock.lock();
/// let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
/// // Unmapped: the device must not access it.
/// let hole = valid.at(addr).ok_or(EINVAL)?;
/// assert!(hole.is_error() && !hole.is_valid());
/// assert!(hole.pfn().is_none() && hole.frame().is_none() && hole.page().is_none());
/// // Written: mapped, writable.
/// let page = valid.at(addr + PAGE_SIZE + 8).ok_or(EINVAL)?;
/// assert_eq!(page.addr(), addr + PAGE_SIZE);
/// assert!(page.is_valid() && page.is_writable() && !page.is_error());
/// let frame = page.frame().ok_or(EINVAL)?;
/// assert_eq!(Some(frame.pfn()), page.pfn());
/// assert!(frame.is_writable() && page.page().is_some());
/// assert_eq!(page.map_order(), 0);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HmmPfn<'v> {
    raw: usize,
    addr: usize,
    start: usize,
    end: usize,
    _valid: PhantomData<&'v ()>,
}

impl<'v> HmmPfn<'v> {
    /// The frame to map, if a page is mapped there: writable if the CPU may write it, with the
    /// order of [`Self::map_order`]. It lives no longer than the entry.
    pub fn frame(&self) -> Option<Frame<'v>> {
        let pfn = self.pfn()?;
        // SAFETY: The entry is of a current snapshot (a `Valid`, borrowed for `'v`, under the
        // notifier lock): the CPU maps the page at `addr`, writable as the entry says, and an
        // invalidation clears what is mapped from it, under the lock, before that changes.
        Some(unsafe { Frame::new_unchecked(pfn, self.is_writable(), self.map_order()) })
    }

    /// The address of the page.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Whether a page is mapped there (`HMM_PFN_VALID`).
    pub fn is_valid(&self) -> bool {
        self.raw & bindings::hmm_pfn_flags_HMM_PFN_VALID != 0
    }

    /// Whether the CPU may write the page (`HMM_PFN_WRITE`): the device may too.
    pub fn is_writable(&self) -> bool {
        self.is_valid() && self.raw & bindings::hmm_pfn_flags_HMM_PFN_WRITE != 0
    }

    /// Whether the device must not access the address (`HMM_PFN_ERROR`).
    pub fn is_error(&self) -> bool {
        self.raw & bindings::hmm_pfn_flags_HMM_PFN_ERROR != 0
    }

    /// The page frame number, if [`Self::is_valid`].
    pub fn pfn(&self) -> Option<usize> {
        self.is_valid()
            .then_some(self.raw & !(bindings::hmm_pfn_flags_HMM_PFN_FLAGS))
    }

    /// The `struct page` of the frame, if [`Self::is_valid`].
    pub fn page(&self) -> Option<*mut bindings::page> {
        // SAFETY: The entry is valid, so it holds the pfn of a page.
        self.is_valid()
            .then(|| unsafe { bindings::hmm_pfn_to_page(self.raw as _) })
    }

    /// The order of the CPU mapping around this page (9 for a 2 MiB page with 4 KiB pages),
    /// clipped to the range: the aligned block of that order that holds the page lies wholly
    /// inside the range, so mapping it never maps memory outside.
    pub fn map_order(&self) -> u32 {
        if !self.is_valid() {
            return 0;
        }
        // SAFETY: The entry is valid.
        let mut order = unsafe { bindings::hmm_pfn_to_map_order(self.raw as _) };
        while order > 0 {
            let size = PAGE_SIZE << order;
            let base = self.addr & !(size - 1);
            if base >= self.start && base + size <= self.end {
                break;
            }
            order -= 1;
        }
        order
    }
}

fn jiffies() -> usize {
    // SAFETY: `jiffies` is always valid; it changes under us, hence the volatile read.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) }
}

fn time_after(a: usize, b: usize) -> bool {
    (b.wrapping_sub(a) as isize) < 0
}
