// SPDX-License-Identifier: GPL-2.0

//! GPU VMs: address spaces of the virtual GPU, their mappings, and the protocol that keeps
//! userptr mappings coherent with the CPU (Documentation/gpu/drm-vm-bind-locking.rst, "userptr
//! gpu_vmas" and "exec").
//!
//! Lock order, outermost first:
//!
//! 1. `File::vms`, the file's VMs;
//! 2. [`Vm::bind_lock`], held by a bind call that queues a bind (`DRM_HMMGPU_VM_BIND_ASYNC`):
//!    binds are queued, and a fenced one does its operations, in the order of their tickets;
//! 3. [`Vm::bindings`], the mappings: held to bind and unbind, to mirror userptrs at submission,
//!    and to handle a GPU page fault;
//! 4. the process's mmap lock, taken by `hmm_range_fault()` and `pin_user_pages()`;
//! 5. the ranges of the mirrors' range locks, taken under the mmap lock, for a snapshot or a
//!    pinning, and held until its entries are written (see [`kernel::mm::range_lock`]);
//! 6. [`Vm::state`], the notifier lock: the page table, the list of invalidated mirrors and the
//!    last job's fence. Invalidation callbacks take it, so nothing allocates under it (lockdep
//!    knows: it is primed with `fs_reclaim`), and jobs, and fenced binds in their turn, run under
//!    it in a fence-signalling section.
//!
//! Page-table tables are allocated with only `bindings` held and then linked in under `state`.

use crate::{
    bind::{Map, Object, QueuedBind},
    engine::Stop,
    gem::Bo,
    job::Job,
    mappings::{self, Backing, Mapping, Mappings, Room},
    mirror::Mirror,
    mode::{Completion, Mode},
    page_table::{PageSize, PageTable, Small, TablePool, SZ_2M, SZ_4K},
    pins::Pins,
    syncs::UserFenceWrites,
    unmapped::{Clearing, Piece, Unmapped},
};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, Allocator, KBox, KVVec, KVec, Vec},
    bindings, c_str,
    dma_fence::{Fence, FenceContext},
    drm::gem::BaseObject,
    impl_has_work,
    mm::user_fence::UserFenceQueue,
    mm::{
        interval_notifier::IntervalNotifier,
        invalidated::Invalidated,
        notifier_lock::{NotifierGuard, NotifierLock},
        pin::MemlockLimit,
        range_lock, Mm, MmWithUser, MmWithUserAsync,
    },
    new_fence_context, new_mutex, new_notifier_lock, new_spinlock, new_wait_queue, new_work,
    prelude::*,
    rbtree::RBTree,
    sync::{
        lock::{mutex::MutexBackend, Guard},
        wait_queue::{Timeout, WaitQueue},
        Arc, Mutex, SpinLock,
    },
    time::Ktime,
    types::ARef,
    uapi,
    workqueue::{OwnedQueue, Work, WorkItem, WqFlags},
};

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
pub(crate) const MAX_ROUNDS: u32 = 64;

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
    /// The mirrors to mirror again before a job may run (modes whose GPU cannot fault).
    pub(crate) invalidated: Invalidated<u64>,
    /// Pins invalidations took away, chained, for the release worker.
    stale: Option<KBox<Pins>>,
    /// What fenced unbinds took out and cleared, chained, for the release worker.
    unmapped: Option<KBox<Unmapped>>,
}

impl AsMut<Invalidated<u64>> for State {
    fn as_mut(&mut self) -> &mut Invalidated<u64> {
        &mut self.invalidated
    }
}

impl State {
    /// Hands pins an invalidation took away to the release worker. Never allocates.
    pub(crate) fn push_stale(&mut self, mut pins: KBox<Pins>) {
        pins.set_next(self.stale.take());
        self.stale = Some(pins);
    }

    /// Hands what a fenced unbind took out, once applied, to the release worker. Never
    /// allocates.
    pub(crate) fn push_unmapped(&mut self, mut unmapped: KBox<Unmapped>) {
        unmapped.next = self.unmapped.take();
        self.unmapped = Some(unmapped);
    }
}

