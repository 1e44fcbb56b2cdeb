// SPDX-License-Identifier: GPL-2.0

//! Open files of the device and the ioctls they serve.

use crate::{
    bind::{Op, QueuedBind},
    command,
    driver::{HmmGpuDriver, GEM_MAX_SIZE, VERSION},
    gem::Bo,
    job::Job,
    mode::{self, Completion},
    syncs::{Syncs, UserFenceWrites},
    unmapped::Clearing,
    userptr::{Userptr, UserptrObject},
    vm::Vm,
};
use core::mem::MaybeUninit;
use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    dma_fence::Dependencies,
    drm,
    drm::gem::BaseObject,
    mm::{pin::MemlockLimit, user_fence::Compare},
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::UserSlice,
    uapi,
};

/// The most VMs a file has.
const MAX_VMS: usize = 64;

/// A file's VMs, by id.
struct Vms {
    next_id: u32,
    vms: KVec<(u32, Arc<Vm>)>,
}

/// Data kept per open file.
#[pin_data(PinnedDrop)]
pub(crate) struct File {
    #[pin]
    vms: Mutex<Vms>,
}

pub(crate) type DrmFile = drm::File<File>;
type Device = drm::Device<HmmGpuDriver>;

impl drm::file::DriverFile for File {
    type Driver = HmmGpuDriver;

    fn open(_dev: &Device) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            pin_init!(Self {
                vms <- new_mutex!(Vms { next_id: 1, vms: KVec::new() }),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }
}

#[pinned_drop]
impl PinnedDrop for File {
    fn drop(self: Pin<&mut Self>) {
        // Jobs are cancelled and mappings removed: VMs do not outlive their file.
        let vms = core::mem::take(&mut self.vms.lock().vms);
        for (_, vm) in vms.iter() {
            vm.shutdown();
        }
    }
}

/// The features this device offers (`DRM_HMMGPU_FEATURE_*`).
const FEATURES: u64 = (uapi::DRM_HMMGPU_FEATURE_GEM_SHMEM
    | uapi::DRM_HMMGPU_FEATURE_USERPTR
    | uapi::DRM_HMMGPU_FEATURE_VM) as u64;

impl File {
    /// `DRM_IOCTL_HMMGPU_GET_PARAM`.
    pub(crate) fn get_param(
        _dev: &Device,
        args: &mut uapi::drm_hmmgpu_get_param,
        _file: &DrmFile,
    ) -> Result<u32> {
        if args.pad != 0 {
            return Err(EINVAL);
        }
        let (major, minor, patch) = VERSION;
        args.value = match args.param {
            uapi::drm_hmmgpu_param_DRM_HMMGPU_PARAM_DRIVER_VERSION => {
                (major as u64) << 32 | (minor as u64) << 16 | patch as u64
            }
            uapi::drm_hmmgpu_param_DRM_HMMGPU_PARAM_FEATURES => FEATURES,
            uapi::drm_hmmgpu_param_DRM_HMMGPU_PARAM_GEM_MAX_SIZE => GEM_MAX_SIZE,
            uapi::drm_hmmgpu_param_DRM_HMMGPU_PARAM_PAGE_SIZE => PAGE_SIZE as u64,
            uapi::drm_hmmgpu_param_DRM_HMMGPU_PARAM_VM_MODES => mode::offered_modes().into(),
            _ => return Err(EINVAL),
        };
        Ok(0)
    }

    /// `DRM_IOCTL_HMMGPU_GEM_CREATE`.
    pub(crate) fn gem_create(
        dev: &Device,
        args: &mut uapi::drm_hmmgpu_gem_create,
        file: &DrmFile,
    ) -> Result<u32> {
        if args.flags != 0 {
            return Err(EINVAL);
        }
        let size = gem_size(args.size)?;
        // shmem reports a failure to allocate the object's inode as ENOSPC: the size was
        // checked, and its mount has no limits, so that is memory, as the uAPI says.
        let bo = Bo::new(dev, size).map_err(|e| if e == ENOSPC { ENOMEM } else { e })?;
        // The handle keeps the object alive; our reference goes with `bo`.
        args.handle = bo.create_handle(file)?;
        Ok(0)
    }

