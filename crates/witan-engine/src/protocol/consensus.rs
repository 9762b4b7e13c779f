//! Voting proposals and signed votes (hashgraph-like consensus, spec §1–§4).
//!
//! A proposal is created with its owner's signed YES vote; every other vote links to that first
//! vote through `received_hash = hash(P.votes[0])` (spec §2 step 4.5) and carries
//! `parent_hash` only when its owner voted before. witan allows one vote per member and
//! proposal: a second vote that chains by `parent_hash` is a changed vote — a violation that is
//! refused — and one that does not chain is a forgery.
//!
//! A vote counts only when its owner is an eligible voter (a member when the proposal was
//! registered) — votes signed by keys outside the group are ignored, so nobody can stuff the
//! ballot with throw-away keys. A vote delivered directly must also come from its owner as the
//! MLS-authenticated sender; votes inside a decided proposal (evidence) are trusted through
//! their signatures alone.
//!
//! Tally (spec §3, §4 "Liveness"): for n <= 2 every voter must say YES. For n > 2 a result is
//! final early only when at least ceil(2n/3) distinct members voted and no combination of the
//! missing votes could change it; at expiry silent voters count as `liveness_criteria_yes`
//! says and a tie is rejected (the REJECT tie policy).

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::mls::{Identity, MemberId, verify_signature};
use witan_wire as wire;

/// What a proposal asks the group to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Add {
        member: MemberId,
        key_package: Vec<u8>,
    },
    Remove {
        member: MemberId,
    },
    Leave {
        member: MemberId,
    },
    Election {
        epoch: u64,
        retry_round: u32,
        stewards: Vec<MemberId>,
    },
    Emergency {
        member: MemberId,
        reason: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalKind {
    AddMember,
    RemoveMember,
    SelfLeave,
    StewardElection,
    EmergencyRemoval,
}

/// Priority classes of the spec: emergency > steward election > commit proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Commit = 1,
    Election = 2,
    Emergency = 3,
}

impl Action {
    pub fn kind(&self) -> ProposalKind {
        match self {
            Action::Add { .. } => ProposalKind::AddMember,
            Action::Remove { .. } => ProposalKind::RemoveMember,
            Action::Leave { .. } => ProposalKind::SelfLeave,
            Action::Election { .. } => ProposalKind::StewardElection,
            Action::Emergency { .. } => ProposalKind::EmergencyRemoval,
        }
    }

    pub fn target(&self) -> Option<MemberId> {
        match self {
            Action::Add { member, .. }
            | Action::Remove { member }
            | Action::Leave { member }
            | Action::Emergency { member, .. } => Some(*member),
            Action::Election { .. } => None,
        }
    }

    /// The member this action takes out of the group, if any.
    pub fn removes(&self) -> Option<MemberId> {
        match self {
            Action::Remove { member }
            | Action::Leave { member }
            | Action::Emergency { member, .. } => Some(*member),
            _ => None,
        }
    }

    /// Whether a YES outcome needs an MLS commit.
    pub fn needs_commit(&self) -> bool {
        !matches!(self, Action::Election { .. })
    }
}

