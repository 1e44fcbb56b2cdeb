// SPDX-License-Identifier: GPL-2.0

//! The protocol around the range lock, and the checks of what it guarantees.
//!
//! A [`World`] is one virtual GPU mirroring one range of [`PAGES`] pages of one address space:
//!
//! - the CPU side (the core MM): the CPU page table, which physical page each virtual page
//!   maps, and the address space's notifier sequence, odd while invalidations run;
//!   [`World::invalidate`] is an invalidation of a range, from `invalidate_range_start` to
//!   `invalidate_range_end`, that maps new pages in it (or, if its callback fails, changes
//!   nothing);
//! - the driver side (hmmgpu): the interval notifier's sequence, the notifier lock and what it
//!   protects (the device page table, whether the mirror is on the invalidated list, the
//!   invalidation generation, the callbacks clearing, the last job published), the range lock
//!   (the kernel's protocol over [`LoomPlatform`]) and the jobs;
//! - the mirrors: [`World::mirror`] (fault mode: snapshot, commit) and [`World::submit`]
//!   (prefault mode: take the invalidated list, snapshot, commit, publish a job), and
//!   [`World::run_jobs`], the GPU running the published jobs.
//!
//! Every step that changes the CPU or the device page table, publishes a job or takes a range
//! checks the property it must keep, against a ghost copy of the state: the ghost is not a
//! `loom` object, so that it adds no interleavings, and each check runs in the same step as the
//! change it checks. The messages start with the property broken: (a) a device entry maps a
//! page the CPU does not, (b) a job races with an invalidation, (d) a mirror is overtaken or
//! makes no progress. (c), deadlocks and lost wake-ups, `loom` reports itself.

use crate::invalidated::{Listing, Publication};
use crate::platform::{LoomPlatform, Patience};
use crate::protocol::{self, Node, Platform, Side};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Condvar, Mutex, MutexGuard};
use std::cell::UnsafeCell;
use std::sync::{Mutex as GhostLock, MutexGuard as GhostGuard, PoisonError};

/// Panics with a failed check's message and what happened before, if `cond` is false.
macro_rules! check {
    ($ghost:expr, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            let ghost: &Ghost = &$ghost;
            panic!(
                "{}\nwhat happened, in order:\n  {}",
                format_args!($($msg)+),
                ghost.log.join("\n  ")
            );
        }
    };
}

/// The pages of the address space, virtual and device: `0..PAGES`.
pub const PAGES: usize = 2;

/// The queue entries of the actors, one each (see [`Actor`]).
const NODES: usize = 5;

/// Owners are numbered `1..OWNERS`.
const OWNERS: usize = 5;

/// At most this many rounds of a mirror: more is a failure to make progress (every test has
/// fewer invalidations).
const MAX_ROUNDS: usize = 4;

/// The mirror commits without checking the notifier sequence.
const MUTANT_NO_READ_RETRY: bool = cfg!(feature = "mutant-no-read-retry");
/// The invalidation callback sets the notifier sequence last, after clearing.
const MUTANT_SET_SEQ_LATE: bool = cfg!(feature = "mutant-set-seq-late");

/// A range of pages, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// The first page.
    pub start: usize,
    /// The page after the last.
    pub end: usize,
}

impl Range {
    /// The pages `[start, end)`.
    pub const fn new(start: usize, end: usize) -> Self {
        assert!(start < end && end <= PAGES);
        Self { start, end }
    }

    /// Whether the ranges share a page.
    pub fn overlaps(self, other: Range) -> bool {
        self.start < other.end && other.start < self.end
    }

    fn intersection(self, other: Range) -> Option<Range> {
        self.overlaps(other).then(|| Range {
            start: self.start.max(other.start),
            end: self.end.min(other.end),
        })
    }

