// SPDX-License-Identifier: GPL-2.0 OR MIT

//! DRM files: what a driver keeps per open file descriptor.
//!
//! C header: [`include/drm/drm_file.h`](srctree/include/drm/drm_file.h)

use crate::{alloc::KBox, bindings, drm, error::from_result, prelude::*, types::Opaque};
use core::{marker::PhantomData, pin::Pin};

/// The data a driver keeps per open file.
pub trait DriverFile: Send + Sync + Sized {
    /// The driver this file belongs to.
    type Driver: drm::Driver;

    /// Creates the data of a file that was just opened on `device`.
    fn open(device: &drm::Device<Self::Driver>) -> Result<Pin<KBox<Self>>>;
}

/// An open DRM file of a device whose driver keeps `T` per file.
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
pub(crate) unsafe extern "C" fn postclose_callback<T: DriverFile>(
    _raw_dev: *mut bindings::drm_device,
    raw_file: *mut bindings::drm_file,
) {
    // SAFETY: `postclose` is only called for files whose `open` succeeded, once, after the last
    // ioctl; `driver_priv` holds the box `open_callback` made.
    unsafe { drop(KBox::from_raw((*raw_file).driver_priv.cast::<T>())) };
}
