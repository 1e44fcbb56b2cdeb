// SPDX-License-Identifier: GPL-2.0

//! Range locks: serializing the snapshot of a range with the invalidations of that range.
//!
//! Checking a sequence number and retrying, the protocol of `mmu_interval_notifier`, is correct
//! but gives no forward progress: an invalidation that lands between the snapshot and its
//! commit sends the snapshot back to the start, and a thread that keeps zapping a range can
//! keep a device from ever mirroring it. A [`RangeLock`] adds the other half: a snapshot takes
//! its range ([`RangeWaiter::lock`]) before it faults the range in and holds it until the
//! device entries written from it are committed, and an invalidation of an overlapping range
//! that arrives meanwhile waits for it. Each side waits for the overlapping ones that arrived
//! before it and makes those that arrive later wait, so neither starves; disjoint ranges never
//! wait for each other. The sequence numbers stay: they are what makes a commit correct, the
//! range lock is what makes it succeed.
//!
//! An invalidation waits for a snapshot for a bounded time only (the snapshot's patience, see
//! [`RangeWaiter::lock`]), and not at all when
//!
//! - it comes from the task that holds the range (the copy-on-write break, the migration or the
//!   direct reclaim that the snapshot's own fault causes);
//! - it runs in memory reclaim (`PF_MEMALLOC`: direct reclaim and kswapd);
//! - it may not block (`mmu_notifier_range_blockable()` is false, as for the OOM reaper): then,
//!   if the range is held, it fails and the core MM tries again later.
//!
//! A snapshot's fault may wait for what an invalidation holds (a folio lock held by reclaim or
//! migration, a page being written back), so an unbounded wait could deadlock; bounded, the
//! invalidation goes ahead when the patience runs out, and the snapshot's commit then fails its
//! sequence check and is retried. `Documentation/mm/rust-mirroring.rst` has the whole deadlock
//! analysis.
//!
//! The rules of who waits for whom are in [`protocol`], which depends on nothing but `core` so
//! that `tools/hmmgpu/model` checks them on the host against every interleaving of two threads
//! (and of three, within a preemption bound).
//!
//! Lock order: the mmap lock, then a range (a snapshot takes its range with the mmap lock held
//! for reading, so that an munmap, which takes the range with the mmap lock held for writing,
//! cannot wait for it while it waits for the mmap lock), then the driver's notifier lock.
//! Nothing in here allocates: a snapshot's queue entry is allocated with its
//! [`RangeWaiter`], an invalidation's lives on its stack.
//!
//! Lockdep knows the order through one map for every range lock, which stands for "this task
//! holds a range": a snapshot acquires it with its first range (ranges of several locks may be
//! held at once), an invalidation as a trylock, since its wait is bounded (lockdep cannot model
//! a bounded wait; as a trylock it records what the invalidation takes after the range, and
//! nothing that would make reclaim, which may invalidate, wait for a range). So lockdep reports a
//! range taken with a notifier lock held, the mmap lock taken with a range held, or a range
//! taken in a fence-signalling section. [`prime_lockdep`] teaches it the order at
//! initialisation.

pub mod protocol;

use crate::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KBox},
    bindings, c_str,
    prelude::*,
    static_lock_class,
    str::CStr,
    sync::{CondVar, CondVarTimeoutResult, SpinLock},
    time::msecs_to_jiffies,
};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};
use protocol::{Node, Platform, Queue, Side};

/// A lock over ranges of addresses, taken by snapshots with a [`RangeWaiter`] and by
/// invalidations with [`RangeLock::invalidate`].
///
/// # Examples
///
/// ```
/// use kernel::{mm::range_lock::RangeLock, prelude::*, sync::Arc};
///
/// let lock = Arc::pin_init(RangeLock::new(true), GFP_KERNEL_ACCOUNT)?;
/// let mut waiter = lock.waiter()?;
/// {
///     let _held = waiter.lock(0x1000, 0x3000, 10);
///     // An invalidation of a disjoint range never waits; nor does one the holder's own task
///     // makes (its fault breaking copy-on-write, say). Another task's invalidation of an
///     // overlapping range would wait here, or fail if it may not block.
///     assert_eq!(lock.invalidate(0x3000, 0x4000, false, || 1), Some(1));
///     assert_eq!(lock.invalidate(0x2000, 0x3000, false, || 2), Some(2));
/// }
/// assert!(!waiter.is_held());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// Every node linked into `queue` is valid until it is unlinked; `waiters` is notified after
/// every unlinking.
#[pin_data]
pub struct RangeLock {
    #[pin]
    queue: SpinLock<Queue>,
    #[pin]
    waiters: CondVar,
    enabled: bool,
}

