//! [`GroupCache`]: the last decoded MLS group of a step, kept in memory between engine runs.
//!
//! Decoding a group from its rows (`MlsGroup::load`: the ratchet tree, the message secrets)
//! is the largest cost of a received packet. OpenMLS keeps a group's rows equal to the group
//! it holds in memory (every operation that changes the group writes its rows, and a failed
//! operation changes neither), so a group that stays in memory after an operation is the
//! group a fresh load of its rows would give. A cache therefore only has to be told when the
//! rows change in any other way:
//!
//! - the rows are rolled back (a packet undone alone, a failed engine run): the owner of the
//!   cache calls [`GroupCache::clear`];
//! - a group is created, joined or deleted over the rows (`Group::create`, `Group::join`,
//!   `Group::delete`): these clear the cache of the provider they run with.
//!
//! A [`CachedGroup`] is lent out by [`CachedGroup::load`] and given back when dropped. If a
//! second group is loaded while one is lent out, nothing is given back until both are
//! returned (two copies of one group could disagree).
//!
//! The rows must not change underneath the cache except through providers that carry it.
//! A cache may outlive its transaction only if that transaction committed with the cache
//! [`GroupCache::is_settled`], and no other connection wrote since (the client checks
//! SQLite's `data_version`); otherwise its owner calls [`GroupCache::reset`].
//!
//! Deferred message secrets: a provider made with `MlsProvider::deferring_message_secrets`
//! does not write the message secrets of the group it borrows from the cache (OpenMLS writes
//! them whole after every message; they grow with the group). The cache is then
//! [`GroupCache::is_deferred`]: its group holds secrets newer than the rows, and must not be
//! dropped before [`GroupCache::write_deferred`] wrote them. A group dropped while deferred
//! (cleared, replaced, refused back) makes the cache [`GroupCache::is_lost`]: the rows miss
//! the secrets of earlier operations, and its owner must drop the transaction (and may redo
//! the work without deferring). Dropping the group after a failed operation or an undone part
//! is no loss only if the rows were current before it: [`GroupCache::discard`] is told so.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};

use super::error::MlsError;
use super::group::Group;
use super::provider::MlsProvider;

/// One decoded group, kept between engine runs of one transaction (see the module doc).
#[derive(Debug, Default)]
pub struct GroupCache {
    slot: RefCell<Option<Group>>,
    /// Groups lent out and not yet returned.
    lent: Cell<u32>,
    /// A second group was lent while one was out, or the cache was cleared while a group was
    /// out: what is returned is dropped until nothing is lent.
    poisoned: Cell<bool>,
    hits: Cell<u64>,
    misses: Cell<u64>,
    /// The group held (or lent) has message secrets newer than the rows.
    deferred: Cell<bool>,
    /// A group was dropped while deferred (see the module doc).
    lost: Cell<bool>,
}

impl GroupCache {
    /// An empty cache.
    pub fn new() -> GroupCache {
        GroupCache::default()
    }

    /// Forgets the cached group (its rows changed outside of it). A group lent out at the
    /// time is not taken back.
    pub fn clear(&self) {
        self.drop_deferred();
        self.slot.borrow_mut().take();
        if self.lent.get() > 0 {
            self.poisoned.set(true);
        }
    }

    /// Starts over empty, flags included: for a cache kept across transactions whose last
    /// transaction did not commit, or whose rows another connection may have changed. Must
    /// not be called while a group is lent out (nothing is, between transactions).
    pub fn reset(&self) {
        self.slot.borrow_mut().take();
        self.poisoned.set(self.lent.get() > 0);
        self.deferred.set(false);
        self.lost.set(false);
    }

    /// Whether the group held is exactly its rows: nothing lent, nothing deferred or lost.
    /// Only such a cache may outlive its transaction.
    pub fn is_settled(&self) -> bool {
        self.lent.get() == 0 && !self.deferred.get() && !self.lost.get() && !self.poisoned.get()
    }

    /// Forgets the cached group after an operation failed or a part was undone: a loss only
    /// if the rows before it were not current (`rows_were_stale`).
    pub fn discard(&self, rows_were_stale: bool) {
        self.deferred.set(false);
        if rows_were_stale {
            self.lost.set(true);
        }
        self.clear();
    }

    /// Whether the group held has message secrets newer than the rows.
    pub fn is_deferred(&self) -> bool {
        self.deferred.get()
    }

    /// Whether a group was dropped with secrets the rows miss (the transaction must go).
    pub fn is_lost(&self) -> bool {
        self.lost.get()
    }

