// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the mirroring abstractions, on mappings made with `kunit_vm_mmap` in the test
//! thread's own address space.

use crate::kunit::kunit_tests;

#[kunit_tests(rust_mm_mirror)]
mod tests {
    use crate::{
        alloc::{flags::GFP_KERNEL, KBox, KVVec},
        bindings,
        mm::{
            dirty,
            hmm::{Fault, Range},
            interval_notifier::{Event, IntervalNotifier, Invalidate, InvalidateRange},
            invalidated::{Invalidated, Listing, Listings},
            notifier_lock::{NotifierGuard, NotifierLock},
            pin::{LockedVm, PinnedPages},
            range_lock::RangeLock,
            MmWithUser,
        },
        new_notifier_lock, new_work,
        page::PAGE_SIZE,
        prelude::*,
        sync::Arc,
        workqueue::{self, impl_has_work, Work, WorkItem},
    };
    use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

    const SZ_2M: usize = 2 << 20;

    /// What the test notifiers share: the notifier lock and what the callback saw.
    #[pin_data]
    struct Mirror {
        #[pin]
        lock: NotifierLock<()>,
        invalidations: AtomicUsize,
        last_event: AtomicU32,
    }

    fn mirror() -> Result<Arc<Mirror>> {
        Arc::pin_init(
            pin_init!(Mirror {
                lock <- new_notifier_lock!((), "Mirror::lock"),
                invalidations: AtomicUsize::new(0),
                last_event: AtomicU32::new(u32::MAX),
            }),
            GFP_KERNEL,
        )
    }

    fn event_code(event: Event) -> u32 {
        match event {
            Event::Unmap => 0,
            Event::ProtectionVma => 1,
            Event::Clear => 2,
            _ => 3,
        }
    }

    impl Invalidate for Arc<Mirror> {
        type Locked = ();

        fn notifier_lock(&self) -> &NotifierLock<()> {
            &self.lock
        }

        fn invalidate(
            notifier: &IntervalNotifier<Self>,
            range: &InvalidateRange<'_>,
            _guard: &mut NotifierGuard<'_, ()>,
        ) -> bool {
            let mirror = notifier.data();
            mirror.invalidations.fetch_add(1, Ordering::Relaxed);
            mirror
                .last_event
                .store(event_code(range.event()), Ordering::Relaxed);
            true
        }
    }

    type Notifier = IntervalNotifier<Arc<Mirror>>;

    /// Maps `len` bytes of anonymous private memory in the test's address space.
    fn mmap(len: usize, prot: u32) -> Result<usize> {
        crate::kunit::vm_mmap(len, prot)
    }

    fn watch(
        mm: &MmWithUser,
        mirror: &Arc<Mirror>,
        start: usize,
        len: usize,
    ) -> Result<Pin<KBox<Notifier>>> {
        watch_with(mm, mirror, start, len, true)
    }

    fn watch_with(
        mm: &MmWithUser,
        mirror: &Arc<Mirror>,
        start: usize,
        len: usize,
        range_locks: bool,
    ) -> Result<Pin<KBox<Notifier>>> {
        KBox::pin_init(
            IntervalNotifier::new(mm, start, len, range_locks, mirror.clone()),
            GFP_KERNEL,
        )
    }

    /// A mapping of the test's address space, watched whole.
    struct Watched {
        addr: usize,
        mm: crate::types::ARef<MmWithUser>,
        mirror: Arc<Mirror>,
        notifier: Pin<KBox<Notifier>>,
    }

    fn watched(len: usize, prot: u32) -> Result<Watched> {
        watched_with(len, prot, true)
    }

    fn watched_with(len: usize, prot: u32, range_locks: bool) -> Result<Watched> {
        let addr = mmap(len, prot)?;
        // `kunit_vm_mmap` gave the test thread its address space.
        let mm = MmWithUser::current().ok_or(EINVAL)?;
        let mirror = mirror()?;
        let notifier = watch_with(&mm, &mirror, addr, len, range_locks)?;
        Ok(Watched {
            addr,
            mm,
            mirror,
            notifier,
        })
    }

    fn rw() -> u32 {
        bindings::PROT_READ | bindings::PROT_WRITE
    }

    #[test]
    fn notifier_lock_try_lock_and_do_unlocked() -> Result {
        let lock = KBox::pin_init(new_notifier_lock!(0u32, "tests::lock"), GFP_KERNEL)?;
        let mut guard = lock.lock();
        assert!(lock.try_lock().is_none());
        // The lock is free while `do_unlocked` runs its closure, and held again afterwards.
        let taken = guard.do_unlocked(|| lock.try_lock().map(|mut inner| *inner += 1).is_some());
        assert!(taken);
        assert_eq!(*guard, 1);
        assert!(lock.try_lock().is_none());
        drop(guard);
        assert!(lock.try_lock().is_some());
        Ok(())
    }

