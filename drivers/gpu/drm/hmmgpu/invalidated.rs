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
//! snapshot an invalidation overtook. The list never allocates under the lock: it has room for
//! every mirror of the VM ([`Vm::reserve_invalid`] makes it at bind), and if it overflows all
//! the same, every mirror is looked at.
//!
//! [`Coherence::revalidate`]: crate::mode::Coherence::revalidate

use crate::{
    mappings::{Mapping, Mappings},
    mirror::Mirror,
    vm::{is_timed_out, push_within_capacity, State, Stats, Vm, MAX_ROUNDS},
};
use kernel::{
    alloc::{flags::GFP_KERNEL, KVVec},
    dma_fence::Fence,
    mm::{interval_notifier::InvalidateRange, notifier_lock::NotifierGuard},
    prelude::*,
    types::ARef,
};

/// The invalidated list, in the VM's notifier lock.
pub(crate) struct Invalidated {
    /// The GPU addresses of mirrors invalidated since they were last mirrored, with room for
    /// every mirror of the VM.
    list: KVVec<u64>,
    /// The list ran out of room: every mirror must be looked at.
    walk_all: bool,
    /// How many times a mirror with entries was invalidated: a submission publishes its job only
    /// if no mirror was since it took the list.
    generation: u64,
    /// Invalidation callbacks between listing their mirror and clearing its entries (waiting
    /// for the last job): no job may be published meanwhile.
    clearing: u32,
}

impl Invalidated {
    pub(crate) fn new() -> Self {
        Self {
            list: KVVec::new(),
            walk_all: false,
            generation: 0,
            clearing: 0,
        }
    }

    /// Whether an invalidation is between listing its mirror and clearing its entries.
    pub(crate) fn clearing(&self) -> bool {
        self.clearing > 0
    }

    /// Puts the mirror at `va` on the list, and returns whether there was room (if not, every
    /// mirror is looked at). Never allocates.
    fn list(&mut self, va: u64) -> bool {
        let listed = push_within_capacity(&mut self.list, va).is_ok();
        self.walk_all |= !listed;
        listed
    }
}

/// Where a submission is in its rounds of mirroring.
pub(crate) struct Round<'f> {
    /// Which round this is, from 0.
    pub(crate) index: u32,
    /// Mirrors found not mapped: left cleared this submission (jobs that touch them fault).
    pub(crate) skip: KVVec<u64>,
    /// Whether the submitter is the VM's process (only it may pin).
    pub(crate) owner: bool,
    /// The generation the mirrors taken this round are as of.
    generation: u64,
    /// The job's fence, published when the round succeeds.
    fence: &'f ARef<Fence>,
}

