//! The ballot box's votes as a store keeps them: one row per vote, written once, instead of
//! inside the ballots part (which a step rewrites whole). A live socket hands a member each
//! vote in a step of its own; rewriting every vote held at each step made a removal cost
//! n² votes written per member.
//!
//! Each ballot numbers its votes' rows in the order they came ([`VoteRows`]), so a step's new
//! votes are appended to the store's table rather than scattered across it, and notes which
//! rows changed since the last save; the box notes the ballots that went
//! ([`DroppedBallots`]). Neither is part of the state's value: two boxes compare equal
//! whatever their notes hold.

use std::collections::{BTreeMap, BTreeSet};

use super::Digest;
use crate::mls::MemberId;

/// A ballot's vote rows and what changed in them since the last save (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct VoteRows {
    /// The row of each voter's vote.
    row: BTreeMap<MemberId, u32>,
    /// The number the next new vote's row gets.
    next: u32,
    /// Voters whose vote must be written (new or replaced).
    put: BTreeSet<MemberId>,
    /// Rows whose vote went.
    taken: BTreeSet<u32>,
}

impl PartialEq for VoteRows {
    fn eq(&self, _: &Self) -> bool {
        // Where the votes are stored, not what they are: the votes are compared instead.
        true
    }
}

impl VoteRows {
    /// `voter`'s vote was put (new or replacing its earlier one).
    pub(crate) fn put(&mut self, voter: MemberId) {
        if !self.row.contains_key(&voter) {
            self.row.insert(voter, self.next);
            // Votes per ballot are bounded far below this (`MAX_OPEN_BYTES`).
            self.next = self.next.saturating_add(1);
        }
        self.put.insert(voter);
    }

    /// `voter`'s vote was taken.
    pub(crate) fn take(&mut self, voter: &MemberId) {
        if let Some(row) = self.row.remove(voter) {
            self.taken.insert(row);
        }
        self.put.remove(voter);
    }

    /// `voter`'s vote was read from row `row` as stored (nothing to write).
    pub(crate) fn loaded(&mut self, voter: MemberId, row: u32) {
        self.row.insert(voter, row);
        self.next = self.next.max(row.saturating_add(1));
    }

    pub(crate) fn row_of(&self, voter: &MemberId) -> Option<u32> {
        self.row.get(voter).copied()
    }

    pub(crate) fn to_put(&self) -> impl Iterator<Item = &MemberId> {
        self.put.iter()
    }

    pub(crate) fn to_take(&self) -> impl Iterator<Item = u32> + '_ {
        self.taken.iter().copied()
    }

    /// What changed was written.
    pub(crate) fn saved(&mut self) {
        self.put.clear();
        self.taken.clear();
    }
}

/// Ballots that left the box since the last save: their rows all go. `all`: the box was
/// made afresh (a conversation started again under an id the store may hold rows of), so
/// every stored row goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct DroppedBallots {
    pub(crate) all: bool,
    pub(crate) some: BTreeSet<Digest>,
}

impl PartialEq for DroppedBallots {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_in_arrival_order_and_changes_are_noted_until_saved() {
        let (a, b, c) = (MemberId([1; 20]), MemberId([2; 20]), MemberId([3; 20]));
        let mut rows = VoteRows::default();
        rows.loaded(b, 4);
        rows.put(a);
        rows.put(c);
        assert_eq!((rows.row_of(&a), rows.row_of(&c)), (Some(5), Some(6)));
        assert_eq!(rows.to_put().copied().collect::<Vec<_>>(), [a, c]);
        // A vote replaced keeps its row; one taken frees nothing for reuse.
        rows.put(b);
        rows.take(&c);
        assert_eq!(rows.row_of(&b), Some(4));
        assert_eq!(rows.to_put().copied().collect::<Vec<_>>(), [a, b]);
        assert_eq!(rows.to_take().collect::<Vec<_>>(), [6]);
        rows.saved();
        assert_eq!(rows.to_put().count() + rows.to_take().count(), 0);
        rows.put(c);
        assert_eq!(rows.row_of(&c), Some(7));
    }
}
