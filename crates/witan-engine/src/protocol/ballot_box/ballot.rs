//! One proposal as this member knows it: its header, the signed votes it verified, proofs
//! of equivocation, and the counts kept as votes come and go.

use std::collections::{BTreeMap, BTreeSet};

use super::proposal::Action;
use super::tally::decide_backed;
use super::{Digest, Scope, VOTE_BYTES, counted, rows};
use crate::mls::MemberId;
use crate::protocol::settings::Settings;
use witan_wire as wire;

/// A tentative result: approved or not, and whether silent voters were counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tentative {
    pub approved: bool,
    pub at_expiry: bool,
}

/// A proposal known to this member, with the votes it verified.
#[derive(Clone, Debug, PartialEq)]
pub struct Ballot {
    pub(crate) id: u64,
    pub(crate) digest: Digest,
    pub(crate) action: Action,
    pub(crate) owner: MemberId,
    /// The epoch it was made in.
    pub(crate) made_in: u64,
    /// The proposal with its owner's vote only.
    pub(crate) header: wire::Proposal,
    pub(crate) created_at_ms: u64,
    pub(crate) expires_at_ms: u64,
    /// When this member first learned of it.
    pub(crate) first_seen_ms: u64,
    /// Counted votes: one per member (the owner's included).
    pub(crate) votes: BTreeMap<MemberId, wire::Vote>,
    /// Members that voted both ways: their votes do not count.
    pub(crate) proofs: BTreeMap<MemberId, wire::EquivocationProof>,
    /// This member re-broadcast the votes it holds.
    pub(crate) relayed: bool,
    /// This member's own proposal, not sent yet: held back while an emergency is open.
    pub(crate) held: bool,
    /// The counts of `votes` among the current members, kept as votes are put and taken.
    pub(crate) counted: counted::CountMemo,
    /// Where a store keeps `votes`, and what changed there since the last save.
    pub(crate) rows: rows::VoteRows,
}

impl Ballot {
    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
    pub fn action(&self) -> &Action {
        &self.action
    }
    pub fn owner(&self) -> MemberId {
        self.owner
    }
    pub fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }
    pub fn header(&self) -> &wire::Proposal {
        &self.header
    }
    /// This member's own proposal, held back behind an open emergency (not sent yet).
    pub fn is_held(&self) -> bool {
        self.held
    }
    pub fn has_voted(&self, member: &MemberId) -> bool {
        self.votes.contains_key(member) || self.proofs.contains_key(member)
    }
    /// Every counted vote, signed, as it travels.
    pub fn signed_votes(&self) -> impl Iterator<Item = &wire::Vote> {
        self.votes.values()
    }
    /// Every counted vote and its value.
    pub fn votes(&self) -> impl Iterator<Item = (&MemberId, bool)> {
        self.votes.iter().map(|(m, v)| (m, v.vote))
    }

    /// When silent voters may be counted here: at expiry, or a full window after this member
    /// learned of it if that came late (a backlog, or a proposal only seen in a candidate).
    pub fn silence_at(&self, settings: &Settings) -> u64 {
        let late = self.first_seen_ms
            > self
                .created_at_ms
                .saturating_add(settings.max_clock_skew_ms);
        if late {
            self.expires_at_ms
                .max(self.first_seen_ms.saturating_add(settings.vote_timeout_ms))
        } else {
            self.expires_at_ms
        }
    }

    /// Halfway through the window: when this member re-sends the votes it holds.
    pub fn relay_at(&self) -> u64 {
        self.created_at_ms + self.expires_at_ms.saturating_sub(self.created_at_ms) / 2
    }

    /// The yes and no votes among the scope's members: remembered under its roster (see
    /// `counted`), or counted.
    pub(super) fn counts(&self, scope: &Scope<'_>) -> (u64, u64) {
        if let Some(held) = self.counted.get(scope.roster) {
            debug_assert_eq!(held, self.count_all(scope.members), "remembered counts");
            return held;
        }
        let counts = self.count_all(scope.members);
        self.counted.set(scope.roster, counts);
        counts
    }

    pub(super) fn count_all(&self, members: &BTreeSet<MemberId>) -> (u64, u64) {
        let counted = self.votes.iter().filter(|(m, _)| members.contains(m));
        let yes = counted.clone().filter(|(_, v)| v.vote).count() as u64;
        (yes, counted.count() as u64 - yes)
    }

    /// Holds `vote` as `voter`'s (the only way votes are added, so that the counts follow).
    pub(super) fn put_vote(&mut self, voter: MemberId, vote: wire::Vote, scope: &Scope<'_>) {
        let member = scope.members.contains(&voter);
        let approve = vote.vote;
        if let Some(old) = self.votes.insert(voter, vote) {
            self.counted.adjust(scope.roster, member, old.vote, false);
        }
        self.counted.adjust(scope.roster, member, approve, true);
        self.rows.put(voter);
    }

    /// Drops `voter`'s vote (the only way single votes are taken, so that the counts follow).
    pub(super) fn take_vote(&mut self, voter: &MemberId, scope: &Scope<'_>) {
        if let Some(old) = self.votes.remove(voter) {
            let member = scope.members.contains(voter);
            self.counted.adjust(scope.roster, member, old.vote, false);
            self.rows.take(voter);
        }
    }

    /// This member's tentative result now.
    pub fn tentative(&self, scope: &Scope<'_>) -> Option<Tentative> {
        let (yes, no) = self.counts(scope);
        let n = scope.members.len() as u64;
        let liveness = scope.settings.liveness_criteria_yes;
        let backing = self.action.backing(&self.owner);
        if let Some(approved) = decide_backed(n, yes, no, false, liveness, backing) {
            return Some(Tentative {
                approved,
                at_expiry: false,
            });
        }
        if scope.now_ms >= self.silence_at(scope.settings) {
            return decide_backed(n, yes, no, true, liveness, backing).map(|approved| Tentative {
                approved,
                at_expiry: true,
            });
        }
        None
    }

    pub(super) fn bytes(&self) -> usize {
        prost::Message::encoded_len(&self.header)
            + VOTE_BYTES * (self.votes.len() + self.proofs.len())
    }
}

/// The voter of `vote` if this ballot holds that very vote (every byte alike, signature
/// included). A held vote passed `votes::verify` against this ballot's header when it was
/// put, and verifying is a function of the vote, the header and the conversation alone, so
/// it would pass again: the signature is not checked a second time (a vote that came alone
/// comes again in the candidate's evidence). Whatever else a vote must pass (its carrier,
/// its voter's membership) is checked as for any vote.
pub(super) fn held_already(ballot: &Ballot, vote: &wire::Vote) -> Option<MemberId> {
    let voter = MemberId::from_public_key(&vote.vote_owner);
    (ballot.votes.get(&voter) == Some(vote)).then_some(voter)
}