    /// A message-secrets write of the group lent out was skipped.
    pub(crate) fn mark_deferred(&self) {
        self.deferred.set(true);
    }

    /// Sets whether the group held is newer than the rows, after a part that did not change
    /// the group was undone (the rows went back to what they were when it began).
    pub fn restore_deferred(&self, deferred: bool) {
        if deferred && (self.slot.borrow().is_none() || self.lent.get() > 0) {
            self.lost.set(true);
            self.deferred.set(false);
        } else {
            self.deferred.set(deferred);
        }
    }

    /// Whether the group held is `group_id`.
    pub fn holds(&self, group_id: &[u8]) -> bool {
        self.slot
            .borrow()
            .as_ref()
            .is_some_and(|g| g.group_id() == group_id)
    }

    /// Writes the deferred message secrets of the group held through `p` (a provider without
    /// this cache, whose changes the owner applies to the rows).
    pub fn write_deferred(&self, p: &MlsProvider<'_>) -> Result<(), MlsError> {
        if !self.deferred.get() {
            return Ok(());
        }
        let mut slot = self.slot.borrow_mut();
        match slot.as_mut() {
            Some(group) if self.lent.get() == 0 => {
                group.rewrite_message_secrets(p)?;
                self.deferred.set(false);
                Ok(())
            }
            _ => {
                self.lost.set(true);
                self.deferred.set(false);
                Err(MlsError::Storage(
                    "deferred message secrets: the group is lent out".into(),
                ))
            }
        }
    }

    /// The group held is about to be dropped: a loss if it is deferred.
    fn drop_deferred(&self) {
        if self.deferred.replace(false) {
            self.lost.set(true);
        }
    }

    /// Whether a group is held (for tests).
    pub fn is_empty(&self) -> bool {
        self.slot.borrow().is_none()
    }

    /// Loads served from memory and loads that decoded the rows.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.get(), self.misses.get())
    }

    fn take(&self, group_id: &[u8]) -> Option<Group> {
        if self.lent.get() > 0 {
            self.poisoned.set(true);
        }
        self.lent.set(self.lent.get() + 1);
        let mut slot = self.slot.borrow_mut();
        if self.lent.get() == 1 && slot.as_ref().is_some_and(|g| g.group_id() == group_id) {
            self.hits.set(self.hits.get() + 1);
            return slot.take();
        }
        // The rows are about to be read, or the group held dropped.
        self.drop_deferred();
        self.misses.set(self.misses.get() + 1);
        *slot = None;
        None
    }

    fn give_back(&self, group: Option<Group>) {
        let lent = self.lent.get().saturating_sub(1);
        self.lent.set(lent);
        let keep = !self.poisoned.get();
        if lent == 0 {
            self.poisoned.set(false);
        }
        if !keep && group.is_some() {
            self.drop_deferred();
        }
        let mut slot = self.slot.borrow_mut();
        *slot = if keep { group } else { None };
    }
}

/// A group lent by the provider's [`GroupCache`] (or loaded without one); derefs to
/// [`Group`] and goes back to the cache when dropped.
#[derive(Debug)]
pub struct CachedGroup<'c> {
    group: Option<Group>,
    cache: Option<&'c GroupCache>,
}

impl<'c> CachedGroup<'c> {
    /// The group `group_id` as stored in `p`'s rows: from `p`'s cache if it holds it,
    /// decoded from the rows otherwise.
    pub fn load(p: &'c MlsProvider<'_>, group_id: &[u8]) -> Result<Option<Self>, MlsError> {
        let Some(cache) = p.group_cache() else {
            return Ok(Group::load(p, group_id)?.map(|g| CachedGroup {
                group: Some(g),
                cache: None,
            }));
        };
        let group = match cache.take(group_id) {
            Some(g) => Some(g),
            None => match Group::load(p, group_id) {
                Ok(g) => g,
                Err(e) => {
                    cache.give_back(None);
                    return Err(e);
                }
            },
        };
        match group {
            Some(g) => {
                if let Err(e) = p.storage().defer_secrets_of(group_id) {
                    cache.give_back(Some(g));
                    return Err(MlsError::Storage(e.to_string()));
                }
                Ok(Some(CachedGroup {
                    group: Some(g),
                    cache: Some(cache),
                }))
            }
            None => {
                cache.give_back(None);
                Ok(None)
            }
        }
    }
}

impl Deref for CachedGroup<'_> {
    type Target = Group;
    fn deref(&self) -> &Group {
        self.group
            .as_ref()
            .expect("a lent group is present until dropped")
    }
}

