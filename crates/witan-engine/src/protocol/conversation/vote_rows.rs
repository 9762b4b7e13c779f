//! The ballots' votes stored as rows of their own (see `ballot_box::rows` for why and when):
//! what a save writes ([`Conversation::place_votes`], with the ballots part encoded without
//! the votes in rows) and reading the rows back ([`Conversation::from_stored`]). A store that keeps a
//! conversation in one value ([`Conversation::to_bytes`]) keeps the votes inline instead.

use prost::Message;

use super::Conversation;
use super::stored::{PartKey, StateError, err};
use crate::mls::MemberId;
use crate::protocol::ballot_box::{BallotBox, Digest, Placed};
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
    /// Part `key` as a store keeping votes in rows writes it: the ballots without the votes
    /// placed in rows (the others as [`Conversation::encode_part`]).
    pub fn encode_part_without_rows(&self, key: PartKey) -> Vec<u8> {
        self.encode_part_as(key, false)
    }

    /// Places the votes put since the state was loaded or last saved (inline or in rows, see
    /// `ballot_box::rows`) and returns the vote rows to write. A save calls it before
    /// encoding its parts; votes placed inline mark the ballots part changed.
    pub fn place_votes(&mut self) -> VoteChanges {
        let b = &mut self.ballots;
        let mut changes = VoteChanges {
            all_dropped: b.dropped.all,
            dropped: b.dropped.some.iter().copied().collect(),
            ..VoteChanges::default()
        };
        let mut moved = false;
        for ballot in b.open.values_mut() {
            let digest = ballot.digest;
            if ballot.rows.has_put() {
                moved = true;
                match ballot.rows.place(ballot.votes.len()) {
                    Placed::Inline { had_rows } => {
                        if had_rows {
                            changes.dropped.push(digest);
                        }
                    }
                    Placed::Rows(rows) => {
                        for (voter, row) in rows {
                            let Some(vote) = ballot.votes.get(&voter) else {
                                continue;
                            };
                            changes.put.push(StoredVote {
                                ballot: digest,
                                row,
                                vote: vote.encode_to_vec(),
                            });
                        }
                    }
                }
            }
            changes
                .taken
                .extend(ballot.rows.to_take().map(|row| (digest, row)));
            moved |= ballot.rows.to_take().next().is_some();
        }
        if moved {
            self.dirty.insert(PartKey::Ballots);
        }
        changes
    }
}

impl BallotBox {
    /// The votes were saved where `Conversation::place_votes` placed them (votes put and not
    /// placed count as inline).
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
