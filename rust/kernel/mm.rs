// SPDX-License-Identifier: GPL-2.0

//! Memory management: address spaces, and mirroring them into a device.
//!
//! One C `struct mm_struct`, two Rust types by what a reference allows: an [`Mm`] holds
//! `mm_count` (`mmgrab`), which keeps the structure but not the address space; an
//! [`MmWithUser`] holds `mm_users` (`mmget`), which keeps the address space, so that its mappings
//! may be walked under [`MmWithUser::mmap_read_lock`].
//!
//! The submodules let a driver keep a device's page table coherent with a process's:
//! [`notifier_lock`] is the driver lock that orders page-table updates against invalidations,
//! [`range_lock`] makes invalidations of a range wait for the snapshot of it being committed,
//! [`interval_notifier`] tells the driver when a range of the address space changes, [`hmm`]
//! takes a snapshot of the CPU page table for a range, [`frame`] is what a device page table is
//! written from (a frame with proof that it is current), [`dirty`] tells the core MM which pages
//! the device may have written, and [`pin`] pins pages long-term for devices that cannot fault.
//! `Documentation/mm/rust-mirroring.rst` describes the protocol.
//!
//! C headers: [`include/linux/mm_types.h`](srctree/include/linux/mm_types.h),
//! [`include/linux/sched/mm.h`](srctree/include/linux/sched/mm.h),
//! [`include/linux/mmap_lock.h`](srctree/include/linux/mmap_lock.h)

use crate::{
    bindings,
    error::{code::*, Result},
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};

pub mod dirty;
pub mod frame;
#[cfg(CONFIG_HMM_MIRROR)]
pub mod hmm;
#[cfg(CONFIG_MMU_NOTIFIER)]
pub mod interval_notifier;
pub mod invalidated;
pub mod memcg;
pub mod notifier_lock;
pub mod pin;
pub mod range_lock;
#[cfg(CONFIG_RUST_MM_MIRROR_KUNIT_TEST)]
mod tests;
pub mod user_fence;

/// An address space whose structure is kept alive (`mmgrab`), though its mappings may already be
/// gone.
///
/// # Examples
///
/// A reference that does not keep the mappings, upgraded while they exist:
///
/// ```
/// use kernel::{bindings, kunit, mm::Mm, page::PAGE_SIZE, types::ARef};
///
/// // Kernel threads, the one running this example among them, have no address space.
/// assert!(Mm::current().is_none());
/// kunit::vm_mmap(PAGE_SIZE, bindings::PROT_READ)?;
/// let mm: ARef<Mm> = Mm::current().ok_or(EINVAL)?;
/// let users = mm.mmget_not_zero().ok_or(EINVAL)?;
/// assert_eq!(users.as_raw(), mm.as_raw());
/// assert!(!mm.mmap_lock_is_held());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// Values of this type are always referenced through an [`ARef`] or a reference derived from a
/// live `mm_count` or `mm_users` reference, and wrap a valid `mm_struct`.
#[repr(transparent)]
pub struct Mm {
    mm: Opaque<bindings::mm_struct>,
}

