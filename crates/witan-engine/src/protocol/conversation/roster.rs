//! The epoch's member set and signer map, derived from the member list once per epoch.
//!
//! The ballot box counts votes against the set of members and the commit round checks
//! signatures against the map of members' keys. Built afresh for each packet, they cost
//! O(n log n) per packet — per vote, prevote and precommit of a commit, so O(n² log n) per
//! member and commit. They are derived from `Conversation::members` alone, so they are kept
//! beside it, built on first use, and forgotten whenever the list is replaced
//! ([`super::Conversation::set_members`]). They are never stored, and two conversations
//! compare equal whatever their caches hold.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::mls::MemberId;
use crate::protocol::commit_round::Signers;

/// What is derived from the member list.
#[derive(Debug)]
pub(crate) struct Roster {
    pub set: BTreeSet<MemberId>,
    pub signers: Signers,
    /// Names this set among every roster the process built (never 0): what a ballot's
    /// remembered counts are tied to (`ballot_box::counted`).
    pub serial: u64,
}

/// The serial of the next roster built.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// The roster of the current member list, built on first use.
#[derive(Clone, Debug, Default)]
pub(crate) struct RosterCache(OnceLock<Arc<Roster>>);

impl PartialEq for RosterCache {
    fn eq(&self, _: &Self) -> bool {
        // A cache of what the member list says: the lists are compared instead.
        true
    }
}

impl RosterCache {
    /// The roster of `members` (which must be the list this cache was last reset for).
    pub fn get(&self, members: &[(MemberId, [u8; 32])]) -> Arc<Roster> {
        self.0
            .get_or_init(|| {
                Arc::new(Roster {
                    set: members.iter().map(|(m, _)| *m).collect(),
                    signers: members.iter().map(|(m, k)| (*k, *m)).collect(),
                    serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roster_follows_the_list_it_was_built_for() {
        let a = (MemberId([1; 20]), [1; 32]);
        let b = (MemberId([2; 20]), [2; 32]);
        let cache = RosterCache::default();
        let r = cache.get(&[a, b]);
        assert_eq!(r.set.len(), 2);
        assert_eq!(r.signers.get(&[2; 32]), Some(&MemberId([2; 20])));
        assert_eq!(cache.get(&[a, b]).serial, r.serial, "one list, one serial");
        assert_ne!(RosterCache::default().get(&[a, b]).serial, r.serial);
        assert_ne!(r.serial, 0);
        assert!(
            RosterCache::default() == cache,
            "caches never make states differ"
        );
    }
}
