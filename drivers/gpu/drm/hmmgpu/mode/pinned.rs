// SPDX-License-Identifier: GPL-2.0

//! Pinned mode: the GPU cannot fault, and a mirror's pages are pinned long-term
//! (Documentation/core-api/pin_user_pages.rst, case 5), for hardware that must never find a
//! page gone.
//!
//! A bind pins the mirror's pages and maps them, so that it fails if they cannot be pinned. An
//! invalidation lists the mirror, waits for the VM's last job, clears the entries and hands the
//! pins to the VM's stale pins, which a worker releases soon after, outside the callback. A
//! submission pins the listed mirrors again (only the VM's own process can), checks that the
//! pins are what the CPU maps, writes their entries and publishes its job unless an
//! invalidation raced (see [`crate::invalidated`]). Jobs never fault CPU pages in: their fences
//! are ordinary dma-fences.

use crate::{
    frames,
    invalidated::{self, Outcome, Round},
    mappings::Mappings,
    mirror::Mirror,
    mode::Coherence,
    page_table::{PageTable, Small},
    pins::{Pinning, Pins},
    vm::{is_timed_out, push_within_capacity, State, Stats, Vm, MAX_ROUNDS},
};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KBox, KVVec, KVec},
    mm::{
        hmm::{self, Fault, Snapshot},
        interval_notifier::{IntervalNotifier, InvalidateRange, ReadSeq},
        notifier_lock::NotifierGuard,
        pin::MemlockLimit,
    },
    prelude::*,
    uapi,
};

/// Pinned mode (`DRM_HMMGPU_VM_MODE_PINNED`).
pub(crate) struct Pinned;

/// How a pin is checked against the CPU page table under the notifier lock.
enum PinCheck<'r, 'n> {
    /// A snapshot taken after pinning must show the pinned pages.
    Snapshot(Snapshot<'r, 'n, Mirror>),
    /// No invalidation may have happened since this sequence number, read before pinning.
    Seq(ReadSeq<'n, Mirror>),
}

impl Coherence for Pinned {
    fn flag(&self) -> u32 {
        uapi::DRM_HMMGPU_VM_MODE_PINNED
    }

