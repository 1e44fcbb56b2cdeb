// SPDX-License-Identifier: GPL-2.0

//! Userptr mirrors: how a userptr mapping of a GPU VM follows the CPU page table.
//!
//! A [`Mirror`] is the data of the interval notifier that watches the CPU range a userptr
//! mapping names. Its invalidation callback is where the GPU loses access to pages the CPU is
//! about to change:
//!
//! - in fault mode it clears the entries of the range; the engine translates every access under
//!   the notifier lock, so no job touches the old pages once the lock is released, and the next
//!   access faults and mirrors the new ones;
//! - in prefault and pinned modes the GPU cannot fault, so the callback first puts the mirror on
//!   the VM's list of invalidated mirrors (from then on a submission publishes a job only once
//!   it has mirrored the mirror again, which waits for the invalidation to end, or found it
//!   cannot be), waits for the VM's last job (whose fence was published under the notifier
//!   lock), then clears the entries and drops the pins (pinned mode: released soon after, by a
//!   worker, outside the callback). A mirror with nothing in the page table has nothing to wait
//!   for.
//!
//! Entries that let the GPU write are cleared with their pages marked dirty (see
//! [`kernel::mm::dirty`]), so that the core MM never treats a page the GPU wrote as clean: not in
//! an invalidation (reclaim, writeback, migration, unmap), and not when the mapping goes.
//!
//! When the address space goes away (`MMU_NOTIFY_RELEASE`, the process exits), the jobs of a
//! prefault or pinned VM submitted so far are cancelled: exit would otherwise wait for them, up
//! to their time limits.
//!
//! The callback never allocates: the invalidated list has room for every mirror of the VM, and
//! pins are chained, not collected.
//!
//! C header: [`include/linux/mmu_notifier.h`](srctree/include/linux/mmu_notifier.h)

use crate::{
    page_table::{PageSize, PageTable, SZ_2M, SZ_4K},
    vm::{Mode, State, Stats, Vm},
};
use core::sync::atomic::Ordering;
use kernel::{
    alloc::{flags::GFP_KERNEL, KBox, KVVec},
    bindings,
    mm::{
        dirty,
        frame::Frame,
        hmm::{Fault, Valid},
        interval_notifier::{Event, IntervalNotifier, Invalidate, InvalidateRange, ReadSeq},
        notifier_lock::{NotifierGuard, NotifierLock, NotifierLocked},
        pin::{LockedVm, PinnedFrames, PinnedPages},
        range_lock::{self, RangeGuard, RangeWaiter},
        MmWithUser,
    },
    prelude::*,
    sync::Arc,
};

/// The state of a mirror that the VM's notifier lock protects.
pub(crate) struct MirrorState {
    /// The entries are cleared and must be mirrored again before a job may use them (prefault
    /// and pinned modes).
    pub(crate) invalid: bool,
    /// The mirror is on the VM's invalidated list.
    pub(crate) listed: bool,
    /// The mapping is being removed: its entries are gone and the range is not the mapping's
    /// any more, so invalidations have nothing to do (and must not clear what is mapped there
    /// now).
    pub(crate) removed: bool,
    /// The mirror may have entries in the page table (prefault and pinned modes): set when it is
    /// mirrored, cleared with its entries. An invalidation of a mirror without entries has
    /// nothing to wait for.
    pub(crate) mapped: bool,
    /// The pins the entries point to (pinned mode).
    pub(crate) pins: Option<KBox<Pins>>,
}

/// A userptr mapping's watch on the CPU page table.
pub(crate) struct Mirror {
    pub(crate) vm: Arc<Vm>,
    /// The GPU virtual address of the mapping.
    pub(crate) va: u64,
    /// The CPU address that `va` mirrors.
    pub(crate) cpu: usize,
    /// The size of the mapping in bytes.
    pub(crate) size: u64,
    /// Whether the GPU may write.
    pub(crate) write: bool,
    pub(crate) state: NotifierLocked<MirrorState>,
}

impl Mirror {
    pub(crate) fn new(vm: &Arc<Vm>, va: u64, cpu: usize, size: u64, write: bool) -> Self {
        let invalid = vm.mode != Mode::Fault;
        Self {
            vm: vm.clone(),
            va,
            cpu,
            size,
            write,
            state: NotifierLocked::new(
                &vm.state,
                MirrorState {
                    invalid,
                    listed: false,
                    removed: false,
                    mapped: false,
                    pins: None,
                },
            ),
        }
    }

    /// How to fault the range in for an access, for a write if `write`: writes break
    /// copy-on-write, and so do reads where the mapping may be written, as the GPU will likely
    /// write what it reads (a read-only VMA is faulted for reading).
    pub(crate) fn fault_for(&self, write: bool) -> Fault {
        match (write, self.write) {
            (true, _) => Fault::Write,
            (false, true) => Fault::WriteOrRead,
            (false, false) => Fault::Read,
        }
    }

