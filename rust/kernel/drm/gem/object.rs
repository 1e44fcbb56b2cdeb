// SPDX-License-Identifier: GPL-2.0 OR MIT

//! GEM objects without pages of their own.
//!
//! An [`Object<T>`] embeds a `struct drm_gem_object` initialised with
//! `drm_gem_private_object_init`: it has a size and handles, but no shmem file, so the driver's
//! data `T` decides what backs it (a range of a process's address space, for a userptr). Such an
//! object can be neither mapped by the CPU through the DRM file nor exported as a dma-buf: its
//! table has no `mmap`, and its `export` refuses with `ENODEV`.
//!
//! C header: [`include/drm/drm_gem.h`](srctree/include/drm/drm_gem.h)

use crate::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KBox},
    bindings, drm,
    drm::gem::{IntoGEMObject, ObjectFuncs},
    init::InPlaceInit,
    prelude::*,
    types::{ARef, Opaque},
};
use core::{mem, ops::Deref, pin::Pin, ptr::NonNull};

/// The data a driver keeps per object of this kind.
///
/// [`doctest::Userptr`](crate::drm::doctest::Userptr) implements it so:
///
/// ```ignore
/// static USERPTR_FUNCS: ObjectFuncs<object::Object<Userptr>> = object::funcs();
///
/// impl object::DriverObject for Userptr {
///     type Driver = Driver;
///
///     fn funcs() -> &'static ObjectFuncs<object::Object<Self>> {
///         &USERPTR_FUNCS
///     }
/// }
/// ```
///
/// See [`Object`] for an example that runs.
pub trait DriverObject: Send + Sync + Sized + 'static {
    /// The driver whose objects these are.
    type Driver: drm::Driver;

    /// The function table of these objects: a `static` made by [`funcs`], which the function
    /// returns, `static FUNCS: ObjectFuncs<object::Object<MyObject>> = object::funcs();` (see
    /// [`ObjectFuncs`] for why it must be a `static`).
    fn funcs() -> &'static ObjectFuncs<Object<Self>>;
}

/// A GEM object without pages of its own, with the driver's data `T`.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::{
///     drm::{file::MockFile, gem::{object::Object, BaseObject}},
///     page::PAGE_SIZE,
/// };
///
/// let file = MockFile::<doctest::File>::open(&f.dev)?;
/// let userptr = Object::new(&f.dev, PAGE_SIZE + 1, doctest::Userptr { start: 0x10000 })?;
/// assert_eq!(userptr.size(), 2 * PAGE_SIZE);
/// // The driver's data.
/// assert_eq!(userptr.start, 0x10000);
/// let handle = userptr.create_handle(file.file())?;
/// let found = Object::<doctest::Userptr>::lookup_handle(file.file(), handle)?;
/// assert_eq!(found.start, 0x10000);
/// assert!(Object::new(&f.dev, usize::MAX, doctest::Userptr { start: 0 }).err() == Some(EINVAL));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `obj` is a GEM object initialised by `drm_gem_private_object_init`, whose `funcs` is
/// `T::funcs()`, at the start of a `KBox<Self>` that its `free` callback frees.
#[repr(C)]
#[pin_data]
pub struct Object<T: DriverObject> {
    obj: Opaque<bindings::drm_gem_object>,
    #[pin]
    data: T,
}

/// The function table of objects with data `T`.
pub const fn funcs<T: DriverObject>() -> ObjectFuncs<Object<T>> {
    ObjectFuncs::from_raw(bindings::drm_gem_object_funcs {
        free: Some(Object::<T>::free_callback),
        export: Some(refuse_export),
        // SAFETY: All-zeroes is a valid `drm_gem_object_funcs`: `None` callbacks.
        ..unsafe { mem::zeroed() }
    })
}

/// `drm_gem_object_funcs.export`: objects without pages cannot be shared as dma-bufs.
extern "C" fn refuse_export(
    _obj: *mut bindings::drm_gem_object,
    _flags: crate::ffi::c_int,
) -> *mut bindings::dma_buf {
    ENODEV.to_ptr()
}

impl<T: DriverObject> Object<T> {
    /// Creates an object of `size` bytes (rounded up to whole pages) on `dev`, with data from
    /// `data`, charged to the caller's memory cgroup: userspace makes objects without count.
    pub fn new(
        dev: &drm::Device<T::Driver>,
        size: usize,
        data: impl PinInit<T, Error>,
    ) -> Result<ARef<Self>> {
        let size = size
            .checked_next_multiple_of(crate::page::PAGE_SIZE)
            .ok_or(EINVAL)?;
        let init = try_pin_init!(Self {
            obj: Opaque::uninit(),
            data <- data,
        }? Error);
        let object = KBox::try_pin_init(init, GFP_KERNEL_ACCOUNT)?;
        // SAFETY: The object is freed by `free_callback`, which turns it back into the box; it is
        // not moved out of the allocation.
        let this = KBox::into_raw(unsafe { Pin::into_inner_unchecked(object) });
        // SAFETY: `this` is valid; the GEM object is zeroed, then initialised with one reference,
        // which the `ARef` owns.
        // INVARIANT: Initialised by `drm_gem_private_object_init`, with `T::funcs()`.
        unsafe {
            let obj = Opaque::raw_get(&raw const (*this).obj);
            obj.write_bytes(0, 1);
            (*obj).funcs = T::funcs().as_raw();
            bindings::drm_gem_private_object_init(dev.as_raw(), obj, size);
            Ok(ARef::from_raw(NonNull::new_unchecked(this)))
        }
    }

    /// `drm_gem_object_funcs.free`: the last reference is gone.
    ///
    /// # Safety
    ///
    /// `obj` must be an object made by [`Object::new`] for `T` whose last reference was just
    /// dropped.
    unsafe extern "C" fn free_callback(obj: *mut bindings::drm_gem_object) {
        // SAFETY: The object starts a `KBox<Self>` (`repr(C)`); nothing else uses it any more.
        unsafe {
            bindings::drm_gem_object_release(obj);
            drop(KBox::from_raw(obj.cast::<Self>()));
        }
    }
}

impl<T: DriverObject> Deref for Object<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

// SAFETY:
// - `as_raw` returns the embedded object, live while `&self` is.
// - Only `Object::new` installs `T::funcs()`, on the `Self` it allocates: the table is an
//   `ObjectFuncs<Self>`, which only `funcs::<T>` makes, at an address no other kind's table has
//   (see `ObjectFuncs`).
unsafe impl<T: DriverObject> IntoGEMObject for Object<T> {
    type Driver = T::Driver;

    fn as_raw(&self) -> *mut bindings::drm_gem_object {
        self.obj.get()
    }

    fn funcs() -> *const bindings::drm_gem_object_funcs {
        T::funcs().as_raw()
    }

    unsafe fn as_ref<'a>(obj: *mut bindings::drm_gem_object) -> &'a Self {
        // SAFETY: By the trait's safety requirements and the invariant above, `obj` is at the
        // start of a `Self`.
        unsafe { &*obj.cast::<Self>() }
    }
}

crate::drm::gem::impl_object_refcount!(Object<T: DriverObject>);
