//! The ballots' votes stored as rows of their own (see `ballot_box::rows` for why): what a
//! save writes ([`Conversation::vote_changes`], with the ballots part encoded without its
//! votes) and reading the rows back ([`Conversation::from_stored`]). A store that keeps a
//! conversation in one value ([`Conversation::to_bytes`]) keeps the votes inline instead.

use prost::Message;

use super::Conversation;
use super::stored::{PartKey, StateError, err};
use crate::mls::MemberId;
use crate::protocol::ballot_box::{BallotBox, Digest};
use witan_wire as wire;

/// One vote as stored: the proposal it is on, its row there, and the vote encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVote {
    pub ballot: Digest,
    pub row: u32,
    pub vote: Vec<u8>,
}

/// What a save must do to the vote rows, in this order: delete every row of the
/// conversation if `all_dropped` (it was started afresh), every row of the `dropped`
/// proposals, the `taken` rows, and write the `put` ones (replacing a row of that key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VoteChanges {
    pub all_dropped: bool,
    pub dropped: Vec<Digest>,
    pub taken: Vec<(Digest, u32)>,
    pub put: Vec<StoredVote>,
}

impl VoteChanges {
    pub fn is_empty(&self) -> bool {
        !self.all_dropped && self.dropped.is_empty() && self.taken.is_empty() && self.put.is_empty()
    }
}

impl Conversation {
    /// Part `key` as a store keeping the votes as rows writes it: the ballots without their
    /// votes (the others as [`Conversation::encode_part`]).
    pub fn encode_part_without_votes(&self, key: PartKey) -> Vec<u8> {
        self.encode_part_as(key, false)
    }

    /// The vote rows to write since the state was loaded or the marks were cleared
    /// ([`Conversation::clear_dirty`]).
    pub fn vote_changes(&self) -> VoteChanges {
        let b = &self.ballots;
        let mut changes = VoteChanges {
            all_dropped: b.dropped.all,
            dropped: b.dropped.some.iter().copied().collect(),
            ..VoteChanges::default()
        };
        for ballot in b.open.values() {
            let digest = ballot.digest;
            changes
                .taken
                .extend(ballot.rows.to_take().map(|row| (digest, row)));
            for voter in ballot.rows.to_put() {
                let (Some(vote), Some(row)) = (ballot.votes.get(voter), ballot.rows.row_of(voter))
                else {
                    continue;
                };
                changes.put.push(StoredVote {
                    ballot: digest,
                    row,
                    vote: vote.encode_to_vec(),
                });
            }
        }
        changes
    }
}

impl BallotBox {
    /// Whether votes are waiting to be written as rows.
    pub(super) fn has_unsaved_votes(&self) -> bool {
        self.open.values().any(|b| b.rows.to_put().next().is_some())
    }

    /// The vote rows were written.
    pub(super) fn rows_saved(&mut self) {
        for b in self.open.values_mut() {
            b.rows.saved();
        }
        self.dropped = Default::default();
    }
}

/// Puts stored vote rows back into their ballots. A row of a proposal that is not open, a
/// vote for another proposal or a voter stored twice is refused: the state is damaged.
pub(super) fn add_stored_votes(
    b: &mut BallotBox,
    votes: Vec<StoredVote>,
) -> Result<(), StateError> {
    for stored in votes {
        let ballot = b
            .open
            .get_mut(&stored.ballot)
            .ok_or_else(|| err("a stored vote of a proposal that is not open"))?;
        let vote = wire::Vote::decode(stored.vote.as_slice())
            .map_err(|e| err(format!("a stored vote: {e}")))?;
        if vote.proposal_id != ballot.id {
            return Err(err("a stored vote is for another proposal"));
        }
        let voter = MemberId::from_public_key(&vote.vote_owner);
        if ballot.votes.contains_key(&voter) {
            return Err(err("a voter's vote is stored twice"));
        }
        ballot.rows.loaded(voter, stored.row);
        ballot.votes.insert(voter, vote);
    }
    Ok(())
}
