// SPDX-License-Identifier: GPL-2.0

//! The rules of a [`RangeLock`](super::RangeLock): who waits for whom.
//!
//! This file depends on nothing but `core`, so that the same source is built on the host and
//! model-checked there (`tools/hmmgpu/model`), against every interleaving of two threads, and
//! of three within a bound of 4 preemptions. The kernel side ([`super`]) adds the spinlock that protects a [`Queue`] and the wait
//! queue its takers sleep on.
//!
//! A queue holds the ranges being mirrored and being invalidated, in the order they arrived. A
//! taker may go ahead once no entry before it that it must wait for overlaps its range:
//!
//! - a [`Side::Mirror`] (a snapshot being faulted in and committed) waits for every earlier
//!   overlapping entry, mirror or invalidation;
//! - a [`Side::Invalidate`] waits for earlier overlapping mirrors only (invalidations of the
//!   same range run together, as the core MM lets them), and never for a mirror of its own
//!   task: the copy-on-write break, the migration or the direct reclaim its own fault causes
//!   must not wait for that fault to end. Nor for the entries that arrived after one of its own
//!   task: they may wait for it, and waiting for them would be waiting for itself.
//!
//! Both sides wait for the earlier ones and make the later ones wait: neither starves.
//! Entries of the same task never wait for each other. Whether an invalidation waits at all,
//! and for how long, is the caller's choice ([`Verdict::Wait`]): the kernel side bounds it.

use core::{ops::DerefMut, ptr};

/// Who takes a range.
///
/// # Examples
///
/// ```
/// use kernel::mm::range_lock::protocol::{Node, Queue, Side, Verdict};
///
/// let mut queue = Queue::new();
/// let mut invalidation = Node::new(0, 0x1000, Side::Invalidate, 1, 0);
/// // SAFETY: `invalidation` stays in place, and is unlinked before it goes.
/// unsafe { queue.link(&mut invalidation) };
/// // Another task's mirror of the range waits for the invalidation; another invalidation runs
/// // with it.
/// let mirror = Node::new(0, 0x1000, Side::Mirror, 2, 0);
/// assert_eq!(queue.verdict(&mirror, 0), Verdict::Wait { until: 0 });
/// assert_eq!(queue.verdict(&Node::new(0, 0x1000, Side::Invalidate, 2, 0), 0), Verdict::Go);
/// // SAFETY: `invalidation` is linked into `queue`.
/// unsafe { queue.unlink(&mut invalidation) };
/// assert_eq!(queue.verdict(&mirror, 0), Verdict::Go);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A snapshot of the CPU page table of the range, from before it is faulted in until the
    /// device entries written from it are committed.
    Mirror,
    /// An invalidation callback of the range.
    Invalidate,
}

/// What a taker must do now.
///
/// # Examples
///
/// ```
/// use kernel::mm::range_lock::protocol::{Node, Queue, Side, Verdict};
///
/// let mut queue = Queue::new();
/// let mut mirror = Node::new(0, 0x2000, Side::Mirror, 1, 100);
/// // SAFETY: `mirror` stays in place, and is unlinked before it goes.
/// unsafe { queue.link(&mut mirror) };
/// // Another task's invalidation waits for the mirror until its patience runs out.
/// let invalidation = Node::new(0x1000, 0x3000, Side::Invalidate, 2, 0);
/// assert_eq!(queue.verdict(&invalidation, 50), Verdict::Wait { until: 100 });
/// assert_eq!(queue.verdict(&invalidation, 100), Verdict::Go);
/// // SAFETY: `mirror` is linked into `queue`.
/// unsafe { queue.unlink(&mut mirror) };
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing it waits for overlaps it: it holds its range.
    Go,
    /// An earlier entry it must wait for overlaps it; an invalidation waits until `until` at
    /// most, the time that entry's patience runs out.
    Wait {
        /// When the entry waited for stops being waited for (by invalidations).
        until: u64,
    },
}

