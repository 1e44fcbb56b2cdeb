// SPDX-License-Identifier: GPL-2.0

//! Platform devices.
//!
//! A [`SimpleDevice`] is a platform device that a module creates for itself, with no driver to
//! bind and no resources, as virtual devices such as vgem and vkms use one: it gives the device a
//! place in the device model (and a parent for device-managed resources) and is unregistered when
//! dropped.
//!
//! A [`Driver`] binds to the platform devices of its name; its [`Registration`] registers it
//! with the driver core. Binding makes the driver's data for the device, unbinding (the
//! device's or the driver's unregistration, or a write to the driver's `unbind` file in sysfs)
//! drops it.
//!
//! C header: [`include/linux/platform_device.h`](srctree/include/linux/platform_device.h)

use crate::{
    bindings, device,
    error::{from_err_ptr, from_result, to_result},
    prelude::*,
    str::CStr,
    types::Opaque,
    ThisModule,
};
use core::{marker::PhantomData, pin::Pin};

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
/// // SAFETY: No driver binds to `rust-doctest` devices: nothing maps for them.
/// unsafe { first.set_dma_mask(64) }?;
/// // SAFETY: As above.
/// assert!(unsafe { first.set_dma_mask(65) }.err() == Some(EINVAL));
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

    /// Sets the device's DMA masks, streaming and coherent, to `bits` bits.
    ///
    /// A platform device starts with a 32-bit mask: a page above 4 GiB mapped for it (the
    /// pages of a dma-buf it imports, say) is copied through the kernel's bounce buffers
    /// (swiotlb), whose room is small, and the mapping fails once they are full. A virtual
    /// device that reaches every address the CPU does (as vgem's and vkms's) sets 64.
    ///
    /// # Errors
    ///
    /// `EINVAL` for more than 64 bits; `EIO` if the platform cannot map for such a mask.
    ///
    /// # Safety
    ///
    /// No driver may be bound to the device, and nothing may map memory for it, until this
    /// returns: the masks are read without a lock by every mapping.
    pub unsafe fn set_dma_mask(&self, bits: u32) -> Result {
        let mask = match bits {
            64 => u64::MAX,
            0..64 => (1u64 << bits) - 1,
            _ => return Err(EINVAL),
        };
        // SAFETY: By the type invariant the device is registered, so its `dev` is live. Nothing
        // maps for it meanwhile (the caller's promise).
        to_result(unsafe {
            bindings::dma_coerce_mask_and_coherent(&raw mut (*self.pdev).dev, mask)
        })
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

/// A driver of platform devices, bound by name.
///
/// See [`Registration`] for an example.
pub trait Driver: 'static {
    /// What the driver keeps per bound device, from binding until unbinding.
    type Data: Send + Sync;

    /// The name of the devices the driver binds to, and of the driver.
    const NAME: &'static CStr;

    /// Binds the driver to `dev`: makes the data kept until `dev` is unbound.
    fn probe(dev: &device::Device) -> Result<Pin<KBox<Self::Data>>>;
}