    /// A piece keeps the entries only with pins of its own (the mapping's go with it): its
    /// pages are pinned and mapped as a bind's are. A piece that cannot be (the caller is not
    /// the VM's process, or pinning failed) starts as a new mirror does: the next submission
    /// pins it.
    fn split<'n>(
        &self,
        vm: &Vm,
        n: &'n IntervalNotifier<Mirror>,
        limit: &MemlockLimit,
    ) -> Option<ReadSeq<'n, Mirror>> {
        if !vm.is_owner() {
            return None;
        }
        self.bind(vm, n, limit).ok()?;
        n.try_read_begin()
    }

    fn pins(&self) -> bool {
        true
    }

    /// None before the pages are pinned: then [`reserve_small`] reserves the tables the pins
    /// need, those of 4 KiB entries for the blocks no huge page fills alone.
    fn small_tables(&self) -> Option<Small<'static>> {
        None
    }

    /// Pins the new mirror's pages and maps them, so that a bind fails if they cannot be
    /// pinned.
    fn bind(&self, vm: &Vm, n: &IntervalNotifier<Mirror>, limit: &MemlockLimit) -> Result {
        let mm = vm.mm_user().ok_or(EFAULT)?;
        // Made for the first round that holds the range.
        let mut waiters = KVec::new();
        for round in 0..MAX_ROUNDS {
            // As in `revalidate`: what invalidations unpinned is uncharged first.
            vm.release_stale_pins();
            let hold = round > 0 && vm.range_locks;
            if hold && waiters.is_empty() {
                waiters.push(n.range_lock().waiter()?, GFP_KERNEL_ACCOUNT)?;
            }
            let mut p = match Pinning::pin_all(&[n], &mm, &mut waiters, hold, limit, &vm.stats) {
                Err(e) if e == EAGAIN => {
                    Stats::inc(&vm.stats.retries);
                    continue;
                }
                Ok(p) => p.into_iter().next().ok_or(EINVAL)??,
                Err(e) => return Err(e),
            };
            reserve_small(vm, n, &mut p.pins)?;
            // Mostly nothing changed the range while it was pinned: then the pins are
            // current, with no snapshot to take and compare page by page.
            let mut guard = vm.state.lock();
            if install(&mut guard, n, PinCheck::Seq(p.seq), &mut p.pins)? {
                return Ok(());
            }
            drop(guard);
            // The snapshot takes the mmap lock: never with a range held (see `Pinning`).
            p.release_range();
            let mut range = Mirror::range(n)?;
            let snapshot = match range.fault(Fault::Snapshot) {
                Err(e) if is_timed_out(&e) => {
                    Stats::inc(&vm.stats.retries);
                    continue;
                }
                r => r?,
            };
            let mut guard = vm.state.lock();
            if install(&mut guard, n, PinCheck::Snapshot(snapshot), &mut p.pins)? {
                return Ok(());
            }
            drop(guard);
            Stats::inc(&vm.stats.retries);
        }
        Err(EAGAIN)
    }

    /// Pins the mirrors at `todo` again (only the VM's own process can), checks that the pins
    /// are what the CPU maps, writes their entries under the lock and, if no invalidation raced,
    /// publishes.
    ///
    /// Each mirror is pinned with its range taken (see [`Pinning`]), so invalidations of it
    /// that arrive meanwhile wait for its pins to be installed, and mostly its sequence number
    /// shows the pins current at no cost. When it does not (an invalidation came first, or the
    /// pinning itself migrated pages), a snapshot of the CPU page table taken after the pins
    /// must show the pinned pages.
    fn revalidate(
        &self,
        vm: &Vm,
        b: &Mappings,
        todo: &[u64],
        round: &mut Round<'_>,
    ) -> Result<bool> {
        // Only the VM's process pins, so its address space is alive when it does.
        let mm = vm.mm_user().filter(|_| round.owner);
        // Pins invalidations took away still count against `RLIMIT_MEMLOCK`: release them
        // before pinning again, rather than wait for the worker.
        vm.release_stale_pins();
        // The first round pins the fast way, the others with the ranges taken.
        let hold = round.index > 0 && vm.range_locks;
        let mut mirrors = KVVec::with_capacity(todo.len(), GFP_KERNEL_ACCOUNT)?;
        let mut waiters = KVVec::new();
        if mm.is_some() {
            for &va in todo.iter().filter(|&&va| !round.skips(va)) {
                let Some(n) = b.mirror_at(va) else { continue };
                mirrors.push(n, GFP_KERNEL_ACCOUNT)?;
                if hold {
                    waiters.push(n.range_lock().waiter()?, GFP_KERNEL_ACCOUNT)?;
                }
            }
        }
        // Pins not installed, or replaced, stay here and are released after the lock, with
        // their ranges, each with its mirror's address.
        let mut pinned = KVVec::with_capacity(mirrors.len(), GFP_KERNEL_ACCOUNT)?;
        if let Some(mm) = mm.as_deref() {
            // Submissions pin in the submitter's own call.
            let limit = MemlockLimit::of_charging_task();
            let pinned_all = Pinning::pin_all(&mirrors, mm, &mut waiters, hold, &limit, &vm.stats);
            let results = match pinned_all {
                Ok(results) => results,
                // Over the limit while an invalidation still holds the pins it is taking away
                // (once it is done, and the caller waits for it, they are released), or a
                // range changed while the pages were migrated for pinning: try again.
                Err(e)
                    if e == EAGAIN
                        || (e == ENOMEM
                            && vm.state.lock().invalidated.publication().is_clearing()) =>
                {
                    return Ok(false)
                }
                Err(e) => return Err(e),
            };
            for (n, result) in mirrors.iter().zip(results) {
                match result {
                    Ok(mut p) => {
                        reserve_small(vm, n, &mut p.pins)?;
                        pinned.push((n.data().va, p), GFP_KERNEL_ACCOUNT)?
                    }
                    // Not mapped (any more): left cleared, jobs that touch it fault.
                    Err(_) => round.skip.push(n.data().va, GFP_KERNEL_ACCOUNT)?,
                }
            }
        }
        // The cheap check first; the pins it does not show current are checked again below.
        let mut recheck = KVVec::with_capacity(pinned.len(), GFP_KERNEL_ACCOUNT)?;
        let mut guard = vm.state.lock();
        for (i, (va, p)) in pinned.iter_mut().enumerate() {
            let Some(n) = b.mirror_at(*va) else { continue };
            if !install(&mut guard, n, PinCheck::Seq(p.seq), &mut p.pins)? {
                // `recheck` has room for every pin.
                let _ = push_within_capacity(&mut recheck, i);
            }
        }
        let mut raced = false;
        if !recheck.is_empty() {
            drop(guard);
            // Snapshots take their own ranges, with none other taken (see `hmm::fault_all`).
            for (_, p) in pinned.iter_mut() {
                p.release_range();
            }
            let mut ranges = KVVec::with_capacity(recheck.len(), GFP_KERNEL_ACCOUNT)?;
            for &i in recheck.iter() {
                let Some(n) = b.mirror_at(pinned[i].0) else {
                    continue;
                };
                ranges.push(Mirror::range(n)?, GFP_KERNEL_ACCOUNT)?;
            }
            let Some(mm) = mm.as_deref() else {
                return Ok(false);
            };
            let snapshots = match hmm::fault_all(mm, ranges.iter_mut(), |_| Fault::Snapshot) {
                Err(e) if e == EAGAIN => return Ok(false),
                r => r?,
            };
            guard = vm.state.lock();
            for snapshot in snapshots {
                let snapshot = snapshot?;
                let va = snapshot.notifier().data().va;
                let Some(n) = b.mirror_at(va) else { continue };
                let Some((_, p)) = pinned.iter_mut().find(|(v, _)| *v == va) else {
                    continue;
                };
                raced |= !install(&mut guard, n, PinCheck::Snapshot(snapshot), &mut p.pins)?;
            }
        }
        let published = !raced && vm.finish(b, &mut guard, round);
        if published {
            // Releasing pins returns their RLIMIT_MEMLOCK charge, which takes the mmap lock for
            // writing; an invalidation that holds it for reading (KSM, madvise) may be waiting
            // for the fence just published, whose job is queued only once we return. Hand the
            // pins to the release worker's list instead (never allocates); the submission
            // releases them once the job is queued (`submitted`).
            for (_, p) in pinned.iter_mut() {
                if let Some(pins) = p.pins.take() {
                    guard.push_stale(pins);
                }
            }
        }
        drop(guard);
        // Pins not installed, and their ranges, go after the lock.
        drop(pinned);
        Ok(published)
    }

    fn invalidate(
        &self,
        m: &Mirror,
        range: &InvalidateRange<'_>,
        va: u64,
        len: u64,
        guard: &mut NotifierGuard<'_, State>,
    ) -> bool {
        match invalidated::invalidate_after_jobs(m, range, va, len, guard) {
            Outcome::Refused => false,
            Outcome::Listed => true,
            Outcome::Cleared => {
                m.vm.queue_release(guard);
                true
            }
        }
    }

    /// The pages are marked dirty when they are unpinned, after the entries are cleared, not
    /// here: until then the pins keep each page allocated (a `MADV_FREE` page is not discarded,
    /// nor any page freed, while it holds references beyond its mappings'), and an munmap does
    /// not pay for a folio lookup per page.
    fn clear(&self, pt: &mut PageTable, va: u64, len: u64) {
        pt.clear(va, len);
    }

    /// Pins a submission did not need, now that the job it published is queued.
    fn submitted(&self, vm: &Vm) {
        vm.release_stale_pins();
    }
}

