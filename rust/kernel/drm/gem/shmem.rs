// SPDX-License-Identifier: GPL-2.0 OR MIT

//! GEM objects backed by shmem.
//!
//! An [`Object<T>`] embeds a `struct drm_gem_shmem_object` and the driver's data `T`. Its pages
//! come from a shmem file and can be mapped by the CPU through the object's fake offset.
//!
//! C header: [`include/drm/drm_gem_shmem_helper.h`](srctree/include/drm/drm_gem_shmem_helper.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KBox, KVVec},
    bindings, drm,
    drm::gem::{IntoGEMObject, ObjectFuncs},
    error::{from_err_ptr, to_result},
    init::InPlaceInit,
    prelude::*,
    types::{ARef, Opaque},
};
use core::{mem, ops::Deref, pin::Pin, ptr, ptr::NonNull};

/// The data a driver keeps per GEM object.
pub trait DriverObject: Send + Sync + Sized + 'static {
    /// The driver whose objects these are.
    type Driver: drm::Driver;

    /// The function table of these objects, a `static` made by [`funcs`]:
    /// `static FUNCS: ObjectFuncs<MyObject> = shmem::funcs();`.
    const FUNCS: &'static ObjectFuncs<Self>;

    /// Initialises the data of a new object of `size` bytes on `dev`.
    fn new(dev: &drm::Device<Self::Driver>, size: usize) -> impl PinInit<Self, Error>;
}