    fn pages(self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// How the device learns of the CPU page table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The device faults: a mirror writes the entries, an invalidation clears them.
    Fault,
    /// The device cannot fault: a submission mirrors the invalidated mirrors and publishes its
    /// job only if no invalidation raced; an invalidation waits for the jobs that may use the
    /// pages before it clears the entries.
    Prefault,
}

/// The start of a [`World`].
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Fault or prefault.
    pub mode: Mode,
    /// Whether invalidations wait for mirrors until they are done, or overtake them.
    pub patience: Patience,
    /// The mirrored range (the interval notifier's).
    pub mirror: Range,
    /// Whether the range is mirrored already: its device entries are those of the CPU, and
    /// (prefault) it is valid and mapped. Else its entries are clear and (prefault) it is on
    /// the invalidated list.
    pub mirrored: bool,
    /// Prefault: whether a thread runs the jobs ([`World::run_jobs`]); else a published job
    /// runs at once, in the step that publishes it.
    pub job_thread: bool,
    /// Prefault: whether a job using the mirror is published and running at the start.
    pub running_job: bool,
}

impl Config {
    /// Fault mode, `mirror` mirrored already or not.
    pub const fn fault(patience: Patience, mirror: Range, mirrored: bool) -> Self {
        Self {
            mode: Mode::Fault,
            patience,
            mirror,
            mirrored,
            job_thread: false,
            running_job: false,
        }
    }

    /// Prefault mode, the whole address space mirrored already or not, and jobs run at once.
    pub const fn prefault(patience: Patience, mirrored: bool) -> Self {
        Self {
            mode: Mode::Prefault,
            patience,
            mirror: Range::new(0, PAGES),
            mirrored,
            job_thread: false,
            running_job: false,
        }
    }

    /// Prefault mode, mirrored, with a job running at the start and a thread running the jobs.
    pub const fn prefault_running(patience: Patience) -> Self {
        Self {
            job_thread: true,
            running_job: true,
            ..Self::prefault(patience, true)
        }
    }
}

/// How an invalidation may wait (`RangeLock::invalidate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// It may block, and waits for earlier overlapping mirrors of other tasks, until their
    /// patience runs out.
    Blocking,
    /// It may block, but runs in memory reclaim: it does not wait, it goes ahead.
    Reclaim,
    /// It may not block (the OOM reaper): it fails rather than wait.
    NonBlocking,
}

impl How {
    fn may_block(self) -> bool {
        self != How::NonBlocking
    }

    fn patient(self) -> bool {
        self == How::Blocking
    }
}

/// Who takes ranges: a task (its owner identity) and the range lock entry it uses.
#[derive(Clone, Copy, Debug)]
pub struct Actor {
    name: &'static str,
    owner: usize,
    node: usize,
}

/// The mirroring task.
pub const MIRROR: Actor = Actor {
    name: "mirror",
    owner: 1,
    node: 0,
};
/// The mirroring task's own invalidations (a copy-on-write break its fault causes).
const COW: Actor = Actor {
    name: "mirror's fault",
    owner: 1,
    node: 1,
};
/// Another task, invalidating.
pub const TASK_A: Actor = Actor {
    name: "task A",
    owner: 2,
    node: 2,
};
/// A third task, invalidating.
pub const TASK_B: Actor = Actor {
    name: "task B",
    owner: 3,
    node: 3,
};
/// Another task, mirroring the same range.
pub const MIRROR_2: Actor = Actor {
    name: "mirror 2",
    owner: 4,
    node: 4,
};

/// The address space's notifier state (`struct mmu_notifier_subscriptions`).
struct Notifiers {
    /// `invalidate_seq`: odd while invalidations are active.
    seq: usize,
    /// `active_invalidate_ranges`.
    active: usize,
}

/// What the driver's notifier lock protects (hmmgpu's `State`, and the mirror's).
struct State {
    /// Whether the mirror must be mirrored again (it is on the invalidated list).
    listing: Listing,
    /// The mirror has entries in the device page table.
    mapped: bool,
    /// The invalidation generation, and the callbacks waiting for a job before they clear.
    publication: Publication,
    /// The last job published.
    last_fence: Option<usize>,
}

/// The GPU's job queue.
struct Gpu {
    /// Jobs published, numbered from 1.
    published: usize,
    /// The jobs (bit `job`) of submissions that did not mirror: they may find entries cleared
    /// (and fault), but never stale ones.
    unmirrored: u64,
    /// Jobs done (they run in order).
    done: usize,
    /// No more jobs will be published.
    closed: bool,
}

/// A range lock entry, shared by reference with the queue.
struct Slot(UnsafeCell<Node>);

// SAFETY: A node is accessed by its actor while unlinked, and with the queue locked while
// linked (the protocol's contract).
unsafe impl Sync for Slot {}
// SAFETY: As above.
unsafe impl Send for Slot {}

