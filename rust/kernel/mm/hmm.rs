// SPDX-License-Identifier: GPL-2.0

//! HMM range snapshots: reading the CPU page table of a watched range.
//!
//! A [`Range`] covers part of an [`IntervalNotifier`]'s interval. [`Range::fault`] runs the loop
//! of `Documentation/mm/hmm.rst`: take a sequence number, take the mmap lock, run
//! `hmm_range_fault`, and when it reports `-EBUSY` (an invalidation raced with it) start again
//! with a fresh sequence number, until a deadline that grows with the range's size. The result is
//! a [`Snapshot`], which cannot be read yet: [`Snapshot::commit`] checks, under the notifier lock,
//! that no invalidation happened since, and only then gives out the page frames, as a [`Valid`]
//! that lives no longer than the lock's guard. A device page table written from a `Valid` is
//! therefore never written from a stale snapshot, nor after the lock is dropped.
//!
//! C header: [`include/linux/hmm.h`](srctree/include/linux/hmm.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KVVec},
    bindings,
    error::code::{EBUSY, EFAULT, EINVAL, EPERM},
    mm::{
        interval_notifier::{IntervalNotifier, Invalidate, ReadSeq},
        notifier_lock::NotifierGuard,
        MmWithUser, MmapWriteGuard,
    },
    page::PAGE_SIZE,
    prelude::*,
    time::msecs_to_jiffies,
};

/// How [`Range::fault`] treats pages that are not present, or not writable, in the CPU page
/// table.
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

/// A range of a watched interval, and the buffer its snapshots are read into.
pub struct Range<'n, T: Invalidate> {
    notifier: &'n IntervalNotifier<T>,
    start: usize,
    end: usize,
    pfns: KVVec<usize>,
    retries: u64,
    /// The base of the fault loop's deadline, in milliseconds.
    base_timeout_ms: u32,
}

