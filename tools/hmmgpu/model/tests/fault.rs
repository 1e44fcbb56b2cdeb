// SPDX-License-Identifier: GPL-2.0

//! Fault mode: mirrors write the device entries, invalidations clear them; the device faults.
//!
//! Every test checks, in every interleaving (within the preemption bound of the bounded ones),
//! that no device entry maps a page after the CPU stopped mapping it (a), that nothing
//! deadlocks (c), and that a mirror is not overtaken while it holds its range, nor overtakes an
//! invalidation, unless the invalidation's patience ran out or it runs in reclaim (d); see
//! `hmmgpu_model::world`.

use hmmgpu_model::world::{Config, How, Range, World, MIRROR, MIRROR_2, TASK_A, TASK_B};
use hmmgpu_model::{explore, in_both_modes, OWN_INVALIDATION, THREE_THREADS};
use loom::thread;
use std::sync::Arc;

const WHOLE: Range = Range::new(0, 2);

in_both_modes! {
    /// A mirror of the whole range and an invalidation of it, from another task: the snapshot
    /// committed is never stale, and the mirror needs a second round only if the invalidation
    /// came before it held its range.
    fn mirror_vs_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::fault(patience, WHOLE, false)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, WHOLE, How::Blocking))
            };
            let rounds = w.mirror(MIRROR, false);
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            assert!(rounds <= 2, "one invalidation sent a mirror back {} times", rounds - 1);
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// A mirror of a mirrored range and an invalidation of part of it: the invalidation clears
    /// the entries it unmaps (those of the other page stay), and a mirror never writes back a
    /// page it unmapped.
    fn mirror_vs_partial_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::fault(patience, WHOLE, true)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, Range::new(1, 2), How::Blocking))
            };
            let rounds = w.mirror(MIRROR, false);
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            assert!(rounds <= 2, "one invalidation sent a mirror back {} times", rounds - 1);
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// A mirror and an invalidation that may not block (the OOM reaper's): the invalidation
    /// fails rather than go ahead of a mirror holding the range, changes nothing when it fails
    /// (the mirror then commits in one round), and otherwise clears the entries it unmaps.
    fn mirror_vs_nonblocking_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::fault(patience, WHOLE, true)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, WHOLE, How::NonBlocking))
            };
            let rounds = w.mirror(MIRROR, false);
            let done = inv.join().unwrap();
            assert!(rounds <= 1 + done as usize, "a failed invalidation sent a mirror back");
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// A mirror and an invalidation in memory reclaim, which does not wait for mirrors (their
    /// faults may wait for what reclaim holds): it may overtake the mirror, whose sequence check
    /// then catches it.
    fn mirror_vs_reclaim_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::fault(patience, WHOLE, true)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, WHOLE, How::Reclaim))
            };
            let rounds = w.mirror(MIRROR, false);
            assert!(inv.join().unwrap(), "an invalidation in reclaim failed");
            assert!(rounds <= 2, "one invalidation sent a mirror back {} times", rounds - 1);
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// (d) A mirror whose range is not invalidated completes in one round, and disjoint ranges
    /// never wait for each other: a mirror of page 0 and an invalidation of page 1 (of another
    /// interval notifier, which does not touch the mirror's sequence).
    fn mirror_vs_disjoint_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::fault(patience, Range::new(0, 1), true)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, Range::new(1, 2), How::Blocking))
            };
            let rounds = w.mirror(MIRROR, false);
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            assert_eq!(rounds, 1, "a disjoint invalidation sent a mirror back");
            assert_eq!(w.waits(), 0, "disjoint ranges waited for each other");
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// A mirror whose own fault invalidates its range (breaking copy-on-write) while it holds
    /// it, and an invalidation from another task: the mirror's own invalidation does not wait
    /// for the mirror (else it would deadlock), and the snapshot it makes stale is retried.
    ///
    /// Bounded to [`OWN_INVALIDATION`] (6) preemptions: all interleavings take minutes.
    fn mirror_with_own_invalidation_vs_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), OWN_INVALIDATION, move || {
            let w = Arc::new(World::new(Config::fault(patience, WHOLE, true)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, Range::new(0, 1), How::Blocking))
            };
            let rounds = w.mirror(MIRROR, true);
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            assert!(rounds <= 3, "two invalidations sent a mirror back {} times", rounds - 1);
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// Invalidations never wait for each other, overlapping or not (the core MM runs them
    /// together): two overlapping invalidations from two tasks, no mirror.
    fn invalidations_never_wait_for_each_other(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::fault(patience, WHOLE, true)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, WHOLE, How::Blocking))
            };
            assert!(w.invalidate(TASK_B, Range::new(1, 2), How::Blocking));
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            assert_eq!(w.waits(), 0, "an invalidation waited for an invalidation");
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// Three threads: a mirror and two invalidations from two tasks, of its two pages. The
    /// mirror waits for both when they come first (not just for the first to end), each waits
    /// for the mirror when it comes first, and the mirror commits in three rounds at most.
    ///
    /// Bounded to [`THREE_THREADS`] (4) preemptions: all interleavings take far too long.
    fn mirror_vs_two_invalidations(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), THREE_THREADS, move || {
            let w = Arc::new(World::new(Config::fault(patience, WHOLE, true)));
            let a = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, Range::new(0, 1), How::Blocking))
            };
            let b = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_B, Range::new(1, 2), How::Blocking))
            };
            let rounds = w.mirror(MIRROR, false);
            assert!(a.join().unwrap() && b.join().unwrap(), "a blocking invalidation failed");
            assert!(rounds <= 3, "two invalidations sent a mirror back {} times", rounds - 1);
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// Three threads: two tasks mirroring the same range, and an invalidation from a third.
    /// Mirrors of overlapping ranges never hold them together, whichever comes first; the
    /// invalidation waits for those that came before it, the mirrors that come after it wait
    /// for it, and each mirror commits in two rounds at most.
    ///
    /// Bounded to [`THREE_THREADS`] (4) preemptions: all interleavings take far too long.
    fn two_mirrors_vs_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), THREE_THREADS, move || {
            let w = Arc::new(World::new(Config::fault(patience, WHOLE, false)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, Range::new(1, 2), How::Blocking))
            };
            let other = {
                let w = w.clone();
                thread::spawn(move || w.mirror(MIRROR_2, false))
            };
            let rounds = w.mirror(MIRROR, false);
            let other = other.join().unwrap();
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            assert!(rounds <= 2 && other <= 2, "one invalidation sent a mirror back twice");
            w.check_quiescent();
        });
    }
}

