// SPDX-License-Identifier: GPL-2.0 OR MIT

//! GEM objects backed by shmem.
//!
//! An [`Object<T>`] embeds a `struct drm_gem_shmem_object` and the driver's data `T`. Its pages
//! come from a shmem file and can be mapped by the CPU through the object's fake offset.
//!
//! C header: [`include/drm/drm_gem_shmem_helper.h`](srctree/include/drm/drm_gem_shmem_helper.h)

use crate::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KBox, KVVec},
    bindings, drm,
    drm::gem::{IntoGEMObject, ObjectFuncs},
    error::from_err_ptr,
    init::InPlaceInit,
    prelude::*,
    types::{ARef, Opaque},
};
use core::{ffi::c_int, mem, ops::Deref, pin::Pin, ptr, ptr::NonNull};

/// The data a driver keeps per GEM object.
///
/// See [`Driver`](crate::drm::Driver)'s example for an implementation, and [`Object`]'s for one
/// in use.
pub trait DriverObject: Send + Sync + Sized + 'static {
    /// The driver whose objects these are.
    type Driver: drm::Driver;

    /// The function table of these objects: a `static` made by [`funcs`], which the function
    /// returns, `static FUNCS: ObjectFuncs<shmem::Object<MyObject>> = shmem::funcs();` (see
    /// [`ObjectFuncs`] for why it must be a `static`).
    fn funcs() -> &'static ObjectFuncs<Object<Self>>;

    /// Initialises the data of a new object of `size` bytes on `dev`.
    fn new(dev: &drm::Device<Self::Driver>, size: usize) -> impl PinInit<Self, Error>;
}

/// A shmem-backed GEM object with the driver's data `T`.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::{drm::gem::{shmem::Object, BaseObject}, page::PAGE_SIZE};
///
/// let bo = Object::<doctest::Object>::new(&f.dev, 2 * PAGE_SIZE)?;
/// assert_eq!(bo.size(), 2 * PAGE_SIZE);
/// let pages = Object::pin_pages(&bo, 0, 2)?;
/// assert_eq!(pages.pages().len(), 2);
/// assert!(pages.pages().iter().all(|page| !page.is_null()));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// - `obj` is an initialised `drm_gem_shmem_object` whose `base.funcs` is `T::funcs()`, and it
///   is the start of a `kmalloc` allocation holding `Self` (so `drm_gem_shmem_free` frees the
///   whole of it).
/// - `data` is initialised until the object's `free` callback drops it.
#[repr(C)]
#[pin_data]
pub struct Object<T: DriverObject> {
    obj: Opaque<bindings::drm_gem_shmem_object>,
    #[pin]
    data: T,
}

impl<T: DriverObject> Object<T> {
    /// Creates an object of `size` bytes on `dev`, with data from [`DriverObject::new`].
    ///
    /// `size` is rounded up to whole pages. The object has no mmap offset until one is asked
    /// for ([`BaseObject::create_mmap_offset`](super::BaseObject::create_mmap_offset)): offsets
    /// are a space of 1 TiB that all files of the device share, which objects the CPU never maps
    /// (as large as objects may be) then do not take, and creation never fails for want of it.
    ///
    /// The shmem helpers allocate the object through the driver's `gem_create_object`, which
    /// makes objects of the driver's [`Driver::Object`](drm::Driver::Object): only that type
    /// has this function.
    pub fn new(dev: &drm::Device<T::Driver>, size: usize) -> Result<ARef<Self>>
    where
        T::Driver: drm::Driver<Object = T>,
    {
        // Made without its mmap offset (see above).
        // SAFETY: `dev` is live. Its driver's `gem_create_object` is `create_object_callback`
        // for `<T::Driver as Driver>::Object` (see `drm::Device::VTABLE`), which is `T` (by the
        // bound above): it allocates the object as a `Self`, with the `drm_gem_shmem_object` at
        // its start, and returns that `drm_gem_shmem_object`'s `base`.
        let raw = unsafe { bindings::drm_gem_shmem_create_lazy(dev.as_raw(), size) };
        let shmem = from_err_ptr(raw)?;
        // The device writes the pages through its own mappings, which no CPU page table shows:
        // mark them dirty when they are put, or reclaim may drop what only the device wrote.
        // SAFETY: The object was just created; nothing else sees it yet.
        unsafe { (*shmem).set_pages_mark_dirty_on_put(true) };
        // SAFETY: `shmem` is the `obj` field of a `Self` (see above), with one reference that
        // the `ARef` now owns.
        Ok(unsafe {
            ARef::from_raw(NonNull::new_unchecked(
                crate::container_of!(shmem, Self, obj).cast_mut(),
            ))
        })
    }

