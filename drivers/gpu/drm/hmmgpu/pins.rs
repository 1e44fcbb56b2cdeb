// SPDX-License-Identifier: GPL-2.0

//! Long-term pins of userptr mirrors, for VMs whose GPU cannot fault (pinned mode).
//!
//! A mirror's pages are pinned with `FOLL_LONGTERM` (Documentation/core-api/pin_user_pages.rst),
//! charged to the VM process's `RLIMIT_MEMLOCK`, and kept until an invalidation of the range
//! takes them away: it hands them to the VM's chain of stale pins, without allocating, and a
//! worker releases them outside the callback.

use crate::{frames::HugeBlocks, mirror::Mirror, page_table::SZ_4K, vm::Stats};
use core::sync::atomic::Ordering;
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KBox, KVVec},
    bindings,
    mm::{
        hmm::Valid,
        interval_notifier::{IntervalNotifier, ReadSeq},
        pin::{LockedVm, MemlockLimit, PinnedFrames, PinnedPages},
        range_lock::{self, RangeGuard, RangeWaiter},
        MmWithUser,
    },
    prelude::*,
    sync::Arc,
};

/// A mirror's pages pinned with its range taken in the notifier's range lock, which stays taken
/// until the pinning is dropped or [`Pinning::release_range`] is called: invalidations of the
/// range that arrive meanwhile wait for the pins to be installed (for the range's patience at
/// most).
pub(crate) struct Pinning<'w, 'n> {
    /// The range, dropped first: pins that were not installed return their `RLIMIT_MEMLOCK`
    /// charge when they are dropped, which takes the mmap lock, and a range is never held while
    /// the mmap lock is taken (another thread may hold it and wait for the range).
    range: Option<RangeGuard<'w>>,
    /// The pins, until they are installed.
    pub(crate) pins: Option<KBox<Pins>>,
    /// The sequence number read before pinning: the pins are current unless it is stale.
    pub(crate) seq: ReadSeq<'n, Mirror>,
}

