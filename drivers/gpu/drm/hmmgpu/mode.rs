// SPDX-License-Identifier: GPL-2.0

//! Coherence modes: how a VM keeps its userptr mappings coherent with the CPU.
//!
//! A mode is a [`Coherence`] implementation in a file of its own under `mode/`, listed once in
//! [`MODES`]. The VM, its mapping table and the invalidated list are shared; the mode decides
//!
//! - what a bind does with a new mirror ([`Coherence::bind`]),
//! - how a submission mirrors again what invalidations cleared ([`Coherence::revalidate`]),
//! - what an invalidation does, and how entries are cleared ([`Coherence::invalidate`],
//!   [`Coherence::clear`]),
//! - what a GPU page fault does ([`Coherence::gpu_fault`]),
//! - how a job's completion is signalled ([`Coherence::completion`]).
//!
//! The modes are
//!
//! - [`fault::Fault`]: GPU page faults mirror pages on demand;
//! - [`prefault::Prefault`]: the GPU cannot fault; submissions mirror invalidated mappings first;
//! - [`pinned::Pinned`]: the GPU cannot fault; pages are pinned long-term.

use crate::{
    engine::Stop,
    invalidated::{self, Outcome, Round},
    mappings::Mappings,
    mirror::{self, Mirror},
    page_table::{PageTable, Small},
    vm::{State, Vm},
};
use kernel::{
    c_str,
    mm::{
        interval_notifier::{IntervalNotifier, InvalidateRange, ReadSeq},
        notifier_lock::NotifierGuard,
        pin::MemlockLimit,
    },
    prelude::*,
    str::CStr,
    uapi,
};

mod fault;
mod pinned;
mod prefault;

/// A VM's mode.
pub(crate) type Mode = &'static dyn Coherence;

/// Every mode the driver knows. A new mode is a file under `mode/` and a line here.
static MODES: [Mode; 3] = [&fault::Fault, &prefault::Prefault, &pinned::Pinned];

/// How a mode's jobs signal their completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Completion {
    /// An ordinary dma-fence: jobs never wait for memory, so invalidations may wait for them
    /// (and do, when the GPU cannot fault), and the VM's process exiting cancels them rather
    /// than wait. A job runs, once its inputs are ready, wholly in a fence-signalling section.
    Fence,
    /// No dma-fence (the VM is long-running): jobs fault CPU pages in, which allocates, before
    /// they complete, so they complete through user fences only
    /// ([`kernel::mm::user_fence`]). Invalidations never wait for them.
    LongRunning,
}

/// How a VM keeps its userptr mappings coherent with the CPU.
///
/// The defaults are those of a GPU that cannot fault: a new mirror is listed to be mirrored
/// before a job uses it, an invalidation waits for the jobs that may use its mirror's entries
/// before it clears them, and jobs complete through ordinary dma-fences.
pub(crate) trait Coherence: Sync {
    /// The `DRM_HMMGPU_VM_MODE_*` flag of `DRM_IOCTL_HMMGPU_VM_CREATE` that asks for the mode.
    fn flag(&self) -> u32;

