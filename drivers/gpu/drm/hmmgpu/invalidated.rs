// SPDX-License-Identifier: GPL-2.0

//! The invalidated list of a VM whose GPU cannot fault (prefault and pinned modes), and the rule
//! that publishes a job (Documentation/gpu/drm-vm-bind-locking.rst, "userptr gpu_vmas": xe's
//! invalidated list, our own design).
//!
//! An invalidation of a mirror with entries first puts the mirror on the list and bumps the
//! VM's generation, then waits for the VM's last job (whose fence was published under the
//! notifier lock), then clears the entries. From the moment it lists the mirror, a submission
//! publishes a job only once it has mirrored the mirror again (or found that it cannot be),
//! which waits for the invalidation to end:
//!
//! 1. [`Vm::take_invalid`] takes, under the notifier lock, the mirrors listed and the
//!    generation;
//! 2. the mode mirrors them again without the lock ([`Coherence::revalidate`]), then writes
//!    their entries under it;
//! 3. [`Vm::finish`], under the same hold of the lock, publishes the job's fence only if no
//!    mirror with entries was invalidated since step 1 and no invalidation is between listing
//!    its mirror and clearing its entries; otherwise the submission starts again at step 1.
//!
//! So no job is published over entries being cleared, and no job runs on entries written from a
//! snapshot an invalidation overtook. The list and the rule are the framework's
//! ([`kernel::mm::invalidated`]); the VM keeps them in its notifier lock, keyed by the GPU
//! address of each mirror's mapping, and makes room on the list for every mirror at bind
//! ([`Vm::reserve_invalid`]).
//!
//! [`Coherence::revalidate`]: crate::mode::Coherence::revalidate

use crate::{
    mappings::Mappings,
    mirror::Mirror,
    vm::{is_timed_out, State, Stats, Vm, MAX_ROUNDS},
};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    dma_fence::Fence,
    mm::{
        interval_notifier::InvalidateRange,
        invalidated::{Invalidated, Listing, Listings},
        notifier_lock::NotifierGuard,
    },
    prelude::*,
    types::ARef,
};

/// Where a submission is in its rounds of mirroring.
pub(crate) struct Round<'f> {
    /// Which round this is, from 0.
    pub(crate) index: u32,
    /// Mirrors found not mapped: left cleared this submission (jobs that touch them fault).
    /// Sorted at the start of each round, for [`Round::skips`].
    pub(crate) skip: KVVec<u64>,
    /// Whether the submitter is the VM's process (only it may pin).
    pub(crate) owner: bool,
    /// The round is to be tried again for a reason other than a race (pages a userfaultfd
    /// handler brought in, mirrors found not mapped): not counted in the `retries` statistic.
    pub(crate) again: bool,
    /// The generation the mirrors taken this round are as of.
    generation: u64,
    /// The job's fence, published when the round succeeds; `None` for a long-running VM.
    fence: Option<&'f ARef<Fence>>,
}

impl Round<'_> {
    /// Whether the mirror at `va` was found not mapped in a round before this one: in O(log n)
    /// of the mirrors found so far, which may be all of a VM's million. A round looks at `skip`
    /// only before it adds to it.
    pub(crate) fn skips(&self, va: u64) -> bool {
        self.skip.binary_search(&va).is_ok()
    }
}

/// One mirror's listing.
struct One<'m>(&'m Mirror);

impl<'l> Listings<u64, NotifierGuard<'l, State>> for One<'_> {
    fn listing<'a>(
        &'a self,
        _va: u64,
        g: &'a mut NotifierGuard<'l, State>,
    ) -> Option<&'a mut Listing> {
        Some(&mut self.0.state.access_mut(g).listing)
    }
}

/// The listings of the mirrors of a VM's mappings, by the GPU address of their mapping.
struct ByAddress<'b>(&'b Mappings);

impl<'l> Listings<u64, NotifierGuard<'l, State>> for ByAddress<'_> {
    fn listing<'a>(
        &'a self,
        va: u64,
        g: &'a mut NotifierGuard<'l, State>,
    ) -> Option<&'a mut Listing> {
        Some(&mut self.0.mirror_at(va)?.data().state.access_mut(g).listing)
    }
}