    #[test]
    fn notifier_fires_on_munmap() -> Result {
        let len = 4 * PAGE_SIZE;
        let Watched {
            addr,
            mm: _,
            mirror,
            notifier,
        } = watched(len, rw())?;
        let seq = notifier.read_begin();
        assert!(!seq.read_retry(&mirror.lock.lock()));
        // SAFETY: The mapping is ours.
        assert_eq!(unsafe { bindings::vm_munmap(addr as _, len) }, 0);
        assert!(seq.read_retry(&mirror.lock.lock()));
        assert!(mirror.invalidations.load(Ordering::Relaxed) >= 1);
        assert_eq!(mirror.last_event.load(Ordering::Relaxed), 0);
        Ok(())
    }

    #[cfg(CONFIG_X86_64)]
    fn mprotect(addr: usize, len: usize, prot: u32) -> isize {
        extern "C" {
            fn __x64_sys_mprotect(regs: *const bindings::pt_regs) -> core::ffi::c_long;
        }
        // SAFETY: All-zeroes is a valid `pt_regs`.
        let mut regs: bindings::pt_regs = unsafe { core::mem::zeroed() };
        regs.di = addr as _;
        regs.si = len as _;
        regs.dx = prot as _;
        // The kernel has no in-kernel mprotect; the syscall's entry point runs the same path
        // userspace takes, on the current task's address space.
        // SAFETY: `regs` holds the syscall's arguments.
        unsafe { __x64_sys_mprotect(&regs) as isize }
    }

    #[cfg(CONFIG_X86_64)]
    #[test]
    fn notifier_fires_on_mprotect() -> Result {
        let len = 4 * PAGE_SIZE;
        let Watched {
            addr,
            mm: _,
            mirror,
            notifier,
        } = watched(len, rw())?;
        // Fault the pages in: mprotect of never-touched memory has no entries to change.
        let mut range = Range::new(&notifier, addr, len)?;
        range.fault(Fault::Write)?;
        let seq = notifier.read_begin();
        assert_eq!(mprotect(addr, len, bindings::PROT_READ), 0);
        assert!(seq.read_retry(&mirror.lock.lock()));
        assert_eq!(mirror.last_event.load(Ordering::Relaxed), 1);
        Ok(())
    }

    #[test]
    fn snapshot_of_a_huge_page_is_order_9() -> Result {
        let addr = mmap(2 * SZ_2M, rw())?;
        let mm = MmWithUser::current().ok_or(EINVAL)?;
        let huge = (addr + SZ_2M - 1) & !(SZ_2M - 1);
        let mirror = mirror()?;
        let notifier = watch(&mm, &mirror, huge, SZ_2M)?;

        let mut whole = Range::new(&notifier, huge, SZ_2M)?;
        let valid = loop {
            let snapshot = whole.fault(Fault::Write)?;
            let guard = mirror.lock.lock();
            let order = snapshot
                .commit(&guard)
                .map(|valid| valid.iter().map(|p| p.map_order()).max().unwrap_or(0));
            if let Some(order) = order {
                break order;
            }
        };
        assert_eq!(valid, 9);

        // A range covering part of the huge page is clipped: no block reaches outside it.
        let (start, end) = (huge + PAGE_SIZE, huge + SZ_2M - PAGE_SIZE);
        let mut part = Range::new(&notifier, start, end - start)?;
        let snapshot = part.fault(Fault::Snapshot)?;
        let guard = mirror.lock.lock();
        let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
        assert_eq!(valid.at(start).ok_or(EINVAL)?.map_order(), 0);
        assert_eq!(valid.at(huge + SZ_2M / 2).ok_or(EINVAL)?.map_order(), 7);
        for pfn in valid.iter() {
            let size = PAGE_SIZE << pfn.map_order();
            let base = pfn.addr() & !(size - 1);
            assert!(pfn.is_valid() && base >= start && base + size <= end);
        }
        Ok(())
    }

    #[test]
    fn write_fault_on_a_read_only_mapping_fails() -> Result {
        let len = 2 * PAGE_SIZE;
        let Watched {
            addr,
            mm: _,
            mirror,
            notifier,
        } = watched(len, bindings::PROT_READ)?;
        let mut range = Range::new(&notifier, addr, len)?;
        assert!(range.fault(Fault::Write).err() == Some(EPERM));
        let snapshot = range.fault(Fault::Read)?;
        let guard = mirror.lock.lock();
        let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
        for pfn in valid.iter() {
            assert!(pfn.is_valid() && !pfn.is_writable());
        }
        Ok(())
    }