/// An entry of a [`Queue`]: a range, who takes it, and its links.
///
/// # Examples
///
/// ```
/// use kernel::mm::range_lock::protocol::{Node, Queue, Side, Verdict};
///
/// let mut queue = Queue::new();
/// let mut node = Node::new(0, 0x1000, Side::Mirror, 1, 0);
/// assert!(!node.is_linked());
/// // An unlinked node may be reused for another range.
/// node.set(0x4000, 0x8000, 1, 10);
/// // SAFETY: `node` stays in place, and is unlinked before it goes.
/// unsafe { queue.link(&mut node) };
/// assert!(node.is_linked());
/// let overlapping = Node::new(0x7000, 0x9000, Side::Mirror, 2, 0);
/// let disjoint = Node::new(0x8000, 0x9000, Side::Mirror, 2, 0);
/// assert_eq!(queue.verdict(&overlapping, 0), Verdict::Wait { until: 10 });
/// assert_eq!(queue.verdict(&disjoint, 0), Verdict::Go);
/// // SAFETY: `node` is linked into `queue`.
/// unsafe { queue.unlink(&mut node) };
/// assert!(!node.is_linked());
/// ```
///
/// # Invariants
///
/// `next` and `prev` are null unless the node is linked into a queue, and then point to the
/// neighbouring linked nodes (or are null at the ends).
#[derive(Debug)]
pub struct Node {
    start: usize,
    end: usize,
    side: Side,
    owner: usize,
    until: u64,
    linked: bool,
    next: *mut Node,
    prev: *mut Node,
}

impl Node {
    /// An unlinked entry for `[start, end)`, taken by `owner` (a task's identity) on `side`.
    /// Invalidations that arrive after it wait for it until `until` at most (a time in the
    /// caller's clock; mirrors wait for it however long it takes).
    pub const fn new(start: usize, end: usize, side: Side, owner: usize, until: u64) -> Self {
        Self {
            start,
            end,
            side,
            owner,
            until,
            linked: false,
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
        }
    }

    /// Whether the node is linked into a queue.
    pub fn is_linked(&self) -> bool {
        self.linked
    }

    /// Sets the range, owner and patience of an unlinked node.
    ///
    /// # Panics
    ///
    /// When the node is linked.
    pub fn set(&mut self, start: usize, end: usize, owner: usize, until: u64) {
        assert!(!self.linked, "a linked range lock node was changed");
        self.start = start;
        self.end = end;
        self.owner = owner;
        self.until = until;
    }

    fn overlaps(&self, other: &Node) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `self`, arriving after `earlier`, must wait for it at time `now`.
    fn waits_for(&self, earlier: &Node, now: u64) -> bool {
        if !self.overlaps(earlier) || self.owner == earlier.owner {
            return false;
        }
        match self.side {
            Side::Mirror => true,
            Side::Invalidate => earlier.side == Side::Mirror && now < earlier.until,
        }
    }
}

/// The entries of a range lock, in arrival order.
///
/// # Examples
///
/// ```
/// use kernel::mm::range_lock::protocol::{Node, Queue, Side, Verdict};
///
/// let mut queue = Queue::new();
/// let mut first = Node::new(0, 0x2000, Side::Mirror, 1, 100);
/// let mut second = Node::new(0x1000, 0x3000, Side::Mirror, 2, 100);
/// // SAFETY: The nodes stay in place, and are unlinked before they go.
/// unsafe {
///     queue.link(&mut first);
///     queue.link(&mut second);
/// }
/// assert_eq!(queue.len(), 2);
/// // Each waits for the overlapping entries that arrived before it only.
/// assert_eq!(queue.verdict(&first, 0), Verdict::Go);
/// assert_eq!(queue.verdict(&second, 0), Verdict::Wait { until: 100 });
/// // An invalidation of the first one's task goes ahead: the first one's fault may cause it.
/// let own = Node::new(0, 0x3000, Side::Invalidate, 1, 0);
/// assert_eq!(queue.verdict(&own, 0), Verdict::Go);
/// // SAFETY: The nodes are linked into `queue`.
/// unsafe {
///     queue.unlink(&mut first);
///     assert_eq!(queue.verdict(&second, 0), Verdict::Go);
///     queue.unlink(&mut second);
/// }
/// assert!(queue.is_empty());
/// ```
///
/// # Invariants
///
/// `head` and `tail` are the ends of a doubly linked list of the linked [`Node`]s (both null
/// when it is empty); every linked node is valid.
#[derive(Debug)]
pub struct Queue {
    head: *mut Node,
    tail: *mut Node,
}