impl ProposalKind {
    pub fn class(self) -> Class {
        match self {
            ProposalKind::EmergencyRemoval => Class::Emergency,
            ProposalKind::StewardElection => Class::Election,
            _ => Class::Commit,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ProposalKind::AddMember => "add_member",
            ProposalKind::RemoveMember => "remove_member",
            ProposalKind::SelfLeave => "self_leave",
            ProposalKind::StewardElection => "steward_election",
            ProposalKind::EmergencyRemoval => "emergency_removal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    #[error("vote hash does not match its fields")]
    BadHash,
    #[error("vote signature does not verify")]
    BadSignature,
    #[error("vote is for another proposal")]
    WrongProposal,
    #[error("vote timestamp is outside the proposal's window")]
    OutOfWindow,
    #[error("vote does not link to the proposal's first vote")]
    BadReceivedHash,
    #[error("member changed its vote")]
    ChangedVote,
    #[error("vote owner is not an eligible voter")]
    NotEligible,
    #[error("vote was not delivered by its owner")]
    NotOwner,
    #[error("proposal is malformed: {0}")]
    MalformedProposal(String),
}

fn encode_action(action: &Action, epoch: u64) -> Vec<u8> {
    use wire::proposal_payload::Action as W;
    let wire_action = match action {
        Action::Add {
            member,
            key_package,
        } => W::Add(wire::AddMember {
            key_package: key_package.clone(),
            member_id: member.as_bytes().to_vec(),
        }),
        Action::Remove { member } => W::Remove(wire::RemoveMember {
            member_id: member.as_bytes().to_vec(),
        }),
        Action::Leave { member } => W::Leave(wire::SelfLeave {
            member_id: member.as_bytes().to_vec(),
        }),
        Action::Election {
            epoch,
            retry_round,
            stewards,
        } => W::Election(wire::StewardElection {
            epoch: *epoch,
            retry_round: *retry_round,
            stewards: stewards.iter().map(|m| m.as_bytes().to_vec()).collect(),
        }),
        Action::Emergency { member, reason } => W::Emergency(wire::EmergencyRemoval {
            member_id: member.as_bytes().to_vec(),
            reason: reason.clone(),
            evidence: Vec::new(),
        }),
    };
    wire::ProposalPayload {
        epoch,
        action: Some(wire_action),
    }
    .encode_to_vec()
}

fn member(bytes: &[u8]) -> Result<MemberId, VoteError> {
    MemberId::from_slice(bytes).map_err(|_| VoteError::MalformedProposal("bad member id".into()))
}

/// Decodes a proposal's payload into its action and the epoch it was made in.
pub fn parse_payload(p: &wire::Proposal) -> Result<(Action, u64), VoteError> {
    use wire::proposal_payload::Action as W;
    let payload = wire::decode_proposal_payload(&p.payload)
        .map_err(|e| VoteError::MalformedProposal(e.to_string()))?;
    let action = match payload.action {
        Some(W::Add(a)) => Action::Add {
            member: member(&a.member_id)?,
            key_package: a.key_package,
        },
        Some(W::Remove(r)) => Action::Remove {
            member: member(&r.member_id)?,
        },
        Some(W::Leave(l)) => Action::Leave {
            member: member(&l.member_id)?,
        },
        Some(W::Election(e)) => Action::Election {
            epoch: e.epoch,
            retry_round: e.retry_round,
            stewards: e
                .stewards
                .iter()
                .map(|s| member(s))
                .collect::<Result<_, _>>()?,
        },
        Some(W::Emergency(e)) => Action::Emergency {
            member: member(&e.member_id)?,
            reason: e.reason,
        },
        None => return Err(VoteError::MalformedProposal("no action".into())),
    };
    if p.name != action.kind().name() {
        return Err(VoteError::MalformedProposal(
            "name does not match the action".into(),
        ));
    }
    Ok((action, payload.epoch))
}

/// A proposal id binds the owner, the creation time and the payload, so the owner's signed
/// vote (which covers the id) also vouches for the payload. Ids stay within i64 so every host
/// language represents them without surprises.
pub fn derive_proposal_id(owner: &[u8], timestamp_ms: u64, payload: &[u8]) -> u64 {
    let mut h = Sha256::new();
    h.update(owner);
    h.update(timestamp_ms.to_be_bytes());
    h.update(payload);
    let digest = h.finalize();
    let mut id_bytes = [0u8; 8];
    id_bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(id_bytes) >> 1
}

fn sign_vote(identity: &Identity, mut vote: wire::Vote) -> wire::Vote {
    vote.vote_hash = wire::vote_hash(&vote).to_vec();
    vote.signature = identity.sign(&vote.vote_hash);
    vote
}

/// Builds a new proposal carrying its owner's signed YES vote.
pub fn new_proposal(
    identity: &Identity,
    action: &Action,
    epoch: u64,
    expected_voters: u32,
    now_ms: u64,
    vote_timeout_ms: u64,
    liveness_yes: bool,
) -> wire::Proposal {
    let payload = encode_action(action, epoch);
    let owner = identity.public_key().to_vec();
    let proposal_id = derive_proposal_id(&owner, now_ms, &payload);
    let mut p = wire::Proposal {
        name: action.kind().name().to_string(),
        payload,
        proposal_id,
        proposal_owner: owner.clone(),
        votes: Vec::new(),
        expected_voters_count: expected_voters,
        round: 1,
        timestamp: now_ms,
        expiration_timestamp: now_ms.saturating_add(vote_timeout_ms),
        liveness_criteria_yes: liveness_yes,
    };
    let first = wire::Vote {
        vote_id: 1,
        vote_owner: owner,
        proposal_id,
        timestamp: now_ms,
        vote: true,
        parent_hash: Vec::new(),
        received_hash: Vec::new(),
        vote_hash: Vec::new(),
        signature: Vec::new(),
    };
    p.votes.push(sign_vote(identity, first));
    p
}

/// Builds this member's vote on a proposal whose first vote is `first`.
pub fn new_vote(
    identity: &Identity,
    header: &wire::Proposal,
    approve: bool,
    now_ms: u64,
) -> wire::Vote {
    let received_hash = header
        .votes
        .first()
        .map(|v| wire::vote_digest(v).to_vec())
        .unwrap_or_default();
    let vote = wire::Vote {
        vote_id: 1,
        vote_owner: identity.public_key().to_vec(),
        proposal_id: header.proposal_id,
        timestamp: now_ms,
        vote: approve,
        parent_hash: Vec::new(),
        received_hash,
        vote_hash: Vec::new(),
        signature: Vec::new(),
    };
    sign_vote(identity, vote)
}

/// Checks a vote's own integrity against its proposal header; returns the voter.
pub fn verify_vote(
    header: &wire::Proposal,
    vote: &wire::Vote,
    skew_ms: u64,
) -> Result<MemberId, VoteError> {
    if vote.proposal_id != header.proposal_id {
        return Err(VoteError::WrongProposal);
    }
    if wire::vote_hash(vote).as_slice() != vote.vote_hash.as_slice() {
        return Err(VoteError::BadHash);
    }
    if !verify_signature(&vote.vote_owner, &vote.vote_hash, &vote.signature) {
        return Err(VoteError::BadSignature);
    }
    let earliest = header.timestamp.saturating_sub(skew_ms);
    let latest = header.expiration_timestamp.saturating_add(skew_ms);
    if vote.timestamp < earliest || vote.timestamp > latest {
        return Err(VoteError::OutOfWindow);
    }
    let first = header
        .votes
        .first()
        .ok_or_else(|| VoteError::MalformedProposal("no owner vote".into()))?;
    let is_first = vote.vote_hash == first.vote_hash;
    if is_first {
        if !vote.received_hash.is_empty() || !vote.parent_hash.is_empty() {
            return Err(VoteError::BadReceivedHash);
        }
    } else if vote.received_hash != wire::vote_digest(first).to_vec() {
        return Err(VoteError::BadReceivedHash);
    }
    if !vote.parent_hash.is_empty() {
        return Err(VoteError::ChangedVote);
    }
    Ok(MemberId::from_public_key(&vote.vote_owner))
}

/// The decision rule of the spec, shared by live tallies and evidence checks.
pub fn decide(n: u32, yes: u32, no: u32, expired: bool, liveness_yes: bool) -> Option<bool> {
    let n = n.max(1);
    let voted = yes + no;
    let missing = n.saturating_sub(voted);
    if n <= 2 {
        if no > 0 {
            return Some(false);
        }
        if yes >= n {
            return Some(true);
        }
        return expired.then_some(liveness_yes);
    }
    if expired {
        let (y, nn) = if liveness_yes {
            (yes + missing, no)
        } else {
            (yes, no + missing)
        };
        return Some(y > nn);
    }
    let quorum = (2 * n).div_ceil(3);
    if voted < quorum {
        return None;
    }
    if 2 * yes > n {
        return Some(true);
    }
    if yes + missing <= no {
        return Some(false);
    }
    None
}

/// One vote as stored: its value and its signed wire form (kept as evidence).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredVote {
    pub approve: bool,
    pub bytes: Vec<u8>,
}

/// A proposal known to this member, with the votes it has verified.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ballot {
    pub id: u64,
    pub action: Action,
    pub owner: MemberId,
    pub epoch: u64,
    /// The proposal with only its owner's vote, encoded.
    pub header: Vec<u8>,
    pub digest: [u8; 32],
    pub expected: u32,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub liveness_yes: bool,
    pub voters: BTreeSet<MemberId>,
    pub votes: BTreeMap<MemberId, StoredVote>,
    pub decision: Option<bool>,
    /// Decided by verified evidence from a commit candidate rather than by the local tally.
    pub by_evidence: bool,
    /// This member already re-broadcast the votes it holds (see `conversation::governance`).
    #[serde(default)]
    pub relayed: bool,
}