/// How long, in milliseconds, to wait for a range of `length` bytes: `base_ms`, plus a
/// millisecond per 64 pages, so that large ranges still get faulted in whole. A snapshot's
/// patience, and the deadline of [`Range::fault`](super::hmm::Range::fault).
///
/// # Examples
///
/// ```
/// use kernel::{mm::range_lock::patience_ms, page::PAGE_SIZE};
///
/// assert_eq!(patience_ms(1000, PAGE_SIZE), 1000);
/// // A millisecond more per 64 pages: 2 MiB of 4 KiB pages is 512 pages.
/// assert_eq!(patience_ms(1000, 512 * PAGE_SIZE), 1008);
/// assert_eq!(patience_ms(u32::MAX, usize::MAX), u32::MAX);
/// ```
pub fn patience_ms(base_ms: u32, length: usize) -> u32 {
    let pages = length / crate::page::PAGE_SIZE;
    base_ms.saturating_add(u32::try_from(pages / 64).unwrap_or(u32::MAX))
}

/// The identity of the current task.
fn current_owner() -> usize {
    // SAFETY: FFI call without requirements.
    unsafe { bindings::get_current() as usize }
}

/// Whether the current task is reclaiming memory.
fn in_reclaim() -> bool {
    // SAFETY: FFI call without requirements.
    unsafe { bindings::current_in_reclaim() }
}

/// Runs `f` holding the range locks' lockdep map, as a snapshot holding a range would, so that
/// lockdep learns the order from the start: call it with the locks held that ranges are taken
/// under (the mmap lock), and take in `f` those that are taken with a range held (the notifier
/// lock). Does nothing but run `f` without `CONFIG_LOCKDEP`.
///
/// # Examples
///
/// ```
/// use kernel::{mm::range_lock, new_mutex, prelude::*, sync::Mutex};
///
/// let notifier_lock = KBox::pin_init(new_mutex!(0u32), GFP_KERNEL_ACCOUNT)?;
/// // Lockdep now knows that this mutex is taken with a range held.
/// let value = range_lock::prime_lockdep(|| *notifier_lock.lock() + 1);
/// assert_eq!(value, 1);
/// # Ok::<(), Error>(())
/// ```
pub fn prime_lockdep<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: FFI call without requirements.
    let acquired = unsafe { bindings::range_lock_map_acquire() };
    let result = f();
    if acquired {
        // SAFETY: This task acquired the map just above.
        unsafe { bindings::range_lock_map_release() };
    }
    result
}

fn jiffies() -> u64 {
    // SAFETY: `jiffies` is always valid; it changes under us, hence the volatile read.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) as u64 }
}

impl RangeLock {
    /// A lock with no range taken. With `enabled` false, it orders nothing: snapshots and
    /// invalidations go ahead at once, as with sequence numbers alone (to measure the
    /// difference).
    pub fn new(enabled: bool) -> impl PinInit<Self> {
        // One lockdep class for every range lock, whichever crate creates it: the names and keys
        // are statics of this crate (literals would be copied into each caller's crate, and
        // lockdep insists that a key always comes with the same name).
        static QUEUE_NAME: &CStr = c_str!("RangeLock::queue");
        static WAITERS_NAME: &CStr = c_str!("RangeLock::waiters");
        pin_init!(Self {
            queue <- SpinLock::new(Queue::new(), QUEUE_NAME, static_lock_class!()),
            waiters <- CondVar::new(WAITERS_NAME, static_lock_class!()),
            enabled,
        })
    }

    /// How many snapshots and invalidations hold or wait for ranges.
    pub fn queued(&self) -> usize {
        self.queue.lock().len()
    }

