// SPDX-License-Identifier: GPL-2.0

//! The rules of an [`Invalidated`](super::Invalidated) list: when a mirror must be mirrored
//! again, and when a job may be published.
//!
//! This file depends on nothing but `core`, so that the same source is built on the host and
//! model-checked there (`tools/hmmgpu/model`) together with the range lock's rules. The kernel
//! side ([`super`]) adds the list of mirrors to look at, which lives in the driver's notifier
//! lock with the [`Publication`].
//!
//! A device that cannot fault runs a job only on entries that are current for its whole run. So
//! an invalidation of a mirror that has entries
//!
//! 1. marks the mirror invalid ([`Listing::mark`]) and starts clearing
//!    ([`Publication::begin_clearing`]), under the notifier lock;
//! 2. waits, without the lock, for the jobs that may use the entries;
//! 3. clears the entries and ends clearing ([`Publication::end_clearing`]), under the lock.
//!
//! A submission takes the invalid mirrors and the [`Publication::generation`] under the lock,
//! mirrors them again without it, writes their entries under it, and publishes its job only if
//! [`Publication::may_publish`] says so in the same hold of the lock: no mirror with entries was
//! invalidated since it took them, and no invalidation is between steps 1 and 3. Otherwise it
//! starts again. So no job is published over entries being cleared, nor runs on entries written
//! from a snapshot an invalidation overtook.

/// Whether a mirror must be mirrored again, and whether it is on the list of those that must.
///
/// Kept in the driver's per-mirror state, under the notifier lock.
///
/// # Examples
///
/// ```
/// use kernel::mm::invalidated::Listing;
///
/// let mut listing = Listing::new();
/// // Invalidated: it must go on the list, once.
/// assert!(listing.mark());
/// listing.set_listed(true);
/// assert!(listing.is_invalid() && listing.is_listed());
/// assert!(!listing.mark());
/// // Mirrored again: valid, but listed until the list is settled.
/// listing.validate();
/// assert!(!listing.is_invalid() && listing.is_listed());
/// // Settling keeps no entry of a valid mirror.
/// listing.unlist();
/// assert!(!listing.keep() && !listing.is_listed());
/// // Of one still invalid, its first entry only.
/// listing.mark();
/// listing.unlist();
/// assert!(listing.keep() && !listing.keep());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    invalid: bool,
    listed: bool,
}

impl Listing {
    /// A mirror that is valid and not listed. One that must be mirrored before any job uses it
    /// is then marked ([`Listing::mark`]) and put on the list.
    pub const fn new() -> Self {
        Self {
            invalid: false,
            listed: false,
        }
    }

    /// Whether the mirror must be mirrored again before a job may use it.
    pub fn is_invalid(&self) -> bool {
        self.invalid
    }

    /// Whether the mirror is on the list.
    pub fn is_listed(&self) -> bool {
        self.listed
    }

    /// Marks the mirror invalid. Returns whether it must be put on the list (it is not yet);
    /// then call [`Listing::set_listed`] with whether there was room.
    pub fn mark(&mut self) -> bool {
        self.invalid = true;
        !self.listed
    }

    /// Records whether the mirror went on the list.
    pub fn set_listed(&mut self, listed: bool) {
        self.listed = listed;
    }

    /// The mirror's entries were written from a snapshot (or pins) checked current under the
    /// notifier lock: it is valid again. It stays on the list until the list is settled.
    pub fn validate(&mut self) {
        self.invalid = false;
    }

    /// Settling the list: forgets that the mirror is listed, before [`Listing::keep`] is asked
    /// for each of its entries.
    pub fn unlist(&mut self) {
        self.listed = false;
    }

    /// Settling the list: whether an entry of the mirror stays on it. Only the first entry of a
    /// mirror still invalid does.
    pub fn keep(&mut self) -> bool {
        let keep = self.invalid && !self.listed;
        self.listed |= keep;
        keep
    }
}

/// When a job may be published: the invalidation generation and the invalidations clearing.
///
/// Kept in the driver's notifier lock.
///
/// # Examples
///
/// ```
/// use kernel::mm::invalidated::Publication;
///
/// let mut publication = Publication::new();
/// let round = publication.generation();
/// assert!(publication.may_publish(round));
/// // An invalidation that waits for jobs before it clears its mirror's entries.
/// publication.begin_clearing(true);
/// assert!(publication.is_clearing());
/// assert!(!publication.may_publish(round));
/// let next = publication.generation();
/// assert!(next != round && !publication.may_publish(next));
/// publication.end_clearing();
/// // A round taken before the invalidation never publishes; one taken after it may, now.
/// assert!(!publication.may_publish(round) && publication.may_publish(next));
/// // One that does not wait only makes the rounds taken before it start again.
/// publication.begin_clearing(false);
/// assert!(!publication.is_clearing() && !publication.may_publish(next));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Publication {
    /// How many times a mirror with entries was invalidated.
    generation: u64,
    /// Invalidations between marking their mirror and clearing its entries.
    clearing: u32,
}

impl Publication {
    /// No mirror invalidated yet, none clearing.
    pub const fn new() -> Self {
        Self {
            generation: 0,
            clearing: 0,
        }
    }

    /// The generation a submission's round is as of: take it with the invalid mirrors.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether an invalidation is between marking its mirror and clearing its entries.
    pub fn is_clearing(&self) -> bool {
        self.clearing > 0
    }

    /// An invalidation of a mirror with entries has marked it: no round taken before may publish.
    /// If `waits`, it is about to wait for jobs before it clears the entries, and no round may
    /// publish until [`Publication::end_clearing`].
    pub fn begin_clearing(&mut self, waits: bool) {
        self.generation = self.generation.wrapping_add(1);
        self.clearing += u32::from(waits);
    }

    /// The invalidation that began clearing with `waits` has cleared the entries.
    pub fn end_clearing(&mut self) {
        self.clearing -= 1;
    }

    /// Whether a round taken at `generation`, whose entries are written, may publish its job.
    pub fn may_publish(&self, generation: u64) -> bool {
        generation == self.generation && self.clearing == 0
    }
}
