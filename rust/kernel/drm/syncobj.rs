// SPDX-License-Identifier: GPL-2.0 OR MIT

//! DRM sync objects: containers of a fence that userspace names by handles on a DRM file.
//!
//! A driver with [`feature::SYNCOBJ`](super::driver::feature::SYNCOBJ) looks up the sync objects
//! an ioctl names ([`SyncObj::lookup`]), waits for the fences in its input objects
//! ([`SyncObj::fence`]) and puts the fence of its job into its output objects
//! ([`SyncObj::replace_fence`]).
//!
//! C header: [`include/drm/drm_syncobj.h`](srctree/include/drm/drm_syncobj.h)

use crate::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KBox},
    bindings,
    dma_fence::Fence,
    drm::file::{DriverFile, File},
    error::to_result,
    prelude::*,
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::ptr::{self, NonNull};

/// A reference-counted `struct drm_syncobj`.
///
/// # Examples
///
/// `f.dev` is a device of [`doctest::Driver`](crate::drm::doctest::Driver), the driver of
/// [`Driver`](crate::drm::Driver)'s example (hidden lines):
///
/// ```
/// # use kernel::drm::doctest::{self, Fixture};
/// # let f = Fixture::new()?;
/// use kernel::{c_str, drm::{file::MockFile, syncobj::SyncObj}, new_fence_context, sync::Arc};
///
/// let file = MockFile::<doctest::File>::open(&f.dev)?;
/// let ctx = Arc::pin_init(new_fence_context!(c_str!("doc"), c_str!("ring")), GFP_KERNEL)?;
/// let job = ctx.new_fence()?;
/// let handle = SyncObj::create(file.file(), Some(job.fence()))?;
/// let obj = SyncObj::lookup(file.file(), handle)?;
/// assert!(!obj.as_raw().is_null());
/// let fence = obj.fence().ok_or(EINVAL)?;
/// assert_eq!(fence.as_raw(), job.fence().as_raw());
/// obj.replace_fence(None);
/// assert!(obj.fence().is_none());
/// assert!(SyncObj::lookup(file.file(), handle + 1).err() == Some(ENOENT));
/// job.signal();
/// # Ok::<(), Error>(())
/// ```
#[repr(transparent)]
pub struct SyncObj(Opaque<bindings::drm_syncobj>);

// SAFETY: Sync objects are reference counted by `drm_syncobj_get`/`drm_syncobj_put`.
unsafe impl AlwaysRefCounted for SyncObj {
    fn inc_ref(&self) {
        // SAFETY: `self` is live.
        unsafe { bindings::drm_syncobj_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owned.
        unsafe { bindings::drm_syncobj_put(obj.as_ref().as_raw()) };
    }
}

// SAFETY: Sync objects are designed to be shared between threads; their fence is RCU-protected
// and replaced under their own lock.
unsafe impl Send for SyncObj {}
// SAFETY: See above.
unsafe impl Sync for SyncObj {}

impl SyncObj {
    /// The C `struct drm_syncobj`.
    pub fn as_raw(&self) -> *mut bindings::drm_syncobj {
        self.0.get()
    }

    /// Looks up the sync object `handle` names on `file`.
    ///
    /// # Errors
    ///
    /// `ENOENT` when `handle` names no sync object on `file`.
    pub fn lookup<T: DriverFile>(file: &File<T>, handle: u32) -> Result<ARef<SyncObj>> {
        // SAFETY: `file` is an open DRM file.
        let obj = unsafe { bindings::drm_syncobj_find(file.as_raw(), handle) };
        let obj = NonNull::new(obj).ok_or(ENOENT)?;
        // SAFETY: The lookup took the reference the `ARef` now owns.
        Ok(unsafe { ARef::from_raw(obj.cast()) })
    }