    #[test]
    fn mirror_commits_a_current_snapshot_under_the_lock() -> Result {
        let len = 8 * PAGE_SIZE;
        let Watched {
            addr,
            mm: _,
            mirror: _,
            notifier,
        } = watched(len, rw())?;
        let mut range = Range::new(&notifier, addr, len)?;
        // Faults every page in for writing; `f` sees them all, writable, with the lock held.
        let (valid, writable) = range.mirror(Fault::Write, 4, |valid, _locked| {
            let writable = valid
                .iter()
                .filter(|p| p.is_valid() && p.is_writable())
                .count();
            (valid.len(), writable)
        })?;
        assert_eq!((valid, writable), (8, 8));
        assert_eq!(range.overtaken(), 0);
        // The range went back when `f` dropped the frames: another mirror of it goes ahead.
        assert_eq!(
            range.mirror(Fault::Snapshot, 1, |valid, ()| valid.len())?,
            8
        );
        assert_eq!(notifier.range_lock().queued(), 0);
        Ok(())
    }

    #[test]
    fn snapshot_mode_faults_nothing_in() -> Result {
        let len = 4 * PAGE_SIZE;
        let Watched {
            addr,
            mm: _,
            mirror,
            notifier,
        } = watched(len, rw())?;
        let mut range = Range::new(&notifier, addr, len)?;
        let snapshot = range.fault(Fault::Snapshot)?;
        let guard = mirror.lock.lock();
        let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
        assert_eq!(valid.iter().filter(|p| p.is_valid()).count(), 0);
        Ok(())
    }

    #[test]
    fn range_arguments_are_checked() -> Result {
        let len = 4 * PAGE_SIZE;
        let Watched {
            addr,
            mm,
            mirror,
            notifier,
        } = watched(len, rw())?;
        assert!(Range::new(&notifier, addr, 0).err() == Some(EINVAL));
        assert!(Range::new(&notifier, addr + 1, PAGE_SIZE).err() == Some(EINVAL));
        assert!(Range::new(&notifier, addr, len + PAGE_SIZE).err() == Some(EINVAL));
        assert!(Range::new(&notifier, addr - PAGE_SIZE, PAGE_SIZE).err() == Some(EINVAL));
        assert!(Range::new(&notifier, usize::MAX - 4095, PAGE_SIZE).err() == Some(EINVAL));
        assert!(watch(&mm, &mirror, addr, 0).err() == Some(EINVAL));
        Ok(())
    }

    /// Zaps a range over and over from a worker while the test faults it in.
    #[pin_data]
    struct Racer {
        mm: crate::types::ARef<MmWithUser>,
        addr: usize,
        len: usize,
        stop: AtomicBool,
        done: AtomicBool,
        rounds: AtomicUsize,
        #[pin]
        work: Work<Racer>,
    }

    impl_has_work! {
        impl HasWork<Self> for Racer { self.work }
    }

    impl WorkItem for Racer {
        type Pointer = Arc<Racer>;

