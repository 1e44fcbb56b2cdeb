// SPDX-License-Identifier: GPL-2.0

//! Page-table entries from frames that carry proof: a committed snapshot, long-term pins, a
//! pinned GEM object's pages.
//!
//! [`write_entries`] maps a 2 MiB entry wherever 512 frames of an aligned block of GPU addresses
//! are one aligned, physically contiguous run with one permission (a huge page), and 4 KiB
//! entries elsewhere; it never maps more than the frames given.

use crate::{
    page_table::{PageSize, PageTable, SZ_2M, SZ_4K},
    pins::Pins,
};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    bindings,
    mm::{frame::Frame, hmm::Valid, pin::PinnedFrames},
    prelude::*,
};

/// The frame of a `struct page` the caller keeps resident for `'a`, writable if `write`.
///
/// # Safety
///
/// `page` must be a live `struct page`, kept allocated for `'a`, which the VM's jobs may
/// access (for writing if `write`).
pub(crate) unsafe fn page_frame<'a>(page: *mut bindings::page, write: bool) -> Frame<'a> {
    // SAFETY: The caller promises a live page; `page_to_pfn` only computes its frame.
    let pfn = unsafe { bindings::page_to_pfn(page) } as usize;
    // SAFETY: The caller keeps the page for `'a`.
    unsafe { Frame::new_unchecked(pfn, write, 0) }
}

/// Writes the entries of a current snapshot from GPU address `va`: the pages the CPU maps,
/// writable where both the CPU and the mapping allow, and a 2 MiB entry where the CPU maps a
/// huge page (order 9) over a whole 2 MiB-aligned block of the range. Never allocates.
pub(crate) fn map_snapshot(pt: &mut PageTable, va: u64, valid: &Valid<'_>, write: bool) -> Result {
    write_frames(pt, va, valid.len(), true, &SnapshotFrames { valid, write })
}

/// Writes the entries of pinned pages from GPU address `va`, writable if `write`, and a 2 MiB
/// entry where 512 of them are one aligned run of a folio. Never allocates.
pub(crate) fn map_pins(pt: &mut PageTable, va: u64, pins: &Pins, write: bool) -> Result {
    let Some(frames) = pins.frames() else {
        return Ok(());
    };
    let npages = pins.pages().len();
    let huge = pins.huge_blocks().filter(|h| h.va == va);
    // INVARIANT: The pins' blocks were found from them, at `va`.
    write_frames(
        pt,
        va,
        npages,
        true,
        &PinFrames {
            frames,
            write,
            huge,
        },
    )
}

/// No huge page starts the block.
const NO_HUGE: usize = usize::MAX;

/// Which 2 MiB blocks of GPU addresses pins mapped from `va` fill with one huge page, found once
/// before their entries are written: the tables of 4 KiB entries are then reserved only for the
/// other blocks, and [`map_pins`] does not look at the pins again.
pub(crate) struct HugeBlocks {
    /// The GPU address of the first page.
    va: u64,
    /// The index of the first page at a 2 MiB boundary of GPU addresses.
    first: usize,
    /// For each block the pins cover whole, from `first`: the frame of its first page if its
    /// 512 pages are one aligned run of a folio, else [`NO_HUGE`].
    pfns: KVVec<usize>,
}

