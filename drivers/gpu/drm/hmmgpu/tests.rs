// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the Rust DRM abstractions, through this driver: its ioctl table, GEM objects,
//! their handles and lifetimes, and the argument checks of its ioctls.

use kernel::kunit::kunit_tests;

#[kunit_tests(hmmgpu_drm)]
mod tests {
    use crate::{
        driver::{DeviceData, HmmGpuDriver, GEM_MAX_SIZE},
        file::{gem_size, File},
        gem::{Bo, Object},
        userptr::{Userptr, UserptrObject},
    };
    use kernel::{
        alloc::flags::GFP_KERNEL,
        c_str,
        dma_fence::Fence,
        drm::{self, file::MockFile, gem::BaseObject, syncobj::SyncObj, Driver},
        ioctl::{_IOC_NR, _IOC_SIZE},
        new_fence_context,
        page::PAGE_SIZE,
        platform,
        prelude::*,
        sync::Arc,
        types::ARef,
        uapi,
    };

    /// A device of the driver, not registered: enough for files and GEM objects.
    struct Fixture {
        dev: ARef<drm::Device<HmmGpuDriver>>,
        // Dropped last: removing the parent drops its reference to the device.
        _pdev: platform::SimpleDevice,
    }

    fn fixture() -> Result<Fixture> {
        let pdev = platform::SimpleDevice::register(c_str!("hmmgpu-kunit"), None)?;
        let dev = drm::Device::<HmmGpuDriver>::new(pdev.device(), DeviceData::new())?.into_aref();
        Ok(Fixture { dev, _pdev: pdev })
    }

    #[test]
    fn ioctl_table_follows_the_uapi() {
        let table = HmmGpuDriver::IOCTLS;
        let expected = [
            (
                uapi::DRM_IOCTL_HMMGPU_GET_PARAM,
                size_of::<uapi::drm_hmmgpu_get_param>(),
            ),
            (
                uapi::DRM_IOCTL_HMMGPU_GEM_CREATE,
                size_of::<uapi::drm_hmmgpu_gem_create>(),
            ),
            (
                uapi::DRM_IOCTL_HMMGPU_GEM_MMAP_OFFSET,
                size_of::<uapi::drm_hmmgpu_gem_mmap_offset>(),
            ),
            (
                uapi::DRM_IOCTL_HMMGPU_USERPTR_CREATE,
                size_of::<uapi::drm_hmmgpu_userptr_create>(),
            ),
            (
                uapi::DRM_IOCTL_HMMGPU_VM_CREATE,
                size_of::<uapi::drm_hmmgpu_vm_create>(),
            ),
            (
                uapi::DRM_IOCTL_HMMGPU_VM_DESTROY,
                size_of::<uapi::drm_hmmgpu_vm_destroy>(),
            ),
            (
                uapi::DRM_IOCTL_HMMGPU_VM_BIND,
                size_of::<uapi::drm_hmmgpu_vm_bind>(),
            ),
            (
                uapi::DRM_IOCTL_HMMGPU_EXEC,
                size_of::<uapi::drm_hmmgpu_exec>(),
            ),
            (
                uapi::DRM_IOCTL_HMMGPU_WAIT_USER_FENCE,
                size_of::<uapi::drm_hmmgpu_wait_user_fence>(),
            ),
            (
                uapi::DRM_IOCTL_HMMGPU_VM_STATS,
                size_of::<uapi::drm_hmmgpu_vm_stats>(),
            ),
        ];
        assert_eq!(table.len(), expected.len());
        for (i, (desc, (cmd, size))) in table.iter().zip(expected).enumerate() {
            assert_eq!(desc.cmd, cmd);
            assert_eq!(
                _IOC_NR(desc.cmd) as usize,
                uapi::DRM_COMMAND_BASE as usize + i
            );
            assert_eq!(_IOC_SIZE(desc.cmd), size);
            assert!(desc.func.is_some());
            assert!(!desc.name.is_null());
            assert_eq!(desc.flags, drm::ioctl::RENDER_ALLOW);
        }
    }

    #[test]
    fn gem_sizes_are_checked() {
        let page = PAGE_SIZE as u64;
        assert!(gem_size(0) == Err(EINVAL));
        assert!(gem_size(page - 1) == Err(EINVAL));
        assert!(gem_size(page + 1) == Err(EINVAL));
        assert!(gem_size(GEM_MAX_SIZE + page) == Err(EINVAL));
        assert!(gem_size(u64::MAX) == Err(EINVAL));
        assert!(gem_size(page) == Ok(PAGE_SIZE));
        assert!(gem_size(GEM_MAX_SIZE) == Ok(GEM_MAX_SIZE as usize));
    }

