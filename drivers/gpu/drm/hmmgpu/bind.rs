// SPDX-License-Identifier: GPL-2.0

//! Binds: the operations of `DRM_IOCTL_HMMGPU_VM_BIND`, run by the call, or queued on the VM's
//! bind queue to run once their wait syncs have signalled (`DRM_HMMGPU_VM_BIND_ASYNC`).
//!
//! An operation is read in two steps: [`Op::read`] checks what the call alone can check (its
//! fields) and looks up its object, which it keeps; [`Op::run`] does it on the VM as the
//! operations before it left it, which is where a range in use or an object too small shows.
//! A synchronous bind reads and runs each operation in turn.
//!
//! A queued bind ([`QueuedBind`]) is one of two kinds:
//!
//! - **Unfenced**, when it signals no sync object: the call reads every operation, so that it
//!   fails with nothing queued if one cannot be read, and the bind runs them in its turn. They
//!   fault pages in, pin them and allocate memory then, so nothing may wait for them through a
//!   dma-fence: the bind reports through user fences. The worker runs the operations as the
//!   caller would have: in the VM process's address space if the caller was that process (only
//!   it binds userptrs and pins), charging the caller's memory cgroup and `RLIMIT_MEMLOCK`.
//! - **Fenced**, when it signals a sync object, which gets its fence, unsignalled, from the call
//!   on (as xe's binds do): so nothing its turn does may allocate, or wait for what allocates.
//!   The call does the operations, all that allocates with them, on the VM as the binds queued
//!   before leave it ([`Vm::map`] and [`Vm::unmap`] with [`Clearing::InTurn`]): a map is done
//!   at once, over a range no queued bind still has entries to clear in (the call waits for
//!   them first); an unmap takes its mappings out of the mapping table and leaves its pieces
//!   there, but their entries stay until the bind's turn. The turn, once the wait syncs have
//!   signalled, clears them under the notifier lock ([`Unmapped::apply`]) in a fence-signalling
//!   section, and signals the fence. What was taken out is released afterwards by the VM's
//!   release worker. So that the call can do its operations as the binds before it leave the
//!   VM, it first waits for the unfenced ones to have run: no fenced bind is ever queued
//!   behind a bind that allocates in its turn.

use crate::{
    file::DrmFile,
    gem::Bo,
    job::canceled,
    page_table::{PageTable, SZ_4K},
    syncs::{BindSignals, UserFenceWrites},
    unmapped::{Clearing, Unmapped},
    userptr::UserptrObject,
    vm::Vm,
};
use core::cell::Cell;
use kernel::{
    dma_fence::{Dependencies, SignallingSection},
    drm::gem::BaseObject,
    impl_has_work,
    mm::{memcg::MemCgroup, pin::MemlockLimit, Mm},
    new_work,
    prelude::*,
    sync::{wait_queue::Timeout, Arc},
    types::ARef,
    uapi,
    workqueue::{Work, WorkItem},
};

/// The object a `DRM_HMMGPU_VM_BIND_MAP` maps, looked up by its handle.
pub(crate) enum Object {
    Bo(ARef<Bo>),
    Userptr(ARef<UserptrObject>),
}

impl Object {
    /// The object `handle` names in `file`: `ENOENT` if none.
    fn lookup(file: &DrmFile, handle: u32) -> Result<Self> {
        match Bo::lookup_handle(file, handle) {
            Ok(bo) => Ok(Self::Bo(bo)),
            Err(_) => UserptrObject::lookup_handle(file, handle).map(Self::Userptr),
        }
    }
}

/// A `DRM_HMMGPU_VM_BIND_MAP`, its fields checked.
pub(crate) struct Map {
    pub(crate) obj: Object,
    pub(crate) va: u64,
    pub(crate) size: u64,
    pub(crate) offset: u64,
    pub(crate) read_only: bool,
}

/// One operation of a bind.
pub(crate) enum Op {
    Map(Map),
    Unmap { va: u64, size: u64 },
}

