// SPDX-License-Identifier: GPL-2.0 OR MIT

//! GEM objects: buffers that userspace names by handles on a DRM file.
//!
//! [`IntoGEMObject`] is implemented by the types that embed a `struct drm_gem_object`;
//! [`BaseObject`] gives every such type the operations all GEM objects share: handles, size and
//! the fake offset through which userspace maps an object. [`shmem::Object`] is a GEM object
//! whose pages come from shmem; [`object::Object`] one without pages of its own (its driver
//! decides what backs it, a range of a process's memory for instance).
//!
//! A driver may have several kinds of objects. Each kind has its function table in a `static`
//! of the driver ([`ObjectFuncs`], which cannot be a constant); an object's kind is told by the
//! address of its table, so that a handle of one kind is never taken for another.
//!
//! C header: [`include/drm/drm_gem.h`](srctree/include/drm/drm_gem.h)

pub mod object;
pub mod shmem;

use crate::{
    bindings, drm,
    error::to_result,
    prelude::*,
    types::{ARef, AlwaysRefCounted},
};
use core::{cell::UnsafeCell, marker::PhantomData, ptr::NonNull};

/// The DRM file type of the driver that owns GEM objects of type `T`.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::drm::{file::MockFile, gem::{shmem, OwnerFile}};
///
/// let file = MockFile::<doctest::File>::open(&f.dev)?;
/// let owner: &OwnerFile<shmem::Object<doctest::Object>> = file.file();
/// assert!(!owner.as_raw().is_null());
/// # Ok::<(), Error>(())
/// ```
pub type OwnerFile<T> = drm::File<<<T as IntoGEMObject>::Driver as drm::driver::Driver>::File>;

/// The function table of one kind of GEM object, `K` ([`shmem::Object<T>`] or
/// [`object::Object<T>`] of a driver's data `T`).
///
/// An object's kind is told by the address of its table (see [`BaseObject::lookup_handle`]), so
/// every kind needs a table at an address of its own. A `const` has none: each use may be a
/// copy, and identical constants (of two kinds whose functions the compiler or linker merged)
/// may share one. A `static` has a unique address, and is what a driver declares:
///
/// ```ignore
/// static FUNCS: ObjectFuncs<shmem::Object<MyObject>> = shmem::funcs();
///
/// impl shmem::DriverObject for MyObject {
///     fn funcs() -> &'static ObjectFuncs<shmem::Object<Self>> {
///         &FUNCS
///     }
///     // ...
/// }
/// ```
///
/// Nothing else can be given: the table holds an [`UnsafeCell`] (never written through), so
/// the compiler neither promotes a constant table to a `'static` borrow nor lets a `const` hold
/// a reference to one (`tools/hmmgpu/compile-fail/const_funcs.rs` shows both refused), and a
/// `&'static ObjectFuncs` reaches a `static` or memory leaked for good, both unique. Tables are
/// typed by kind and only made by [`shmem::funcs`] and [`object::funcs`], so the table of one
/// kind is never installed on an object of another.
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
///     gem::{object, shmem, BaseObject, IntoGEMObject},
/// };
///
/// let file = MockFile::<doctest::File>::open(&f.dev)?;
/// let bo = shmem::Object::<doctest::Object>::new(&f.dev, 4096)?;
/// let handle = bo.create_handle(file.file())?;
/// // The handle names an object of the other kind: not a userptr.
/// type Bo = shmem::Object<doctest::Object>;
/// type Userptr = object::Object<doctest::Userptr>;
/// assert!(Userptr::lookup_handle(file.file(), handle).err() == Some(ENOENT));
/// assert!(Bo::funcs() != Userptr::funcs());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// The table is never written after it is made.
#[repr(transparent)]
pub struct ObjectFuncs<K>(UnsafeCell<bindings::drm_gem_object_funcs>, PhantomData<K>);

// SAFETY: The table is never written (by the type invariant); it only holds function pointers
// and pointers to immutable statics.
unsafe impl<K> Sync for ObjectFuncs<K> {}

impl<K> ObjectFuncs<K> {
    pub(crate) const fn from_raw(funcs: bindings::drm_gem_object_funcs) -> Self {
        Self(UnsafeCell::new(funcs), PhantomData)
    }