/// A platform driver registered with the driver core; dropping it unregisters it, which unbinds
/// its devices.
///
/// If the registration fails, nothing is registered and nothing is unregistered.
///
/// # Examples
///
/// ```
/// use core::sync::atomic::{AtomicUsize, Ordering};
/// use kernel::{
///     c_str, device,
///     platform::{self, SimpleDevice},
///     prelude::*,
/// };
/// # // SAFETY: Null is the module of code built into the kernel, as this example is.
/// # static THIS_MODULE: kernel::ThisModule =
/// #     unsafe { kernel::ThisModule::from_ptr(core::ptr::null_mut()) };
///
/// static BOUND: AtomicUsize = AtomicUsize::new(0);
///
/// /// What the driver keeps per device: counts the devices bound.
/// struct Bound;
///
/// impl Drop for Bound {
///     fn drop(&mut self) {
///         BOUND.fetch_sub(1, Ordering::Relaxed);
///     }
/// }
///
/// struct MyDriver;
///
/// impl platform::Driver for MyDriver {
///     type Data = Bound;
///
///     const NAME: &'static CStr = c_str!("rust-doctest-pdrv");
///
///     fn probe(_dev: &device::Device) -> Result<Pin<KBox<Bound>>> {
///         BOUND.fetch_add(1, Ordering::Relaxed);
///         Ok(KBox::pin(Bound, GFP_KERNEL)?)
///     }
/// }
///
/// let pdev = SimpleDevice::register(c_str!("rust-doctest-pdrv"), None)?;
/// let other = SimpleDevice::register(c_str!("rust-doctest-other"), None)?;
/// let driver = platform::Registration::<MyDriver>::new(&THIS_MODULE)?;
/// // Bound to the device of its name, and to that alone.
/// assert_eq!(BOUND.load(Ordering::Relaxed), 1);
/// drop(pdev);
/// assert_eq!(BOUND.load(Ordering::Relaxed), 0);
/// let again = SimpleDevice::register(c_str!("rust-doctest-pdrv"), None)?;
/// assert_eq!(BOUND.load(Ordering::Relaxed), 1);
/// drop(driver);
/// assert_eq!(BOUND.load(Ordering::Relaxed), 0);
/// # drop((again, other));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `drv` is a `platform_driver` registered with `__platform_driver_register`, whose callbacks
/// are `probe_callback::<T>` and `remove_callback::<T>`.
pub struct Registration<T: Driver> {
    drv: Pin<KBox<Opaque<bindings::platform_driver>>>,
    _p: PhantomData<T>,
}

// SAFETY: The driver core may unregister a driver from any thread.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: A shared `Registration` gives access to nothing.
unsafe impl<T: Driver> Sync for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Registers driver `T` of module `module` (`&THIS_MODULE` of the driver's crate), which
    /// binds it to the devices of its name that exist.
    pub fn new(module: &'static ThisModule) -> Result<Self> {
        let drv: Pin<KBox<Opaque<bindings::platform_driver>>> =
            KBox::pin(Opaque::uninit(), GFP_KERNEL)?;
        let raw = drv.get();
        // SAFETY: `raw` is valid for writes and pinned: if the registration succeeds, the driver
        // core keeps it until `drop` unregisters it; if it fails, the driver core keeps nothing
        // and the allocation is freed unregistered. `NAME` lives forever.
        to_result(unsafe {
            raw.write_bytes(0, 1);
            (*raw).driver.name = T::NAME.as_char_ptr();
            (*raw).probe = Some(Self::probe_callback);
            (*raw).__bindgen_anon_1.remove = Some(Self::remove_callback);
            bindings::__platform_driver_register(raw, module.0)
        })?;
        // INVARIANT: Registered with our callbacks.
        Ok(Self {
            drv,
            _p: PhantomData,
        })
    }

    /// `platform_driver.probe`: binds the driver to `pdev`.
    ///
    /// # Safety
    ///
    /// `pdev` must be a platform device being bound to this driver.
    unsafe extern "C" fn probe_callback(pdev: *mut bindings::platform_device) -> crate::ffi::c_int {
        from_result(|| {
            // SAFETY: `pdev` is live while it is being bound.
            let dev = unsafe { device::Device::as_ref(&raw mut (*pdev).dev) };
            let data = T::probe(dev)?;
            // SAFETY: `remove_callback` turns the pointer back into the box, which is not moved
            // out of: it stays pinned. The device is being bound, so nothing else sets its data.
            unsafe {
                let data = KBox::into_raw(Pin::into_inner_unchecked(data));
                bindings::platform_set_drvdata(pdev, data.cast());
            }
            Ok(0)
        })
    }

    /// `platform_driver.remove`: unbinds the driver from `pdev`.
    ///
    /// # Safety
    ///
    /// `pdev` must be a platform device that `probe_callback` bound, being unbound.
    unsafe extern "C" fn remove_callback(pdev: *mut bindings::platform_device) {
        // SAFETY: The device was bound by `probe_callback`, which stored a `Pin<KBox<T::Data>>`
        // in its data; it is unbound once.
        unsafe {
            let data = bindings::platform_get_drvdata(pdev).cast::<T::Data>();
            drop(Pin::new_unchecked(KBox::from_raw(data)));
            bindings::platform_set_drvdata(pdev, core::ptr::null_mut());
        }
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the driver is registered; this unregisters it once,
        // unbinding its devices.
        unsafe { bindings::platform_driver_unregister(self.drv.get()) };
    }
}