    /// A waiter, with which a snapshot takes ranges of this lock. Allocates its queue entry.
    pub fn waiter(&self) -> Result<RangeWaiter<'_>> {
        let node = KBox::new(Node::new(0, 0, Side::Mirror, 0, 0), GFP_KERNEL_ACCOUNT)?;
        Ok(RangeWaiter {
            lock: self,
            node: NonNull::from(KBox::leak(node)),
            lockdep: AtomicBool::new(false),
        })
    }

    /// Runs `f`, the invalidation of `[start, end)`, once the snapshots of overlapping ranges
    /// that arrived before it are committed, or have held their range longer than their
    /// patience; snapshots that arrive meanwhile wait for `f` to return.
    ///
    /// Does not wait when called in memory reclaim, nor for a snapshot of the current task.
    /// Unless `may_block`, does not wait at all: returns `None` without running `f` when an
    /// overlapping snapshot of another task holds its range. Never allocates.
    pub fn invalidate<R>(
        &self,
        start: usize,
        end: usize,
        may_block: bool,
        f: impl FnOnce() -> R,
    ) -> Option<R> {
        if !self.enabled {
            return Some(f());
        }
        let mut node = Node::new(start, end, Side::Invalidate, current_owner(), u64::MAX);
        let ptr: *mut Node = &mut node;
        let patient = may_block && !in_reclaim();
        // A bounded wait: a trylock to lockdep (see the module documentation).
        // SAFETY: FFI call without requirements.
        unsafe { bindings::range_lock_map_acquire_try() };
        // SAFETY: `node` is not linked, and stays in place until it is released below, before
        // this function returns (the kernel does not unwind).
        let result = match unsafe { protocol::begin_invalidate(self, ptr, may_block, patient) } {
            true => {
                let result = f();
                // SAFETY: `node` is valid, and linked into this lock's queue.
                unsafe { protocol::release(self, ptr) };
                Some(result)
            }
            false => None,
        };
        // SAFETY: This task acquired the map above.
        unsafe { bindings::range_lock_map_release() };
        result
    }
}

impl Platform for RangeLock {
    type Guard<'a> =
        crate::sync::lock::Guard<'a, Queue, crate::sync::lock::spinlock::SpinLockBackend>;

    fn lock(&self) -> Self::Guard<'_> {
        self.queue.lock()
    }

    fn wait(&self, guard: &mut Self::Guard<'_>) {
        self.waiters.wait(guard);
    }

    fn wait_until(&self, guard: &mut Self::Guard<'_>, until: u64) -> bool {
        let left = usize::try_from(until.saturating_sub(jiffies())).unwrap_or(usize::MAX);
        matches!(
            self.waiters.wait_interruptible_timeout(guard, left),
            CondVarTimeoutResult::Woken { .. }
        )
    }

    fn notify_all(&self) {
        self.waiters.notify_all();
    }

    fn now(&self) -> u64 {
        jiffies()
    }
}

/// What a snapshot takes ranges of a [`RangeLock`] with: one range at a time.
///
/// # Examples
///
/// ```
/// use kernel::{mm::range_lock::RangeLock, prelude::*, sync::Arc};
///
/// let lock = Arc::pin_init(RangeLock::new(true), GFP_KERNEL_ACCOUNT)?;
/// let mut waiter = lock.waiter()?;
/// assert!(core::ptr::eq(waiter.range_lock(), &*lock));
/// assert!(!waiter.is_held());
/// for (start, end) in [(0x1000, 0x2000), (0x1000, 0x5000)] {
///     // The same waiter takes one range after the other.
///     let _held = waiter.lock(start, end, 10);
///     assert_eq!(lock.queued(), 1);
/// }
/// assert_eq!(lock.queued(), 0);
///
/// // A disabled lock orders nothing, and queues nothing.
/// let off = Arc::pin_init(RangeLock::new(false), GFP_KERNEL_ACCOUNT)?;
/// let mut waiter = off.waiter()?;
/// let _held = waiter.lock(0, 0x1000, 10);
/// assert_eq!(off.queued(), 0);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `node` was allocated by a [`KBox`] and is owned by `self`; while it is linked into `lock`'s
/// queue it is only accessed with the queue locked.
pub struct RangeWaiter<'a> {
    lock: &'a RangeLock,
    node: NonNull<Node>,
    /// The waiter's task acquired the range locks' lockdep map with its range.
    lockdep: AtomicBool,
}

