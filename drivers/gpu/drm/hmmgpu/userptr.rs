// SPDX-License-Identifier: GPL-2.0

//! Userptr objects: GEM objects that name a range of a process's memory.
//!
//! A userptr has no pages of its own: the GPU reaches the process's pages, mirrored into its page
//! table when it is bound. At creation it only records the range, its permissions and the address
//! space, and, when asked to probe, checks that every page of the range is mapped where the GPU
//! may read it.

use crate::driver::{HmmGpuDriver, GEM_MAX_SIZE};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KBox},
    bindings,
    drm::gem::{object, ObjectFuncs},
    mm::{
        hmm::{Fault, Range},
        interval_notifier::{IntervalNotifier, Invalidate, InvalidateRange},
        notifier_lock::{NotifierGuard, NotifierLock},
        Mm, MmWithUser,
    },
    new_notifier_lock,
    page::PAGE_SIZE,
    prelude::*,
    sync::Arc,
    types::ARef,
    uapi,
};

/// The driver's data of a userptr object.
pub(crate) struct Userptr {
    start: usize,
    read_only: bool,
    /// The address space the range belongs to: the creator's.
    mm: ARef<Mm>,
}

/// A userptr object.
pub(crate) type UserptrObject = object::Object<Userptr>;

/// The function table of userptrs: a `static`, whose address tells them apart from GEM objects
/// with pages.
static FUNCS: ObjectFuncs<UserptrObject> = object::funcs();

impl object::DriverObject for Userptr {
    type Driver = HmmGpuDriver;

    fn funcs() -> &'static ObjectFuncs<UserptrObject> {
        &FUNCS
    }
}

/// The flags `DRM_IOCTL_HMMGPU_USERPTR_CREATE` knows.
const FLAGS: u32 = uapi::DRM_HMMGPU_USERPTR_READ_ONLY | uapi::DRM_HMMGPU_USERPTR_PROBE;

impl Userptr {
    /// The first address of the range.
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// Whether the GPU may only read the range.
    pub(crate) fn read_only(&self) -> bool {
        self.read_only
    }

    /// The address space the range belongs to.
    pub(crate) fn mm(&self) -> &Mm {
        &self.mm
    }

    /// Checks a request to create a userptr of the current process, and makes its data.
    ///
    /// # Errors
    ///
    /// `EINVAL` for unknown flags, an empty, unaligned or too large range, or one outside the
    /// user address space; `EFAULT` when probing finds a page that is not mapped readably.
    pub(crate) fn new(addr: u64, size: u64, flags: u32) -> Result<(Self, usize)> {
        if flags & !FLAGS != 0 {
            return Err(EINVAL);
        }
        let end = addr.checked_add(size).ok_or(EINVAL)?;
        let page = PAGE_SIZE as u64;
        // SAFETY: FFI call without requirements.
        let task_size = unsafe { bindings::TASK_SIZE_MAX() } as u64;
        if size == 0
            || addr % page != 0
            || size % page != 0
            || size > GEM_MAX_SIZE
            || end > task_size
        {
            return Err(EINVAL);
        }
        let (start, size) = (addr as usize, size as usize);
        if flags & uapi::DRM_HMMGPU_USERPTR_PROBE != 0 {
            probe(start, size)?;
        }
        let mm = Mm::current().ok_or(EINVAL)?;
        Ok((
            Self {
                start,
                read_only: flags & uapi::DRM_HMMGPU_USERPTR_READ_ONLY != 0,
                mm,
            },
            size,
        ))
    }
}

/// The notifier of a probe: it only keeps the sequence protocol.
struct Probe(Arc<NotifierLock<()>>);

impl Invalidate for Probe {
    type Locked = ();

    fn notifier_lock(&self) -> &NotifierLock<()> {
        &self.0
    }

    fn invalidate(
        _notifier: &IntervalNotifier<Self>,
        _range: &InvalidateRange<'_>,
        _guard: &mut NotifierGuard<'_, ()>,
    ) -> bool {
        // The framework published the sequence number: snapshots taken before fail their check.
        true
    }
}

/// How many snapshots a probe takes at most before it gives up with `EAGAIN`.
const PROBE_ROUNDS: u32 = 64;

/// Checks that every page of `[start, start + size)` of the current process is in a mapping the
/// GPU may read, without faulting anything in.
///
/// # Errors
///
/// `EFAULT` for a page the GPU may not read; `EAGAIN` when invalidations kept overtaking the
/// snapshot; `ERESTARTSYS` when a signal is pending; errors of [`Range::fault`].
fn probe(start: usize, size: usize) -> Result {
    let mm = MmWithUser::current().ok_or(EFAULT)?;
    let lock = Arc::pin_init(new_notifier_lock!((), "hmmgpu::probe"), GFP_KERNEL_ACCOUNT)?;
    let notifier = KBox::pin_init(
        IntervalNotifier::new(&mm, start, size, true, Probe(lock.clone())),
        GFP_KERNEL_ACCOUNT,
    )?;
    let mut range = Range::new(&notifier, start, size)?;
    for _ in 0..PROBE_ROUNDS {
        if kernel::current!().signal_pending() {
            return Err(ERESTARTSYS);
        }
        let snapshot = range.fault(Fault::Snapshot)?;
        let guard = lock.lock();
        // Holes and mappings the GPU may not reach (PROT_NONE, VM_PFNMAP, VM_IO) come back as
        // errors; pages not faulted in yet are fine.
        let holes = snapshot
            .commit(&guard)
            .map(|valid| valid.iter().any(|pfn| pfn.is_error()));
        match holes {
            Some(true) => return Err(EFAULT),
            Some(false) => return Ok(()),
            None => {}
        }
    }
    // Invalidations kept overtaking the snapshot.
    Err(EAGAIN)
}
