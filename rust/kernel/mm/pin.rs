// SPDX-License-Identifier: GPL-2.0

//! Long-term pins of user pages, for devices that cannot fault.
//!
//! [`PinnedPages::pin_longterm`] pins a range of the current process's pages with `FOLL_PIN |
//! FOLL_LONGTERM` (and `FOLL_WRITE` only when the device will write), and unpins them when
//! dropped, marking them dirty if they were pinned for writing. A pin either covers the whole
//! range or nothing: a partial pin is undone before the error is returned. [`LockedVm`] charges
//! pinned pages to an address space's locked memory, within the `RLIMIT_MEMLOCK` of a task
//! ([`MemlockLimit`]): the one that pins, or the one a worker pins for.
//!
//! The core MM refuses long-term pins it cannot honour, and the error comes back as it is:
//! `EFAULT` for a writable shared file mapping outside shmem and hugetlbfs, `EOPNOTSUPP` for
//! fsdax. Pinning takes the mmap lock: never pin with a lock held that the mmap path also takes.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h); see
//! `Documentation/core-api/pin_user_pages.rst`.

use crate::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    bindings,
    error::{code::EFAULT, to_result},
    mm::{frame::Frame, Mm, MmWithUser, MmapReadGuard},
    page::PAGE_SIZE,
    prelude::*,
    task::Task,
    types::ARef,
};
use core::{cell::Cell, mem::size_of};

/// The most pages one call of the core MM pins: `pin_user_pages_fast` counts pages in an `int`,
/// and walks the page tables of its whole range with interrupts disabled, so a range of many
/// GiB is pinned 256 MiB (with 4 KiB pages) at a time.
const PIN_CHUNK: usize = 1 << 16;

/// Pages of the current process pinned long-term (`FOLL_PIN | FOLL_LONGTERM`).
///
/// # Examples
///
/// ```
/// use kernel::{bindings, kunit, mm::pin::PinnedPages, page::PAGE_SIZE};
///
/// let len = 4 * PAGE_SIZE;
/// let addr = kunit::vm_mmap(len, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// let pins = PinnedPages::pin_longterm(addr, len, true)?;
/// assert_eq!(pins.len(), 4);
/// assert!(pins.writable() && !pins.is_empty());
/// assert!(pins.pages().iter().all(|page| !page.is_null()));
///
/// // A pin covers whole pages, all of them or none.
/// assert!(PinnedPages::pin_longterm(addr + 1, PAGE_SIZE, false).err() == Some(EINVAL));
/// assert!(PinnedPages::pin_longterm(addr, 0, false).err() == Some(EINVAL));
/// // Pinned for writing, a read-only mapping refuses.
/// let ro = kunit::vm_mmap(PAGE_SIZE, bindings::PROT_READ)?;
/// assert!(PinnedPages::pin_longterm(ro, PAGE_SIZE, true).err() == Some(EFAULT));
/// // With the mmap lock held, as a caller taking a range in a range lock must.
/// let mm = kernel::mm::MmWithUser::current().ok_or(EINVAL)?;
/// let guard = mm.mmap_read_lock();
/// let read = PinnedPages::pin_longterm_locked(&guard, ro, PAGE_SIZE, false)?;
/// assert!(!read.writable());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// Every entry of `pages` holds one `FOLL_PIN` pin, taken with `FOLL_WRITE` if `write`.
pub struct PinnedPages {
    pages: KVVec<*mut bindings::page>,
    write: bool,
}

// SAFETY: Pins may be released from any thread.
unsafe impl Send for PinnedPages {}
// SAFETY: A shared `PinnedPages` only hands out page pointers.
unsafe impl Sync for PinnedPages {}