    pub(crate) fn as_raw(&'static self) -> *const bindings::drm_gem_object_funcs {
        self.0.get()
    }
}

/// A type that embeds a `struct drm_gem_object` of a device of [`IntoGEMObject::Driver`].
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::drm::gem::{shmem, IntoGEMObject};
///
/// let bo = shmem::Object::<doctest::Object>::new(&f.dev, 4096)?;
/// let raw = bo.as_raw();
/// // SAFETY: The object is live.
/// assert_eq!(unsafe { (*raw).funcs }, shmem::Object::<doctest::Object>::funcs());
/// // SAFETY: `raw` is a live object of a device of `doctest::Driver`, of this kind.
/// let same = unsafe { shmem::Object::<doctest::Object>::as_ref(raw) };
/// assert!(core::ptr::eq(same, &*bo));
/// # Ok::<(), Error>(())
/// ```
///
/// # Safety
///
/// - [`IntoGEMObject::as_raw`] returns the embedded object, which is initialised and live while
///   `&self` is, and belongs to a device of `Self::Driver`.
/// - Every GEM object of a device of `Self::Driver` whose `funcs` is [`IntoGEMObject::funcs`] is
///   embedded in a `Self`, so that [`IntoGEMObject::as_ref`] may turn it back into `Self`.
/// - [`AlwaysRefCounted`] takes and drops references of the embedded object.
pub unsafe trait IntoGEMObject: Sized + AlwaysRefCounted {
    /// The driver whose objects these are.
    type Driver: drm::driver::Driver;

    /// The embedded `struct drm_gem_object`.
    fn as_raw(&self) -> *mut bindings::drm_gem_object;

    /// The function table of objects of this kind.
    fn funcs() -> *const bindings::drm_gem_object_funcs;

    /// Borrows the `Self` that embeds `obj`.
    ///
    /// # Safety
    ///
    /// `obj` must be a live GEM object of a device of `Self::Driver` for `'a`.
    unsafe fn as_ref<'a>(obj: *mut bindings::drm_gem_object) -> &'a Self;
}

/// Operations every GEM object offers.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::{drm::{file::MockFile, gem::{shmem, BaseObject}}, page::PAGE_SIZE};
///
/// type Bo = shmem::Object<doctest::Object>;
/// let file = MockFile::<doctest::File>::open(&f.dev)?;
/// let bo = Bo::new(&f.dev, 3 * PAGE_SIZE + 1)?;
/// assert_eq!(bo.size(), 4 * PAGE_SIZE);
/// let handle = bo.create_handle(file.file())?;
/// assert!(core::ptr::eq(&*Bo::lookup_handle(file.file(), handle)?, &*bo));
/// // The fake offset is allocated once.
/// let offset = bo.create_mmap_offset()?;
/// assert!(offset != 0 && offset % PAGE_SIZE as u64 == 0);
/// assert_eq!(bo.create_mmap_offset()?, offset);
/// Bo::delete_handle(file.file(), handle)?;
/// assert!(Bo::lookup_handle(file.file(), handle).err() == Some(ENOENT));
/// assert!(Bo::delete_handle(file.file(), handle).err() == Some(EINVAL));
/// # Ok::<(), Error>(())
/// ```
pub trait BaseObject: IntoGEMObject {
    /// The object's size in bytes.
    fn size(&self) -> usize {
        // SAFETY: `size` is set when the object is initialised and constant afterwards.
        unsafe { (*self.as_raw()).size }
    }

    /// Creates a handle to the object on `file` and returns it.
    ///
    /// The handle holds a reference to the object until it is closed (`DRM_IOCTL_GEM_CLOSE`) or
    /// the file is.
    fn create_handle(&self, file: &OwnerFile<Self>) -> Result<u32> {
        let mut handle: u32 = 0;
        // SAFETY: The object and the file are live, and of the same driver by their types.
        to_result(unsafe {
            bindings::drm_gem_handle_create(file.as_raw(), self.as_raw(), &mut handle)
        })?;
        Ok(handle)
    }

