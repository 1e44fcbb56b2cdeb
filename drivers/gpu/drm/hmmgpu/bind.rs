// SPDX-License-Identifier: GPL-2.0

//! Binds: the operations of `DRM_IOCTL_HMMGPU_VM_BIND`, run by the call, or queued on the VM's
//! bind queue to run once their wait syncs have signalled (`DRM_HMMGPU_VM_BIND_ASYNC`).
//!
//! An operation is read in two steps: [`Op::read`] checks what the call alone can check (its
//! fields) and looks up its object, which it keeps; [`Op::run`] does it on the VM as the
//! operations before it left it, which is where a range in use or an object too small shows.
//! A synchronous bind reads and runs each operation in turn. A queued one ([`QueuedBind`])
//! reads them all in the call, so that the call fails with nothing queued if one cannot be
//! read, and runs them later from the VM's bind queue, one bind at a time in the order they
//! were queued.
//!
//! A queued bind's operations fault pages in, pin them and allocate memory when they run, so
//! nothing may wait for them through a dma-fence: a queued bind reports through user fences,
//! and through sync objects that get its fence only once it has signalled (see
//! [`BindSignals`]); jobs do not wait for it. The worker runs the operations as the caller
//! would have: in the VM process's address space if the caller was that process (only it binds
//! userptrs and pins), charging the caller's memory cgroup and `RLIMIT_MEMLOCK`.

use crate::{
    file::DrmFile,
    gem::Bo,
    job::canceled,
    page_table::{PageTable, SZ_4K},
    syncs::{BindSignals, UserFenceWrites},
    userptr::UserptrObject,
    vm::Vm,
};
use core::cell::Cell;
use kernel::{
    dma_fence::Dependencies,
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

    /// Runs the operation on `vm`; pages it pins count against `limit`.
    pub(crate) fn run(&self, vm: &Arc<Vm>, limit: &MemlockLimit) -> Result {
        match self {
            Self::Map(map) => vm.map(map, limit),
            Self::Unmap { va, size } => vm.unmap(*va, *size, limit),
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

/// A bind queued on its VM's bind queue (`DRM_HMMGPU_VM_BIND_ASYNC`).
#[pin_data]
pub(crate) struct QueuedBind {
    #[pin]
    work: Work<QueuedBind>,
    vm: Arc<Vm>,
    ops: KVec<Op>,
    /// The fences to wait for before running.
    inputs: Dependencies,
    /// The user fences, written when the bind is done; `None` if it has none.
    user_fences: Cell<Option<KBox<UserFenceWrites>>>,
    /// The sync objects to signal when the bind is done; taken then.
    signals: Cell<Option<BindSignals>>,
    /// Whether the caller was the VM's process: then the operations run in its address space.
    owner: bool,
    /// The caller's `RLIMIT_MEMLOCK`, which pins count against.
    memlock: MemlockLimit,
    /// The memory cgroup of the caller's process, charged with what the operations allocate.
    memcg: Option<MemCgroup>,
}

impl_has_work! {
    impl HasWork<Self> for QueuedBind { self.work }
}

impl QueuedBind {
    /// A bind of the current task's that runs `ops` on `vm` once `inputs` have signalled, then
    /// signals `signals` and writes `user_fences`. `EFAULT` if an operation maps a userptr the
    /// current task may not have mapped from a worker.
    pub(crate) fn new(
        vm: Arc<Vm>,
        ops: KVec<Op>,
        inputs: Dependencies,
        user_fences: Option<KBox<UserFenceWrites>>,
        signals: BindSignals,
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
        KBox::pin_init(
            pin_init!(Self {
                work <- new_work!("hmmgpu::bind"),
                vm,
                ops,
                inputs,
                user_fences: Cell::new(user_fences),
                signals: Cell::new(Some(signals)),
                owner,
                memlock,
                memcg,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// As the bind is queued: its binary sync objects lose their fence, which it replaces once
    /// it ran.
    pub(crate) fn queued(&self) {
        let signals = self.signals.take();
        if let Some(signals) = &signals {
            signals.clear();
        }
        self.signals.set(signals);
    }

    /// Runs the operations in order, until one fails.
    fn run_ops(&self) -> Result {
        let vm = &self.vm;
        let run = || {
            for op in self.ops.iter() {
                if vm.cancelled() {
                    return Err(canceled());
                }
                op.run(vm, &self.memlock)?;
            }
            Ok(())
        };
        let charged = || match &self.memcg {
            Some(memcg) => memcg.charge_in(run),
            None => run(),
        };
        match vm.mm_user().filter(|_| self.owner) {
            // As the caller would, in its address space: pins and mirrors of userptrs are of it.
            Some(mm) => mm.with_kthread_use(charged)?,
            // Not the VM's process, or it exited: operations on userptrs fail as they would for
            // such a caller.
            None => charged(),
        }
    }
}

impl WorkItem for QueuedBind {
    type Pointer = Pin<KBox<QueuedBind>>;

    fn run(this: Pin<KBox<QueuedBind>>) {
        let vm = &*this.vm;
        // Woken by the last input fence and by the VM's destruction. Interruptible, so that a
        // long wait is not taken for a hung task: a worker gets no signals.
        while !(this.inputs.signalled() || vm.cancelled()) {
            let _ = vm.events.wait_until(
                || this.inputs.signalled() || vm.cancelled(),
                Timeout::Never,
                true,
            );
        }
        let result = if vm.cancelled() {
            Err(canceled())
        } else {
            match this.inputs.error() {
                Some(e) => Err(e),
                None => this.run_ops(),
            }
        };
        if let Some(signals) = this.signals.take() {
            signals.signal(result);
        }
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
