// SPDX-License-Identifier: GPL-2.0

//! User fences: 64-bit words of a process's memory that a driver writes when work is done.
//!
//! Work that may wait for memory before it completes (a job served by device page faults, say)
//! must not signal a dma-fence, which the kernel's reclaim may wait for. Such work completes
//! through a user fence instead: the process names a word of its memory and a value, the driver
//! writes the value there, in one 64-bit store, when the work is done ([`UserFence::signal`]),
//! and the process polls the word or sleeps until it compares as it wants
//! ([`UserFenceQueue::wait`]). Nothing in the kernel waits for a user fence.
//!
//! A [`UserFenceQueue`] wakes its waiters whenever a fence signalled through it is written: a
//! driver keeps one per device.

use crate::{
    bindings,
    error::to_result,
    mm::{Mm, MmWithUser},
    prelude::*,
    sync::wait_queue::{Timeout, WaitQueue},
    time::Ktime,
    types::ARef,
};
use core::sync::atomic::{AtomicU64, Ordering};

/// How [`UserFenceQueue::wait`] compares the fence, masked, with the value, masked (unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Greater than the value.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than the value.
    Lt,
    /// Less than or equal.
    Le,
}

impl Compare {
    fn holds(self, word: u64, value: u64) -> bool {
        match self {
            Compare::Eq => word == value,
            Compare::Ne => word != value,
            Compare::Gt => word > value,
            Compare::Ge => word >= value,
            Compare::Lt => word < value,
            Compare::Le => word <= value,
        }
    }
}

/// Checks that `addr` is an 8-byte aligned user address with 8 bytes of user address space.
fn user_word(addr: u64) -> Result<usize> {
    let addr = usize::try_from(addr).map_err(|_| EINVAL)?;
    if addr % 8 != 0 {
        return Err(EINVAL);
    }
    // SAFETY: FFI call without requirements: it only compares the range with the limit.
    if !unsafe { bindings::access_ok_user(addr as *const _, 8) } {
        return Err(EFAULT);
    }
    Ok(addr)
}

/// Reads the 64-bit word at user address `addr` of the current process, in one load.
fn read_word(addr: usize) -> Result<u64> {
    let mut word = 0u64;
    // SAFETY: `word` is valid for writes; the user address is checked by `get_user` itself.
    to_result(unsafe { bindings::get_user_u64(&mut word, addr as *const u64) })?;
    Ok(word)
}

/// The fences a driver signals, and the tasks that wait for them.
///
/// # Examples
///
/// ```
/// use kernel::{
///     bindings, kunit,
///     mm::user_fence::{Compare, UserFence, UserFenceQueue},
///     new_user_fence_queue, prelude::*,
/// };
///
/// let queue = KBox::pin_init(new_user_fence_queue!(), GFP_KERNEL)?;
/// // A word of a process's memory; here, of a mapping made for the test.
/// let addr = kunit::vm_mmap(4096, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// let fence = UserFence::new(addr as u64, 7, None)?;
/// let mut left = 1_000_000;
/// let timed_out = Error::from_errno(-(kernel::bindings::ETIME as i32));
/// assert!(queue.wait(addr as u64, 7, !0, Compare::Eq, &mut left) == Err(timed_out));
/// fence.signal(Ok(()), &queue);
/// let mut left = -1;
/// assert!(queue.wait(addr as u64, 5, !0, Compare::Gt, &mut left).is_ok());
/// # Ok::<(), Error>(())
/// ```
///
/// A kernel thread, a workqueue's here, writes a fence through the address space of the process
/// that asked for it, the error word first:
///
/// ```
/// use kernel::{
///     bindings, kunit,
///     mm::user_fence::{Compare, UserFence, UserFenceQueue},
///     new_user_fence_queue, prelude::*,
///     sync::Arc,
///     uaccess::UserSlice,
///     workqueue,
/// };
///
/// let queue = Arc::pin_init(new_user_fence_queue!(), GFP_KERNEL)?;
/// let addr = kunit::vm_mmap(4096, bindings::PROT_READ | bindings::PROT_WRITE)?;
/// let fence = UserFence::new(addr as u64, 9, Some(addr as u64 + 8))?;
/// let q = queue.clone();
/// workqueue::system().try_spawn(GFP_KERNEL, move || fence.signal(Err(EIO), &q))?;
/// let mut left = -1;
/// assert!(queue.wait(addr as u64, 9, !0, Compare::Eq, &mut left).is_ok());
/// let error: i64 = UserSlice::new(addr + 8, 8).reader().read()?;
/// assert_eq!(error, EIO.to_errno().into());
/// # Ok::<(), Error>(())
/// ```
#[pin_data]
pub struct UserFenceQueue {
    #[pin]
    wq: WaitQueue,
    /// Bumped after every write of a fence, before the waiters are woken.
    written: AtomicU64,
}

/// Creates a [`UserFenceQueue`] initialiser.
#[macro_export]
macro_rules! new_user_fence_queue {
    () => {
        $crate::mm::user_fence::UserFenceQueue::new($crate::new_wait_queue!("user_fence"))
    };
}
pub use new_user_fence_queue;