/// Two tasks mirroring the same range, the first breaking copy-on-write in its fault while the
/// second waits for it: the first's own invalidation must not wait for the second mirror, which
/// waits for the first (it would wait for itself until the second's patience runs out), and each
/// mirror commits in two rounds at most.
///
/// Bounded to [`OWN_INVALIDATION`] (6) preemptions: all interleavings take far too long.
mod two_mirrors_one_with_own_invalidation {
    use super::*;
    use hmmgpu_model::platform::Patience;

    fn run(patience: Patience) {
        explore(
            &format!("{}::{patience:?}", module_path!()),
            OWN_INVALIDATION,
            move || {
                let w = Arc::new(World::new(Config::fault(patience, WHOLE, false)));
                let other = {
                    let w = w.clone();
                    thread::spawn(move || w.mirror(MIRROR_2, false))
                };
                let rounds = w.mirror(MIRROR, true);
                let other = other.join().unwrap();
                assert!(rounds <= 2 && other <= 2, "a mirror went back twice");
                w.check_quiescent();
            },
        );
    }

    /// Invalidations wait for the mirrors they must wait for until these are done.
    #[test]
    fn patient() {
        run(Patience::Patient)
    }

    /// Invalidations overtake the mirrors they wait for: their patience runs out.
    #[test]
    fn impatient() {
        run(Patience::Impatient)
    }
}
