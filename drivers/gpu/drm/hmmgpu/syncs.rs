// SPDX-License-Identifier: GPL-2.0

//! The syncs of a job or a bind (`struct drm_hmmgpu_sync`): fences to wait for, and sync objects
//! and user fences to signal.
//!
//! Everything that can fail is done when the syncs are read, before the work is published:
//! sync objects are looked up, timeline points get their chain node, user fences are checked
//! (and for a job, the work item that writes them is allocated). Signalling them afterwards
//! cannot fail.

use crate::file::read_array;
use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    bindings, c_str,
    dma_fence::{Fence, FenceSignaller},
    drm,
    drm::syncobj::{FenceChain, SyncObj},
    mm::user_fence::{UserFence, UserFenceQueue},
    new_fence_context,
    prelude::*,
    sync::Arc,
    types::ARef,
    uapi,
};

/// A sync object to signal with the work's fence.
enum Signal {
    /// A binary sync object: its fence is replaced.
    Binary(ARef<SyncObj>),
    /// A point of a timeline sync object, and the chain node that adds it.
    Point(ARef<SyncObj>, FenceChain, u64),
}

/// The syncs of one ioctl, read and checked.
pub(crate) struct Syncs {
    /// The fences to wait for.
    pub(crate) waits: KVec<ARef<Fence>>,
    signals: KVec<Signal>,
    /// The user fences to write when the work is done.
    pub(crate) user_fences: KVec<UserFence>,
}

impl Syncs {
    /// Reads the `count` syncs at `addr` from userspace and checks them. `fenced` says whether
    /// the work has a dma-fence to signal sync objects with (`EOPNOTSUPP` for one to signal if
    /// not).
    pub(crate) fn read(
        file: &drm::File<crate::file::File>,
        addr: u64,
        count: u32,
        fenced: bool,
    ) -> Result<Self> {
        if count > uapi::HMMGPU_MAX_SYNCS {
            return Err(EINVAL);
        }
        let mut this = Self {
            waits: KVec::new(),
            signals: KVec::new(),
            user_fences: KVec::new(),
        };
        for sync in read_array::<uapi::drm_hmmgpu_sync>(addr, count)?.iter() {
            this.add(file, sync, fenced)?;
        }
        Ok(this)
    }