// SAFETY: `mm_struct` is reference counted by `mmgrab`/`mmdrop`, which any thread may call.
unsafe impl AlwaysRefCounted for Mm {
    fn inc_ref(&self) {
        // SAFETY: `self` is live, so `mm_count` is not zero.
        unsafe { bindings::mmgrab(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owned.
        unsafe { bindings::mmdrop(obj.as_ref().as_raw()) };
    }
}

// SAFETY: `mm_struct` is designed to be used from any thread.
unsafe impl Send for Mm {}
// SAFETY: `mm_struct` is designed to be used from any thread.
unsafe impl Sync for Mm {}

impl Mm {
    /// The address space of the current task, or `None` for a kernel thread without one.
    pub fn current() -> Option<ARef<Mm>> {
        let mm = current_mm();
        // SAFETY: A task's `mm` holds `mm_users` while the task uses it, so it is live; `from`
        // takes our own `mm_count`.
        NonNull::new(mm).map(|mm| ARef::from(unsafe { Self::from_raw(mm.as_ptr()) }))
    }

    /// Whether this is the address space the current task uses.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::{bindings, kunit, mm::Mm, page::PAGE_SIZE};
    ///
    /// kunit::vm_mmap(PAGE_SIZE, bindings::PROT_READ)?;
    /// let mm = Mm::current().ok_or(EINVAL)?;
    /// assert!(mm.is_current());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn is_current(&self) -> bool {
        core::ptr::eq(self.as_raw(), current_mm())
    }

    /// Borrows the [`Mm`] of `mm`.
    ///
    /// # Safety
    ///
    /// `mm` must be live (hold `mm_count`) for `'a`.
    pub unsafe fn from_raw<'a>(mm: *const bindings::mm_struct) -> &'a Mm {
        // SAFETY: `Mm` is a transparent wrapper; the caller promises liveness.
        unsafe { &*mm.cast() }
    }

    /// The C `struct mm_struct`.
    pub fn as_raw(&self) -> *mut bindings::mm_struct {
        self.mm.get()
    }

    /// Whether anyone holds the mmap lock, for reading or writing, at this moment: a hint, which
    /// may change as soon as it is read.
    pub fn mmap_lock_is_held(&self) -> bool {
        // SAFETY: `self` is live, and so is its lock; reading its state takes nothing.
        unsafe {
            bindings::rwsem_is_locked(&raw mut (*self.as_raw()).__bindgen_anon_1.mmap_lock) != 0
        }
    }

    /// Takes `mm_users` if the address space still exists (`mmget_not_zero`).
    pub fn mmget_not_zero(&self) -> Option<ARef<MmWithUser>> {
        // SAFETY: `self` is live.
        if unsafe { bindings::mmget_not_zero(self.as_raw()) } {
            // SAFETY: We just took the `mm_users` reference the `ARef` owns.
            Some(unsafe { ARef::from_raw(NonNull::new_unchecked(self.as_raw().cast())) })
        } else {
            None
        }
    }
}

/// An address space whose mappings are kept alive (`mmget`).
///
/// # Examples
///
/// ```
/// use kernel::{bindings, kunit, mm::MmWithUser, page::PAGE_SIZE};
///
/// let addr = kunit::vm_mmap(PAGE_SIZE, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// let mm = MmWithUser::current().ok_or(EINVAL)?;
/// // SAFETY: `mm` holds `mm_users` for as long as `same` is used.
/// let same = unsafe { MmWithUser::from_raw(mm.as_raw()) };
/// let guard = same.mmap_read_lock();
/// // SAFETY: The mmap lock is held.
/// let vma = unsafe { bindings::find_vma(guard.mm().as_raw(), addr as _) };
/// assert!(!vma.is_null());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// Values of this type are referenced through a live `mm_users` reference.
#[repr(transparent)]
pub struct MmWithUser {
    mm: Mm,
}

// SAFETY: `mm_users` is counted by `mmget`/`mmput`, which any thread may call.
unsafe impl AlwaysRefCounted for MmWithUser {
    fn inc_ref(&self) {
        // SAFETY: `self` is live, so `mm_users` is not zero.
        unsafe { bindings::mmget(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owned.
        unsafe { bindings::mmput(obj.as_ref().as_raw()) };
    }
}

// SAFETY: See `Mm`.
unsafe impl Send for MmWithUser {}
// SAFETY: See `Mm`.
unsafe impl Sync for MmWithUser {}

impl Deref for MmWithUser {
    type Target = Mm;

    fn deref(&self) -> &Mm {
        &self.mm
    }
}

/// An [`MmWithUser`] whose `mm_users` reference is given up with `mmput_async()`
/// ([`MmWithUser::put_async`]), made by [`MmWithUser::into_mmput_async`].
///
/// For a driver that keeps a process's address space alive while it works on it, where its
/// process may exit meanwhile: dropping the last user would tear the address space down in the
/// driver's context, running the release of its notifiers, whose callbacks may wait for what that
/// context holds (a lock, or a job not queued yet) and never return. A workqueue tears it down
/// instead. However the reference goes, early returns included.
///
/// # Examples
///
/// ```
/// use kernel::{bindings, kunit, mm::MmWithUser};
///
/// kunit::vm_mmap(4096, bindings::PROT_READ)?;
/// let mm = MmWithUser::into_mmput_async(MmWithUser::current().ok_or(EINVAL)?);
/// // An `MmWithUser` still: its address space can be locked, as the current task's.
/// drop(mm.mmap_read_lock());
/// drop(mm);
/// assert!(MmWithUser::current().is_some());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// Values of this type are referenced through a live `mm_users` reference.
#[repr(transparent)]
pub struct MmWithUserAsync {
    mm: MmWithUser,
}

// SAFETY: `mm_users` is counted by `mmget`/`mmput_async`, which any thread may call.
unsafe impl AlwaysRefCounted for MmWithUserAsync {
    fn inc_ref(&self) {
        // SAFETY: `self` is live, so `mm_users` is not zero.
        unsafe { bindings::mmget(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owned.
        unsafe { bindings::mmput_async(obj.as_ref().as_raw()) };
    }
}

// SAFETY: See `Mm`.
unsafe impl Send for MmWithUserAsync {}
// SAFETY: See `Mm`.
unsafe impl Sync for MmWithUserAsync {}

impl Deref for MmWithUserAsync {
    type Target = MmWithUser;

    fn deref(&self) -> &MmWithUser {
        &self.mm
    }
}

impl MmWithUser {
    /// Gives up `this` with `mmput_async()`: when it was the last user, the address space is
    /// torn down by a workqueue, not by the caller. For code that may hold what that teardown's
    /// invalidations wait for, such as a mirror's range (see [`range_lock`]): tearing down under
    /// it would take the mmap lock, against the order mmap lock, then range.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::{bindings, kunit, mm::MmWithUser};
    ///
    /// kunit::vm_mmap(4096, bindings::PROT_READ)?;
    /// let mm = MmWithUser::current().ok_or(EINVAL)?;
    /// // Another user: the test's thread still uses the address space.
    /// MmWithUser::put_async(mm);
    /// assert!(MmWithUser::current().is_some());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn put_async(this: ARef<Self>) {
        drop(Self::into_mmput_async(this));
    }

    /// Turns `this` into an [`MmWithUserAsync`]: the same `mm_users` reference, given up with
    /// `mmput_async()` when dropped.
    pub fn into_mmput_async(this: ARef<Self>) -> ARef<MmWithUserAsync> {
        let mm = ARef::into_raw(this);
        // SAFETY: `MmWithUserAsync` is a transparent wrapper of `MmWithUser`, whose `mm_users`
        // reference the new `ARef` takes over from `this`.
        unsafe { ARef::from_raw(mm.cast()) }
    }

    /// The address space of the current task with `mm_users` taken, or `None` for a kernel thread
    /// without one.
    pub fn current() -> Option<ARef<MmWithUser>> {
        Mm::current()?.mmget_not_zero()
    }

    /// Borrows the [`MmWithUser`] of `mm`.
    ///
    /// # Safety
    ///
    /// `mm` must hold `mm_users` for `'a`.
    pub unsafe fn from_raw<'a>(mm: *const bindings::mm_struct) -> &'a MmWithUser {
        // SAFETY: `MmWithUser` is a transparent wrapper; the caller promises liveness.
        unsafe { &*mm.cast() }
    }

    /// Runs `f` in the current kernel thread with this address space as its own
    /// (`kthread_use_mm`), so that `f` may reach user memory of it (copy to and from user
    /// addresses, [`PinnedPages::pin_longterm`]), as a workqueue item doing work for a process
    /// must; the kernel thread gives it up (`kthread_unuse_mm`) when `f` returns. The address
    /// space is kept by `&self` throughout.
    ///
    /// [`PinnedPages::pin_longterm`]: pin::PinnedPages::pin_longterm
    ///
    /// # Errors
    ///
    /// `EINVAL` when the current task is not a kernel thread (a user task already has its
    /// own); `EBUSY` when the kernel thread already uses an address space, this one or
    /// another (a call from inside `f`, say). `f` does not run then.
    ///
    /// # Examples
    ///
    /// A workqueue item (a kernel thread with no address space) pins pages of the address space
    /// of the test that made it:
    ///
    /// ```
    /// use kernel::{
    ///     bindings, impl_has_work, kunit,
    ///     mm::{pin::PinnedPages, Mm, MmWithUser},
    ///     new_work,
    ///     page::PAGE_SIZE,
    ///     prelude::*,
    ///     sync::Arc,
    ///     types::ARef,
    ///     workqueue::{self, Work, WorkItem},
    /// };
    /// use core::sync::atomic::{AtomicI32, Ordering};
    ///
    /// #[pin_data]
    /// struct Pinner {
    ///     mm: ARef<MmWithUser>,
    ///     addr: usize,
    ///     /// 0 until the worker ran, then 1 if all went as expected, or the line that did not.
    ///     outcome: AtomicI32,
    ///     #[pin]
    ///     work: Work<Pinner>,
    /// }
    ///
    /// impl_has_work! {
    ///     impl HasWork<Self> for Pinner { self.work }
    /// }
    ///
    /// impl WorkItem for Pinner {
    ///     type Pointer = Arc<Pinner>;
    ///
    ///     fn run(this: Arc<Pinner>) {
    ///         let outcome = (|| {
    ///             // A worker has no address space of its own: there is no user memory to pin.
    ///             if Mm::current().is_some() {
    ///                 return line!();
    ///             }
    ///             if PinnedPages::pin_longterm(this.addr, PAGE_SIZE, true).err() != Some(EFAULT) {
    ///                 return line!();
    ///             }
    ///             let pinned = this.mm.with_kthread_use(|| {
    ///                 // No nesting.
    ///                 let nested = this.mm.with_kthread_use(|| ()).err() == Some(EBUSY);
    ///                 let same = Mm::current().is_some_and(|mm| mm.as_raw() == this.mm.as_raw());
    ///                 let pins = PinnedPages::pin_longterm(this.addr, PAGE_SIZE, true);
    ///                 nested && same && pins.is_ok_and(|pins| pins.len() == 1)
    ///             });
    ///             if pinned != Ok(true) {
    ///                 return line!();
    ///             }
    ///             // Given up again.
    ///             if Mm::current().is_some() {
    ///                 return line!();
    ///             }
    ///             1
    ///         })();
    ///         this.outcome.store(outcome as i32, Ordering::Release);
    ///     }
    /// }
    ///
    /// let addr = kunit::vm_mmap(PAGE_SIZE, bindings::PROT_READ | bindings::PROT_WRITE)?;
    /// let mm = MmWithUser::current().ok_or(EINVAL)?;
    /// // The test's kernel thread already uses the address space `vm_mmap` gave it.
    /// assert!(mm.with_kthread_use(|| ()) == Err(EBUSY));
    /// let pinner = Arc::pin_init(
    ///     pin_init!(Pinner {
    ///         mm,
    ///         addr,
    ///         outcome: AtomicI32::new(0),
    ///         work <- new_work!("Pinner::work"),
    ///     }),
    ///     GFP_KERNEL,
    /// )?;
    /// let _ = workqueue::system_unbound().enqueue(pinner.clone());
    /// // Waits for the worker (ten seconds at most, should it never run).
    /// for _ in 0..10_000 {
    ///     if pinner.outcome.load(Ordering::Acquire) != 0 {
    ///         break;
    ///     }
    ///     // SAFETY: FFI call without requirements.
    ///     unsafe { bindings::msleep(1) };
    /// }
    /// assert_eq!(pinner.outcome.load(Ordering::Acquire), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn with_kthread_use<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        // SAFETY: FFI call without requirements.
        if !unsafe { bindings::current_is_kthread() } {
            return Err(EINVAL);
        }
        if !current_mm().is_null() {
            return Err(EBUSY);
        }
        // SAFETY: The current task is a kernel thread that uses no address space (checked
        // above, and only the task itself changes its `mm`); `self` holds `mm_users` until after
        // `kthread_unuse_mm`.
        unsafe { bindings::kthread_use_mm(self.as_raw()) };
        let ret = f();
        // SAFETY: `kthread_use_mm` above made `self` the thread's address space. `f` could not
        // give it up or change it: `kthread_unuse_mm` is reached through this function alone,
        // which refuses to nest.
        unsafe { bindings::kthread_unuse_mm(self.as_raw()) };
        Ok(ret)
    }

    /// Takes the mmap lock for reading; the guard releases it.
    pub fn mmap_read_lock(&self) -> MmapReadGuard<'_> {
        // SAFETY: `self` is live.
        unsafe { bindings::mmap_read_lock(self.as_raw()) };
        // INVARIANT: We just took the read lock.
        MmapReadGuard {
            mm: self,
            _not_send: PhantomData,
        }
    }
}

/// The mmap lock of an address space, held for reading.
///
/// # Examples
///
/// ```
/// use kernel::{bindings, kunit, mm::MmWithUser, page::PAGE_SIZE};
///
/// kunit::vm_mmap(PAGE_SIZE, bindings::PROT_READ)?;
/// let mm = MmWithUser::current().ok_or(EINVAL)?;
/// {
///     let guard = mm.mmap_read_lock();
///     assert!(guard.mm().mmap_lock_is_held());
///     // Only another task may take it as well: lockdep reports recursive read locking.
/// }
/// // Released (nothing else uses the test's address space).
/// assert!(!mm.mmap_lock_is_held());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// The read lock of `mm` is held, by this thread, until the guard is dropped.
#[must_use = "the lock is released when the guard is dropped"]
pub struct MmapReadGuard<'a> {
    mm: &'a MmWithUser,
    // The lock is released by the thread that took it.
    _not_send: PhantomData<*mut ()>,
}

impl MmapReadGuard<'_> {
    /// The locked address space.
    pub fn mm(&self) -> &MmWithUser {
        self.mm
    }
}

impl Drop for MmapReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold the read lock.
        unsafe { bindings::mmap_read_unlock(self.mm.as_raw()) };
    }
}

/// The address space the current task uses (`current->mm`), null for a kernel thread without one.
///
/// It only changes by the task's own doing (`exec`, exit, `kthread_use_mm`), so it stays what
/// this returns while the caller does none of those.
fn current_mm() -> *mut bindings::mm_struct {
    // SAFETY: FFI call without requirements.
    unsafe { bindings::current_mm() }
}