    /// The CPU address of GPU address `va` of the mapping.
    pub(crate) fn cpu_of(&self, va: u64) -> usize {
        self.cpu + (va - self.va) as usize
    }

    /// The GPU range of the mapping that a CPU range `[start, end)` overlaps, if any.
    fn overlap(&self, start: usize, end: usize) -> Option<(u64, u64)> {
        let lo = core::cmp::max(start, self.cpu);
        let hi = core::cmp::min(end, self.cpu + self.size as usize);
        if lo >= hi {
            return None;
        }
        let lo = lo & !(SZ_4K as usize - 1);
        let va = self.va + (lo - self.cpu) as u64;
        let len = (hi - lo) as u64;
        Some((va, len.next_multiple_of(SZ_4K)))
    }

    /// Marks the mirror to be mirrored again, and lists it on the VM's invalidated list. Never
    /// allocates.
    pub(crate) fn mark_invalid(&self, guard: &mut NotifierGuard<'_, State>) {
        let state = self.state.access(guard);
        state.invalid = true;
        if !state.listed {
            let listed = guard.list_invalid(self.va);
            self.state.access(guard).listed = listed;
        }
    }

    /// Clears the whole mapping's entries and moves its pins to the VM's stale pins, to release
    /// outside the lock. Never allocates.
    pub(crate) fn clear_locked(&self, guard: &mut NotifierGuard<'_, State>) {
        self.clear_entries(&mut guard.pt, self.va, self.size);
        let state = self.state.access(guard);
        state.mapped = false;
        if let Some(pins) = state.pins.take() {
            guard.push_stale(pins);
        }
    }

    /// Clears the entries of GPU range `[va, va + len)` of the mapping, marking dirty every page
    /// a writable entry mapped: the GPU may have written it. Never allocates.
    ///
    /// In pinned mode the pages are marked dirty when they are unpinned, after the entries are
    /// cleared, not here: until then the pins keep each page allocated (a `MADV_FREE` page is not
    /// discarded, nor any page freed, while it holds references beyond its mappings'), and an
    /// munmap does not pay for a folio lookup per page.
    ///
    /// Must be called with the notifier lock held (it guards `pt`), from the invalidation
    /// callback or with the mapping still watched, so that the pages are still mapped by the CPU.
    pub(crate) fn clear_entries(&self, pt: &mut PageTable, va: u64, len: u64) {
        if self.vm.mode == Mode::Pinned {
            pt.clear(va, len);
            return;
        }
        pt.clear_each(va, len, |t| {
            if t.writable {
                let pages = (t.size.bytes() / SZ_4K) as usize;
                // SAFETY: The entry was written from a current snapshot of the range, and every
                // change of the CPU page table of the range clears it first, under the notifier
                // lock, which is held: the CPU still maps its pages, and keeps them mapped until
                // the lock is released (or the callback returns).
                unsafe { dirty::set_pfns_dirty((t.phys / SZ_4K) as usize, pages) };
            }
        });
    }
}

impl Invalidate for Mirror {
    type Locked = State;

    fn notifier_lock(&self) -> &NotifierLock<State> {
        &self.vm.state
    }

    fn invalidate(
        notifier: &IntervalNotifier<Self>,
        range: &InvalidateRange<'_>,
        guard: &mut NotifierGuard<'_, State>,
    ) -> bool {
        let m = notifier.data();
        let vm = &m.vm;
        if range.event() == Event::Release && vm.mode != Mode::Fault {
            // The process is exiting: the jobs submitted so far end now rather than hold up
            // exit, which waits for them below.
            vm.cancel_jobs(guard);
        }
        if m.state.access(guard).removed {
            return true;
        }
        Stats::inc(&vm.stats.invalidations);
        let Some((va, len)) = m.overlap(range.start(), range.end()) else {
            return true;
        };
        if vm.mode == Mode::Fault {
            m.clear_entries(&mut guard.pt, va, len);
            return true;
        }
        if !m.state.access(guard).mapped {
            // Nothing of the mirror is in the page table: no job reaches its pages.
            m.mark_invalid(guard);
            return true;
        }
        // The GPU cannot fault: let jobs that may use the pages finish first. Their fences were
        // published under the lock. The mirror is listed first, and the VM told: from then on a
        // submission publishes a job only once it has mirrored it again, which waits for this
        // invalidation to end.
        let wait = guard.last_fence.clone().filter(|f| !f.is_signaled());
        if wait.is_some() && !range.may_block() {
            return false;
        }
        m.mark_invalid(guard);
        guard.invalidated();
        if let Some(fence) = wait {
            guard.clearing += 1;
            guard.do_unlocked(|| fence.wait_uninterruptible());
            guard.clearing -= 1;
            // The mapping may have gone meanwhile: its entries went with it, and what is mapped
            // at its address now is another mapping's.
            if m.state.access(guard).removed {
                return true;
            }
        }
        m.clear_locked(guard);
        if vm.mode == Mode::Pinned {
            vm.queue_release(guard);
        }
        true
    }
}