impl<'w, 'n> Pinning<'w, 'n> {
    /// Pins the pages of `mirrors` in `mm`, the current process's address space, charged within
    /// `limit`, each with its range taken through the waiter at the same index of `waiters` if
    /// `hold` (`waiters` may be empty otherwise). Returns, for each mirror, its pinning, or
    /// `EFAULT` when its range is not mapped as the mirror needs.
    ///
    /// Without `hold`, pins without taking ranges, through the lockless fast path: mostly no
    /// invalidation comes before the pins are installed, and the sequence number shows them
    /// current. When one did, the caller pins again holding the ranges.
    ///
    /// Every sequence number is read first and every mirror pinned under one hold of the mmap
    /// lock, as [`hmm::fault_all`] does for snapshots and for the same reason: an invalidation
    /// that waits for a range taken here may hold the mmap lock for writing, or keep
    /// `read_begin` waiting. Memory only a fault that may drop the mmap lock can bring in
    /// (userfaultfd) fails under the lock: it is pinned afterwards the usual way, with every
    /// range released.
    ///
    /// # Errors
    ///
    /// `EAGAIN` when a range changed while its pages were migrated for pinning; errors of
    /// [`LockedVm::charge_within`] and [`PinnedPages::pin_longterm`].
    pub(crate) fn pin_all(
        mirrors: &[&'n IntervalNotifier<Mirror>],
        mm: &MmWithUser,
        waiters: &'w mut [RangeWaiter<'_>],
        hold: bool,
        limit: &MemlockLimit,
        stats: &Arc<Stats>,
    ) -> Result<KVVec<Result<Self>>> {
        let mut charges = KVVec::with_capacity(mirrors.len(), GFP_KERNEL_ACCOUNT)?;
        let mut seqs = KVVec::with_capacity(mirrors.len(), GFP_KERNEL_ACCOUNT)?;
        let mut pinned = KVVec::with_capacity(mirrors.len(), GFP_KERNEL_ACCOUNT)?;
        // Charging takes the mmap lock, and so does uncharging, on error: not under it.
        for n in mirrors {
            let pages = n.data().size as usize / SZ_4K as usize;
            charges.push(
                Some(LockedVm::charge_within(mm, pages, limit)?),
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        // None is taken yet: `read_begin` may wait for an invalidation.
        for n in mirrors {
            seqs.push(n.read_begin(), GFP_KERNEL_ACCOUNT)?;
        }
        if hold {
            if waiters.len() < mirrors.len() {
                return Err(EINVAL);
            }
            let mmap = mm.mmap_read_lock();
            for ((n, waiter), &seq) in mirrors.iter().zip(waiters.iter_mut()).zip(seqs.iter()) {
                let m = n.data();
                let (cpu, size) = (m.cpu, m.size as usize);
                let patience = range_lock::patience_ms(1000, size);
                let range = waiter.lock(cpu, cpu + size, patience);
                let pages = match PinnedPages::pin_longterm_locked(&mmap, cpu, size, m.write) {
                    Ok(pages) => Ok((pages, Some(range))),
                    Err(e) if e == EFAULT => Err(EFAULT),
                    Err(e) if e == ENOMEM && seq.check_retry() => return Err(EAGAIN),
                    Err(e) => return Err(e),
                };
                // There is room for every mirror.
                pinned.push(pages, GFP_KERNEL_ACCOUNT)?;
            }
        } else {
            for _ in mirrors {
                // All pinned below, without the mmap lock held throughout.
                pinned.push(Err(EFAULT), GFP_KERNEL_ACCOUNT)?;
            }
        }
        let retry = pinned.iter().any(|p| p.is_err());
        let mut out = KVVec::with_capacity(mirrors.len(), GFP_KERNEL_ACCOUNT)?;
        for (i, p) in pinned.into_iter().enumerate() {
            let (pages, mut range) = match p {
                Ok(p) => p,
                Err(_) => {
                    // Not pinned under the lock: left for the second pass.
                    out.push(Err(EFAULT), GFP_KERNEL_ACCOUNT)?;
                    continue;
                }
            };
            if retry {
                // The second pass pins without the mmap lock held throughout.
                range = None;
            }
            let charge = charges[i].take().ok_or(EINVAL)?;
            out.push(
                Ok(Self {
                    pins: Some(Pins::held(pages, charge, stats)?),
                    seq: seqs[i],
                    range,
                }),
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        for (i, n) in mirrors.iter().enumerate() {
            let Some(charge) = charges[i].take() else {
                continue;
            };
            // A submission may pin a million mirrors.
            // Only locks that sleep are held.
            kernel::task::cond_resched();
            // With the mmap lock held, a fault cannot wait for a userfaultfd handler; without it,
            // it may. The sequence number was read before: if the range changed since, the
            // pins are checked against a snapshot.
            let m = n.data();
            out[i] = match PinnedPages::pin_longterm(m.cpu, m.size as usize, m.write) {
                Ok(pages) => Ok(Self {
                    pins: Some(Pins::held(pages, charge, stats)?),
                    seq: seqs[i],
                    range: None,
                }),
                Err(e) if e == EFAULT => Err(EFAULT),
                // As under the lock: the range changed while its pages were migrated.
                Err(e) if e == ENOMEM && seqs[i].check_retry() => return Err(EAGAIN),
                Err(e) => return Err(e),
            };
        }
        Ok(out)
    }

    /// Releases the range, keeping the pins.
    pub(crate) fn release_range(&mut self) {
        self.range = None;
    }
}

/// Pages of a userptr pinned long-term, charged to `RLIMIT_MEMLOCK` of the VM's process.
pub(crate) struct Pins {
    /// The pins and their charge; `None` only while being dropped.
    held: Option<(PinnedPages, LockedVm)>,
    stats: Arc<Stats>,
    /// The next pins of the VM's chain of stale pins, so that an invalidation can hand pins over
    /// without allocating.
    next: Option<KBox<Pins>>,
    /// The blocks huge pages fill, found from these pins by [`Pins::find_huge_blocks`].
    huge: Option<HugeBlocks>,
}

impl Pins {
    fn held(pages: PinnedPages, charge: LockedVm, stats: &Arc<Stats>) -> Result<KBox<Self>> {
        let npages = pages.len() as u64;
        let pins = KBox::new(
            Self {
                held: Some((pages, charge)),
                stats: stats.clone(),
                next: None,
                huge: None,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        stats.pinned_pages.fetch_add(npages, Ordering::Relaxed);
        Ok(pins)
    }

    /// Finds which 2 MiB blocks of GPU addresses the pins, mapped from `va`, fill with one huge
    /// page each (see [`HugeBlocks`]).
    pub(crate) fn find_huge_blocks(&mut self, va: u64) -> Result {
        let Some(frames) = self.frames() else {
            return Ok(());
        };
        let huge = HugeBlocks::find(va, &frames, self.pages().len())?;
        self.huge = Some(huge);
        Ok(())
    }

    /// The blocks [`Pins::find_huge_blocks`] found, if it was called.
    pub(crate) fn huge_blocks(&self) -> Option<&HugeBlocks> {
        self.huge.as_ref()
    }

    /// Chains `next` after these pins.
    pub(crate) fn set_next(&mut self, next: Option<KBox<Pins>>) {
        self.next = next;
    }

    /// The pinned pages.
    pub(crate) fn pages(&self) -> &[*mut bindings::page] {
        self.held.as_ref().map_or(&[], |(pages, _)| pages.pages())
    }

    /// The frames of the pinned pages (none while being dropped).
    pub(crate) fn frames(&self) -> Option<PinnedFrames<'_>> {
        self.held.as_ref().map(|(pages, _)| pages.frames())
    }

    /// Whether the pinned pages are those a current snapshot of the same range shows the CPU
    /// mapping, writable where `write`: if an invalidation overtook the pinning (an unmap, or a
    /// write-protection), they are not.
    pub(crate) fn matches(&self, valid: &Valid<'_>, write: bool) -> bool {
        let base = valid.start();
        let Some(frames) = self.frames() else {
            return false;
        };
        valid.len() == self.pages().len()
            && (0..valid.len()).all(|i| {
                valid
                    .at(base + i * SZ_4K as usize)
                    .is_some_and(|h| h.pfn() == frames.pfn(i) && (!write || h.is_writable()))
            })
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        // Unpinned and uncharged first, so that whoever sees the count drop may use the charge.
        let n = self.pages().len() as u64;
        drop(self.held.take());
        self.stats.pinned_pages.fetch_sub(n, Ordering::Relaxed);
        // The rest of a chain, one link at a time rather than recursively.
        let mut next = self.next.take();
        while let Some(mut pins) = next {
            next = pins.next.take();
            drop(pins);
        }
    }
}