    /// `DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET`.
    pub(crate) fn gem_mmap_offset(
        _dev: &Device,
        args: &mut uapi::drm_hmmgpu_gem_mmap_offset,
        file: &DrmFile,
    ) -> Result<u32> {
        if args.flags != 0 {
            return Err(EINVAL);
        }
        let bo = Bo::lookup_handle(file, args.handle).map_err(|e| {
            // A userptr has no pages of ours to map.
            match UserptrObject::lookup_handle(file, args.handle) {
                Ok(_) => EINVAL,
                Err(_) => e,
            }
        })?;
        args.offset = bo.create_mmap_offset()?;
        Ok(0)
    }

    /// `DRM_IOCTL_HMMGPU_USERPTR_CREATE`.
    pub(crate) fn userptr_create(
        dev: &Device,
        args: &mut uapi::drm_hmmgpu_userptr_create,
        file: &DrmFile,
    ) -> Result<u32> {
        let (userptr, size) = Userptr::new(args.addr, args.size, args.flags)?;
        let obj = UserptrObject::new(dev, size, userptr)?;
        args.handle = obj.create_handle(file)?;
        Ok(0)
    }
}

impl File {
    /// The VM `id` names.
    fn vm(&self, id: u32) -> Result<Arc<Vm>> {
        let vms = self.vms.lock();
        let (_, vm) = vms.vms.iter().find(|(i, _)| *i == id).ok_or(ENOENT)?;
        Ok(vm.clone())
    }

    /// `DRM_IOCTL_HMMGPU_VM_CREATE`.
    pub(crate) fn vm_create(
        dev: &Device,
        args: &mut uapi::drm_hmmgpu_vm_create,
        file: &DrmFile,
    ) -> Result<u32> {
        let mode = mode::from_flags(args.flags)?;
        let this = file.inner();
        let mut vms = this.vms.lock();
        if vms.vms.len() >= MAX_VMS {
            return Err(ENOSPC);
        }
        // Ids are not reused while the file is open; past 2^32 - 2 VMs, creation fails.
        let id = vms.next_id;
        let next_id = id.checked_add(1).ok_or(ENOSPC)?;
        let vm = Vm::new(mode, dev.release_queue.clone(), dev.user_fences.clone())?;
        vms.vms.push((id, vm), GFP_KERNEL_ACCOUNT)?;
        vms.next_id = next_id;
        args.vm_id = id;
        Ok(0)
    }

    /// `DRM_IOCTL_HMMGPU_VM_DESTROY`.
    pub(crate) fn vm_destroy(
        _dev: &Device,
        args: &mut uapi::drm_hmmgpu_vm_destroy,
        file: &DrmFile,
    ) -> Result<u32> {
        if args.pad != 0 {
            return Err(EINVAL);
        }
        let vm = {
            let this = file.inner();
            let mut vms = this.vms.lock();
            let i = vms
                .vms
                .iter()
                .position(|(id, _)| *id == args.vm_id)
                .ok_or(ENOENT)?;
            let len = vms.vms.len();
            vms.vms.swap(i, len - 1);
            // The slot's VM is moved out and the length shrunk over it: it is dropped once.
            // SAFETY: `len - 1` is in bounds and initialised.
            let (_, vm) = unsafe { core::ptr::read(vms.vms.as_ptr().add(len - 1)) };
            // SAFETY: The last element was moved out above.
            unsafe { vms.vms.set_len(len - 1) };
            vm
        };
        vm.shutdown();
        Ok(0)
    }