impl Ballot {
    /// Registers a proposal: checks its structure and its owner's vote.
    pub fn new(
        p: &wire::Proposal,
        voters: BTreeSet<MemberId>,
        skew_ms: u64,
    ) -> Result<Ballot, VoteError> {
        let (action, epoch) = parse_payload(p)?;
        let first = p
            .votes
            .first()
            .ok_or_else(|| VoteError::MalformedProposal("no owner vote".into()))?;
        if first.vote_owner != p.proposal_owner || !first.vote {
            return Err(VoteError::MalformedProposal(
                "first vote is not the owner's YES".into(),
            ));
        }
        if p.proposal_id != derive_proposal_id(&p.proposal_owner, p.timestamp, &p.payload) {
            return Err(VoteError::MalformedProposal(
                "proposal id does not bind its payload".into(),
            ));
        }
        if p.expiration_timestamp <= p.timestamp || p.expected_voters_count == 0 {
            return Err(VoteError::MalformedProposal(
                "bad window or voter count".into(),
            ));
        }
        let mut header = p.clone();
        header.votes.truncate(1);
        header.round = 1;
        let owner = verify_vote(&header, first, skew_ms)?;
        let mut ballot = Ballot {
            id: p.proposal_id,
            action,
            owner,
            epoch,
            header: header.encode_to_vec(),
            digest: wire::proposal_digest(p),
            expected: p.expected_voters_count,
            created_at_ms: p.timestamp,
            expires_at_ms: p.expiration_timestamp,
            liveness_yes: p.liveness_criteria_yes,
            voters,
            votes: BTreeMap::new(),
            decision: None,
            by_evidence: false,
            relayed: false,
        };
        if !ballot.voters.contains(&owner) {
            return Err(VoteError::NotEligible);
        }
        ballot.votes.insert(
            owner,
            StoredVote {
                approve: true,
                bytes: first.encode_to_vec(),
            },
        );
        Ok(ballot)
    }