/// A GPU VM.
#[pin_data]
pub(crate) struct Vm {
    pub(crate) mode: Mode,
    /// Whether the VM's mirrors take ranges in their notifiers' range locks (`range_locks`).
    pub(crate) range_locks: bool,
    /// The process the VM belongs to.
    pub(crate) mm: ARef<Mm>,
    /// Held by a call that queues a bind, so that binds take their tickets in the order they
    /// are queued, and the operations of fenced ones are done in that order.
    #[pin]
    pub(crate) bind_lock: Mutex<()>,
    #[pin]
    pub(crate) bindings: Mutex<Mappings>,
    #[pin]
    pub(crate) state: NotifierLock<State>,
    pub(crate) stats: Arc<Stats>,
    /// The timeline of the jobs' fences; `None` for a long-running VM, whose jobs have none.
    fences: Option<Arc<FenceContext>>,
    /// The timeline of the fenced binds' fences, which signal in queue order.
    pub(crate) bind_fences: Arc<FenceContext>,
    /// Woken when the input fences of a job or a queued bind have all signalled, when a queued
    /// bind is done, and when jobs are cancelled.
    pub(crate) events: Arc<WaitQueue>,
    /// The device's queue of user fences, which jobs write when they end.
    pub(crate) user_fences: Arc<UserFenceQueue>,
    queue: OwnedQueue,
    /// The queued binds (`DRM_HMMGPU_VM_BIND_ASYNC`), run one at a time in order.
    bind_queue: OwnedQueue,
    /// How many binds were queued, and how many of them are done. A bind's ticket is the count
    /// of binds queued with it: it is done once `binds_done` reaches its ticket.
    binds_queued: AtomicU64,
    binds_done: AtomicU64,
    /// The ticket of the last bind queued that is not fenced (it runs its operations in its
    /// turn).
    last_unfenced: AtomicU64,
    /// The device's queue that releases stale pins and writes user fences.
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
    release_work: Work<Vm, RELEASE_WORK>,
    /// The jobs' user fences to write, the last job's first (see [`Vm::write_user_fences`]).
    #[pin]
    user_fence_writes: SpinLock<Option<KBox<UserFenceWrites>>>,
    /// Writes them.
    #[pin]
    user_fence_work: Work<Vm, USER_FENCE_WORK>,
}

/// The work items of a VM: the release of stale pins, and the writes of user fences.
const RELEASE_WORK: u64 = 0;
const USER_FENCE_WORK: u64 = 1;

impl_has_work! {
    impl HasWork<Self, RELEASE_WORK> for Vm { self.release_work }
    impl HasWork<Self, USER_FENCE_WORK> for Vm { self.user_fence_work }
}

impl WorkItem<USER_FENCE_WORK> for Vm {
    type Pointer = Arc<Vm>;

    fn run(vm: Arc<Vm>) {
        // The list is newest first: reversed, the writes go in the order the jobs ended. Jobs
        // that end meanwhile queue the item again, which runs after this run (a work item does
        // not run twice at once on one queue).
        let mut newest_first = vm.user_fence_writes.lock().take();
        let mut oldest_first = None;
        while let Some(mut writes) = newest_first {
            newest_first = writes.next.take();
            writes.next = oldest_first;
            oldest_first = Some(writes);
        }
        while let Some(mut writes) = oldest_first {
            oldest_first = writes.next.take();
            writes.write();
        }
    }
}

impl WorkItem<RELEASE_WORK> for Vm {
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
        vm.release_unmapped();
    }
}