impl PinnedPages {
    /// Pins the `length` bytes of the current process's memory from `start`, for writing if
    /// `write`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an empty, unaligned or wrapping range; `EFAULT` when a page is not mapped
    /// or not writable as asked, or when the current task has no address space (a kernel
    /// thread, such as a workqueue worker, that does not use one: see
    /// [`MmWithUser::with_kthread_use`]); the core MM's refusals of long-term pins (`EFAULT`,
    /// `EOPNOTSUPP`); `ENOMEM`. Nothing stays pinned on error.
    ///
    /// A kernel thread never waits for a userfaultfd handler: only a fatal signal, which it never
    /// gets, would end the wait if the handler never came. It pins with the mmap lock held, as
    /// [`Self::pin_longterm_locked`] does, where memory only the handler could bring in fails
    /// with `EFAULT`.
    ///
    /// [`MmWithUser::with_kthread_use`]: crate::mm::MmWithUser::with_kthread_use
    pub fn pin_longterm(start: usize, length: usize, write: bool) -> Result<Self> {
        // SAFETY: FFI call without requirements.
        if unsafe { bindings::current_is_kthread() } {
            let mm = MmWithUser::current().ok_or(EFAULT)?;
            let guard = mm.mmap_read_lock();
            return Self::pin_longterm_locked(&guard, start, length, write);
        }
        // `pin_user_pages_fast` walks the page tables of `current->mm` without checking it.
        if Mm::current().is_none() {
            return Err(EFAULT);
        }
        Self::pin_with(start, length, write, |addr, want, flags, out| {
            // SAFETY: `out` has room for `want` entries; the fast path takes the mmap lock
            // itself if it needs it. The current task has an address space (checked above; only
            // the task itself could change that).
            i64::from(unsafe { bindings::pin_user_pages_fast(addr as _, want, flags as _, out) })
        })
    }

    /// As [`Self::pin_longterm`], with the mmap lock of the current process held for reading by
    /// `guard`, as a caller that takes a range in a [`RangeLock`] must (the lock order is the
    /// mmap lock, then the range): invalidations of the range that arrive while it is pinned
    /// then wait for the caller to install the pins and release the range.
    ///
    /// [`RangeLock`]: super::range_lock::RangeLock
    ///
    /// # Errors
    ///
    /// As [`Self::pin_longterm`]; `EINVAL` when `guard` is not the current process's lock.
    pub fn pin_longterm_locked(
        guard: &MmapReadGuard<'_>,
        start: usize,
        length: usize,
        write: bool,
    ) -> Result<Self> {
        if !guard.mm().is_current() {
            return Err(EINVAL);
        }
        Self::pin_with(start, length, write, |addr, want, flags, out| {
            // SAFETY: `out` has room for `want` entries; the mmap lock of the current process,
            // which `pin_user_pages` works on, is held (for reading) by `guard`.
            unsafe { bindings::pin_user_pages(addr as _, want as _, flags as _, out) as i64 }
        })
    }

    /// Pins with `pin(address, pages, gup flags, out)`, which returns how many pages it pinned
    /// or an error, until the whole range is pinned; unpins everything on error.
    fn pin_with(
        start: usize,
        length: usize,
        write: bool,
        mut pin: impl FnMut(usize, i32, u32, *mut *mut bindings::page) -> i64,
    ) -> Result<Self> {
        if length == 0
            || start % PAGE_SIZE != 0
            || length % PAGE_SIZE != 0
            || start.checked_add(length).is_none()
        {
            return Err(EINVAL);
        }
        let npages = length / PAGE_SIZE;
        let mut flags = bindings::FOLL_LONGTERM;
        if write {
            flags |= bindings::FOLL_WRITE;
        }
        // INVARIANT: `pages` only grows by what was pinned, with `write`'s flags.
        let mut this = Self {
            pages: KVVec::with_capacity(npages, GFP_KERNEL_ACCOUNT)?,
            write,
        };
        while this.pages.len() < npages {
            let done = this.pages.len();
            // At most `PIN_CHUNK` pages (fits an `i32`, whatever the range's size) per call.
            let want = core::cmp::min(npages - done, PIN_CHUNK) as i32;
            // SAFETY: `done` is within the buffer's capacity of `npages`.
            let out = unsafe { this.pages.as_mut_ptr().add(done) };
            let ret = pin(start + done * PAGE_SIZE, want, flags, out);
            // Dropping `this` on error unpins what was pinned so far.
            if ret < 0 {
                return Err(Error::from_errno(ret as i32));
            }
            if ret == 0 {
                return Err(EFAULT);
            }
            // SAFETY: The pin filled in `ret` more entries, each pinned.
            unsafe { this.pages.set_len(done + ret as usize) };
        }
        Ok(this)
    }

