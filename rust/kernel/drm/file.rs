// SPDX-License-Identifier: GPL-2.0 OR MIT

//! DRM files: what a driver keeps per open file descriptor.
//!
//! C header: [`include/drm/drm_file.h`](srctree/include/drm/drm_file.h)

use crate::{alloc::KBox, bindings, drm, error::from_result, prelude::*, types::Opaque};
use core::{marker::PhantomData, pin::Pin};

/// The data a driver keeps per open file.
///
/// See [`Driver`](crate::drm::Driver)'s example for an implementation.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::drm::file::{DriverFile, MockFile};
///
/// // `open` makes the data of every file opened on the device, where the file keeps it.
/// let _data: Pin<KBox<doctest::File>> = doctest::File::open(&f.dev)?;
/// let file = MockFile::<doctest::File>::open(&f.dev)?;
/// // SAFETY: The file is open.
/// let private = unsafe { (*file.file().as_raw()).driver_priv };
/// assert!(!private.is_null());
/// assert!(core::ptr::eq(&*file.file().inner(), private.cast()));
/// # Ok::<(), Error>(())
/// ```
pub trait DriverFile: Send + Sync + Sized {
    /// The driver this file belongs to.
    type Driver: drm::Driver;

    /// Creates the data of a file that was just opened on `device`.
    fn open(device: &drm::Device<Self::Driver>) -> Result<Pin<KBox<Self>>>;
}

/// An open DRM file of a device whose driver keeps `T` per file.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::drm::{file::MockFile, File};
///
/// let file = MockFile::<doctest::File>::open(&f.dev)?;
/// let raw = file.file().as_raw();
/// // SAFETY: `raw` is an open file of a device of `doctest::Driver`, while `file` lives.
/// let same = unsafe { File::<doctest::File>::as_ref(raw) };
/// assert!(core::ptr::eq(same, file.file()));
/// // SAFETY: As above.
/// assert_eq!(unsafe { (*raw).minor }, f.dev.render_minor().ok_or(EINVAL)?);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// The wrapped `drm_file` belongs to a device of `T::Driver` and its `driver_priv` holds the
/// `Pin<KBox<T>>` made by [`DriverFile::open`], from `open` until `postclose`.
#[repr(transparent)]
pub struct File<T: DriverFile>(Opaque<bindings::drm_file>, PhantomData<T>);

