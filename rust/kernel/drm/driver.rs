// SPDX-License-Identifier: GPL-2.0 OR MIT

//! DRM drivers: the trait a driver implements and the registration of its device.
//!
//! C header: [`include/drm/drm_drv.h`](srctree/include/drm/drm_drv.h)

use crate::{bindings, drm, error::to_result, prelude::*, str::CStr, types::ARef};
use macros::vtable;

/// Feature flags of a DRM driver (`enum drm_driver_feature`).
pub mod feature {
    /// The driver uses the GEM memory manager. Every [`Driver`](super::Driver) does.
    pub const GEM: u32 = crate::bindings::drm_driver_feature_DRIVER_GEM;
    /// The driver exposes a render node.
    pub const RENDER: u32 = crate::bindings::drm_driver_feature_DRIVER_RENDER;
    /// The driver supports DRM sync objects.
    pub const SYNCOBJ: u32 = crate::bindings::drm_driver_feature_DRIVER_SYNCOBJ;
}

/// What userspace learns of a driver through `DRM_IOCTL_VERSION`.
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
}

/// A [`drm::Device`] registered with the DRM core, so that userspace can open it.
///
/// Dropping it unregisters the device: open files keep it alive but can no longer start ioctls.
///
/// # Invariants
///
/// `self.0` was registered with `drm_dev_register` and is not yet unregistered.
pub struct Registration<T: Driver>(ARef<drm::Device<T>>);

impl<T: Driver> Registration<T> {
    /// Registers `drm` with the DRM core.
    pub fn new(drm: ARef<drm::Device<T>>) -> Result<Self> {
        // SAFETY: `drm.as_raw()` is a valid, initialised and not yet registered `drm_device`:
        // `drm::Device::new` only returns it before any registration.
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
        // SAFETY: By the type invariant the device is registered.
        unsafe { bindings::drm_dev_unregister(self.0.as_raw()) };
    }
}

// SAFETY: `drm_dev_unregister` may be called from any thread.
unsafe impl<T: Driver> Send for Registration<T> {}

// SAFETY: A `&Registration` only gives access to the device, which is `Sync`.
unsafe impl<T: Driver> Sync for Registration<T> {}