// SAFETY: The queue only points to nodes, which its users access under the lock protecting it.
unsafe impl Send for Queue {}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Queue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
        }
    }

    /// Whether no entry is linked.
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// How many entries are linked.
    pub fn len(&self) -> usize {
        let (mut n, mut cur) = (0, self.head);
        while !cur.is_null() {
            n += 1;
            // SAFETY: By the type invariant, linked nodes are valid.
            cur = unsafe { (*cur).next };
        }
        n
    }

    /// What `node` must do at time `now`, given the entries linked before it (all of them, if
    /// it is not linked: a taker that may not wait asks before it links itself).
    pub fn verdict(&self, node: &Node, now: u64) -> Verdict {
        let mut cur = self.head;
        while !cur.is_null() && !ptr::eq(cur, node) {
            // SAFETY: By the type invariant, linked nodes are valid.
            let earlier = unsafe { &*cur };
            if node.side == Side::Invalidate && earlier.owner == node.owner {
                // An entry of the invalidation's own task: the mirror whose fault invalidates.
                // The entries after it may wait for it, directly or not, and it waits for the
                // invalidation; the entries before it cannot.
                break;
            }
            if node.waits_for(earlier, now) {
                return Verdict::Wait {
                    until: earlier.until,
                };
            }
            cur = earlier.next;
        }
        Verdict::Go
    }

    /// Links `node` last.
    ///
    /// # Safety
    ///
    /// `node` must be valid, not linked, and stay valid and in place until it is unlinked with
    /// [`Self::unlink`].
    pub unsafe fn link(&mut self, node: *mut Node) {
        // SAFETY: The caller guarantees `node` is valid; the tail is valid by the invariant.
        unsafe {
            debug_assert!(!(*node).linked);
            (*node).linked = true;
            (*node).next = ptr::null_mut();
            (*node).prev = self.tail;
            match self.tail.is_null() {
                true => self.head = node,
                false => (*self.tail).next = node,
            }
        }
        self.tail = node;
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    ///
    /// `node` must be valid and linked into this queue.
    pub unsafe fn unlink(&mut self, node: *mut Node) {
        // SAFETY: The caller guarantees `node` is linked here: it and its neighbours are valid.
        unsafe {
            let (prev, next) = ((*node).prev, (*node).next);
            match prev.is_null() {
                true => self.head = next,
                false => (*prev).next = next,
            }
            match next.is_null() {
                true => self.tail = prev,
                false => (*next).prev = prev,
            }
            (*node).linked = false;
            (*node).next = ptr::null_mut();
            (*node).prev = ptr::null_mut();
        }
    }
}

/// The lock and wait queue a [`Queue`] is kept with: a spinlock and a condition variable in the
/// kernel, their `loom` models on the host.
///
/// # Examples
///
/// A platform for one thread, whose clock moves when it waits:
///
/// ```
/// use core::cell::{Cell, RefCell, RefMut};
/// use kernel::mm::range_lock::protocol::{self, Node, Platform, Queue, Side};
///
/// struct OneThread {
///     queue: RefCell<Queue>,
///     now: Cell<u64>,
/// }
///
/// impl Platform for OneThread {
///     type Guard<'a> = RefMut<'a, Queue>;
///
///     fn lock(&self) -> RefMut<'_, Queue> {
///         self.queue.borrow_mut()
///     }
///
///     fn wait(&self, _guard: &mut RefMut<'_, Queue>) {
///         unreachable!("a mirror of the only thread waited for another task");
///     }
///
///     fn wait_until(&self, _guard: &mut RefMut<'_, Queue>, until: u64) -> bool {
///         self.now.set(until);
///         false
///     }
///
///     fn notify_all(&self) {}
///
///     fn now(&self) -> u64 {
///         self.now.get()
///     }
/// }
///
/// let platform = OneThread {
///     queue: RefCell::new(Queue::new()),
///     now: Cell::new(0),
/// };
/// let mut mirror = Node::new(0, 0x2000, Side::Mirror, 1, 10);
/// let mut invalidation = Node::new(0x1000, 0x3000, Side::Invalidate, 2, u64::MAX);
/// // SAFETY: The nodes stay in place until they are released.
/// unsafe {
///     protocol::acquire(&platform, &mut mirror);
///     // An invalidation that may not block does not take a range a mirror holds.
///     assert!(!protocol::begin_invalidate(&platform, &mut invalidation, false, false));
///     assert!(!invalidation.is_linked());
///     // One that may waits until the mirror's patience runs out.
///     assert!(protocol::begin_invalidate(&platform, &mut invalidation, true, true));
///     assert_eq!(platform.now(), 10);
///     assert!(protocol::release(&platform, &mut invalidation));
///     assert!(protocol::release(&platform, &mut mirror));
///     assert!(!protocol::release(&platform, &mut mirror));
/// }
/// assert!(platform.queue.borrow().is_empty());
/// ```
pub trait Platform {
    /// A held lock of the queue.
    type Guard<'a>: DerefMut<Target = Queue>
    where
        Self: 'a;

