//! [`GroupCache`]: one decoded MLS group kept in memory between engine runs (switched off
//! with [`Layer::Group`]).
//!
//! Decoding a group from its rows (`MlsGroup::load`: the ratchet tree, the message secrets)
//! is the largest cost of a received packet, so the group an engine run used is kept for the
//! next run. The cache is one [`Held`] state, and it keeps a group only while that group is
//! what its rows say, which it checks rather than assumes of OpenMLS:
//!
//! - a group goes back to the cache only from a successful engine run (the caller reports a
//!   failed one with [`GroupCache::run_failed`]) and only if no operation on it failed (an
//!   OpenMLS operation that fails may have changed the group in memory without writing it);
//! - whoever rolls the rows back resets the cache ([`GroupCache::reset`]); the store does it
//!   for every transaction that does not commit, and for every transaction that another
//!   connection may have preceded;
//! - creating, joining or deleting a group over the rows forgets the group held
//!   (`MlsProvider::forget_cached_groups`).
//!
//! **Deferred message secrets.** OpenMLS rewrites a group's whole message secrets after every
//! message it processes (a row that grows with the group). A provider made with
//! `MlsProvider::deferring_message_secrets` skips that write for the group lent out, and the
//! cache holds the group [`Held::Ahead`] of its rows. Its owner writes the secrets back
//! ([`GroupCache::write_deferred`]) before the transaction commits or another group is
//! loaded; the write is checked to have reached the rows. A group ahead of its rows that has
//! to be dropped (its run failed, another group replaced it) leaves the cache
//! [`Held::Lost`]: the rows lack secrets the group had consumed, so the transaction must be
//! rolled back, and may be redone without deferring.
//!
//! **Carried secrets.** A step that only read chats may leave its group ahead of its rows
//! past its commit ([`GroupCache::carry`], [`Held::Carried`]), within [`CARRY_BOUND`]: the
//! rows then still hold the keys of those chats, and a copy of one read again from them (after
//! a kill) is told from a new message by the history, which holds its row. What such a group
//! is ahead by is harmless to lose, so a reset or a dropped run forgets it rather than losing
//! the step; its secrets are written like deferred ones — by the next step that is not a chat
//! read, before a run on another group, or once the bound is reached.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};

use super::crypto::KeptCrypto;
use super::error::MlsError;
use super::group::Group;
use super::loans::GroupLoans;
use super::provider::MlsProvider;
use super::switches::Layer;

/// What a [`GroupCache`] holds.
#[derive(Debug, Default)]
pub enum Held {
    /// Nothing.
    #[default]
    Empty,
    /// A group equal to its rows.
    Current(Group),
    /// A group whose message secrets are newer than its rows (their write was deferred).
    Ahead(Group),
    /// A group whose message secrets are newer than its rows only by chats that committed
    /// steps read (see the module doc): it outlives its transaction, and losing it loses
    /// nothing.
    Carried(Group),
    /// Groups lent out and not back yet.
    Lent(Loan),
    /// A group ahead of its rows was dropped: the transaction must be rolled back.
    Lost,
}

/// The groups of a [`Held::Lent`] cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loan {
    /// Groups out.
    count: u32,
    /// The group lent (the first one) is ahead of its rows.
    ahead: bool,
    /// Nothing lent may come back: a second group was lent while one was out (two copies
    /// could disagree), or the rows were reset meanwhile.
    spoiled: bool,
    /// The group lent was carried ahead of its rows by earlier steps.
    carried: bool,
}

/// How far a group may be carried ahead of its rows: chats read, and milliseconds since the
/// first of them. Until then the database still holds their keys (forward secrecy waits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarryBound {
    pub chats: u32,
    pub ms: u64,
}

/// The bound every [`GroupCache`] carries within.
pub const CARRY_BOUND: CarryBound = CarryBound {
    chats: 64,
    ms: 10_000,
};

/// What [`GroupCache::carry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrying {
    /// Nothing carried: the secrets must be written (beyond the bound, or nothing ahead).
    Refused,
    /// Carried, from rows that were current: the first step of a carry.
    Began,
    /// Carried further.
    Continued,
}

/// What a carried group is ahead of its rows by.
#[derive(Debug, Clone, Copy)]
struct Carry {
    chats: u32,
    since_ms: u64,
}

/// One decoded group, kept between engine runs (see the module doc).
#[derive(Debug)]
pub struct GroupCache {
    held: RefCell<Held>,
    /// What the group held (or lent) was carried ahead of its rows by, if it was.
    carry: Cell<Option<Carry>>,
    /// Whether groups are kept at all ([`Layer::Group`]).
    keeps: bool,
    hits: Cell<u64>,
    misses: Cell<u64>,
    /// The client's generator and valid signatures: no rollback touches them (the signatures
    /// are facts about bytes; a generator's output is never replayed).
    crypto: KeptCrypto,
}

