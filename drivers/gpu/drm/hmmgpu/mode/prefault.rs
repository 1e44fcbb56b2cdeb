// SPDX-License-Identifier: GPL-2.0

//! Prefault mode: the GPU cannot fault, so a submission mirrors the mappings invalidations
//! cleared before its job may run.
//!
//! A new mirror starts on the invalidated list. A submission snapshots the CPU page table of
//! every listed mirror (faulting pages in), writes their entries under the notifier lock and
//! publishes its job unless an invalidation raced (see [`crate::invalidated`]). An
//! invalidation lists its mirror, waits for the VM's last job, then clears the entries. Jobs
//! never fault CPU pages in: their fences are ordinary dma-fences.

use crate::{
    frames, invalidated::Round, mappings::Mappings, mirror::Mirror, mode::Coherence, vm::Vm,
};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    mm::hmm::{self, Range},
    prelude::*,
    uapi,
};

/// Prefault mode (`DRM_HMMGPU_VM_MODE_PREFAULT`).
pub(crate) struct Prefault;

impl Coherence for Prefault {
    fn flag(&self) -> u32 {
        uapi::DRM_HMMGPU_VM_MODE_PREFAULT
    }

    /// Snapshots the CPU page table of the mirrors at `todo`, then writes their entries under the
    /// lock and, if no invalidation raced, publishes.
    ///
    /// Each snapshot keeps its range taken until its entries are written: invalidations of it
    /// that arrive meanwhile wait, so that the round succeeds unless one came before.
    fn revalidate(
        &self,
        vm: &Vm,
        b: &Mappings,
        todo: &[u64],
        round: &mut Round<'_>,
    ) -> Result<bool> {
        let mut ranges = KVVec::with_capacity(todo.len(), GFP_KERNEL_ACCOUNT)?;
        for &va in todo.iter().filter(|&&va| !round.skips(va)) {
            if let Some(n) = b.mirror_at(va) {
                ranges.push(Mirror::range(n)?, GFP_KERNEL_ACCOUNT)?;
            }
            // A VM may have a million mirrors to mirror.
            // Only locks that sleep are held.
            kernel::task::cond_resched();
        }
        let Some(mm) = vm.mm_user() else {
            // The address space is gone: nothing to mirror, jobs that touch the mirrors fault.
            return Ok(vm.finish(b, &mut vm.state.lock(), round));
        };
        let fault = |r: &Range<'_, Mirror>| r.notifier().data().fault_for(false);
        let results = match hmm::fault_all(&mm, ranges.iter_mut(), fault) {
            Err(e) if e == EAGAIN => return Ok(false),
            r => r?,
        };
        let mut snapshots = KVVec::with_capacity(results.len(), GFP_KERNEL_ACCOUNT)?;
        let mut missing = KVVec::new();
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(s) => snapshots.push((s.notifier().data().va, s), GFP_KERNEL_ACCOUNT)?,
                Err(e) if e == EFAULT || e == EPERM => missing.push(i, GFP_KERNEL_ACCOUNT)?,
                Err(e) => return Err(e),
            }
        }
        if !missing.is_empty() {
            drop(snapshots);
            round.again = true;
            return fault_missing(ranges, &missing, &mut round.skip);
        }
        let mut guard = vm.state.lock();
        let mut raced = false;
        for (va, snapshot) in snapshots {
            let Some(n) = b.mirror_at(va) else { continue };
            let write = n.data().write;
            let mapped = snapshot.commit_with(&mut guard, |valid, state| {
                frames::map_snapshot(&mut state.pt, va, &valid, write)
            });
            match mapped {
                None => raced = true,
                Some(mapped) => {
                    mapped?;
                    let state = n.data().state.access_mut(&mut guard);
                    state.listing.validate();
                    state.mapped = true;
                }
            }
        }
        let published = !raced && vm.finish(b, &mut guard, round);
        drop(guard);
        Ok(published)
    }
}

/// Faults in the ranges at `missing` of `ranges`, which [`hmm::fault_all`] could not: those a
/// userfaultfd handler must bring in, with nothing held, so that the next round finds them;
/// those not mapped (any more), with the whole mapping's permissions, go on `skip`: left cleared
/// this submission, jobs that touch them fault. Returns `false`: the round must be tried again.
fn fault_missing(
    mut ranges: KVVec<Range<'_, Mirror>>,
    missing: &[usize],
    skip: &mut KVVec<u64>,
) -> Result<bool> {
    for &i in missing {
        let range = &mut ranges[i];
        let m = range.notifier().data();
        match range.fault(m.fault_for(false)) {
            // Dropping the snapshot releases the range.
            Ok(_) => {}
            Err(e) if e == EFAULT || e == EPERM => skip.push(m.va, GFP_KERNEL_ACCOUNT)?,
            Err(e) => return Err(e),
        }
        // Only locks that sleep are held.
        kernel::task::cond_resched();
    }
    Ok(false)
}
