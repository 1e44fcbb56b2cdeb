// SPDX-License-Identifier: GPL-2.0

//! GPU VMs: address spaces of the virtual GPU, their mappings, and the protocol that keeps
//! userptr mappings coherent with the CPU (Documentation/gpu/drm-vm-bind-locking.rst, "userptr
//! gpu_vmas" and "exec").
//!
//! Lock order, outermost first:
//!
//! 1. `File::vms`, the file's VMs;
//! 2. [`Vm::bindings`], the mappings: held to bind and unbind, to mirror userptrs at submission,
//!    and to handle a GPU page fault;
//! 3. the process's mmap lock, taken by `hmm_range_fault()` and `pin_user_pages()`;
//! 4. [`Vm::state`], the notifier lock: the page table, the list of invalidated mirrors and the
//!    last job's fence. Invalidation callbacks take it, so nothing allocates under it (lockdep
//!    knows: it is primed with `fs_reclaim`), and jobs run the engine under it.
//!
//! Page-table tables are allocated with only `bindings` held and then linked in under `state`.

use crate::{
    engine::Stop,
    gem::Bo,
    job::Job,
    mappings::{self, Backing, Mapping, Mappings, Room},
    mirror::{self, Mirror, Pinning, Pins},
    page_table::{PageSize, PageTable, TablePool, SZ_2M, SZ_4K},
    queue::OwnedQueue,
    userptr::UserptrObject,
};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    alloc::{flags::GFP_KERNEL, Allocator, KBox, KVVec, KVec, Vec},
    bindings, c_str,
    dma_fence::{Fence, FenceContext},
    drm,
    drm::gem::BaseObject,
    impl_has_work,
    mm::{
        hmm::{self, Fault, Range, Snapshot},
        interval_notifier::{IntervalNotifier, ReadSeq},
        notifier_lock::{NotifierGuard, NotifierLock},
        Mm,
    },
    new_fence_context, new_mutex, new_notifier_lock, new_work,
    prelude::*,
    rbtree::RBTree,
    sync::{Arc, Mutex},
    time::Ktime,
    types::ARef,
    uapi,
    workqueue::{Work, WorkItem},
};

/// How a VM keeps userptr mappings coherent with the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// GPU page faults mirror pages on demand.
    Fault,
    /// Submissions mirror invalidated mappings first.
    Prefault,
    /// Pages are pinned long-term.
    Pinned,
}

/// The modes the driver knows.
const MODES: u32 = uapi::DRM_HMMGPU_VM_MODE_FAULT
    | uapi::DRM_HMMGPU_VM_MODE_PREFAULT
    | uapi::DRM_HMMGPU_VM_MODE_PINNED;

kernel::module_param_u32!(
    VM_MODES,
    "hmmgpu",
    "vm_modes",
    MODES,
    "GPU VM modes offered (DRM_HMMGPU_VM_MODE_*: 1 fault, 2 prefault, 4 pinned; 6 emulates a GPU that cannot fault)"
);

/// The modes the device offers (`DRM_HMMGPU_PARAM_VM_MODES`): those of the `vm_modes` module
/// parameter that the driver knows.
pub(crate) fn offered_modes() -> u32 {
    VM_MODES.get() & MODES
}

impl Mode {
    /// The mode `flags` of `DRM_IOCTL_HMMGPU_VM_CREATE` ask for, if the device offers it.
    pub(crate) fn from_flags(flags: u32) -> Result<Mode> {
        if flags & !offered_modes() != 0 {
            return Err(EINVAL);
        }
        Self::known(flags)
    }

    /// The mode `flags` name, offered or not.
    fn known(flags: u32) -> Result<Mode> {
        match flags & MODES {
            f if f != flags => Err(EINVAL),
            uapi::DRM_HMMGPU_VM_MODE_FAULT => Ok(Mode::Fault),
            uapi::DRM_HMMGPU_VM_MODE_PREFAULT => Ok(Mode::Prefault),
            uapi::DRM_HMMGPU_VM_MODE_PINNED => Ok(Mode::Pinned),
            _ => Err(EINVAL),
        }
    }
}

/// The middle size of the windows a GPU page fault mirrors.
const SZ_64K: u64 = 1 << 16;

kernel::module_param_u32!(
    MAX_MAPPINGS,
    "hmmgpu",
    "max_mappings",
    1 << 20,
    "The most mappings a GPU VM holds (default 1048576); binds past it fail with -ENOSPC",
    writable
);

/// The most mappings a VM holds now.
fn max_mappings() -> usize {
    MAX_MAPPINGS.get() as usize
}

/// How many times a submission mirrors again the userptrs an invalidation raced with, before it
/// gives up with `EAGAIN`.
const MAX_ROUNDS: u32 = 64;

kernel::module_param_u32!(
    RANGE_LOCKS,
    "hmmgpu",
    "range_locks",
    1,
    "Serialize snapshots with invalidations per range (1, the default); 0 relies on sequence numbers alone, to measure the difference. For VMs created afterwards",
    writable
);

/// How long, at most, the release of stale pins waits for the address space's mmap lock to be
/// free (for the munmap that invalidated them to finish).
const RELEASE_WAIT_MS: i64 = 500;

/// Where a submission is in its rounds of mirroring.
struct Round {
    /// Which round this is, from 0.
    index: u32,
    /// Mirrors found not mapped: left cleared this submission (jobs that touch them fault).
    skip: KVVec<u64>,
}

/// How a pin is checked against the CPU page table under the notifier lock.
enum PinCheck<'r, 'n> {
    /// A snapshot taken after pinning must show the pinned pages.
    Snapshot(Snapshot<'r, 'n, Mirror>),
    /// No invalidation may have happened since this sequence number, read before pinning.
    Seq(ReadSeq),
}

/// A VM's counters (`struct drm_hmmgpu_vm_stats`), kept lock-free so that any path updates them.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) faults: AtomicU64,
    pub(crate) faults_4k: AtomicU64,
    pub(crate) faults_2m: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) pinned_pages: AtomicU64,
    pub(crate) jobs_done: AtomicU64,
    pub(crate) jobs_failed: AtomicU64,
}