        fn run(this: Arc<Racer>) {
            // Bounded in time, so that the test ends even if the fault loop could not make progress.
            // SAFETY: Reading `jiffies` has no requirements.
            let start = unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) };
            let limit = crate::time::msecs_to_jiffies(3000);
            while !this.stop.load(Ordering::Relaxed)
                // SAFETY: As above.
                && unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) }
                    .wrapping_sub(start)
                    < limit
            {
                // SAFETY: `mm` holds `mm_users`; the range is the test's mapping.
                unsafe {
                    bindings::do_madvise(
                        this.mm.as_raw(),
                        this.addr as _,
                        this.len,
                        bindings::MADV_DONTNEED as _,
                    )
                };
                this.rounds.fetch_add(1, Ordering::Relaxed);
                // A zap every tick or so, not back to back: on a CPU of its own, a racer that
                // never pauses would overtake every snapshot, and a sequence-number retry loop
                // guarantees no progress against that (only serializing snapshots with
                // invalidations per range would). The pause also lets the test thread run on
                // this CPU, should the two share one.
                // SAFETY: FFI call without requirements; we hold no locks.
                unsafe { bindings::msleep(1) };
            }
            this.done.store(true, Ordering::Release);
        }
    }

    /// What [`race_fault_loop`] saw.
    struct Race {
        zaps_during: usize,
        stale: u32,
        result: Result<bool>,
    }

    /// Runs 20 rounds of snapshot and commit of a 16-page range, each until a snapshot is
    /// current, while a worker zaps the range over and over.
    fn race_fault_loop(range_locks: bool) -> Result<Race> {
        let len = 16 * PAGE_SIZE;
        let Watched {
            addr,
            mm,
            mirror,
            notifier,
        } = watched_with(len, rw(), range_locks)?;
        let racer = Arc::pin_init(
            pin_init!(Racer {
                mm: mm.clone(),
                addr,
                len,
                stop: AtomicBool::new(false),
                done: AtomicBool::new(false),
                rounds: AtomicUsize::new(0),
                work <- new_work!("Racer::work"),
            }),
            GFP_KERNEL,
        )?;
        let _ = workqueue::system_unbound().enqueue(racer.clone());
        // Race against a racer that is running.
        while racer.rounds.load(Ordering::Relaxed) < 10 && !racer.done.load(Ordering::Acquire) {
            // SAFETY: FFI call without requirements.
            unsafe { bindings::msleep(1) };
        }
        let zaps_before = racer.rounds.load(Ordering::Relaxed);

        let mut range = Range::new(&notifier, addr, len)?;
        // Zaps wait for the commit however long the test thread takes to get to it.
        range.set_timeout_ms(u32::MAX / 4);
        let mut stale = 0u32;
        // Rounds, each until a snapshot is current, while the racer zaps the range. The first
        // try of each round sleeps between the snapshot and its check, so that zaps land there
        // whichever CPUs the two threads share; retries do not, so each round can finish.
        let mut result = Ok(true);
        for _ in 0..20 {
            let mut first = true;
            let round = loop {
                let snapshot = match range.fault(Fault::Write) {
                    Ok(snapshot) => snapshot,
                    Err(e) => break Err(e),
                };
                if core::mem::take(&mut first) {
                    // SAFETY: FFI call without requirements; no lock is held.
                    unsafe { bindings::msleep(1) };
                }
                let guard = mirror.lock.lock();
                let writable = snapshot
                    .commit(&guard)
                    .map(|valid| valid.iter().all(|p| p.is_writable()));
                match writable {
                    Some(writable) => break Ok(writable),
                    None => stale += 1,
                }
            };
            if round != Ok(true) {
                result = round;
                break;
            }
        }
        let zaps_during = racer.rounds.load(Ordering::Relaxed) - zaps_before;
        racer.stop.store(true, Ordering::Relaxed);
        while !racer.done.load(Ordering::Acquire) {
            // SAFETY: FFI call without requirements.
            unsafe { bindings::msleep(1) };
        }
        crate::pr_info!(
            "rust_mm_mirror: range locks {}: {} zaps during the fault loop, {} fault retries, {} stale snapshots\n",
            range_locks,
            zaps_during,
            range.retries(),
            stale
        );
        assert!(zaps_before >= 10);
        Ok(Race {
            zaps_during,
            stale,
            result,
        })
    }

    #[test]
    fn fault_loop_retries_stale_snapshots_by_sequence_numbers() -> Result {
        // Without range locks, zaps land between snapshot and commit: the commits fail their
        // sequence checks, and the retries, which do not sleep there, get through.
        let race = race_fault_loop(false)?;
        assert!(race.zaps_during > 0);
        assert!(race.stale > 0);
        assert!(race.result == Ok(true));
        Ok(())
    }

    #[test]
    fn range_lock_makes_zaps_wait_for_the_commit() -> Result {
        // The same race with the range taken from the walk to the commit: the zaps that arrive
        // while it is taken wait for the commit, so no commit fails.
        let race = race_fault_loop(true)?;
        assert!(race.zaps_during > 0);
        assert_eq!(race.stale, 0);
        assert!(race.result == Ok(true));
        Ok(())
    }

    /// An invalidation run by a worker, as another task's would be.
    #[pin_data]
    struct Invalidator {
        lock: Arc<RangeLock>,
        start: usize,
        end: usize,
        may_block: bool,
        /// Set by the test before it releases its range.
        committed: AtomicBool,
        /// 0 until the invalidation ran; then 1 if it saw `committed` false, 2 if true; 3 if
        /// it was refused.
        ran: AtomicU32,
        #[pin]
        work: Work<Invalidator>,
    }

    impl_has_work! {
        impl HasWork<Self> for Invalidator { self.work }
    }

    impl WorkItem for Invalidator {
        type Pointer = Arc<Invalidator>;

        fn run(this: Arc<Invalidator>) {
            let saw = this
                .lock
                .invalidate(this.start, this.end, this.may_block, || {
                    this.committed.load(Ordering::Acquire)
                });
            let code = match saw {
                None => 3,
                Some(false) => 1,
                Some(true) => 2,
            };
            this.ran.store(code, Ordering::Release);
        }
    }

    fn invalidator(
        lock: &Arc<RangeLock>,
        start: usize,
        end: usize,
        may_block: bool,
    ) -> Result<Arc<Invalidator>> {
        let inv = Arc::pin_init(
            pin_init!(Invalidator {
                lock: lock.clone(),
                start,
                end,
                may_block,
                committed: AtomicBool::new(false),
                ran: AtomicU32::new(0),
                work <- new_work!("Invalidator::work"),
            }),
            GFP_KERNEL,
        )?;
        let _ = workqueue::system_unbound().enqueue(inv.clone());
        Ok(inv)
    }

    /// Sleeps until `done` holds, for ten seconds at most; returns whether it does.
    fn wait_for(done: impl Fn() -> bool) -> bool {
        for _ in 0..10_000 {
            if done() {
                return true;
            }
            // SAFETY: FFI call without requirements.
            unsafe { bindings::msleep(1) };
        }
        done()
    }

    #[test]
    fn range_lock_invalidation_waits_for_the_snapshot() -> Result {
        let lock = Arc::pin_init(RangeLock::new(true), GFP_KERNEL)?;
        let mut waiter = lock.waiter()?;
        let held = waiter.lock(0x10000, 0x30000, u32::MAX / 4);
        let inv = invalidator(&lock, 0x2f000, 0x40000, true)?;
        // The invalidation arrives, and waits.
        assert!(wait_for(|| lock.queued() == 2));
        assert_eq!(inv.ran.load(Ordering::Acquire), 0);
        inv.committed.store(true, Ordering::Release);
        drop(held);
        // It ran after the release, and saw the commit.
        assert!(wait_for(|| inv.ran.load(Ordering::Acquire) != 0));
        assert_eq!(inv.ran.load(Ordering::Acquire), 2);
        assert_eq!(lock.queued(), 0);
        Ok(())
    }

    #[test]
    fn range_lock_lets_disjoint_and_impatient_invalidations_through() -> Result {
        let lock = Arc::pin_init(RangeLock::new(true), GFP_KERNEL)?;
        let mut waiter = lock.waiter()?;
        let held = waiter.lock(0x10000, 0x30000, u32::MAX / 4);
        // A disjoint range runs while the range is held.
        let disjoint = invalidator(&lock, 0x30000, 0x40000, true)?;
        assert!(wait_for(|| disjoint.ran.load(Ordering::Acquire) != 0));
        assert_eq!(disjoint.ran.load(Ordering::Acquire), 1);
        // One that may not block is refused.
        let nonblocking = invalidator(&lock, 0x1000, 0x11000, false)?;
        assert!(wait_for(|| nonblocking.ran.load(Ordering::Acquire) != 0));
        assert_eq!(nonblocking.ran.load(Ordering::Acquire), 3);
        assert_eq!(lock.queued(), 1);
        drop(held);
        // A snapshot with no patience left makes nobody wait for long.
        let held = waiter.lock(0x10000, 0x30000, 0);
        let impatient = invalidator(&lock, 0x10000, 0x20000, true)?;
        assert!(wait_for(|| impatient.ran.load(Ordering::Acquire) != 0));
        assert_eq!(impatient.ran.load(Ordering::Acquire), 1);
        drop(held);
        Ok(())
    }

    /// `nr_foll_pin_acquired - nr_foll_pin_released`, exactly.
    fn pins_held() -> isize {
        let (mut len, mut pos) = (0usize, 0i64);
        // Fold the per-CPU differences into the global counters first, as writing to
        // `/proc/sys/vm/stat_refresh` does; otherwise small changes stay invisible.
        // SAFETY: `len` and `pos` are valid; the handler only reads and writes them.
        unsafe {
            bindings::vmstat_refresh(
                core::ptr::null(),
                0,
                core::ptr::null_mut(),
                &mut len,
                &mut pos as *mut i64 as *mut _,
            )
        };
        // SAFETY: Reading global counters has no requirements.
        unsafe {
            bindings::global_node_page_state(bindings::node_stat_item_NR_FOLL_PIN_ACQUIRED) as isize
                - bindings::global_node_page_state(bindings::node_stat_item_NR_FOLL_PIN_RELEASED)
                    as isize
        }
    }

    #[test]
    fn pin_without_an_address_space_fails() -> Result {
        // Every test runs in a kernel thread of its own, which has no address space until the
        // test maps memory: `pin_user_pages_fast` would dereference a null `current->mm`.
        assert!(MmWithUser::current().is_none());
        assert!(PinnedPages::pin_longterm(0x10000, PAGE_SIZE, true).err() == Some(EFAULT));
        assert!(PinnedPages::pin_longterm(0x10000, PAGE_SIZE, false).err() == Some(EFAULT));
        // Once it has one, the same call reaches the core MM, which finds nothing mapped there.
        let addr = mmap(PAGE_SIZE, rw())?;
        assert!(PinnedPages::pin_longterm(addr, PAGE_SIZE, false)?.len() == 1);
        Ok(())
    }

    #[test]
    fn pins_are_counted_and_released() -> Result {
        let len = 8 * PAGE_SIZE;
        let addr = mmap(len, rw())?;
        let before = pins_held();
        let pinned = PinnedPages::pin_longterm(addr, len, true)?;
        assert_eq!(pinned.len(), 8);
        assert!(pinned.pages().iter().all(|p| !p.is_null()));
        assert_eq!(pins_held(), before + 8);
        drop(pinned);
        assert_eq!(pins_held(), before);
        Ok(())
    }

    #[test]
    fn pinned_frames_match_each_page() -> Result {
        // Huge pages where the mapping allows (the range starts inside one), small elsewhere.
        let len = 3 * SZ_2M;
        let addr = mmap(len, rw())? + 5 * PAGE_SIZE;
        let pinned = PinnedPages::pin_longterm(addr, len - 8 * PAGE_SIZE, true)?;
        let frames = pinned.frames();
        let pfn = |i: usize| {
            // SAFETY: The page is pinned.
            unsafe { bindings::page_to_pfn(pinned.pages()[i]) as usize }
        };
        // In order, backwards, and out of order: each lookup stands alone.
        for i in 0..pinned.len() {
            assert_eq!(frames.pfn(i), Some(pfn(i)));
        }
        for i in (0..pinned.len()).rev() {
            assert_eq!(frames.pfn(i), Some(pfn(i)));
        }
        for i in (0..pinned.len()).step_by(97) {
            assert_eq!(
                frames.pfn(pinned.len() - 1 - i),
                Some(pfn(pinned.len() - 1 - i))
            );
            assert_eq!(frames.pfn(i), Some(pfn(i)));
        }
        assert_eq!(frames.pfn(pinned.len()), None);
        // Runs of one folio: a block of a huge page is, a block across two folios is not, and
        // the run reaches no further than the pins.
        let first_huge = (SZ_2M - addr % SZ_2M) / PAGE_SIZE;
        let block = 512;
        assert_eq!(frames.contiguous(first_huge, block), Some(pfn(first_huge)));
        assert_eq!(pfn(first_huge) % block, 0);
        assert_eq!(frames.contiguous(first_huge + 1, block), None);
        assert_eq!(frames.contiguous(first_huge - 1, 2), None);
        assert_eq!(frames.contiguous(0, pinned.len() + 1), None);
        assert_eq!(
            frames.contiguous(first_huge + 7, 9),
            Some(pfn(first_huge + 7))
        );
        // One page in the middle of the huge page replaced (the CPU maps the rest of the folio
        // with 4 KiB entries): the block is not one run, its parts on either side are.
        let hole = first_huge + 300;
        drop(pinned);
        let mm = MmWithUser::current().ok_or(EINVAL)?;
        // SAFETY: `mm` holds `mm_users`; the page is in the test's mapping.
        let zapped = unsafe {
            bindings::do_madvise(
                mm.as_raw(),
                (addr + hole * PAGE_SIZE) as _,
                PAGE_SIZE,
                bindings::MADV_DONTNEED as _,
            )
        };
        assert_eq!(zapped, 0);
        let pinned = PinnedPages::pin_longterm(addr, len - 8 * PAGE_SIZE, true)?;
        let frames = pinned.frames();
        assert_eq!(frames.contiguous(first_huge, block), None);
        assert_eq!(frames.contiguous(hole - 7, 8), None);
        assert!(frames.contiguous(first_huge, 300).is_some());
        assert!(frames.contiguous(hole + 1, 211).is_some());
        Ok(())
    }

    #[test]
    fn pins_under_the_read_lock_are_current() -> Result {
        let len = 8 * PAGE_SIZE;
        let Watched {
            addr,
            mm,
            mirror,
            notifier,
        } = watched(len, rw())?;
        let before = pins_held();
        let (pinned, seq) = {
            let seq = notifier.read_begin();
            let guard = mm.mmap_read_lock();
            (
                PinnedPages::pin_longterm_locked(&guard, addr, len, true)?,
                seq,
            )
        };
        assert_eq!(pins_held(), before + 8);
        // Pinning for writing faulted the pages in: the pins are what the CPU maps, and a
        // snapshot agrees.
        let mut range = Range::new(&notifier, addr, len)?;
        let snapshot = range.fault(Fault::Snapshot)?;
        let guard = mirror.lock.lock();
        // Nothing invalidated the range since before the pins: untouched memory is faulted
        // in fresh for writing, without a copy-on-write break.
        assert!(!seq.read_retry(&guard));
        let valid = snapshot.commit(&guard).ok_or(EAGAIN)?;
        for (pfn, &page) in valid.iter().zip(pinned.pages()) {
            // SAFETY: The page is pinned, so live.
            let expected = unsafe { bindings::page_to_pfn(page) } as usize;
            assert!(pfn.pfn() == Some(expected));
        }
        drop(valid);
        drop(guard);
        drop(pinned);
        assert_eq!(pins_held(), before);
        Ok(())
    }

    #[test]
    fn locked_pins_refuse_another_address_space() -> Result {
        let len = PAGE_SIZE;
        let addr = mmap(len, rw())?;
        let mm = MmWithUser::current().ok_or(EINVAL)?;
        // A second address space stands in for another process.
        // SAFETY: FFI call without requirements.
        let other = unsafe { bindings::mm_alloc() };
        let other = core::ptr::NonNull::new(other).ok_or(ENOMEM)?;
        // SAFETY: `mm_alloc` returned an address space with one `mm_users` reference, which
        // the `ARef` owns from here.
        let other: crate::types::ARef<MmWithUser> =
            unsafe { crate::types::ARef::from_raw(other.cast()) };
        let guard = other.mmap_read_lock();
        assert!(PinnedPages::pin_longterm_locked(&guard, addr, len, false).err() == Some(EINVAL));
        drop(guard);
        let guard = mm.mmap_read_lock();
        assert!(PinnedPages::pin_longterm_locked(&guard, addr, len, false).is_ok());
        Ok(())
    }

    #[test]
    fn partial_pin_leaves_no_pin() -> Result {
        let len = 8 * PAGE_SIZE;
        let addr = mmap(len, rw())?;
        // SAFETY: The mapping is ours; its second half goes.
        let ret = unsafe { bindings::vm_munmap((addr + len / 2) as _, len / 2) };
        assert_eq!(ret, 0);
        let before = pins_held();
        assert!(PinnedPages::pin_longterm(addr, len, true).err() == Some(EFAULT));
        assert_eq!(pins_held(), before);
        assert!(PinnedPages::pin_longterm(addr, 0, false).err() == Some(EINVAL));
        assert!(PinnedPages::pin_longterm(addr + 1, PAGE_SIZE, false).err() == Some(EINVAL));
        Ok(())
    }

    #[test]
    fn marking_dirty_reaches_the_folio() -> Result {
        let page = crate::page::Page::alloc_page(GFP_KERNEL)?;
        // SAFETY: The page is live.
        let pfn = unsafe { bindings::page_to_pfn(page.as_ptr()) } as usize;
        // SAFETY: The page is ours, allocated until `page` is dropped, and in no address space.
        let (before, after) = unsafe {
            let before = dirty::pfn_is_dirty(pfn);
            dirty::set_pfns_dirty(pfn, 1);
            (before, dirty::pfn_is_dirty(pfn))
        };
        assert!(!before);
        assert!(after);
        Ok(())
    }

    #[test]
    fn locked_vm_is_charged_and_uncharged() -> Result {
        mmap(PAGE_SIZE, rw())?;
        let mm = MmWithUser::current().ok_or(EINVAL)?;
        // SAFETY: `locked_vm` is read racily on purpose; nothing else changes it meanwhile.
        let locked = || unsafe {
            core::ptr::read_volatile(&raw const (*mm.as_raw()).__bindgen_anon_1.locked_vm)
        };
        let before = locked();
        let charge = LockedVm::charge(&mm, 16)?;
        assert_eq!(charge.pages(), 16);
        assert_eq!(locked(), before + 16);
        drop(charge);
        assert_eq!(locked(), before);
        Ok(())
    }

    /// A notifier lock's data for the invalidated-list tests: the list and four mirrors.
    struct Listed {
        invalidated: Invalidated<usize>,
        mirrors: [Listing; 4],
        /// Mirror keys that are gone.
        removed: [bool; 4],
    }

    impl AsMut<Invalidated<usize>> for Listed {
        fn as_mut(&mut self) -> &mut Invalidated<usize> {
            &mut self.invalidated
        }
    }

    struct ByKey;

    impl<'l> Listings<usize, NotifierGuard<'l, Listed>> for ByKey {
        fn listing<'a>(
            &'a self,
            k: usize,
            g: &'a mut NotifierGuard<'l, Listed>,
        ) -> Option<&'a mut Listing> {
            if *g.removed.get(k)? {
                return None;
            }
            g.mirrors.get_mut(k)
        }
    }

    fn listed(room: usize) -> Result<Pin<KBox<NotifierLock<Listed>>>> {
        let state = Listed {
            invalidated: Invalidated::new(),
            mirrors: [Listing::new(); 4],
            removed: [false; 4],
        };
        let lock = KBox::pin_init(new_notifier_lock!(state), GFP_KERNEL)?;
        Invalidated::reserve(&lock, |s: &mut Listed| &mut s.invalidated, room)?;
        Ok(lock)
    }

    /// What a submission's round takes, into `todo`, which has room for every mirror (made
    /// before the lock is taken: nothing allocates under it).
    fn take<'t>(
        g: &mut NotifierGuard<'_, Listed>,
        todo: &'t mut KVVec<usize>,
    ) -> (&'t [usize], u64) {
        // SAFETY: `usize` needs no drop; the length only shrinks.
        unsafe { todo.set_len(0) };
        let generation = Invalidated::take(g, todo, &ByKey, 0..4);
        (&todo[..], generation)
    }

    #[test]
    fn invalidated_list_holds_each_invalid_mirror_once() -> Result {
        let lock = listed(4)?;
        let mut room = KVVec::with_capacity(4, GFP_KERNEL)?;
        let mut g = lock.lock();
        assert!(g.invalidated.is_empty());
        for k in [2, 0, 2, 2] {
            Invalidated::mark(&mut g, k, &ByKey);
        }
        let (todo, generation) = take(&mut g, &mut room);
        assert_eq!(todo, &[2, 0]);
        // Mirror 0 is mirrored again, 2 is not, and nothing raced: the round may publish, and
        // the list keeps 2 alone.
        g.mirrors[0].validate();
        assert!(Invalidated::settle(&mut g, generation, &ByKey, 0..4));
        let (todo, _) = take(&mut g, &mut room);
        assert_eq!(todo, &[2]);
        // A mirror that went leaves the list.
        g.removed[2] = true;
        let (_, generation) = take(&mut g, &mut room);
        assert!(Invalidated::settle(&mut g, generation, &ByKey, 0..4));
        assert!(g.invalidated.is_empty());
        Ok(())
    }

    #[test]
    fn invalidated_list_refuses_rounds_an_invalidation_raced() -> Result {
        let lock = listed(4)?;
        let mut room = KVVec::with_capacity(4, GFP_KERNEL)?;
        let mut g = lock.lock();
        Invalidated::mark(&mut g, 1, &ByKey);
        let (_, generation) = take(&mut g, &mut room);
        g.mirrors[1].validate();
        // An invalidation of a mirror with entries came before the round wrote them.
        Invalidated::mark(&mut g, 1, &ByKey);
        g.invalidated.publication().begin_clearing(false);
        assert!(!Invalidated::settle(&mut g, generation, &ByKey, 0..4));
        // One that waits for jobs: no round publishes until it has cleared the entries.
        let (_, generation) = take(&mut g, &mut room);
        g.invalidated.publication().begin_clearing(true);
        g.mirrors[1].validate();
        let (_, after) = take(&mut g, &mut room);
        assert!(!Invalidated::settle(&mut g, after, &ByKey, 0..4));
        g.invalidated.publication().end_clearing();
        assert!(!Invalidated::settle(&mut g, generation, &ByKey, 0..4));
        assert!(Invalidated::settle(&mut g, after, &ByKey, 0..4));
        Ok(())
    }

    #[test]
    fn invalidated_list_that_overflows_looks_at_every_mirror() -> Result {
        // Room for one mirror on the list; four are marked.
        let lock = listed(1)?;
        let mut room = KVVec::with_capacity(4, GFP_KERNEL)?;
        let mut g = lock.lock();
        for k in 0..4 {
            Invalidated::mark(&mut g, k, &ByKey);
        }
        assert_eq!(g.invalidated.room(4), 4);
        // All four are taken: the list could not hold them, every mirror was looked at.
        let (todo, generation) = take(&mut g, &mut room);
        assert_eq!(todo, &[0, 1, 2, 3]);
        g.mirrors[1].validate();
        g.mirrors[3].validate();
        assert!(Invalidated::settle(&mut g, generation, &ByKey, 0..4));
        let (todo, _) = take(&mut g, &mut room);
        let mut left = [false; 4];
        for &k in todo.iter() {
            left[k] = true;
        }
        assert_eq!(left, [true, false, true, false]);
        Ok(())
    }
}