/// A range held, in the ghost.
#[derive(Debug)]
struct Holder {
    owner: usize,
    side: Side,
    range: Range,
    /// A mirror's patience.
    until: u64,
    /// An invalidation that does not wait for mirrors (in reclaim).
    overtakes: bool,
}

/// The ghost state the checks read: copies of what the model's threads share, and what the
/// kernel does not track.
#[derive(Default)]
struct Ghost {
    /// The CPU page table.
    cpu: [usize; PAGES],
    /// The device page table.
    dev: [usize; PAGES],
    /// The ranges held, and by whom.
    held: Vec<Holder>,
    /// How many times each owner's invalidations set the notifier sequence, but for those in
    /// reclaim (which may overtake mirrors).
    set_seqs: [usize; OWNERS],
    /// Invalidations between marking the mirror invalid and clearing its entries.
    clearing: usize,
    /// The page of each entry the running job uses (0: none).
    using: [usize; PAGES],
    /// The last physical page allocated.
    last_page: usize,
    /// What happened, for the report of a failed check.
    log: Vec<String>,
}

impl Ghost {
    fn set_seqs_of_others(&self, owner: usize) -> usize {
        (0..OWNERS)
            .filter(|&o| o != owner)
            .map(|o| self.set_seqs[o])
            .sum()
    }
}

/// A range a mirror holds.
struct Hold {
    /// Its patience.
    until: u64,
    /// The sequence settings of other tasks' invalidations when it took it.
    others: usize,
}

/// A GPU mirroring a range of an address space. See the module documentation.
pub struct World {
    cfg: Config,
    /// The range lock.
    range_lock: LoomPlatform,
    notifiers: Mutex<Notifiers>,
    /// `subscriptions->wq`: readers waiting for invalidations to end.
    notifiers_wq: Condvar,
    /// The interval notifier's `invalidate_seq`.
    seq: AtomicUsize,
    /// The CPU page table: the physical page of each virtual page. Its lock is the page table
    /// lock: faults read, and invalidations change, the entries of a range in one go.
    cpu: Mutex<[usize; PAGES]>,
    /// The notifier lock.
    state: Mutex<State>,
    /// The device page table (0: clear): written with the notifier lock held, read by the jobs.
    /// Its own lock only makes each access whole.
    dev: Mutex<[usize; PAGES]>,
    gpu: Mutex<Gpu>,
    /// Jobs waiting to be published, invalidations waiting for jobs to be done.
    gpu_wq: Condvar,
    nodes: [Slot; NODES],
    ghost: GhostLock<Ghost>,
}

impl World {
    /// A world as `cfg` says: page `p` maps physical page `p + 1`.
    pub fn new(cfg: Config) -> Self {
        assert!(!cfg.running_job || (cfg.mode == Mode::Prefault && cfg.mirrored && cfg.job_thread));
        let cpu: [usize; PAGES] = std::array::from_fn(|p| p + 1);
        let dev = std::array::from_fn(|p| match cfg.mirrored && cfg.mirror.pages().contains(&p) {
            true => cpu[p],
            false => 0,
        });
        let job = cfg.running_job as usize;
        Self {
            cfg,
            range_lock: LoomPlatform::new(cfg.patience),
            // As `mmu_notifier_register` and `mmu_interval_notifier_insert` start them: the
            // interval's sequence is odd and not the address space's, which no invalidation
            // makes odd yet.
            notifiers: Mutex::new(Notifiers { seq: 2, active: 0 }),
            notifiers_wq: Condvar::new(),
            seq: AtomicUsize::new(1),
            cpu: Mutex::new(cpu),
            state: Mutex::new(State {
                listing: {
                    let mut listing = Listing::new();
                    if !cfg.mirrored && listing.mark() {
                        listing.set_listed(true);
                    }
                    listing
                },
                mapped: cfg.mirrored,
                publication: Publication::new(),
                last_fence: cfg.running_job.then_some(job),
            }),
            dev: Mutex::new(dev),
            gpu: Mutex::new(Gpu {
                published: job,
                unmirrored: 0,
                done: 0,
                closed: false,
            }),
            gpu_wq: Condvar::new(),
            nodes: std::array::from_fn(|_| {
                Slot(UnsafeCell::new(Node::new(0, 0, Side::Mirror, 0, 0)))
            }),
            ghost: GhostLock::new(Ghost {
                cpu,
                dev,
                last_page: PAGES,
                ..Ghost::default()
            }),
        }
    }