impl Op {
    /// Reads operation `raw` of a bind by `file`: checks its fields (`EINVAL`) and looks up its
    /// object (`ENOENT`).
    pub(crate) fn read(file: &DrmFile, raw: &uapi::drm_hmmgpu_vm_bind_op) -> Result<Self> {
        if raw.pad != 0 {
            return Err(EINVAL);
        }
        match raw.op {
            uapi::DRM_HMMGPU_VM_BIND_MAP => {
                PageTable::check_range(raw.va, raw.size)?;
                if raw.flags & !uapi::DRM_HMMGPU_VM_BIND_READ_ONLY != 0 || raw.offset % SZ_4K != 0 {
                    return Err(EINVAL);
                }
                raw.offset.checked_add(raw.size).ok_or(EINVAL)?;
                Ok(Self::Map(Map {
                    obj: Object::lookup(file, raw.handle)?,
                    va: raw.va,
                    size: raw.size,
                    offset: raw.offset,
                    read_only: raw.flags & uapi::DRM_HMMGPU_VM_BIND_READ_ONLY != 0,
                }))
            }
            uapi::DRM_HMMGPU_VM_BIND_UNMAP => {
                if raw.handle != 0 || raw.flags != 0 || raw.offset != 0 {
                    return Err(EINVAL);
                }
                PageTable::check_range(raw.va, raw.size)?;
                Ok(Self::Unmap {
                    va: raw.va,
                    size: raw.size,
                })
            }
            _ => Err(EINVAL),
        }
    }

    /// Runs the operation on `vm`; pages it pins count against `limit`; an unmap clears entries
    /// as `clearing` says.
    pub(crate) fn run(
        &self,
        vm: &Arc<Vm>,
        limit: &MemlockLimit,
        clearing: &mut Clearing<'_>,
    ) -> Result {
        match self {
            Self::Map(map) => vm.map(map, limit, clearing),
            Self::Unmap { va, size } => vm.unmap(*va, *size, limit, clearing),
        }
    }

    /// Whether the operation maps a userptr that a worker may not map for the current task:
    /// one of another process, or a VM of another process.
    fn maps_foreign_userptr(&self, vm: &Vm) -> bool {
        match self {
            Self::Map(Map {
                obj: Object::Userptr(u),
                ..
            }) => u.mm().as_raw() != vm.mm.as_raw() || !vm.is_owner(),
            _ => false,
        }
    }
}

/// What a queued bind does in its turn.
enum Turn {
    /// Runs its operations (an unfenced bind).
    Run {
        ops: KVec<Op>,
        /// Whether the caller was the VM's process: then the operations run in its address
        /// space.
        owner: bool,
        /// The caller's `RLIMIT_MEMLOCK`, which pins count against.
        memlock: MemlockLimit,
        /// The memory cgroup of the caller's process, charged with what the operations allocate.
        memcg: Option<MemCgroup>,
    },
    /// Applies what the call did (a fenced bind): clears the entries of what its unmaps took
    /// out, in order, and signals with the call's `result`, if it failed.
    Apply {
        unmapped: Cell<KVec<KBox<Unmapped>>>,
        result: Cell<Result>,
    },
}

/// A bind queued on its VM's bind queue (`DRM_HMMGPU_VM_BIND_ASYNC`).
#[pin_data]
pub(crate) struct QueuedBind {
    #[pin]
    work: Work<QueuedBind>,
    vm: Arc<Vm>,
    turn: Turn,
    /// The fences to wait for before the turn.
    inputs: Dependencies,
    /// The user fences, written when the bind is done; `None` if it has none.
    user_fences: Cell<Option<KBox<UserFenceWrites>>>,
    /// The fence of a fenced bind, and its sync objects, which have it from the call on.
    signals: Cell<Option<BindSignals>>,
}

impl_has_work! {
    impl HasWork<Self> for QueuedBind { self.work }
}

impl QueuedBind {
    /// An unfenced bind of the current task's that runs `ops` on `vm` once `inputs` have
    /// signalled, then writes `user_fences`. `EFAULT` if an operation maps a userptr the current
    /// task may not have mapped from a worker.
    pub(crate) fn new(
        vm: Arc<Vm>,
        ops: KVec<Op>,
        inputs: Dependencies,
        user_fences: Option<KBox<UserFenceWrites>>,
    ) -> Result<Pin<KBox<Self>>> {
        if ops.iter().any(|op| op.maps_foreign_userptr(&vm)) {
            return Err(EFAULT);
        }
        let owner = vm.is_owner();
        // Asked only of callers that may pin: the check may be audited.
        let memlock = match vm.mode.pins() {
            true => MemlockLimit::of_current_task(),
            false => MemlockLimit::of_charging_task(),
        };
        let memcg = Mm::current().and_then(|mm| MemCgroup::of_mm(&mm));
        let turn = Turn::Run {
            ops,
            owner,
            memlock,
            memcg,
        };
        Self::alloc(vm, turn, inputs, user_fences, None)
    }