impl<'n, T: Invalidate> Range<'n, T> {
    /// A range of `length` bytes from `start`, inside `notifier`'s interval. Allocates the
    /// snapshot buffer, so call it before taking locks.
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
        pfns.extend_with(npages, 0, GFP_KERNEL)?;
        Ok(Self {
            notifier,
            start,
            end,
            pfns,
            retries: 0,
            base_timeout_ms: 1000,
        })
    }

    /// Sets how long [`Self::fault`] keeps retrying against invalidations before it gives up
    /// with `ETIMEDOUT`: `ms` milliseconds, plus a millisecond per 64 pages of the range. The
    /// default is a second, as `HMM_RANGE_DEFAULT_TIMEOUT`; a caller with a fallback that
    /// cannot be overtaken (snapshotting with the mmap lock held for writing) may give up
    /// sooner.
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

    /// How long the fault loop keeps retrying: by default a second, as
    /// `HMM_RANGE_DEFAULT_TIMEOUT` (see [`Self::set_timeout_ms`]), plus a millisecond per 64
    /// pages, so that large ranges under steady invalidations still complete.
    fn timeout_ms(&self) -> u32 {
        let pages = (self.end - self.start) / PAGE_SIZE;
        self.base_timeout_ms
            .saturating_add(u32::try_from(pages / 64).unwrap_or(u32::MAX))
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
        self.fault_in(&mm, fault, false)
    }

    /// As [`Self::fault`], with the address space's mmap lock held for writing by `guard`:
    /// nothing that takes the mmap lock (munmap, madvise, mprotect) invalidates the range until
    /// the caller is done with it. Pages that only a fault that may drop the lock can bring in
    /// (userfaultfd) fail with `EFAULT`.
    ///
    /// # Errors
    ///
    /// As [`Self::fault`]; `EINVAL` when `guard` locks another address space.
    pub fn fault_locked(
        &mut self,
        guard: &MmapWriteGuard<'_>,
        fault: Fault,
    ) -> Result<Snapshot<'_, 'n, T>> {
        if guard.mm().as_raw() != self.notifier.mm().as_raw() {
            return Err(EINVAL);
        }
        self.fault_in(guard.mm(), fault, true)
    }

    /// The loop of [`Self::fault`], taking the mmap lock for each walk unless `locked`.
    fn fault_in(
        &mut self,
        mm: &MmWithUser,
        fault: Fault,
        locked: bool,
    ) -> Result<Snapshot<'_, 'n, T>> {
        let read = bindings::hmm_pfn_flags_HMM_PFN_REQ_FAULT;
        let mut flags = match fault {
            Fault::Snapshot => 0,
            Fault::Read => read,
            Fault::Write | Fault::WriteOrRead => read | bindings::hmm_pfn_flags_HMM_PFN_REQ_WRITE,
        };
        let deadline = jiffies().wrapping_add(msecs_to_jiffies(self.timeout_ms()));
        let mut fixups = 0;
        loop {
            let (seq, ret) = self.walk(mm, flags, locked);
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
                    && !locked
                    && fixups < MAX_FIXUPS
                    && is_current(mm) =>
                {
                    fixups += 1;
                    self.fixup(mm, flags != read)?;
                }
                e => return Err(Error::from_errno(e)),
            }
        }
    }

    /// One `hmm_range_fault()` over the range with `flags`, under a fresh sequence number,
    /// taking the mmap lock for reading unless the caller holds it (`locked`).
    fn walk(
        &mut self,
        mm: &MmWithUser,
        flags: usize,
        locked: bool,
    ) -> (ReadSeq, crate::ffi::c_int) {
        // A fresh sequence number on every try: a stale one would make every check fail.
        let seq = self.notifier.read_begin();
        let mut range = bindings::hmm_range {
            notifier: self.notifier.raw(),
            notifier_seq: seq.0 as _,
            start: self.start as _,
            end: self.end as _,
            hmm_pfns: self.pfns.as_mut_ptr(),
            default_flags: flags as _,
            pfn_flags_mask: 0,
            dev_private_owner: core::ptr::null_mut(),
        };
        let _mmap = (!locked).then(|| mm.mmap_read_lock());
        // SAFETY: `range` is valid and its buffer holds a pfn per page of the range; the mmap
        // lock is held (by `_mmap`, or by the caller) and the notifier is inserted on this `mm`.
        (seq, unsafe { bindings::hmm_range_fault(&mut range) })
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
        let (_, ret) = self.walk(mm, 0, false);
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

/// A snapshot of a range's CPU page table, not yet known to be current.
pub struct Snapshot<'r, 'n, T: Invalidate> {
    range: &'r Range<'n, T>,
    seq: ReadSeq,
}

impl<'r, 'n, T: Invalidate> Snapshot<'r, 'n, T> {
    /// The sequence number the snapshot was taken under.
    pub fn seq(&self) -> ReadSeq {
        self.seq
    }

    /// Checks, under the notifier lock `guard`, that no invalidation touched the range since the
    /// snapshot. Returns its page frames, usable while `guard` is held, or `None` when the
    /// snapshot is stale and must be taken again.
    pub fn commit<'g, L: ?Sized>(self, guard: &'g NotifierGuard<'_, L>) -> Option<Valid<'g>>
    where
        'r: 'g,
    {
        if self.range.notifier.read_retry(guard, self.seq) {
            return None;
        }
        Some(Valid {
            start: self.range.start,
            end: self.range.end,
            pfns: &self.range.pfns,
        })
    }

    /// As [`Self::commit`], and also gives the data the notifier lock protects, to write the
    /// device's page table from the page frames while the lock is held.
    pub fn commit_mut<'g, L: ?Sized>(
        self,
        guard: &'g mut NotifierGuard<'_, L>,
    ) -> Option<(Valid<'g>, &'g mut L)>
    where
        'r: 'g,
    {
        if self.range.notifier.read_retry(guard, self.seq) {
            return None;
        }
        let valid = Valid {
            start: self.range.start,
            end: self.range.end,
            pfns: &self.range.pfns,
        };
        Some((valid, &mut **guard))
    }
}

/// The page frames of a current snapshot, while the notifier lock is held.
pub struct Valid<'g> {
    start: usize,
    end: usize,
    pfns: &'g [usize],
}

impl Valid<'_> {
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

    /// The entry of the page at `addr`, or `None` outside the range.
    pub fn at(&self, addr: usize) -> Option<HmmPfn> {
        if addr < self.start || addr >= self.end {
            return None;
        }
        let index = (addr - self.start) / PAGE_SIZE;
        Some(HmmPfn {
            raw: self.pfns[index],
            addr: addr & !(PAGE_SIZE - 1),
            start: self.start,
            end: self.end,
        })
    }

    /// The entries of the range, page by page.
    pub fn iter(&self) -> impl Iterator<Item = HmmPfn> + '_ {
        (0..self.pfns.len()).filter_map(move |i| self.at(self.start + i * PAGE_SIZE))
    }
}

/// One page's entry in a snapshot.
#[derive(Clone, Copy, Debug)]
pub struct HmmPfn {
    raw: usize,
    addr: usize,
    start: usize,
    end: usize,
}

impl HmmPfn {
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

/// Whether `mm` is the current task's address space.
fn is_current(mm: &MmWithUser) -> bool {
    // SAFETY: `current` is valid; its `mm` is stable while it runs.
    core::ptr::eq(mm.as_raw(), unsafe { (*bindings::get_current()).mm })
}

fn jiffies() -> usize {
    // SAFETY: `jiffies` is always valid; it changes under us, hence the volatile read.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) }
}

fn time_after(a: usize, b: usize) -> bool {
    (b.wrapping_sub(a) as isize) < 0
}
