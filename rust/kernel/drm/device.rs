// SPDX-License-Identifier: GPL-2.0 OR MIT

//! DRM devices.
//!
//! A [`Device`] embeds the C `struct drm_device` together with the driver's per-device data. Its
//! function tables are constants of the driver, in static storage: the file operations of an
//! open file are read by `__fput` after its last reference to the device is gone, so they must
//! not live in the device, and they name the driver's module (see [`FileOperations`]), which
//! therefore stays loaded while files of the device are open.
//!
//! C header: [`include/drm/drm_device.h`](srctree/include/drm/drm_device.h)

use crate::{
    bindings, device, drm,
    drm::driver::{feature, Driver},
    error::from_err_ptr,
    prelude::*,
    types::{ARef, AlwaysRefCounted, Opaque},
    ThisModule,
};
use core::{marker::PhantomData, mem, ops::Deref, ptr, ptr::NonNull};

/// The file operations of the device nodes of driver `T`: those of a GEM driver
/// (`DEFINE_DRM_GEM_FOPS`), owned by the driver's module.
///
/// A driver declares them in a `static` and names it in [`Driver::FOPS`]. An open file keeps a
/// reference to their `owner` from open until after its release; that is what keeps the module's
/// code (the driver's callbacks) loaded while files are open.
///
/// # Examples
///
/// ```
/// use kernel::drm::{device::FileOperations, doctest};
///
/// // The examples' driver is built into the kernel: its module is null.
/// static FOPS: FileOperations<doctest::Driver> = FileOperations::new(&doctest::THIS_MODULE);
/// assert!(FOPS.as_raw().owner.is_null());
/// assert!(FOPS.as_raw().unlocked_ioctl.is_some() && FOPS.as_raw().release.is_some());
/// ```
#[repr(transparent)]
pub struct FileOperations<T: Driver>(bindings::file_operations, PhantomData<T>);

// SAFETY: The table is immutable; it holds function pointers and the module's pointer.
unsafe impl<T: Driver> Sync for FileOperations<T> {}

impl<T: Driver> FileOperations<T> {
    /// The file operations of a GEM driver whose module is `module`: `&THIS_MODULE` of the
    /// driver's crate.
    pub const fn new(module: &'static ThisModule) -> Self {
        // SAFETY: All-zeroes is a valid `file_operations`: null pointers and `None` callbacks.
        let mut fops: bindings::file_operations = unsafe { mem::zeroed() };
        fops.owner = module.0;
        fops.open = Some(bindings::drm_open);
        fops.release = Some(bindings::drm_release);
        fops.unlocked_ioctl = Some(bindings::drm_ioctl);
        #[cfg(CONFIG_COMPAT)]
        {
            fops.compat_ioctl = Some(bindings::drm_compat_ioctl);
        }
        fops.poll = Some(bindings::drm_poll);
        fops.read = Some(bindings::drm_read);
        fops.llseek = Some(bindings::noop_llseek);
        fops.mmap = Some(bindings::drm_gem_mmap);
        fops.fop_flags = bindings::FOP_UNSIGNED_OFFSET;
        Self(fops, PhantomData)
    }

    /// The C `struct file_operations`.
    pub const fn as_raw(&self) -> &bindings::file_operations {
        &self.0
    }
}

/// A DRM device of driver `T`, with the driver's data `T::Data`.
///
/// Reference counted: [`ARef<Device<T>>`] holds a `drm_dev_get` reference.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::drm::Device;
///
/// assert!(f.dev.render_minor().is_some());
/// // SAFETY: `f.dev` is a live device of `doctest::Driver`.
/// let same = unsafe { Device::<doctest::Driver>::as_ref(f.dev.as_raw()) };
/// assert!(core::ptr::eq(same, &*f.dev));
/// // The driver's data, `()` here.
/// let () = **same;
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// - `drm` is an initialised `struct drm_device`, allocated by `__devm_drm_dev_alloc` as part of
///   this container, whose `driver` is `&Self::VTABLE` (with `fops` `T::FOPS` and `release`
///   set).
/// - `data` is initialised; it is dropped by the `release` callback.
#[repr(C)]
#[pin_data]
pub struct Device<T: Driver> {
    drm: Opaque<bindings::drm_device>,
    #[pin]
    data: T::Data,
}