/// A shmem-backed GEM object with the driver's data `T`.
///
/// # Invariants
///
/// - `obj` is an initialised `drm_gem_shmem_object` whose `base.funcs` is `T::FUNCS`, and it
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
    /// `size` is rounded up to whole pages.
    pub fn new(dev: &drm::Device<T::Driver>, size: usize) -> Result<ARef<Self>> {
        // SAFETY: `dev` is live. Its driver's `gem_create_object` is `create_object_callback`
        // for `T` (see `drm::Device::VTABLE`), which allocates the object as a `Self`.
        let shmem = from_err_ptr(unsafe { bindings::drm_gem_shmem_create(dev.as_raw(), size) })?;
        // The device writes the pages through its own mappings, which no CPU page table shows:
        // mark them dirty when they are put, or reclaim may drop what only the device wrote.
        // SAFETY: The object was just created; nothing else sees it yet.
        unsafe { (*shmem).set_pages_mark_dirty_on_put(true) };
        // SAFETY: `shmem` is the start of a `Self` (see above), with one reference that the
        // `ARef` now owns.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(shmem.cast::<Self>())) })
    }

    /// Makes the object's pages resident and keeps them so until the returned value is dropped.
    ///
    /// An object imported from another driver's dma-buf has no pages of its own: its pages are
    /// those of the attachment's scatter list, which the exporter keeps while the object lives.
    ///
    /// # Errors
    ///
    /// `ENOMEM` and the errors of reading the pages in from shmem; `EOPNOTSUPP` for an import
    /// whose scatter list does not consist of whole pages of system RAM (device memory, or
    /// `CONFIG_DMABUF_DEBUG`, which hides the pages from importers).
    pub fn pin_pages(this: &ARef<Self>) -> Result<PinnedPages<T>> {
        let shmem = this.obj.get();
        // SAFETY: The object is live; `import_attach` is set at import and constant.
        if unsafe { !(*shmem).base.import_attach.is_null() } {
            // SAFETY: An imported object's `sgt` is the mapped attachment, set at import and
            // kept until the object is freed.
            let pages = unsafe { import_pages((*shmem).sgt, (*shmem).base.size) }?;
            // INVARIANT: An import, with its pages listed.
            return Ok(PinnedPages {
                obj: this.clone(),
                imported: Some(pages),
            });
        }
        // SAFETY: The object is live and initialised.
        to_result(unsafe { bindings::drm_gem_shmem_pin(shmem) })?;
        // INVARIANT: The pin was just taken.
        Ok(PinnedPages {
            obj: this.clone(),
            imported: None,
        })
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

/// The function table of shmem-backed objects with data `T`: the shmem helpers' functions
/// (`drm_gem_shmem_funcs`), with a `free` that drops `T`.
pub const fn funcs<T: DriverObject>() -> ObjectFuncs<T> {
    ObjectFuncs::from_raw(bindings::drm_gem_object_funcs {
        free: Some(Object::<T>::free_callback),
        print_info: Some(bindings::drm_gem_shmem_object_print_info),
        pin: Some(bindings::drm_gem_shmem_object_pin),
        unpin: Some(bindings::drm_gem_shmem_object_unpin),
        get_sg_table: Some(bindings::drm_gem_shmem_object_get_sg_table),
        vmap: Some(bindings::drm_gem_shmem_object_vmap),
        vunmap: Some(bindings::drm_gem_shmem_object_vunmap),
        mmap: Some(bindings::drm_gem_shmem_object_mmap),
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
    match KBox::try_pin_init(init, GFP_KERNEL) {
        Ok(object) => {
            // SAFETY: The shmem helpers own the object from here; `free_callback` turns it back
            // into its parts. It is not moved out of the allocation.
            let this = KBox::into_raw(unsafe { Pin::into_inner_unchecked(object) });
            // SAFETY: `this` is valid. The helpers expect a zeroed object with its functions set.
            // INVARIANT: `FUNCS` is installed; `drm_gem_shmem_create` initialises the rest.
            unsafe {
                let shmem = Opaque::raw_get(&raw const (*this).obj);
                shmem.write_bytes(0, 1);
                (*shmem).base.funcs = T::FUNCS.as_raw();
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
// - Only `create_object_callback::<T>` installs `T::FUNCS`, on the `Self` it allocates.
unsafe impl<T: DriverObject> IntoGEMObject for Object<T> {
    type Driver = T::Driver;

    fn as_raw(&self) -> *mut bindings::drm_gem_object {
        // SAFETY: `obj` is initialised by the type invariant.
        unsafe { &raw mut (*self.obj.get()).base }
    }

    fn funcs() -> *const bindings::drm_gem_object_funcs {
        T::FUNCS.as_raw()
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

/// The pages of the scatter list `sgt` of an import of `size` bytes, page by page.
///
/// # Safety
///
/// `sgt` must be a valid scatter list, live for the call.
unsafe fn import_pages(
    sgt: *mut bindings::sg_table,
    size: usize,
) -> Result<KVVec<*mut bindings::page>> {
    let page_size = 1usize << bindings::PAGE_SHIFT;
    // The dma-buf rules do not let importers use the pages of a scatter list; this reaches them
    // anyway, for exporters of system RAM (shmem helpers and the like), and checks each page.
    // With `CONFIG_DMABUF_DEBUG` the pages are scrambled on purpose.
    if cfg!(CONFIG_DMABUF_DEBUG) || sgt.is_null() {
        return Err(not_supported());
    }
    let mut pages = KVVec::with_capacity(size / page_size, GFP_KERNEL)?;
    // SAFETY: `sgt` is valid (the caller's promise); its first `orig_nents` entries, reached by
    // `sg_next`, describe the CPU pages of the buffer.
    unsafe {
        let mut sg = (*sgt).sgl;
        for _ in 0..(*sgt).orig_nents {
            let (offset, length) = ((*sg).offset as usize, (*sg).length as usize);
            if offset != 0 || length % page_size != 0 {
                return Err(not_supported());
            }
            let first = bindings::sg_page(sg);
            if first.is_null() {
                return Err(not_supported());
            }
            for k in 0..length / page_size {
                let page = bindings::nth_page(first, k as _);
                if !bindings::drm_page_is_ram(page) {
                    return Err(not_supported());
                }
                pages.push(page, GFP_KERNEL)?;
            }
            sg = bindings::sg_next(sg);
        }
    }
    if pages.len() * page_size != size {
        return Err(not_supported());
    }
    Ok(pages)
}

/// The resident pages of a shmem-backed object, kept resident while this lives.
///
/// # Invariants
///
/// Either `imported` lists the pages of an imported `obj` (which keeps its attachment, and so
/// its pages, while it lives), or `obj` holds a pin (`drm_gem_shmem_pin`) this value owns, so
/// its `pages` array is allocated and its pages resident.
pub struct PinnedPages<T: DriverObject> {
    obj: ARef<Object<T>>,
    imported: Option<KVVec<*mut bindings::page>>,
}

// SAFETY: The page list is only read; pins and references may be dropped from any thread.
unsafe impl<T: DriverObject> Send for PinnedPages<T> {}
// SAFETY: See above.
unsafe impl<T: DriverObject> Sync for PinnedPages<T> {}

impl<T: DriverObject> PinnedPages<T> {
    /// Another pin of the same object's pages.
    pub fn clone_pin(&self) -> Result<Self> {
        Object::pin_pages(&self.obj)
    }

    /// The object's pages, in order.
    pub fn pages(&self) -> &[*mut bindings::page] {
        if let Some(pages) = &self.imported {
            return pages;
        }
        let shmem = self.obj.obj.get();
        // SAFETY: By the type invariant `pages` holds one entry per page of the object, and stays
        // until the pin is dropped.
        unsafe {
            let npages = (*shmem).base.size >> bindings::PAGE_SHIFT;
            core::slice::from_raw_parts((*shmem).pages, npages)
        }
    }
}

impl<T: DriverObject> Drop for PinnedPages<T> {
    fn drop(&mut self) {
        if self.imported.is_none() {
            // SAFETY: By the type invariant we own a pin of the object.
            unsafe { bindings::drm_gem_shmem_unpin(self.obj.obj.get()) };
        }
    }
}
