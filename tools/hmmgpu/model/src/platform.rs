// SPDX-License-Identifier: GPL-2.0

//! [`Platform`] over `loom`'s mutex and condition variable.

use crate::protocol::{Platform, Queue};
use loom::sync::{Condvar, Mutex, MutexGuard};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// How an invalidation's bounded wait for a mirror ends.
///
/// `loom` has no time: a wait cannot time out by itself. Each test runs in both modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patience {
    /// [`Platform::wait_until`] waits for a notification, as [`Platform::wait`]: an
    /// invalidation that waits for a mirror waits until the mirror is done.
    Patient,
    /// [`Platform::wait_until`] lets the other threads run, then returns `false` with the clock
    /// at the deadline: the patience of the mirror waited for ran out, and the invalidation
    /// overtakes it (the mirror's sequence check must then catch it).
    Impatient,
}

/// The range lock's queue, its lock and its wait queue, and a logical clock.
pub struct LoomPlatform {
    queue: Mutex<Queue>,
    waiters: Condvar,
    patience: Patience,
    /// The logical time: moves only when an impatient wait times out. Read and written with the
    /// queue locked; not a `loom` object, so that reading it adds no interleavings.
    clock: AtomicU64,
    /// How many times a taker waited.
    waits: AtomicUsize,
}

impl LoomPlatform {
    /// An empty queue, whose invalidations wait for mirrors as `patience` says.
    pub fn new(patience: Patience) -> Self {
        Self {
            queue: Mutex::new(Queue::new()),
            waiters: Condvar::new(),
            patience,
            clock: AtomicU64::new(0),
            waits: AtomicUsize::new(0),
        }
    }

    /// How invalidations wait.
    pub fn patience(&self) -> Patience {
        self.patience
    }

    /// How many times a taker (mirror or invalidation) waited so far.
    pub fn waits(&self) -> usize {
        self.waits.load(Relaxed)
    }
}

/// A held lock of the queue. The guard is taken out while waiting: `loom`'s condition variable
/// takes it by value, the protocol lends it.
pub struct QueueGuard<'a> {
    queue: &'a Mutex<Queue>,
    held: Option<MutexGuard<'a, Queue>>,
}

impl Deref for QueueGuard<'_> {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        self.held.as_ref().expect("the queue guard is held")
    }
}

impl DerefMut for QueueGuard<'_> {
    fn deref_mut(&mut self) -> &mut Queue {
        self.held.as_mut().expect("the queue guard is held")
    }
}

impl Platform for LoomPlatform {
    type Guard<'a>
        = QueueGuard<'a>
    where
        Self: 'a;

    fn lock(&self) -> QueueGuard<'_> {
        QueueGuard {
            queue: &self.queue,
            held: Some(self.queue.lock().unwrap()),
        }
    }

    fn wait(&self, guard: &mut QueueGuard<'_>) {
        self.waits.fetch_add(1, Relaxed);
        let held = guard.held.take().expect("the queue guard is held");
        guard.held = Some(self.waiters.wait(held).unwrap());
    }

    fn wait_until(&self, guard: &mut QueueGuard<'_>, until: u64) -> bool {
        match self.patience {
            Patience::Patient => {
                self.wait(guard);
                true
            }
            Patience::Impatient => {
                self.waits.fetch_add(1, Relaxed);
                // Sleep: others may take the lock meanwhile; then the time is up.
                drop(guard.held.take());
                guard.held = Some(guard.queue.lock().unwrap());
                self.clock.fetch_max(until, Relaxed);
                false
            }
        }
    }

    fn notify_all(&self) {
        self.waiters.notify_all();
    }

    fn now(&self) -> u64 {
        self.clock.load(Relaxed)
    }
}