    /// How many times takers of the range lock waited.
    pub fn waits(&self) -> usize {
        self.range_lock.waits()
    }

    fn ghost(&self) -> GhostGuard<'_, Ghost> {
        self.ghost.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes what `who` did, for the report of a failed check.
    fn note(&self, who: &str, what: std::fmt::Arguments<'_>) {
        self.ghost().log.push(format!("{who}: {what}"));
    }

    fn node(&self, actor: Actor) -> *mut Node {
        self.nodes[actor.node].0.get()
    }

    // The core MM's side of the notifier sequence (`mm/mmu_notifier.c`).

    /// `mn_itree_inv_start_range`: the sequence becomes odd; returns it, the invalidation's.
    fn invalidate_start(&self, who: &str) -> usize {
        let mut n = self.notifiers.lock().unwrap();
        n.active += 1;
        n.seq |= 1;
        self.note(
            who,
            format_args!("invalidate_range_start, sequence {}", n.seq),
        );
        n.seq
    }

    /// `mn_itree_inv_end`: the last invalidation to end makes the sequence even and wakes the
    /// readers.
    fn invalidate_end(&self, who: &str) {
        let mut n = self.notifiers.lock().unwrap();
        n.active -= 1;
        let end = n.active == 0 && n.seq & 1 == 1;
        if end {
            n.seq += 1;
        }
        self.note(
            who,
            format_args!("invalidate_range_end, sequence {}", n.seq),
        );
        drop(n);
        if end {
            self.notifiers_wq.notify_all();
        }
    }

    /// `mmu_interval_read_begin`: waits if an invalidation running now set the interval's
    /// sequence, until every invalidation ends.
    fn read_begin(&self, who: &str) -> usize {
        let mut n = self.notifiers.lock().unwrap();
        let seq = self.seq.load(SeqCst);
        if seq == n.seq {
            self.note(who, format_args!("read_begin waits"));
            while n.seq == seq {
                n = self.notifiers_wq.wait(n).unwrap();
            }
        }
        self.note(who, format_args!("read_begin -> {seq}"));
        seq
    }

    /// `mmu_interval_set_seq`, with the notifier lock held.
    fn set_seq(&self, _state: &MutexGuard<'_, State>, seq: usize, actor: Actor, how: How) {
        self.seq.store(seq, SeqCst);
        if how != How::Reclaim {
            self.ghost().set_seqs[actor.owner] += 1;
        }
        self.note(actor.name, format_args!("set_seq({seq})"));
    }

    /// `mmu_interval_read_retry`, with the notifier lock held; checks that a mirror `hold`ing
    /// its range was not overtaken by another task's invalidation before its patience ran out.
    fn read_retry(
        &self,
        _state: &MutexGuard<'_, State>,
        seq: usize,
        actor: Actor,
        hold: &Hold,
    ) -> bool {
        let retry = self.seq.load(SeqCst) != seq;
        let now = self.range_lock.now();
        self.note(actor.name, format_args!("read_retry({seq}) -> {retry}"));
        let ghost = self.ghost();
        check!(
            ghost,
            now >= hold.until || ghost.set_seqs_of_others(actor.owner) == hold.others,
            "(d) another task's invalidation overtook a mirror holding its range"
        );
        retry && !MUTANT_NO_READ_RETRY
    }

    // The range lock.

    /// Takes `range` for a mirror (`RangeWaiter::acquire`).
    fn take(&self, actor: Actor, range: Range) -> Hold {
        let node = self.node(actor);
        let until = self.range_lock.now() + 1;
        // SAFETY: The node is the actor's, and not linked.
        unsafe { (*node).set(range.start, range.end, actor.owner, until) };
        // SAFETY: The node stays in place, in `self`, until it is released.
        unsafe { protocol::acquire(&self.range_lock, node) };
        let now = self.range_lock.now();
        self.note(actor.name, format_args!("holds {range:?} until {until}"));
        let mut ghost = self.ghost();
        // Mirrors never hold overlapping ranges together; a mirror overtakes no invalidation,
        // but one may overtake it once its patience ran out.
        let other = ghost.held.iter().find(|h| {
            h.owner != actor.owner
                && h.range.overlaps(range)
                && (h.side == Side::Mirror || (!h.overtakes && now < until))
        });
        check!(
            ghost,
            other.is_none(),
            "(d) a mirror took {range:?} while {other:?} holds it"
        );
        ghost.held.push(Holder {
            owner: actor.owner,
            side: Side::Mirror,
            range,
            until,
            overtakes: false,
        });
        Hold {
            until,
            others: ghost.set_seqs_of_others(actor.owner),
        }
    }