    #[test]
    fn gem_create_rounds_to_pages() -> Result {
        let f = fixture()?;
        assert_eq!(Bo::new(&f.dev, PAGE_SIZE)?.size(), PAGE_SIZE);
        assert_eq!(Bo::new(&f.dev, 1)?.size(), PAGE_SIZE);
        assert_eq!(Bo::new(&f.dev, 3 * PAGE_SIZE + 1)?.size(), 4 * PAGE_SIZE);
        Ok(())
    }

    #[test]
    fn gem_handle_lookup_finds_the_object() -> Result {
        let f = fixture()?;
        let file = MockFile::<File>::open(&f.dev)?;
        let bo = Bo::new(&f.dev, 2 * PAGE_SIZE)?;
        let handle = bo.create_handle(file.file())?;
        assert!(handle != 0);
        let found = Bo::lookup_handle(file.file(), handle)?;
        assert!(core::ptr::eq(&*found, &*bo));
        assert!(Bo::lookup_handle(file.file(), handle + 1).err() == Some(ENOENT));
        assert!(Bo::lookup_handle(file.file(), 0).err() == Some(ENOENT));
        Ok(())
    }

    #[test]
    fn gem_handle_keeps_the_object_alive() -> Result {
        let f = fixture()?;
        let file = MockFile::<File>::open(&f.dev)?;
        let handle = Bo::new(&f.dev, 3 * PAGE_SIZE)?.create_handle(file.file())?;
        // Our reference is gone: the handle's keeps the object.
        let bo = Bo::lookup_handle(file.file(), handle)?;
        assert_eq!(bo.size(), 3 * PAGE_SIZE);
        drop(bo);
        Bo::delete_handle(file.file(), handle)?;
        assert!(Bo::lookup_handle(file.file(), handle).err() == Some(ENOENT));
        assert!(Bo::delete_handle(file.file(), handle) == Err(EINVAL));
        Ok(())
    }

    #[test]
    fn gem_handles_are_per_file() -> Result {
        let f = fixture()?;
        let a = MockFile::<File>::open(&f.dev)?;
        let b = MockFile::<File>::open(&f.dev)?;
        let bo = Bo::new(&f.dev, PAGE_SIZE)?;
        let handle = bo.create_handle(a.file())?;
        assert!(Bo::lookup_handle(b.file(), handle).err() == Some(ENOENT));
        // A second handle on another file names the same object.
        let other = bo.create_handle(b.file())?;
        assert!(core::ptr::eq(&*Bo::lookup_handle(b.file(), other)?, &*bo));
        Ok(())
    }

    #[test]
    fn gem_objects_are_freed_with_their_last_reference() -> Result {
        let f = fixture()?;
        let before = Object::live();
        let bo = Bo::new(&f.dev, PAGE_SIZE)?;
        {
            let file = MockFile::<File>::open(&f.dev)?;
            bo.create_handle(file.file())?;
            drop(bo);
            // The handle holds the object.
            assert_eq!(Object::live(), before + 1);
        }
        // Closing the file closed the handle, which held the last reference.
        assert_eq!(Object::live(), before);
        Ok(())
    }

    #[test]
    fn gem_mmap_offset_is_stable() -> Result {
        let f = fixture()?;
        let a = Bo::new(&f.dev, PAGE_SIZE)?;
        let b = Bo::new(&f.dev, PAGE_SIZE)?;
        let offset = a.create_mmap_offset()?;
        assert!(offset != 0);
        assert_eq!(offset % PAGE_SIZE as u64, 0);
        assert_eq!(a.create_mmap_offset()?, offset);
        assert!(b.create_mmap_offset()? != offset);
        Ok(())
    }

    #[test]
    fn get_param_checks_its_arguments() -> Result {
        let f = fixture()?;
        let file = MockFile::<File>::open(&f.dev)?;
        let mut args = uapi::drm_hmmgpu_get_param {
            param: uapi::drm_hmmgpu_param_DRM_HMMGPU_PARAM_PAGE_SIZE,
            pad: 0,
            value: 0,
        };
        assert!(File::get_param(&f.dev, &mut args, file.file()) == Ok(0));
        assert_eq!(args.value, PAGE_SIZE as u64);
        args.pad = 1;
        assert!(File::get_param(&f.dev, &mut args, file.file()) == Err(EINVAL));
        args.pad = 0;
        args.param = 0xffff;
        assert!(File::get_param(&f.dev, &mut args, file.file()) == Err(EINVAL));
        Ok(())
    }

