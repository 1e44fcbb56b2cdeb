// SPDX-License-Identifier: GPL-2.0 OR MIT

//! DRM drivers: the trait a driver implements and the registration of its device.
//!
//! C header: [`include/drm/drm_drv.h`](srctree/include/drm/drm_drv.h)

use crate::{bindings, drm, error::to_result, prelude::*, str::CStr, types::ARef};
use macros::vtable;

/// Feature flags of a DRM driver (`enum drm_driver_feature`).
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::drm::{driver::feature, Driver};
///
/// // The examples' driver has sync objects and a render node, and GEM like every driver.
/// assert_eq!(doctest::Driver::FEATURES, feature::RENDER | feature::SYNCOBJ);
/// assert!(f.dev.render_minor().is_some());
/// # Ok::<(), Error>(())
/// ```
pub mod feature {
    /// The driver uses the GEM memory manager. Every [`Driver`](super::Driver) does.
    pub const GEM: u32 = crate::bindings::drm_driver_feature_DRIVER_GEM;
    /// The driver exposes a render node.
    pub const RENDER: u32 = crate::bindings::drm_driver_feature_DRIVER_RENDER;
    /// The driver supports DRM sync objects.
    pub const SYNCOBJ: u32 = crate::bindings::drm_driver_feature_DRIVER_SYNCOBJ;
    /// Timeline sync objects (`DRM_CAP_SYNCOBJ_TIMELINE`): points of a sync object, each a
    /// fence, in a `dma_fence_chain`. Implies [`SYNCOBJ`].
    pub const SYNCOBJ_TIMELINE: u32 = crate::bindings::drm_driver_feature_DRIVER_SYNCOBJ_TIMELINE;
}

/// What userspace learns of a driver through `DRM_IOCTL_VERSION`.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::drm::Driver;
///
/// let info = &doctest::Driver::INFO;
/// assert_eq!((info.major, info.minor, info.patchlevel), (1, 2, 3));
/// // SAFETY: The device's `driver` is its copy of the driver's table, made from `INFO`.
/// let name = unsafe { kernel::str::CStr::from_char_ptr((*(*f.dev.as_raw()).driver).name) };
/// assert_eq!(name.as_bytes(), info.name.as_bytes());
/// # Ok::<(), Error>(())
/// ```
pub struct DriverInfo {
    /// Major version.
    pub major: i32,
    /// Minor version.
    pub minor: i32,
    /// Patch level.
    pub patchlevel: i32,
    /// Driver name, as `drmGetVersion()` reports it and IGT's `drm_open_driver` matches it.
    pub name: &'static CStr,
    /// One-line description.
    pub desc: &'static CStr,
}