    /// Releases what `actor` holds.
    fn give_back(&self, actor: Actor, side: Side) {
        self.ghost()
            .held
            .retain(|h| h.owner != actor.owner || h.side != side);
        self.note(actor.name, format_args!("releases its range"));
        // SAFETY: The node is valid, and linked into this queue if at all.
        let held = unsafe { protocol::release(&self.range_lock, self.node(actor)) };
        check!(self.ghost(), held, "a range released was not held");
    }

    // The CPU side.

    /// The fault of a mirror: reads the CPU page table of `range`.
    fn fault(&self, actor: Actor, range: Range) -> [usize; PAGES] {
        let mut snapshot = [0; PAGES];
        let cpu = self.cpu.lock().unwrap();
        snapshot[range.start..range.end].copy_from_slice(&cpu[range.start..range.end]);
        drop(cpu);
        self.note(actor.name, format_args!("faults {range:?}: {snapshot:?}"));
        snapshot
    }

    /// Step (3) of an invalidation: maps new pages in `range`. Checks that no device entry and
    /// no job uses the pages unmapped.
    fn remap(&self, actor: Actor, range: Range) {
        let mut cpu = self.cpu.lock().unwrap();
        let mut ghost = self.ghost();
        for p in range.pages() {
            ghost.last_page += 1;
            let page = ghost.last_page;
            cpu[p] = page;
            let old = ghost.cpu[p];
            ghost.log.push(format!(
                "{}: the CPU maps page {page} at {p}, unmaps {old}",
                actor.name
            ));
            check!(
                ghost,
                ghost.dev[p] == 0,
                "(a) the CPU unmapped page {old} from page {p}, the device still maps it"
            );
            check!(
                ghost,
                ghost.using[p] != old,
                "(b) the CPU unmapped page {old} from page {p}, a job still uses it"
            );
            ghost.cpu[p] = page;
        }
    }

    /// Writes the entries of `range` from `snapshot`, with the notifier lock held. Checks that
    /// the snapshot is current.
    fn commit(
        &self,
        _state: &MutexGuard<'_, State>,
        actor: Actor,
        range: Range,
        snapshot: &[usize; PAGES],
    ) {
        let mut dev = self.dev.lock().unwrap();
        let mut ghost = self.ghost();
        for p in range.pages() {
            let page = snapshot[p];
            dev[p] = page;
            ghost.log.push(format!(
                "{}: writes page {page} in the entry of {p}",
                actor.name
            ));
            check!(
                ghost,
                page == ghost.cpu[p],
                "(a) a mirror wrote page {page} in the entry of page {p}, the CPU maps {}",
                ghost.cpu[p]
            );
            ghost.dev[p] = page;
        }
    }

    /// Clears the entries of `range`, with the notifier lock held.
    fn clear(&self, _state: &MutexGuard<'_, State>, actor: Actor, range: Range) {
        let mut dev = self.dev.lock().unwrap();
        let mut ghost = self.ghost();
        for p in range.pages() {
            dev[p] = 0;
            ghost.dev[p] = 0;
        }
        ghost
            .log
            .push(format!("{}: clears the entries of {range:?}", actor.name));
    }

    // The mirrors.

