// SPDX-License-Identifier: GPL-2.0

//! Wait queues whose wakers need no lock: for conditions set from any context.
//!
//! [`CondVar`](super::CondVar) pairs a wait queue with a lock that the waker takes, so that a
//! wake-up cannot slip between the waiter's look at the condition and its sleep. Code that sets a
//! condition where no sleeping lock may be taken (a dma-fence callback runs under the fence's
//! spinlock, possibly in an interrupt) uses a [`WaitQueue`] instead: the waiter marks itself
//! sleeping before it looks at the condition (as C's `wait_event()` does), so a waker needs only
//! to make the condition true and then call [`WaitQueue::wake_all`].
//!
//! C header: [`include/linux/wait.h`](srctree/include/linux/wait.h)

use crate::{bindings, ffi::c_long, prelude::*, str::CStr, sync::LockClassKey, types::Opaque};
use core::marker::PhantomPinned;

/// Creates a [`WaitQueue`] initialiser whose lock has a lockdep class of its own.
#[macro_export]
macro_rules! new_wait_queue {
    ($($name:literal)?) => {
        $crate::sync::wait_queue::WaitQueue::new(
            $crate::optional_name!($($name)?),
            $crate::static_lock_class!(),
        )
    };
}
pub use new_wait_queue;

/// How long [`WaitQueue::wait_until`] waits at most, in jiffies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// As long as it takes.
    Never,
    /// At most this many jiffies.
    Jiffies(c_long),
}

/// A wait queue (`struct wait_queue_head`).
///
/// # Examples
///
/// ```
/// use core::sync::atomic::{AtomicBool, Ordering};
/// use kernel::{new_wait_queue, prelude::*, sync::wait_queue::{Timeout, WaitQueue}};
///
/// let wq = KBox::pin_init(new_wait_queue!("doc"), GFP_KERNEL)?;
/// let ready = AtomicBool::new(false);
/// // Not ready: the wait runs out of time.
/// assert!(wq.wait_until(|| ready.load(Ordering::Acquire), Timeout::Jiffies(1), false) == Ok(false));
/// // A waker makes the condition true, then wakes the queue, from any context.
/// ready.store(true, Ordering::Release);
/// wq.wake_all();
/// assert!(wq.wait_until(|| ready.load(Ordering::Acquire), Timeout::Never, true) == Ok(true));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `wq` is an initialised wait queue head.
#[pin_data]
pub struct WaitQueue {
    #[pin]
    wq: Opaque<bindings::wait_queue_head>,
    // Waiters link themselves into the queue by its address.
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The wait queue is protected by its own spinlock, taken with interrupts off: it may be
// used from any thread and any context.
unsafe impl Send for WaitQueue {}
// SAFETY: See above.
unsafe impl Sync for WaitQueue {}

impl WaitQueue {
    /// Creates a wait queue. Use [`new_wait_queue!`].
    pub fn new(name: &'static CStr, key: &'static LockClassKey) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes; the name and the key live forever.
            wq <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_waitqueue_head(slot, name.as_char_ptr(), key.as_ptr())
            }),
            _pin: PhantomPinned,
        })
    }

    /// Wakes every task waiting in [`WaitQueue::wait_until`], which then looks at its condition
    /// again. Make the condition true before calling this. Never sleeps: callable from any
    /// context, interrupts included.
    pub fn wake_all(&self) {
        // SAFETY: The wait queue is initialised (type invariant).
        unsafe {
            bindings::__wake_up(
                self.wq.get(),
                bindings::TASK_NORMAL,
                0,
                core::ptr::null_mut(),
            )
        };
    }

    /// Sleeps until `cond` returns `true`, `timeout` passes, or, if `interruptible`, a signal is
    /// pending. Returns `Ok(true)` when the condition held, `Ok(false)` when the time ran out.
    ///
    /// `cond` runs with the task already marked sleeping, so that no wake-up is missed: it must
    /// not sleep (no lock that sleeps, no allocation, no access to user memory); reading atomics
    /// is what it is for.
    ///
    /// # Errors
    ///
    /// `ERESTARTSYS` when `interruptible` and a signal is pending.
    pub fn wait_until(
        &self,
        mut cond: impl FnMut() -> bool,
        timeout: Timeout,
        interruptible: bool,
    ) -> Result<bool> {
        let state = if interruptible {
            bindings::TASK_INTERRUPTIBLE
        } else {
            bindings::TASK_UNINTERRUPTIBLE
        };
        let mut left = match timeout {
            Timeout::Never => c_long::MAX,
            Timeout::Jiffies(j) => j.max(0),
        };
        let entry = Opaque::<bindings::wait_queue_entry>::uninit();
        // SAFETY: `entry` is valid for writes and stays on this stack frame until `finish_wait`
        // below has unlinked it.
        unsafe { bindings::init_wait_entry(entry.get(), 0) };
        let result = loop {
            // SAFETY: Both are initialised; the entry is unlinked by `finish_wait` before it goes.
            let ret =
                unsafe { bindings::prepare_to_wait_event(self.wq.get(), entry.get(), state as _) };
            if cond() {
                break Ok(true);
            }
            if ret != 0 {
                break Err(ERESTARTSYS);
            }
            if left == 0 {
                break Ok(false);
            }
            // SAFETY: The task is marked sleeping and linked into the queue; `schedule_timeout`
            // returns when woken, on a signal (interruptible), or when the time ran out.
            left = unsafe { bindings::schedule_timeout(left) };
        };
        // SAFETY: The entry was linked by `prepare_to_wait_event` (or not at all), and the task's
        // state is set back to running.
        unsafe { bindings::finish_wait(self.wq.get(), entry.get()) };
        result
    }
}