/// A mirror's pages pinned with its range taken in the notifier's range lock, which stays taken
/// until the pinning is dropped or [`Pinning::release_range`] is called: invalidations of the
/// range that arrive meanwhile wait for the pins to be installed (for the range's patience at
/// most).
pub(crate) struct Pinning<'w> {
    /// The pins, until they are installed.
    pub(crate) pins: Option<KBox<Pins>>,
    /// The sequence number read before pinning: the pins are current unless it is stale.
    pub(crate) seq: ReadSeq,
    range: Option<RangeGuard<'w>>,
}

impl<'w> Pinning<'w> {
    /// Pins the pages of `mirrors` in `mm`, the current process's address space, each with its
    /// range taken through the waiter at the same index of `waiters` if `hold` (`waiters` may
    /// be empty otherwise). Returns, for
    /// each mirror, its pinning, or `EFAULT` when its range is not mapped as the mirror needs.
    ///
    /// Without `hold`, pins without taking ranges, through the lockless fast path: mostly no
    /// invalidation comes before the pins are installed, and the sequence number shows them
    /// current. When one did, the caller pins again holding the ranges.
    ///
    /// Every sequence number is read first and every mirror pinned under one hold of the mmap
    /// lock, as [`hmm::fault_all`] does for snapshots and for the same reason: an invalidation
    /// that waits for a range taken here may hold the mmap lock for writing, or keep
    /// `read_begin` waiting. Memory only a fault that may drop the mmap lock can bring in
    /// (userfaultfd) fails under the lock: it is pinned afterwards the usual way, with every
    /// range released.
    ///
    /// # Errors
    ///
    /// `EAGAIN` when a range changed while its pages were migrated for pinning; errors of
    /// [`LockedVm::charge`] and [`PinnedPages::pin_longterm`].
    pub(crate) fn pin_all(
        mirrors: &[&IntervalNotifier<Mirror>],
        mm: &MmWithUser,
        waiters: &'w mut [RangeWaiter<'_>],
        hold: bool,
        stats: &Arc<Stats>,
    ) -> Result<KVVec<Result<Self>>> {
        let mut charges = KVVec::with_capacity(mirrors.len(), GFP_KERNEL)?;
        let mut seqs = KVVec::with_capacity(mirrors.len(), GFP_KERNEL)?;
        let mut pinned = KVVec::with_capacity(mirrors.len(), GFP_KERNEL)?;
        // Charging takes the mmap lock, and so does uncharging, on error: not under it.
        for n in mirrors {
            let pages = n.data().size as usize / SZ_4K as usize;
            charges.push(Some(LockedVm::charge(mm, pages)?), GFP_KERNEL)?;
        }
        // None is taken yet: `read_begin` may wait for an invalidation.
        for n in mirrors {
            seqs.push(n.read_begin(), GFP_KERNEL)?;
        }
        if hold {
            if waiters.len() < mirrors.len() {
                return Err(EINVAL);
            }
            let mmap = mm.mmap_read_lock();
            for ((n, waiter), &seq) in mirrors.iter().zip(waiters.iter_mut()).zip(seqs.iter()) {
                let m = n.data();
                let (cpu, size) = (m.cpu, m.size as usize);
                let patience = range_lock::patience_ms(1000, size);
                let range = waiter.lock(cpu, cpu + size, patience);
                let pages = match PinnedPages::pin_longterm_locked(&mmap, cpu, size, m.write) {
                    Ok(pages) => Ok((pages, Some(range))),
                    Err(e) if e == EFAULT => Err(EFAULT),
                    Err(e) if e == ENOMEM && n.check_retry(seq) => return Err(EAGAIN),
                    Err(e) => return Err(e),
                };
                // There is room for every mirror.
                pinned.push(pages, GFP_KERNEL)?;
            }
        } else {
            for _ in mirrors {
                // All pinned below, without the mmap lock held throughout.
                pinned.push(Err(EFAULT), GFP_KERNEL)?;
            }
        }
        let retry = pinned.iter().any(|p| p.is_err());
        let mut out = KVVec::with_capacity(mirrors.len(), GFP_KERNEL)?;
        for (i, p) in pinned.into_iter().enumerate() {
            let (pages, mut range) = match p {
                Ok(p) => p,
                Err(_) => {
                    // Not pinned under the lock: left for the second pass.
                    out.push(Err(EFAULT), GFP_KERNEL)?;
                    continue;
                }
            };
            if retry {
                // The second pass pins without the mmap lock held throughout.
                range = None;
            }
            let charge = charges[i].take().ok_or(EINVAL)?;
            out.push(
                Ok(Self {
                    pins: Some(Pins::held(pages, charge, stats)?),
                    seq: seqs[i],
                    range,
                }),
                GFP_KERNEL,
            )?;
        }
        for (i, n) in mirrors.iter().enumerate() {
            let Some(charge) = charges[i].take() else {
                continue;
            };
            // With the mmap lock held, a fault cannot wait for a userfaultfd handler; without it,
            // it may. The sequence number was read before: if the range changed since, the
            // pins are checked against a snapshot.
            let m = n.data();
            out[i] = match PinnedPages::pin_longterm(m.cpu, m.size as usize, m.write) {
                Ok(pages) => Ok(Self {
                    pins: Some(Pins::held(pages, charge, stats)?),
                    seq: seqs[i],
                    range: None,
                }),
                Err(e) if e == EFAULT => Err(EFAULT),
                // As under the lock: the range changed while its pages were migrated.
                Err(e) if e == ENOMEM && n.check_retry(seqs[i]) => return Err(EAGAIN),
                Err(e) => return Err(e),
            };
        }
        Ok(out)
    }

    /// Releases the range, keeping the pins.
    pub(crate) fn release_range(&mut self) {
        self.range = None;
    }
}

