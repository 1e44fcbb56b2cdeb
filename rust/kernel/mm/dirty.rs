// SPDX-License-Identifier: GPL-2.0

//! Telling the core MM that a device wrote pages.
//!
//! The core MM learns that a mapped page was written from the dirty bit of the CPU page-table
//! entries that map it: zapping or unmapping a dirty entry marks the folio dirty. A device that
//! writes through its own page table sets no such bit, so reclaim would discard a lazily freed
//! (`MADV_FREE`) anonymous page it wrote, and writeback would skip a file page it wrote, unless
//! the mirror marks them dirty itself.
//!
//! The rule the mirroring framework follows is RDMA ODP's: when a device entry that allowed
//! writes is cleared (by an invalidation, or when the mapping goes), the pages it mapped are
//! marked dirty before the core MM may act on their cleanliness, that is before the invalidation
//! callback returns. `Documentation/mm/rust-mirroring.rst` compares it with the alternatives.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)

use crate::bindings;

/// Marks dirty the folios of the `npages` pages from page frame `pfn`, each folio once.
///
/// Takes no lock but the ones the folio's address space takes to track dirty folios
/// (spinlocks): it may be called from an invalidation callback, with the notifier lock held,
/// even one that may not block.
///
/// # Safety
///
/// The pages must be ordinary pages (with a `struct page`) that stay allocated and in their
/// address space (not truncated) for the duration of the call: for example pages that a CPU
/// page table maps and keeps mapping during the call, because the call is made from the
/// invalidation callback of a range that maps them (the CPU entries change only after the
/// callback returns) or under the notifier lock, which such callbacks wait for. This is the
/// guarantee `zap_pte_range()` relies on to dirty folios without their lock.
///
/// # Examples
///
/// Pinned pages stay allocated, and in their address space, while pinned:
///
/// ```
/// use kernel::{bindings, kunit, mm::{dirty, pin::PinnedPages}, page::PAGE_SIZE};
///
/// let addr = kunit::vm_mmap(2 * PAGE_SIZE, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// let pins = PinnedPages::pin_longterm(addr, 2 * PAGE_SIZE, true)?;
/// let frames = pins.frames();
/// let (first, second) = (frames.pfn(0).ok_or(EINVAL)?, frames.pfn(1).ok_or(EINVAL)?);
/// // SAFETY: The pages are pinned, in the address space of this test, until `pins` is dropped.
/// unsafe {
///     dirty::set_pfns_dirty(first, 1);
///     dirty::set_pfns_dirty(second, 1);
///     assert!(dirty::pfn_is_dirty(first) && dirty::pfn_is_dirty(second));
/// }
/// # Ok::<(), Error>(())
/// ```
pub unsafe fn set_pfns_dirty(pfn: usize, npages: usize) {
    let end = pfn.saturating_add(npages);
    let mut pfn = pfn;
    while pfn < end {
        // SAFETY: The caller promises an allocated page at `pfn`, which keeps its folio; the
        // folio is allocated and cannot be truncated during the call (see above).
        let folio = unsafe {
            let folio = bindings::page_folio(bindings::pfn_to_page(pfn as _));
            bindings::folio_mark_dirty(folio);
            folio
        };
        if end - pfn == 1 {
            break;
        }
        // The next page past this folio.
        // SAFETY: As above.
        let (first, len) = unsafe {
            (
                bindings::folio_pfn(folio) as usize,
                bindings::folio_nr_pages(folio) as usize,
            )
        };
        pfn = first.saturating_add(len).max(pfn + 1);
    }
}

/// Whether the folio of page frame `pfn` is dirty.
///
/// # Safety
///
/// The page at `pfn` must be allocated for the duration of the call.
pub unsafe fn pfn_is_dirty(pfn: usize) -> bool {
    // SAFETY: The caller promises an allocated page at `pfn`.
    unsafe { bindings::folio_test_dirty(bindings::page_folio(bindings::pfn_to_page(pfn as _))) }
}
