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
    bindings,
    dma_fence::Fence,
    drm,
    drm::syncobj::{FenceChain, SyncObj},
    mm::user_fence::{UserFence, UserFenceQueue},
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

    /// Whether there are sync objects to signal.
    pub(crate) fn has_signals(&self) -> bool {
        !self.signals.is_empty()
    }

    /// Signals the sync objects with `fence`: binary ones get it, timelines get it as their
    /// point.
    pub(crate) fn signal(self, fence: &Fence) {
        for signal in self.signals {
            match signal {
                Signal::Binary(obj) => obj.replace_fence(Some(fence)),
                Signal::Point(obj, chain, point) => obj.add_point(chain, fence, point),
            }
        }
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