impl Stats {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the notifier lock protects.
pub(crate) struct State {
    pub(crate) pt: PageTable,
    /// The fence of the last job submitted: jobs run in order, so once it signals the VM is idle.
    pub(crate) last_fence: Option<ARef<Fence>>,
    /// The GPU addresses of mirrors invalidated since they were last mirrored (prefault and
    /// pinned modes), with room for every mirror of the VM.
    invalid: KVVec<u64>,
    /// The list ran out of room: every mirror must be looked at.
    walk_all: bool,
    /// How many times a mirror with entries was invalidated: a submission publishes its job only
    /// if no mirror was since it took the invalidated list.
    generation: u64,
    /// Invalidation callbacks between marking their mirror invalid and clearing its entries
    /// (waiting for the last job): no job may be published meanwhile.
    pub(crate) clearing: u32,
    /// Pins invalidations took away, chained, for the release worker.
    stale: Option<KBox<Pins>>,
}

impl State {
    /// Notes that a mirror with entries was invalidated.
    pub(crate) fn invalidated(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Hands pins an invalidation took away to the release worker. Never allocates.
    pub(crate) fn push_stale(&mut self, mut pins: KBox<Pins>) {
        pins.set_next(self.stale.take());
        self.stale = Some(pins);
    }

    /// Puts the mirror at `va` on the invalidated list, and returns whether there was room (if
    /// not, every mirror is looked at). Never allocates.
    pub(crate) fn list_invalid(&mut self, va: u64) -> bool {
        let listed = push_within_capacity(&mut self.invalid, va).is_ok();
        self.walk_all |= !listed;
        listed
    }
}

/// A GPU VM.
#[pin_data]
pub(crate) struct Vm {
    pub(crate) mode: Mode,
    /// Whether the VM's mirrors take ranges in their notifiers' range locks (`range_locks`).
    range_locks: bool,
    /// The process the VM belongs to.
    mm: ARef<Mm>,
    #[pin]
    bindings: Mutex<Mappings>,
    #[pin]
    pub(crate) state: NotifierLock<State>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) fences: Arc<FenceContext>,
    queue: OwnedQueue,
    /// The device's queue that releases stale pins.
    release_queue: Arc<OwnedQueue>,
    /// Set under the notifier lock, so that invalidations see it before queueing work.
    cancelled: AtomicBool,
    /// How many jobs were submitted.
    submitted: AtomicU64,
    /// Jobs submitted before the VM's process exited (its address space was released), whose
    /// index is below this, end with `ECANCELED`.
    cancel_below: AtomicU64,
    /// Releases the pins invalidations took away, soon after they did.
    #[pin]
    release_work: Work<Vm>,
}

impl_has_work! {
    impl HasWork<Self> for Vm { self.release_work }
}

impl WorkItem for Vm {
    type Pointer = Arc<Vm>;

    fn run(vm: Arc<Vm>) {
        // Mostly an munmap queued us, and is still unmapping with the mmap lock held: let it
        // finish first rather than compete with it for the CPU (the release costs about what
        // freeing the pages costs the munmap). Waiting on the lock itself would not do: the
        // munmap's unlock would wake us, and on its CPU we would run before it returns. So
        // look at the lock, a millisecond at a time, for a while at most.
        let deadline = Ktime::ktime_get().to_ns() + RELEASE_WAIT_MS * 1_000_000;
        while vm.mm.mmap_lock_is_held() && Ktime::ktime_get().to_ns() < deadline {
            // SAFETY: FFI call without requirements; a worker may sleep.
            unsafe { bindings::msleep(1) };
        }
        vm.release_stale_pins();
    }
}

impl Vm {
    /// Creates a VM of the current process; its stale pins are released on `release_queue`.
    pub(crate) fn new(mode: Mode, release_queue: Arc<OwnedQueue>) -> Result<Arc<Vm>> {
        let mm = Mm::current().ok_or(EINVAL)?;
        // Fault-mode jobs fault CPU pages in, which allocates, before their fences signal.
        let fences = match mode {
            Mode::Fault => Arc::pin_init(
                new_fence_context!(c_str!("hmmgpu"), c_str!("hmmgpu-vm-fault"), long_running),
                GFP_KERNEL,
            )?,
            _ => Arc::pin_init(
                new_fence_context!(c_str!("hmmgpu"), c_str!("hmmgpu-vm")),
                GFP_KERNEL,
            )?,
        };
        let state = State {
            pt: PageTable::new()?,
            last_fence: None,
            invalid: KVVec::new(),
            walk_all: false,
            generation: 0,
            clearing: 0,
            stale: None,
        };
        let vm = Arc::pin_init(
            try_pin_init!(Vm {
                mode,
                range_locks: RANGE_LOCKS.get() != 0,
                mm,
                bindings <- new_mutex!(Mappings::new()),
                state <- new_notifier_lock!(state, "hmmgpu::vm::state"),
                stats: Arc::new(Stats::default(), GFP_KERNEL)?,
                fences,
                queue: OwnedQueue::ordered(c_str!("hmmgpu-vm"))?,
                release_queue,
                cancelled: AtomicBool::new(false),
                submitted: AtomicU64::new(0),
                cancel_below: AtomicU64::new(0),
                release_work <- new_work!("hmmgpu::vm::release"),
            }? Error),
            GFP_KERNEL,
        )?;
        vm.prime_lockdep();
        Ok(vm)
    }

    /// Takes the VM's locks once in their order (`bindings`, the mmap lock, `state`), so that
    /// lockdep knows it from the start and reports an inversion the first time one happens,
    /// not only when both paths happen to run.
    fn prime_lockdep(&self) {
        let _bindings = self.bindings.lock();
        if let Some(mm) = self.mm.mmget_not_zero() {
            let _mmap = mm.mmap_read_lock();
            drop(self.state.lock());
        }
    }