impl HugeBlocks {
    /// Finds the blocks of the `frames` mapped from `va`.
    pub(crate) fn find(va: u64, frames: &PinnedFrames<'_>, npages: usize) -> Result<Self> {
        let first = ((SZ_2M - va % SZ_2M) % SZ_2M / SZ_4K) as usize;
        let blocks = npages.saturating_sub(first) / HUGE_PAGES;
        let mut pfns = KVVec::with_capacity(blocks, GFP_KERNEL_ACCOUNT)?;
        for k in 0..blocks {
            let pfn = frames
                .block(first + k * HUGE_PAGES, HUGE_PAGES)
                .map(|f| f.pfn())
                .filter(|pfn| pfn % HUGE_PAGES == 0);
            pfns.push(pfn.unwrap_or(NO_HUGE), GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self { va, first, pfns })
    }

    /// The frame of the huge page that fills the block starting at page `i`, if one does.
    fn pfn(&self, i: usize) -> Option<usize> {
        let k = i.checked_sub(self.first)?;
        if k % HUGE_PAGES != 0 {
            return None;
        }
        self.pfns
            .get(k / HUGE_PAGES)
            .copied()
            .filter(|&pfn| pfn != NO_HUGE)
    }

    /// Whether the block of GPU addresses at `block` (2 MiB-aligned) needs a table of 4 KiB
    /// entries: unless a huge page fills it.
    pub(crate) fn needs_small(&self, block: u64) -> bool {
        let Some(offset) = block.checked_sub(self.va) else {
            return true;
        };
        self.pfn((offset / SZ_4K) as usize).is_none()
    }
}

const HUGE_PAGES: usize = (SZ_2M / SZ_4K) as usize;
const HUGE_ORDER: u32 = HUGE_PAGES.trailing_zeros();

/// The frames [`write_frames`] maps: page by page, and a 2 MiB block at a time where the source
/// can tell at once that it is one huge page. The frames live for `'a`.
pub(crate) trait FrameSource<'a> {
    /// The frame of page `i`, or `None` to leave the page unmapped.
    fn frame(&self, i: usize) -> Option<Frame<'a>>;

    /// The first frame of the block of 512 pages from `i` (in a 2 MiB-aligned block of GPU
    /// addresses), if the block is one aligned, physically contiguous run of frames with one
    /// permission. By default, every frame of the block is checked.
    fn huge_block(&self, i: usize) -> Option<Frame<'a>> {
        let first = self.frame(i)?;
        if first.pfn() % HUGE_PAGES != 0 {
            return None;
        }
        for k in 1..HUGE_PAGES {
            let f = self.frame(i + k)?;
            if f.pfn() != first.pfn() + k || f.is_writable() != first.is_writable() {
                return None;
            }
        }
        Some(first)
    }
}

/// Frames from a function of the page index.
struct ByPage<F>(F);

impl<'a, F: Fn(usize) -> Option<Frame<'a>>> FrameSource<'a> for ByPage<F> {
    fn frame(&self, i: usize) -> Option<Frame<'a>> {
        (self.0)(i)
    }
}

/// The frames of a current snapshot, writable where both the CPU and the mapping allow.
struct SnapshotFrames<'a, 'v> {
    valid: &'a Valid<'v>,
    write: bool,
}

impl<'a> SnapshotFrames<'a, '_> {
    fn limit(&self, frame: Frame<'a>) -> Frame<'a> {
        match self.write {
            true => frame,
            false => frame.read_only(),
        }
    }
}

impl<'a> FrameSource<'a> for SnapshotFrames<'a, '_> {
    fn frame(&self, i: usize) -> Option<Frame<'a>> {
        let entry = self.valid.at(self.valid.start() + i * SZ_4K as usize)?;
        Some(self.limit(entry.frame()?))
    }

    /// A snapshot says where the CPU maps a huge page: an aligned frame in a mapping of order 9
    /// or more starts an aligned block of 512 contiguous frames, which the CPU maps with one
    /// entry (one permission) over the next 512 pages, all inside the range (the order is
    /// clipped to it). No need to look at the other 511.
    fn huge_block(&self, i: usize) -> Option<Frame<'a>> {
        let first = self.frame(i)?;
        (first.order() >= HUGE_ORDER && first.pfn() % HUGE_PAGES == 0).then_some(first)
    }
}

/// The frames of pinned pages, writable if `write` (and pinned for writing), and the blocks
/// huge pages fill, if found beforehand.
///
/// # Invariants
///
/// `huge`, if any, was found from the pins of `frames`, at the GPU address they are mapped from.
struct PinFrames<'a> {
    frames: PinnedFrames<'a>,
    write: bool,
    huge: Option<&'a HugeBlocks>,
}