    pub fn header(&self) -> Result<wire::Proposal, VoteError> {
        wire::Proposal::decode(self.header.as_slice())
            .map_err(|e| VoteError::MalformedProposal(e.to_string()))
    }

    pub fn kind(&self) -> ProposalKind {
        self.action.kind()
    }

    /// Adds a verified vote. `carrier` is the MLS-authenticated sender when the vote came
    /// directly, `None` inside evidence. Returns whether the vote was new.
    pub fn add_vote(
        &mut self,
        vote: &wire::Vote,
        carrier: Option<MemberId>,
        skew_ms: u64,
    ) -> Result<bool, VoteError> {
        let header = self.header()?;
        let voter = verify_vote(&header, vote, skew_ms)?;
        if let Some(sender) = carrier
            && sender != voter
        {
            return Err(VoteError::NotOwner);
        }
        if !self.voters.contains(&voter) {
            return Err(VoteError::NotEligible);
        }
        if let Some(existing) = self.votes.get(&voter) {
            if existing.approve == vote.vote {
                return Ok(false);
            }
            return Err(VoteError::ChangedVote);
        }
        self.votes.insert(
            voter,
            StoredVote {
                approve: vote.vote,
                bytes: vote.encode_to_vec(),
            },
        );
        Ok(true)
    }