    #[test]
    fn syncobjs_carry_fences() -> Result {
        let f = fixture()?;
        let file = MockFile::<File>::open(&f.dev)?;
        let other = MockFile::<File>::open(&f.dev)?;
        let handle = SyncObj::create(file.file(), None)?;
        let obj = SyncObj::lookup(file.file(), handle)?;
        assert!(obj.fence().is_none());
        assert!(SyncObj::lookup(file.file(), handle + 1).err() == Some(ENOENT));
        assert!(SyncObj::lookup(other.file(), handle).err() == Some(ENOENT));

        let timeline = Arc::pin_init(
            new_fence_context!(c_str!("hmmgpu"), c_str!("hmmgpu-kunit")),
            GFP_KERNEL,
        )?;
        let signaller = timeline.new_fence()?;
        obj.replace_fence(Some(signaller.fence()));
        let fence: ARef<Fence> = obj.fence().ok_or(EINVAL)?;
        assert!(core::ptr::eq(&*fence, signaller.fence()));
        signaller.signal();
        assert!(fence.is_signaled());
        obj.replace_fence(None);
        assert!(obj.fence().is_none());
        Ok(())
    }

    /// Maps `len` bytes of anonymous memory in the test thread's own address space.
    fn user_mapping(len: usize) -> Result<usize> {
        // SAFETY: We are in a KUnit test; the test pointer is the current one.
        let addr = unsafe {
            kernel::bindings::kunit_vm_mmap(
                kernel::bindings::kunit_get_current_test(),
                core::ptr::null_mut(),
                0,
                len as _,
                (kernel::bindings::PROT_READ | kernel::bindings::PROT_WRITE) as _,
                (kernel::bindings::MAP_ANONYMOUS | kernel::bindings::MAP_PRIVATE) as _,
                0,
            )
        } as usize;
        if addr == 0 || addr > usize::MAX - 4095 {
            return Err(ENOMEM);
        }
        Ok(addr)
    }

    #[test]
    fn userptrs_are_a_kind_of_their_own() -> Result {
        let f = fixture()?;
        let file = MockFile::<File>::open(&f.dev)?;
        let len = 4 * PAGE_SIZE;
        let addr = user_mapping(len)?;
        let flags = uapi::DRM_HMMGPU_USERPTR_PROBE | uapi::DRM_HMMGPU_USERPTR_READ_ONLY;
        let (userptr, size) = Userptr::new(addr as u64, len as u64, flags)?;
        let handle = UserptrObject::new(&f.dev, size, userptr)?.create_handle(file.file())?;
        let obj = UserptrObject::lookup_handle(file.file(), handle)?;
        assert_eq!(obj.size(), len);
        assert_eq!(obj.start(), addr);
        assert!(obj.read_only());
        // Not a BO: no BO lookup finds it, and it has no mmap offset.
        assert!(Bo::lookup_handle(file.file(), handle).err() == Some(ENOENT));
        let mut args = uapi::drm_hmmgpu_gem_mmap_offset {
            handle,
            flags: 0,
            offset: 0,
        };
        assert!(File::gem_mmap_offset(&f.dev, &mut args, file.file()) == Err(EINVAL));
        // Nor does a userptr lookup find a BO.
        let bo = Bo::new(&f.dev, PAGE_SIZE)?.create_handle(file.file())?;
        assert!(UserptrObject::lookup_handle(file.file(), bo).err() == Some(ENOENT));
        Ok(())
    }

    #[test]
    fn userptr_arguments_are_checked() -> Result {
        let len = 4 * PAGE_SIZE;
        let addr = user_mapping(len)? as u64;
        let page = PAGE_SIZE as u64;
        let probe = uapi::DRM_HMMGPU_USERPTR_PROBE;
        for (a, s, fl) in [
            (addr, 0, 0),
            (addr + 1, page, 0),
            (addr, page + 1, 0),
            (addr, GEM_MAX_SIZE + page, 0),
            (!(page - 1), 2 * page, 0),
            (0xffff_8000_0000_0000, page, 0),
            (addr, page, 1 << 2),
            (addr, page, 1 << 31),
        ] {
            assert!(Userptr::new(a, s, fl).err() == Some(EINVAL));
        }
        // Probing finds the hole after the mapping; without probing, creation is lazy.
        assert!(Userptr::new(addr, len as u64 + page, probe).err() == Some(EFAULT));
        assert!(Userptr::new(addr, len as u64 + page, 0).is_ok());
        assert!(Userptr::new(addr, len as u64, probe).is_ok());
        Ok(())
    }
}
