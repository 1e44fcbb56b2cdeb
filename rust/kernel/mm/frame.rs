// SPDX-License-Identifier: GPL-2.0

//! Page frames a device may map, each carrying proof of why it may.
//!
//! A device page table that mirrors a process must only ever be written from frames that are
//! what the CPU maps, or that cannot go away while mapped. A [`Frame<'a>`] is such a frame for
//! the lifetime `'a`, and there are three ways to get one:
//!
//! - from a current snapshot: [`HmmPfn::frame`], where `'a` is a borrow of the snapshot's
//!   [`Valid`], which lives no longer than the notifier lock's guard: the frame cannot be used
//!   once the lock is released or the snapshot is stale;
//! - from long-term pins: [`PinnedFrames::frame`], where `'a` is a borrow of the pins: the frame
//!   cannot be used once they are released;
//! - from a caller who vouches for it: [`Frame::new_unchecked`], an `unsafe fn`.
//!
//! A driver's page-table write takes a `Frame`, so writing an entry from a stale snapshot, after
//! unlocking, or after unpinning does not compile (`make check` holds snippets that try, and
//! fails if one builds). The lifetime proves the frame current when the entry is *written*; the
//! invalidation callback, which clears the entry before the CPU changes the page, keeps it
//! current afterwards.
//!
//! [`HmmPfn::frame`]: super::hmm::HmmPfn::frame
//! [`Valid`]: super::hmm::Valid
//! [`PinnedFrames::frame`]: super::pin::PinnedFrames::frame

use crate::page::PAGE_SHIFT;
use core::marker::PhantomData;

/// A page frame a device may map while `'a` lasts, as writable as [`Frame::is_writable`] says.
///
/// # Examples
///
/// ```
/// use kernel::mm::frame::Frame;
///
/// // SAFETY: Only looked at here, never mapped.
/// let frame: Frame<'_> = unsafe { Frame::new_unchecked(0x1234, true, 9) };
/// assert_eq!(frame.pfn(), 0x1234);
/// assert_eq!(frame.phys(), 0x1234 << kernel::page::PAGE_SHIFT);
/// assert!(frame.is_writable());
/// let read_only = frame.read_only();
/// assert!(!read_only.is_writable());
/// assert_eq!((read_only.pfn(), read_only.order()), (0x1234, 9));
/// ```
///
/// # Invariants
///
/// While `'a` lasts, the page at `pfn` may be mapped by a device, for writing if `writable`:
/// the CPU maps it at the address it was found for (and invalidates the device's entries before
/// it changes that), or it is pinned, or the creator vouched for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pfn: usize,
    writable: bool,
    order: u32,
    _proof: PhantomData<&'a ()>,
}

impl<'a> Frame<'a> {
    /// A frame whose caller vouches for it, in a mapping of `order` (0 if not known).
    ///
    /// # Safety
    ///
    /// While `'a` lasts, the page at `pfn` must stay allocated and be one the device may access
    /// (for writing if `writable`): for instance a page of a GEM object kept resident while it
    /// is mapped.
    pub unsafe fn new_unchecked(pfn: usize, writable: bool, order: u32) -> Self {
        // INVARIANT: The caller vouches for the frame.
        Self {
            pfn,
            writable,
            order,
            _proof: PhantomData,
        }
    }

    /// The page frame number.
    pub fn pfn(&self) -> usize {
        self.pfn
    }

    /// The physical address of the page.
    pub fn phys(&self) -> u64 {
        (self.pfn as u64) << PAGE_SHIFT
    }

    /// Whether the device may write the page.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The order of the aligned block of pages the frame's source maps as one (9 for a 2 MiB
    /// page under 4 KiB pages), or 0 when it cannot tell.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// The same frame, which the device may only read.
    pub fn read_only(self) -> Self {
        // INVARIANT: Fewer rights than the frame had.
        Self {
            writable: false,
            ..self
        }
    }
}