impl UserFenceQueue {
    /// Creates a queue waiting on `wq`. Use [`new_user_fence_queue!`].
    pub fn new(wq: impl PinInit<WaitQueue>) -> impl PinInit<Self> {
        pin_init!(Self {
            wq <- wq,
            written: AtomicU64::new(0),
        })
    }

    /// Wakes the waiters: a fence was written.
    fn written(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
        self.wq.wake_all();
    }

    /// Waits until the word at `addr` of the current process, masked with `mask`, compares with
    /// `value & mask` as `op` says, or `timeout_ns` nanoseconds pass (a negative one: without a
    /// limit). The word is read first, then again each time a fence of this queue is written.
    /// Interruptible: on a signal, `timeout_ns` is set to what is left of it.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a misaligned address, `EFAULT` when the word cannot be read, `ETIME` when the
    /// time ran out, `ERESTARTSYS` on a signal.
    pub fn wait(
        &self,
        addr: u64,
        value: u64,
        mask: u64,
        op: Compare,
        timeout_ns: &mut i64,
    ) -> Result {
        let addr = user_word(addr)?;
        let start = Ktime::ktime_get().to_ns();
        let budget = *timeout_ns;
        let result = loop {
            // Read the count before the word: a write after the read bumps it.
            let seen = self.written.load(Ordering::SeqCst);
            if op.holds(read_word(addr)? & mask, value & mask) {
                break Ok(());
            }
            let timeout = if budget < 0 {
                Timeout::Never
            } else {
                let left = budget - (Ktime::ktime_get().to_ns() - start);
                if left <= 0 {
                    break Err(Error::from_errno(-(bindings::ETIME as i32)));
                }
                // SAFETY: FFI call without requirements.
                let jiffies = unsafe { bindings::nsecs_to_jiffies(left as u64) };
                let jiffies =
                    crate::ffi::c_long::try_from(jiffies).unwrap_or(crate::ffi::c_long::MAX);
                Timeout::Jiffies(jiffies.max(1))
            };
            // The count is atomic: a condition that never sleeps.
            match self.wq.wait_until(
                || self.written.load(Ordering::SeqCst) != seen,
                timeout,
                true,
            ) {
                Ok(_) => continue,
                Err(e) => break Err(e),
            }
        };
        if budget >= 0 {
            let left = budget - (Ktime::ktime_get().to_ns() - start);
            *timeout_ns = left.max(0);
        }
        result
    }
}

/// A user fence to write: a value, and optionally the work's error, at addresses of the
/// process that asked for it.
///
/// # Invariants
///
/// `addr` and `error_addr` (if not zero) are 8-byte aligned user addresses.
pub struct UserFence {
    mm: ARef<Mm>,
    addr: usize,
    value: u64,
    error_addr: usize,
}

impl UserFence {
    /// A fence of the current process: [`UserFence::signal`] writes `value` at `addr`, after
    /// writing the work's error (0 or a negative errno, as an `i64`) at `error_addr` if given.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a misaligned address or a task without an address space, `EFAULT` for one
    /// outside the user address space.
    pub fn new(addr: u64, value: u64, error_addr: Option<u64>) -> Result<Self> {
        let addr = user_word(addr)?;
        let error_addr = match error_addr {
            Some(e) => user_word(e)?,
            None => 0,
        };
        Ok(Self {
            mm: Mm::current().ok_or(EINVAL)?,
            addr,
            value,
            error_addr,
        })
    }

    /// Writes the fence, and the error of `result` first, then wakes the waiters of `queue`.
    ///
    /// Runs in the fence's process, or in a kernel thread (a workqueue's, say), which borrows
    /// the process's address space for the writes; elsewhere, and when the process has exited
    /// or the words are no longer writable, nothing is written. May fault pages in, so it may
    /// sleep and allocate: never call it on a dma-fence's signalling path.
    pub fn signal(self, result: Result, queue: &UserFenceQueue) {
        let Some(mm) = self.mm.mmget_not_zero() else {
            return;
        };
        let write = || {
            if self.error_addr != 0 {
                let err = match result {
                    Ok(()) => 0i64,
                    Err(e) => i64::from(e.to_errno()),
                };
                // SAFETY: The address is a user address; `put_user` checks it may be written.
                if unsafe { bindings::put_user_u64(err as u64, self.error_addr as *mut u64) } != 0 {
                    return;
                }
            }
            // SAFETY: As above.
            unsafe { bindings::put_user_u64(self.value, self.addr as *mut u64) };
        };
        let written = if mm.is_current() {
            write();
            true
        } else {
            // `Err`: neither the fence's process nor a kernel thread free to borrow its address
            // space.
            mm.with_kthread_use(write).is_ok()
        };
        // The process may have exited meanwhile, leaving this the address space's last user:
        // its teardown (`exit_mmap()`, and the release of its notifiers, which may wait for
        // work queued behind the caller) then runs on a system worker, not in the caller.
        MmWithUser::put_async(mm);
        if written {
            queue.written();
        }
    }
}