    /// `DRM_IOCTL_HMMGPU_VM_BIND`: the operations in order, after the wait syncs; the signal
    /// syncs are signalled whatever the outcome, unless a signal interrupted the wait. Queued
    /// instead with `DRM_HMMGPU_VM_BIND_ASYNC` (see [`crate::bind`]).
    pub(crate) fn vm_bind(
        _dev: &Device,
        args: &mut uapi::drm_hmmgpu_vm_bind,
        file: &DrmFile,
    ) -> Result<u32> {
        args.failed_op = 0;
        let queued = match args.flags {
            0 => false,
            uapi::DRM_HMMGPU_VM_BIND_ASYNC => true,
            _ => return Err(EINVAL),
        };
        if args.pad != 0 {
            return Err(EINVAL);
        }
        let vm = file.inner().vm(args.vm_id)?;
        let ops = match args.num_ops {
            0 | 1 if args.ops == 0 => {
                let mut one = KVec::with_capacity(1, GFP_KERNEL_ACCOUNT)?;
                one.push(args.bind, GFP_KERNEL_ACCOUNT)?;
                one
            }
            n if n > 1 && n <= uapi::HMMGPU_VM_BIND_MAX_OPS && is_zero(&args.bind) => {
                read_array::<uapi::drm_hmmgpu_vm_bind_op>(args.ops, n)?
            }
            _ => return Err(EINVAL),
        };
        if queued {
            return Self::queue_bind(vm, &ops, args, file);
        }
        let mut syncs = Syncs::read(file, args.syncs, args.num_syncs, true)?;
        // The fence that signals the sync objects: made first, so that nothing fails once the
        // operations are done.
        let signals = syncs.take_bind_signals()?;
        vm.wait_for_binds()?;
        for fence in syncs.waits.iter() {
            fence.wait_interruptible(u64::MAX)?;
        }
        let mut result = syncs
            .waits
            .iter()
            .try_for_each(|f| f.contained_status().map(|_| ()));
        if result.is_ok() {
            let limit = MemlockLimit::of_charging_task();
            for (i, raw) in ops.iter().enumerate() {
                result = Op::read(file, raw).and_then(|op| op.run(&vm, &limit, &mut Clearing::Now));
                if result.is_err() {
                    args.failed_op = i as u32;
                    break;
                }
            }
        }
        signals.signal(result);
        let user_fences = core::mem::take(&mut syncs.user_fences);
        Syncs::signal_user_fences(user_fences, result, &vm.user_fences);
        result.map(|()| 0)
    }

    /// Queues the bind `args` of `ops` on `vm`: reads every operation and sync first, so that
    /// nothing is queued if one cannot be. A bind that signals a sync object is fenced: its
    /// operations are done by the call (see [`crate::bind`]).
    fn queue_bind(
        vm: Arc<Vm>,
        ops: &[uapi::drm_hmmgpu_vm_bind_op],
        args: &mut uapi::drm_hmmgpu_vm_bind,
        file: &DrmFile,
    ) -> Result<u32> {
        let mut read = KVec::with_capacity(ops.len(), GFP_KERNEL_ACCOUNT)?;
        for raw in ops {
            read.push(Op::read(file, raw)?, GFP_KERNEL_ACCOUNT)?;
        }
        let mut syncs = Syncs::read(file, args.syncs, args.num_syncs, true)?;
        let fenced = syncs.has_signals();
        let signals = syncs.take_fenced_signals();
        let inputs = Dependencies::new(core::mem::take(&mut syncs.waits), vm.events.clone())?;
        let user_fences =
            UserFenceWrites::new(core::mem::take(&mut syncs.user_fences), &vm.user_fences)?;
        if fenced {
            return match QueuedBind::call_fenced(&vm, &read, inputs, user_fences, signals)? {
                None => Ok(0),
                Some((i, e)) => {
                    args.failed_op = i as u32;
                    Err(e)
                }
            };
        }
        let bind = QueuedBind::new(vm.clone(), read, inputs, user_fences)?;
        let lock = vm.bind_lock.lock();
        vm.queue_bind(&lock, bind).map_err(|_| ENOENT)?;
        Ok(0)
    }

    /// `DRM_IOCTL_HMMGPU_EXEC`.
    pub(crate) fn exec(
        _dev: &Device,
        args: &mut uapi::drm_hmmgpu_exec,
        file: &DrmFile,
    ) -> Result<u32> {
        if args.flags != 0
            || args.pad != 0
            || args.timeout_ms > uapi::HMMGPU_EXEC_MAX_TIMEOUT_MS
            || args.cmd_count == 0
            || args.cmd_count > uapi::HMMGPU_CMD_MAX_COUNT
        {
            return Err(EINVAL);
        }
        let vm = file.inner().vm(args.vm_id)?;
        let raw = read_array::<uapi::drm_hmmgpu_cmd>(args.cmds, args.cmd_count)?;
        let cmds = command::decode(&raw)?;
        // Jobs of long-running VMs have no fence to signal sync objects with.
        let fenced = vm.mode.completion() == Completion::Fence;
        let mut syncs = Syncs::read(file, args.syncs, args.num_syncs, fenced)?;
        let inputs = Dependencies::new(core::mem::take(&mut syncs.waits), vm.events.clone())?;
        let user_fences =
            UserFenceWrites::new(core::mem::take(&mut syncs.user_fences), &vm.user_fences)?;
        let timeout_ms = match args.timeout_ms {
            0 => uapi::HMMGPU_EXEC_DEFAULT_TIMEOUT_MS,
            t => t,
        };
        let owner = vm.is_owner();
        let job = KBox::pin_init(
            Job::new(vm.clone(), cmds, owner, inputs, user_fences, timeout_ms),
            GFP_KERNEL_ACCOUNT,
        )?;
        if let Some(fence) = vm.submit(job, owner)? {
            syncs.signal(&fence);
        }
        Ok(0)
    }