    pub fn counts(&self) -> (u32, u32) {
        let yes = self.votes.values().filter(|v| v.approve).count() as u32;
        (yes, self.votes.len() as u32 - yes)
    }

    /// The result if it is final at `now_ms`.
    pub fn tally(&self, now_ms: u64) -> Option<bool> {
        let (yes, no) = self.counts();
        decide(
            self.expected,
            yes,
            no,
            now_ms >= self.expires_at_ms,
            self.liveness_yes,
        )
    }

    /// The proposal with every vote this member holds: the evidence of a decision.
    pub fn evidence(&self) -> Result<wire::Proposal, VoteError> {
        let mut p = self.header()?;
        let first_hash = p
            .votes
            .first()
            .map(|v| v.vote_hash.clone())
            .unwrap_or_default();
        for (voter, stored) in &self.votes {
            if *voter == self.owner {
                continue;
            }
            let vote = wire::Vote::decode(stored.bytes.as_slice())
                .map_err(|e| VoteError::MalformedProposal(e.to_string()))?;
            if vote.vote_hash != first_hash {
                p.votes.push(vote);
            }
        }
        p.round = p.votes.len() as u32;
        Ok(p)
    }

    /// Every vote this member holds, decoded, for re-broadcast.
    pub fn held_votes(&self) -> Vec<wire::Vote> {
        self.votes
            .values()
            .filter_map(|v| wire::Vote::decode(v.bytes.as_slice()).ok())
            .collect()
    }

    /// Halfway through the voting window: when votes that may have been lost are re-sent.
    pub fn relay_at_ms(&self) -> u64 {
        self.created_at_ms + (self.expires_at_ms.saturating_sub(self.created_at_ms)) / 2
    }

    pub fn has_voted(&self, member: &MemberId) -> bool {
        self.votes.contains_key(member)
    }
}

/// Verifies a decided proposal carried as evidence: every vote must verify and come from an
/// eligible voter, and the carried votes must decide YES by the same rule as a live tally.
///
/// `expiry_at` lets expiry decide too (silent voters counted by `liveness_criteria_yes`), as
/// of that time with the skew in the candidate's favour. Only a verifier that was not a
/// member when the proposal was made passes it: it could not have seen the proposal, so it
/// must take the committer's word for the silent voters. Every other verifier decides on
/// carried votes only — a decision at expiry counts silent voters, and a committer can make
/// any voter silent by leaving its NO out; such a verifier holds the proposal itself and
/// decides it at expiry with its own tally.
pub fn verify_evidence(
    p: &wire::Proposal,
    voters: &BTreeSet<MemberId>,
    skew_ms: u64,
    expiry_at: Option<u64>,
) -> Result<Ballot, VoteError> {
    let mut ballot = Ballot::new(p, voters.clone(), skew_ms)?;
    for vote in p.votes.iter().skip(1) {
        ballot.add_vote(vote, None, skew_ms)?;
    }
    let expired = expiry_at.is_some_and(|now| now.saturating_add(skew_ms) >= ballot.expires_at_ms);
    let (yes, no) = ballot.counts();
    match decide(ballot.expected, yes, no, expired, ballot.liveness_yes) {
        Some(true) => {
            ballot.decision = Some(true);
            ballot.by_evidence = true;
            Ok(ballot)
        }
        _ => Err(VoteError::MalformedProposal(
            "evidence does not show a YES decision".into(),
        )),
    }
}

#[cfg(test)]
#[path = "consensus_tests.rs"]
mod tests;
