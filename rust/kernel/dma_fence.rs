// SPDX-License-Identifier: GPL-2.0

//! DMA fences: the completion of work a device does, shared with other drivers and userspace.
//!
//! A [`FenceContext`] is a timeline: the fences made on it ([`FenceContext::new_fence`]) get
//! increasing sequence numbers and must signal in that order. Making a fence gives a
//! [`FenceSignaller`], the producer's end, which signals exactly once: when told to, or, if it is
//! dropped first, with `ECANCELED`, so that no waiter is left waiting forever. Everyone else holds
//! a [`Fence`] reference, which may name any `struct dma_fence`, ours or another driver's.
//!
//! Code between a fence's publication and its signalling must not allocate memory or wait for
//! anything that could wait for the fence; [`SignallingSection`] tells lockdep where that code
//! is, so that it reports violations.
//!
//! C header: [`include/linux/dma-fence.h`](srctree/include/linux/dma-fence.h)

use crate::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KBox, KVec},
    bindings,
    error::to_result,
    prelude::*,
    str::CStr,
    sync::{wait_queue::WaitQueue, Arc, LockClassKey},
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
};

/// Creates a [`FenceContext`] initialiser.
///
/// # Examples
///
/// ```
/// use kernel::{c_str, new_fence_context, prelude::*, sync::Arc};
///
/// let ctx = Arc::pin_init(new_fence_context!(c_str!("doc"), c_str!("ring")), GFP_KERNEL)?;
/// let job = ctx.new_fence()?;
/// assert!(!job.fence().is_signaled());
/// job.signal();
/// # Ok::<(), Error>(())
/// ```
#[macro_export]
macro_rules! new_fence_context {
    ($driver:expr, $timeline:expr $(,)?) => {
        $crate::dma_fence::FenceContext::new($driver, $timeline)
    };
}
pub use new_fence_context;

/// A timeline of fences.
///
/// # Examples
///
/// ```
/// use kernel::{c_str, new_fence_context, prelude::*, sync::Arc};
///
/// let ctx = Arc::pin_init(new_fence_context!(c_str!("doc"), c_str!("ring")), GFP_KERNEL)?;
/// let other = Arc::pin_init(new_fence_context!(c_str!("doc"), c_str!("copy")), GFP_KERNEL)?;
/// assert!(ctx.context() != other.context());
/// // Fences of a timeline get increasing sequence numbers, and signal in that order.
/// let first = ctx.new_fence()?;
/// let second = ctx.new_fence()?;
/// assert_eq!(first.fence().seqno(), (ctx.context(), 1));
/// assert_eq!(second.fence().seqno(), (ctx.context(), 2));
/// first.signal();
/// second.signal();
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// - `lock` is an initialised spinlock; `context` was allocated by `dma_fence_context_alloc`.
/// - `names.driver` and `names.timeline` hold NUL-terminated strings.
///
/// A fence may outlive the module that made it (a sync_file keeps it after the module is
/// unloaded), and keeps its context: nothing a fence reaches is the module's. The names are
/// copies, the lock's lockdep class and name are the kernel crate's (one class for the locks of
/// every context, as the DRM scheduler's fences share one), and the fence operations are the
/// kernel crate's.
#[pin_data]
pub struct FenceContext {
    names: Names,
    #[pin]
    lock: Opaque<bindings::spinlock_t>,
    context: u64,
    seqno: AtomicU64,
}

/// The names of a [`FenceContext`]'s fences, copied.
struct Names {
    driver: KVec<u8>,
    timeline: KVec<u8>,
}

/// The lockdep class of the locks of every [`FenceContext`]: built into the kernel, so that it
/// outlives every fence, whichever module made it.
static LOCK_CLASS: LockClassKey =
    // SAFETY: lockdep expects uninitialised memory in a statically allocated `lock_class_key`.
    unsafe { core::mem::MaybeUninit::uninit().assume_init() };

/// A copy of `name`, NUL included.
fn copy_name(name: &CStr) -> Result<KVec<u8>> {
    let mut copy = KVec::new();
    copy.extend_from_slice(name.as_bytes_with_nul(), GFP_KERNEL_ACCOUNT)?;
    Ok(copy)
}

// SAFETY: The spinlock and the atomic counter may be used from any thread.
unsafe impl Send for FenceContext {}
// SAFETY: See above.
unsafe impl Sync for FenceContext {}