    /// The pinned pages, in order.
    pub fn pages(&self) -> &[*mut bindings::page] {
        &self.pages
    }

    /// The number of pinned pages.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether no page is pinned (never, once `pin_longterm` succeeded).
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Whether the pages were pinned for writing.
    pub fn writable(&self) -> bool {
        self.write
    }

    /// The page frames of the pinned pages, looked up a folio at a time.
    pub fn frames(&self) -> PinnedFrames<'_> {
        PinnedFrames {
            pages: &self.pages,
            write: self.write,
            folio: Cell::new(FolioSpan::default()),
        }
    }
}

/// The page frames of [`PinnedPages`], by index.
///
/// # Examples
///
/// ```
/// use kernel::{bindings, kunit, mm::pin::PinnedPages, page::PAGE_SIZE};
///
/// let addr = kunit::vm_mmap(2 * PAGE_SIZE, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// let pins = PinnedPages::pin_longterm(addr, 2 * PAGE_SIZE, true)?;
/// let frames = pins.frames();
/// let frame = frames.frame(1).ok_or(EINVAL)?;
/// assert_eq!(Some(frame.pfn()), frames.pfn(1));
/// assert!(frame.is_writable());
/// assert!(frames.frame(2).is_none());
/// // One page is a block of one; a block longer than the pins is none.
/// assert_eq!(frames.contiguous(0, 1), frames.pfn(0));
/// assert_eq!(frames.block(0, 1).map(|f| f.pfn()), frames.pfn(0));
/// assert!(frames.contiguous(1, 2).is_none());
/// # Ok::<(), Error>(())
/// ```
///
/// A folio's pages are consecutive `struct page`s and consecutive frames, and pinned ranges
/// mostly run through each folio in order: the frame of a page in the folio of the page asked
/// for before it is an offset from that folio's first frame. Only the first page of each folio
/// costs a lookup, so a 2 MiB THP costs one rather than 512.
pub struct PinnedFrames<'a> {
    pages: &'a [*mut bindings::page],
    write: bool,
    folio: Cell<FolioSpan>,
}

/// The `struct page`s of a folio, and its first frame.
#[derive(Clone, Copy, Default)]
struct FolioSpan {
    /// The address of the folio's first `struct page`.
    first: usize,
    /// The number of pages in the folio (zero: none looked up yet).
    pages: usize,
    /// The frame of the first page.
    pfn: usize,
}