impl Vm {
    /// Creates a VM of the current process; its stale pins are released, and its jobs' user
    /// fences written (waking the waiters of `user_fences`), on `release_queue`.
    pub(crate) fn new(
        mode: Mode,
        release_queue: Arc<OwnedQueue>,
        user_fences: Arc<UserFenceQueue>,
    ) -> Result<Arc<Vm>> {
        let mm = Mm::current().ok_or(EINVAL)?;
        let fences = match mode.completion() {
            Completion::LongRunning => None,
            Completion::Fence => Some(Arc::pin_init(
                new_fence_context!(c_str!("hmmgpu"), mode.timeline()),
                GFP_KERNEL_ACCOUNT,
            )?),
        };
        let state = State {
            pt: PageTable::new()?,
            last_fence: None,
            invalidated: Invalidated::new(),
            stale: None,
            unmapped: None,
        };
        let vm = Arc::pin_init(
            try_pin_init!(Vm {
                mode,
                range_locks: RANGE_LOCKS.get() != 0,
                mm,
                bind_lock <- new_mutex!((), "hmmgpu::vm::bind_lock"),
                bindings <- new_mutex!(Mappings::new()),
                state <- new_notifier_lock!(state, "hmmgpu::vm::state"),
                stats: Arc::new(Stats::default(), GFP_KERNEL_ACCOUNT)?,
                fences,
                bind_fences: Arc::pin_init(
                    new_fence_context!(c_str!("hmmgpu"), c_str!("hmmgpu-bind")),
                    GFP_KERNEL_ACCOUNT,
                )?,
                events: Arc::pin_init(new_wait_queue!("hmmgpu::vm::events"), GFP_KERNEL_ACCOUNT)?,
                user_fences,
                // Jobs run in submission order, and under memory pressure: reclaim waits for
                // their fences (through invalidations).
                queue: OwnedQueue::new_ordered(c_str!("hmmgpu-vm"), WqFlags::MEM_RECLAIM)?,
                // Reclaim may wait for a fenced bind's fence: the queue must make progress under
                // memory pressure. (A bind that is not fenced allocates as it runs, but no fenced
                // bind is queued behind one that has not run: see `crate::bind`.)
                bind_queue: OwnedQueue::new_ordered(c_str!("hmmgpu-bind"), WqFlags::MEM_RECLAIM)?,
                binds_queued: AtomicU64::new(0),
                binds_done: AtomicU64::new(0),
                last_unfenced: AtomicU64::new(0),
                release_queue,
                cancelled: AtomicBool::new(false),
                submitted: AtomicU64::new(0),
                cancel_below: AtomicU64::new(0),
                release_work <- new_work!("hmmgpu::vm::release"),
                user_fence_writes <- new_spinlock!(None, "hmmgpu::vm::user_fence_writes"),
                user_fence_work <- new_work!("hmmgpu::vm::user_fence_writes"),
            }? Error),
            GFP_KERNEL_ACCOUNT,
        )?;
        vm.prime_lockdep();
        Ok(vm)
    }

    /// Takes the VM's locks once in their order (`bindings`, the mmap lock, a range, `state`),
    /// so that lockdep knows it from the start and reports an inversion the first time one
    /// happens, not only when both paths happen to run.
    fn prime_lockdep(&self) {
        let _bindings = self.bindings.lock();
        if let Some(mm) = self.mm_user() {
            let _mmap = mm.mmap_read_lock();
            range_lock::prime_lockdep(|| drop(self.state.lock()));
        }
    }

    /// The VM's process's address space, kept alive while the result is: `None` once it is
    /// gone. Given up with `mmput_async()`: its process may exit meanwhile, and tearing the
    /// address space down here would release the mirrors' notifiers, whose callbacks wait for
    /// the VM's last job, which may be the very job being submitted, not queued yet (the fuzzer
    /// found a submission hung so), or need `bindings`, held by binds and submissions.
    pub(crate) fn mm_user(&self) -> Option<ARef<MmWithUserAsync>> {
        self.mm.mmget_not_zero().map(MmWithUser::into_mmput_async)
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
        // A job waiting for its input fences looks again.
        self.events.wake_all();
    }

    /// Destroys the VM: cancels its jobs, waits for them, and removes every mapping, which
    /// breaks the reference cycle of the VM and its mirrors.
    pub(crate) fn shutdown(&self) {
        let guard = self.state.lock();
        self.cancelled.store(true, Ordering::Relaxed);
        drop(guard);
        // A job waiting for its input fences looks again, and ends.
        self.events.wake_all();
        // Submissions check `cancelled` and queue their job under `bindings`: once we have held
        // it, none queues any more. Binds are queued under the notifier lock, held above.
        drop(self.bindings.lock());
        // Queued binds that have not run end with `ECANCELED`.
        self.bind_queue.drain();
        self.queue.drain();
        // The user fences of the jobs that ended, the cancelled ones too, are written before we
        // return. With no job left, no invalidation waits for one, so their faults go ahead.
        // SAFETY: The work item is initialised and lives as long as `self`.
        unsafe { bindings::flush_work(Work::raw_get(&self.user_fence_work)) };
        let maps = self.bindings.lock().take_all();
        self.release(maps);
        // Invalidations queue no more release work (`cancelled`): wait for the last one, and
        // release what the last invalidations and fenced unbinds left.
        // SAFETY: The work item is initialised and lives as long as `self`.
        unsafe { bindings::flush_work(Work::raw_get(&self.release_work)) };
        self.release_stale_pins();
        self.release_unmapped();
    }