impl FenceContext {
    /// Creates a timeline whose fences name `driver_name` and `timeline_name` (copied). Use
    /// [`new_fence_context!`].
    pub fn new(driver_name: &CStr, timeline_name: &CStr) -> impl PinInit<Self, Error> {
        let names = copy_name(driver_name).and_then(|driver| {
            Ok(Names {
                driver,
                timeline: copy_name(timeline_name)?,
            })
        });
        try_pin_init!(Self {
            names: names?,
            // SAFETY: `slot` is valid for writes; the name and the key are statics of the kernel
            // crate, which live forever.
            lock <- Opaque::ffi_init(|slot: *mut bindings::spinlock_t| unsafe {
                bindings::__spin_lock_init(
                    slot,
                    crate::c_str!("FenceContext::lock").as_char_ptr(),
                    LOCK_CLASS.as_ptr(),
                )
            }),
            // SAFETY: FFI call without requirements.
            context: unsafe { bindings::dma_fence_context_alloc(1) },
            seqno: AtomicU64::new(0),
        }? Error)
    }

    /// The context number of the timeline.
    pub fn context(&self) -> u64 {
        self.context
    }

    /// Makes the next fence of the timeline, unsignalled. It must signal after the fences made
    /// before it. The fence is charged to the caller's memory cgroup.
    pub fn new_fence(self: &Arc<Self>) -> Result<FenceSignaller> {
        let seqno = self.seqno.fetch_add(1, Ordering::Relaxed) + 1;
        let inner = KBox::new(
            FenceInner {
                fence: Opaque::uninit(),
                ctx: self.clone(),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        let inner = KBox::into_raw(inner);
        // SAFETY: `inner` is a valid allocation whose `fence` is at its start (`repr(C)`), as
        // `dma_fence_free` expects when it frees it; `OPS` and the context's lock outlive the
        // fence, which holds the context.
        unsafe {
            let fence = Opaque::raw_get(&raw const (*inner).fence);
            bindings::dma_fence_init(fence, &FENCE_OPS, self.lock.get(), self.context, seqno);
            // INVARIANT: The initial reference is the signaller's.
            Ok(FenceSignaller(ARef::from_raw(NonNull::new_unchecked(
                fence.cast::<Fence>(),
            ))))
        }
    }
}

/// A fence made by a [`FenceContext`], with the context it needs kept alive.
#[repr(C)]
struct FenceInner {
    fence: Opaque<bindings::dma_fence>,
    ctx: Arc<FenceContext>,
}

static FENCE_OPS: bindings::dma_fence_ops = bindings::dma_fence_ops {
    get_driver_name: Some(get_driver_name),
    get_timeline_name: Some(get_timeline_name),
    release: Some(release),
    // SAFETY: All-zeroes is a valid `dma_fence_ops`: `None` callbacks and `false`.
    ..unsafe { core::mem::zeroed() }
};

/// # Safety
///
/// `fence` must be the `fence` of a live [`FenceInner`].
unsafe fn inner<'a>(fence: *mut bindings::dma_fence) -> &'a FenceInner {
    // SAFETY: `FENCE_OPS` is only installed on fences that start a `FenceInner`.
    unsafe { &*fence.cast::<FenceInner>() }
}

/// `dma_fence_ops.get_driver_name`.
///
/// # Safety
///
/// `fence` must be a live fence made by a [`FenceContext`].
unsafe extern "C" fn get_driver_name(fence: *mut bindings::dma_fence) -> *const crate::ffi::c_char {
    // SAFETY: The caller promises a live fence of ours.
    // By the invariant of `FenceContext` the name is NUL-terminated; the context lives as long
    // as the fence.
    unsafe { inner(fence) }.ctx.names.driver.as_ptr().cast()
}

/// `dma_fence_ops.get_timeline_name`.
///
/// # Safety
///
/// `fence` must be a live fence made by a [`FenceContext`].
unsafe extern "C" fn get_timeline_name(
    fence: *mut bindings::dma_fence,
) -> *const crate::ffi::c_char {
    // SAFETY: The caller promises a live fence of ours.
    // By the invariant of `FenceContext` the name is NUL-terminated; the context lives as long
    // as the fence.
    unsafe { inner(fence) }.ctx.names.timeline.as_ptr().cast()
}

/// `dma_fence_ops.release`: the last reference is gone.
///
/// # Safety
///
/// `fence` must be a fence made by a [`FenceContext`] whose last reference was just dropped.
unsafe extern "C" fn release(fence: *mut bindings::dma_fence) {
    // SAFETY: The fence starts a `FenceInner`, unused from now on: drop the context it kept, then
    // free the allocation after an RCU grace period, as lockless readers of fences expect.
    unsafe {
        core::ptr::drop_in_place(&raw mut (*fence.cast::<FenceInner>()).ctx);
        bindings::dma_fence_free(fence);
    }
}

/// A reference-counted `struct dma_fence`, of any driver.
///
/// # Examples
///
/// ```
/// use kernel::{c_str, dma_fence::Fence, new_fence_context, prelude::*, sync::Arc, types::ARef};
///
/// let ctx = Arc::pin_init(new_fence_context!(c_str!("doc"), c_str!("ring")), GFP_KERNEL)?;
/// let signaller = ctx.new_fence()?;
/// let fence: ARef<Fence> = signaller.fence().into();
/// assert!(!fence.is_signaled());
/// assert!(fence.status() == Ok(false));
/// let timed_out = Error::from_errno(-(kernel::bindings::ETIMEDOUT as i32));
/// assert!(fence.wait(1).err() == Some(timed_out));
/// assert!(fence.wait_interruptible(1000) == Ok(false));
/// // SAFETY: `fence` is live; the new reference is another one.
/// let again = unsafe { Fence::from_raw(fence.as_raw()) };
/// signaller.signal();
/// assert!(again.is_signaled() && fence.status() == Ok(true));
/// assert!(fence.wait(1000).is_ok() && fence.wait_interruptible(0) == Ok(true));
/// fence.wait_uninterruptible();
/// # Ok::<(), Error>(())
/// ```
#[repr(transparent)]
pub struct Fence(Opaque<bindings::dma_fence>);

// SAFETY: Fences are reference counted by `dma_fence_get`/`dma_fence_put`, from any thread.
unsafe impl AlwaysRefCounted for Fence {
    fn inc_ref(&self) {
        // SAFETY: `self` is live.
        unsafe { bindings::dma_fence_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owned.
        unsafe { bindings::dma_fence_put(obj.as_ref().as_raw()) };
    }
}

// SAFETY: Fences are designed to be shared between threads.
unsafe impl Send for Fence {}
// SAFETY: Fences are designed to be shared between threads.
unsafe impl Sync for Fence {}

impl Fence {
    /// Takes a reference to `fence`.
    ///
    /// # Safety
    ///
    /// `fence` must be a live fence.
    pub unsafe fn from_raw(fence: *mut bindings::dma_fence) -> ARef<Fence> {
        // SAFETY: `Fence` wraps `dma_fence` transparently; `from` takes our own reference.
        ARef::from(unsafe { &*fence.cast::<Fence>() })
    }

    /// Takes over a reference to `fence` that the caller owns.
    ///
    /// # Safety
    ///
    /// `fence` must be a live fence, and the caller must own the reference it gives up.
    pub unsafe fn from_owned(fence: NonNull<bindings::dma_fence>) -> ARef<Fence> {
        // SAFETY: As above.
        unsafe { ARef::from_raw(fence.cast()) }
    }

    /// The C `struct dma_fence`.
    pub fn as_raw(&self) -> *mut bindings::dma_fence {
        self.0.get()
    }

    /// Whether the fence has signalled.
    pub fn is_signaled(&self) -> bool {
        // SAFETY: The fence is live.
        unsafe { bindings::dma_fence_is_signaled(self.as_raw()) }
    }

    /// The error the fence signalled with: `Ok(true)` when it signalled without one,
    /// `Ok(false)` when it has not signalled yet.
    pub fn status(&self) -> Result<bool> {
        // SAFETY: The fence is live.
        let status = unsafe { bindings::dma_fence_get_status(self.as_raw()) };
        if status < 0 {
            return Err(Error::from_errno(status));
        }
        Ok(status == 1)
    }

    /// As [`Fence::status`], but of the fence a timeline point holds when `self` is one (a
    /// `dma_fence_chain` node, which signals without its fence's error); of `self` otherwise.
    pub fn contained_status(&self) -> Result<bool> {
        // SAFETY: The fence is live; a chain node holds a reference to the fence it contains
        // for as long as it lives, and `self` keeps the node alive.
        let status = unsafe {
            bindings::dma_fence_get_status(bindings::dma_fence_chain_contained(self.as_raw()))
        };
        if status < 0 {
            return Err(Error::from_errno(status));
        }
        Ok(status == 1)
    }

    /// The fence's timeline and sequence number.
    pub fn seqno(&self) -> (u64, u64) {
        // SAFETY: Both are set at initialisation and constant afterwards.
        unsafe { ((*self.as_raw()).context, (*self.as_raw()).seqno) }
    }

    /// Waits until the fence signals, at most `timeout_ms` milliseconds, uninterruptibly.
    ///
    /// # Errors
    ///
    /// `ETIMEDOUT` when the time ran out.
    pub fn wait(&self, timeout_ms: u32) -> Result {
        let jiffies = crate::time::msecs_to_jiffies(timeout_ms);
        // SAFETY: The fence is live.
        let ret = unsafe { bindings::dma_fence_wait_timeout(self.as_raw(), false, jiffies as _) };
        match ret {
            0 => Err(Error::from_errno(-(bindings::ETIMEDOUT as i32))),
            r if r < 0 => to_result(r as i32),
            _ => Ok(()),
        }
    }

    /// Waits until the fence signals or `timeout_ns` nanoseconds pass, interruptibly. Returns
    /// whether the fence signalled.
    ///
    /// # Errors
    ///
    /// `ERESTARTSYS` when a signal interrupted the wait.
    pub fn wait_interruptible(&self, timeout_ns: u64) -> Result<bool> {
        // SAFETY: FFI call without requirements.
        let jiffies = unsafe { bindings::nsecs_to_jiffies(timeout_ns) };
        let jiffies = crate::ffi::c_long::try_from(jiffies).unwrap_or(crate::ffi::c_long::MAX);
        // SAFETY: The fence is live.
        let ret = unsafe { bindings::dma_fence_wait_timeout(self.as_raw(), true, jiffies) };
        if ret < 0 {
            return Err(Error::from_errno(ret as i32));
        }
        Ok(ret > 0 || self.is_signaled())
    }

    /// Waits until the fence signals, however long it takes, uninterruptibly: for code that
    /// must not go on while the work the fence stands for may still run, such as an invalidation
    /// callback.
    pub fn wait_uninterruptible(&self) {
        // SAFETY: The fence is live. Uninterruptible and without a time limit, the wait only
        // returns once the fence has signalled.
        unsafe { bindings::dma_fence_wait_timeout(self.as_raw(), false, crate::ffi::c_long::MAX) };
    }
}

/// The producer's end of an unsignalled fence: it signals the fence exactly once.
///
/// # Examples
///
/// ```
/// use kernel::{c_str, dma_fence::Fence, new_fence_context, prelude::*, sync::Arc, types::ARef};
///
/// let ctx = Arc::pin_init(new_fence_context!(c_str!("doc"), c_str!("ring")), GFP_KERNEL)?;
/// let failed = ctx.new_fence()?;
/// let fence: ARef<Fence> = failed.fence().into();
/// failed.signal_error(EIO);
/// assert!(fence.is_signaled() && fence.status() == Err(EIO));
///
/// // A signaller dropped before it signalled cancels its fence: no waiter waits forever.
/// let fence: ARef<Fence> = ctx.new_fence()?.fence().into();
/// assert!(fence.is_signaled());
/// let canceled = Error::from_errno(-(kernel::bindings::ECANCELED as i32));
/// assert!(fence.status() == Err(canceled));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// The fence was made by a [`FenceContext`] and has not been signalled through this value.
pub struct FenceSignaller(ARef<Fence>);

impl FenceSignaller {
    /// The fence, to publish to waiters.
    pub fn fence(&self) -> &Fence {
        &self.0
    }

    /// Signals the fence: the work it stands for is done.
    pub fn signal(self) {
        self.finish(None);
    }

    /// Signals the fence with an error: the work failed or was cancelled.
    pub fn signal_error(self, err: Error) {
        self.finish(Some(err));
    }

    fn finish(self, err: Option<Error>) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: We own the signaller; its reference is moved out once and `this` is not
        // dropped.
        let fence = unsafe { core::ptr::read(&this.0) };
        Self::signal_raw(&fence, err);
    }

    fn signal_raw(fence: &Fence, err: Option<Error>) {
        // SAFETY: The fence is live and, by the type invariant, not yet signalled by us.
        unsafe {
            if let Some(err) = err {
                bindings::dma_fence_set_error(fence.as_raw(), err.to_errno());
            }
            bindings::dma_fence_signal(fence.as_raw());
        }
    }
}

impl Drop for FenceSignaller {
    fn drop(&mut self) {
        // Never leave a waiter waiting for a fence nobody will signal.
        Self::signal_raw(&self.0, Some(canceled()));
    }
}

/// `ECANCELED`: the error of a fence whose work will never be done.
fn canceled() -> Error {
    Error::from_errno(-(bindings::ECANCELED as i32))
}

/// The fences some work waits for, each with a callback that counts it down: the work learns
/// that they have all signalled without polling, from a [`WaitQueue`] the last one wakes.
///
/// Dropping it removes the callbacks still pending.
///
/// # Examples
///
/// ```
/// use kernel::{
///     c_str, dma_fence::{Dependencies, Fence}, new_fence_context, new_wait_queue, prelude::*,
///     sync::{wait_queue::{Timeout, WaitQueue}, Arc},
///     types::ARef,
/// };
///
/// let ctx = Arc::pin_init(new_fence_context!(c_str!("doc"), c_str!("ring")), GFP_KERNEL)?;
/// let wq = Arc::pin_init(new_wait_queue!("doc"), GFP_KERNEL)?;
/// let (first, second) = (ctx.new_fence()?, ctx.new_fence()?);
/// let mut fences = KVec::new();
/// fences.push(ARef::<Fence>::from(first.fence()), GFP_KERNEL)?;
/// fences.push(ARef::<Fence>::from(second.fence()), GFP_KERNEL)?;
/// let deps = Dependencies::new(fences, wq.clone())?;
/// assert!(!deps.signalled());
/// first.signal();
/// assert!(!deps.signalled());
/// second.signal_error(EIO);
/// // The last callback woke the queue: the wait returns at once.
/// assert!(wq.wait_until(|| deps.signalled(), Timeout::Never, false) == Ok(true));
/// assert!(deps.error() == Some(EIO));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// Every node's callback was added to its fence (or found it signalled) with the node's `shared`
/// pointing at `shared`; the nodes' buffer is never reallocated; `shared.pending` counts the
/// callbacks not yet run.
pub struct Dependencies {
    nodes: KVec<Dependency>,
    shared: Arc<Shared>,
}

/// What the callbacks of [`Dependencies`] reach.
struct Shared {
    pending: AtomicUsize,
    wake: Arc<WaitQueue>,
}

/// A fence of [`Dependencies`] and its callback.
#[repr(C)]
struct Dependency {
    // First, so that the callback finds the node from the `dma_fence_cb` it is given.
    cb: Opaque<bindings::dma_fence_cb>,
    fence: ARef<Fence>,
    shared: *const Shared,
}

// SAFETY: The nodes are only touched by the callbacks, under their fence's lock, and by `drop`,
// after it removed the callbacks; the rest is `Send` and `Sync`.
unsafe impl Send for Dependencies {}
// SAFETY: See above; `&self` only reads atomics and fences.
unsafe impl Sync for Dependencies {}

impl Dependencies {
    /// Waits, through callbacks, for `fences`; `wake` is woken once all have signalled. The
    /// callbacks are charged to the caller's memory cgroup.
    pub fn new(fences: KVec<ARef<Fence>>, wake: Arc<WaitQueue>) -> Result<Self> {
        let shared = Arc::new(
            Shared {
                // One more than the fences, taken away once every callback is added: the wake-up
                // happens once, after that.
                pending: AtomicUsize::new(fences.len() + 1),
                wake,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        let mut nodes = KVec::with_capacity(fences.len(), GFP_KERNEL_ACCOUNT)?;
        for fence in fences {
            // Room was made above: this does not allocate.
            nodes.push(
                Dependency {
                    cb: Opaque::uninit(),
                    fence,
                    shared: &*shared as *const Shared,
                },
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        // INVARIANT: The callbacks are added once the nodes are in their final place.
        let this = Self { nodes, shared };
        for node in this.nodes.iter() {
            // SAFETY: The fence is live; the callback node stays where it is until `drop`
            // removes it from the fence, and `shared` lives as long.
            let ret = unsafe {
                bindings::dma_fence_add_callback(
                    node.fence.as_raw(),
                    node.cb.get(),
                    Some(dependency_signalled),
                )
            };
            if ret != 0 {
                // Already signalled: no callback will run for it.
                this.shared.pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
        this.shared.arrived();
        Ok(this)
    }

    /// Whether every fence has signalled.
    pub fn signalled(&self) -> bool {
        self.shared.pending.load(Ordering::Acquire) == 0
    }

    /// The error of the first fence that signalled with one, if any; for a timeline point, the
    /// error of the fence it holds ([`Fence::contained_status`]).
    pub fn error(&self) -> Option<Error> {
        self.nodes
            .iter()
            .find_map(|n| n.fence.contained_status().err())
    }
}

impl Shared {
    /// One fewer to wait for; wakes the waiter after the last.
    fn arrived(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.wake.wake_all();
        }
    }
}

impl Drop for Dependencies {
    fn drop(&mut self) {
        for node in self.nodes.iter() {
            // SAFETY: The callback was added to this fence, or found it signalled; removing it
            // takes the fence's lock, so once this returns the callback is not running and will
            // not run. Removing one that ran, or was never added, does nothing.
            unsafe { bindings::dma_fence_remove_callback(node.fence.as_raw(), node.cb.get()) };
        }
    }
}

/// `dma_fence_func_t` of a [`Dependency`]: its fence signalled.
///
/// # Safety
///
/// `cb` must be the callback of a [`Dependency`] of live [`Dependencies`].
unsafe extern "C" fn dependency_signalled(
    _fence: *mut bindings::dma_fence,
    cb: *mut bindings::dma_fence_cb,
) {
    // SAFETY: `cb` starts a `Dependency` (`repr(C)`), whose `shared` is live: `drop` removes the
    // callbacks before the `Arc` goes.
    let shared = unsafe { &*(*cb.cast::<Dependency>()).shared };
    shared.arrived();
}

/// A stretch of code on a fence's signalling path, for lockdep (`dma_fence_begin_signalling`).
///
/// Between publishing a fence and signalling it, code must not allocate memory (reclaim may wait
/// for the fence) nor take locks held while waiting for fences; with the section marked, lockdep
/// reports such dependencies when they first happen.
///
/// # Examples
///
/// ```
/// use kernel::{
///     c_str,
///     dma_fence::{Fence, SignallingSection},
///     new_fence_context,
///     prelude::*,
///     sync::Arc,
///     types::ARef,
/// };
///
/// let ctx = Arc::pin_init(new_fence_context!(c_str!("doc"), c_str!("ring")), GFP_KERNEL)?;
/// // Allocate before the fence is published...
/// let signaller = ctx.new_fence()?;
/// let fence: ARef<Fence> = signaller.fence().into();
/// {
///     // ... and only signal in the section: no allocation, no lock held while waiting.
///     let _section = SignallingSection::begin();
///     signaller.signal();
/// }
/// assert!(fence.is_signaled());
/// # Ok::<(), Error>(())
/// ```
#[must_use = "the section ends when the value is dropped"]
pub struct SignallingSection {
    cookie: bool,
    // The section ends on the thread that began it.
    _not_send: PhantomData<*mut ()>,
}

impl SignallingSection {
    /// Begins a signalling section.
    pub fn begin() -> Self {
        Self {
            // SAFETY: FFI call without requirements.
            cookie: unsafe { bindings::dma_fence_signalling_begin() },
            _not_send: PhantomData,
        }
    }
}

impl Drop for SignallingSection {
    fn drop(&mut self) {
        // SAFETY: `cookie` came from the matching begin, on this thread.
        unsafe { bindings::dma_fence_signalling_end(self.cookie) };
    }
}

#[cfg(CONFIG_RUST_DMA_FENCE_KUNIT_TEST)]
#[crate::kunit::kunit_tests(rust_dma_fence)]
mod tests {
    use super::*;

    fn context() -> Result<Arc<FenceContext>> {
        Arc::pin_init(
            new_fence_context!(
                crate::c_str!("rust_test"),
                crate::c_str!("rust_test_timeline")
            ),
            GFP_KERNEL,
        )
    }

    #[test]
    fn fences_signal_once() -> Result {
        let ctx = context()?;
        let signaller = ctx.new_fence()?;
        let fence: ARef<Fence> = signaller.fence().into();
        assert!(!fence.is_signaled());
        assert!(fence.status() == Ok(false));
        assert!(fence.wait(1).err() == Some(Error::from_errno(-(bindings::ETIMEDOUT as i32))));
        signaller.signal();
        assert!(fence.is_signaled());
        assert!(fence.status() == Ok(true));
        assert!(fence.wait(1000) == Ok(()));
        Ok(())
    }

    #[test]
    fn errors_reach_waiters() -> Result {
        let ctx = context()?;
        let signaller = ctx.new_fence()?;
        let fence: ARef<Fence> = signaller.fence().into();
        signaller.signal_error(EFAULT);
        assert!(fence.status() == Err(EFAULT));
        Ok(())
    }

    #[test]
    fn dropped_signallers_cancel() -> Result {
        let ctx = context()?;
        let fence: ARef<Fence> = ctx.new_fence()?.fence().into();
        assert!(fence.is_signaled());
        assert!(fence.status() == Err(canceled()));
        Ok(())
    }

    #[test]
    fn sequence_numbers_grow_on_a_timeline() -> Result {
        let (a, b) = (context()?, context()?);
        assert!(a.context() != b.context());
        let first = a.new_fence()?;
        let second = a.new_fence()?;
        let (c1, s1) = first.fence().seqno();
        let (c2, s2) = second.fence().seqno();
        assert_eq!(c1, a.context());
        assert_eq!(c2, a.context());
        assert!(s2 > s1);
        first.signal();
        second.signal();
        Ok(())
    }

    fn dependencies_on(fence: &Fence, wq: &Arc<WaitQueue>) -> Result<Dependencies> {
        let mut fences = KVec::new();
        fences.push(ARef::from(fence), GFP_KERNEL)?;
        Dependencies::new(fences, wq.clone())
    }

    #[test]
    fn dependencies_dropped_first_leave_no_callback() -> Result {
        let ctx = context()?;
        let wq = Arc::pin_init(crate::new_wait_queue!("rust_test"), GFP_KERNEL)?;
        let signaller = ctx.new_fence()?;
        let deps = dependencies_on(signaller.fence(), &wq)?;
        assert!(!deps.signalled());
        // The callback goes with the value: signalling later touches nothing freed.
        drop(deps);
        signaller.signal();
        Ok(())
    }

    #[test]
    fn dependencies_on_signalled_fences_are_met_at_once() -> Result {
        let ctx = context()?;
        let wq = Arc::pin_init(crate::new_wait_queue!("rust_test"), GFP_KERNEL)?;
        let signaller = ctx.new_fence()?;
        let fence: ARef<Fence> = signaller.fence().into();
        signaller.signal_error(EIO);
        let deps = dependencies_on(&fence, &wq)?;
        assert!(deps.signalled());
        assert!(deps.error() == Some(EIO));
        let none = Dependencies::new(KVec::new(), wq)?;
        assert!(none.signalled() && none.error().is_none());
        Ok(())
    }

    #[test]
    fn names_are_copies() -> Result {
        let mut buf = KVec::new();
        buf.extend_from_slice(b"scratch\0", GFP_KERNEL)?;
        let name = CStr::from_bytes_with_nul(&buf)?;
        let ctx = Arc::pin_init(FenceContext::new(name, name), GFP_KERNEL)?;
        let signaller = ctx.new_fence()?;
        let raw = signaller.fence().as_raw();
        // The caller's strings may go once the context is made: overwrite them, then free them.
        buf[..7].copy_from_slice(b"changed");
        drop(buf);
        // SAFETY: The fence is live; its operations return NUL-terminated strings that live as
        // long as it does.
        let (driver, timeline) = unsafe {
            let ops = &*(*raw).ops;
            (
                CStr::from_char_ptr((ops.get_driver_name.ok_or(EINVAL)?)(raw)),
                CStr::from_char_ptr((ops.get_timeline_name.ok_or(EINVAL)?)(raw)),
            )
        };
        assert_eq!(driver.as_bytes(), b"scratch");
        assert_eq!(timeline.as_bytes(), b"scratch");
        signaller.signal();
        Ok(())
    }

    #[test]
    fn fences_outlive_their_signaller_and_context() -> Result {
        let fence: ARef<Fence> = {
            let ctx = context()?;
            let signaller = ctx.new_fence()?;
            let fence = signaller.fence().into();
            signaller.signal();
            fence
        };
        // The fence keeps its timeline alive for its names.
        assert!(fence.is_signaled());
        Ok(())
    }
}