    /// The name of the VM's fence timeline.
    fn timeline(&self) -> &'static CStr {
        c_str!("hmmgpu-vm")
    }

    /// How the mode's jobs signal their completion.
    fn completion(&self) -> Completion {
        Completion::Fence
    }

    /// Called under the notifier lock for every new mirror of the VM (a bind's, or a piece left
    /// by an unbind), before its mapping is added. Never allocates. By default the mirror goes
    /// on the invalidated list: a submission mirrors it before its job may run.
    fn new_mirror(&self, m: &Mirror, guard: &mut NotifierGuard<'_, State>) {
        invalidated::mark_invalid(m, guard);
    }

    /// Whether binds pin pages (which count against the binding task's `RLIMIT_MEMLOCK`).
    fn pins(&self) -> bool {
        false
    }

    /// The tables of 4 KiB entries a bind reserves for a userptr mapping, with the tables above
    /// them, before [`Coherence::bind`]: by default all, so that its entries can be written under
    /// the notifier lock whatever pages the CPU maps. `None` if the mode reserves the tables
    /// itself, each time before it writes entries.
    fn small_tables(&self) -> Option<Small<'static>> {
        Some(Small::All)
    }

    /// Called when `DRM_HMMGPU_VM_BIND_MAP` binds mirror `n`, with `bindings` held; an error
    /// fails the bind. Pages it pins count against `limit`, the bind caller's.
    fn bind(&self, _vm: &Vm, _n: &IntervalNotifier<Mirror>, _limit: &MemlockLimit) -> Result {
        Ok(())
    }

    /// Called with `bindings` held for each userptr piece that an unbind leaves of a mapping:
    /// its mirror `n` is new (see [`Coherence::new_mirror`]), the mapping not split yet.
    /// Pages it pins count against `limit`, the unbind caller's.
    /// Returns the sequence number from which the piece may keep the entries the mapping has
    /// for its range, or `None` if that range is cleared and the piece starts as a new mirror.
    ///
    /// By default the GPU cannot fault: a job submitted before the unbind, which may not have
    /// run yet, was published with those entries and would fault without them. So the piece
    /// keeps them if, when the split is applied under the notifier lock, the mapping's entries
    /// are still current and no invalidation of the piece came since the sequence number was
    /// read ([`Vm::unmap`]). The number is read without waiting: an invalidation of the range
    /// may be waiting for that very job, which the caller may be about to let run. During one,
    /// and during any invalidation of the address space (a notifier inserted then counts as
    /// being invalidated until they all end), the piece starts unmapped.
    fn split<'n>(
        &self,
        _vm: &Vm,
        n: &'n IntervalNotifier<Mirror>,
        _limit: &MemlockLimit,
    ) -> Option<ReadSeq<'n, Mirror>> {
        n.try_read_begin()
    }

    /// A round of a submission ([`Vm::validate`]): mirrors again the mirrors at `todo`, writes
    /// their entries, and if no invalidation raced, publishes the job with [`Vm::finish`].
    /// Returns whether it published; if not, the submission tries another round.
    fn revalidate(
        &self,
        vm: &Vm,
        b: &Mappings,
        todo: &[u64],
        round: &mut Round<'_>,
    ) -> Result<bool>;

    /// The invalidation of GPU range `[va, va + len)` of mirror `m`, with the notifier lock held
    /// and the invalidation's sequence number set. Returns `false` only if it would have to
    /// wait and `range` may not block. Never allocates.
    ///
    /// By default the mirror is listed, and its entries cleared once the jobs that may use them
    /// are done ([`invalidated::invalidate_after_jobs`]).
    fn invalidate(
        &self,
        m: &Mirror,
        range: &InvalidateRange<'_>,
        va: u64,
        len: u64,
        guard: &mut NotifierGuard<'_, State>,
    ) -> bool {
        invalidated::invalidate_after_jobs(m, range, va, len, guard) != Outcome::Refused
    }

    /// Clears the entries of `[va, va + len)` of a mirror, under the notifier lock, from its
    /// invalidation or with its mapping still watched (see [`mirror::clear_dirtying`], what it
    /// does by default). Never allocates.
    fn clear(&self, pt: &mut PageTable, va: u64, len: u64) {
        mirror::clear_dirtying(pt, va, len);
    }

    /// Handles a job's GPU page fault `stop`, from the job's worker with nothing held. If `held`
    /// is given, it runs while what the fault mirrored is held against invalidations, and its
    /// result is returned.
    ///
    /// By default the GPU cannot fault: `EFAULT` ends the job, at once. (It must not take
    /// `bindings`: a submission may hold it while it waits for the VM's last job, when an
    /// invalidation waits for it too.)
    fn gpu_fault(
        &self,
        _vm: &Vm,
        _stop: Stop,
        _held: Option<&mut dyn FnMut() -> Result<(), Stop>>,
    ) -> Result<Option<Result<(), Stop>>> {
        Err(EFAULT)
    }

    /// Called once a submission's job is queued, with nothing held.
    fn submitted(&self, _vm: &Vm) {}
}

/// The modes the driver knows, as `DRM_HMMGPU_VM_MODE_*` flags.
fn known_modes() -> u32 {
    MODES.iter().fold(0, |all, m| all | m.flag())
}

kernel::module_param_u32!(
    VM_MODES,
    "hmmgpu",
    "vm_modes",
    uapi::DRM_HMMGPU_VM_MODE_FAULT
        | uapi::DRM_HMMGPU_VM_MODE_PREFAULT
        | uapi::DRM_HMMGPU_VM_MODE_PINNED,
    "GPU VM modes offered (DRM_HMMGPU_VM_MODE_*: 1 fault, 2 prefault, 4 pinned; 6 emulates a GPU that cannot fault)"
);

/// The modes the device offers (`DRM_HMMGPU_PARAM_VM_MODES`): those of the `vm_modes` module
/// parameter that the driver knows.
pub(crate) fn offered_modes() -> u32 {
    VM_MODES.get() & known_modes()
}

/// The mode `flags` of `DRM_IOCTL_HMMGPU_VM_CREATE` ask for, if the device offers it.
pub(crate) fn from_flags(flags: u32) -> Result<Mode> {
    if flags & !offered_modes() != 0 {
        return Err(EINVAL);
    }
    known(flags)
}

/// The mode `flags` name, offered or not: exactly one known mode's flag.
fn known(flags: u32) -> Result<Mode> {
    MODES
        .iter()
        .copied()
        .find(|m| m.flag() == flags)
        .ok_or(EINVAL)
}

#[kernel::kunit::kunit_tests(hmmgpu_mode)]
mod tests {
    use super::*;

    fn is(mode: Result<Mode>, flag: u32) -> bool {
        mode.is_ok_and(|m| m.flag() == flag)
    }

    #[test]
    fn modes_are_one_flag_the_device_offers() {
        for flag in [
            uapi::DRM_HMMGPU_VM_MODE_FAULT,
            uapi::DRM_HMMGPU_VM_MODE_PREFAULT,
            uapi::DRM_HMMGPU_VM_MODE_PINNED,
        ] {
            assert!(is(known(flag), flag));
            assert_eq!(from_flags(flag).is_ok(), offered_modes() & flag != 0);
        }
        for bad in [0, 3, 5, 6, 7, 8, 1 << 31] {
            assert!(known(bad).is_err());
            assert!(from_flags(bad).is_err());
        }
    }

    #[test]
    fn each_mode_has_its_own_flag() {
        let mut seen = 0;
        for m in MODES.iter() {
            assert!(m.flag().is_power_of_two());
            assert_eq!(seen & m.flag(), 0);
            seen |= m.flag();
        }
        assert_eq!(seen, known_modes());
    }
}