// SAFETY: The node is only touched under the queue's lock or by its owner.
unsafe impl Send for RangeWaiter<'_> {}

impl<'a> RangeWaiter<'a> {
    /// The lock the waiter takes ranges of.
    pub fn range_lock(&self) -> &'a RangeLock {
        self.lock
    }

    /// Takes `[start, end)` for a snapshot: waits, uninterruptibly, for the overlapping ranges
    /// taken before (snapshots and invalidations) to be released. Invalidations that arrive
    /// while the range is held wait for its release, for `patience_ms` at most.
    ///
    /// Take the range with the address space's mmap lock held for reading, and release it
    /// before sleeping on anything other than a fault of the range.
    pub fn lock(&mut self, start: usize, end: usize, patience_ms: u32) -> RangeGuard<'_> {
        self.acquire(start, end, patience_ms);
        RangeGuard { waiter: self }
    }

    /// Whether the waiter holds a range.
    pub fn is_held(&self) -> bool {
        let _queue = self.lock.queue.lock();
        // SAFETY: The node is valid (type invariant) and the queue is locked.
        unsafe { self.node.as_ref().is_linked() }
    }

    /// Takes `[start, end)`, to be released with [`Self::release`].
    ///
    /// # Panics
    ///
    /// When the waiter holds a range already.
    pub(crate) fn acquire(&self, start: usize, end: usize, patience_ms: u32) {
        if !self.lock.enabled {
            return;
        }
        let node = self.node.as_ptr();
        let patience = msecs_to_jiffies(patience_ms) as u64;
        let until = jiffies().saturating_add(patience).saturating_add(1);
        {
            let _queue = self.lock.queue.lock();
            // SAFETY: The node is valid and the queue locked; `set` panics if it is linked.
            unsafe { (*node).set(start, end, current_owner(), until) };
        }
        // Before waiting, as a mutex tells lockdep before it sleeps.
        // SAFETY: FFI call without requirements.
        let acquired = unsafe { bindings::range_lock_map_acquire() };
        self.lockdep.store(acquired, Ordering::Relaxed);
        // SAFETY: The node is valid, unlinked, and not freed before it is released (see
        // `Drop`); it is boxed, so it does not move.
        unsafe { protocol::acquire(self.lock, node) };
    }

    /// Releases the range taken with [`Self::acquire`], if any. Call it from the task that
    /// took the range.
    pub(crate) fn release(&self) {
        if self.lock.enabled {
            // SAFETY: The node is valid; it is only ever linked into `lock`'s queue.
            unsafe { protocol::release(self.lock, self.node.as_ptr()) };
        }
        if self.lockdep.swap(false, Ordering::Relaxed) {
            // SAFETY: This task acquired the map with the range.
            unsafe { bindings::range_lock_map_release() };
        }
    }
}

impl Drop for RangeWaiter<'_> {
    fn drop(&mut self) {
        // A guard that was forgotten left the range taken.
        self.release();
        // SAFETY: The node came from `KBox::leak` and is no longer linked.
        drop(unsafe { KBox::from_raw(self.node.as_ptr()) });
    }
}

/// A range taken with [`RangeWaiter::lock`]; dropping it releases the range.
///
/// # Examples
///
/// ```
/// use kernel::{mm::range_lock::RangeLock, prelude::*, sync::Arc};
///
/// let lock = Arc::pin_init(RangeLock::new(true), GFP_KERNEL_ACCOUNT)?;
/// let (mut a, mut b) = (lock.waiter()?, lock.waiter()?);
/// // Disjoint ranges are held together.
/// let first = a.lock(0x0000, 0x2000, 10);
/// let second = b.lock(0x2000, 0x4000, 10);
/// assert_eq!(lock.queued(), 2);
/// drop(first);
/// assert_eq!(lock.queued(), 1);
/// drop(second);
/// assert!(!a.is_held() && !b.is_held());
/// # Ok::<(), Error>(())
/// ```
#[must_use = "the range is released when the guard is dropped"]
pub struct RangeGuard<'w> {
    waiter: &'w RangeWaiter<'w>,
}

impl Drop for RangeGuard<'_> {
    fn drop(&mut self) {
        self.waiter.release();
    }
}
