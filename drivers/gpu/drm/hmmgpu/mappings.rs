// SPDX-License-Identifier: GPL-2.0

//! A VM's mappings: what each maps, and the table that finds, adds and removes them in
//! O(log n), for a VM of a million mappings.
//!
//! The table is a red-black tree keyed by the address just past each mapping. Mappings never
//! overlap, so those ends are unique, and the first mapping whose end lies after an address is
//! the only one that may hold it: one lower-bound search answers "what is mapped at `va`", "does
//! anything overlap `[lo, hi)`" and "where does a run of mappings start".

use crate::{
    frames,
    gem::Object,
    mirror::Mirror,
    page_table::{PageTable, SZ_4K},
    vm::{push_within_capacity, State},
};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec, KVec},
    drm::gem::shmem,
    mm::{interval_notifier::IntervalNotifier, notifier_lock::NotifierGuard},
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::Arc,
};

/// What a mapping maps.
pub(crate) enum Backing {
    /// Pages of a GEM object, those of the mapping (or of the mapping it was split from), kept
    /// resident while mapped.
    Bo(shmem::PinnedPages<Object>),
    /// A range of the VM's process, mirrored. Shared with the unbinds still to clear the entries
    /// of a mapping this one is a piece of ([`crate::vm::Unmapped`]).
    Userptr(Arc<IntervalNotifier<Mirror>>),
}

/// A mapping of a VM.
pub(crate) struct Mapping {
    pub(crate) va: u64,
    pub(crate) size: u64,
    /// The object's page at `va`.
    pub(crate) first_page: usize,
    pub(crate) write: bool,
    pub(crate) backing: Backing,
}

impl Mapping {
    pub(crate) fn end(&self) -> u64 {
        self.va + self.size
    }

    /// Clears the mapping's entries (marking the pages a userptr mapping may have written
    /// dirty), and tells its mirror, if any, that the mapping is going: its invalidations must
    /// not touch the page table any more.
    pub(crate) fn remove_locked(&self, guard: &mut NotifierGuard<'_, State>) {
        match self.mirror() {
            Some(n) => {
                n.data().clear_entries(&mut guard.pt, self.va, self.size);
                let state = n.data().state.access_mut(guard);
                state.removed = true;
                state.mapped = false;
            }
            None => {
                guard.pt.clear(self.va, self.size);
            }
        }
    }

    /// Removes the mapping as [`Mapping::remove_locked`] does, except that the entries of the
    /// ranges in `keep` (sorted, inside the mapping) stay: pieces of a userptr mapping that an
    /// unbind split keep them (see [`Vm::unmap`]).
    ///
    /// [`Vm::unmap`]: crate::vm::Vm::unmap
    pub(crate) fn remove_keeping_locked(
        &self,
        guard: &mut NotifierGuard<'_, State>,
        keep: &[(u64, u64)],
    ) {
        let Some(n) = self.mirror() else {
            return self.remove_locked(guard);
        };
        let mut at = self.va;
        let ranges = keep
            .iter()
            .map(|&(lo, hi)| (lo.max(self.va), hi.min(self.end())))
            .filter(|&(lo, hi)| lo < hi);
        for (lo, hi) in Iterator::chain(ranges, Some((self.end(), self.end()))) {
            if lo > at {
                n.data().clear_entries(&mut guard.pt, at, lo - at);
            }
            at = at.max(hi);
        }
        let state = n.data().state.access_mut(guard);
        state.removed = true;
        state.mapped = false;
    }

    /// Writes the entries of a GEM object's mapping.
    pub(crate) fn map_bo(&self, pt: &mut PageTable) -> Result {
        self.map_bo_part(pt, self.va, self.end())
    }

