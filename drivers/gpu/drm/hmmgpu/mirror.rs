// SPDX-License-Identifier: GPL-2.0

//! Userptr mirrors: how a userptr mapping of a GPU VM follows the CPU page table.
//!
//! A [`Mirror`] is the data of the interval notifier that watches the CPU range a userptr
//! mapping names. Its invalidation callback is where the GPU loses access to pages the CPU is
//! about to change. The framework calls it with the VM's notifier lock held and the
//! invalidation's sequence number set; what it does depends on the VM's mode
//! ([`Coherence::invalidate`]):
//!
//! - in fault mode it clears the entries of the range; the engine translates every access under
//!   the notifier lock, so no job touches the old pages once the lock is released, and the next
//!   access faults and mirrors the new ones;
//! - in prefault and pinned modes the GPU cannot fault, so the callback puts the mirror on the
//!   VM's invalidated list, waits for the VM's last job and clears the entries (see
//!   [`invalidated`]).
//!
//! Entries that let the GPU write are cleared with their pages marked dirty (see
//! [`kernel::mm::dirty`]), so that the core MM never treats a page the GPU wrote as clean: not in
//! an invalidation (reclaim, writeback, migration, unmap), and not when the mapping goes.
//!
//! The callback never allocates.
//!
//! [`Coherence::invalidate`]: crate::mode::Coherence::invalidate
//! [`invalidated`]: crate::invalidated
//!
//! C header: [`include/linux/mmu_notifier.h`](srctree/include/linux/mmu_notifier.h)

use crate::{
    mode::Completion,
    page_table::{PageTable, SZ_4K},
    pins::Pins,
    vm::{State, Stats, Vm},
};
use kernel::{
    alloc::KBox,
    mm::{
        dirty,
        hmm::{Fault, Range},
        interval_notifier::{Event, IntervalNotifier, Invalidate, InvalidateRange},
        invalidated::Listing,
        notifier_lock::{NotifierGuard, NotifierLock},
    },
    prelude::*,
    sync::{Arc, LockedBy},
};

/// The state of a mirror that the VM's notifier lock protects.
pub(crate) struct MirrorState {
    /// Whether the mirror must be mirrored again before a job may use it, and whether it is on
    /// the VM's invalidated list (modes whose GPU cannot fault).
    pub(crate) listing: Listing,
    /// The mapping is being removed: its entries are gone and the range is not the mapping's
    /// any more, so invalidations have nothing to do (and must not clear what is mapped there
    /// now).
    pub(crate) removed: bool,
    /// The mirror may have entries in the page table (modes whose GPU cannot fault): set when it
    /// is mirrored, cleared with its entries. An invalidation of a mirror without entries has
    /// nothing to wait for.
    pub(crate) mapped: bool,
    /// The pins the entries point to (pinned mode).
    pub(crate) pins: Option<KBox<Pins>>,
    /// Taken out of the mapping table by a fenced unbind that left pieces of it, whose turn has
    /// not come: the GPU range that unbind unmapped. Its entries stay until then, but those in
    /// the pieces' ranges may be the pieces' own by now, and the pieces' notifiers clear them
    /// when their range is invalidated (see `inherits`): an invalidation clears only the part
    /// of this range it covers, and keeps the pins (entries in the pieces' ranges may point to
    /// them) until the mapping goes.
    pub(crate) cut: Option<(u64, u64)>,
    /// A piece a fenced unbind left of a mapping, before that unbind's turn: entries of the
    /// mapping it comes from may still be in its range, so an invalidation clears the range
    /// even when the piece has no entries of its own.
    pub(crate) inherits: bool,
}

impl MirrorState {
    /// What `[va, va + len)` covers of the range a fenced unbind cut the mapping at (see `cut`),
    /// possibly empty (`lo >= hi`); `None` if no unbind cut it.
    pub(crate) fn cut_in(&self, va: u64, len: u64) -> Option<(u64, u64)> {
        self.cut.map(|(lo, hi)| (lo.max(va), hi.min(va + len)))
    }
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
    pub(crate) state: LockedBy<MirrorState, State>,
}

impl Mirror {
    pub(crate) fn new(vm: &Arc<Vm>, va: u64, cpu: usize, size: u64, write: bool) -> Self {
        Self {
            vm: vm.clone(),
            va,
            cpu,
            size,
            write,
            state: LockedBy::new(
                &vm.state,
                MirrorState {
                    listing: Listing::new(),
                    removed: false,
                    mapped: false,
                    pins: None,
                    cut: None,
                    inherits: false,
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

    /// Clears the whole mapping's entries and moves its pins to the VM's stale pins, to release
    /// outside the lock. Never allocates.
    pub(crate) fn clear_locked(&self, guard: &mut NotifierGuard<'_, State>) {
        self.clear_entries(&mut guard.pt, self.va, self.size);
        let state = self.state.access_mut(guard);
        state.mapped = false;
        if let Some(pins) = state.pins.take() {
            guard.push_stale(pins);
        }
    }

    /// Clears the entries of GPU range `[va, va + len)` of the mapping, the way the VM's mode
    /// does ([`Coherence::clear`]). Never allocates.
    ///
    /// Must be called with the notifier lock held (it guards `pt`), from the invalidation
    /// callback or with the mapping still watched, so that the pages are still mapped by the CPU.
    ///
    /// [`Coherence::clear`]: crate::mode::Coherence::clear
    pub(crate) fn clear_entries(&self, pt: &mut PageTable, va: u64, len: u64) {
        self.vm.mode.clear(pt, va, len);
    }

    /// The whole mapping's range of the CPU page table, to snapshot.
    pub(crate) fn range<'n>(n: &'n IntervalNotifier<Mirror>) -> Result<Range<'n, Mirror>> {
        let m = n.data();
        Range::new(n, m.cpu, m.size as usize)
    }
}

/// Clears the entries of `[va, va + len)`, marking dirty every page a writable entry mapped: the
/// GPU may have written it. Never allocates.
///
/// Must be called with the notifier lock held, from an invalidation callback of the range or
/// with the range's mapping still watched: the entries were written from a current snapshot, and
/// every change of the CPU page table of the range clears them first, under the notifier lock.
pub(crate) fn clear_dirtying(pt: &mut PageTable, va: u64, len: u64) {
    pt.clear_each(va, len, |t| {
        if t.writable {
            let pages = (t.size.bytes() / SZ_4K) as usize;
            // SAFETY: The entry was written from a current snapshot of the range, and every
            // change of the CPU page table of the range clears it first, under the notifier
            // lock, which the caller holds: the CPU still maps its pages, and keeps them mapped
            // until the lock is released (or the callback returns).
            unsafe { dirty::set_pfns_dirty((t.phys / SZ_4K) as usize, pages) };
        }
    });
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
        if range.event() == Event::Release && vm.mode.completion() == Completion::Fence {
            // The process is exiting: the jobs submitted so far end now rather than hold up
            // exit, which waits for them (their invalidations do).
            vm.cancel_jobs(guard);
        }
        if m.state.access_mut(guard).removed {
            return true;
        }
        Stats::inc(&vm.stats.invalidations);
        let Some((va, len)) = m.overlap(range.start(), range.end()) else {
            return true;
        };
        vm.mode.invalidate(m, range, va, len, guard)
    }
}
