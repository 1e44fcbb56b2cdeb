// SPDX-License-Identifier: GPL-2.0

//! The invalidated list: which mirrors of a device that cannot fault must be mirrored again
//! before a job may run, and the rule that publishes a job (the counterpart of xe's userptr
//! invalidated list, Documentation/gpu/drm-vm-bind-locking.rst, "userptr gpu_vmas").
//!
//! An [`Invalidated`] list lives in the driver's notifier lock, with the [`Publication`] rule
//! ([`protocol`] has the rules and why they are enough); each mirror keeps its [`Listing`] under
//! the same lock. The list is keyed by whatever identifies a mirror to the driver (a device
//! address, say) and holds each invalid mirror once. It never allocates under the lock: the
//! driver makes room for every mirror when it creates one ([`Invalidated::reserve`]), and if the
//! list overflows all the same, every mirror is looked at once.
//!
//! Operations that look at mirrors take the notifier lock's guard `g` (whose data holds the
//! list: `AsMut<Invalidated<K>>`) and the driver's [`Listings`], which finds a mirror's
//! [`Listing`] by key with it, so that the list and the listings, both protected by the lock,
//! are reached one at a time.

pub mod protocol;

pub use protocol::{Listing, Publication};

use crate::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    mm::notifier_lock::NotifierLock,
    prelude::*,
};
use core::ops::DerefMut;

/// How the driver finds a mirror's [`Listing`] by key, with the notifier lock's guard `G`.
pub trait Listings<K, G> {
    /// The listing of the mirror of `key`, if there is one.
    fn listing<'a>(&'a self, key: K, g: &'a mut G) -> Option<&'a mut Listing>;
}

/// The mirrors to mirror again before a job may run, and when a job may be published.
///
/// # Examples
///
/// ```
/// use kernel::mm::{
///     invalidated::{Invalidated, Listing, Listings},
///     notifier_lock::NotifierGuard,
/// };
/// use kernel::new_notifier_lock;
///
/// // The notifier lock's data: the list, and (here) two mirrors' listings, keyed 0 and 1.
/// struct State {
///     invalidated: Invalidated<usize>,
///     mirrors: [Listing; 2],
/// }
/// impl AsMut<Invalidated<usize>> for State {
///     fn as_mut(&mut self) -> &mut Invalidated<usize> {
///         &mut self.invalidated
///     }
/// }
/// struct Mirrors;
/// impl<'l> Listings<usize, NotifierGuard<'l, State>> for Mirrors {
///     fn listing<'a>(
///         &'a self,
///         k: usize,
///         g: &'a mut NotifierGuard<'l, State>,
///     ) -> Option<&'a mut Listing> {
///         g.mirrors.get_mut(k)
///     }
/// }
///
/// let state = State { invalidated: Invalidated::new(), mirrors: [Listing::new(); 2] };
/// let lock = KBox::pin_init(new_notifier_lock!(state), GFP_KERNEL_ACCOUNT)?;
/// Invalidated::reserve(&lock, |s: &mut State| &mut s.invalidated, 2)?;
/// // Room for what submissions take, made before the lock is taken: nothing allocates under it.
/// let mut todo = KVVec::with_capacity(2, GFP_KERNEL_ACCOUNT)?;
/// let mut again = KVVec::with_capacity(2, GFP_KERNEL_ACCOUNT)?;
/// let mut g = lock.lock();
/// // An invalidation of mirror 1, which has entries and waits for a job before clearing them.
/// Invalidated::mark(&mut g, 1, &Mirrors);
/// g.invalidated.publication().begin_clearing(true);
///
/// // A submission takes what to mirror again.
/// assert!(g.invalidated.room(2) <= 2);
/// let generation = Invalidated::take(&mut g, &mut todo, &Mirrors, 0..2);
/// assert_eq!(&todo[..], &[1]);
/// // It mirrors 1 again, but the invalidation is still clearing: no job may be published.
/// g.mirrors[1].validate();
/// assert!(!Invalidated::settle(&mut g, generation, &Mirrors, 0..2));
/// g.invalidated.publication().end_clearing();
/// // Its next round takes nothing: 1 was mirrored after the invalidation, which is over.
/// let generation = Invalidated::take(&mut g, &mut again, &Mirrors, 0..2);
/// assert!(again.is_empty());
/// assert!(Invalidated::settle(&mut g, generation, &Mirrors, 0..2));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `list` holds each listed mirror's key once, and the keys of mirrors removed or valid again
/// until the list is settled; a mirror is invalid and not listed only if `walk_all`.
pub struct Invalidated<K> {
    list: KVVec<K>,
    /// The list ran out of room: every mirror must be looked at.
    walk_all: bool,
    publication: Publication,
}

impl<K: Copy> Invalidated<K> {
    /// An empty list. Allocates nothing.
    pub fn new() -> Self {
        Self {
            list: KVVec::new(),
            walk_all: false,
            publication: Publication::new(),
        }
    }

    /// The rule that publishes jobs, which invalidations update.
    pub fn publication(&mut self) -> &mut Publication {
        &mut self.publication
    }