impl<'a> PinnedFrames<'a> {
    /// The frame to map for pinned page `i`, writable if the pages were pinned for writing, or
    /// `None` past the last one. It lives no longer than the pins.
    pub fn frame(&self, i: usize) -> Option<Frame<'a>> {
        let pfn = self.pfn(i)?;
        // SAFETY: The page is pinned for as long as the pins are borrowed (`'a`), for writing if
        // `write`.
        Some(unsafe { Frame::new_unchecked(pfn, self.write, 0) })
    }

    /// The frame to map for pinned page `i`, as the first of a block of `n`, if it and the
    /// `n - 1` pinned pages after it are consecutive pages of one folio: see
    /// [`Self::contiguous`].
    pub fn block(&self, i: usize, n: usize) -> Option<Frame<'a>> {
        let pfn = self.contiguous(i, n)?;
        let order = n.trailing_zeros();
        // SAFETY: As in `frame`: the `n` pages are pinned for `'a`.
        Some(unsafe { Frame::new_unchecked(pfn, self.write, order) })
    }

    /// The frame of pinned page `i`, or `None` past the last one.
    pub fn pfn(&self, i: usize) -> Option<usize> {
        let page = *self.pages.get(i)?;
        let span = self.folio.get();
        let offset = (page as usize).wrapping_sub(span.first) / size_of::<bindings::page>();
        if (page as usize) >= span.first && offset < span.pages {
            return Some(span.pfn + offset);
        }
        // SAFETY: The page is pinned, so it stays allocated in its folio while `self` borrows
        // the pins. A folio starts with the `struct page` of its first page.
        let span = unsafe {
            let folio = bindings::page_folio(page);
            FolioSpan {
                first: folio as usize,
                pages: bindings::folio_nr_pages(folio) as usize,
                pfn: bindings::folio_pfn(folio) as usize,
            }
        };
        self.folio.set(span);
        let offset = (page as usize - span.first) / size_of::<bindings::page>();
        Some(span.pfn + offset)
    }

    /// The frame of pinned page `i`, if it and the `n - 1` pinned pages after it are
    /// consecutive pages of one folio (so their frames are consecutive too).
    ///
    /// Compares `struct page` pointers only, and looks up one folio: a tight loop over the
    /// pins, for a driver that maps a huge page with one entry. The loop gathers the
    /// differences eight pointers at a time and tests them once per eight: no branch per page.
    pub fn contiguous(&self, i: usize, n: usize) -> Option<usize> {
        let pages = self.pages.get(i..i.checked_add(n)?)?;
        let first = *pages.first()?;
        let step = size_of::<bindings::page>();
        let mut expected = first as usize;
        let mut chunks = pages.chunks_exact(8);
        for chunk in &mut chunks {
            let mut diff = 0;
            for (k, &page) in chunk.iter().enumerate() {
                diff |= (page as usize) ^ expected.wrapping_add(k * step);
            }
            if diff != 0 {
                return None;
            }
            expected = expected.wrapping_add(8 * step);
        }
        for &page in chunks.remainder() {
            if page as usize != expected {
                return None;
            }
            expected = expected.wrapping_add(step);
        }
        let pfn = self.pfn(i)?;
        // `pfn` looked the folio up, or found it looked up.
        let span = self.folio.get();
        let offset = (first as usize - span.first) / size_of::<bindings::page>();
        (offset + n <= span.pages).then_some(pfn)
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        let (pages, n) = (self.pages.as_mut_ptr(), self.pages.len());
        if n == 0 {
            return;
        }
        // SAFETY: By the type invariant each entry holds one pin, released here once. Pages the
        // device may have written are marked dirty, so their contents are written back.
        unsafe {
            if self.write {
                bindings::unpin_user_pages_dirty_lock(pages, n as _, true);
            } else {
                bindings::unpin_user_pages(pages, n as _);
            }
        }
    }
}

/// Whose `RLIMIT_MEMLOCK` a [`LockedVm`] charge counts against.
///
/// Mostly the task that charges, as it is when it charges ([`MemlockLimit::of_charging_task`],
/// what `account_locked_vm` does). A call that queues work which pins later, from a worker
/// (whose own limit and capabilities are not the caller's), keeps the caller's instead
/// ([`MemlockLimit::of_current_task`]).
///
/// # Examples
///
/// ```
/// use kernel::{bindings, kunit, mm::{pin::{LockedVm, MemlockLimit}, Mm}, page::PAGE_SIZE};
///
/// kunit::vm_mmap(PAGE_SIZE, bindings::PROT_READ)?;
/// let mm = Mm::current().ok_or(EINVAL)?;
/// let kept = MemlockLimit::of_current_task();
/// // A kernel thread, such as the one running this example, may lock any amount.
/// assert_eq!(kept.unlimited(), Some(true));
/// assert_eq!(MemlockLimit::of_charging_task().unlimited(), None);
/// let charge = LockedVm::charge_within(&mm, 1 << 20, &kept)?;
/// assert_eq!(charge.pages(), 1 << 20);
/// # Ok::<(), Error>(())
/// ```
pub struct MemlockLimit {
    /// The task whose limit counts, and whether it may go past it; `None` for the task that
    /// charges.
    kept: Option<(ARef<Task>, bool)>,
}

