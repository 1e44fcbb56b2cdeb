// SPDX-License-Identifier: GPL-2.0

//! The DRM driver: its description, ioctl table and per-device data.

use crate::{file::File, gem};
use kernel::{
    alloc::flags::GFP_KERNEL,
    c_str,
    drm::{self, driver::feature, ioctl},
    mm::user_fence::UserFenceQueue,
    new_user_fence_queue,
    prelude::*,
    sync::Arc,
    workqueue::{OwnedQueue, WqFlags},
};

/// The hmmgpu DRM driver.
pub(crate) struct HmmGpuDriver;

/// Data kept per device.
#[pin_data]
pub(crate) struct DeviceData {
    /// Where the VMs release the pins invalidations took away: a reclaim queue of its own, so
    /// that pins go promptly even under memory pressure and while jobs wait. The VMs write
    /// their jobs' user fences there too, one VM's in order, off the queues of their jobs.
    pub(crate) release_queue: Arc<OwnedQueue>,
    /// The user fences jobs write, and the tasks that wait for them.
    pub(crate) user_fences: Arc<UserFenceQueue>,
}

impl DeviceData {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            release_queue: Arc::new(
                OwnedQueue::new(
                    c_str!("hmmgpu-release"),
                    WqFlags::UNBOUND | WqFlags::MEM_RECLAIM,
                    0,
                )?,
                GFP_KERNEL,
            )?,
            user_fences: Arc::pin_init(new_user_fence_queue!(), GFP_KERNEL)?,
        }? Error)
    }
}

/// The driver's version, as `DRM_IOCTL_VERSION` and `DRM_HMMGPU_PARAM_DRIVER_VERSION` report it.
pub(crate) const VERSION: (i32, i32, i32) = (0, 1, 0);

/// The largest GEM object, and the largest userptr, in bytes: 64 GiB, a 4096th of the GPU's
/// address space.
///
/// Neither costs memory for its size when it is created: a shmem file's pages come when they
/// are used, and a userptr only names a range. A bind costs what it binds: the page-table
/// tables of its range (16 KiB per 2 MiB, charged to the memory cgroup), and in pinned and
/// prefault modes, or for a GEM object, the pages of the range. What bounds the size is how
/// long the driver walks a mapping's entries under the notifier lock when it is cleared.
pub(crate) const GEM_MAX_SIZE: u64 = 1 << 36;

/// The file operations of the device's nodes: they keep the module while files are open.
static FOPS: drm::FileOperations<HmmGpuDriver> = drm::FileOperations::new(&crate::THIS_MODULE);

#[vtable]
impl drm::Driver for HmmGpuDriver {
    type Data = DeviceData;
    type File = File;
    type Object = gem::Object;

    const INFO: drm::DriverInfo = drm::DriverInfo {
        major: VERSION.0,
        minor: VERSION.1,
        patchlevel: VERSION.2,
        name: c_str!("hmmgpu"),
        desc: c_str!("Virtual GPU that mirrors process memory"),
    };

    // Sync objects, binary and timeline, carry the fences of jobs and binds in and out.
    const FEATURES: u32 = feature::RENDER | feature::SYNCOBJ | feature::SYNCOBJ_TIMELINE;

    const FOPS: &'static drm::FileOperations<Self> = &FOPS;

    kernel::declare_drm_ioctls! {
        (HMMGPU_GET_PARAM, drm_hmmgpu_get_param, ioctl::RENDER_ALLOW, File::get_param),
        (HMMGPU_GEM_CREATE, drm_hmmgpu_gem_create, ioctl::RENDER_ALLOW, File::gem_create),
        (HMMGPU_GEM_MMAP_OFFSET, drm_hmmgpu_gem_mmap_offset, ioctl::RENDER_ALLOW,
            File::gem_mmap_offset),
        (HMMGPU_USERPTR_CREATE, drm_hmmgpu_userptr_create, ioctl::RENDER_ALLOW,
            File::userptr_create),
        (HMMGPU_VM_CREATE, drm_hmmgpu_vm_create, ioctl::RENDER_ALLOW, File::vm_create),
        (HMMGPU_VM_DESTROY, drm_hmmgpu_vm_destroy, ioctl::RENDER_ALLOW, File::vm_destroy),
        (HMMGPU_VM_BIND, drm_hmmgpu_vm_bind, ioctl::RENDER_ALLOW, File::vm_bind),
        (HMMGPU_EXEC, drm_hmmgpu_exec, ioctl::RENDER_ALLOW, File::exec),
        (HMMGPU_WAIT_USER_FENCE, drm_hmmgpu_wait_user_fence, ioctl::RENDER_ALLOW,
            File::wait_user_fence),
        (HMMGPU_VM_STATS, drm_hmmgpu_vm_stats, ioctl::RENDER_ALLOW, File::vm_stats),
    }
}