impl<'a> PinFrames<'a> {
    fn limit(&self, frame: Frame<'a>) -> Frame<'a> {
        match self.write {
            true => frame,
            false => frame.read_only(),
        }
    }
}

impl<'a> FrameSource<'a> for PinFrames<'a> {
    fn frame(&self, i: usize) -> Option<Frame<'a>> {
        Some(self.limit(self.frames.frame(i)?))
    }

    /// Pins say which pages are consecutive pages of one folio by their `struct page`s alone,
    /// as [`HugeBlocks`] found them.
    fn huge_block(&self, i: usize) -> Option<Frame<'a>> {
        if let Some(huge) = self.huge {
            let pfn = huge.pfn(i)?;
            let writable = self.frames.frame(i)?.is_writable();
            // SAFETY: By the type invariant `huge` was found from these pins, which hold the 512
            // pages of the run from `pfn`, pinned for writing if `writable`, for `'a`.
            return Some(self.limit(unsafe { Frame::new_unchecked(pfn, writable, HUGE_ORDER) }));
        }
        let first = self.limit(self.frames.block(i, HUGE_PAGES)?);
        (first.pfn() % HUGE_PAGES == 0).then_some(first)
    }
}

/// Writes the entries of `npages` pages from `va`, frame `i` from `frame(i)` (`None` leaves the
/// page unmapped). Where 512 frames of a 2 MiB-aligned block of `va` are one physically
/// contiguous, aligned run with one permission (a huge page), one 2 MiB entry maps them: never
/// more than the frames given. Never allocates: the tables must be reserved.
pub(crate) fn write_entries<'a>(
    pt: &mut PageTable,
    va: u64,
    npages: usize,
    private: bool,
    frame: impl Fn(usize) -> Option<Frame<'a>>,
) -> Result {
    write_frames(pt, va, npages, private, &ByPage(frame))
}

/// As [`write_entries`], with the frames from `frames`.
fn write_frames<'a>(
    pt: &mut PageTable,
    va: u64,
    npages: usize,
    private: bool,
    frames: &impl FrameSource<'a>,
) -> Result {
    let mut fill = || -> Result {
        let mut i = 0;
        while i < npages {
            let addr = va + (i as u64) * SZ_4K;
            if addr % SZ_2M == 0 && i + HUGE_PAGES <= npages {
                if let Some(first) = frames.huge_block(i) {
                    pt.map(addr, first, PageSize::Huge, private)?;
                    i += HUGE_PAGES;
                    continue;
                }
            }
            if let Some(f) = frames.frame(i) {
                pt.map(addr, f, PageSize::Small, private)?;
            }
            i += 1;
        }
        Ok(())
    };
    let result = fill();
    if result.is_err() {
        // Nothing half-mapped stays: the caller drops what the entries point to.
        pt.clear(va, npages as u64 * SZ_4K);
    }
    result
}

#[kernel::kunit::kunit_tests(hmmgpu_frames)]
mod tests {
    use super::*;
    use crate::page_table::GpuFault;

    const VA: u64 = 0x7f00_0000_0000;
    const PFN: u64 = 0x40000;

    fn table(size: u64) -> Result<PageTable> {
        let mut pt = PageTable::new()?;
        pt.reserve(VA, size)?;
        Ok(pt)
    }