    /// Locks the queue.
    fn lock(&self) -> Self::Guard<'_>;

    /// Releases the lock, sleeps until notified, and takes it again.
    fn wait(&self, guard: &mut Self::Guard<'_>);

    /// As [`Self::wait`], until `until` at most. Returns `false` when the wait ended for another
    /// reason than a notification (the time ran out, a signal).
    fn wait_until(&self, guard: &mut Self::Guard<'_>, until: u64) -> bool;

    /// Wakes every waiter.
    fn notify_all(&self);

    /// The time, in the clock of [`Node::new`]'s `until`.
    fn now(&self) -> u64;
}

/// Takes `node`'s range for a mirror: links it, then waits until it may go ahead.
///
/// # Safety
///
/// `node` must be valid, not linked, and stay valid and in place until it is released with
/// [`release`].
pub unsafe fn acquire<P: Platform>(platform: &P, node: *mut Node) {
    let mut queue = platform.lock();
    // SAFETY: As the caller guarantees.
    unsafe { queue.link(node) };
    // SAFETY: As above; the queue is locked.
    while queue.verdict(unsafe { &*node }, platform.now()) != Verdict::Go {
        platform.wait(&mut queue);
    }
}

/// Takes `node`'s range for an invalidation: unless `may_block`, only if no earlier overlapping
/// mirror holds its range (returns `false` otherwise, with `node` not linked); else links it
/// and, if `patient`, waits until it may go ahead or the patience of the mirrors it waits for
/// runs out.
///
/// # Safety
///
/// `node` must be valid, not linked, and stay valid and in place until it is released with
/// [`release`] (if the function returns `true`).
pub unsafe fn begin_invalidate<P: Platform>(
    platform: &P,
    node: *mut Node,
    may_block: bool,
    patient: bool,
) -> bool {
    let mut queue = platform.lock();
    // SAFETY: As the caller guarantees.
    if !may_block && queue.verdict(unsafe { &*node }, platform.now()) != Verdict::Go {
        return false;
    }
    // SAFETY: As the caller guarantees.
    unsafe { queue.link(node) };
    if !patient {
        return true;
    }
    // SAFETY: As above; the queue is locked.
    while let Verdict::Wait { until } = queue.verdict(unsafe { &*node }, platform.now()) {
        if !platform.wait_until(&mut queue, until) && platform.now() < until {
            // A signal: go ahead, as when the patience runs out.
            break;
        }
    }
    true
}

/// Releases `node`'s range if it is held, and wakes the waiters. Returns whether it was held.
///
/// # Safety
///
/// `node` must be valid, and linked into this platform's queue if it is linked at all.
pub unsafe fn release<P: Platform>(platform: &P, node: *mut Node) -> bool {
    let mut queue = platform.lock();
    // SAFETY: As the caller guarantees.
    if !unsafe { (*node).is_linked() } {
        return false;
    }
    // SAFETY: As the caller guarantees: linked here.
    unsafe { queue.unlink(node) };
    drop(queue);
    platform.notify_all();
    true
}
