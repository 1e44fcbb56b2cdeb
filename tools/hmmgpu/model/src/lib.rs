// SPDX-License-Identifier: GPL-2.0

//! A model of the range lock protocol of `rust/kernel/mm/range_lock.rs`, checked with `loom`.
//!
//! [`protocol`] is the kernel's own source, built as is: the rules of who waits for whom, and
//! the generic lock, wait and unlock code ([`protocol::acquire`],
//! [`protocol::begin_invalidate`], [`protocol::release`]) that the kernel runs over its
//! spinlock and condition variable. [`platform::LoomPlatform`] runs the same code over `loom`'s
//! mutex and condition variable, and [`world::World`] models what surrounds it in the kernel,
//! abstractly: the CPU page table and the address space's notifier sequence (the core MM), the
//! driver's notifier lock, device page table, invalidated list and jobs (hmmgpu), and the
//! snapshots (mirrors) and invalidations that use them. Its actors check, at every step of
//! every interleaving `loom` runs, that
//!
//! - (a) no device entry maps a page the CPU no longer maps,
//! - (b) no job is published while an invalidation is clearing, nor uses a page once it is
//!   unmapped,
//! - (c) nothing deadlocks or loses a wake-up (`loom` fails when every thread is blocked),
//! - (d) a mirror makes progress: mirrors and invalidations of overlapping ranges hold them in
//!   turn, an invalidation of another task that arrives once a mirror holds its range waits
//!   for it (unless the mirror's patience ran out), and so a mirror whose range is not
//!   invalidated commits in one round.
//!
//! The tests are in `tests/`; `run.sh` runs them, `mutants.sh` checks that they catch
//! deliberate breakages of the protocol and of the model.

#[allow(
    rustdoc::broken_intra_doc_links,
    reason = "its links to the kernel side (`super::RangeLock`) do not resolve here; an \
              `expect` would be unfulfilled in every build that is not rustdoc's"
)]
#[path = "../../../../rust/kernel/mm/range_lock/protocol.rs"]
pub mod protocol;

// The invalidated list's rules: when a mirror is mirrored again, when a job may be published.
#[allow(
    rustdoc::broken_intra_doc_links,
    reason = "its links to the kernel side (`super::Invalidated`) do not resolve here"
)]
#[path = "../../../../rust/kernel/mm/invalidated/protocol.rs"]
pub mod invalidated;

pub mod platform;
pub mod world;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// The preemption bound of the tests with three threads, unless `HMMGPU_MODEL_BOUND` sets
/// another (a number, or `none`). Unbounded, one test with three threads ran for over ten
/// minutes without finishing; 4 keeps the whole suite under a minute. `loom` then explores
/// every interleaving with at most 4 switches away from a thread that could have gone on: few
/// bugs need more.
pub const THREE_THREADS: Option<usize> = Some(4);

/// The preemption bound of the tests with two threads where one also invalidates its own range
/// (three actors), unless `HMMGPU_MODEL_BOUND` sets another: unbounded, one takes three
/// minutes (2.8 million interleavings); 6 explores 97 thousand, in seconds.
pub const OWN_INVALIDATION: Option<usize> = Some(6);

/// Runs `model` under `loom` in every interleaving of its threads, or in those with at most
/// `preemptions` preemptions if given (see [`THREE_THREADS`], [`OWN_INVALIDATION`]), and
/// prints how many there were. Ignores the `LOOM_*` variables that would end the exploration
/// early.
pub fn explore(name: &str, preemptions: Option<usize>, model: impl Fn() + Sync + Send + 'static) {
    let preemptions = match (preemptions, std::env::var("HMMGPU_MODEL_BOUND")) {
        (Some(_), Ok(bound)) if bound == "none" => None,
        (Some(_), Ok(bound)) => Some(bound.parse().expect("HMMGPU_MODEL_BOUND: a number or none")),
        (bound, _) => bound,
    };
    let count = Arc::new(AtomicUsize::new(0));
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemptions;
    builder.max_duration = None;
    builder.max_permutations = None;
    builder.checkpoint_file = None;
    let counted = count.clone();
    builder.check(move || {
        counted.fetch_add(1, Relaxed);
        model();
    });
    let bound = match preemptions {
        Some(n) => format!(" (at most {n} preemptions)"),
        None => String::new(),
    };
    eprintln!("{name}: {} interleavings{bound}", count.load(Relaxed));
}

/// Defines a module `$name` with a test per [`platform::Patience`], each running `$body` with
/// `$patience` bound to it.
#[macro_export]
macro_rules! in_both_modes {
    ($(#[$doc:meta])* fn $name:ident($patience:ident) $body:block) => {
        $(#[$doc])*
        mod $name {
            #[allow(
                unused_imports,
                reason = "the glob is for whatever the test's body names; some use none of it"
            )]
            use super::*;
            use $crate::platform::Patience;

            fn run($patience: Patience) $body

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
    };
}