/// Pages of a userptr pinned long-term, charged to `RLIMIT_MEMLOCK` of the VM's process.
pub(crate) struct Pins {
    /// The pins and their charge; `None` only while being dropped.
    held: Option<(PinnedPages, LockedVm)>,
    stats: Arc<Stats>,
    /// The next pins of the VM's chain of stale pins, so that an invalidation can hand pins over
    /// without allocating.
    next: Option<KBox<Pins>>,
}

impl Pins {
    fn held(pages: PinnedPages, charge: LockedVm, stats: &Arc<Stats>) -> Result<KBox<Self>> {
        let npages = pages.len() as u64;
        let pins = KBox::new(
            Self {
                held: Some((pages, charge)),
                stats: stats.clone(),
                next: None,
            },
            GFP_KERNEL,
        )?;
        stats.pinned_pages.fetch_add(npages, Ordering::Relaxed);
        Ok(pins)
    }

    /// Chains `next` after these pins.
    pub(crate) fn set_next(&mut self, next: Option<KBox<Pins>>) {
        self.next = next;
    }

    /// The pinned pages.
    pub(crate) fn pages(&self) -> &[*mut bindings::page] {
        self.held.as_ref().map_or(&[], |(pages, _)| pages.pages())
    }

    /// The frames of the pinned pages (none while being dropped).
    pub(crate) fn frames(&self) -> Option<PinnedFrames<'_>> {
        self.held.as_ref().map(|(pages, _)| pages.frames())
    }

    /// Whether the pinned pages are those a current snapshot of the same range shows the CPU
    /// mapping, writable where `write`: if an invalidation overtook the pinning (an unmap, or a
    /// write-protection), they are not.
    pub(crate) fn matches(&self, valid: &Valid<'_>, write: bool) -> bool {
        let base = valid.start();
        let Some(frames) = self.frames() else {
            return false;
        };
        valid.len() == self.pages().len()
            && (0..valid.len()).all(|i| {
                valid
                    .at(base + i * SZ_4K as usize)
                    .is_some_and(|h| h.pfn() == frames.pfn(i) && (!write || h.is_writable()))
            })
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        // Unpinned and uncharged first, so that whoever sees the count drop may use the charge.
        let n = self.pages().len() as u64;
        drop(self.held.take());
        self.stats.pinned_pages.fetch_sub(n, Ordering::Relaxed);
        // The rest of a chain, one link at a time rather than recursively.
        let mut next = self.next.take();
        while let Some(mut pins) = next {
            next = pins.next.take();
            drop(pins);
        }
    }
}

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
    write_frames(pt, va, npages, true, &PinFrames { frames, write })
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

/// The frames of pinned pages, writable if `write` (and pinned for writing).
struct PinFrames<'a> {
    frames: PinnedFrames<'a>,
    write: bool,
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

    /// Pins say which pages are consecutive pages of one folio by their `struct page`s alone.
    fn huge_block(&self, i: usize) -> Option<Frame<'a>> {
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

#[kernel::kunit::kunit_tests(hmmgpu_mirror)]
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