    /// Writes the entries of `[lo, hi)`, inside a GEM object's mapping.
    pub(crate) fn map_bo_part(&self, pt: &mut PageTable, lo: u64, hi: u64) -> Result {
        let Backing::Bo(pages) = &self.backing else {
            return Ok(());
        };
        if lo < self.va || hi > self.end() || lo >= hi {
            return Err(EINVAL);
        }
        // The pins hold the object's pages from `pages.first()` on, at least this mapping's.
        let first = self.first_page + ((lo - self.va) / SZ_4K) as usize;
        let start = first.checked_sub(pages.first()).ok_or(EINVAL)?;
        let slice = pages.pages().get(start..).ok_or(EINVAL)?;
        let write = self.write;
        let frames = |i: usize| {
            // SAFETY: `pages` keeps the pages resident while the mapping exists, and the
            // mapping's entries are cleared before it is dropped.
            slice
                .get(i)
                .map(|&p| unsafe { frames::page_frame(p, write) })
        };
        frames::write_entries(pt, lo, ((hi - lo) / SZ_4K) as usize, false, frames)
    }

    pub(crate) fn mirror(&self) -> Option<&IntervalNotifier<Mirror>> {
        match &self.backing {
            Backing::Userptr(n) => Some(&**n),
            Backing::Bo(_) => None,
        }
    }
}

/// Room for a mapping in a [`Mappings`], allocated before anything is changed.
pub(crate) type Room = RBTreeNodeReservation<u64, Mapping>;

/// A VM's mappings, sorted by address and never overlapping, and the ranges that queued unbinds
/// took mappings out of but whose entries they have not cleared yet.
///
/// # Invariants
///
/// Each mapping is keyed by its end; `len` and `userptrs` count the mappings and those of them
/// that mirror process memory.
pub(crate) struct Mappings {
    tree: RBTree<u64, Mapping>,
    len: usize,
    userptrs: usize,
    /// `(lo, hi, ticket)`: the entries of `[lo, hi)` are cleared by the queued bind `ticket`
    /// (see [`crate::vm::Vm::wait_for_ticket`]); a range stays listed until a bind call has
    /// seen that bind done and pruned its tables.
    clearing: KVec<(u64, u64, u64)>,
}

impl Mappings {
    pub(crate) fn new() -> Self {
        Self {
            tree: RBTree::new(),
            len: 0,
            userptrs: 0,
            clearing: KVec::new(),
        }
    }