    /// Makes the `count` pages of the object from page `first` on resident, and keeps them so
    /// until the returned value is dropped.
    ///
    /// Only those pages are read in (allocated, or swapped in) and held, each with a reference
    /// of its own: binding a window of an object larger than memory costs the window, not the
    /// object, as pinning it whole (`drm_gem_shmem_pin`) would. The pages are those of the
    /// object's shmem file, which its CPU mappings and dma-buf exports share.
    ///
    /// An object imported from another driver's dma-buf has no pages of its own: its pages are
    /// those of the attachment's scatter list, which the exporter keeps while the object lives.
    ///
    /// # Errors
    ///
    /// `EINVAL` when the window is empty or not inside the object; `ENOMEM` when the pages of the
    /// window not yet resident are more than the memory available (see [`funcs`]), and the
    /// errors of reading the pages in from shmem; `EOPNOTSUPP` for an import whose scatter list
    /// does not consist of whole pages of system RAM (device memory, or `CONFIG_DMABUF_DEBUG`,
    /// which hides the pages from importers).
    pub fn pin_pages(this: &ARef<Self>, first: usize, count: usize) -> Result<PinnedPages<T>> {
        let shmem = this.obj.get();
        // SAFETY: `size` is set when the object is initialised and constant afterwards.
        let size = unsafe { (*shmem).base.size };
        let end = first.checked_add(count).ok_or(EINVAL)?;
        if count == 0 || end > size >> bindings::PAGE_SHIFT {
            return Err(EINVAL);
        }
        // SAFETY: The object is live; `import_attach` is set at import and constant.
        if unsafe { !(*shmem).base.import_attach.is_null() } {
            // SAFETY: An imported object's `sgt` is the mapped attachment, set at import and
            // kept until the object is freed.
            let pages = unsafe { import_pages((*shmem).sgt, size, first, count) }?;
            // INVARIANT: An import, with the window's pages listed.
            return Ok(PinnedPages {
                obj: this.clone(),
                first,
                pages,
                own: false,
            });
        }
        // SAFETY: The object is live and not imported; the window is inside it (checked above).
        unsafe { check_room(&raw mut (*shmem).base, first, count) }?;
        // INVARIANT: `pages` only grows by pages read in with a reference, in order from
        // `first`; dropping `pins` on error releases those read so far.
        let mut pins = PinnedPages {
            obj: this.clone(),
            first,
            pages: KVVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?,
            own: true,
        };
        for index in first..end {
            // SAFETY: The object is live and not imported, so it has its shmem file, kept until
            // it is freed; `index` is a page of it (checked above).
            let page = from_err_ptr(unsafe {
                bindings::drm_gem_shmem_read_page(&raw mut (*shmem).base, index as _)
            })?;
            if let Err(e) = pins.pages.push(page, GFP_KERNEL_ACCOUNT) {
                // SAFETY: `page` holds the reference just taken, not listed in `pins`.
                unsafe { bindings::drm_gem_shmem_put_page(page) };
                return Err(e.into());
            }
        }
        Ok(pins)
    }

    /// `drm_gem_object_funcs.free`: the last reference is gone.
    ///
    /// # Safety
    ///
    /// `obj` must be an object made by [`create_object_callback`] for `T` whose last reference
    /// was just dropped.
    unsafe extern "C" fn free_callback(obj: *mut bindings::drm_gem_object) {
        // SAFETY: `free` is only installed on objects made by `create_object_callback`, so `obj`
        // is the `base` of the `drm_gem_shmem_object` at the start of a `Self`. It is called once,
        // when nothing else uses the object.
        unsafe {
            let shmem = crate::container_of!(obj, bindings::drm_gem_shmem_object, base).cast_mut();
            let this = shmem.cast::<Self>();
            ptr::drop_in_place(&raw mut (*this).data);
            // Releases the pages and the GEM object, then frees the allocation.
            bindings::drm_gem_shmem_free(shmem);
        }
    }
}

/// Fails with `ENOMEM` if making pages `[first, first + count)` of `obj` resident would take more
/// memory than the system has available (`si_mem_available()`), those of them already resident
/// aside (the object's other resident pages make no room for them).
///
/// The object's pages are charged to the memory cgroup of the caller that makes them resident,
/// and their allocations fail rather than call the OOM killer (the shmem helpers give the file
/// `__GFP_RETRY_MAYFAIL`). But while one call takes the last free pages for an object that cannot
/// fit, the allocations of other processes find none, and to the OOM killer an object's pages
/// are no process's: it kills bystanders. So a call that cannot fit fails before it starts.
///
/// # Safety
///
/// `obj` must be a live shmem-backed object that is not an import (it has its shmem file), and
/// the window a non-empty one inside it.
unsafe fn check_room(obj: *mut bindings::drm_gem_object, first: usize, count: usize) -> Result {
    // SAFETY: As the caller promised, `obj` has its shmem file and the window is inside it.
    let resident = unsafe { bindings::drm_gem_shmem_resident_in(obj, first as _, count as _) };
    fits(count.saturating_sub(resident as usize))
}