impl DerefMut for CachedGroup<'_> {
    fn deref_mut(&mut self) -> &mut Group {
        self.group
            .as_mut()
            .expect("a lent group is present until dropped")
    }
}

impl Drop for CachedGroup<'_> {
    fn drop(&mut self) {
        if let Some(cache) = self.cache {
            cache.give_back(self.group.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mls::tests::write_deferred_into;
    use crate::mls::{Identity, MemoryKv};

    const GID: &[u8] = b"cached";

    /// Runs `f` on a provider with `cache` over `kv`, then persists its changes.
    fn step<R>(kv: &mut MemoryKv, cache: &GroupCache, f: impl FnOnce(&MlsProvider) -> R) -> R {
        let p = MlsProvider::with_group_cache(kv, cache);
        let r = f(&p);
        let changes = p.storage().take_changes();
        drop(p);
        kv.apply(changes);
        r
    }

    fn commit_empty(p: &MlsProvider, id: &Identity, g: &mut Group) {
        g.create_commit(p, id, &[], &[]).unwrap();
        g.merge_pending_commit(p).unwrap();
    }

    #[test]
    fn a_returned_group_is_reused_and_equals_the_stored_one() {
        let id = Identity::from_secret(&[3; 32]).unwrap();
        let mut kv = MemoryKv::new();
        let cache = GroupCache::new();
        step(&mut kv, &cache, |p| {
            Group::create(p, &id, GID).map(|_| ()).unwrap()
        });
        for expected in 1..=3 {
            step(&mut kv, &cache, |p| {
                let mut g = CachedGroup::load(p, GID).unwrap().unwrap();
                commit_empty(p, &id, &mut g);
                assert_eq!(g.epoch(), expected);
            });
        }
        assert_eq!(cache.stats(), (2, 1));
        // What stayed in memory is what the rows hold.
        let cached = step(&mut kv, &cache, |p| {
            CachedGroup::load(p, GID)
                .unwrap()
                .unwrap()
                .epoch_authenticator()
        });
        let p = MlsProvider::new(&kv);
        let stored = Group::load(&p, GID).unwrap().unwrap();
        assert_eq!(stored.epoch(), 3);
        assert_eq!(stored.epoch_authenticator(), cached);
        // Another group id is a miss and replaces the cached one.
        drop(p);
        step(&mut kv, &cache, |p| {
            assert!(CachedGroup::load(p, b"other").unwrap().is_none());
        });
        assert!(cache.is_empty());
    }

    #[test]
    fn a_cleared_cache_reloads_the_rows() {
        let id = Identity::from_secret(&[3; 32]).unwrap();
        let mut kv = MemoryKv::new();
        let cache = GroupCache::new();
        step(&mut kv, &cache, |p| {
            Group::create(p, &id, GID).map(|_| ()).unwrap()
        });
        step(&mut kv, &cache, |p| {
            let _g = CachedGroup::load(p, GID).unwrap().unwrap();
        });
        assert!(!cache.is_empty());
        // A step that advances the group in memory but whose rows are dropped (a rollback):
        // its owner clears the cache, and the next load sees the rows again.
        let p = MlsProvider::with_group_cache(&kv, &cache);
        {
            let mut g = CachedGroup::load(&p, GID).unwrap().unwrap();
            commit_empty(&p, &id, &mut g);
            assert_eq!(g.epoch(), 1);
        }
        drop(p);
        assert!(!cache.is_empty());
        cache.clear();
        step(&mut kv, &cache, |p| {
            assert_eq!(CachedGroup::load(p, GID).unwrap().unwrap().epoch(), 0);
        });
        // Clearing while a group is lent: the group is not taken back.
        step(&mut kv, &cache, |p| {
            let g = CachedGroup::load(p, GID).unwrap().unwrap();
            cache.clear();
            drop(g);
        });
        assert!(cache.is_empty());
    }

    #[test]
    fn two_groups_lent_at_once_are_not_taken_back() {
        let id = Identity::from_secret(&[3; 32]).unwrap();
        let mut kv = MemoryKv::new();
        let cache = GroupCache::new();
        step(&mut kv, &cache, |p| {
            Group::create(p, &id, GID).map(|_| ()).unwrap()
        });
        step(&mut kv, &cache, |p| {
            let mut a = CachedGroup::load(p, GID).unwrap().unwrap();
            let b = CachedGroup::load(p, GID).unwrap().unwrap();
            commit_empty(p, &id, &mut a);
            assert_eq!((a.epoch(), b.epoch()), (1, 0));
            drop(b);
            drop(a);
        });
        assert!(cache.is_empty());
        step(&mut kv, &cache, |p| {
            assert_eq!(CachedGroup::load(p, GID).unwrap().unwrap().epoch(), 1);
        });
        assert!(!cache.is_empty());
    }

    #[test]
    fn creating_or_deleting_a_group_clears_the_cache() {
        let id = Identity::from_secret(&[3; 32]).unwrap();
        let mut kv = MemoryKv::new();
        let cache = GroupCache::new();
        step(&mut kv, &cache, |p| {
            Group::create(p, &id, GID).map(|_| ()).unwrap()
        });
        step(&mut kv, &cache, |p| {
            let _g = CachedGroup::load(p, GID).unwrap().unwrap();
        });
        assert!(!cache.is_empty());
        step(&mut kv, &cache, |p| {
            let g = Group::load(p, GID).unwrap().unwrap();
            g.delete(p).unwrap();
        });
        assert!(cache.is_empty());
        step(&mut kv, &cache, |p| {
            assert!(CachedGroup::load(p, GID).unwrap().is_none());
        });
        step(&mut kv, &cache, |p| {
            let _g = Group::create(p, &id, b"x").unwrap();
            let _c = CachedGroup::load(p, b"x").unwrap().unwrap();
        });
        assert!(!cache.is_empty());
        step(&mut kv, &cache, |p| {
            Group::create(p, &id, GID).map(|_| ()).unwrap()
        });
        assert!(cache.is_empty());
    }

    /// A cache holding group `GID` with message secrets newer than the rows.
    fn deferred_cache(kv: &mut MemoryKv, id: &Identity) -> GroupCache {
        let cache = GroupCache::new();
        step(kv, &cache, |p| {
            Group::create(p, id, GID).map(|_| ()).unwrap()
        });
        let p = MlsProvider::deferring_message_secrets(kv, &cache);
        {
            let mut g = CachedGroup::load(&p, GID).unwrap().unwrap();
            commit_empty(&p, id, &mut g);
        }
        let changes = p.storage().take_changes();
        drop(p);
        kv.apply(changes);
        assert!(cache.is_deferred() && !cache.is_lost());
        cache
    }

    #[test]
    fn dropping_a_deferred_group_is_a_loss_unless_the_rows_were_current() {
        let id = Identity::from_secret(&[3; 32]).unwrap();
        let mut kv = MemoryKv::new();
        // Cleared, replaced by another group, or discarded over stale rows: lost.
        let cache = deferred_cache(&mut kv.clone(), &id);
        cache.clear();
        assert!(cache.is_lost() && !cache.is_deferred());
        let mut other = kv.clone();
        let cache = deferred_cache(&mut other, &id);
        step(&mut other, &cache, |p| {
            assert!(CachedGroup::load(p, b"other").unwrap().is_none());
        });
        assert!(cache.is_lost());
        let cache = deferred_cache(&mut kv.clone(), &id);
        cache.discard(true);
        assert!(cache.is_lost());
        // Discarded over current rows, or a part undone that left the group as it was: kept.
        let cache = deferred_cache(&mut kv.clone(), &id);
        cache.discard(false);
        assert!(!cache.is_lost() && cache.is_empty());
        let cache = deferred_cache(&mut kv.clone(), &id);
        cache.restore_deferred(true);
        assert!(cache.is_deferred() && !cache.is_lost());
        // Restoring "newer than the rows" without the group is a loss.
        cache.discard(false);
        cache.restore_deferred(true);
        assert!(cache.is_lost());
        // Loading the same group again is a hit: still deferred, and written on request.
        let cache = deferred_cache(&mut kv, &id);
        assert!(cache.holds(GID));
        write_deferred_into(&cache, &mut kv);
        assert!(!cache.is_deferred() && !cache.is_lost());
        let stored = Group::load(&MlsProvider::new(&kv), GID).unwrap().unwrap();
        assert_eq!(stored.epoch(), 1);
    }

    #[test]
    fn without_a_cache_every_load_decodes_the_rows() {
        let id = Identity::from_secret(&[3; 32]).unwrap();
        let mut kv = MemoryKv::new();
        let p = MlsProvider::new(&kv);
        Group::create(&p, &id, GID).unwrap();
        let changes = p.storage().take_changes();
        drop(p);
        kv.apply(changes);
        let p = MlsProvider::new(&kv);
        assert!(p.group_cache().is_none());
        let g = CachedGroup::load(&p, GID).unwrap().unwrap();
        assert_eq!(g.epoch(), 0);
    }
}