impl<T: DriverFile> File<T> {
    /// Borrows the [`File`] wrapping `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a `drm_file` of a device of `T::Driver`, opened (its `open` callback
    /// returned success) and not yet closed, for `'a`.
    pub unsafe fn as_ref<'a>(ptr: *mut bindings::drm_file) -> &'a Self {
        // SAFETY: `File` is a transparent wrapper of `drm_file`; validity is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    /// The C `struct drm_file`.
    pub fn as_raw(&self) -> *mut bindings::drm_file {
        self.0.get()
    }

    /// The driver's data of this file.
    pub fn inner(&self) -> Pin<&T> {
        // SAFETY: By the type invariant `driver_priv` holds a pinned `T` for as long as the file
        // is open, which outlasts `&self`.
        unsafe { Pin::new_unchecked(&*(*self.as_raw()).driver_priv.cast::<T>()) }
    }
}

/// `drm_driver.open`: makes the driver's data of a new file.
///
/// # Safety
///
/// `raw_dev` must be a live device of `T::Driver` and `raw_file` a file being opened on it.
pub(crate) unsafe extern "C" fn open_callback<T: DriverFile>(
    raw_dev: *mut bindings::drm_device,
    raw_file: *mut bindings::drm_file,
) -> core::ffi::c_int {
    from_result(|| {
        // SAFETY: The DRM core only calls this driver's `open` with its own live device.
        let dev = unsafe { drm::Device::<T::Driver>::as_ref(raw_dev) };
        let inner = T::open(dev)?;
        // SAFETY: The `drm_file` is being opened and not shared yet. `postclose_callback` turns
        // the pointer back into the box. The data is not moved out of the box: it stays pinned.
        // INVARIANT: `driver_priv` now holds the file's data.
        unsafe {
            (*raw_file).driver_priv = KBox::into_raw(Pin::into_inner_unchecked(inner)).cast()
        };
        Ok(0)
    })
}

/// `drm_driver.postclose`: drops the driver's data of a file being closed.
///
/// # Safety
///
/// `raw_file` must be a file of a device of `T::Driver` whose `open` succeeded, being closed
/// after its last ioctl; it is called once per file.
pub(crate) unsafe extern "C" fn postclose_callback<T: DriverFile>(
    _raw_dev: *mut bindings::drm_device,
    raw_file: *mut bindings::drm_file,
) {
    // SAFETY: `postclose` is only called for files whose `open` succeeded, once, after the last
    // ioctl; `driver_priv` holds the box `open_callback` made.
    unsafe { drop(KBox::from_raw((*raw_file).driver_priv.cast::<T>())) };
}

/// A file opened on a device from inside the kernel, for tests (`mock_drm_getfile`).
///
/// It goes through the same `open` and `postclose` callbacks as a file opened by userspace.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::drm::{
///     file::MockFile,
///     gem::{BaseObject, IntoGEMObject},
/// };
///
/// let obj = kernel::drm::gem::shmem::Object::<doctest::Object>::new(&f.dev, 4096)?;
/// let file = MockFile::<doctest::File>::open(&f.dev)?;
/// let handle = obj.create_handle(file.file())?;
/// // A handle holds a reference to the object until the file is closed.
/// // SAFETY: The object is live.
/// let refs = || unsafe { (*obj.as_raw()).refcount.refcount.refs.counter };
/// assert_eq!(refs(), 2);
/// drop(file);
/// assert_eq!(refs(), 1);
/// # let _ = handle;
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `filp` is a `struct file` made by `mock_drm_getfile` on a device of `T::Driver`, whose
/// reference this owns; its `private_data` is the open `drm_file`.
#[cfg(CONFIG_KUNIT)]
pub struct MockFile<T: DriverFile> {
    filp: *mut bindings::file,
    _p: PhantomData<T>,
}

#[cfg(CONFIG_KUNIT)]
impl<T: DriverFile> MockFile<T> {
    /// Opens a file on `dev`'s render node, or on its primary node if it has none.
    pub fn open(dev: &drm::Device<T::Driver>) -> Result<Self> {
        // SAFETY: `primary` is set when the device is allocated and constant afterwards.
        let minor = dev
            .render_minor()
            .unwrap_or(unsafe { (*dev.as_raw()).primary });
        let filp = mock_getfile(minor)?;
        // INVARIANT: `filp` was just made on `dev`, whose driver is `T::Driver`.
        Ok(Self {
            filp,
            _p: PhantomData,
        })
    }

    /// The open DRM file.
    pub fn file(&self) -> &File<T> {
        // SAFETY: By the type invariant `private_data` is the `drm_file`, open while `self` is.
        unsafe { File::as_ref((*self.filp).private_data.cast()) }
    }
}

#[cfg(CONFIG_KUNIT)]
impl<T: DriverFile> Drop for MockFile<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own this reference of `filp`.
        unsafe { bindings::fput(self.filp) };
        // Tests run in kernel threads, whose last `fput` is deferred: close the file now, so that
        // the test can check what closing does.
        // SAFETY: FFI call with no requirements.
        unsafe { bindings::flush_delayed_fput() };
    }
}

/// `mock_drm_getfile`, kept out of generic code so that modules need not import the
/// `EXPORTED_FOR_KUNIT_TESTING` namespace.
#[cfg(CONFIG_KUNIT)]
#[inline(never)]
fn mock_getfile(minor: *mut bindings::drm_minor) -> Result<*mut bindings::file> {
    // SAFETY: `minor` is a live minor of a live device.
    crate::error::from_err_ptr(unsafe { bindings::mock_drm_getfile(minor, bindings::O_RDWR) })
}