    fn add(
        &mut self,
        file: &drm::File<crate::file::File>,
        sync: &uapi::drm_hmmgpu_sync,
        fenced: bool,
    ) -> Result {
        let signal = match sync.flags {
            0 => false,
            uapi::DRM_HMMGPU_SYNC_SIGNAL => true,
            _ => return Err(EINVAL),
        };
        if sync.pad != 0 {
            return Err(EINVAL);
        }
        match sync.type_ {
            uapi::DRM_HMMGPU_SYNC_SYNCOBJ | uapi::DRM_HMMGPU_SYNC_TIMELINE_SYNCOBJ => {
                let timeline = sync.type_ == uapi::DRM_HMMGPU_SYNC_TIMELINE_SYNCOBJ;
                let point = if timeline { sync.value } else { 0 };
                if sync.addr != 0 || sync.error_addr != 0 || (!timeline && sync.value != 0) {
                    return Err(EINVAL);
                }
                if !signal {
                    let fence = SyncObj::find_fence(file, sync.handle, point)?;
                    self.waits.push(fence, GFP_KERNEL_ACCOUNT)?;
                    return Ok(());
                }
                if !fenced {
                    return Err(Error::from_errno(-(bindings::EOPNOTSUPP as i32)));
                }
                if timeline && point == 0 {
                    return Err(EINVAL);
                }
                let obj = SyncObj::lookup(file, sync.handle)?;
                let entry = if timeline {
                    Signal::Point(obj, FenceChain::new()?, point)
                } else {
                    Signal::Binary(obj)
                };
                self.signals.push(entry, GFP_KERNEL_ACCOUNT)?;
            }
            uapi::DRM_HMMGPU_SYNC_USER_FENCE => {
                if !signal || sync.handle != 0 {
                    return Err(EINVAL);
                }
                let error_addr = (sync.error_addr != 0).then_some(sync.error_addr);
                let fence = UserFence::new(sync.addr, sync.value, error_addr)?;
                self.user_fences.push(fence, GFP_KERNEL_ACCOUNT)?;
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    /// Signals the sync objects with `fence`: binary ones get it, timelines get it as their
    /// point.
    pub(crate) fn signal(self, fence: &Fence) {
        signal_all(self.signals, fence);
    }

    /// Whether there are sync objects to signal.
    pub(crate) fn has_signals(&self) -> bool {
        !self.signals.is_empty()
    }

    /// Takes the sync objects a fenced bind signals; its fence is made once it has its place in
    /// the queue ([`BindSignals::set_fence`]).
    pub(crate) fn take_fenced_signals(&mut self) -> BindSignals {
        BindSignals {
            signals: core::mem::take(&mut self.signals),
            done: None,
        }
    }

    /// Takes the sync objects a synchronous bind signals, with the fence it signals them with.
    pub(crate) fn take_bind_signals(&mut self) -> Result<BindSignals> {
        // Each bind has a timeline of its own: binds of different VMs end in any order.
        let done = match self.signals.is_empty() {
            true => None,
            false => Some(
                Arc::pin_init(
                    new_fence_context!(c_str!("hmmgpu"), c_str!("hmmgpu-bind")),
                    GFP_KERNEL_ACCOUNT,
                )?
                .new_fence()?,
            ),
        };
        Ok(BindSignals {
            signals: core::mem::take(&mut self.signals),
            done,
        })
    }

    /// Writes the user fences, with `result` as the work's error.
    pub(crate) fn signal_user_fences(
        fences: KVec<UserFence>,
        result: Result,
        queue: &UserFenceQueue,
    ) {
        for fence in fences {
            fence.signal(result, queue);
        }
    }
}

fn signal_all(signals: KVec<Signal>, fence: &Fence) {
    for signal in signals {
        match signal {
            Signal::Binary(obj) => obj.replace_fence(Some(fence)),
            Signal::Point(obj, chain, point) => obj.add_point(chain, fence, point),
        }
    }
}

/// The sync objects a bind signals, and the fence it signals them with.
///
/// A synchronous bind signals the fence before its call returns, then hands it to the sync
/// objects. A fenced one hands it to them unsignalled in its call ([`BindSignals::publish`]),
/// and signals it in its turn, which neither allocates nor waits for what allocates (see
/// [`crate::bind`]).
pub(crate) struct BindSignals {
    signals: KVec<Signal>,
    done: Option<FenceSignaller>,
}

impl BindSignals {
    /// Sets the fence to signal.
    pub(crate) fn set_fence(&mut self, done: FenceSignaller) {
        self.done = Some(done);
    }

    /// Hands the fence, not signalled yet, to the sync objects.
    pub(crate) fn publish(&mut self) {
        if let Some(done) = &self.done {
            signal_all(core::mem::take(&mut self.signals), done.fence());
        }
    }

    /// Signals the fence with `result`, then hands it to the sync objects it was not published
    /// to.
    pub(crate) fn signal(self, result: Result) {
        let Some(done) = self.done else {
            return;
        };
        let fence: ARef<Fence> = done.fence().into();
        match result {
            Ok(()) => done.signal(),
            Err(e) => done.signal_error(e),
        }
        signal_all(self.signals, &fence);
    }
}

/// The user fences of a job, written once it has ended by its VM's work item on the device's
/// queue ([`crate::vm::Vm::write_user_fences`]), in the order the VM's jobs ended.
///
/// Not by the job's worker: a write may fault, which takes the mmap lock, and an invalidation
/// that holds it for writing (an `mprotect()` of the fence's page, say) may be waiting for the
/// VM's next job, queued behind the worker. Allocated at submission, so that ending a job
/// allocates nothing: the VM links the writes it has to do through [`UserFenceWrites::next`].
///
/// A queued bind's user fences are written by the bind's own worker, once it is done
/// ([`crate::bind::QueuedBind`]): no job waits for that worker.
pub(crate) struct UserFenceWrites {
    fences: KVec<UserFence>,
    /// The job's result, written as each fence's error.
    result: Result,
    queue: Arc<UserFenceQueue>,
    /// The next writes in the VM's list.
    pub(crate) next: Option<KBox<UserFenceWrites>>,
}

impl UserFenceWrites {
    /// The writes of `fences`, whose waiters `queue` wakes; `None` if there are none.
    pub(crate) fn new(
        fences: KVec<UserFence>,
        queue: &Arc<UserFenceQueue>,
    ) -> Result<Option<KBox<Self>>> {
        if fences.is_empty() {
            return Ok(None);
        }
        let writes = KBox::new(
            Self {
                fences,
                result: Ok(()),
                queue: queue.clone(),
                next: None,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(Some(writes))
    }

    /// Sets the result the fences are written with.
    pub(crate) fn set_result(&mut self, result: Result) {
        self.result = result;
    }

    /// Writes the fences. May fault pages in.
    pub(crate) fn write(mut self: KBox<Self>) {
        let fences = core::mem::take(&mut self.fences);
        Syncs::signal_user_fences(fences, self.result, &self.queue);
    }
}

impl Drop for UserFenceWrites {
    fn drop(&mut self) {
        // The rest of a list, one link at a time rather than recursively.
        let mut next = self.next.take();
        while let Some(mut writes) = next {
            next = writes.next.take();
            drop(writes);
        }
    }
}
