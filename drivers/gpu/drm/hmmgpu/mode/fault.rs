// SPDX-License-Identifier: GPL-2.0

//! Fault mode: GPU page faults mirror pages on demand.
//!
//! A bind writes no entries. A job's access to an address without an entry stops the engine
//! with a GPU page fault; the fault handler snapshots a window around it (2 MiB-aligned within
//! the mapping, so that huge pages map whole; smaller where part of it is unmapped or
//! read-only), commits it under the notifier lock, and the job resumes. An invalidation only
//! clears the entries of its range: the engine translates every access under the notifier lock,
//! so no job touches the old pages once the lock is released, and its next access faults.
//!
//! Faulting CPU pages in allocates, so jobs may wait for memory before they complete: the VM is
//! long-running, its jobs have no dma-fence but user fences, and invalidations never wait for
//! them.

use crate::{
    engine::Stop,
    frames,
    invalidated::Round,
    mappings::{Mapping, Mappings},
    mirror::Mirror,
    mode::{Coherence, Completion},
    page_table::{PageSize, SZ_2M, SZ_4K},
    vm::{State, Stats, Vm, MAX_ROUNDS},
};
use core::sync::atomic::Ordering;
use kernel::{
    mm::{
        hmm::{Fault as HmmFault, Range},
        interval_notifier::{IntervalNotifier, InvalidateRange, ReadSeq},
        notifier_lock::NotifierGuard,
        pin::MemlockLimit,
    },
    prelude::*,
    uapi,
};

/// The middle size of the windows a GPU page fault mirrors.
const SZ_64K: u64 = 1 << 16;

/// Fault mode (`DRM_HMMGPU_VM_MODE_FAULT`).
pub(crate) struct Fault;

impl Coherence for Fault {
    fn flag(&self) -> u32 {
        uapi::DRM_HMMGPU_VM_MODE_FAULT
    }

    fn completion(&self) -> Completion {
        Completion::LongRunning
    }

    /// A new mirror needs nothing: the GPU faults its pages in when it uses them.
    fn new_mirror(&self, _m: &Mirror, _guard: &mut NotifierGuard<'_, State>) {}

    /// A split clears the pieces' entries: a job that touches them faults them in again.
    fn split<'n>(
        &self,
        _vm: &Vm,
        _n: &'n IntervalNotifier<Mirror>,
        _limit: &MemlockLimit,
    ) -> Option<ReadSeq<'n, Mirror>> {
        None
    }

    /// Nothing is mirrored before a job: its faults do it. Nothing is ever listed, so this
    /// only publishes.
    fn revalidate(
        &self,
        vm: &Vm,
        b: &Mappings,
        _todo: &[u64],
        round: &mut Round<'_>,
    ) -> Result<bool> {
        Ok(vm.finish(b, &mut vm.state.lock(), round))
    }

    fn invalidate(
        &self,
        m: &Mirror,
        _range: &InvalidateRange<'_>,
        va: u64,
        len: u64,
        guard: &mut NotifierGuard<'_, State>,
    ) -> bool {
        m.clear_entries(&mut guard.pt, va, len);
        true
    }

    /// Mirrors a window around the fault's address and maps it, or fails with `EFAULT` if
    /// nothing lets the job access it.
    ///
    /// With `held`, the window stays taken in its notifier's range lock while `held` runs,
    /// after the notifier lock is released: invalidations of the window wait (for the
    /// snapshot's patience at most) until the job has used what the fault mapped. The fallback
    /// that gives a job progress when invalidations keep clearing what its faults mirror.
    fn gpu_fault(
        &self,
        vm: &Vm,
        stop: Stop,
        held: Option<&mut dyn FnMut() -> Result<(), Stop>>,
    ) -> Result<Option<Result<(), Stop>>> {
        let Stop::Fault { va, write, .. } = stop else {
            return Ok(None);
        };
        let b = vm.bindings.lock();
        let m = b.find(va).ok_or(EFAULT)?;
        let n = m.mirror().ok_or(EFAULT)?;
        let mirror = n.data();
        if write && !mirror.write {
            return Err(EFAULT);
        }
        let fault = mirror.fault_for(write);
        let range = windows(vm, m, n, va, fault, held.is_some());
        let range = range.map_err(|e| if e == EPERM { EFAULT } else { e })?;
        {
            let guard = vm.state.lock();
            match guard.pt.translate_for(va, write, true) {
                // Resolved: `faults` is `faults_4k` plus `faults_2m`.
                Ok(t) => {
                    Stats::inc(&vm.stats.faults);
                    Stats::inc(match t.size {
                        PageSize::Huge => &vm.stats.faults_2m,
                        _ => &vm.stats.faults_4k,
                    });
                }
                // Invalidated again already: the job faults again and retries.
                Err(_) => Stats::inc(&vm.stats.retries),
            }
        }
        let result = held.map(|f| f());
        // The window goes back once the job has used it.
        drop(range);
        Ok(result)
    }
}

/// Mirrors a window around `va` of mapping `m` (of mirror `n`): 2 MiB-aligned within the
/// mapping, so that huge pages map whole; where part of it is unmapped or read-only, a smaller
/// one, then the page alone. With `hold`, returns the window's range, still taken.
fn windows<'n>(
    vm: &Vm,
    m: &Mapping,
    n: &'n IntervalNotifier<Mirror>,
    va: u64,
    fault: HmmFault,
    hold: bool,
) -> Result<Option<Range<'n, Mirror>>> {
    let mut result = Err(EFAULT);
    for size in [SZ_2M, SZ_64K, SZ_4K] {
        let lo = core::cmp::max(va & !(size - 1), m.va);
        let hi = core::cmp::min((va | (size - 1)) + 1, m.end());
        result = window(vm, n, lo, hi, fault, hold);
        if !matches!(result, Err(e) if e == EFAULT || e == EPERM) {
            break;
        }
    }
    result
}

/// Mirrors GPU range `[lo, hi)` of mirror `n` and writes its entries. With `hold`, returns the
/// range, still taken.
fn window<'n>(
    vm: &Vm,
    n: &'n IntervalNotifier<Mirror>,
    lo: u64,
    hi: u64,
    fault: HmmFault,
    hold: bool,
) -> Result<Option<Range<'n, Mirror>>> {
    let m = n.data();
    let mut range = Range::new(n, m.cpu_of(lo), (hi - lo) as usize)?;
    // The range is taken from the walk to the commit: only invalidations that came before it,
    // or its own fault's, make a round fail. If they keep doing so, the job faults again, and
    // mirrors holding the window (see `Job`).
    let mapped = range.mirror(fault, MAX_ROUNDS, |valid, state| {
        let mapped = frames::map_snapshot(&mut state.pt, lo, &valid, m.write);
        if hold {
            // Released when `range` is dropped.
            valid.hold_range();
        }
        mapped
    });
    vm.stats
        .retries
        .fetch_add(range.overtaken(), Ordering::Relaxed);
    match mapped {
        Ok(mapped) => {
            mapped?;
            Ok(hold.then_some(range))
        }
        Err(e) if e == EAGAIN => Ok(None),
        Err(e) => Err(e),
    }
}