    /// Has the user fences of a job written, from its worker once it has ended: on the device's
    /// queue, after those of the jobs that ended before. Never allocates.
    pub(crate) fn write_user_fences(self: &Arc<Self>, mut writes: KBox<UserFenceWrites>) {
        {
            let mut pending = self.user_fence_writes.lock();
            writes.next = pending.take();
            *pending = Some(writes);
        }
        // Already queued, or running: it looks at the list again after, in either case.
        let _ = self
            .release_queue
            .enqueue::<Arc<Vm>, USER_FENCE_WORK>(self.clone());
    }

    /// Queues the release of stale pins, from an invalidation callback. Never allocates.
    pub(crate) fn queue_release(self: &Arc<Self>, _guard: &NotifierGuard<'_, State>) {
        if !self.cancelled() {
            // Already queued is fine: one run releases them all.
            let _ = self
                .release_queue
                .enqueue::<Arc<Vm>, RELEASE_WORK>(self.clone());
        }
    }

    /// Releases the pins invalidations took away. Never allocates, and takes the notifier lock
    /// only to take the pins: it may run under memory pressure, on a reclaim queue. Releasing
    /// them locks their pages and takes the mmap lock (to return the `RLIMIT_MEMLOCK` charge).
    pub(crate) fn release_stale_pins(&self) {
        let stale = self.state.lock().stale.take();
        // Unpinning locks pages: outside the notifier lock.
        drop(stale);
    }

    /// Releases what fenced unbinds took out, once applied: removes their mirrors' notifiers
    /// (which waits for their invalidations) and releases their pins. Not from a bind: a
    /// submission or a GPU fault may hold `bindings` while an invalidation waits for its job.
    pub(crate) fn release_unmapped(&self) {
        let unmapped = self.state.lock().unmapped.take();
        drop(unmapped);
    }

    /// Hands what fenced unbinds took out, once applied, to the release worker. Never allocates.
    pub(crate) fn release_later(
        self: &Arc<Self>,
        guard: &mut NotifierGuard<'_, State>,
        unmapped: KBox<Unmapped>,
    ) {
        guard.push_unmapped(unmapped);
        if !self.cancelled() {
            let _ = self
                .release_queue
                .enqueue::<Arc<Vm>, RELEASE_WORK>(self.clone());
        }
    }

    /// Clears the entries of `maps`, then drops them (removing their notifiers, releasing their
    /// pins) outside the notifier lock.
    fn release(&self, maps: RBTree<u64, Mapping>) {
        {
            let mut guard = self.state.lock();
            for (i, m) in maps.values().enumerate() {
                m.remove_locked(&mut guard);
                // A VM may have a million mappings. The notifier lock is a mutex.
                if i % 1024 == 1023 {
                    kernel::task::cond_resched();
                }
            }
        }
        drop(maps);
    }

    /// Submits `job`: gives it the next fence of the VM's timeline (unless the VM is
    /// long-running), mirrors the invalidated userptrs, then publishes the fence to the VM under
    /// the notifier lock and queues the job (see [`Vm::validate`]). Returns the fence.
    ///
    /// Fences are made and jobs queued under `bindings`, so that they signal in the order of
    /// their sequence numbers. A job whose submission fails after its fence was made is still
    /// queued, to signal that fence with the error in its turn.
    pub(crate) fn submit(&self, job: Pin<KBox<Job>>, owner: bool) -> Result<Option<ARef<Fence>>> {
        let b = self.bindings.lock();
        if self.cancelled() {
            return Err(ENOENT);
        }
        let fence = match &self.fences {
            Some(ctx) => {
                let signaller = ctx.new_fence()?;
                let fence: ARef<Fence> = signaller.fence().into();
                job.set_signaller(signaller);
                Some(fence)
            }
            None => None,
        };
        // Under `bindings`: indices follow submission order.
        job.set_index(self.submitted.fetch_add(1, Ordering::AcqRel));
        let published = self.validate(&b, owner, fence.as_ref());
        if let Err(e) = published {
            job.fail(e);
        }
        job.start_clock();
        // The queue owns the job from here; it cannot be queued twice.
        self.queue.enqueue(job);
        drop(b);
        self.mode.submitted(self);
        published.map(|()| fence)
    }