impl<T: Driver> Device<T> {
    /// The driver's `struct drm_driver` while the device's data is not initialised: no
    /// `release`, which would drop it.
    const VTABLE_UNINIT: bindings::drm_driver = {
        // SAFETY: All-zeroes is a valid `drm_driver`: null pointers and `None` callbacks.
        let mut vtable: bindings::drm_driver = unsafe { mem::zeroed() };
        vtable.open = Some(drm::file::open_callback::<T::File>);
        vtable.postclose = Some(drm::file::postclose_callback::<T::File>);
        vtable.gem_create_object = Some(drm::gem::shmem::create_object_callback::<T::Object>);
        // dma-bufs of other drivers become shmem objects of ours, without pages of their own.
        vtable.gem_prime_import_sg_table = Some(bindings::drm_gem_shmem_prime_import_sg_table);
        vtable.major = T::INFO.major;
        vtable.minor = T::INFO.minor;
        vtable.patchlevel = T::INFO.patchlevel;
        vtable.name = T::INFO.name.as_char_ptr().cast_mut();
        vtable.desc = T::INFO.desc.as_char_ptr().cast_mut();
        vtable.date = crate::c_str!("20261121").as_char_ptr().cast_mut();
        vtable.driver_features = T::FEATURES | feature::GEM;
        vtable.ioctls = T::IOCTLS.as_ptr();
        vtable.num_ioctls = T::IOCTLS.len() as i32;
        vtable.fops = T::FOPS.as_raw();
        vtable
    };

    /// The driver's `struct drm_driver`.
    const VTABLE: bindings::drm_driver = bindings::drm_driver {
        release: Some(Self::release),
        ..Self::VTABLE_UNINIT
    };

    /// Allocates a DRM device of driver `T` on `parent`, with data initialised by `data`.
    ///
    /// The parent holds a reference to the device until it is unbound (the device is
    /// device-managed, as with `devm_drm_dev_alloc`); the returned [`NewDevice`] is another
    /// one, which may register the device once.
    #[expect(
        clippy::new_ret_no_self,
        reason = "the new device comes as the one value that may register it"
    )]
    pub fn new(
        parent: &device::Device,
        data: impl PinInit<T::Data, Error>,
    ) -> Result<NewDevice<T>> {
        const {
            assert!(mem::align_of::<Self>() <= bindings::ARCH_SLAB_MINALIGN);
        }

        // SAFETY: `parent` is a valid device; `VTABLE_UNINIT` is a constant, in static storage,
        // that describes a GEM driver whose callbacks only use `Self` once `drm.driver` points
        // at `VTABLE` below; until then `release` is `None`, so a failure drops nothing.
        let raw = from_err_ptr(unsafe {
            bindings::__devm_drm_dev_alloc(
                parent.as_raw(),
                &Self::VTABLE_UNINIT,
                mem::size_of::<Self>(),
                mem::offset_of!(Self, drm),
            )
        })?
        .cast::<Self>();

        // SAFETY: `raw` points to a zeroed allocation of `size_of::<Self>()` bytes that nothing
        // else uses yet; `data` is a field of it.
        //
        // On failure the device stays allocated, with `release` unset, until the parent is unbound
        // and its device-managed reference is dropped, as with C drivers whose probe fails after
        // `devm_drm_dev_alloc`.
        unsafe { data.__pinned_init(ptr::addr_of_mut!((*raw).data)) }?;

        // SAFETY: `raw` is valid and its `drm` was initialised by `__devm_drm_dev_alloc`; nothing
        // has opened or registered the device yet, so its table may still be replaced.
        unsafe {
            // INVARIANT: From here on the device has its release callback, and `data` is
            // initialised.
            (*Opaque::raw_get(ptr::addr_of!((*raw).drm))).driver = &Self::VTABLE;
            bindings::drm_dev_get(Opaque::raw_get(ptr::addr_of!((*raw).drm)));
        }

        // SAFETY: We just took the reference that the `ARef` owns.
        let dev = unsafe { ARef::from_raw(NonNull::new_unchecked(raw)) };
        // INVARIANT: The device was just made; nothing registered it.
        Ok(NewDevice(dev))
    }

    /// The `struct drm_device` of this device.
    pub fn as_raw(&self) -> *mut bindings::drm_device {
        self.drm.get()
    }

    /// Borrows the [`Device`] that embeds `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be the `drm_device` of a live `Device<T>` (one of this driver `T`), and must
    /// remain so for `'a`.
    pub unsafe fn as_ref<'a>(ptr: *const bindings::drm_device) -> &'a Self {
        // SAFETY: By the safety requirements `ptr` is the `drm` field of a `Device<T>`.
        unsafe { &*crate::container_of!(ptr, Self, drm) }
    }

    /// The render node's minor, if the driver has [`feature::RENDER`].
    pub fn render_minor(&self) -> Option<*mut bindings::drm_minor> {
        // SAFETY: `render` is set at allocation and constant afterwards.
        let minor = unsafe { (*self.as_raw()).render };
        (!minor.is_null()).then_some(minor)
    }

    /// Whether the device was unplugged (its [`Registration`](drm::Registration) dropped):
    /// ioctls then fail with `ENODEV`. A hint, which may change as soon as it is read.
    pub fn is_unplugged(&self) -> bool {
        // SAFETY: The device is live.
        unsafe { bindings::drm_dev_is_unplugged(self.as_raw()) }
    }

    /// `drm_driver.release`: the last reference is gone; drop the driver's data.
    ///
    /// # Safety
    ///
    /// `drm` must be the `drm_device` of a `Device<T>` whose last reference was just dropped.
    unsafe extern "C" fn release(drm: *mut bindings::drm_device) {
        // SAFETY: The DRM core calls `release` once, for a device whose `driver` is `VTABLE`,
        // which is only set once `data` is initialised. The container itself is freed by the DRM
        // core after this returns.
        unsafe {
            let this = crate::container_of!(drm, Self, drm).cast_mut();
            ptr::drop_in_place(ptr::addr_of_mut!((*this).data));
        }
    }
}

