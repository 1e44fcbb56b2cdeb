// SPDX-License-Identifier: GPL-2.0

//! Platform devices.
//!
//! A [`SimpleDevice`] is a platform device that a module creates for itself, with no driver to
//! bind and no resources, as virtual devices such as vgem and vkms use one: it gives the device a
//! place in the device model (and a parent for device-managed resources) and is unregistered when
//! dropped.
//!
//! C header: [`include/linux/platform_device.h`](srctree/include/linux/platform_device.h)

use crate::{bindings, device, error::from_err_ptr, prelude::*, str::CStr};

/// A registered platform device with no driver and no resources.
///
/// # Examples
///
/// ```
/// use kernel::{c_str, device::Device, platform::SimpleDevice};
///
/// let first = SimpleDevice::register(c_str!("rust-doctest"), Some(0))?;
/// let second = SimpleDevice::register(c_str!("rust-doctest"), Some(1))?;
/// let dev: &Device = first.as_ref();
/// assert!(core::ptr::eq(dev, first.device()));
/// assert!(!core::ptr::eq(dev, second.device()));
/// // Instance numbers are C `int`s.
/// assert!(SimpleDevice::register(c_str!("rust-doctest"), Some(u32::MAX)).err() == Some(EINVAL));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `pdev` was returned by `platform_device_register_simple` and is not yet unregistered.
pub struct SimpleDevice {
    pdev: *mut bindings::platform_device,
}

impl SimpleDevice {
    /// Registers a platform device called `name` (with instance `id`, or `None` for a single
    /// instance).
    pub fn register(name: &'static CStr, id: Option<u32>) -> Result<Self> {
        let id = match id {
            Some(id) => i32::try_from(id)?,
            None => bindings::PLATFORM_DEVID_NONE,
        };
        // SAFETY: `name` is a NUL-terminated string that lives forever; no resources are passed.
        let pdev = from_err_ptr(unsafe {
            bindings::platform_device_register_simple(name.as_char_ptr(), id, core::ptr::null(), 0)
        })?;
        // INVARIANT: The registration succeeded.
        Ok(Self { pdev })
    }

    /// The device, for use as the parent of other devices.
    pub fn device(&self) -> &device::Device {
        // SAFETY: By the type invariant the platform device is registered, so its `dev` is live
        // for as long as `self` is.
        unsafe { device::Device::as_ref(&raw mut (*self.pdev).dev) }
    }
}

impl AsRef<device::Device> for SimpleDevice {
    fn as_ref(&self) -> &device::Device {
        self.device()
    }
}

impl Drop for SimpleDevice {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device is registered; this unregisters it once, which
        // also releases its device-managed resources.
        unsafe { bindings::platform_device_unregister(self.pdev) };
    }
}

// SAFETY: Platform devices may be unregistered from any thread.
unsafe impl Send for SimpleDevice {}

// SAFETY: A shared `SimpleDevice` only hands out `&device::Device`, which is `Sync`.
unsafe impl Sync for SimpleDevice {}