    /// Whether the current process owns the VM.
    pub(crate) fn is_owner(&self) -> bool {
        Mm::current().is_some_and(|mm| mm.as_raw() == self.mm.as_raw())
    }

    /// Whether the VM is being destroyed.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Whether the job of submission index `index` ends with `ECANCELED`: the VM is being
    /// destroyed, or the job was submitted before its process exited.
    pub(crate) fn job_cancelled(&self, index: u64) -> bool {
        self.cancelled() || index < self.cancel_below.load(Ordering::Acquire)
    }

    /// Cancels the jobs submitted so far, from the invalidation that releases the address space
    /// (the process exits), which waits for them: running jobs stop at their next slice,
    /// waiting ones at their next look at their input fences. Jobs submitted later (through a
    /// file the process passed on) run.
    pub(crate) fn cancel_jobs(&self, _guard: &NotifierGuard<'_, State>) {
        // Submissions count themselves before they publish under the notifier lock, held here.
        let submitted = self.submitted.load(Ordering::Acquire);
        self.cancel_below.fetch_max(submitted, Ordering::AcqRel);
    }

    /// Destroys the VM: cancels its jobs, waits for them, and removes every mapping, which
    /// breaks the reference cycle of the VM and its mirrors.
    pub(crate) fn shutdown(&self) {
        let guard = self.state.lock();
        self.cancelled.store(true, Ordering::Relaxed);
        drop(guard);
        // Submissions check `cancelled` and queue their job under `bindings`: once we have held
        // it, none queues any more.
        drop(self.bindings.lock());
        self.queue.drain();
        let maps = self.bindings.lock().take_all();
        self.release(maps);
        // Invalidations queue no more release work (`cancelled`): wait for the last one, and
        // release what the last invalidations left.
        // SAFETY: The work item is initialised and lives as long as `self`.
        unsafe { bindings::flush_work(Work::raw_get(&self.release_work)) };
        self.release_stale_pins();
    }

    /// Queues the release of stale pins, from an invalidation callback. Never allocates.
    pub(crate) fn queue_release(self: &Arc<Self>, _guard: &NotifierGuard<'_, State>) {
        if !self.cancelled() {
            // Already queued is fine: one run releases them all.
            let _ = self.release_queue.queue().enqueue(self.clone());
        }
    }

    /// Releases the pins invalidations took away. Never allocates, and takes the notifier lock
    /// only to take the pins: it may run under memory pressure, on a reclaim queue. Releasing
    /// them locks their pages and takes the mmap lock (to return the `RLIMIT_MEMLOCK` charge).
    fn release_stale_pins(&self) {
        let stale = self.state.lock().stale.take();
        // Unpinning locks pages: outside the notifier lock.
        drop(stale);
    }

    /// Clears the entries of `maps`, then drops them (removing their notifiers, releasing their
    /// pins) outside the notifier lock.
    fn release(&self, maps: RBTree<u64, Mapping>) {
        {
            let mut guard = self.state.lock();
            for m in maps.values() {
                m.remove_locked(&mut guard);
            }
        }
        drop(maps);
    }

    /// Submits `job`: gives it the next fence of the VM's timeline, in prefault and pinned
    /// modes mirrors the invalidated userptrs, then publishes the fence to the VM under the
    /// notifier lock and queues the job. Returns the fence.
    ///
    /// Fences are made and jobs queued under `bindings`, so that they signal in the order of
    /// their sequence numbers. A job whose submission fails after its fence was made is still
    /// queued, to signal that fence with the error in its turn.
    pub(crate) fn submit(&self, job: Pin<KBox<Job>>, owner: bool) -> Result<ARef<Fence>> {
        let b = self.bindings.lock();
        if self.cancelled() {
            return Err(ENOENT);
        }
        let signaller = self.fences.new_fence()?;
        let fence: ARef<Fence> = signaller.fence().into();
        job.set_signaller(signaller);
        // Under `bindings`: indices follow submission order.
        job.set_index(self.submitted.fetch_add(1, Ordering::AcqRel));
        let published = match self.mode {
            Mode::Fault => {
                self.state.lock().last_fence = Some(fence.clone());
                Ok(())
            }
            Mode::Prefault | Mode::Pinned => {
                self.validate(&b, owner, |state| state.last_fence = Some(fence.clone()))
            }
        };
        if let Err(e) = published {
            job.fail(e);
        }
        // The queue owns the job from here; it cannot be queued twice.
        self.queue.queue().enqueue(job);
        drop(b);
        // Pins a pinned-mode submission did not need, now that the job it published is queued
        // (see `mirror_pins`).
        if self.mode == Mode::Pinned {
            self.release_stale_pins();
        }
        published.map(|()| fence)
    }

    /// The exec loop of the locking document: mirrors the invalidated userptrs (and only them),
    /// then checks under the notifier lock that no invalidation raced, and if none did, calls
    /// `publish` under it. Mirrors that cannot be mirrored (not mapped any more, not the
    /// submitter's process) are left cleared: jobs that touch them fault.
    fn validate(&self, b: &Mappings, owner: bool, publish: impl FnOnce(&mut State)) -> Result {
        let mut publish = Some(publish);
        // Mirrors found not mapped, left cleared this time.
        let mut round = Round {
            index: 0,
            skip: KVVec::new(),
        };
        for index in 0..MAX_ROUNDS {
            round.index = index;
            if self.cancelled() {
                return Err(ENOENT);
            }
            let (todo, generation) = self.take_invalid(b)?;
            let done = match self.mode {
                Mode::Prefault => {
                    self.mirror_snapshots(b, &todo, generation, &mut round.skip, &mut publish)
                }
                _ => self.mirror_pins(b, &todo, generation, owner, &mut round, &mut publish),
            };
            let done = match done {
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
                guard.last_fence.clone().filter(|_| guard.clearing > 0)
            };
            if let Some(fence) = busy {
                fence.wait_interruptible(u64::MAX)?;
            }
        }
        Err(EAGAIN)
    }

