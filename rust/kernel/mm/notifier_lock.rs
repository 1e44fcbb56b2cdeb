// SPDX-License-Identifier: GPL-2.0

//! The notifier lock: the driver lock that orders device page-table updates against
//! invalidations of the CPU page table.
//!
//! A [`NotifierLock`] is taken in two places: by the framework around an invalidation callback
//! (which publishes the invalidation's sequence number under it and hands the guard to the
//! driver, who clears the device entries), and by the driver around the check that a snapshot is
//! still current ([`hmm::Snapshot::commit`]) and the writing of the entries it describes. The
//! check demands its guard, so the protocol cannot be skipped.
//!
//! The lock is a `struct mutex` with a `try_lock`, which an invalidation callback that may not
//! block needs. At initialisation it teaches lockdep that it is taken under reclaim (an
//! invalidation may come from the shrinker), so an allocation made while holding it is reported
//! at once, as `drm_gpusvm_init` does for its notifier lock.
//!
//! [`hmm::Snapshot::commit`]: super::hmm::Snapshot::commit
//!
//! C header: [`include/linux/mutex.h`](srctree/include/linux/mutex.h)

use crate::{
    bindings, init::PinInit, pin_init, prelude::*, str::CStr, sync::LockClassKey, types::Opaque,
};
use core::{
    cell::UnsafeCell,
    marker::{PhantomData, PhantomPinned},
    ops::{Deref, DerefMut},
};

/// Creates a [`NotifierLock`] initialiser with a lockdep class of its own, named after the
/// caller's location unless a name is given.
#[macro_export]
macro_rules! new_notifier_lock {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::mm::notifier_lock::NotifierLock::new(
            $inner, $crate::optional_name!($($name)?), $crate::static_lock_class!())
    };
}
pub use new_notifier_lock;

/// A mutex protecting `T`, the state a driver keeps coherent with the CPU page table.
///
/// # Invariants
///
/// `mutex` is an initialised `struct mutex`; `data` is only accessed while it is held.
#[pin_data]
pub struct NotifierLock<T: ?Sized> {
    #[pin]
    mutex: Opaque<bindings::mutex>,
    #[pin]
    _pin: PhantomPinned,
    data: UnsafeCell<T>,
}

// SAFETY: The lock may be moved to another thread with the data it protects.
unsafe impl<T: ?Sized + Send> Send for NotifierLock<T> {}

// SAFETY: The mutex gives one thread at a time access to `T`, which therefore need only be `Send`.
unsafe impl<T: ?Sized + Send> Sync for NotifierLock<T> {}

impl<T> NotifierLock<T> {
    /// Creates a notifier lock protecting `data`. Use [`new_notifier_lock!`].
    pub fn new(data: T, name: &'static CStr, key: &'static LockClassKey) -> impl PinInit<Self> {
        pin_init!(Self {
            data: UnsafeCell::new(data),
            _pin: PhantomPinned,
            // SAFETY: `slot` is valid for writes; `name` and `key` live forever.
            mutex <- Opaque::ffi_init(|slot: *mut bindings::mutex| unsafe {
                bindings::__mutex_init(slot, name.as_char_ptr(), key.as_ptr());
                bindings::mutex_prime_reclaim(slot);
            }),
        })
    }
}

impl<T: ?Sized> NotifierLock<T> {
    /// Takes the lock, sleeping until it is free.
    pub fn lock(&self) -> NotifierGuard<'_, T> {
        // SAFETY: The mutex is initialised.
        unsafe { bindings::mutex_lock(self.mutex.get()) };
        // INVARIANT: We hold the lock.
        NotifierGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock if it is free, without sleeping.
    pub fn try_lock(&self) -> Option<NotifierGuard<'_, T>> {
        // SAFETY: The mutex is initialised.
        if unsafe { bindings::mutex_trylock(self.mutex.get()) } != 0 {
            // INVARIANT: We hold the lock.
            Some(NotifierGuard {
                lock: self,
                _not_send: PhantomData,
            })
        } else {
            None
        }
    }
}

/// A held [`NotifierLock`]; dropping it releases the lock.
///
/// # Invariants
///
/// The current thread holds `lock`'s mutex.
#[must_use = "the lock is released when the guard is dropped"]
pub struct NotifierGuard<'a, T: ?Sized> {
    lock: &'a NotifierLock<T>,
    // A mutex is released by the thread that took it.
    _not_send: PhantomData<*mut ()>,
}

// SAFETY: A shared guard only gives `&T`, which is fine to share when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for NotifierGuard<'_, T> {}

impl<T: ?Sized> NotifierGuard<'_, T> {
    /// The address of the lock this guard holds, to tell locks apart.
    pub(crate) fn lock_addr(&self) -> *const () {
        (self.lock as *const NotifierLock<T>).cast()
    }

    /// Releases the lock, runs `f`, and takes the lock again: for an invalidation callback that
    /// waits for device work that itself needs the lock. What the lock protects may have changed
    /// when `f` returns.
    pub fn do_unlocked<R>(&mut self, f: impl FnOnce() -> R) -> R {
        // SAFETY: By the type invariant we hold the mutex; the mutable borrow keeps every
        // access to the data out until it is taken again.
        unsafe { bindings::mutex_unlock(self.lock.mutex.get()) };
        let result = f();
        // SAFETY: The mutex is initialised.
        unsafe { bindings::mutex_lock(self.lock.mutex.get()) };
        // INVARIANT: We hold the lock again.
        result
    }
}

impl<T: ?Sized> Deref for NotifierGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: By the type invariant we hold the lock, which gives access to the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for NotifierGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: By the type invariant we hold the lock, and `&mut self` is the only way to it.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for NotifierGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold the mutex.
        unsafe { bindings::mutex_unlock(self.lock.mutex.get()) };
    }
}

/// Data protected by a [`NotifierLock`] it is not stored in, as [`LockedBy`] is for other locks.
///
/// Drivers keep state per mirrored range (whether it is valid, its pins) next to the range, and
/// the notifier lock in the object that owns all ranges. Access needs a guard of that lock.
///
/// [`LockedBy`]: crate::sync::LockedBy
///
/// # Invariants
///
/// `data` is only accessed while the lock at `lock` is held.
pub struct NotifierLocked<T> {
    lock: *const (),
    data: UnsafeCell<T>,
}

// SAFETY: The data moves with the value; only its owner or a holder of the lock accesses it.
unsafe impl<T: Send> Send for NotifierLocked<T> {}

// SAFETY: Shared access to `data` requires holding the lock, so one thread at a time reaches it;
// `T` therefore need only be `Send`.
unsafe impl<T: Send> Sync for NotifierLocked<T> {}

impl<T> NotifierLocked<T> {
    /// Creates `data`, protected by `lock`.
    pub fn new<L: ?Sized>(lock: &NotifierLock<L>, data: T) -> Self {
        Self {
            lock: (lock as *const NotifierLock<L>).cast(),
            data: UnsafeCell::new(data),
        }
    }

    /// The data, while `guard` holds the lock it is protected by.
    ///
    /// # Panics
    ///
    /// When `guard` holds another lock.
    pub fn access<'a, L: ?Sized>(&'a self, guard: &'a mut NotifierGuard<'_, L>) -> &'a mut T {
        if guard.lock_addr() != self.lock {
            panic!("the guard is not of the lock that protects this data");
        }
        // SAFETY: By the type invariant the data is only accessed with the lock held, which
        // `guard` proves; the mutable borrow of `guard` keeps other accesses out meanwhile.
        unsafe { &mut *self.data.get() }
    }
}