    /// Creates a sync object holding `fence`, and a handle to it on `file`.
    pub fn create<T: DriverFile>(file: &File<T>, fence: Option<&Fence>) -> Result<u32> {
        let mut obj: *mut bindings::drm_syncobj = ptr::null_mut();
        let fence = fence.map_or(ptr::null_mut(), Fence::as_raw);
        // SAFETY: `obj` is valid for writes; `fence` is live or null.
        to_result(unsafe { bindings::drm_syncobj_create(&mut obj, 0, fence) })?;
        let mut handle = 0u32;
        // SAFETY: `obj` was just created; `get_handle` takes its own reference, and we drop ours.
        let ret = unsafe { bindings::drm_syncobj_get_handle(file.as_raw(), obj, &mut handle) };
        // SAFETY: We own the reference `drm_syncobj_create` returned.
        unsafe { bindings::drm_syncobj_put(obj) };
        to_result(ret)?;
        Ok(handle)
    }

    /// The fence the object holds, if any.
    pub fn fence(&self) -> Option<ARef<Fence>> {
        // SAFETY: The object is live; the helper returns a reference we then own, or null.
        let fence = unsafe { bindings::drm_syncobj_fence_get(self.as_raw()) };
        // SAFETY: A non-null fence comes with a reference for us.
        NonNull::new(fence).map(|f| unsafe { Fence::from_owned(f) })
    }

    /// Replaces the object's fence with `fence`, or removes it.
    pub fn replace_fence(&self, fence: Option<&Fence>) {
        let fence = fence.map_or(ptr::null_mut(), Fence::as_raw);
        // SAFETY: The object is live; `fence` is live or null, and the object takes its own
        // reference.
        unsafe { bindings::drm_syncobj_replace_fence(self.as_raw(), fence) };
    }

    /// Adds `fence` as point `point` of the timeline, with the chain node `chain`.
    ///
    /// Points must grow: a point not above the last one still goes in, and the timeline's
    /// `DRM_IOCTL_SYNCOBJ_QUERY` reports it as the last, as the C function does.
    pub fn add_point(&self, chain: FenceChain, fence: &Fence, point: u64) {
        let chain = KBox::into_raw(chain.0).cast::<bindings::dma_fence_chain>();
        // SAFETY: The object and the fence are live; `chain` is a `kmalloc`ed node the object
        // takes over (the chain frees it with `kfree` when its last reference goes).
        unsafe { bindings::drm_syncobj_add_point(self.as_raw(), chain, fence.as_raw(), point) };
    }

    /// The fence of point `point` of the object `handle` names on `file` (`0`: the object's
    /// fence, timeline or not).
    ///
    /// # Errors
    ///
    /// `ENOENT` when `handle` names no sync object; `EINVAL` when the object holds no fence, or
    /// the point was not submitted yet.
    pub fn find_fence<T: DriverFile>(
        file: &File<T>,
        handle: u32,
        point: u64,
    ) -> Result<ARef<Fence>> {
        let mut fence: *mut bindings::dma_fence = ptr::null_mut();
        // SAFETY: `file` is an open DRM file, `fence` valid for writes.
        to_result(unsafe {
            bindings::drm_syncobj_find_fence(file.as_raw(), handle, point, 0, &mut fence)
        })?;
        // SAFETY: On success the function returned a fence with a reference for us.
        Ok(unsafe { Fence::from_owned(NonNull::new(fence).ok_or(EINVAL)?) })
    }
}

/// A node of a timeline's fence chain, allocated ahead, for [`SyncObj::add_point`], so that
/// adding a point, once a job is published, cannot fail.
pub struct FenceChain(KBox<core::mem::MaybeUninit<bindings::dma_fence_chain>>);

// SAFETY: The node is uninitialised memory that only its owner touches, from any thread.
unsafe impl Send for FenceChain {}

impl FenceChain {
    /// Allocates a chain node, charged to the caller's memory cgroup.
    pub fn new() -> Result<Self> {
        Ok(Self(KBox::new_uninit(GFP_KERNEL_ACCOUNT)?))
    }
}