impl<T: Driver> Deref for Device<T> {
    type Target = T::Data;

    fn deref(&self) -> &Self::Target {
        &self.data
    }
}

// SAFETY: DRM devices are reference counted by `drm_dev_get`/`drm_dev_put`.
unsafe impl<T: Driver> AlwaysRefCounted for Device<T> {
    fn inc_ref(&self) {
        // SAFETY: `self` is a live device, so its reference count is not zero.
        unsafe { bindings::drm_dev_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up one reference, which it owned.
        unsafe { bindings::drm_dev_put(obj.as_ref().as_raw()) };
    }
}

// SAFETY: A `drm_device` may be used and released from any thread; `T::Data` is `Send + Sync`.
unsafe impl<T: Driver> Send for Device<T> {}

// SAFETY: Shared references only allow the thread-safe DRM core calls and `&T::Data`, which is
// `Sync`.
unsafe impl<T: Driver> Sync for Device<T> {}

/// A [`Device`] just made by [`Device::new`], which no one registered: the only value that
/// [`Registration::new`](drm::Registration::new) accepts, which consumes it, so that a device is
/// registered at most once.
///
/// It cannot be cloned; [`NewDevice::into_aref`] turns it into an ordinary reference, which may
/// be cloned but not registered.
///
/// # Examples
///
/// ```
/// use kernel::{c_str, drm::{doctest, Device, Registration}, platform::SimpleDevice};
///
/// let pdev = SimpleDevice::register(c_str!("rust-doctest-new"), None)?;
/// let new = Device::<doctest::Driver>::new(pdev.device(), ())?;
/// // A reference to the device, which cannot register it.
/// let dev = new.into_aref();
/// assert!(dev.render_minor().is_some());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// The device was never passed to `drm_dev_register`.
pub struct NewDevice<T: Driver>(ARef<Device<T>>);

impl<T: Driver> NewDevice<T> {
    /// A reference to the device, which gives up registering it.
    pub fn into_aref(self) -> ARef<Device<T>> {
        self.0
    }

    /// Gives the reference and the promise that the device was never registered.
    pub(crate) fn into_unregistered(self) -> ARef<Device<T>> {
        self.0
    }
}

impl<T: Driver> Deref for NewDevice<T> {
    type Target = Device<T>;

    fn deref(&self) -> &Device<T> {
        &self.0
    }
}

impl<T: Driver> From<NewDevice<T>> for ARef<Device<T>> {
    fn from(dev: NewDevice<T>) -> Self {
        dev.into_aref()
    }
}