    /// Whether nothing is listed (and the list did not overflow).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && !self.walk_all
    }

    /// How many keys [`Invalidated::take`] needs room for, of `mirrors` in all.
    pub fn room(&self, mirrors: usize) -> usize {
        match self.walk_all {
            true => mirrors,
            false => self.list.len(),
        }
    }

    /// Marks the mirror of `key` invalid and lists it (if it is not listed yet); does nothing if
    /// `listing` finds no mirror of `key`. Never allocates: see [`Invalidated::reserve`].
    pub fn mark<G>(s: &mut G, key: K, listings: &impl Listings<K, G>)
    where
        G: DerefMut,
        G::Target: AsMut<Self>,
    {
        let Some(entry) = listings.listing(key, s) else {
            return;
        };
        if entry.mark() {
            let listed = list_of(s).push(key);
            if let Some(entry) = listings.listing(key, s) {
                entry.set_listed(listed);
            }
        }
    }

    /// Puts `key` on the list; returns whether there was room. If not, every mirror is looked
    /// at.
    fn push(&mut self, key: K) -> bool {
        let listed = push_within_capacity(&mut self.list, key);
        self.walk_all |= !listed;
        listed
    }

    /// Appends to `todo` the keys of the invalid mirrors, which a round of a submission mirrors
    /// again, and returns the generation the round is as of ([`Publication::may_publish`]).
    /// When the list overflowed, looks at every mirror, of the keys `every` gives. Never
    /// allocates: `todo` must have room for [`Invalidated::room`] keys (the extra ones are
    /// left out; the round then publishes nothing, as they stay invalid).
    pub fn take<G>(
        s: &mut G,
        todo: &mut KVVec<K>,
        listings: &impl Listings<K, G>,
        every: impl Iterator<Item = K>,
    ) -> u64
    where
        G: DerefMut,
        G::Target: AsMut<Self>,
    {
        let generation = list_of(s).publication.generation();
        if list_of(s).walk_all {
            for key in every {
                if listings.listing(key, s).is_some_and(|l| l.is_invalid()) {
                    push_within_capacity(todo, key);
                }
            }
            return generation;
        }
        for i in 0..list_of(s).list.len() {
            let key = list_of(s).list[i];
            // Entries of mirrors valid again (or gone) wait for `settle` to go.
            if listings.listing(key, s).is_some_and(|l| l.is_invalid()) {
                push_within_capacity(todo, key);
            }
        }
        generation
    }

    /// Makes the list hold each mirror still invalid once (and every one, of the keys `every`
    /// gives, after an overflow), and returns whether a round taken at `generation`, whose
    /// entries are written, may publish its job. Call it under the same hold of the lock as
    /// the writing of the entries, and publish under it too. Never allocates.
    pub fn settle<G>(
        s: &mut G,
        generation: u64,
        listings: &impl Listings<K, G>,
        every: impl Iterator<Item = K>,
    ) -> bool
    where
        G: DerefMut,
        G::Target: AsMut<Self>,
    {
        // Entries of mirrors valid again, of removed mirrors, and repeated ones go.
        for i in 0..list_of(s).list.len() {
            let key = list_of(s).list[i];
            if let Some(l) = listings.listing(key, s) {
                l.unlist();
            }
        }
        let mut i = 0;
        while i < list_of(s).list.len() {
            let key = list_of(s).list[i];
            if listings.listing(key, s).is_some_and(|l| l.keep()) {
                i += 1;
            } else {
                let list = &mut list_of(s).list;
                let last = list.len() - 1;
                list.swap(i, last);
                // SAFETY: Keys are `Copy`, so they need no drop; the length only shrinks.
                unsafe { list.set_len(last) };
            }
        }
        // The list ran out of room before: list again what is invalid and not listed.
        if core::mem::take(&mut list_of(s).walk_all) {
            for key in every {
                let unlisted = listings
                    .listing(key, s)
                    .is_some_and(|l| l.is_invalid() && !l.is_listed());
                if unlisted {
                    let listed = list_of(s).push(key);
                    if let Some(l) = listings.listing(key, s) {
                        l.set_listed(listed);
                    }
                }
            }
        }
        list_of(s).publication.may_publish(generation)
    }

    /// Makes room on the list for `n` mirrors, outside the lock `lock` that holds it (so that it
    /// never allocates under it); `list` finds it in the lock's data.
    pub fn reserve<S>(
        lock: &NotifierLock<S>,
        list: impl Fn(&mut S) -> &mut Self,
        n: usize,
    ) -> Result {
        let capacity = list(&mut lock.lock()).list.capacity();
        if capacity >= n {
            return Ok(());
        }
        // Doubling, so that a million mirrors copy the list about twenty times, not a million.
        let mut fresh =
            KVVec::with_capacity(n.max(capacity.saturating_mul(2)), GFP_KERNEL_ACCOUNT)?;
        let old = {
            let mut guard = lock.lock();
            let this = list(&mut guard);
            if this.list.capacity() >= n {
                return Ok(());
            }
            for &key in this.list.iter() {
                // `fresh` has room for all of them.
                push_within_capacity(&mut fresh, key);
            }
            core::mem::replace(&mut this.list, fresh)
        };
        // Freed outside the lock.
        drop(old);
        Ok(())
    }
}

/// The list in the data of guard `g`.
fn list_of<K, G>(g: &mut G) -> &mut Invalidated<K>
where
    G: DerefMut,
    G::Target: AsMut<Invalidated<K>>,
{
    g.deref_mut().as_mut()
}

/// Pushes `key` onto `list` if it has room, without allocating. Returns whether it did.
fn push_within_capacity<K>(list: &mut KVVec<K>, key: K) -> bool {
    let Some(slot) = list.spare_capacity_mut().first_mut() else {
        return false;
    };
    slot.write(key);
    // SAFETY: The first slot past the end was just initialised.
    unsafe { list.set_len(list.len() + 1) };
    true
}

impl<K: Copy> Default for Invalidated<K> {
    fn default() -> Self {
        Self::new()
    }
}