/// A DRM driver.
///
/// The types name what the driver keeps per device ([`Driver::Data`]), per open file
/// ([`Driver::File`]) and per GEM object ([`Driver::Object`]).
///
/// # Examples
///
/// A driver with no ioctls, a device of it on a platform device, a file opened on it from the
/// kernel and a GEM object:
///
/// ```
/// use kernel::{
///     c_str,
///     drm::{
///         self,
///         file::MockFile,
///         gem::{shmem, BaseObject, ObjectFuncs},
///     },
///     page::PAGE_SIZE,
///     platform::SimpleDevice,
///     prelude::*,
///     sync::Arc,
/// };
/// # // SAFETY: Null is the module of code built into the kernel, as this example is.
/// # static THIS_MODULE: kernel::ThisModule =
/// #     unsafe { kernel::ThisModule::from_ptr(core::ptr::null_mut()) };
///
/// struct MyDriver;
///
/// /// What the driver keeps per open file.
/// struct MyFile;
///
/// impl drm::file::DriverFile for MyFile {
///     type Driver = MyDriver;
///
///     fn open(_dev: &drm::Device<MyDriver>) -> Result<Pin<KBox<Self>>> {
///         Ok(KBox::pin(MyFile, GFP_KERNEL)?)
///     }
/// }
///
/// /// What the driver keeps per GEM object.
/// struct MyObject;
///
/// static FUNCS: ObjectFuncs<shmem::Object<MyObject>> = shmem::funcs();
///
/// impl shmem::DriverObject for MyObject {
///     type Driver = MyDriver;
///
///     fn funcs() -> &'static ObjectFuncs<shmem::Object<Self>> {
///         &FUNCS
///     }
///
///     fn new(_dev: &drm::Device<MyDriver>, _size: usize) -> impl PinInit<Self, Error> {
///         MyObject
///     }
/// }
///
/// #[vtable]
/// impl drm::Driver for MyDriver {
///     /// What the driver keeps per device.
///     type Data = Arc<u32>;
///     type File = MyFile;
///     type Object = MyObject;
///
///     const INFO: drm::DriverInfo = drm::DriverInfo {
///         major: 1,
///         minor: 0,
///         patchlevel: 0,
///         name: c_str!("mydrm"),
///         desc: c_str!("An example"),
///     };
///
///     const IOCTLS: &'static [drm::ioctl::DrmIoctlDescriptor] = &[];
///
///     const FOPS: &'static drm::FileOperations<Self> = &FOPS;
/// }
///
/// static FOPS: drm::FileOperations<MyDriver> = drm::FileOperations::new(&THIS_MODULE);
///
/// let pdev = SimpleDevice::register(c_str!("mydrm"), None)?;
/// let data = Arc::new(42, GFP_KERNEL)?;
/// let dev = drm::Device::<MyDriver>::new(pdev.device(), data.clone())?.into_aref();
/// // The device derefs to its data.
/// assert!(Arc::ptr_eq(&dev, &data));
/// let file = MockFile::<MyFile>::open(&dev)?;
/// let obj = shmem::Object::<MyObject>::new(&dev, 1)?;
/// assert_eq!(obj.size(), PAGE_SIZE);
/// let handle = obj.create_handle(file.file())?;
/// let found = shmem::Object::<MyObject>::lookup_handle(file.file(), handle)?;
/// assert!(core::ptr::eq(&*found, &*obj));
/// drop((found, obj, file, dev, pdev));
/// // Unregistering the parent dropped the last reference to the device, and so its data.
/// assert!(Arc::into_unique_or_drop(data).is_some());
/// # Ok::<(), Error>(())
/// ```
#[vtable]
pub trait Driver: Sized + 'static {
    /// Data the driver keeps per device, reachable from [`drm::Device`] by `Deref`.
    type Data: Send + Sync;

    /// Data the driver keeps per open file.
    type File: drm::file::DriverFile<Driver = Self>;

    /// The driver's GEM objects.
    type Object: drm::gem::shmem::DriverObject<Driver = Self>;

    /// Name, description and version.
    const INFO: DriverInfo;

    /// The driver's ioctls, made with [`declare_drm_ioctls!`].
    const IOCTLS: &'static [drm::ioctl::DrmIoctlDescriptor];

    /// Bit mask of [`feature`] flags; [`feature::GEM`] is always added.
    const FEATURES: u32 = feature::RENDER;

    /// The file operations of the driver's device nodes, a `static` of the driver's module:
    /// `static FOPS: drm::FileOperations<MyDriver> = drm::FileOperations::new(&THIS_MODULE);`.
    const FOPS: &'static drm::FileOperations<Self>;
}

/// A [`drm::Device`] registered with the DRM core, so that userspace can open it.
///
/// Dropping it unplugs the device (`drm_dev_unplug`), as a driver's removal must: ioctls that
/// run finish first, later ones fail with `ENODEV`, and the device nodes go. Open files keep the
/// device (and its data) alive until they are closed.
///
/// A device is registered at most once: [`Registration::new`] consumes the [`drm::NewDevice`]
/// that [`drm::Device::new`] returned, which cannot be cloned
/// (`tools/hmmgpu/compile-fail/register_twice.rs` shows a second registration refused).
///
/// # Examples
///
/// ```
/// use kernel::{
///     c_str,
///     drm::{doctest, Device, Registration},
///     platform::SimpleDevice,
/// };
///
/// let pdev = SimpleDevice::register(c_str!("rust-doctest-reg"), None)?;
/// let new = Device::<doctest::Driver>::new(pdev.device(), ())?;
/// let dev = kernel::types::ARef::from(&*new);
/// let registration = Registration::new(new)?;
/// assert!(core::ptr::eq(registration.device(), &*dev));
/// // SAFETY: The device is live.
/// assert!(unsafe { (*dev.as_raw()).registered });
/// drop(registration);
/// // SAFETY: As above.
/// assert!(!unsafe { (*dev.as_raw()).registered });
/// assert!(dev.is_unplugged());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `self.0` was registered with `drm_dev_register` and is not yet unplugged.
pub struct Registration<T: Driver>(ARef<drm::Device<T>>);

impl<T: Driver> Registration<T> {
    /// Registers `drm` with the DRM core.
    pub fn new(drm: drm::NewDevice<T>) -> Result<Self> {
        let drm = drm.into_unregistered();
        // SAFETY: `drm.as_raw()` is a valid, initialised and never registered `drm_device` (by
        // the invariant of `NewDevice`, which we consumed).
        to_result(unsafe { bindings::drm_dev_register(drm.as_raw(), 0) })?;
        // INVARIANT: The registration just succeeded.
        Ok(Self(drm))
    }

    /// The registered device.
    pub fn device(&self) -> &drm::Device<T> {
        &self.0
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device is registered and not unplugged; this
        // unplugs and unregisters it, once.
        unsafe { bindings::drm_dev_unplug(self.0.as_raw()) };
    }
}

// SAFETY: `drm_dev_unplug` may be called from any thread that may sleep.
unsafe impl<T: Driver> Send for Registration<T> {}

// SAFETY: A `&Registration` only gives access to the device, which is `Sync`.
unsafe impl<T: Driver> Sync for Registration<T> {}