/// Fails with `ENOMEM` if `pages` more pages would take more memory than the system has
/// available (`si_mem_available()`).
fn fits(pages: usize) -> Result {
    // SAFETY: FFI call without requirements.
    let available = unsafe { bindings::si_mem_available() }.max(0) as usize;
    if pages > available {
        return Err(ENOMEM);
    }
    Ok(())
}

/// [`check_room`] for the whole of `obj`, unless it is an import: its pages are the exporter's.
///
/// # Safety
///
/// `obj` must be a live shmem-backed object.
unsafe fn check_room_whole(obj: *mut bindings::drm_gem_object) -> Result {
    // SAFETY: `obj` is live; `import_attach` is set at import and constant, `size` at
    // initialisation.
    let (import, size) = unsafe { (!(*obj).import_attach.is_null(), (*obj).size) };
    if import {
        return Ok(());
    }
    // SAFETY: `obj` is live (the caller's promise) and not an import: it has its shmem file.
    let resident = unsafe { bindings::drm_gem_shmem_resident_pages(obj) } as usize;
    fits((size >> bindings::PAGE_SHIFT).saturating_sub(resident))
}

/// `drm_gem_object_funcs.mmap`: a CPU mapping makes the whole object resident.
///
/// # Safety
///
/// Called by the DRM core with a live shmem-backed object and the VMA being mapped.
unsafe extern "C" fn mmap_callback(
    obj: *mut bindings::drm_gem_object,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: As the DRM core promises.
    match unsafe { check_room_whole(obj) } {
        // SAFETY: As the DRM core promises.
        Ok(()) => unsafe { bindings::drm_gem_shmem_object_mmap(obj, vma) },
        Err(e) => e.to_errno(),
    }
}

/// `drm_gem_object_funcs.pin`: an importer's pin makes the whole object resident.
///
/// # Safety
///
/// Called by the DRM core with a live shmem-backed object, its reservation lock held.
unsafe extern "C" fn pin_callback(obj: *mut bindings::drm_gem_object) -> c_int {
    // SAFETY: As the DRM core promises.
    match unsafe { check_room_whole(obj) } {
        // SAFETY: As the DRM core promises.
        Ok(()) => unsafe { bindings::drm_gem_shmem_object_pin(obj) },
        Err(e) => e.to_errno(),
    }
}

/// `drm_gem_object_funcs.vmap`: a kernel mapping makes the whole object resident.
///
/// # Safety
///
/// Called by the DRM core with a live shmem-backed object, its reservation lock held, and a map
/// to fill in.
unsafe extern "C" fn vmap_callback(
    obj: *mut bindings::drm_gem_object,
    map: *mut bindings::iosys_map,
) -> c_int {
    // SAFETY: As the DRM core promises.
    match unsafe { check_room_whole(obj) } {
        // SAFETY: As the DRM core promises.
        Ok(()) => unsafe { bindings::drm_gem_shmem_object_vmap(obj, map) },
        Err(e) => e.to_errno(),
    }
}

/// The function table of shmem-backed objects with data `T`: the shmem helpers' functions
/// (`drm_gem_shmem_funcs`), with a `free` that drops `T`, and a CPU mapping, a pin or a kernel
/// mapping of the whole object that fails with `ENOMEM` at once when its pages not yet resident
/// are more than the memory available (`si_mem_available()`): making them resident would leave
/// other processes no memory, and the OOM killer, to which an object's pages are nobody's, would
/// kill them.
pub const fn funcs<T: DriverObject>() -> ObjectFuncs<Object<T>> {
    ObjectFuncs::from_raw(bindings::drm_gem_object_funcs {
        free: Some(Object::<T>::free_callback),
        print_info: Some(bindings::drm_gem_shmem_object_print_info),
        pin: Some(pin_callback),
        unpin: Some(bindings::drm_gem_shmem_object_unpin),
        get_sg_table: Some(bindings::drm_gem_shmem_object_get_sg_table),
        vmap: Some(vmap_callback),
        vunmap: Some(bindings::drm_gem_shmem_object_vunmap),
        mmap: Some(mmap_callback),
        vm_ops: &raw const bindings::drm_gem_shmem_vm_ops,
        // SAFETY: All-zeroes is a valid `drm_gem_object_funcs`: `None` callbacks.
        ..unsafe { mem::zeroed() }
    })
}