    fn alloc(
        vm: Arc<Vm>,
        turn: Turn,
        inputs: Dependencies,
        user_fences: Option<KBox<UserFenceWrites>>,
        signals: Option<BindSignals>,
    ) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            pin_init!(Self {
                work <- new_work!("hmmgpu::bind"),
                vm,
                turn,
                inputs,
                user_fences: Cell::new(user_fences),
                signals: Cell::new(signals),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Whether the bind is fenced: it applies in its turn what its call did.
    pub(crate) fn fenced(&self) -> bool {
        matches!(self.turn, Turn::Apply { .. })
    }

    /// The call of a fenced bind of `ops` on `vm` (see the [module documentation](self)): waits
    /// for the unfenced binds queued before, does the operations, publishes the fence to the
    /// sync objects of `signals` and queues the bind, which signals it once `inputs` have
    /// signalled and the binds before it are done. Returns the index and error of the operation
    /// that failed, if one did: the bind is queued all the same (the operations before it are
    /// done), and its fence signals with that error.
    ///
    /// Fails with nothing done if a wait is interrupted (`ERESTARTSYS`: all waits come before
    /// the first operation), the VM is being destroyed (`ENOENT`) or memory is short
    /// (`ENOMEM`).
    pub(crate) fn call_fenced(
        vm: &Arc<Vm>,
        ops: &[Op],
        inputs: Dependencies,
        user_fences: Option<KBox<UserFenceWrites>>,
        mut signals: BindSignals,
    ) -> Result<Option<(usize, Error)>> {
        let lock = loop {
            // Waited for without `bind_lock`, so that the other binds of the VM are not held up
            // meanwhile: a thread that would signal what they wait for may be binding too.
            vm.wait_for_ticket(vm.last_unfenced())?;
            for op in ops.iter() {
                if let Op::Map(m) = op {
                    vm.wait_cleared(m.va, m.va + m.size)?;
                }
            }
            // Checked again under `bind_lock`, under which no other bind lists entries to clear:
            // the operations then never wait, so a signal cannot stop the call half done.
            let lock = vm.bind_lock.lock();
            let cleared = ops.iter().all(|op| match op {
                Op::Map(m) => vm.is_cleared(m.va, m.va + m.size),
                Op::Unmap { .. } => true,
            });
            // A cancelled VM's waits return at once: not a reason to spin until the bind that
            // runs is done.
            if (cleared && vm.is_done(vm.last_unfenced())) || vm.cancelled() {
                break lock;
            }
        };
        if vm.cancelled() {
            return Err(ENOENT);
        }
        // Made under `bind_lock`, in queue order: the fences of the timeline signal in order.
        signals.set_fence(vm.bind_fences.new_fence()?);
        let turn = Turn::Apply {
            unmapped: Cell::new(KVec::new()),
            result: Cell::new(Ok(())),
        };
        let bind = Self::alloc(vm.clone(), turn, inputs, user_fences, None)?;
        let Turn::Apply { unmapped, result } = &bind.turn else {
            return Err(EINVAL);
        };
        let mut list = KVec::with_capacity(ops.len(), GFP_KERNEL_ACCOUNT)?;
        let ticket = vm.next_ticket(&lock);
        let limit = MemlockLimit::of_charging_task();
        let mut failed = None;
        {
            let mut clearing = Clearing::InTurn {
                ticket,
                unmapped: &mut list,
            };
            for (i, op) in ops.iter().enumerate() {
                if let Err(e) = op.run(vm, &limit, &mut clearing) {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        // Nothing done: as if never called.
        if let Some((0, e)) = failed.filter(|(_, e)| *e == ENOENT) {
            return Err(e);
        }
        unmapped.set(list);
        result.set(failed.map_or(Ok(()), |(_, e)| Err(e)));
        signals.publish();
        bind.signals.set(Some(signals));
        if let Err(bind) = vm.queue_bind(&lock, bind) {
            // The VM is being destroyed and its queue drained: apply in place, and release
            // what was taken out here, as the destruction may have released the rest already.
            bind.apply(true);
            vm.release_unmapped();
        }
        Ok(failed)
    }

    /// Runs the operations in order, until one fails.
    fn run_ops(
        &self,
        ops: &[Op],
        memlock: &MemlockLimit,
        memcg: &Option<MemCgroup>,
        owner: bool,
    ) -> Result {
        let vm = &self.vm;
        let run = || {
            for op in ops.iter() {
                if vm.cancelled() {
                    return Err(canceled());
                }
                op.run(vm, memlock, &mut Clearing::Now)?;
            }
            Ok(())
        };
        let charged = || match memcg {
            Some(memcg) => memcg.charge_in(run),
            None => run(),
        };
        match vm.mm_user().filter(|_| owner) {
            // As the caller would, in its address space: pins and mirrors of userptrs are of it.
            Some(mm) => mm.with_kthread_use(charged)?,
            // Not the VM's process, or it exited: operations on userptrs fail as they would for
            // such a caller.
            None => charged(),
        }
    }

    /// Waits for the inputs, or the VM's destruction. Woken by the last input fence and by the
    /// destruction. Interruptible, so that a long wait is not taken for a hung task: a worker
    /// gets no signals.
    fn wait_for_inputs(&self) {
        let vm = &*self.vm;
        while !(self.inputs.signalled() || vm.cancelled()) {
            let _ = vm.events.wait_until(
                || self.inputs.signalled() || vm.cancelled(),
                Timeout::Never,
                true,
            );
        }
    }

    /// The turn of a fenced bind, wholly on its fence's signalling path: once its inputs have
    /// signalled (or at once, if `now`), clears the entries of what its unmaps took out, hands
    /// that to the release worker, and signals the fence with the call's error, else an input
    /// fence's, else `ECANCELED` if the VM is being destroyed. Never allocates.
    fn apply(self: Pin<KBox<Self>>, now: bool) {
        let Turn::Apply { unmapped, result } = &self.turn else {
            return;
        };
        let vm = &self.vm;
        let result = {
            let _section = SignallingSection::begin();
            if !now {
                self.wait_for_inputs();
            }
            let result = result
                .replace(Ok(()))
                .and_then(|()| match self.inputs.error() {
                    Some(e) => Err(e),
                    None if vm.cancelled() => Err(canceled()),
                    None => Ok(()),
                });
            {
                let mut guard = vm.state.lock();
                let list = unmapped.take();
                for u in list.iter() {
                    u.apply(&mut guard);
                }
                for u in list {
                    vm.release_later(&mut guard, u);
                }
            }
            if let Some(signals) = self.signals.take() {
                signals.signal(result);
            }
            result
        };
        // Not here: writing user memory may fault pages in, which the next bind's fence must not
        // wait for.
        if let Some(mut writes) = self.user_fences.take() {
            writes.set_result(result);
            vm.write_user_fences(writes);
        }
    }
}

impl WorkItem for QueuedBind {
    type Pointer = Pin<KBox<QueuedBind>>;

    fn run(this: Pin<KBox<QueuedBind>>) {
        let vm = this.vm.clone();
        let Turn::Run {
            ops,
            owner,
            memlock,
            memcg,
        } = &this.turn
        else {
            this.apply(false);
            vm.bind_done();
            return;
        };
        this.wait_for_inputs();
        let result = if vm.cancelled() {
            Err(canceled())
        } else {
            match this.inputs.error() {
                Some(e) => Err(e),
                None => this.run_ops(ops, memlock, memcg, *owner),
            }
        };
        // Written here, so that a synchronous bind that waits for this one finds them written.
        // (Jobs leave theirs to another worker, for the VM's next job not to wait for a write
        // that faults; nothing waits for this worker but the binds after it.)
        if let Some(mut writes) = this.user_fences.take() {
            writes.set_result(result);
            writes.write();
        }
        vm.bind_done();
    }
}
