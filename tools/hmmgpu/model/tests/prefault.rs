// SPDX-License-Identifier: GPL-2.0

//! Prefault mode: the device cannot fault. A submission mirrors what was invalidated and
//! publishes its job only if no invalidation raced; an invalidation marks the mirror invalid,
//! waits for the jobs that may use its pages, then clears the entries.
//!
//! Every test checks, in every interleaving (within the preemption bound of the bounded ones),
//! that no device entry maps a page after the CPU stopped mapping it (a), that a job is
//! published only with the mirror's entries current and no invalidation clearing, and that no
//! job uses a page the CPU unmapped (b), that nothing deadlocks (c), and that a mirror is not
//! overtaken unless the invalidation's patience ran out or it runs in reclaim (d); see
//! `hmmgpu_model::world`.

use hmmgpu_model::world::{Config, How, Range, World, MIRROR, TASK_A};
use hmmgpu_model::{explore, in_both_modes, THREE_THREADS};
use loom::thread;
use std::sync::Arc;

const WHOLE: Range = Range::new(0, 2);

in_both_modes! {
    /// A submission with the mirror valid (nothing to mirror) and an invalidation of part of
    /// it: the submission does not publish a job with the entries the invalidation cleared (the
    /// generation check), mirrors again, and publishes in two rounds at most; a mirror left
    /// valid has current entries.
    fn submit_vs_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::prefault(patience, true)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, Range::new(1, 2), How::Blocking))
            };
            let round = w.submit(MIRROR, 2);
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            assert!(round.is_some(), "one invalidation kept a submission from publishing");
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// The first submission (the mirror is on the invalidated list, without entries) and an
    /// invalidation of the whole range: the snapshot committed is current, and the job is
    /// published in two rounds at most.
    fn first_submit_vs_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::prefault(patience, false)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, WHOLE, How::Blocking))
            };
            let round = w.submit(MIRROR, 2);
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            assert!(round.is_some(), "one invalidation kept a submission from publishing");
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// The first submission and an invalidation in memory reclaim, which goes ahead of the
    /// submission's mirror without waiting: the submission's sequence check catches it, and it
    /// publishes in two rounds at most.
    fn first_submit_vs_reclaim_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::prefault(patience, false)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, WHOLE, How::Reclaim))
            };
            let round = w.submit(MIRROR, 2);
            assert!(inv.join().unwrap(), "an invalidation in reclaim failed");
            assert!(round.is_some(), "one invalidation kept a submission from publishing");
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// A submission and an invalidation that may not block: it fails rather than wait for a
    /// mirror holding the range, changes nothing when it fails, and the submission publishes.
    fn submit_vs_nonblocking_invalidation(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), None, move || {
            let w = Arc::new(World::new(Config::prefault(patience, false)));
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, WHOLE, How::NonBlocking))
            };
            let round = w.submit(MIRROR, 2);
            inv.join().unwrap();
            assert!(round.is_some(), "one invalidation kept a submission from publishing");
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// Three threads: a job using the mirror is running; a submission, an invalidation of part
    /// of the range, and the GPU running the jobs. The invalidation waits for the running job
    /// before it clears the entries (and the CPU unmaps the pages), no job is published while
    /// it does, every job finds the entries it reads current, and the submission publishes in
    /// two rounds at most.
    ///
    /// Bounded to [`THREE_THREADS`] (4) preemptions: all interleavings take far too long.
    fn submit_vs_invalidation_vs_job(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), THREE_THREADS, move || {
            let w = Arc::new(World::new(Config::prefault_running(patience)));
            let gpu = {
                let w = w.clone();
                thread::spawn(move || w.run_jobs())
            };
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, Range::new(0, 1), How::Blocking))
            };
            let round = w.submit(MIRROR, 2);
            w.close_jobs();
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            gpu.join().unwrap();
            assert!(round.is_some(), "one invalidation kept a submission from publishing");
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// Three threads: a job using the mirror is running; a submission, an invalidation that may
    /// not block, and the GPU. The invalidation fails while the job may use the pages (it may
    /// not wait for it), and otherwise clears the entries; no job uses an unmapped page.
    ///
    /// Bounded to [`THREE_THREADS`] (4) preemptions: all interleavings take far too long.
    fn submit_vs_nonblocking_invalidation_vs_job(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), THREE_THREADS, move || {
            let w = Arc::new(World::new(Config::prefault_running(patience)));
            let gpu = {
                let w = w.clone();
                thread::spawn(move || w.run_jobs())
            };
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, WHOLE, How::NonBlocking))
            };
            let round = w.submit(MIRROR, 2);
            w.close_jobs();
            inv.join().unwrap();
            gpu.join().unwrap();
            assert!(round.is_some(), "one invalidation kept a submission from publishing");
            w.check_quiescent();
        });
    }
}

in_both_modes! {
    /// Three threads: a job using the mirror is running; a submission that mirrors nothing (from
    /// another process), an invalidation of part of the range, and the GPU. The submission may
    /// publish its job with the entries cleared (the job faults on them), but not while the
    /// invalidation waits for the running job with the entries still in place: the job would
    /// run on them once that job is done, before the invalidation clears them. (It has no
    /// bound on its rounds: with nothing to mirror, it waits for no invalidation to end.)
    ///
    /// Bounded to [`THREE_THREADS`] (4) preemptions: all interleavings take far too long.
    fn foreign_submit_vs_invalidation_vs_job(patience) {
        explore(&format!("{}::{patience:?}", module_path!()), THREE_THREADS, move || {
            let w = Arc::new(World::new(Config::prefault_running(patience)));
            let gpu = {
                let w = w.clone();
                thread::spawn(move || w.run_jobs())
            };
            let inv = {
                let w = w.clone();
                thread::spawn(move || w.invalidate(TASK_A, Range::new(0, 1), How::Blocking))
            };
            w.submit_foreign(MIRROR, 2);
            w.close_jobs();
            assert!(inv.join().unwrap(), "a blocking invalidation failed");
            gpu.join().unwrap();
            w.check_quiescent();
        });
    }
}