    /// `DRM_IOCTL_HMMGPU_WAIT_USER_FENCE`.
    pub(crate) fn wait_user_fence(
        dev: &Device,
        args: &mut uapi::drm_hmmgpu_wait_user_fence,
        _file: &DrmFile,
    ) -> Result<u32> {
        let op = match args.op {
            uapi::DRM_HMMGPU_WAIT_EQ => Compare::Eq,
            uapi::DRM_HMMGPU_WAIT_NEQ => Compare::Ne,
            uapi::DRM_HMMGPU_WAIT_GT => Compare::Gt,
            uapi::DRM_HMMGPU_WAIT_GTE => Compare::Ge,
            uapi::DRM_HMMGPU_WAIT_LT => Compare::Lt,
            uapi::DRM_HMMGPU_WAIT_LTE => Compare::Le,
            _ => return Err(EINVAL),
        };
        if args.flags != 0 {
            return Err(EINVAL);
        }
        dev.user_fences
            .wait(args.addr, args.value, args.mask, op, &mut args.timeout_ns)?;
        Ok(0)
    }

    /// `DRM_IOCTL_HMMGPU_VM_STATS`.
    pub(crate) fn vm_stats(
        _dev: &Device,
        args: &mut uapi::drm_hmmgpu_vm_stats,
        file: &DrmFile,
    ) -> Result<u32> {
        if args.pad != 0 {
            return Err(EINVAL);
        }
        file.inner().vm(args.vm_id)?.read_stats(args);
        Ok(0)
    }
}

/// Types that any bytes from userspace make a valid value of: plain integers and uAPI structs of
/// them, without padding.
///
/// # Safety
///
/// Every bit pattern of the type's size must be a valid value, and the type has no padding.
pub(crate) unsafe trait Plain: Copy {}

// SAFETY: Any bits make a `u32`.
unsafe impl Plain for u32 {}
// SAFETY: The struct is made of `__u32` and `__u64` fields only, without padding.
unsafe impl Plain for uapi::drm_hmmgpu_cmd {}
// SAFETY: As above.
unsafe impl Plain for uapi::drm_hmmgpu_sync {}
// SAFETY: As above.
unsafe impl Plain for uapi::drm_hmmgpu_vm_bind_op {}

/// Whether every byte of `value` is zero.
fn is_zero<T: Plain>(value: &T) -> bool {
    // SAFETY: `T` has no padding: all its bytes are initialised and may be read as bytes.
    let bytes = unsafe {
        core::slice::from_raw_parts((value as *const T).cast::<u8>(), core::mem::size_of::<T>())
    };
    bytes.iter().all(|b| *b == 0)
}

/// Reads an array of `count` values from userspace at `addr`.
pub(crate) fn read_array<T: Plain>(addr: u64, count: u32) -> Result<KVec<T>> {
    let count = count as usize;
    let bytes = count.checked_mul(core::mem::size_of::<T>()).ok_or(EINVAL)?;
    let mut out = KVec::<T>::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
    if count == 0 {
        return Ok(out);
    }
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    let spare = out.spare_capacity_mut();
    // SAFETY: The spare capacity holds at least `count` values of `T`, that is `bytes` bytes,
    // which may be written as bytes.
    let buf = unsafe {
        core::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<MaybeUninit<u8>>(), bytes)
    };
    UserSlice::new(addr, bytes).reader().read_raw(buf)?;
    // SAFETY: `read_raw` initialised all `bytes` bytes, and any bytes are valid `T`s (`Plain`).
    unsafe { out.set_len(count) };
    Ok(out)
}

/// Checks a GEM object size from userspace: non-zero, whole pages, at most [`GEM_MAX_SIZE`].
pub(crate) fn gem_size(size: u64) -> Result<usize> {
    if size == 0 || size % PAGE_SIZE as u64 != 0 || size > GEM_MAX_SIZE {
        return Err(EINVAL);
    }
    usize::try_from(size).map_err(|_| EINVAL)
}
