// SPDX-License-Identifier: GPL-2.0

//! A workqueue of the driver's own that runs one item at a time, in order: a VM's job queue.
//!
//! The kernel crate of 6.12 only reaches the system workqueues, which run items concurrently and
//! cannot be drained on their own; a VM needs its jobs in submission order, and a way to wait for
//! all of them before it goes.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)

use core::ptr::NonNull;
use kernel::{bindings, c_str, prelude::*, workqueue::Queue};

/// An ordered workqueue, destroyed (after running what is queued) on drop.
///
/// # Invariants
///
/// `wq` was made by `alloc_workqueue` and is destroyed only by `drop`.
pub(crate) struct OrderedQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: Workqueues may be used and destroyed from any thread.
unsafe impl Send for OrderedQueue {}
// SAFETY: Queueing and draining may happen concurrently from any thread.
unsafe impl Sync for OrderedQueue {}

impl OrderedQueue {
    /// Allocates the queue. It may be needed to make progress under memory pressure (fences of
    /// its jobs are waited for by reclaim, through invalidations), hence `WQ_MEM_RECLAIM`.
    pub(crate) fn new() -> Result<Self> {
        let flags = bindings::wq_flags_WQ_UNBOUND
            | bindings::wq_flags___WQ_ORDERED
            | bindings::wq_flags_WQ_MEM_RECLAIM;
        // SAFETY: The format has no conversions, so no further arguments are read.
        let wq = unsafe { bindings::alloc_workqueue(c_str!("hmmgpu-vm").as_char_ptr(), flags, 1) };
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

impl Drop for OrderedQueue {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the workqueue is live and destroyed only here; destroying
        // it drains it first.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}
