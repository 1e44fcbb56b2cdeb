// SPDX-License-Identifier: GPL-2.0

//! Memory cgroups: charging what a worker allocates to the cgroup of the process it works for.
//!
//! A kernel thread's `__GFP_ACCOUNT` allocations are charged to no cgroup of a user's. Work done
//! on behalf of a process, later, by a worker (an operation queued until its fences signal,
//! say) takes the process's cgroup when it is queued and charges what it allocates to it with
//! [`MemCgroup::charge_in`], as the process's own call would have.
//!
//! C header: [`include/linux/memcontrol.h`](srctree/include/linux/memcontrol.h),
//! [`include/linux/sched/mm.h`](srctree/include/linux/sched/mm.h) (`set_active_memcg`)

use super::Mm;
use crate::bindings;
use core::ptr::NonNull;

/// A reference to a memory cgroup.
///
/// # Examples
///
/// ```
/// use kernel::{bindings, kunit, mm::{memcg::MemCgroup, Mm}, page::PAGE_SIZE};
///
/// kunit::vm_mmap(PAGE_SIZE, bindings::PROT_READ)?;
/// let mm = Mm::current().ok_or(EINVAL)?;
/// // With memory cgroups, every address space's owner is in one (the root, at least).
/// let memcg = MemCgroup::of_mm(&mm);
/// assert_eq!(memcg.is_some(), cfg!(CONFIG_MEMCG));
/// if let Some(memcg) = memcg {
///     // Scopes nest: each gives back the one it replaced.
///     let alloc = || KVec::<u8>::with_capacity(64, GFP_KERNEL_ACCOUNT);
///     let inner = memcg.charge_in(|| memcg.charge_in(alloc));
///     assert!(inner.is_ok_and(|v| v.capacity() >= 64));
/// }
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `ptr` is a memory cgroup this value holds a reference to (`css_get`).
pub struct MemCgroup {
    ptr: NonNull<bindings::mem_cgroup>,
}

// SAFETY: A reference to a cgroup may be dropped from any thread; the cgroup is refcounted
// atomically.
unsafe impl Send for MemCgroup {}
// SAFETY: `&MemCgroup` only charges to the cgroup, which any thread may do.
unsafe impl Sync for MemCgroup {}

impl MemCgroup {
    /// The memory cgroup of `mm`'s owner, whose pages and kernel memory are charged to it;
    /// `None` when memory cgroups are not built in or turned off.
    pub fn of_mm(mm: &Mm) -> Option<Self> {
        // SAFETY: `mm` is live; the result holds a reference, or is NULL.
        let ptr = unsafe { bindings::mem_cgroup_of_mm(mm.as_raw()) };
        // INVARIANT: The reference taken above is the value's.
        NonNull::new(ptr).map(|ptr| Self { ptr })
    }

    /// Runs `f` with the current task's `__GFP_ACCOUNT` allocations, and the pages it makes
    /// resident that no process's fault charges, charged to this cgroup (`set_active_memcg`);
    /// then gives back the cgroup charged before.
    pub fn charge_in<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: The cgroup is live (type invariant) for the whole scope, which this function
        // closes before it returns, restoring what it replaced.
        let old = unsafe { bindings::set_active_memcg(self.ptr.as_ptr()) };
        let ret = f();
        // SAFETY: `old` is what the scope above replaced; scopes nest, so it is current again
        // once this one is closed.
        unsafe { bindings::set_active_memcg(old) };
        ret
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        // SAFETY: The value holds a reference (type invariant), given back once.
        unsafe { bindings::mem_cgroup_put(self.ptr.as_ptr()) };
    }
}