    /// Lists `[lo, hi)` as cleared by the queued bind `ticket`.
    pub(crate) fn add_clearing(&mut self, lo: u64, hi: u64, ticket: u64) -> Result {
        self.clearing.push((lo, hi, ticket), GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// The last ticket of the binds after `done` that are to clear entries in `[lo, hi)`.
    pub(crate) fn clearing_over(&self, lo: u64, hi: u64, done: u64) -> Option<u64> {
        self.clearing
            .iter()
            .filter(|&&(l, h, t)| t > done && l < hi && lo < h)
            .map(|&(_, _, t)| t)
            .max()
    }

    /// Whether a mapping, or a queued bind's entries to clear, needs `[lo, hi)`.
    pub(crate) fn needs(&self, lo: u64, hi: u64) -> bool {
        self.overlaps(lo, hi) || self.clearing.iter().any(|&(l, h, _)| l < hi && lo < h)
    }

    /// Takes out the listed ranges whose binds are done (ticket at most `done`), to prune.
    pub(crate) fn take_cleared(&mut self, done: u64) -> Result<KVec<(u64, u64)>> {
        let mut cleared = KVec::new();
        if self.clearing.iter().all(|&(_, _, t)| t > done) {
            return Ok(cleared);
        }
        let mut still = KVec::with_capacity(self.clearing.len(), GFP_KERNEL_ACCOUNT)?;
        for &(lo, hi, ticket) in self.clearing.iter() {
            match ticket > done {
                true => still.push((lo, hi, ticket), GFP_KERNEL_ACCOUNT)?,
                false => cleared.push((lo, hi), GFP_KERNEL_ACCOUNT)?,
            }
        }
        self.clearing = still;
        Ok(cleared)
    }

    /// The number of mappings.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The number of userptr mappings.
    pub(crate) fn userptrs(&self) -> usize {
        self.userptrs
    }

    /// The first mapping that ends after `va`.
    pub(crate) fn first_after(&self, va: u64) -> Option<&Mapping> {
        self.tree.lower_bound(&va.checked_add(1)?).map(|(_, m)| m)
    }

    /// Whether a mapping overlaps `[lo, hi)`.
    pub(crate) fn overlaps(&self, lo: u64, hi: u64) -> bool {
        self.first_after(lo).is_some_and(|m| m.va < hi)
    }

    /// The mapping that holds `va`.
    pub(crate) fn find(&self, va: u64) -> Option<&Mapping> {
        self.first_after(va).filter(|m| m.va <= va)
    }

    /// The mirror whose mapping starts at `va`.
    pub(crate) fn mirror_at(&self, va: u64) -> Option<&IntervalNotifier<Mirror>> {
        self.find(va).filter(|m| m.va == va)?.mirror()
    }

    /// The mappings that overlap `[lo, hi)`, in address order.
    pub(crate) fn overlapping(&self, lo: u64, hi: u64) -> impl Iterator<Item = &Mapping> {
        let mut next = self.first_after(lo);
        core::iter::from_fn(move || {
            let m = next.filter(|m| m.va < hi)?;
            next = self.first_after(m.end());
            Some(m)
        })
    }

    /// Every mapping, in address order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Mapping> {
        self.tree.values()
    }

    /// Adds `mapping`, which overlaps none, in `room`. Never fails.
    pub(crate) fn insert(&mut self, room: Room, mapping: Mapping) {
        self.userptrs += usize::from(mapping.mirror().is_some());
        self.len += 1;
        let _ = self.tree.insert(room.into_node(mapping.end(), mapping));
    }

    /// Removes the mappings that overlap `[lo, hi)`, into `out`, which must have room for them
    /// ([`Self::overlapping`] counts them). Never allocates.
    pub(crate) fn remove_overlapping(&mut self, lo: u64, hi: u64, out: &mut KVVec<Mapping>) {
        while let Some(m) = self.first_after(lo).filter(|m| m.va < hi) {
            let (end, userptr) = (m.end(), m.mirror().is_some());
            let Some(m) = self.tree.remove(&end) else {
                break;
            };
            self.len -= 1;
            self.userptrs -= usize::from(userptr);
            if push_within_capacity(out, m).is_err() {
                break;
            }
        }
    }

    /// Removes every mapping.
    pub(crate) fn take_all(&mut self) -> RBTree<u64, Mapping> {
        self.len = 0;
        self.userptrs = 0;
        core::mem::take(&mut self.tree)
    }
}

/// Room for `n` mappings.
pub(crate) fn room(n: usize) -> Result<KVec<Room>> {
    let mut rooms = KVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
    for _ in 0..n {
        rooms.push(
            RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?,
            GFP_KERNEL_ACCOUNT,
        )?;
    }
    Ok(rooms)
}

#[kernel::kunit::kunit_tests(hmmgpu_mappings)]
mod tests {
    use super::*;

    #[test]
    fn ranges_to_clear_stay_until_their_bind_is_done() -> Result {
        let mut m = Mappings::new();
        m.add_clearing(0x1000, 0x3000, 2)?;
        m.add_clearing(0x2000, 0x5000, 3)?;
        // With bind 1 done, both are to clear; ranges that only touch do not overlap.
        assert_eq!(m.clearing_over(0x2000, 0x2001, 1), Some(3));
        assert_eq!(m.clearing_over(0x1000, 0x2000, 1), Some(2));
        assert_eq!(m.clearing_over(0, 0x1000, 1), None);
        assert_eq!(m.clearing_over(0x5000, 0x6000, 1), None);
        // Bind 2 done: its range is not waited for, but its tables are needed until pruned.
        assert_eq!(m.clearing_over(0x1000, 0x2000, 2), None);
        assert!(m.needs(0x1000, 0x2000));
        assert!(m.take_cleared(1)?.is_empty());
        let cleared = m.take_cleared(2)?;
        assert_eq!(&cleared[..], &[(0x1000, 0x3000)]);
        assert!(!m.needs(0x1000, 0x2000));
        assert!(m.needs(0x2000, 0x3000));
        assert_eq!(m.take_cleared(3)?.len(), 1);
        assert!(!m.needs(0, u64::MAX));
        Ok(())
    }
}