    /// Fault mode: mirrors the range until a snapshot commits; returns the rounds it took. With
    /// `cow`, the first fault breaks copy-on-write: invalidates the range itself, from the
    /// mirroring task, holding the range.
    ///
    /// # Panics
    ///
    /// After `MAX_ROUNDS` (4) rounds, or when a check fails.
    pub fn mirror(&self, actor: Actor, cow: bool) -> usize {
        assert_eq!(self.cfg.mode, Mode::Fault);
        let range = self.cfg.mirror;
        for round in 1..=MAX_ROUNDS {
            let seq = self.read_begin(actor.name);
            let hold = self.take(actor, range);
            if cow && round == 1 {
                assert_eq!(actor.owner, COW.owner);
                let done = self.invalidate(COW, range, How::Blocking);
                check!(self.ghost(), done, "a blocking invalidation failed");
            }
            let snapshot = self.fault(actor, range);
            let state = self.state.lock().unwrap();
            if self.read_retry(&state, seq, actor, &hold) {
                drop(state);
                self.give_back(actor, Side::Mirror);
                continue;
            }
            self.commit(&state, actor, range, &snapshot);
            drop(state);
            self.give_back(actor, Side::Mirror);
            return round;
        }
        check!(
            self.ghost(),
            false,
            "(d) a mirror made no progress in {MAX_ROUNDS} rounds"
        );
        unreachable!()
    }

    /// Prefault mode: a submission. Takes the invalidated list, mirrors the mirror again if it
    /// is on it, and publishes a job if no invalidation raced, in `max_rounds` at most. Returns
    /// the round that published, if any.
    pub fn submit(&self, actor: Actor, max_rounds: usize) -> Option<usize> {
        self.submit_as(actor, max_rounds, true)
    }

    /// Prefault mode: a submission that mirrors nothing, as one from another process than the
    /// VM's (or one that finds the mirror's range unmapped): the mirror stays cleared, and its
    /// job, if published, faults on what is cleared. It must not be published over entries an
    /// invalidation is still to clear. Returns the round that published, if any.
    pub fn submit_foreign(&self, actor: Actor, max_rounds: usize) -> Option<usize> {
        self.submit_as(actor, max_rounds, false)
    }

    fn submit_as(&self, actor: Actor, max_rounds: usize, mirrors: bool) -> Option<usize> {
        assert_eq!(self.cfg.mode, Mode::Prefault);
        let range = self.cfg.mirror;
        for round in 1..=max_rounds {
            let (todo, generation) = {
                let state = self.state.lock().unwrap();
                (state.listing.is_invalid(), state.publication.generation())
            };
            self.note(
                actor.name,
                format_args!("takes the invalidated list: {todo}, generation {generation}"),
            );
            let snapshot = (todo && mirrors).then(|| {
                let seq = self.read_begin(actor.name);
                let hold = self.take(actor, range);
                (seq, hold, self.fault(actor, range))
            });
            let mut state = self.state.lock().unwrap();
            let mut raced = false;
            if let Some((seq, hold, snapshot)) = &snapshot {
                raced = self.read_retry(&state, *seq, actor, hold);
                if !raced {
                    self.commit(&state, actor, range, snapshot);
                    state.listing.validate();
                    state.mapped = true;
                }
            }
            let published = !raced && self.finish(&mut state, actor, generation, mirrors);
            drop(state);
            if snapshot.is_some() {
                self.give_back(actor, Side::Mirror);
            }
            if published {
                return Some(round);
            }
            // As the driver: wait for the job an invalidation waits for, rather than spin.
            let busy = {
                let state = self.state.lock().unwrap();
                state.last_fence.filter(|_| state.publication.is_clearing())
            };
            if let Some(job) = busy {
                self.wait_job(job);
            }
        }
        None
    }

    /// Publishes a job unless a mapped mirror was invalidated since `generation` or an
    /// invalidation is clearing (the kernel's `Publication::may_publish`). Returns whether it
    /// did.
    fn finish(
        &self,
        state: &mut MutexGuard<'_, State>,
        actor: Actor,
        generation: u64,
        mirrored: bool,
    ) -> bool {
        if !state.publication.may_publish(generation) {
            self.note(
                actor.name,
                format_args!(
                    "does not publish: generation {}, clearing: {}",
                    state.publication.generation(),
                    state.publication.is_clearing()
                ),
            );
            return false;
        }
        let mut gpu = self.gpu.lock().unwrap();
        gpu.published += 1;
        let job = gpu.published;
        if !mirrored {
            gpu.unmirrored |= 1 << job;
        }
        if !self.cfg.job_thread {
            gpu.done = job;
        }
        {
            let mut ghost = self.ghost();
            ghost
                .log
                .push(format!("{}: publishes job {job}", actor.name));
            check!(
                ghost,
                ghost.clearing == 0,
                "(b) a job is published while an invalidation is clearing"
            );
            for p in self.cfg.mirror.pages() {
                // A job that mirrored finds every entry current; one that did not may find
                // them cleared (it faults), never stale.
                let current = match mirrored {
                    true => ghost.dev[p] != 0 && ghost.dev[p] == ghost.cpu[p],
                    false => ghost.dev[p] == 0 || ghost.dev[p] == ghost.cpu[p],
                };
                check!(
                    ghost,
                    current,
                    "(b) job {job} is published with the entry of page {p} at {}, the CPU maps {}",
                    ghost.dev[p],
                    ghost.cpu[p]
                );
            }
        }
        drop(gpu);
        if self.cfg.job_thread {
            self.gpu_wq.notify_all();
        }
        state.last_fence = Some(job);
        true
    }