/// Before the lock, with `bindings` held: finds which blocks of mirror `n` huge pages of `pins`
/// fill, and reserves the tables its entries need (of 4 KiB entries for the other blocks), so
/// that [`install`] can write the entries without allocating.
fn reserve_small(vm: &Vm, n: &IntervalNotifier<Mirror>, pins: &mut Option<KBox<Pins>>) -> Result {
    let m = n.data();
    let Some(pins) = pins.as_deref_mut() else {
        return Ok(());
    };
    pins.find_huge_blocks(m.va)?;
    let huge = pins.huge_blocks().ok_or(EINVAL)?;
    vm.reserve(m.va, m.size, Small::Where(&|block| huge.needs_small(block)))
}

/// Under the lock: if `check` says the pins are what the CPU maps, writes the entries from them
/// and installs them, leaving the pins they replace in `pins`, to release after the lock.
/// Returns whether it did.
fn install(
    guard: &mut NotifierGuard<'_, State>,
    n: &IntervalNotifier<Mirror>,
    check: PinCheck<'_, '_>,
    pins: &mut Option<KBox<Pins>>,
) -> Result<bool> {
    let current = match check {
        PinCheck::Seq(seq) => !seq.read_retry(guard),
        PinCheck::Snapshot(snapshot) => match snapshot.commit(guard) {
            Some(valid) => pins
                .as_ref()
                .is_some_and(|p| p.matches(&valid, n.data().write)),
            None => false,
        },
    };
    if !current {
        return Ok(false);
    }
    let Some(p) = pins.take() else {
        return Ok(false);
    };
    let m = n.data();
    if let Err(e) = frames::map_pins(&mut guard.pt, m.va, &p, m.write) {
        *pins = Some(p);
        return Err(e);
    }
    let state = m.state.access_mut(guard);
    state.listing.validate();
    state.mapped = true;
    *pins = state.pins.replace(p);
    Ok(true)
}