    /// The ticket the next bind queued gets. Stable while `bind_lock` is held.
    pub(crate) fn next_ticket(&self, _lock: &Guard<'_, (), MutexBackend>) -> u64 {
        self.binds_queued.load(Ordering::Acquire) + 1
    }

    /// The ticket of the last bind queued that is not fenced.
    pub(crate) fn last_unfenced(&self) -> u64 {
        self.last_unfenced.load(Ordering::Acquire)
    }

    /// Queues `bind`, which has ticket [`Vm::next_ticket`], on the VM's bind queue, after the
    /// binds queued before; `ENOENT` if the VM is being destroyed, and the bind is given back.
    pub(crate) fn queue_bind(
        &self,
        _lock: &Guard<'_, (), MutexBackend>,
        bind: Pin<KBox<QueuedBind>>,
    ) -> core::result::Result<(), Pin<KBox<QueuedBind>>> {
        // Under the notifier lock, under which `shutdown` sets `cancelled` before it drains the
        // queue: a bind queued here is drained, or refused.
        let guard = self.state.lock();
        if self.cancelled() {
            return Err(bind);
        }
        let ticket = self.binds_queued.fetch_add(1, Ordering::AcqRel) + 1;
        if !bind.fenced() {
            self.last_unfenced.store(ticket, Ordering::Release);
        }
        // The queue owns the bind from here; it cannot be queued twice.
        self.bind_queue.enqueue(bind);
        drop(guard);
        Ok(())
    }

    /// Waits until the binds queued so far are done. Interruptible (`ERESTARTSYS`).
    pub(crate) fn wait_for_binds(&self) -> Result {
        self.wait_for_ticket(self.binds_queued.load(Ordering::Acquire))
    }

    /// Waits until the bind of ticket `ticket`, and those before it, are done, or the VM is
    /// being destroyed. Interruptible (`ERESTARTSYS`).
    pub(crate) fn wait_for_ticket(&self, ticket: u64) -> Result {
        let done = || self.is_done(ticket);
        if !done() {
            self.events
                .wait_until(|| done() || self.cancelled(), Timeout::Never, true)?;
        }
        Ok(())
    }

    /// Whether the bind of ticket `ticket`, and those before it, are done.
    pub(crate) fn is_done(&self, ticket: u64) -> bool {
        self.binds_done.load(Ordering::Acquire) >= ticket
    }

    /// Counts a queued bind done, from its worker, and wakes those waiting for it.
    pub(crate) fn bind_done(&self) {
        self.binds_done.fetch_add(1, Ordering::AcqRel);
        self.events.wake_all();
    }