    // The jobs.

    fn signaled(&self, job: usize) -> bool {
        self.gpu.lock().unwrap().done >= job
    }

    fn wait_job(&self, job: usize) {
        let mut gpu = self.gpu.lock().unwrap();
        while gpu.done < job {
            gpu = self.gpu_wq.wait(gpu).unwrap();
        }
    }

    /// The GPU: runs the jobs, in the order they are published, until [`Self::close_jobs`].
    /// A job reads the mirror's entries, uses the pages they map, and signals its fence.
    pub fn run_jobs(&self) {
        for job in 1.. {
            {
                let mut gpu = self.gpu.lock().unwrap();
                while gpu.published < job && !gpu.closed {
                    gpu = self.gpu_wq.wait(gpu).unwrap();
                }
                if gpu.published < job {
                    return;
                }
            }
            let unmirrored = self.gpu.lock().unwrap().unmirrored & 1 << job != 0;
            let dev = *self.dev.lock().unwrap();
            let mut ghost = self.ghost();
            for p in self.cfg.mirror.pages() {
                let page = dev[p];
                if page == 0 && unmirrored {
                    ghost
                        .log
                        .push(format!("job {job}: faults on the entry of {p}"));
                    continue;
                }
                ghost.log.push(format!(
                    "job {job}: uses page {page} through the entry of {p}"
                ));
                check!(
                    ghost,
                    page != 0,
                    "(b) job {job} found the entry of page {p} cleared"
                );
                check!(
                    ghost,
                    page == ghost.cpu[p],
                    "(b) job {job} uses page {page} through the entry of page {p}, unmapped"
                );
                ghost.using[p] = page;
            }
            drop(ghost);
            let mut gpu = self.gpu.lock().unwrap();
            self.ghost().using = [0; PAGES];
            self.note("job", format_args!("{job} done"));
            gpu.done = job;
            drop(gpu);
            self.gpu_wq.notify_all();
        }
    }

    /// Ends [`Self::run_jobs`] once the jobs published are done.
    pub fn close_jobs(&self) {
        self.gpu.lock().unwrap().closed = true;
        self.gpu_wq.notify_all();
    }

    // The invalidations.

    /// An invalidation of `range`, by `actor`: the notifier sequence is odd, the callback runs
    /// and, if it succeeds, the CPU maps new pages in `range`; then the sequence ends. An
    /// invalidation that may not block fails rather than wait. Returns whether it succeeded.
    pub fn invalidate(&self, actor: Actor, range: Range, how: How) -> bool {
        let seq = self.invalidate_start(actor.name);
        let done = self.callback(actor, range, how, seq);
        if done {
            self.remap(actor, range);
        } else {
            self.note(actor.name, format_args!("fails"));
        }
        self.invalidate_end(actor.name);
        done
    }