/// Marks `m` to be mirrored again, and lists it. Never allocates.
pub(crate) fn mark_invalid(m: &Mirror, guard: &mut NotifierGuard<'_, State>) {
    let state = m.state.access(guard);
    state.invalid = true;
    if !state.listed {
        let listed = guard.invalidated.list(m.va);
        m.state.access(guard).listed = listed;
    }
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

/// The invalidation of mirror `m` in a VM whose GPU cannot fault: lists the mirror, waits for
/// the VM's last job if the mirror has entries, then clears them. Never allocates.
pub(crate) fn invalidate_after_jobs(
    m: &Mirror,
    range: &InvalidateRange<'_>,
    guard: &mut NotifierGuard<'_, State>,
) -> Outcome {
    if !m.state.access(guard).mapped {
        // Nothing of the mirror is in the page table: no job reaches its pages.
        mark_invalid(m, guard);
        return Outcome::Listed;
    }
    // Let jobs that may use the pages finish first. Their fences were published under the lock.
    // The mirror is listed first, and the generation bumped: from then on a submission publishes
    // a job only once it has mirrored it again, which waits for this invalidation to end.
    let wait = guard.last_fence.clone().filter(|f| !f.is_signaled());
    if wait.is_some() && !range.may_block() {
        return Outcome::Refused;
    }
    mark_invalid(m, guard);
    guard.invalidated.generation = guard.invalidated.generation.wrapping_add(1);
    if let Some(fence) = wait {
        guard.invalidated.clearing += 1;
        guard.do_unlocked(|| fence.wait_uninterruptible());
        guard.invalidated.clearing -= 1;
        // The mapping may have gone meanwhile: its entries went with it, and what is mapped at
        // its address now is another mapping's.
        if m.state.access(guard).removed {
            return Outcome::Listed;
        }
    }
    m.clear_locked(guard);
    Outcome::Cleared
}

impl Vm {
    /// The exec loop of the locking document: mirrors the invalidated userptrs (and only them),
    /// then checks under the notifier lock that no invalidation raced, and if none did,
    /// publishes `fence` under it. Mirrors that cannot be mirrored (not mapped any more, not the
    /// submitter's process) are left cleared: jobs that touch them fault.
    pub(crate) fn validate(&self, b: &Mappings, owner: bool, fence: &ARef<Fence>) -> Result {
        let mut round = Round {
            index: 0,
            skip: KVVec::new(),
            owner,
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
            let done = match self.mode.revalidate(self, b, &todo, &mut round) {
                // Invalidations kept overtaking a snapshot until its deadline: another round.
                Err(e) if is_timed_out(&e) => false,
                r => r?,
            };
            if done {
                return Ok(());
            }
            Stats::inc(&self.stats.retries);
            // An invalidation waits for the last job before it clears its mirror's entries: so
            // do we, rather than spin until it is done.
            let busy = {
                let guard = self.state.lock();
                guard
                    .last_fence
                    .clone()
                    .filter(|_| guard.invalidated.clearing())
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
        let room = |state: &State| match state.invalidated.walk_all {
            true => b.userptrs(),
            false => state.invalidated.list.len(),
        };
        let mut want = {
            let mut guard = self.state.lock();
            if guard.invalidated.list.is_empty() && !guard.invalidated.walk_all {
                round.generation = guard.invalidated.generation;
                if self.finish(b, &mut guard, round) {
                    return Ok(None);
                }
                return Ok(Some(KVVec::new()));
            }
            room(&guard)
        };
        let (mut todo, mut guard) = loop {
            let todo = KVVec::with_capacity(want, GFP_KERNEL)?;
            let guard = self.state.lock();
            let need = room(&guard);
            if need <= want {
                break (todo, guard);
            }
            want = need;
        };
        round.generation = guard.invalidated.generation;
        let mut walk_all = guard.invalidated.walk_all;
        for i in 0..guard.invalidated.list.len() {
            let va = guard.invalidated.list[i];
            // Entries of mirrors valid again (pinned at bind, say) wait for `finish` to go.
            let invalid = b
                .mirror_at(va)
                .is_some_and(|m| m.data().state.access(&mut guard).invalid);
            if invalid {
                walk_all |= push_within_capacity(&mut todo, va).is_err();
            }
        }
        if walk_all {
            // SAFETY: `u64` needs no drop; the length only shrinks.
            unsafe { todo.set_len(0) };
            for m in b.iter() {
                let Some(n) = m.mirror() else { continue };
                if n.data().state.access(&mut guard).invalid {
                    // There is room for every mirror.
                    let _ = push_within_capacity(&mut todo, m.va);
                }
            }
        }
        drop(guard);
        Ok(Some(todo))
    }

    /// Makes the invalidated list hold each mirror still invalid once, and publishes the round's
    /// fence, unless a mirror with entries was invalidated since the round took the list (it
    /// must be mirrored again first) or an invalidation is still to clear its mirror's entries.
    /// Returns whether it published.
    pub(crate) fn finish(
        &self,
        b: &Mappings,
        guard: &mut NotifierGuard<'_, State>,
        round: &Round<'_>,
    ) -> bool {
        // Entries of mirrors valid again, of removed mirrors, and repeated ones go.
        for i in 0..guard.invalidated.list.len() {
            if let Some(m) = b.mirror_at(guard.invalidated.list[i]) {
                m.data().state.access(guard).listed = false;
            }
        }
        let mut i = 0;
        while i < guard.invalidated.list.len() {
            let keep = b.mirror_at(guard.invalidated.list[i]).is_some_and(|m| {
                let state = m.data().state.access(guard);
                let keep = state.invalid && !state.listed;
                state.listed |= keep;
                keep
            });
            if keep {
                i += 1;
            } else {
                let list = &mut guard.invalidated.list;
                let last = list.len() - 1;
                list.swap(i, last);
                // SAFETY: `u64` needs no drop; the length only shrinks.
                unsafe { list.set_len(last) };
            }
        }
        // The list ran out of room before: list again what is invalid and not listed.
        if core::mem::take(&mut guard.invalidated.walk_all) {
            for m in b.iter().filter_map(Mapping::mirror) {
                let m = m.data();
                let state = m.state.access(guard);
                if state.invalid && !state.listed {
                    let listed = guard.invalidated.list(m.va);
                    m.state.access(guard).listed = listed;
                }
            }
        }
        if round.generation != guard.invalidated.generation || guard.invalidated.clearing() {
            return false;
        }
        guard.last_fence = Some(round.fence.clone());
        true
    }

    /// Makes room on the invalidated list for `n` mirrors.
    pub(crate) fn reserve_invalid(&self, n: usize) -> Result {
        let capacity = self.state.lock().invalidated.list.capacity();
        if capacity >= n {
            return Ok(());
        }
        // Doubling, so that a million binds copy the list about twenty times, not a million.
        let mut fresh = KVVec::with_capacity(n.max(capacity.saturating_mul(2)), GFP_KERNEL)?;
        let old = {
            let mut guard = self.state.lock();
            if guard.invalidated.list.capacity() >= n {
                return Ok(());
            }
            for &va in guard.invalidated.list.iter() {
                // `fresh` has room for all of them.
                let _ = push_within_capacity(&mut fresh, va);
            }
            core::mem::replace(&mut guard.invalidated.list, fresh)
        };
        drop(old);
        Ok(())
    }
}