impl MemlockLimit {
    /// The limit of the task that charges, and its `CAP_IPC_LOCK`, as they are when it does.
    pub const fn of_charging_task() -> Self {
        Self { kept: None }
    }

    /// The current task's limit, read at each charge, and whether it may go past it
    /// (`CAP_IPC_LOCK`), as it is now.
    pub fn of_current_task() -> Self {
        // SAFETY: FFI call without requirements.
        let unlimited = unsafe { bindings::capable(bindings::CAP_IPC_LOCK as _) };
        Self {
            kept: Some((ARef::from(crate::current!()), unlimited)),
        }
    }

    /// Whether the kept task may lock memory past its limit; `None` if no task is kept.
    pub fn unlimited(&self) -> Option<bool> {
        self.kept.as_ref().map(|(_, unlimited)| *unlimited)
    }
}

/// Pages charged to an address space's locked memory (`RLIMIT_MEMLOCK`), uncharged on drop.
///
/// # Examples
///
/// ```
/// use kernel::{bindings, kunit, mm::{pin::LockedVm, Mm}, page::PAGE_SIZE};
///
/// kunit::vm_mmap(PAGE_SIZE, bindings::PROT_READ)?;
/// let mm = Mm::current().ok_or(EINVAL)?;
/// // SAFETY: `mm` is live; nothing else charges this test's address space meanwhile.
/// let locked_vm = || unsafe { (*mm.as_raw()).__bindgen_anon_1.locked_vm };
/// let before = locked_vm();
/// {
///     let charge = LockedVm::charge(&mm, 16)?;
///     assert_eq!(charge.pages(), 16);
///     assert_eq!(locked_vm(), before + 16);
/// }
/// assert_eq!(locked_vm(), before);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `pages` pages are charged to `mm`'s `locked_vm`.
pub struct LockedVm {
    mm: ARef<Mm>,
    pages: usize,
}

impl LockedVm {
    /// Charges `pages` pages to `mm`, within the limit of the current task.
    ///
    /// # Errors
    ///
    /// `ENOMEM` when the charge would pass `RLIMIT_MEMLOCK` (and the task may not exceed it).
    pub fn charge(mm: &Mm, pages: usize) -> Result<Self> {
        Self::charge_within(mm, pages, &MemlockLimit::of_charging_task())
    }

    /// Charges `pages` pages to `mm`, within `limit`.
    ///
    /// # Errors
    ///
    /// `ENOMEM` when the charge would pass `limit`'s `RLIMIT_MEMLOCK` (and its task may not
    /// exceed it).
    pub fn charge_within(mm: &Mm, pages: usize, limit: &MemlockLimit) -> Result<Self> {
        let ret = match &limit.kept {
            // SAFETY: `mm` is live.
            None => unsafe { bindings::account_locked_vm(mm.as_raw(), pages as _, true) },
            // SAFETY: `mm` is live; its mmap lock is taken for writing around the charge, as
            // `__account_locked_vm` requires. The task is live: `limit` holds a reference.
            Some((task, unlimited)) => unsafe {
                bindings::mmap_write_lock(mm.as_raw());
                let ret = bindings::__account_locked_vm(
                    mm.as_raw(),
                    pages as _,
                    true,
                    task.0.get(),
                    *unlimited,
                );
                bindings::mmap_write_unlock(mm.as_raw());
                ret
            },
        };
        to_result(ret)?;
        // INVARIANT: The charge succeeded.
        Ok(Self {
            mm: mm.into(),
            pages,
        })
    }

    /// The number of pages charged.
    pub fn pages(&self) -> usize {
        self.pages
    }
}

impl Drop for LockedVm {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the pages are charged to `mm`, which we keep alive.
        unsafe { bindings::account_locked_vm(self.mm.as_raw(), self.pages as _, false) };
    }
}