    fn frame(pfn: u64) -> Option<Frame<'static>> {
        frame_rw(pfn, true)
    }

    fn frame_rw(pfn: u64, write: bool) -> Option<Frame<'static>> {
        // SAFETY: These tests only translate addresses, never access them.
        Some(unsafe { Frame::new_unchecked(pfn as usize, write, 0) })
    }

    #[test]
    fn huge_blocks_found_from_pins_map_as_the_pins_do() -> Result {
        use kernel::{kunit, mm::pin::PinnedPages};
        let (two_m, four_k) = (SZ_2M as usize, SZ_4K as usize);
        // Huge pages where the mapping allows: the pins start 5 pages before a 2 MiB boundary
        // and cover two huge pages whole.
        let base = kunit::vm_mmap(4 * two_m, bindings::PROT_READ | bindings::PROT_WRITE)?;
        let addr = ((base + two_m - 1) & !(two_m - 1)) + two_m - 5 * four_k;
        let npages = 2 * HUGE_PAGES + 10;
        let pins = PinnedPages::pin_longterm(addr, npages * four_k, true)?;
        // At GPU addresses with the CPU's offset in 2 MiB, and with another.
        for (va, aligned) in [
            (VA + SZ_2M - 5 * SZ_4K, true),
            (VA + SZ_2M - 4 * SZ_4K, false),
        ] {
            let huge = HugeBlocks::find(va, &pins.frames(), npages)?;
            // The first and last blocks are partial, the two between are huge pages if aligned.
            assert!(huge.needs_small(VA) && huge.needs_small(VA + 3 * SZ_2M));
            assert_eq!(huge.needs_small(VA + SZ_2M), !aligned);
            assert_eq!(huge.needs_small(VA + 2 * SZ_2M), !aligned);
            // The entries written from the blocks found are those the pins give when looked at.
            let (mut ours, mut theirs) = (table(4 * SZ_2M)?, table(4 * SZ_2M)?);
            // INVARIANT: `huge` is found from these pins at `va`, or none.
            let frames = |huge| PinFrames {
                frames: pins.frames(),
                write: true,
                huge,
            };
            write_frames(&mut ours, va, npages, true, &frames(Some(&huge)))?;
            write_frames(&mut theirs, va, npages, true, &frames(None))?;
            for size in [PageSize::Small, PageSize::Huge] {
                assert_eq!(ours.entries_written(size), theirs.entries_written(size));
            }
            assert_eq!(
                ours.entries_written(PageSize::Huge),
                if aligned { 2 } else { 0 }
            );
            for i in 0..npages as u64 {
                let at = va + i * SZ_4K;
                assert!(ours.translate(at, true) == theirs.translate(at, true));
            }
        }
        Ok(())
    }

    #[test]
    fn a_huge_page_maps_with_one_entry() -> Result {
        let mut pt = table(2 * SZ_2M)?;
        write_entries(&mut pt, VA, 2 * HUGE_PAGES, true, |i| frame(PFN + i as u64))?;
        assert_eq!(pt.entries_written(PageSize::Huge), 2);
        assert_eq!(pt.entries_written(PageSize::Small), 0);
        let t = pt.translate(VA + SZ_2M + 0x1234, true);
        assert!(t.map(|t| (t.phys, t.size)) == Ok(((PFN + 512) * SZ_4K + 0x1234, PageSize::Huge)));
        Ok(())
    }

    #[test]
    fn runs_that_are_not_a_huge_page_map_small() -> Result {
        // Not physically aligned, one page of another permission, one page missing.
        let cases: [&dyn Fn(usize) -> Option<Frame<'static>>; 3] = [
            &|i| frame(PFN + 1 + i as u64),
            &|i| frame_rw(PFN + i as u64, i != 7),
            &|i| {
                if i == 300 {
                    None
                } else {
                    frame(PFN + i as u64)
                }
            },
        ];
        for f in cases {
            let mut pt = table(SZ_2M)?;
            write_entries(&mut pt, VA, HUGE_PAGES, true, f)?;
            assert_eq!(pt.entries_written(PageSize::Huge), 0);
            assert!(pt.entries_written(PageSize::Small) >= HUGE_PAGES as u64 - 1);
        }
        Ok(())
    }

    #[test]
    fn partial_huge_pages_never_map_past_the_range() -> Result {
        // The range starts 1 MiB into a huge page and ends 1 MiB into the next one.
        let va = VA + SZ_2M / 2;
        let n = HUGE_PAGES;
        let mut pt = table(2 * SZ_2M)?;
        write_entries(&mut pt, va, n, true, |i| frame(PFN + 256 + i as u64))?;
        assert_eq!(pt.entries_written(PageSize::Huge), 0);
        assert!(pt.translate(va - SZ_4K, false) == Err(GpuFault::NotMapped));
        assert!(pt.translate(va + n as u64 * SZ_4K, false) == Err(GpuFault::NotMapped));
        assert!(pt.translate(va, false).is_ok());
        Ok(())
    }

    #[test]
    fn entries_are_private_when_asked() -> Result {
        let mut pt = table(SZ_4K)?;
        write_entries(&mut pt, VA, 1, true, |_| frame(PFN))?;
        assert!(pt.translate_for(VA, false, false) == Err(GpuFault::Private));
        Ok(())
    }
}
