// SPDX-License-Identifier: GPL-2.0

//! Jobs: command buffers the engine runs on a VM, asynchronously, in submission order.
//!
//! A job waits for its input fences, then runs the engine in slices under the VM's notifier lock
//! (the engine yields after a budget of page accesses, so that invalidations get in and the time
//! limit is checked), and signals its fence, with an error if it failed. On a GPU page fault a
//! job of a fault-mode VM has the fault handled and resumes; in the other modes the fault ends it
//! with `EFAULT`. A job of a VM being destroyed ends with `ECANCELED` at its next slice (or its
//! next look at its input fences); so does a job submitted before the VM's process exited.
//!
//! Only the engine's slices are a fence-signalling section: in fault mode, handling a fault
//! faults CPU pages in, which allocates. Fault-mode invalidations therefore never wait for jobs,
//! and job fences are only handed to sync objects, never to reservation objects that reclaim
//! waits on.

use crate::{
    command::Command,
    engine::{self, Access, Progress, Stop},
    page_table::GpuFault,
    vm::{self, Stats, Vm},
};
use core::cell::Cell;
use kernel::{
    bindings,
    dma_fence::{Fence, FenceSignaller, SignallingSection},
    impl_has_work, new_work,
    prelude::*,
    sync::Arc,
    time::Ktime,
    types::ARef,
    workqueue::{Work, WorkItem},
};

/// Page accesses the engine makes between two looks at the time and the lock.
const BUDGET: u32 = 256;

/// GPU page faults a job may have handled in a row without getting further, before it
/// mirrors holding the faulted window until it has used it.
const STALLS_BEFORE_HOLDING: u32 = 4;

/// Slices a job runs at most holding a faulted window: long enough to use what it mirrored,
/// short enough not to hold up the invalidations of the window for long.
const HELD_SLICES: u32 = 32;

/// How long a job waits for an input fence before it looks whether its VM is going away.
const WAIT_SLICE_MS: u32 = 10;

/// A job of a VM.
#[pin_data]
pub(crate) struct Job {
    #[pin]
    work: Work<Job>,
    vm: Arc<Vm>,
    cmds: KVec<Command>,
    /// Submitted by the process that owns the VM.
    owner: bool,
    /// Fences to wait for before running.
    waits: KVec<ARef<Fence>>,
    /// Given at submission; taken once, when the job ends. If the job is dropped unrun, its
    /// fence is cancelled.
    signaller: Cell<Option<FenceSignaller>>,
    /// Set when the submission failed after the fence was made: the job signals it, in turn.
    failed: Cell<Option<Error>>,
    /// The job's submission index in its VM.
    index: Cell<u64>,
    /// When the job ends with `ETIMEDOUT`, in `ktime` nanoseconds: its time limit counts from
    /// submission, so that however many jobs are queued, each ends within the limit.
    deadline: i64,
}

impl_has_work! {
    impl HasWork<Self> for Job { self.work }
}

impl Job {
    pub(crate) fn new(
        vm: Arc<Vm>,
        cmds: KVec<Command>,
        owner: bool,
        waits: KVec<ARef<Fence>>,
        timeout_ms: u32,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            work <- new_work!("hmmgpu::job"),
            vm,
            cmds,
            owner,
            waits,
            signaller: Cell::new(None),
            failed: Cell::new(None),
            index: Cell::new(0),
            deadline: Ktime::ktime_get().to_ns() + i64::from(timeout_ms) * 1_000_000,
        })
    }

    /// Gives the job the fence it signals.
    pub(crate) fn set_signaller(&self, signaller: FenceSignaller) {
        self.signaller.set(Some(signaller));
    }

    /// Gives the job its submission index.
    pub(crate) fn set_index(&self, index: u64) {
        self.index.set(index);
    }

    /// Marks the job's submission as failed with `err`: it signals its fence with it, unrun.
    pub(crate) fn fail(&self, err: Error) {
        self.failed.set(Some(err));
    }

    /// Runs the job to its end: `Ok` when every command completed.
    fn execute(&self) -> Result {
        let deadline = self.deadline;
        let left_ms = || {
            let left = deadline - Ktime::ktime_get().to_ns();
            u32::try_from(left.max(0) / 1_000_000).unwrap_or(u32::MAX)
        };
        let vm = &*self.vm;
        for fence in self.waits.iter() {
            // In slices, so that destroying the VM does not wait for a fence that may never
            // signal.
            while fence.wait(left_ms().min(WAIT_SLICE_MS)).is_err() {
                if vm.job_cancelled(self.index.get()) {
                    return Err(canceled());
                }
                if left_ms() == 0 {
                    return Err(timed_out());
                }
            }
        }
        let mut progress = Progress::default();
        // GPU page faults handled in a row without the job getting any further.
        let mut stalls = 0;
        loop {
            if vm.job_cancelled(self.index.get()) {
                return Err(canceled());
            }
            if Ktime::ktime_get().to_ns() > deadline {
                return Err(timed_out());
            }
            let before = progress;
            let mut stop = self.slice(&mut progress);
            while let Err(fault @ Stop::Fault { kind, .. }) = stop {
                let mirrored = matches!(kind, GpuFault::NotMapped | GpuFault::ReadOnly);
                if !self.owner || !mirrored {
                    return Err(EFAULT);
                }
                stalls = if progress == before { stalls + 1 } else { 0 };
                if stalls < STALLS_BEFORE_HOLDING {
                    match vm.handle_fault(fault, None) {
                        // Invalidations overtook the fault's snapshots until their deadline.
                        Err(e) if vm::is_timed_out(&e) => {}
                        r => {
                            r?;
                            break;
                        }
                    }
                }
                // Invalidations keep undoing what faults mirror before the job uses it, or
                // overtake its snapshots: mirror and run some slices holding the window, which
                // its invalidations wait for.
                stalls = 0;
                let mut slices = || {
                    for _ in 1..HELD_SLICES {
                        match self.slice(&mut progress) {
                            Err(Stop::Yield) => continue,
                            other => return other,
                        }
                    }
                    self.slice(&mut progress)
                };
                stop = vm.handle_fault(fault, Some(&mut slices))?.ok_or(EFAULT)?;
            }
            if stop.is_ok() {
                return Ok(());
            }
            // SAFETY: FFI call without requirements; no lock is held.
            unsafe { bindings::__cond_resched() };
        }
    }

    /// Runs the engine for one budget of page accesses, under the notifier lock.
    fn slice(&self, progress: &mut Progress) -> Result<(), Stop> {
        let _section = SignallingSection::begin();
        let guard = self.vm.state.lock();
        let mut access = Access {
            owner: self.owner,
            budget: BUDGET,
        };
        engine::run(&guard.pt, &self.cmds, progress, &mut access)
    }
}

impl WorkItem for Job {
    type Pointer = Pin<KBox<Job>>;

    fn run(this: Pin<KBox<Job>>) {
        let Some(signaller) = this.signaller.take() else {
            return;
        };
        if let Some(err) = this.failed.take() {
            signaller.signal_error(err);
            return;
        }
        let result = this.execute();
        let stats = &this.vm.stats;
        match result {
            Ok(()) => {
                Stats::inc(&stats.jobs_done);
                signaller.signal();
            }
            Err(e) => {
                Stats::inc(&stats.jobs_failed);
                signaller.signal_error(e);
            }
        }
    }
}

fn timed_out() -> Error {
    Error::from_errno(-(bindings::ETIMEDOUT as i32))
}

fn canceled() -> Error {
    Error::from_errno(-(bindings::ECANCELED as i32))
}