    /// Locks `bindings` once no queued bind has entries to clear in `[lo, hi)`, waiting for
    /// them (interruptibly). A fenced bind (`own`) never waits: its call found no other bind's
    /// entries to clear in its maps' ranges under `bind_lock`, so any there are its own
    /// (`EBUSY`). Prunes the tables of what the binds done since the last call cleared.
    fn lock_cleared(
        &self,
        lo: u64,
        hi: u64,
        own: Option<u64>,
    ) -> Result<Guard<'_, Mappings, MutexBackend>> {
        loop {
            let mut b = self.bindings.lock();
            let done = self.prune_cleared(&mut b)?;
            match b.clearing_over(lo, hi, done) {
                None => return Ok(b),
                Some(_) if own.is_some() => return Err(EBUSY),
                Some(t) => {
                    drop(b);
                    self.wait_for_ticket(t)?;
                    if self.cancelled() {
                        return Err(ENOENT);
                    }
                }
            }
        }
    }

    /// Prunes the tables of what the binds done since the last call cleared. Returns how many
    /// binds are done. Called with `bindings` held (`b`).
    fn prune_cleared(&self, b: &mut Mappings) -> Result<u64> {
        let done = self.binds_done.load(Ordering::Acquire);
        for (l, h) in b.take_cleared(done)? {
            let mut guard = self.state.lock();
            guard.pt.prune(l, h - l, |x, y| b.needs(x, y));
        }
        Ok(done)
    }

    /// Waits until no queued bind has entries to clear in `[lo, hi)` (interruptibly).
    pub(crate) fn wait_cleared(&self, lo: u64, hi: u64) -> Result {
        drop(self.lock_cleared(lo, hi, None)?);
        Ok(())
    }

    /// Whether no queued bind has entries to clear in `[lo, hi)`. Stays so while `bind_lock`
    /// is held: only fenced calls, which hold it, list entries to clear.
    pub(crate) fn is_cleared(&self, lo: u64, hi: u64) -> bool {
        let b = self.bindings.lock();
        b.clearing_over(lo, hi, self.binds_done.load(Ordering::Acquire))
            .is_none()
    }

    /// Allocates the page-table tables `[va, va + size)` needs, those of 4 KiB entries where
    /// `small` asks for them, and links them in. Called with `bindings` held.
    pub(crate) fn reserve(&self, va: u64, size: u64, small: Small<'_>) -> Result {
        // Empty: made before the lock, though it allocates nothing.
        let mut spares_only = TablePool::alloc(0)?;
        let needed = {
            let mut guard = self.state.lock();
            // Tables freed before are taken first.
            let missing = guard.pt.tables_needed(va, size, small)?;
            if missing == 0 {
                return Ok(());
            }
            let needed = missing.saturating_sub(guard.pt.spare_tables());
            if needed == 0 {
                // Nothing to allocate: the spare tables are linked in at once.
                return guard.pt.reserve_from(va, size, small, &mut spares_only);
            }
            needed
        };
        let mut pool = TablePool::alloc(needed)?;
        // Tables are only added with `bindings` held, as here: the count is still right.
        self.state
            .lock()
            .pt
            .reserve_from(va, size, small, &mut pool)?;
        // Unused tables are freed outside the lock.
        drop(pool);
        Ok(())
    }

    /// `DRM_HMMGPU_VM_BIND_MAP`, its fields checked ([`crate::bind::Op::read`]); pages it pins
    /// count against `limit`. Once queued binds have cleared the entries they are to clear in
    /// the range (`EBUSY` if it is the bind's own, `clearing`).
    pub(crate) fn map(
        self: &Arc<Self>,
        args: &Map,
        limit: &MemlockLimit,
        clearing: &Clearing<'_>,
    ) -> Result {
        let (va, size) = (args.va, args.size);
        let mut b = self.lock_cleared(va, va + size, clearing.own())?;
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
        let room = Room::new(GFP_KERNEL_ACCOUNT)?;
        let made = self.new_mapping(args, &b, limit);
        let mapping = match made {
            Ok(mapping) => mapping,
            Err(e) => {
                // The tables reserved for it that no other mapping needs go again.
                self.state
                    .lock()
                    .pt
                    .prune(va, size, |lo, hi| b.needs(lo, hi));
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
        args: &Map,
        b: &Mappings,
        limit: &MemlockLimit,
    ) -> Result<Mapping> {
        let (va, size, offset) = (args.va, args.size, args.offset);
        let read_only = args.read_only;
        let obj_end = offset.checked_add(size).ok_or(EINVAL)?;
        let first_page = (offset / SZ_4K) as usize;
        let mapping = match &args.obj {
            Object::Bo(bo) => {
                if obj_end > bo.size() as u64 {
                    return Err(EINVAL);
                }
                let pages = Bo::pin_pages(bo, first_page, (size / SZ_4K) as usize)?;
                let mapping = Mapping {
                    va,
                    size,
                    first_page,
                    write: !read_only,
                    backing: Backing::Bo(pages),
                };
                self.reserve(va, size, Small::All)?;
                // On error nothing stays mapped.
                mapping.map_bo(&mut self.state.lock().pt)?;
                mapping
            }
            Object::Userptr(obj) => {
                if obj_end > obj.size() as u64 {
                    return Err(EINVAL);
                }
                let userptr = &***obj;
                // A VM mirrors its own process only, bound by that process: pins are taken from
                // the caller's address space.
                if userptr.mm().as_raw() != self.mm.as_raw() || !self.is_owner() {
                    return Err(EFAULT);
                }
                let write = !read_only && !userptr.read_only();
                let cpu = userptr.start() + offset as usize;
                if let Some(small) = self.mode.small_tables() {
                    self.reserve(va, size, small)?;
                }
                self.reserve_invalid(b.userptrs() + 1)?;
                let n = self.new_mirror(va, cpu, size, write)?;
                self.mode.bind(self, &n, limit)?;
                Mapping {
                    va,
                    size,
                    first_page,
                    write,
                    backing: Backing::Userptr(n),
                }
            }
        };
        Ok(mapping)
    }

    /// Creates the mirror of a userptr mapping (see [`Coherence::new_mirror`]).
    fn new_mirror(
        self: &Arc<Self>,
        va: u64,
        cpu: usize,
        size: u64,
        write: bool,
    ) -> Result<Arc<IntervalNotifier<Mirror>>> {
        let mm = self.mm_user().ok_or(EFAULT)?;
        let mirror = Mirror::new(self, va, cpu, size, write);
        let n = Arc::pin_init(
            IntervalNotifier::new(&mm, cpu, size as usize, self.range_locks, mirror),
            GFP_KERNEL_ACCOUNT,
        )?;
        self.mode.new_mirror(n.data(), &mut self.state.lock());
        Ok(n)
    }

    /// `DRM_HMMGPU_VM_BIND_UNMAP`: removes what is mapped in `[va, va + size)`, splitting
    /// mappings that lie partly outside; pages the pieces pin count against `limit`. The
    /// entries of what it removes are cleared at once, or in the bind's turn (`clearing`).
    pub(crate) fn unmap(
        self: &Arc<Self>,
        va: u64,
        size: u64,
        limit: &MemlockLimit,
        clearing: &mut Clearing<'_>,
    ) -> Result {
        let end = PageTable::check_range(va, size)?;
        // A fenced unbind is applied after the binds before it: it need not wait for them.
        let mut b = match clearing {
            Clearing::Now => self.lock_cleared(va, end, None)?,
            Clearing::InTurn { .. } => {
                let mut b = self.bindings.lock();
                self.prune_cleared(&mut b)?;
                b
            }
        };
        let Some(unmapped) = self.take_out(&mut b, va, end, limit, clearing)? else {
            return Ok(());
        };
        match clearing {
            Clearing::Now => {
                {
                    let mut guard = self.state.lock();
                    unmapped.apply(&mut guard);
                    // The tables no mapping needs any more go.
                    guard
                        .pt
                        .prune(unmapped.lo(), unmapped.hi() - unmapped.lo(), |lo, hi| {
                            b.needs(lo, hi)
                        });
                }
                drop(b);
                // Notifiers are removed and pins released outside the notifier lock.
                drop(unmapped);
            }
            Clearing::InTurn { unmapped: list, .. } => {
                // Room was made by `take_out`.
                let _ = push_within_capacity(list, unmapped);
            }
        }
        Ok(())
    }

    /// Takes what is mapped in `[va, end)` out of the mapping table `b`, and puts in the pieces
    /// left of mappings that lie partly outside, their entries not cleared yet. `None` if
    /// nothing is mapped there. For a fenced bind (`clearing`), makes room for the result in its
    /// list and lists the range as to be cleared in its turn.
    fn take_out(
        self: &Arc<Self>,
        b: &mut Mappings,
        va: u64,
        end: u64,
        limit: &MemlockLimit,
        clearing: &mut Clearing<'_>,
    ) -> Result<Option<KBox<Unmapped>>> {
        // The first and last mappings the range overlaps, and how many, in one pass.
        let (mut head, mut tail, mut count) = (None, None, 0);
        for m in b.overlapping(va, end) {
            head = head.or(Some(m));
            tail = Some(m);
            count += 1;
        }
        let (Some(head), Some(tail)) = (head, tail) else {
            return Ok(None);
        };
        let (lo, hi) = (head.va.min(va), tail.end().max(end));
        // The pieces left on either side, made before anything is removed.
        let mut pieces = KVec::with_capacity(2, GFP_KERNEL_ACCOUNT)?;
        if head.va < va {
            pieces.push(self.piece(head, head.va, va)?, GFP_KERNEL_ACCOUNT)?;
        }
        if tail.end() > end {
            pieces.push(self.piece(tail, end, tail.end())?, GFP_KERNEL_ACCOUNT)?;
        }
        if b.len() - count + pieces.len() > max_mappings() {
            return Err(ENOSPC);
        }
        let added = pieces.iter().filter(|p| p.mirror().is_some()).count();
        self.reserve_invalid(b.userptrs() + added)?;
        // Before a piece is mapped: it writes 4 KiB entries beside its edge.
        self.split_edges(pieces.iter().map(|p| if p.va < va { va } else { end }))?;
        // The userptr mappings the pieces are cut from, and the part of each that is unmapped.
        let cut = |m: &Mapping, side: bool| match (&m.backing, side) {
            (Backing::Userptr(n), true) => Some((n.clone(), va.max(m.va), end.min(m.end()))),
            _ => None,
        };
        let cuts = [cut(head, head.va < va), cut(tail, tail.end() > end)];
        let rooms = mappings::room(pieces.len())?;
        let old = KVVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
        let mut unmapped = KBox::new(
            Unmapped {
                va,
                end,
                old,
                pieces: KVec::with_capacity(pieces.len(), GFP_KERNEL_ACCOUNT)?,
                next: None,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        if let Clearing::InTurn {
            ticket,
            unmapped: list,
        } = clearing
        {
            list.reserve(1, GFP_KERNEL_ACCOUNT)?;
            b.add_clearing(lo, hi, *ticket)?;
            // Until the turn, the mappings cut keep their entries, and the pieces inherit those
            // in their ranges (see `MirrorState::cut`). Set before the pieces map anything.
            let mut guard = self.state.lock();
            for (n, lo, hi) in cuts.iter().flatten() {
                n.data().state.access_mut(&mut guard).cut = Some((*lo, *hi));
            }
            for p in pieces.iter() {
                if let Some(n) = p.mirror() {
                    n.data().state.access_mut(&mut guard).inherits = true;
                }
            }
        }
        // Nothing fails from here on: pieces that `split` pinned and mapped are never dropped
        // with their entries in the page table.
        for p in pieces.iter() {
            // Whether userptr pieces may keep their entries (see `Coherence::split`).
            let mirror = match &p.backing {
                Backing::Userptr(n) => {
                    let seq = self.mode.split(self, n, limit).map(|s| s.detach());
                    Some((n.clone(), seq))
                }
                Backing::Bo(_) => None,
            };
            let piece = Piece {
                va: p.va,
                end: p.end(),
                mirror,
            };
            // There is room for every piece.
            let _ = push_within_capacity(&mut unmapped.pieces, piece);
        }
        b.remove_overlapping(va, end, &mut unmapped.old);
        for (room, p) in rooms.into_iter().zip(pieces) {
            b.insert(room, p);
        }
        Ok(Some(unmapped))
    }

    /// Splits each 2 MiB entry that maps an address of `edges`, the edges of an unbind with a
    /// piece beside them, into the 4 KiB entries that translate as it did (reserving their table
    /// first): the unbind can then clear its side alone, in its turn, while the piece keeps its
    /// entries and writes new ones next to it. The translation of every address stays the same.
    fn split_edges(&self, edges: impl Iterator<Item = u64>) -> Result {
        for edge in edges.filter(|e| e % SZ_2M != 0) {
            let huge = |pt: &PageTable| {
                pt.translate_for(edge, false, true)
                    .is_ok_and(|t| t.size == PageSize::Huge)
            };
            if !huge(&self.state.lock().pt) {
                continue;
            }
            self.reserve(edge & !(SZ_2M - 1), SZ_2M, Small::All)?;
            self.state.lock().pt.split_huge(edge)?;
        }
        Ok(())
    }

    /// A new mapping for `[lo, hi)` of mapping `m`.
    fn piece(self: &Arc<Self>, m: &Mapping, lo: u64, hi: u64) -> Result<Mapping> {
        let first_page = m.first_page + ((lo - m.va) / SZ_4K) as usize;
        let backing = match &m.backing {
            // The piece's own pages only: those the unbind took out are released with it.
            Backing::Bo(pages) => {
                Backing::Bo(pages.pin_part(first_page, ((hi - lo) / SZ_4K) as usize)?)
            }
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

    /// Handles a job's GPU page fault `stop` the way the VM's mode does
    /// ([`Coherence::gpu_fault`]): in fault mode, mirrors and maps a window around it; `held`,
    /// if given, runs while the window is held against invalidations, and its result is
    /// returned.
    pub(crate) fn handle_fault(
        &self,
        stop: Stop,
        held: Option<&mut dyn FnMut() -> Result<(), Stop>>,
    ) -> Result<Option<Result<(), Stop>>> {
        self.mode.gpu_fault(self, stop, held)
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
        let mut v = KVec::with_capacity(1, GFP_KERNEL_ACCOUNT)?;
        let cap = v.capacity();
        for i in 0..cap {
            assert!(push_within_capacity(&mut v, i).is_ok());
        }
        assert!(push_within_capacity(&mut v, 99) == Err(99));
        assert_eq!(v.capacity(), cap);
        Ok(())
    }
}