/// `drm_driver.gem_create_object`: allocates the object the shmem helpers then initialise.
///
/// # Safety
///
/// `raw_dev` must be a live device of `T::Driver`.
pub(crate) unsafe extern "C" fn create_object_callback<T: DriverObject>(
    raw_dev: *mut bindings::drm_device,
    size: usize,
) -> *mut bindings::drm_gem_object {
    // SAFETY: The DRM core calls the callback of this driver with its own live device.
    let dev = unsafe { drm::Device::<T::Driver>::as_ref(raw_dev) };
    let init = try_pin_init!(Object::<T> {
        obj: Opaque::uninit(),
        data <- T::new(dev, size),
    }? Error);
    // Charged to the caller's memory cgroup, as the object's shmem file is.
    match KBox::try_pin_init(init, GFP_KERNEL_ACCOUNT) {
        Ok(object) => {
            // SAFETY: The shmem helpers own the object from here; `free_callback` turns it back
            // into its parts. It is not moved out of the allocation.
            let this = KBox::into_raw(unsafe { Pin::into_inner_unchecked(object) });
            // SAFETY: `this` is valid. The helpers expect a zeroed object with its functions set.
            // INVARIANT: `T::funcs()` is installed; `drm_gem_shmem_create_lazy` initialises the
            // rest.
            unsafe {
                let shmem = Opaque::raw_get(&raw const (*this).obj);
                shmem.write_bytes(0, 1);
                (*shmem).base.funcs = T::funcs().as_raw();
                &raw mut (*shmem).base
            }
        }
        Err(e) => e.to_ptr(),
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
// - Only `create_object_callback::<T>` installs `T::funcs()`, on the `Self` it allocates: the
//   table is an `ObjectFuncs<Self>`, which only `funcs::<T>` makes, at an address no other
//   kind's table has (see `ObjectFuncs`).
unsafe impl<T: DriverObject> IntoGEMObject for Object<T> {
    type Driver = T::Driver;

    fn as_raw(&self) -> *mut bindings::drm_gem_object {
        // SAFETY: `obj` is initialised by the type invariant.
        unsafe { &raw mut (*self.obj.get()).base }
    }

    fn funcs() -> *const bindings::drm_gem_object_funcs {
        T::funcs().as_raw()
    }

    unsafe fn as_ref<'a>(obj: *mut bindings::drm_gem_object) -> &'a Self {
        // SAFETY: By the trait's safety requirements and the invariant above, `obj` is the `base`
        // at the start of a `Self`.
        unsafe { &*crate::container_of!(obj, bindings::drm_gem_shmem_object, base).cast::<Self>() }
    }
}

crate::drm::gem::impl_object_refcount!(Object<T: DriverObject>);

/// `EOPNOTSUPP`, which the kernel crate of 6.12 does not name.
fn not_supported() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// The pages `[first, first + count)` of the scatter list `sgt` of an import of `size` bytes,
/// page by page.
///
/// # Safety
///
/// `sgt` must be a valid scatter list, live for the call.
unsafe fn import_pages(
    sgt: *mut bindings::sg_table,
    size: usize,
    first: usize,
    count: usize,
) -> Result<KVVec<*mut bindings::page>> {
    let page_size = 1usize << bindings::PAGE_SHIFT;
    // The dma-buf rules do not let importers use the pages of a scatter list; this reaches them
    // anyway, for exporters of system RAM (shmem helpers and the like), and checks each page.
    // With `CONFIG_DMABUF_DEBUG` the pages are scrambled on purpose.
    if cfg!(CONFIG_DMABUF_DEBUG) || sgt.is_null() {
        return Err(not_supported());
    }
    let mut pages = KVVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
    // The index in the buffer of the next page of the list.
    let mut index = 0usize;
    // SAFETY: `sgt` is valid (the caller's promise); its first `orig_nents` entries, reached by
    // `sg_next`, describe the CPU pages of the buffer.
    unsafe {
        let mut sg = (*sgt).sgl;
        for _ in 0..(*sgt).orig_nents {
            // An entry may start at a page offset into its first page's folio (udmabuf lists
            // each page of a huge page so).
            let (offset, length) = ((*sg).offset as usize, (*sg).length as usize);
            if offset % page_size != 0 || length % page_size != 0 {
                return Err(not_supported());
            }
            let sg_first = bindings::sg_page(sg);
            if sg_first.is_null() {
                return Err(not_supported());
            }
            let first_page = bindings::nth_page(sg_first, (offset / page_size) as _);
            for k in 0..length / page_size {
                let page = bindings::nth_page(first_page, k as _);
                if !bindings::drm_page_is_ram(page) {
                    return Err(not_supported());
                }
                if (first..first + count).contains(&index) {
                    pages.push(page, GFP_KERNEL_ACCOUNT)?;
                }
                index += 1;
            }
            sg = bindings::sg_next(sg);
        }
    }
    if index * page_size != size || pages.len() != count {
        return Err(not_supported());
    }
    Ok(pages)
}

/// Resident pages of a shmem-backed object, a window of it, kept resident while this lives.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::{drm::gem::shmem::Object, page::PAGE_SIZE};
///
/// let bo = Object::<doctest::Object>::new(&f.dev, 4 * PAGE_SIZE)?;
/// let whole = Object::pin_pages(&bo, 0, 4)?;
/// // A window of the object: pages 1 and 2.
/// let window = Object::pin_pages(&bo, 1, 2)?;
/// assert_eq!((window.first(), window.pages().len()), (1, 2));
/// assert_eq!(window.pages(), &whole.pages()[1..3]);
/// // Page 2 alone, pinned again from the window.
/// let part = window.pin_part(2, 1)?;
/// assert_eq!((part.first(), part.pages()), (2, &window.pages()[1..]));
/// // A part is not empty, and inside the pins it comes from.
/// assert!(window.pin_part(2, 0).err() == Some(EINVAL));
/// assert!(window.pin_part(0, 1).err() == Some(EINVAL));
/// assert!(window.pin_part(2, 2).err() == Some(EINVAL));
/// // Windows are not empty, and inside the object.
/// assert!(Object::pin_pages(&bo, 1, 0).err() == Some(EINVAL));
/// assert!(Object::pin_pages(&bo, 3, 2).err() == Some(EINVAL));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `pages` are the object's pages `[first, first + pages.len())`, in order. If `own`, each
/// holds one reference on a page of `obj`'s shmem file, taken by `drm_gem_shmem_read_page` or
/// `drm_gem_shmem_get_page`, which this value owns. Otherwise `obj` is an import, whose
/// attachment (and so its pages) it keeps while it lives.
pub struct PinnedPages<T: DriverObject> {
    obj: ARef<Object<T>>,
    first: usize,
    pages: KVVec<*mut bindings::page>,
    own: bool,
}

// SAFETY: The page list is only read; references may be dropped from any thread.
unsafe impl<T: DriverObject> Send for PinnedPages<T> {}
// SAFETY: See above.
unsafe impl<T: DriverObject> Sync for PinnedPages<T> {}

impl<T: DriverObject> PinnedPages<T> {
    /// Another pin of pages `[first, first + count)` of the object, which these pins hold: the
    /// pages are not looked up again, and none of the object's other pages is kept.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an empty part, or one not inside these pins; `ENOMEM`.
    pub fn pin_part(&self, first: usize, count: usize) -> Result<Self> {
        let start = first.checked_sub(self.first).ok_or(EINVAL)?;
        let end = start.checked_add(count).ok_or(EINVAL)?;
        let part = self.pages.get(start..end).ok_or(EINVAL)?;
        if part.is_empty() {
            return Err(EINVAL);
        }
        let mut pages = KVVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
        pages.extend_from_slice(part, GFP_KERNEL_ACCOUNT)?;
        if self.own {
            for &page in part {
                // SAFETY: By the type invariant `page` holds a reference of ours, so it is live;
                // this takes another, which the new value owns.
                unsafe { bindings::drm_gem_shmem_get_page(page) };
            }
        }
        // INVARIANT: `part` is the object's pages `[first, first + count)`, in order; each owns a
        // reference just taken if `own`, else the import is kept by `obj`.
        Ok(Self {
            obj: self.obj.clone(),
            first,
            pages,
            own: self.own,
        })
    }

    /// The object's page that the first of [`Self::pages`] is.
    pub fn first(&self) -> usize {
        self.first
    }

    /// The pinned pages of the object, in order from [`Self::first`].
    pub fn pages(&self) -> &[*mut bindings::page] {
        &self.pages
    }
}

impl<T: DriverObject> Drop for PinnedPages<T> {
    fn drop(&mut self) {
        if !self.own {
            return;
        }
        for &page in self.pages.iter() {
            // SAFETY: By the type invariant each page holds one reference that we own, released
            // here once. The device may have written it: it is marked dirty.
            unsafe { bindings::drm_gem_shmem_put_page(page) };
        }
    }
}