    /// The addresses of the mirrors to mirror again, and the invalidation generation they are
    /// as of.
    fn take_invalid(&self, b: &Mappings) -> Result<(KVVec<u64>, u64)> {
        // Room for the listed mirrors, or all of them when the list overflowed: made without
        // the lock, and again if the list grew meanwhile.
        let room = |state: &State| match state.walk_all {
            true => b.userptrs(),
            false => state.invalid.len(),
        };
        let mut want = {
            // Mostly nothing was invalidated since the last submission: no room to make.
            let guard = self.state.lock();
            if guard.invalid.is_empty() && !guard.walk_all {
                return Ok((KVVec::new(), guard.generation));
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
        let generation = guard.generation;
        let mut walk_all = guard.walk_all;
        for i in 0..guard.invalid.len() {
            let va = guard.invalid[i];
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
        Ok((todo, generation))
    }

    /// Makes the invalidated list hold each mirror still invalid once, and publishes, unless a
    /// mirror with entries was invalidated since `generation` (it must be mirrored again first)
    /// or an invalidation is still to clear its mirror's entries. Returns whether it published.
    fn finish(
        &self,
        b: &Mappings,
        guard: &mut NotifierGuard<'_, State>,
        generation: u64,
        publish: &mut Option<impl FnOnce(&mut State)>,
    ) -> bool {
        // Entries of mirrors valid again, of removed mirrors, and repeated ones go.
        for i in 0..guard.invalid.len() {
            if let Some(m) = b.mirror_at(guard.invalid[i]) {
                m.data().state.access(guard).listed = false;
            }
        }
        let mut i = 0;
        while i < guard.invalid.len() {
            let keep = b.mirror_at(guard.invalid[i]).is_some_and(|m| {
                let state = m.data().state.access(guard);
                let keep = state.invalid && !state.listed;
                state.listed |= keep;
                keep
            });
            if keep {
                i += 1;
            } else {
                let last = guard.invalid.len() - 1;
                guard.invalid.swap(i, last);
                // SAFETY: `u64` needs no drop; the length only shrinks.
                unsafe { guard.invalid.set_len(last) };
            }
        }
        // The list ran out of room before: list again what is invalid and not listed.
        if core::mem::take(&mut guard.walk_all) {
            for m in b.iter().filter_map(Mapping::mirror) {
                let m = m.data();
                let state = m.state.access(guard);
                if state.invalid && !state.listed {
                    let listed = guard.list_invalid(m.va);
                    m.state.access(guard).listed = listed;
                }
            }
        }
        if generation != guard.generation || guard.clearing > 0 {
            return false;
        }
        if let Some(publish) = publish.take() {
            publish(guard);
        }
        true
    }

    /// Prefault mode: snapshots the CPU page table of the mirrors at `todo`, then writes their
    /// entries under the lock and, if no invalidation raced, publishes. Returns whether it did.
    ///
    /// Each snapshot keeps its range taken until its entries are written: invalidations of it
    /// that arrive meanwhile wait, so that the round succeeds unless one came before.
    fn mirror_snapshots(
        &self,
        b: &Mappings,
        todo: &[u64],
        generation: u64,
        skip: &mut KVVec<u64>,
        publish: &mut Option<impl FnOnce(&mut State)>,
    ) -> Result<bool> {
        let mut ranges = KVVec::with_capacity(todo.len(), GFP_KERNEL)?;
        for &va in todo.iter().filter(|va| !skip.contains(va)) {
            if let Some(n) = b.mirror_at(va) {
                let m = n.data();
                ranges.push(snapshot_range(n, m.cpu, m.size as usize)?, GFP_KERNEL)?;
            }
        }
        let Some(mm) = self.mm.mmget_not_zero() else {
            // The address space is gone: nothing to mirror, jobs that touch the mirrors fault.
            return Ok(self.finish(b, &mut self.state.lock(), generation, publish));
        };
        let fault = |r: &Range<'_, Mirror>| r.notifier().data().fault_for(false);
        let results = match hmm::fault_all(&mm, ranges.iter_mut(), fault) {
            Err(e) if e == EAGAIN => return Ok(false),
            r => r?,
        };
        let mut snapshots = KVVec::with_capacity(results.len(), GFP_KERNEL)?;
        let mut missing = KVVec::new();
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(s) => snapshots.push((s.notifier().data().va, s), GFP_KERNEL)?,
                Err(e) if e == EFAULT || e == EPERM => missing.push(i, GFP_KERNEL)?,
                Err(e) => return Err(e),
            }
        }
        if !missing.is_empty() {
            drop(snapshots);
            return self.fault_missing(ranges, &missing, skip);
        }
        let mut guard = self.state.lock();
        let mut raced = false;
        for (va, snapshot) in snapshots {
            let Some(n) = b.mirror_at(va) else { continue };
            let write = n.data().write;
            let mapped = snapshot.commit_with(&mut guard, |valid, state| {
                mirror::map_snapshot(&mut state.pt, va, &valid, write)
            });
            match mapped {
                None => raced = true,
                Some(mapped) => {
                    mapped?;
                    let state = n.data().state.access(&mut guard);
                    state.invalid = false;
                    state.mapped = true;
                }
            }
        }
        let published = !raced && self.finish(b, &mut guard, generation, publish);
        drop(guard);
        Ok(published)
    }

    /// Prefault mode: faults in the ranges at `missing` of `ranges`, which [`hmm::fault_all`]
    /// could not: those a userfaultfd handler must bring in, with nothing held, so that the next
    /// round finds them; those not mapped (any more), with the whole mapping's permissions, go on
    /// `skip`: left cleared this submission, jobs that touch them fault. Returns `false`: the
    /// round must be tried again.
    fn fault_missing(
        &self,
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
                Err(e) if e == EFAULT || e == EPERM => skip.push(m.va, GFP_KERNEL)?,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Pinned mode: pins the mirrors at `todo` again (only the VM's own process can), checks
    /// that the pins are what the CPU maps, writes their entries under the lock and, if no
    /// invalidation raced, publishes. Returns whether it did.
    ///
    /// Each mirror is pinned with its range taken (see [`Pinning`]), so invalidations of it that
    /// arrive meanwhile wait for its pins to be installed, and mostly its sequence number shows
    /// the pins current at no cost. When it does not (an invalidation came first, or the pinning
    /// itself migrated pages), a snapshot of the CPU page table taken after the pins must show
    /// the pinned pages.
    fn mirror_pins(
        &self,
        b: &Mappings,
        todo: &[u64],
        generation: u64,
        owner: bool,
        round: &mut Round,
        publish: &mut Option<impl FnOnce(&mut State)>,
    ) -> Result<bool> {
        let skip = &mut round.skip;
        // Only the VM's process pins, so its address space is alive when it does.
        let mm = self.mm.mmget_not_zero().filter(|_| owner);
        // Pins invalidations took away still count against `RLIMIT_MEMLOCK`: release them
        // before pinning again, rather than wait for the worker.
        self.release_stale_pins();
        // The first round pins the fast way, the others with the ranges taken.
        let hold = round.index > 0 && self.range_locks;
        let mut mirrors = KVVec::with_capacity(todo.len(), GFP_KERNEL)?;
        let mut waiters = KVVec::new();
        if mm.is_some() {
            for &va in todo.iter().filter(|va| !skip.contains(va)) {
                let Some(n) = b.mirror_at(va) else { continue };
                mirrors.push(n, GFP_KERNEL)?;
                if hold {
                    waiters.push(n.range_lock().waiter()?, GFP_KERNEL)?;
                }
            }
        }
        // Pins not installed, or replaced, stay here and are released after the lock, with
        // their ranges, each with its mirror's address.
        let mut pinned = KVVec::with_capacity(mirrors.len(), GFP_KERNEL)?;
        if let Some(mm) = mm.as_deref() {
            let results = match Pinning::pin_all(&mirrors, mm, &mut waiters, hold, &self.stats) {
                Ok(results) => results,
                // Over the limit while an invalidation still holds the pins it is taking away
                // (once it is done, and the caller waits for it, they are released), or a
                // range changed while the pages were migrated for pinning: try again.
                Err(e) if e == EAGAIN || (e == ENOMEM && self.state.lock().clearing > 0) => {
                    return Ok(false)
                }
                Err(e) => return Err(e),
            };
            for (n, result) in mirrors.iter().zip(results) {
                match result {
                    Ok(p) => pinned.push((n.data().va, p), GFP_KERNEL)?,
                    // Not mapped (any more): left cleared, jobs that touch it fault.
                    Err(_) => skip.push(n.data().va, GFP_KERNEL)?,
                }
            }
        }
        // The cheap check first; the pins it does not show current are checked again below.
        let mut recheck = KVVec::with_capacity(pinned.len(), GFP_KERNEL)?;
        let mut guard = self.state.lock();
        for (i, (va, p)) in pinned.iter_mut().enumerate() {
            let Some(n) = b.mirror_at(*va) else { continue };
            if !self.install_pins(&mut guard, n, PinCheck::Seq(p.seq), &mut p.pins)? {
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
            let mut ranges = KVVec::with_capacity(recheck.len(), GFP_KERNEL)?;
            for &i in recheck.iter() {
                let Some(n) = b.mirror_at(pinned[i].0) else {
                    continue;
                };
                let m = n.data();
                ranges.push(snapshot_range(n, m.cpu, m.size as usize)?, GFP_KERNEL)?;
            }
            let Some(mm) = mm.as_deref() else {
                return Ok(false);
            };
            let snapshots = match hmm::fault_all(mm, ranges.iter_mut(), |_| Fault::Snapshot) {
                Err(e) if e == EAGAIN => return Ok(false),
                r => r?,
            };
            guard = self.state.lock();
            for snapshot in snapshots {
                let snapshot = snapshot?;
                let va = snapshot.notifier().data().va;
                let Some(n) = b.mirror_at(va) else { continue };
                let Some((_, p)) = pinned.iter_mut().find(|(v, _)| *v == va) else {
                    continue;
                };
                raced |=
                    !self.install_pins(&mut guard, n, PinCheck::Snapshot(snapshot), &mut p.pins)?;
            }
        }
        let published = !raced && self.finish(b, &mut guard, generation, publish);
        if published {
            // Releasing pins returns their RLIMIT_MEMLOCK charge, which takes the mmap lock for
            // writing; an invalidation that holds it for reading (KSM, madvise) may be waiting
            // for the fence just published, whose job is queued only once we return. Hand the
            // pins to the release worker's list instead (never allocates); the submission
            // releases them once the job is queued.
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

    /// Under the lock: if `check` says the pins are what the CPU maps, writes the entries from
    /// them and installs them, leaving the pins they replace in `pins`, to release after the
    /// lock. Returns whether it did.
    fn install_pins(
        &self,
        guard: &mut NotifierGuard<'_, State>,
        n: &IntervalNotifier<Mirror>,
        check: PinCheck<'_, '_>,
        pins: &mut Option<KBox<Pins>>,
    ) -> Result<bool> {
        let current = match check {
            PinCheck::Seq(seq) => !n.read_retry(guard, seq),
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
        if let Err(e) = mirror::map_pins(&mut guard.pt, m.va, &p, m.write) {
            *pins = Some(p);
            return Err(e);
        }
        let state = m.state.access(guard);
        state.invalid = false;
        state.mapped = true;
        *pins = state.pins.replace(p);
        Ok(true)
    }

    /// Allocates the page-table tables `[va, va + size)` needs and links them in.
    fn reserve(&self, va: u64, size: u64) -> Result {
        let needed = {
            let guard = self.state.lock();
            // Tables freed before are taken first.
            guard
                .pt
                .tables_needed(va, size)?
                .saturating_sub(guard.pt.spare_tables())
        };
        let mut pool = TablePool::alloc(needed)?;
        // Tables are only added with `bindings` held, as here: the count is still right.
        self.state.lock().pt.reserve_from(va, size, &mut pool)?;
        // Unused tables are freed outside the lock.
        drop(pool);
        Ok(())
    }

    /// Makes room on the invalidated list for `n` mirrors.
    fn reserve_invalid(&self, n: usize) -> Result {
        let capacity = self.state.lock().invalid.capacity();
        if capacity >= n {
            return Ok(());
        }
        // Doubling, so that a million binds copy the list about twenty times, not a million.
        let mut fresh = KVVec::with_capacity(n.max(capacity.saturating_mul(2)), GFP_KERNEL)?;
        let old = {
            let mut guard = self.state.lock();
            if guard.invalid.capacity() >= n {
                return Ok(());
            }
            for &va in guard.invalid.iter() {
                // `fresh` has room for all of them.
                let _ = push_within_capacity(&mut fresh, va);
            }
            core::mem::replace(&mut guard.invalid, fresh)
        };
        drop(old);
        Ok(())
    }

    /// `DRM_HMMGPU_VM_BIND_MAP`.
    pub(crate) fn map(
        self: &Arc<Self>,
        file: &drm::File<crate::file::File>,
        args: &uapi::drm_hmmgpu_vm_bind,
    ) -> Result {
        let (va, size, offset) = (args.va, args.size, args.offset);
        PageTable::check_range(va, size)?;
        if args.flags & !uapi::DRM_HMMGPU_VM_BIND_READ_ONLY != 0 || offset % SZ_4K != 0 {
            return Err(EINVAL);
        }
        offset.checked_add(size).ok_or(EINVAL)?;
        let mut b = self.bindings.lock();
        if self.cancelled() {
            return Err(ENOENT);
        }
        if b.overlaps(va, va + size) {
            return Err(EBUSY);
        }
        if b.len() >= max_mappings() {
            return Err(ENOSPC);
        }
        // Room to link the mapping in, made first: once entries are written, nothing may fail
        // (dropping the mapping would leave entries to pages no longer kept).
        let room = Room::new(GFP_KERNEL)?;
        let made = self.new_mapping(file, args, &b);
        let mapping = match made {
            Ok(mapping) => mapping,
            Err(e) => {
                // The tables reserved for it that no other mapping needs go again.
                self.state
                    .lock()
                    .pt
                    .prune(va, size, |lo, hi| b.overlaps(lo, hi));
                return Err(e);
            }
        };
        b.insert(room, mapping);
        Ok(())
    }

    /// The mapping `DRM_HMMGPU_VM_BIND_MAP` asks for, its tables reserved and, for a GEM object
    /// or a pinned userptr, its entries written.
    fn new_mapping(
        self: &Arc<Self>,
        file: &drm::File<crate::file::File>,
        args: &uapi::drm_hmmgpu_vm_bind,
        b: &Mappings,
    ) -> Result<Mapping> {
        let (va, size, offset) = (args.va, args.size, args.offset);
        let read_only = args.flags & uapi::DRM_HMMGPU_VM_BIND_READ_ONLY != 0;
        let obj_end = offset.checked_add(size).ok_or(EINVAL)?;
        let first_page = (offset / SZ_4K) as usize;
        let mapping = if let Ok(bo) = Bo::lookup_handle(file, args.handle) {
            if obj_end > bo.size() as u64 {
                return Err(EINVAL);
            }
            let mapping = Mapping {
                va,
                size,
                first_page,
                write: !read_only,
                backing: Backing::Bo(Bo::pin_pages(&bo)?),
            };
            self.reserve(va, size)?;
            // On error nothing stays mapped.
            mapping.map_bo(&mut self.state.lock().pt)?;
            mapping
        } else {
            let obj = UserptrObject::lookup_handle(file, args.handle)?;
            if obj_end > obj.size() as u64 {
                return Err(EINVAL);
            }
            let userptr = &**obj;
            // A VM mirrors its own process only, bound by that process: pins are taken from the
            // caller's address space.
            if userptr.mm().as_raw() != self.mm.as_raw() || !self.is_owner() {
                return Err(EFAULT);
            }
            let write = !read_only && !userptr.read_only();
            let cpu = userptr.start() + offset as usize;
            self.reserve(va, size)?;
            self.reserve_invalid(b.userptrs() + 1)?;
            let n = self.new_mirror(va, cpu, size, write)?;
            if self.mode == Mode::Pinned {
                self.pin_at_bind(&n)?;
            }
            Mapping {
                va,
                size,
                first_page,
                write,
                backing: Backing::Userptr(n),
            }
        };
        Ok(mapping)
    }

    /// Creates the mirror of a userptr mapping; in prefault and pinned modes it starts on the
    /// invalidated list.
    fn new_mirror(
        self: &Arc<Self>,
        va: u64,
        cpu: usize,
        size: u64,
        write: bool,
    ) -> Result<Pin<KBox<IntervalNotifier<Mirror>>>> {
        let mm = self.mm.mmget_not_zero().ok_or(EFAULT)?;
        let mirror = Mirror::new(self, va, cpu, size, write);
        let n = KBox::pin_init(
            IntervalNotifier::new(&mm, cpu, size as usize, self.range_locks, mirror),
            GFP_KERNEL,
        )?;
        if self.mode != Mode::Fault {
            n.data().mark_invalid(&mut self.state.lock());
        }
        Ok(n)
    }

    /// Pinned mode: pins a new mirror's pages and maps them, so that a bind fails if they
    /// cannot be pinned.
    fn pin_at_bind(&self, n: &IntervalNotifier<Mirror>) -> Result {
        let m = n.data();
        let mm = self.mm.mmget_not_zero().ok_or(EFAULT)?;
        // Made for the first round that holds the range.
        let mut waiters = KVec::new();
        for round in 0..MAX_ROUNDS {
            // As in `mirror_pins`: what invalidations unpinned is uncharged first.
            self.release_stale_pins();
            let hold = round > 0 && self.range_locks;
            if hold && waiters.is_empty() {
                waiters.push(n.range_lock().waiter()?, GFP_KERNEL)?;
            }
            let mut p = match Pinning::pin_all(&[n], &mm, &mut waiters, hold, &self.stats) {
                Err(e) if e == EAGAIN => {
                    Stats::inc(&self.stats.retries);
                    continue;
                }
                Ok(p) => p.into_iter().next().ok_or(EINVAL)??,
                Err(e) => return Err(e),
            };
            // Mostly nothing changed the range while it was pinned: then the pins are
            // current, with no snapshot to take and compare page by page.
            let mut guard = self.state.lock();
            if self.install_pins(&mut guard, n, PinCheck::Seq(p.seq), &mut p.pins)? {
                return Ok(());
            }
            drop(guard);
            let mut range = snapshot_range(n, m.cpu, m.size as usize)?;
            let snapshot = match range.fault(Fault::Snapshot) {
                Err(e) if is_timed_out(&e) => {
                    Stats::inc(&self.stats.retries);
                    continue;
                }
                r => r?,
            };
            let mut guard = self.state.lock();
            if self.install_pins(&mut guard, n, PinCheck::Snapshot(snapshot), &mut p.pins)? {
                return Ok(());
            }
            drop(guard);
            Stats::inc(&self.stats.retries);
        }
        Err(EAGAIN)
    }

    /// `DRM_HMMGPU_VM_BIND_UNMAP`: removes what is mapped in `[va, va + size)`, splitting
    /// mappings that lie partly outside.
    pub(crate) fn unmap(self: &Arc<Self>, va: u64, size: u64) -> Result {
        let end = PageTable::check_range(va, size)?;
        let mut b = self.bindings.lock();
        // The first and last mappings the range overlaps, and how many, in one pass.
        let (mut head, mut tail, mut count) = (None, None, 0);
        for m in b.overlapping(va, end) {
            head = head.or(Some(m));
            tail = Some(m);
            count += 1;
        }
        let (Some(head), Some(tail)) = (head, tail) else {
            return Ok(());
        };
        // The pieces left on either side, made before anything is removed.
        let mut pieces = KVec::with_capacity(2, GFP_KERNEL)?;
        if head.va < va {
            pieces.push(self.piece(head, head.va, va)?, GFP_KERNEL)?;
        }
        if tail.end() > end {
            pieces.push(self.piece(tail, end, tail.end())?, GFP_KERNEL)?;
        }
        if b.len() - count + pieces.len() > max_mappings() {
            return Err(ENOSPC);
        }
        let added = pieces.iter().filter(|p| p.mirror().is_some()).count();
        self.reserve_invalid(b.userptrs() + added)?;
        let rooms = mappings::room(pieces.len())?;
        let mut old = KVVec::with_capacity(count, GFP_KERNEL)?;
        // Nothing fails from here on.
        let mut piece_vas = [None; 2];
        b.remove_overlapping(va, end, &mut old);
        for (i, (room, p)) in rooms.into_iter().zip(pieces).enumerate() {
            piece_vas[i] = Some(p.va);
            b.insert(room, p);
        }
        {
            let mut guard = self.state.lock();
            // Userptr pieces start unmapped, their new mirrors to mirror again; the old
            // mappings' entries go.
            for m in old.iter() {
                m.remove_locked(&mut guard);
            }
            // GEM pieces keep their pages: map them again (a 2 MiB entry that was cleared in
            // part went whole). The tables stayed reserved, so this cannot fail.
            for p in piece_vas.iter().flatten().filter_map(|&pva| b.find(pva)) {
                let _ = p.map_bo(&mut guard.pt);
            }
            // The tables no mapping needs any more go.
            guard.pt.prune(va, size, |lo, hi| b.overlaps(lo, hi));
        }
        drop(b);
        // Notifiers are removed and pins released outside the notifier lock.
        drop(old);
        Ok(())
    }

    /// A new mapping for `[lo, hi)` of mapping `m`.
    fn piece(self: &Arc<Self>, m: &Mapping, lo: u64, hi: u64) -> Result<Mapping> {
        let first_page = m.first_page + ((lo - m.va) / SZ_4K) as usize;
        let backing = match &m.backing {
            Backing::Bo(pages) => Backing::Bo(pages.clone_pin()?),
            Backing::Userptr(n) => {
                let cpu = n.data().cpu_of(lo);
                Backing::Userptr(self.new_mirror(lo, cpu, hi - lo, m.write)?)
            }
        };
        Ok(Mapping {
            va: lo,
            size: hi - lo,
            first_page,
            write: m.write,
            backing,
        })
    }

    /// Handles a GPU page fault of a job at `va` (fault mode): mirrors a window around it and
    /// maps it, or fails with `EFAULT` if nothing lets the job access `va`.
    ///
    /// With `held`, the window stays taken in its notifier's range lock while `held` runs, after
    /// the notifier lock is released: invalidations of the window wait (for the snapshot's
    /// patience at most) until the job has used what the fault mapped. The fallback that gives a
    /// job progress when invalidations keep clearing what its faults mirror. Returns what
    /// `held` returned.
    pub(crate) fn handle_fault<R>(
        &self,
        stop: Stop,
        held: Option<impl FnOnce() -> R>,
    ) -> Result<Option<R>> {
        let Stop::Fault { va, write, .. } = stop else {
            return Ok(None);
        };
        let b = self.bindings.lock();
        let m = b.find(va).ok_or(EFAULT)?;
        let n = m.mirror().ok_or(EFAULT)?;
        let mirror = n.data();
        if write && !mirror.write {
            return Err(EFAULT);
        }
        let fault = mirror.fault_for(write);
        let range = self.fault_windows(m, n, va, fault, held.is_some());
        let range = range.map_err(|e| if e == EPERM { EFAULT } else { e })?;
        {
            let guard = self.state.lock();
            Stats::inc(&self.stats.faults);
            match guard.pt.translate_for(va, write, true) {
                Ok(t) if t.size == PageSize::Huge => Stats::inc(&self.stats.faults_2m),
                Ok(_) => Stats::inc(&self.stats.faults_4k),
                // Invalidated again already: the job faults again and retries.
                Err(_) => Stats::inc(&self.stats.retries),
            }
        }
        let result = held.map(|f| f());
        // The window goes back once the job has used it.
        drop(range);
        Ok(result)
    }

    /// Mirrors a window around `va` of mapping `m` (of mirror `n`): 2 MiB-aligned within the
    /// mapping, so that huge pages map whole; where part of it is unmapped or read-only, a
    /// smaller one, then the page alone. With `hold`, returns the window's range, still taken.
    fn fault_windows<'n>(
        &self,
        m: &Mapping,
        n: &'n IntervalNotifier<Mirror>,
        va: u64,
        fault: Fault,
        hold: bool,
    ) -> Result<Option<Range<'n, Mirror>>> {
        let mut result = Err(EFAULT);
        for size in [SZ_2M, SZ_64K, SZ_4K] {
            let lo = core::cmp::max(va & !(size - 1), m.va);
            let hi = core::cmp::min((va | (size - 1)) + 1, m.end());
            result = self.fault_window(n, lo, hi, fault, hold);
            if !matches!(result, Err(e) if e == EFAULT || e == EPERM) {
                break;
            }
        }
        result
    }

    /// Mirrors GPU range `[lo, hi)` of mirror `n` and writes its entries. With `hold`, returns
    /// the range, still taken.
    fn fault_window<'n>(
        &self,
        n: &'n IntervalNotifier<Mirror>,
        lo: u64,
        hi: u64,
        fault: Fault,
        hold: bool,
    ) -> Result<Option<Range<'n, Mirror>>> {
        let m = n.data();
        let mut range = snapshot_range(n, m.cpu_of(lo), (hi - lo) as usize)?;
        // The range is taken from the walk to the commit: only invalidations that came before
        // it, or its own fault's, make a round fail. If they keep doing so, the job faults
        // again, and mirrors holding the window (see `Job`).
        for _ in 0..MAX_ROUNDS {
            let snapshot = range.fault(fault)?;
            let mut guard = self.state.lock();
            let mapped = snapshot.commit_with(&mut guard, |valid, state| {
                let mapped = mirror::map_snapshot(&mut state.pt, lo, &valid, m.write);
                if hold {
                    // Released when `range` is dropped.
                    valid.hold_range();
                }
                mapped
            });
            drop(guard);
            if let Some(mapped) = mapped {
                mapped?;
                return Ok(hold.then_some(range));
            }
            Stats::inc(&self.stats.retries);
        }
        Ok(None)
    }

    /// `DRM_IOCTL_HMMGPU_VM_STATS`.
    pub(crate) fn read_stats(&self, out: &mut uapi::drm_hmmgpu_vm_stats) {
        let s = &*self.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        {
            let guard = self.state.lock();
            out.entries_4k = guard.pt.entries_written(PageSize::Small);
            out.entries_2m = guard.pt.entries_written(PageSize::Huge);
        }
        out.faults = get(&s.faults);
        out.faults_4k = get(&s.faults_4k);
        out.faults_2m = get(&s.faults_2m);
        out.invalidations = get(&s.invalidations);
        out.retries = get(&s.retries);
        out.pinned_pages = get(&s.pinned_pages);
        out.jobs_done = get(&s.jobs_done);
        out.jobs_failed = get(&s.jobs_failed);
    }
}

/// A range of `n` to snapshot. It keeps the framework's deadline: a second, plus a millisecond
/// per 64 pages, which is also how long an invalidation waits, at most, for the snapshot that
/// holds the range.
fn snapshot_range(
    n: &IntervalNotifier<Mirror>,
    start: usize,
    len: usize,
) -> Result<Range<'_, Mirror>> {
    Range::new(n, start, len)
}

/// Whether `e` is `ETIMEDOUT`: a snapshot that invalidations kept overtaking until its deadline.
pub(crate) fn is_timed_out(e: &Error) -> bool {
    e.to_errno() == -(bindings::ETIMEDOUT as i32)
}

/// Pushes `value` onto `vec` if it has room, without allocating.
pub(crate) fn push_within_capacity<T, A: Allocator>(
    vec: &mut Vec<T, A>,
    value: T,
) -> core::result::Result<(), T> {
    let Some(slot) = vec.spare_capacity_mut().first_mut() else {
        return Err(value);
    };
    slot.write(value);
    // SAFETY: The first slot past the end was just initialised.
    unsafe { vec.set_len(vec.len() + 1) };
    Ok(())
}

#[kernel::kunit::kunit_tests(hmmgpu_vm)]
mod tests {
    use super::*;

    #[test]
    fn push_within_capacity_never_grows() -> Result {
        let mut v = KVec::with_capacity(1, GFP_KERNEL)?;
        let cap = v.capacity();
        for i in 0..cap {
            assert!(push_within_capacity(&mut v, i).is_ok());
        }
        assert!(push_within_capacity(&mut v, 99) == Err(99));
        assert_eq!(v.capacity(), cap);
        Ok(())
    }

    #[test]
    fn modes_are_one_flag_the_device_offers() {
        assert!(Mode::known(uapi::DRM_HMMGPU_VM_MODE_FAULT) == Ok(Mode::Fault));
        assert!(Mode::known(uapi::DRM_HMMGPU_VM_MODE_PREFAULT) == Ok(Mode::Prefault));
        assert!(Mode::known(uapi::DRM_HMMGPU_VM_MODE_PINNED) == Ok(Mode::Pinned));
        for bad in [0, MODES, uapi::DRM_HMMGPU_VM_MODE_FAULT | 1 << 8, 1 << 31] {
            assert!(Mode::known(bad) == Err(EINVAL));
            assert!(Mode::from_flags(bad) == Err(EINVAL));
        }
        // Only what the module parameter offers.
        for mode in [1, 2, 4] {
            let offered = offered_modes() & mode != 0;
            assert_eq!(Mode::from_flags(mode).is_ok(), offered);
        }
    }
}
