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
//! It is a [`Lock`] whose backend, [`NotifierBackend`], is a `struct mutex` that at
//! initialisation teaches lockdep that it is taken under reclaim (an invalidation may come from
//! the shrinker), so an allocation made while holding it is reported at once, as
//! `drm_gpusvm_init` does for its notifier lock. Everything else is the generic lock's: its
//! guard ([`NotifierGuard`], with [`Guard::do_unlocked`] for a callback that waits for device work
//! that needs the lock), [`Lock::try_lock`] for an invalidation callback that may not block, and
//! [`LockedBy`] for data the lock protects but does not hold, such as the state a driver keeps
//! per mirrored range.
//!
//! [`hmm::Snapshot::commit`]: super::hmm::Snapshot::commit
//! [`LockedBy`]: crate::sync::LockedBy
//!
//! C header: [`include/linux/mutex.h`](srctree/include/linux/mutex.h)

use crate::{
    bindings,
    sync::lock::{mutex::MutexBackend, Backend, Guard, Lock},
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
/// Create it with [`new_notifier_lock!`].
///
/// # Examples
///
/// A device page table behind the lock, and a per-range state it protects without holding:
///
/// ```
/// use kernel::{mm::notifier_lock::NotifierLock, new_notifier_lock, prelude::*, sync::LockedBy};
///
/// struct PageTable {
///     entries: u32,
/// }
/// let lock = KBox::pin_init(new_notifier_lock!(PageTable { entries: 0 }), GFP_KERNEL)?;
/// let valid = LockedBy::new(&*lock, false);
///
/// let mut guard = lock.lock();
/// guard.entries += 1;
/// *valid.access_mut(&mut guard) = true;
/// // Taken: an invalidation that may not block would fail rather than wait.
/// assert!(lock.try_lock().is_none());
/// // What a callback that waits for device work does: the lock is free meanwhile.
/// guard.do_unlocked(|| assert!(lock.try_lock().is_some()));
/// assert_eq!(guard.entries, 1);
/// assert!(*valid.access(&guard));
/// # Ok::<(), Error>(())
/// ```
pub type NotifierLock<T> = Lock<T, NotifierBackend>;

/// A held [`NotifierLock`]; dropping it releases the lock.
pub type NotifierGuard<'a, T> = Guard<'a, T, NotifierBackend>;

/// The backend of a [`NotifierLock`]: a `struct mutex`, primed for reclaim when initialised.
///
/// # Examples
///
/// The priming makes lockdep report an allocation under the lock at once (so this example
/// allocates before it takes the lock):
///
/// ```
/// use kernel::{mm::notifier_lock::NotifierBackend, new_notifier_lock, prelude::*};
///
/// let lock = KBox::pin_init(new_notifier_lock!(KVec::<u64>::new()), GFP_KERNEL)?;
/// let room = KVec::<u64>::with_capacity(4, GFP_KERNEL)?;
/// let old = core::mem::replace(&mut *lock.lock(), room);
/// drop(old);
/// let _: &kernel::sync::lock::Lock<_, NotifierBackend> = &lock;
/// assert_eq!(lock.lock().capacity(), 4);
/// # Ok::<(), Error>(())
/// ```
pub struct NotifierBackend;

// SAFETY: The underlying kernel `struct mutex` ensures mutual exclusion, as for `MutexBackend`, to
// which every operation but the priming is left. `relock` uses the default implementation, which
// calls `lock`.
unsafe impl Backend for NotifierBackend {
    type State = bindings::mutex;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The safety requirements ensure that `ptr` is valid for writes, and `name` and
        // `key` are valid for read indefinitely.
        unsafe { MutexBackend::init(ptr, name, key) };
        // SAFETY: `ptr` is a mutex, initialised just above.
        unsafe { bindings::mutex_prime_reclaim(ptr) };
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The safety requirements ensure that `ptr` is an initialised mutex.
        unsafe { MutexBackend::lock(ptr) }
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        // SAFETY: The safety requirements ensure that `ptr` is an initialised mutex.
        unsafe { MutexBackend::try_lock(ptr) }
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // SAFETY: The safety requirements ensure that the caller owns the mutex at `ptr`.
        unsafe { MutexBackend::unlock(ptr, guard_state) }
    }
}