impl Default for GroupCache {
    fn default() -> Self {
        GroupCache::new()
    }
}

impl GroupCache {
    /// An empty cache; it keeps nothing while [`Layer::Group`] is off.
    pub fn new() -> GroupCache {
        GroupCache::keeping(Layer::Group.enabled())
    }

    /// An empty cache that keeps groups, or not, whatever the switches say (tests of the
    /// cache itself).
    pub fn keeping(keeps: bool) -> GroupCache {
        GroupCache {
            held: RefCell::new(Held::Empty),
            carry: Cell::new(None),
            keeps,
            hits: Cell::new(0),
            misses: Cell::new(0),
            crypto: KeptCrypto::default(),
        }
    }

    /// Forgets everything (the rows were rolled back, or another connection may have written
    /// them). A group lent out at the time will not come back.
    pub fn reset(&self) {
        let mut held = self.held.borrow_mut();
        *held = match &*held {
            Held::Lent(loan) => Held::Lent(Loan {
                ahead: false,
                spoiled: true,
                carried: false,
                ..*loan
            }),
            _ => Held::Empty,
        };
        self.carry.set(None);
    }

    /// An engine run failed, so nothing it did is kept, and the group it may have changed in
    /// memory is dropped with it.
    pub fn run_failed(&self) {
        self.drop_group();
    }

    fn drop_group(&self) {
        let mut held = self.held.borrow_mut();
        *held = match std::mem::take(&mut *held) {
            Held::Empty | Held::Current(_) => Held::Empty,
            Held::Carried(_) => {
                self.carry.set(None);
                Held::Empty
            }
            Held::Ahead(_) | Held::Lost => Held::Lost,
            Held::Lent(loan) => Held::Lent(Loan {
                spoiled: true,
                ..loan
            }),
        };
    }

    /// Whether the cache may outlive its transaction: nothing lent, deferred or lost (a
    /// carried group may).
    pub fn is_settled(&self) -> bool {
        matches!(
            &*self.held.borrow(),
            Held::Empty | Held::Current(_) | Held::Carried(_)
        )
    }

    /// Whether the group held has message secrets newer than its rows (deferred or carried).
    pub fn is_ahead(&self) -> bool {
        matches!(&*self.held.borrow(), Held::Ahead(_) | Held::Carried(_))
    }

    /// Whether the group held was carried past its step's commit (see the module doc).
    pub fn is_carried(&self) -> bool {
        matches!(&*self.held.borrow(), Held::Carried(_))
    }

    /// Lets the group ahead of its rows stay so past the commit of a step in which every
    /// message it read was one of `chats` chats (the caller vouches for that), if the total
    /// since its rows were written stays within [`CARRY_BOUND`]. If it does not, its secrets
    /// must be written as deferred ones.
    pub fn carry(&self, chats: u32, now_ms: u64) -> Carrying {
        let mut held = self.held.borrow_mut();
        if !matches!(&*held, Held::Ahead(_) | Held::Carried(_)) {
            return Carrying::Refused;
        }
        let began = self.carry.get().is_none();
        let before = self.carry.get().unwrap_or(Carry {
            chats: 0,
            since_ms: now_ms,
        });
        let total = Carry {
            chats: before.chats.saturating_add(chats),
            ..before
        };
        let within = total.chats <= CARRY_BOUND.chats
            && now_ms.saturating_sub(total.since_ms) <= CARRY_BOUND.ms;
        if !within {
            return Carrying::Refused;
        }
        if let Held::Ahead(g) | Held::Carried(g) = std::mem::take(&mut *held) {
            *held = Held::Carried(g);
            self.carry.set(Some(total));
        }
        if began {
            Carrying::Began
        } else {
            Carrying::Continued
        }
    }

    /// Whether a group ahead of its rows was dropped (the transaction must be rolled back).
    pub fn is_lost(&self) -> bool {
        matches!(&*self.held.borrow(), Held::Lost)
    }

    /// Whether the group held (current or ahead) is `group_id`.
    pub fn holds(&self, group_id: &[u8]) -> bool {
        match &*self.held.borrow() {
            Held::Current(g) | Held::Ahead(g) | Held::Carried(g) => g.group_id() == group_id,
            _ => false,
        }
    }

    /// Whether nothing is held or lent.
    pub fn is_empty(&self) -> bool {
        matches!(&*self.held.borrow(), Held::Empty)
    }

