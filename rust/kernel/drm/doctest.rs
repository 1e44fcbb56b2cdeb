// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A DRM driver for the examples of the documentation.
//!
//! The examples run as the KUnit suite `rust_doctests_kernel` at boot, where no DRM driver of
//! the kernel crate exists: [`Fixture`] makes a device of [`Driver`] on a platform device of its
//! own, not registered, on which files can be opened from the kernel
//! ([`MockFile`](super::file::MockFile)) and GEM objects made. [`Driver`] is the driver of the
//! example of [`drm::Driver`], with one ioctl and a second kind of GEM object.

use crate::{
    c_str,
    drm::{
        self,
        driver::feature,
        gem::{object, shmem, ObjectFuncs},
        ioctl,
    },
    platform::SimpleDevice,
    prelude::*,
    types::ARef,
    uapi, ThisModule,
};

/// The examples' driver.
pub struct Driver;

/// The data [`Driver`] keeps per open file: none.
pub struct File;

/// The data [`Driver`] keeps per shmem-backed GEM object: none.
pub struct Object;

/// The data [`Driver`] keeps per GEM object without pages: the address it stands for.
pub struct Userptr {
    /// The start of the range of a process's memory the object stands for.
    pub start: usize,
}

/// The module the examples' devices belong to: the kernel itself.
// SAFETY: Null is the module of code built into the kernel.
pub static THIS_MODULE: ThisModule = unsafe { ThisModule::from_ptr(core::ptr::null_mut()) };

static FOPS: drm::FileOperations<Driver> = drm::FileOperations::new(&THIS_MODULE);
static OBJECT_FUNCS: ObjectFuncs<shmem::Object<Object>> = shmem::funcs();
static USERPTR_FUNCS: ObjectFuncs<object::Object<Userptr>> = object::funcs();

impl drm::file::DriverFile for File {
    type Driver = Driver;

    fn open(_dev: &drm::Device<Driver>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin(File, GFP_KERNEL)?)
    }
}

impl File {
    /// `DRM_IOCTL_HMMGPU_GET_PARAM`, as this driver has it: the value is twice the parameter.
    pub fn get_param(
        _dev: &drm::Device<Driver>,
        arg: &mut uapi::drm_hmmgpu_get_param,
        _file: &drm::File<File>,
    ) -> Result<u32> {
        if arg.pad != 0 {
            return Err(EINVAL);
        }
        arg.value = u64::from(arg.param) * 2;
        Ok(0)
    }
}

impl shmem::DriverObject for Object {
    type Driver = Driver;

    fn funcs() -> &'static ObjectFuncs<shmem::Object<Self>> {
        &OBJECT_FUNCS
    }

    fn new(_dev: &drm::Device<Driver>, _size: usize) -> impl PinInit<Self, Error> {
        Object
    }
}

impl object::DriverObject for Userptr {
    type Driver = Driver;

    fn funcs() -> &'static ObjectFuncs<object::Object<Self>> {
        &USERPTR_FUNCS
    }
}

#[vtable]
impl drm::Driver for Driver {
    type Data = ();
    type File = File;
    type Object = Object;

    const INFO: drm::DriverInfo = drm::DriverInfo {
        major: 1,
        minor: 2,
        patchlevel: 3,
        name: c_str!("rust_doctest"),
        desc: c_str!("The driver of the kernel crate's examples"),
    };

    const FEATURES: u32 = feature::RENDER | feature::SYNCOBJ;

    const FOPS: &'static drm::FileOperations<Self> = &FOPS;

    crate::declare_drm_ioctls! {
        (HMMGPU_GET_PARAM, drm_hmmgpu_get_param, ioctl::RENDER_ALLOW, File::get_param),
    }
}

/// A device of [`Driver`], not registered.
pub struct Fixture {
    /// The DRM device.
    pub dev: ARef<drm::Device<Driver>>,
    /// Its parent, dropped last: unregistering it drops its reference to the DRM device.
    pub pdev: SimpleDevice,
}

impl Fixture {
    /// Makes a device of [`Driver`] on a new platform device.
    pub fn new() -> Result<Self> {
        let pdev = SimpleDevice::register(c_str!("rust-doctest-drm"), None)?;
        let dev = drm::Device::<Driver>::new(pdev.device(), ())?.into_aref();
        Ok(Self { dev, pdev })
    }
}