/// Marks `m` to be mirrored again, and lists it. Never allocates.
pub(crate) fn mark_invalid(m: &Mirror, guard: &mut NotifierGuard<'_, State>) {
    Invalidated::mark(guard, m.va, &One(m));
}

/// The GPU addresses of every userptr mapping of `b`.
fn every(b: &Mappings) -> impl Iterator<Item = u64> + '_ {
    b.iter().filter(|m| m.mirror().is_some()).map(|m| m.va)
}

/// What [`invalidate_after_jobs`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It would have had to wait, and the invalidation may not block.
    Refused,
    /// The mirror had no entries, or its mapping went: only listed.
    Listed,
    /// The mirror's entries were cleared, its pins handed to the VM's stale pins.
    Cleared,
}

/// The invalidation of GPU range `[va, va + len)` of mirror `m` in a VM whose GPU cannot fault:
/// lists the mirror, waits for the VM's last job if the mirror has entries, then clears them.
/// Never allocates.
///
/// A mapping a fenced unbind took out with pieces left (`cut`) clears only what it covers of the
/// range that unbind unmapped (all it covers, if the unbind came while it waited for the jobs:
/// the pieces came after the invalidation began, which they are not told of), and is not listed
/// (it is out of the mapping table); a piece that may hold entries of the mapping it comes from
/// (`inherits`) clears its range even without entries of its own. So each entry is cleared by the notifier of the range it maps, whoever
/// wrote it, and no piece loses entries to an invalidation it is not told of.
pub(crate) fn invalidate_after_jobs(
    m: &Mirror,
    range: &InvalidateRange<'_>,
    va: u64,
    len: u64,
    guard: &mut NotifierGuard<'_, State>,
) -> Outcome {
    let state = m.state.access_mut(guard);
    let (mapped, inherits, was_cut) = (state.mapped, state.inherits, state.cut.is_some());
    match state.cut_in(va, len) {
        // Only the pieces' ranges: theirs to clear.
        Some((lo, hi)) if lo >= hi => return Outcome::Listed,
        Some(_) => {}
        None => {
            // The mirror is listed first, and the generation bumped: from then on a submission
            // publishes a job only once it has mirrored it again, which waits for this
            // invalidation to end.
            mark_invalid(m, guard);
            if !mapped && !inherits {
                // Nothing of the mirror is in the page table: no job reaches its pages.
                return Outcome::Listed;
            }
        }
    }
    // Let jobs that may use the pages finish first. Their fences were published under the lock.
    let wait = guard.last_fence.clone().filter(|f| !f.is_signaled());
    if wait.is_some() && !range.may_block() {
        return Outcome::Refused;
    }
    guard
        .invalidated
        .publication()
        .begin_clearing(wait.is_some());
    if let Some(fence) = wait {
        guard.do_unlocked(|| fence.wait_uninterruptible());
        guard.invalidated.publication().end_clearing();
        // The mapping may have gone meanwhile: its entries went with it, and what is mapped at
        // its address now is another mapping's.
        if m.state.access_mut(guard).removed {
            return Outcome::Listed;
        }
    }
    // Taken again: the wait dropped the lock, and a fenced unbind's turn may have come.
    let state = m.state.access_mut(guard);
    if let Some((lo, hi)) = state.cut_in(va, len) {
        // Cut while we waited: the pieces, inserted during this invalidation, are not told of it
        // (nor can they map anything before it ends), so the entries of the whole range are
        // still ours to clear, the pieces' ranges too.
        let (lo, hi) = match was_cut {
            true => (lo, hi),
            false => (va.max(m.va), (va + len).min(m.va + m.size)),
        };
        if lo < hi {
            m.clear_entries(&mut guard.pt, lo, hi - lo);
        }
        return Outcome::Listed;
    }
    if !state.mapped {
        // Only the entries of the mapping it comes from: the whole range, to mirror again.
        state.inherits = false;
        m.clear_entries(&mut guard.pt, m.va, m.size);
        return Outcome::Listed;
    }
    state.inherits = false;
    m.clear_locked(guard);
    Outcome::Cleared
}