    /// The driver's callback, in the range lock (`RangeLock::invalidate`).
    fn callback(&self, actor: Actor, range: Range, how: How, seq: usize) -> bool {
        let node = self.node(actor);
        let fresh = Node::new(
            range.start,
            range.end,
            Side::Invalidate,
            actor.owner,
            u64::MAX,
        );
        // SAFETY: The node is the actor's, and not linked: a fresh one, as on the stack.
        unsafe { node.write(fresh) };
        // SAFETY: The node stays in place, in `self`, until it is released.
        if !unsafe {
            protocol::begin_invalidate(&self.range_lock, node, how.may_block(), how.patient())
        } {
            return false;
        }
        {
            let now = self.range_lock.now();
            let mut ghost = self.ghost();
            ghost.log.push(format!("{}: holds {range:?}", actor.name));
            let mirror = ghost.held.iter().find(|h| {
                h.owner != actor.owner
                    && h.side == Side::Mirror
                    && h.range.overlaps(range)
                    && now < h.until
            });
            check!(
                ghost,
                how == How::Reclaim || mirror.is_none(),
                "(d) an invalidation of {range:?} went ahead while {mirror:?} holds it"
            );
            ghost.held.push(Holder {
                owner: actor.owner,
                side: Side::Invalidate,
                range,
                until: u64::MAX,
                overtakes: how == How::Reclaim,
            });
        }
        let done = self.clear_mirror(actor, range, how, seq);
        self.give_back(actor, Side::Invalidate);
        done
    }

    /// hmmgpu's `Invalidate::invalidate` for the mirror.
    fn clear_mirror(&self, actor: Actor, range: Range, how: How, seq: usize) -> bool {
        let mut state = match how.may_block() {
            true => self.state.lock().unwrap(),
            false => match self.state.try_lock() {
                Ok(state) => state,
                Err(_) => return false,
            },
        };
        let Some(overlap) = range.intersection(self.cfg.mirror) else {
            // Another mirror's callback: nothing of this one changes.
            return true;
        };
        if !MUTANT_SET_SEQ_LATE {
            self.set_seq(&state, seq, actor, how);
        }
        let done = match self.cfg.mode {
            Mode::Fault => {
                self.clear(&state, actor, overlap);
                true
            }
            Mode::Prefault if !state.mapped => {
                // The one mirror: it is listed once, and stays listed (the kernel's list).
                if state.listing.mark() {
                    state.listing.set_listed(true);
                }
                true
            }
            Mode::Prefault => {
                let wait = state.last_fence.filter(|&job| !self.signaled(job));
                if wait.is_some() && !how.may_block() {
                    false
                } else {
                    if state.listing.mark() {
                        state.listing.set_listed(true);
                    }
                    state.publication.begin_clearing(wait.is_some());
                    if let Some(job) = wait {
                        self.ghost().clearing += 1;
                        self.note(actor.name, format_args!("waits for job {job}"));
                        drop(state);
                        self.wait_job(job);
                        state = self.state.lock().unwrap();
                        state.publication.end_clearing();
                        self.ghost().clearing -= 1;
                    }
                    // `clear_locked`: the whole mapping.
                    self.clear(&state, actor, self.cfg.mirror);
                    state.mapped = false;
                    true
                }
            }
        };
        if MUTANT_SET_SEQ_LATE {
            // In a critical section of its own, after the one that cleared.
            drop(state);
            state = self.state.lock().unwrap();
            self.set_seq(&state, seq, actor, how);
        }
        drop(state);
        done
    }

    /// Checks the end state, once every thread is done: nothing held, no invalidation running,
    /// and a mirror marked valid has the entries of the pages the CPU maps.
    pub fn check_quiescent(&self) {
        assert!(self.range_lock.lock().is_empty(), "a range is still taken");
        {
            let n = self.notifiers.lock().unwrap();
            assert!(
                n.active == 0 && n.seq & 1 == 0,
                "an invalidation did not end"
            );
        }
        let state = self.state.lock().unwrap();
        let ghost = self.ghost();
        check!(ghost, ghost.held.is_empty(), "ranges still held");
        check!(
            ghost,
            !state.publication.is_clearing() && ghost.clearing == 0,
            "an invalidation is still clearing"
        );
        for p in 0..PAGES {
            check!(
                ghost,
                ghost.dev[p] == 0 || ghost.dev[p] == ghost.cpu[p],
                "(a) the entry of page {p} is not the CPU's"
            );
        }
        if self.cfg.mode == Mode::Prefault && !state.listing.is_invalid() {
            for p in self.cfg.mirror.pages() {
                check!(
                    ghost,
                    ghost.dev[p] == ghost.cpu[p],
                    "(a) an invalidation was lost: the mirror is valid, the entry of page {p} is \
                     not the CPU's"
                );
            }
        }
    }
}
