// SPDX-License-Identifier: GPL-2.0

//! What an unbind takes out of a VM's mapping table, and when it clears their entries: at once
//! (a synchronous bind, or an unfenced one in its turn), or in the turn of a fenced bind, whose
//! call took them out (see [`crate::bind`]). Between the two, the mappings taken out keep their
//! entries and their notifiers, and the pieces left of them are in the table already.

use crate::{mappings::Mapping, mirror::Mirror, vm::State};
use kernel::{
    alloc::{KBox, KVVec, KVec},
    mm::{
        interval_notifier::{IntervalNotifier, Seq},
        notifier_lock::NotifierGuard,
    },
    sync::Arc,
};

/// Where a bind's unmaps clear the entries of what they take out of the mapping table.
pub(crate) enum Clearing<'a> {
    /// At once: a synchronous bind, or a queued one running.
    Now,
    /// In the turn of the fenced bind `ticket` on the bind queue, which applies the unbinds it
    /// finds in `unmapped` (see [`crate::bind`]).
    InTurn {
        ticket: u64,
        unmapped: &'a mut KVec<KBox<Unmapped>>,
    },
}

impl Clearing<'_> {
    /// The ticket of the fenced bind, if it is one.
    pub(crate) fn own(&self) -> Option<u64> {
        match self {
            Self::Now => None,
            Self::InTurn { ticket, .. } => Some(*ticket),
        }
    }
}

/// What an unbind took out of the mapping table: the mappings, whose entries stay until it is
/// applied ([`Unmapped::apply`]), and the pieces it left of them, in the table already.
pub(crate) struct Unmapped {
    /// The unbound range.
    pub(crate) va: u64,
    pub(crate) end: u64,
    /// The mappings taken out, in address order.
    pub(crate) old: KVVec<Mapping>,
    pub(crate) pieces: KVec<Piece>,
    /// The next in the VM's list of unbinds to release.
    pub(crate) next: Option<KBox<Unmapped>>,
}

/// A piece an unbind left of a mapping.
pub(crate) struct Piece {
    pub(crate) va: u64,
    pub(crate) end: u64,
    /// A userptr piece's mirror, and the sequence number from which it may keep the entries the
    /// mapping has for its range (see [`crate::mode::Coherence::split`]).
    pub(crate) mirror: Option<(Arc<IntervalNotifier<Mirror>>, Option<Seq>)>,
}

impl Unmapped {
    /// Clears the entries of the mappings taken out, but those the pieces keep. Never allocates.
    ///
    /// A userptr piece keeps the entries of its range if it has entries of its own (it was
    /// mirrored, or pinned and mapped, since the unbind: an invalidation of its range would
    /// have cleared them and unmapped it), or if its mode lets it inherit the mapping's, the
    /// mapping it comes from has current entries, and no invalidation of the piece came since
    /// its sequence number: then none cleared the mapping's entries either (an invalidation of
    /// the piece's range is one of the mapping's). Otherwise it starts unmapped, a new mirror
    /// to mirror again, and the mapping's entries go. Jobs published before the turn may use
    /// what the pieces keep. No 2 MiB entry crosses an edge of the hole: the unbind split them
    /// ([`crate::page_table::PageTable::split_huge`]). GEM pieces keep their pages: their
    /// entries are written again (the tables stayed reserved).
    pub(crate) fn apply(&self, guard: &mut NotifierGuard<'_, State>) {
        let mut keep = [(0, 0); 2];
        let mut kept = 0;
        for p in self.pieces.iter() {
            let Some((n, seq)) = &p.mirror else { continue };
            let piece = n.data();
            let state = piece.state.access_mut(guard);
            // From now on the mapping's entries in its range are the piece's, or gone.
            state.inherits = false;
            if state.removed {
                // Unbound since: its range goes with the rest.
                continue;
            }
            let (own, cut) = (state.mapped, state.cut.is_some());
            let from = self.old.iter().find(|m| m.va <= p.va && p.end <= m.end());
            let current = from
                .and_then(|m| m.mirror())
                .is_some_and(|o| o.data().state.access_mut(guard).mapped);
            let inherit = current && seq.is_some_and(|s| !n.attach(s).check_retry());
            // A piece taken out since, with pieces of its own, by a fenced unbind still to take
            // its turn keeps its range whatever it holds: it and its pieces clear what
            // invalidations take from it, and that turn clears the rest.
            if !(own || inherit || cut) {
                continue;
            }
            if inherit && !own {
                // The entries it inherits are its own from now on: for its pieces to inherit, if
                // cut (then out of the mapping table, so no submission mirrors it: its listing
                // stays as it is).
                let state = piece.state.access_mut(guard);
                if !cut {
                    state.listing.validate();
                }
                state.mapped = true;
            }
            // There is room: an unbind leaves two pieces at most.
            if let Some(slot) = keep.get_mut(kept) {
                *slot = (p.va, p.end);
                kept += 1;
            }
        }
        for m in self.old.iter() {
            m.remove_keeping_locked(guard, &keep[..kept]);
        }
        // The entries of GEM pieces went with their mappings'.
        for p in self.pieces.iter().filter(|p| p.mirror.is_none()) {
            if let Some(m) = self.old.iter().find(|m| m.va <= p.va && p.end <= m.end()) {
                let _ = m.map_bo_part(&mut guard.pt, p.va, p.end);
            }
        }
    }

    /// The start of the first mapping taken out.
    pub(crate) fn lo(&self) -> u64 {
        self.old.first().map_or(self.va, |m| m.va.min(self.va))
    }

    /// The end of the last mapping taken out.
    pub(crate) fn hi(&self) -> u64 {
        self.old.last().map_or(self.end, |m| m.end().max(self.end))
    }
}

impl Drop for Unmapped {
    fn drop(&mut self) {
        // The rest of a list, one link at a time rather than recursively.
        let mut next = self.next.take();
        while let Some(mut unmapped) = next {
            next = unmapped.next.take();
            drop(unmapped);
        }
    }
}
