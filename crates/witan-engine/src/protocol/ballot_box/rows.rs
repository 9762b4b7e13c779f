//! Where a store keeps a ballot's votes: inline in the ballots part, or in rows of their own,
//! one per vote, written once. A live socket hands a member each vote in a step of its own;
//! rewriting every vote held at each step made a removal cost n² votes written per member.
//! But a step that brings many of a ballot's votes at once (a push backlog, a batch) is
//! cheaper written inline, in the part the step rewrites anyway. So a save places the votes
//! a step put (`Conversation::place_votes`): when they are at least a quarter of the
//! ballot's, every vote of the ballot goes inline and its rows are deleted; otherwise the
//! new votes get rows. Each vote is then written a bounded number of times on average,
//! delivered alone or in batches.
//!
//! Each ballot numbers its rows in the order votes came ([`VoteRows`]), so a step's rows are
//! appended to the store's table rather than scattered across it, and notes what changed
//! since the last save; the box notes the ballots that went ([`DroppedBallots`]). Neither is
//! part of the state's value: two boxes compare equal whatever their notes hold.

use std::collections::{BTreeMap, BTreeSet};

use super::Digest;
use crate::mls::MemberId;

/// Where [`VoteRows::place`] put a step's votes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placed {
    /// Every vote of the ballot inline; `had_rows`: its rows are to be deleted.
    Inline { had_rows: bool },
    /// These voters' votes are to be written in these rows.
    Rows(Vec<(MemberId, u32)>),
}

/// A ballot's vote rows and what changed in them since the last save (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct VoteRows {
    /// The row of each voter whose vote is stored as a row (the others are inline).
    row: BTreeMap<MemberId, u32>,
    /// The number the next new vote's row gets.
    next: u32,
    /// Voters whose vote was put since the last save (new or replaced), to be placed.
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
        self.put.insert(voter);
    }

    /// Places the votes put since the last save among `held` votes (see the module doc).
    pub(crate) fn place(&mut self, held: usize) -> Placed {
        if self.put.len().saturating_mul(4) >= held {
            let had_rows = !self.row.is_empty() || !self.taken.is_empty();
            self.row.clear();
            self.taken.clear();
            return Placed::Inline { had_rows };
        }
        let mut rows = Vec::with_capacity(self.put.len());
        for voter in &self.put {
            let row = match self.row.get(voter) {
                Some(row) => *row,
                None => {
                    let row = self.next;
                    // Votes per ballot are bounded far below this (`MAX_OPEN_BYTES`).
                    self.next = self.next.saturating_add(1);
                    self.row.insert(*voter, row);
                    row
                }
            };
            rows.push((*voter, row));
        }
        Placed::Rows(rows)
    }

    /// Whether `voter`'s vote is stored inline (in the ballots part).
    pub(crate) fn is_inline(&self, voter: &MemberId) -> bool {
        !self.row.contains_key(voter)
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

    pub(crate) fn has_put(&self) -> bool {
        !self.put.is_empty()
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
    fn a_few_new_votes_get_rows_in_arrival_order_and_many_go_inline() {
        let voter = |i: u8| MemberId([i; 20]);
        let mut rows = VoteRows::default();
        // Read back: voters 1 and 2 in rows 0 and 4, the ten others inline.
        rows.loaded(voter(1), 0);
        rows.loaded(voter(2), 4);
        rows.put(voter(30));
        rows.put(voter(20));
        assert_eq!(
            rows.place(14),
            Placed::Rows(vec![(voter(20), 5), (voter(30), 6)])
        );
        assert!(!rows.is_inline(&voter(30)) && rows.is_inline(&voter(9)));
        rows.saved();
        // A vote replaced keeps its row; one taken frees nothing for reuse.
        rows.put(voter(2));
        rows.take(&voter(20));
        assert_eq!(rows.place(13), Placed::Rows(vec![(voter(2), 4)]));
        assert_eq!(rows.to_take().collect::<Vec<_>>(), [5]);
        rows.saved();
        assert!(!rows.has_put() && rows.to_take().count() == 0);
        // A quarter of the votes at once: all inline, no rows left.
        for i in 40..44 {
            rows.put(voter(i));
        }
        assert_eq!(rows.place(16), Placed::Inline { had_rows: true });
        assert!(rows.is_inline(&voter(2)) && rows.to_take().count() == 0);
        rows.saved();
        rows.put(voter(50));
        assert_eq!(rows.place(17), Placed::Rows(vec![(voter(50), 7)]));
        // A small ballot's votes stay inline; nothing to delete.
        let mut small = VoteRows::default();
        small.put(voter(1));
        assert_eq!(small.place(2), Placed::Inline { had_rows: false });
    }
}
