//! A ballot's yes and no counts among the voters of one member set, kept up to date as its
//! votes come and go, so that a tally does not count every vote again for every packet (a
//! member's tally is asked for on each packet it receives: with n votes on a proposal that
//! was O(n) per packet, O(n²) per member and commit).
//!
//! Counts belong to one roster (the member set built once per member list, whose serial no
//! other set in the process shares; serial 0 means "do not remember"). A change of votes
//! made under another roster forgets them, and the next tally counts afresh; so does any
//! change this memo cannot follow. Debug builds check every remembered count against a full
//! count (`Ballot::counts`).

use std::sync::Mutex;

/// Yes and no votes among the members of roster `roster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    roster: u64,
    yes: u64,
    no: u64,
}

/// See the module doc. Never stored; two ballots compare equal whatever their memos hold.
#[derive(Debug, Default)]
pub(crate) struct CountMemo(Mutex<Option<Counts>>);

impl Clone for CountMemo {
    fn clone(&self) -> Self {
        Self(Mutex::new(self.0.lock().ok().and_then(|c| *c)))
    }
}

impl PartialEq for CountMemo {
    fn eq(&self, _: &Self) -> bool {
        // Derived from the votes, which are compared instead.
        true
    }
}

impl CountMemo {
    /// The remembered (yes, no) among the members of `roster`, if any.
    pub fn get(&self, roster: u64) -> Option<(u64, u64)> {
        if roster == 0 {
            return None;
        }
        let held = *self.0.lock().ok()?;
        held.filter(|c| c.roster == roster).map(|c| (c.yes, c.no))
    }

    /// Remembers a full count among the members of `roster`.
    pub fn set(&self, roster: u64, (yes, no): (u64, u64)) {
        if roster == 0 {
            return;
        }
        if let Ok(mut held) = self.0.lock() {
            *held = Some(Counts { roster, yes, no });
        }
    }

    /// A vote (`approve`) was added or taken away under roster `roster`; `member`: its voter
    /// is in that roster's set.
    pub fn adjust(&mut self, roster: u64, member: bool, approve: bool, added: bool) {
        let slot = match self.0.get_mut() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(c) = slot.as_mut().filter(|c| roster != 0 && c.roster == roster) else {
            *slot = None;
            return;
        };
        if !member {
            return;
        }
        let n = if approve { &mut c.yes } else { &mut c.no };
        match (added, n.checked_sub(1)) {
            (true, _) => *n += 1,
            (false, Some(less)) => *n = less,
            // Cannot happen while the counts are right: count afresh.
            (false, None) => *slot = None,
        }
    }

    /// Forgets the counts (the votes changed in a way not followed here).
    pub fn forget(&mut self) {
        match self.0.get_mut() {
            Ok(slot) => *slot = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_votes_of_their_roster_only() {
        let mut m = CountMemo::default();
        m.set(0, (1, 1));
        assert_eq!(m.get(0), None, "roster 0 is never remembered");
        m.set(7, (2, 1));
        assert_eq!(m.get(7), Some((2, 1)));
        assert_eq!(m.get(8), None, "another roster's counts are not these");
        m.adjust(7, true, true, true);
        m.adjust(7, true, false, false);
        m.adjust(7, false, true, true);
        assert_eq!(m.get(7), Some((3, 0)), "a non-member's vote is not counted");
        m.adjust(7, true, false, false);
        assert_eq!(
            m.get(7),
            None,
            "a count that would go below zero is forgotten"
        );
        m.set(7, (1, 0));
        m.adjust(8, true, true, true);
        assert_eq!(
            m.get(7),
            None,
            "a change under another roster forgets the counts"
        );
        m.set(7, (1, 0));
        let copy = m.clone();
        m.forget();
        assert_eq!((m.get(7), copy.get(7)), (None, Some((1, 0))));
        assert!(copy == m, "memos never make ballots differ");
    }
}