    /// Looks up the object of this kind that `handle` names on `file`.
    ///
    /// # Errors
    ///
    /// `ENOENT` when `handle` names nothing on `file`, or an object of another kind.
    fn lookup_handle(file: &OwnerFile<Self>, handle: u32) -> Result<ARef<Self>> {
        // SAFETY: `file` is an open file.
        let obj = unsafe { bindings::drm_gem_object_lookup(file.as_raw(), handle) };
        let obj = NonNull::new(obj).ok_or(ENOENT)?;
        // SAFETY: The lookup returned a live object with a reference for us.
        if unsafe { (*obj.as_ptr()).funcs } != Self::funcs() {
            // SAFETY: We drop the reference the lookup took.
            unsafe { object_put(obj.as_ptr()) };
            return Err(ENOENT);
        }
        // SAFETY: The object belongs to the file's device, of `Self::Driver`, and has the
        // function table of `Self`, so it is a `Self` (by the safety requirements of
        // `IntoGEMObject`). The lookup took a reference, which the `ARef` now owns.
        Ok(unsafe { ARef::from_raw(NonNull::from(Self::as_ref(obj.as_ptr()))) })
    }

    /// Closes `handle` on `file`, dropping the reference it held (`DRM_IOCTL_GEM_CLOSE`).
    ///
    /// # Errors
    ///
    /// `EINVAL` when `handle` names nothing on `file`.
    fn delete_handle(file: &OwnerFile<Self>, handle: u32) -> Result {
        // SAFETY: `file` is an open file.
        to_result(unsafe { bindings::drm_gem_handle_delete(file.as_raw(), handle) })
    }

    /// Returns the fake offset through which userspace maps the object with `mmap` on a file of
    /// its device, allocating it on first use.
    fn create_mmap_offset(&self) -> Result<u64> {
        // SAFETY: The object is live.
        to_result(unsafe { bindings::drm_gem_create_mmap_offset(self.as_raw()) })?;
        // SAFETY: The object is live and its offset node was just set up.
        Ok(unsafe { bindings::drm_vma_node_offset_addr(&raw mut (*self.as_raw()).vma_node) })
    }
}

impl<T: IntoGEMObject> BaseObject for T {}

/// Implements reference counting, `Send` and `Sync` for a GEM object type whose
/// [`IntoGEMObject::as_raw`] gives its embedded object, and whose driver data `T` is
/// `Send + Sync`.
macro_rules! impl_object_refcount {
    ($type:ident<$t:ident: $bound:path>) => {
        // SAFETY: GEM objects are reference counted by `drm_gem_object_get` and
        // `drm_gem_object_put`.
        unsafe impl<$t: $bound> $crate::types::AlwaysRefCounted for $type<$t> {
            fn inc_ref(&self) {
                // SAFETY: `self` is live.
                unsafe { $crate::drm::gem::object_get(self.as_raw()) };
            }

            unsafe fn dec_ref(obj: core::ptr::NonNull<Self>) {
                // SAFETY: The caller gives up a reference it owned.
                unsafe { $crate::drm::gem::object_put(obj.as_ref().as_raw()) };
            }
        }

        // SAFETY: GEM objects may be used and freed from any thread; the data is `Send + Sync`.
        unsafe impl<$t: $bound> Send for $type<$t> {}

        // SAFETY: Shared references only allow thread-safe DRM core calls and a shared reference
        // to the data, which is `Sync`.
        unsafe impl<$t: $bound> Sync for $type<$t> {}
    };
}
pub(crate) use impl_object_refcount;

/// Takes a reference of a GEM object (`drm_gem_object_get`).
///
/// # Safety
///
/// `obj` must be a live GEM object.
pub(crate) unsafe fn object_get(obj: *mut bindings::drm_gem_object) {
    // SAFETY: The caller promises that `obj` is live.
    unsafe { bindings::drm_gem_object_get(obj) };
}

/// Drops a reference of a GEM object (`drm_gem_object_put`).
///
/// # Safety
///
/// The caller must own the reference it drops.
pub(crate) unsafe fn object_put(obj: *mut bindings::drm_gem_object) {
    // SAFETY: The caller owns the reference.
    unsafe { bindings::drm_gem_object_put(obj) };
}
