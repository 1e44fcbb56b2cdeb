// SPDX-License-Identifier: GPL-2.0

//! Open files of the device and the ioctls they serve.

use crate::{
    driver::{HmmGpuDriver, GEM_MAX_SIZE, VERSION},
    gem::Bo,
    userptr::{Userptr, UserptrObject},
};
use kernel::{
    alloc::flags::GFP_KERNEL, drm, drm::gem::BaseObject, page::PAGE_SIZE, prelude::*, uapi,
};

/// Data kept per open file.
pub(crate) struct File {}

type DrmFile = drm::File<File>;
type Device = drm::Device<HmmGpuDriver>;

impl drm::file::DriverFile for File {
    type Driver = HmmGpuDriver;

    fn open(_dev: &Device) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::new(Self {}, GFP_KERNEL)?.into())
    }
}

/// The features this device offers (`DRM_HMMGPU_FEATURE_*`).
const FEATURES: u64 =
    (uapi::DRM_HMMGPU_FEATURE_GEM_SHMEM | uapi::DRM_HMMGPU_FEATURE_USERPTR) as u64;

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
        let bo = Bo::new(dev, size)?;
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

/// Checks a GEM object size from userspace: non-zero, whole pages, at most [`GEM_MAX_SIZE`].
pub(crate) fn gem_size(size: u64) -> Result<usize> {
    if size == 0 || size % PAGE_SIZE as u64 != 0 || size > GEM_MAX_SIZE {
        return Err(EINVAL);
    }
    usize::try_from(size).map_err(|_| EINVAL)
}