impl Vm {
    /// The exec loop of the locking document: mirrors the invalidated userptrs (and only them),
    /// then checks under the notifier lock that no invalidation raced, and if none did,
    /// publishes `fence` under it. Mirrors that cannot be mirrored (not mapped any more, not the
    /// submitter's process) are left cleared: jobs that touch them fault.
    pub(crate) fn validate(
        &self,
        b: &Mappings,
        owner: bool,
        fence: Option<&ARef<Fence>>,
    ) -> Result {
        let mut round = Round {
            index: 0,
            skip: KVVec::new(),
            owner,
            again: false,
            generation: 0,
            fence,
        };
        for index in 0..MAX_ROUNDS {
            round.index = index;
            if self.cancelled() {
                return Err(ENOENT);
            }
            let Some(todo) = self.take_invalid(b, &mut round)? else {
                return Ok(());
            };
            round.skip.sort_unstable();
            let done = match self.mode.revalidate(self, b, &todo, &mut round) {
                // Invalidations kept overtaking a snapshot until its deadline: another round.
                Err(e) if is_timed_out(&e) => false,
                r => r?,
            };
            if done {
                return Ok(());
            }
            if !core::mem::take(&mut round.again) {
                Stats::inc(&self.stats.retries);
            }
            // An invalidation waits for the last job before it clears its mirror's entries: so
            // do we, rather than spin until it is done.
            let busy = {
                let guard = self.state.lock();
                let mut guard = guard;
                let clearing = guard.invalidated.publication().is_clearing();
                guard.last_fence.clone().filter(|_| clearing)
            };
            if let Some(fence) = busy {
                fence.wait_interruptible(u64::MAX)?;
            }
        }
        Err(EAGAIN)
    }

    /// Takes the addresses of the mirrors to mirror again, and the generation they are as of,
    /// into `round`. When there are none (mostly nothing was invalidated since the last
    /// submission), publishes at once if it may and returns `None`.
    fn take_invalid(&self, b: &Mappings, round: &mut Round<'_>) -> Result<Option<KVVec<u64>>> {
        // Room for the listed mirrors, or all of them when the list overflowed: made without
        // the lock, and again if the list grew meanwhile.
        let mut want = {
            let mut guard = self.state.lock();
            if guard.invalidated.is_empty() {
                round.generation = guard.invalidated.publication().generation();
                if self.finish(b, &mut guard, round) {
                    return Ok(None);
                }
                return Ok(Some(KVVec::new()));
            }
            guard.invalidated.room(b.userptrs())
        };
        let (mut todo, mut guard) = loop {
            let todo = KVVec::with_capacity(want, GFP_KERNEL_ACCOUNT)?;
            let guard = self.state.lock();
            let need = guard.invalidated.room(b.userptrs());
            if need <= want {
                break (todo, guard);
            }
            want = need;
        };
        round.generation = Invalidated::take(&mut guard, &mut todo, &ByAddress(b), every(b));
        drop(guard);
        Ok(Some(todo))
    }

    /// Settles the invalidated list and publishes the round's fence, unless a mirror with
    /// entries was invalidated since the round took the list (it must be mirrored again first)
    /// or an invalidation is still to clear its mirror's entries. Returns whether it published.
    pub(crate) fn finish(
        &self,
        b: &Mappings,
        guard: &mut NotifierGuard<'_, State>,
        round: &Round<'_>,
    ) -> bool {
        let may = Invalidated::settle(guard, round.generation, &ByAddress(b), every(b));
        if may {
            if let Some(fence) = round.fence {
                guard.last_fence = Some(fence.clone());
            }
        }
        may
    }

    /// Makes room on the invalidated list for `n` mirrors.
    pub(crate) fn reserve_invalid(&self, n: usize) -> Result {
        Invalidated::reserve(&self.state, |s: &mut State| &mut s.invalidated, n)
    }
}