    /// Loads served from memory and loads that decoded the rows.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.get(), self.misses.get())
    }

    /// Writes the deferred message secrets of the group held through `p` (a provider without
    /// this cache, whose changes the owner applies to the rows), and checks that they were
    /// written. A no-op unless the group is ahead of its rows. On failure the cache is lost.
    pub fn write_deferred(&self, p: &MlsProvider<'_>) -> Result<(), MlsError> {
        let mut held = self.held.borrow_mut();
        if !matches!(&*held, Held::Ahead(_) | Held::Carried(_)) {
            return Ok(());
        }
        let (Held::Ahead(mut group) | Held::Carried(mut group)) = std::mem::take(&mut *held) else {
            return Ok(());
        };
        self.carry.set(None);
        let written = group.rewrite_message_secrets(p).and_then(|()| {
            if p.storage().holds_message_secrets_of(group.group_id())? {
                Ok(())
            } else {
                Err(MlsError::Storage(
                    "rewriting the deferred message secrets wrote nothing".into(),
                ))
            }
        });
        *held = match written {
            Ok(()) => Held::Current(group),
            Err(_) => Held::Lost,
        };
        written
    }

    /// Lends the group `group_id` if held; `None` when the caller must decode it (a miss).
    fn take(&self, group_id: &[u8]) -> Option<Group> {
        let mut held = self.held.borrow_mut();
        let (next, lent) = match std::mem::take(&mut *held) {
            Held::Current(g) if g.group_id() == group_id => (Held::Lent(Loan::one(false)), Some(g)),
            Held::Ahead(g) if g.group_id() == group_id => (Held::Lent(Loan::one(true)), Some(g)),
            Held::Carried(g) if g.group_id() == group_id => {
                let loan = Loan {
                    carried: true,
                    ..Loan::one(false)
                };
                (Held::Lent(loan), Some(g))
            }
            // Dropping a group ahead of its rows loses its secrets.
            Held::Ahead(_) | Held::Lost => (Held::Lost, None),
            // What a carried group was ahead by may be lost.
            Held::Carried(_) => {
                self.carry.set(None);
                (Held::Lent(Loan::one(false)), None)
            }
            Held::Empty | Held::Current(_) => (Held::Lent(Loan::one(false)), None),
            Held::Lent(loan) => (
                Held::Lent(Loan {
                    count: loan.count.saturating_add(1),
                    spoiled: true,
                    ..loan
                }),
                None,
            ),
        };
        *held = next;
        let counter = if lent.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.set(counter.get() + 1);
        lent
    }

    /// Takes back a group lent by [`GroupCache::take`] (`None`: it was not found, or is gone).
    fn give_back(&self, group: Option<Group>) {
        let mut held = self.held.borrow_mut();
        let Held::Lent(loan) = &mut *held else {
            // Lost, or reset meanwhile: nothing comes back.
            return;
        };
        loan.count = loan.count.saturating_sub(1);
        if loan.count > 0 {
            return;
        }
        let keep = group.filter(|g| !loan.spoiled && g.is_current() && self.keeps);
        if keep.is_none() {
            self.carry.set(None);
        }

        *held = match (keep, loan.ahead, loan.carried) {
            (Some(g), false, false) => Held::Current(g),
            // Still ahead by what earlier steps read, and by nothing this step read.
            (Some(g), false, true) => Held::Carried(g),
            (Some(g), true, _) => Held::Ahead(g),
            (None, false, _) => Held::Empty,
            (None, true, _) => Held::Lost,
        };
    }
}

impl Loan {
    fn one(ahead: bool) -> Loan {
        Loan {
            count: 1,
            ahead,
            spoiled: false,
            carried: false,
        }
    }
}

impl GroupLoans for GroupCache {
    /// A message-secrets write of the group lent out is about to be skipped: allowed (and
    /// recorded) only while exactly one group is out.
    fn defer_write(&self) -> bool {
        match &mut *self.held.borrow_mut() {
            Held::Lent(loan) if loan.count == 1 && !loan.spoiled => {
                loan.ahead = true;
                true
            }
            _ => false,
        }
    }

    /// Forgets the group held because its rows are about to change outside of it (a group is
    /// created, joined or deleted).
    fn forget(&self) {
        self.drop_group();
    }

    fn kept_crypto(&self) -> Option<&KeptCrypto> {
        Some(&self.crypto)
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
        // The provider carries its lender as `GroupLoans` (it cannot name the cache, whose
        // groups run on the provider); the lender it was given is this cache.
        let lender = p.group_cache().map(|l| l as &dyn std::any::Any);
        let Some(cache) = lender.and_then(|l| l.downcast_ref::<GroupCache>()) else {
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
        let Some(g) = group else {
            cache.give_back(None);
            return Ok(None);
        };
        match g.secrets_row() {
            Ok(row) => p.storage().defer_secrets_under(row),
            Err(e) => {
                cache.give_back(Some(g));
                return Err(e);
            }
        }
        Ok(Some(CachedGroup {
            group: Some(g),
            cache: Some(cache),
        }))
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
mod tests;
