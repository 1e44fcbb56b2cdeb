// SPDX-License-Identifier: GPL-2.0

//! Workqueues of the driver's own: a VM's job queue, which runs one item at a time, in order, and
//! the device's queue that releases stale pins.
//!
//! The kernel crate of 6.12 only reaches the system workqueues, which run items concurrently,
//! cannot be drained on their own and may not make progress under memory pressure; a VM needs
//! its jobs in submission order, and a way to wait for all of them before it goes, and both
//! queues must run while the system reclaims memory: reclaim waits for job fences (through
//! invalidations), and for pins to be released.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)

use core::ptr::NonNull;
use kernel::{bindings, prelude::*, str::CStr, workqueue::Queue};

/// A workqueue that makes progress under memory pressure (`WQ_MEM_RECLAIM`), destroyed (after
/// running what is queued) on drop.
///
/// # Invariants
///
/// `wq` was made by `alloc_workqueue` and is destroyed only by `drop`.
pub(crate) struct OwnedQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: Workqueues may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: Queueing and draining may happen concurrently from any thread.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// A queue that runs one item at a time, in the order they were queued.
    pub(crate) fn ordered(name: &'static CStr) -> Result<Self> {
        Self::alloc(name, bindings::wq_flags___WQ_ORDERED, 1)
    }

    /// A queue that runs items concurrently.
    pub(crate) fn unordered(name: &'static CStr) -> Result<Self> {
        Self::alloc(name, 0, 0)
    }

    fn alloc(name: &'static CStr, flags: u32, max_active: i32) -> Result<Self> {
        let flags = flags | bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags_WQ_MEM_RECLAIM;
        // SAFETY: `name` has no conversions, so no further arguments are read.
        let wq = unsafe { bindings::alloc_workqueue(name.as_char_ptr(), flags, max_active) };
        // INVARIANT: `wq` was just allocated.
        Ok(Self {
            wq: NonNull::new(wq).ok_or(ENOMEM)?,
        })
    }

    /// The queue, to enqueue work items on.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: By the type invariant the workqueue is live while `self` is.
        unsafe { Queue::from_raw(self.wq.as_ptr()) }
    }

    /// Waits until every item queued, and every item they queue, has run.
    pub(crate) fn drain(&self) {
        // SAFETY: By the type invariant the workqueue is live.
        unsafe { bindings::drain_workqueue(self.wq.as_ptr()) };
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the workqueue is live and destroyed only here; destroying
        // it drains it first.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}
