// SPDX-License-Identifier: GPL-2.0

//! Jobs: command buffers the engine runs on a VM, asynchronously, in submission order.
//!
//! A job waits for its input fences (callbacks on them wake the VM's event queue, see
//! [`Dependencies`]), then runs the engine in slices under the VM's notifier lock (the engine
//! yields after a budget of page accesses, so that invalidations get in and the time limit is
//! checked), and completes: it signals its fence, with an error if it failed, then has its
//! user fences written by its VM's work item (see [`UserFenceWrites`]), so that the next job
//! does not wait for the writes. On a GPU page fault a job of a fault-mode VM has the fault
//! handled and resumes; in the other modes the fault ends it with `EFAULT`. A job of a VM being destroyed ends with
//! `ECANCELED` at its next slice (or while it waits for its input fences); so does a job
//! submitted before the VM's process exited. A job whose input fence signalled with an error
//! ends with that error, unrun.
//!
//! A job with a fence (prefault and pinned modes) runs wholly in a fence-signalling section,
//! from the moment its inputs are ready until its fence has signalled, so that lockdep sees
//! everything it does. Jobs of fault-mode VMs are long-running: handling a fault faults CPU
//! pages in, which allocates, so they have no fence and complete through user fences only.

use crate::{
    command::Command,
    engine::{self, Access, Progress, Stop},
    page_table::GpuFault,
    syncs::UserFenceWrites,
    vm::{self, Stats, Vm},
};
use core::cell::Cell;
use kernel::{
    bindings,
    dma_fence::{Dependencies, FenceSignaller, SignallingSection},
    ffi::c_long,
    impl_has_work, new_work,
    prelude::*,
    sync::{wait_queue::Timeout, Arc},
    time::Ktime,
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

/// A job of a VM.
#[pin_data]
pub(crate) struct Job {
    #[pin]
    work: Work<Job>,
    vm: Arc<Vm>,
    cmds: KVec<Command>,
    /// Submitted by the process that owns the VM.
    owner: bool,
    /// The fences to wait for before running.
    inputs: Dependencies,
    /// Given at submission to jobs that have a fence; taken once, when the job ends. If the job
    /// is dropped unrun, its fence is cancelled.
    signaller: Cell<Option<FenceSignaller>>,
    /// The user fences, written when the job ends, after its fence signalled.
    user_fences: Cell<Option<KBox<UserFenceWrites>>>,
    /// Set when the submission failed after the fence was made: the job signals it, in turn.
    failed: Cell<Option<Error>>,
    /// The job's submission index in its VM.
    index: Cell<u64>,
    /// When the job ends with `ETIMEDOUT`, in `ktime` nanoseconds: its time limit counts from
    /// the moment it is queued ([`Job::start_clock`]), so that however many jobs are queued, each
    /// ends within the limit, and the submission's own work (mirroring or pinning again what
    /// invalidations took away) does not use it up.
    deadline: Cell<i64>,
    /// The time limit, in nanoseconds.
    timeout_ns: i64,
}

impl_has_work! {
    impl HasWork<Self> for Job { self.work }
}

impl Job {
    pub(crate) fn new(
        vm: Arc<Vm>,
        cmds: KVec<Command>,
        owner: bool,
        inputs: Dependencies,
        user_fences: Option<KBox<UserFenceWrites>>,
        timeout_ms: u32,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            work <- new_work!("hmmgpu::job"),
            vm,
            cmds,
            owner,
            inputs,
            signaller: Cell::new(None),
            user_fences: Cell::new(user_fences),
            failed: Cell::new(None),
            index: Cell::new(0),
            // Set as the job is queued.
            deadline: Cell::new(0),
            timeout_ns: i64::from(timeout_ms) * 1_000_000,
        })
    }

    /// Gives the job the fence it signals.
    pub(crate) fn set_signaller(&self, signaller: FenceSignaller) {
        self.signaller.set(Some(signaller));
    }

    /// Starts the job's time limit: called as it is queued.
    pub(crate) fn start_clock(&self) {
        self.deadline
            .set(Ktime::ktime_get().to_ns() + self.timeout_ns);
    }

    /// Gives the job its submission index.
    pub(crate) fn set_index(&self, index: u64) {
        self.index.set(index);
    }

    /// Marks the job's submission as failed with `err`: it signals its fence with it, unrun.
    pub(crate) fn fail(&self, err: Error) {
        self.failed.set(Some(err));
    }

    /// Waits until the job's input fences have signalled: `Ok` when it may run.
    fn wait_for_inputs(&self) -> Result {
        let vm = &*self.vm;
        let index = self.index.get();
        let left_ms = (self.deadline.get() - Ktime::ktime_get().to_ns()).max(0) / 1_000_000;
        let jiffies = kernel::time::msecs_to_jiffies(u32::try_from(left_ms).unwrap_or(u32::MAX));
        // The VM's event queue is woken by the last input fence and by cancellation.
        let ready = vm.events.wait_until(
            || self.inputs.signalled() || vm.job_cancelled(index),
            Timeout::Jiffies(jiffies.try_into().unwrap_or(c_long::MAX)),
            false,
        )?;
        if vm.job_cancelled(index) {
            return Err(canceled());
        }
        if !ready {
            return Err(timed_out());
        }
        self.inputs.error().map_or(Ok(()), Err)
    }

    /// Runs the job to its end: `Ok` when every command completed.
    fn execute(&self) -> Result {
        let deadline = self.deadline.get();
        let vm = &*self.vm;
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
                stop = match vm.handle_fault(fault, Some(&mut slices)) {
                    // Overtaken even so, until the snapshot's deadline: that is not the job's,
                    // which tries again until its own time limit.
                    Err(e) if vm::is_timed_out(&e) => break,
                    r => r?.ok_or(EFAULT)?,
                };
            }
            if stop.is_ok() {
                return Ok(());
            }
            kernel::task::cond_resched();
        }
    }

    /// Runs the engine for one budget of page accesses, under the notifier lock.
    fn slice(&self, progress: &mut Progress) -> Result<(), Stop> {
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
        let signaller = this.signaller.take();
        let user_fences = this.user_fences.take();
        let result = match this.failed.take() {
            // The submission failed: signal its error in turn, unrun and uncounted. Its user
            // fences are not written: the ioctl returned the error, and the same fences may be
            // given to the next try.
            Some(err) => {
                if let Some(signaller) = signaller {
                    signaller.signal_error(err);
                }
                return;
            }
            None => match signaller {
                Some(signaller) => {
                    // Everything from here to the signal is on the fence's signalling path.
                    let _section = SignallingSection::begin();
                    let result = this.wait_for_inputs().and_then(|()| this.execute());
                    this.count(result);
                    match result {
                        Ok(()) => signaller.signal(),
                        Err(e) => signaller.signal_error(e),
                    }
                    result
                }
                None => {
                    let result = this.wait_for_inputs().and_then(|()| this.execute());
                    this.count(result);
                    result
                }
            },
        };
        // After the fence, and not here: writing user memory may fault pages in.
        if let Some(mut writes) = user_fences {
            writes.set_result(result);
            this.vm.write_user_fences(writes);
        }
    }
}

impl Job {
    /// Counts the job's end in its VM's statistics.
    fn count(&self, result: Result) {
        let stats = &self.vm.stats;
        Stats::inc(if result.is_ok() {
            &stats.jobs_done
        } else {
            &stats.jobs_failed
        });
    }
}

fn timed_out() -> Error {
    Error::from_errno(-(bindings::ETIMEDOUT as i32))
}

/// The error of work the VM's destruction, or its process's exit, cancelled.
pub(crate) fn canceled() -> Error {
    Error::from_errno(-(bindings::ECANCELED as i32))
}
