//! Proposals: what one asks the group to do ([`Action`]), its wire payload, its id, building
//! one with its owner's signed YES vote, and the rules a proposal must meet to be registered
//! (the group's voting window and silent-voter rule, a sane voter count, a timestamp from the
//! present).

use prost::Message;
use sha2::{Digest as _, Sha256};

use super::votes::sign_vote;
use super::{BallotError, Digest};
use crate::mls::{CheckedSignatures, Identity, MemberId};
use crate::protocol::settings::Settings;
use witan_wire as wire;

/// What a proposal asks the group to do.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    Emergency {
        member: MemberId,
        reason: String,
        /// Empty, or an encoded `wire::EmergencyEvidence` (see `evidence_against`).
        evidence: Vec<u8>,
    },
}

/// The kinds of proposal, as the host sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProposalKind {
    AddMember,
    RemoveMember,
    SelfLeave,
    EmergencyRemoval,
}

impl ProposalKind {
    /// The proposal's `name` on the wire.
    pub fn wire_name(self) -> &'static str {
        match self {
            ProposalKind::AddMember => "add_member",
            ProposalKind::RemoveMember => "remove_member",
            ProposalKind::SelfLeave => "self_leave",
            ProposalKind::EmergencyRemoval => "emergency_removal",
        }
    }
}

/// Priority classes of the spec: emergency > commit proposal (steward elections are derived
/// from certified state, not voted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Commit = 1,
    Emergency = 3,
}

impl Action {
    pub fn kind(&self) -> ProposalKind {
        match self {
            Action::Add { .. } => ProposalKind::AddMember,
            Action::Remove { .. } => ProposalKind::RemoveMember,
            Action::Leave { .. } => ProposalKind::SelfLeave,
            Action::Emergency { .. } => ProposalKind::EmergencyRemoval,
        }
    }

    /// The member the action is about.
    pub fn target(&self) -> MemberId {
        match self {
            Action::Add { member, .. }
            | Action::Remove { member }
            | Action::Leave { member }
            | Action::Emergency { member, .. } => *member,
        }
    }

    /// The member this action takes out of the group, if any.
    pub fn removes(&self) -> Option<MemberId> {
        match self {
            Action::Add { .. } => None,
            other => Some(other.target()),
        }
    }

    /// Whether what it asks already holds for this member set (an add of a member, a removal
    /// of a non-member): another proposal did it, or an earlier commit.
    pub fn is_moot(&self, members: &std::collections::BTreeSet<MemberId>) -> bool {
        match self {
            Action::Add { member, .. } => members.contains(member),
            other => !members.contains(&other.target()),
        }
    }

    /// The YES votes it needs at least, whatever silence counts for: a removal of another
    /// member needs its proposer's and one more (a safe default: no member is removed on one
    /// member's word, nor by silence alone); anything else its proposer's.
    pub fn backing(&self, owner: &MemberId) -> u64 {
        match self {
            Action::Remove { member } | Action::Emergency { member, .. } if member != owner => 2,
            _ => 1,
        }
    }

    pub fn class(&self) -> Class {
        match self {
            Action::Emergency { .. } => Class::Emergency,
            _ => Class::Commit,
        }
    }
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
        Action::Emergency {
            member,
            reason,
            evidence,
        } => W::Emergency(wire::EmergencyRemoval {
            member_id: member.as_bytes().to_vec(),
            reason: reason.clone(),
            evidence: evidence.clone(),
        }),
    };
    wire::ProposalPayload::new(epoch, wire_action).encode_to_vec()
}

fn member(bytes: &[u8]) -> Result<MemberId, BallotError> {
    MemberId::from_slice(bytes).map_err(|_| BallotError::Malformed("bad member id".into()))
}

/// Decodes a proposal's payload into its action and the epoch it was made in.
pub fn parse_payload(p: &wire::Proposal) -> Result<(Action, u64), BallotError> {
    use wire::proposal_payload::Action as W;
    let payload = wire::decode_proposal_payload(&p.payload)
        .map_err(|e| BallotError::Malformed(e.to_string()))?;
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
        Some(W::Emergency(e)) => Action::Emergency {
            member: member(&e.member_id)?,
            reason: e.reason,
            evidence: e.evidence,
        },
        None => return Err(BallotError::Malformed("no action".into())),
    };
    if p.name != action.kind().wire_name() {
        return Err(BallotError::Malformed(
            "name does not match the action".into(),
        ));
    }
    Ok((action, payload.epoch))
}

/// A proposal id binds the conversation, the owner, the creation time and the payload. Ids
/// stay within i64 so every host language represents them; inside the engine a proposal is
/// named by its full digest, and two proposals with one id are never both registered.
pub fn derive_proposal_id(
    conversation: &str,
    owner: &[u8],
    timestamp_ms: u64,
    payload: &[u8],
) -> u64 {
    let mut h = Sha256::new();
    h.update((conversation.len() as u64).to_be_bytes());
    h.update(conversation.as_bytes());
    h.update(owner);
    h.update(timestamp_ms.to_be_bytes());
    h.update(payload);
    let digest = h.finalize();
    let mut id_bytes = [0u8; 8];
    id_bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(id_bytes) >> 1
}

/// What a new proposal is made in: the conversation, its epoch and size, the time and the
/// group's settings.
pub struct ProposalContext<'a> {
    pub conversation: &'a str,
    pub epoch: u64,
    pub members: usize,
    pub now_ms: u64,
    pub settings: &'a Settings,
}

/// Builds a proposal carrying its owner's signed YES vote, under the group's settings.
pub fn new_proposal(
    identity: &Identity,
    action: &Action,
    cx: &ProposalContext<'_>,
) -> wire::Proposal {
    let payload = encode_action(action, cx.epoch);
    let owner = identity.public_key().to_vec();
    let proposal_id = derive_proposal_id(cx.conversation, &owner, cx.now_ms, &payload);
    let mut p = wire::Proposal {
        name: action.kind().wire_name().to_string(),
        payload,
        proposal_id,
        proposal_owner: owner.clone(),
        votes: Vec::new(),
        expected_voters_count: u32::try_from(cx.members.max(1)).unwrap_or(u32::MAX),
        round: 1,
        timestamp: cx.now_ms,
        expiration_timestamp: cx.now_ms.saturating_add(cx.settings.vote_timeout_ms),
        liveness_criteria_yes: cx.settings.liveness_criteria_yes,
    };
    let digest = wire::proposal_digest(cx.conversation, &p);
    let first = wire::Vote {
        vote_id: 1,
        vote_owner: owner,
        proposal_id,
        timestamp: cx.now_ms,
        vote: true,
        ..wire::Vote::default()
    };
    p.votes
        .push(sign_vote(identity, cx.conversation, &digest, first));
    p
}

/// A proposal checked for structure: its action, owner, digest and owner's first vote.
pub struct Parsed {
    pub action: Action,
    pub epoch: u64,
    pub owner: MemberId,
    pub owner_key: [u8; 32],
    pub digest: Digest,
    /// The proposal with its owner's vote only.
    pub header: wire::Proposal,
}

/// Checks a proposal's own integrity (not yet against the group): the action parses, the id
/// binds the payload, the first vote is the owner's signed YES.
pub fn parse(conversation: &str, p: &wire::Proposal) -> Result<Parsed, BallotError> {
    parse_checked(conversation, p, &CheckedSignatures::default())
}

/// [`parse`], with the owner's signature answered from `checked` when it was proved or
/// checked before (a conversation's own memory of vote signatures).
pub fn parse_checked(
    conversation: &str,
    p: &wire::Proposal,
    checked: &CheckedSignatures,
) -> Result<Parsed, BallotError> {
    let parsed = parse_unsigned(conversation, p)?;
    let first = parsed
        .header
        .votes
        .first()
        .ok_or_else(|| BallotError::Malformed("no owner vote".into()))?;
    super::votes::verify_with(conversation, &parsed.digest, &parsed.header, first, checked)?;
    Ok(parsed)
}

/// [`parse`] but for the owner's signature, which is not checked: for a proposal a quorum
/// certified already, whose signature each signer checked (a joiner closing the proposals
/// of the commit that added it).
pub fn parse_unsigned(conversation: &str, p: &wire::Proposal) -> Result<Parsed, BallotError> {
    let (action, epoch) = parse_payload(p)?;
    if p.proposal_id != derive_proposal_id(conversation, &p.proposal_owner, p.timestamp, &p.payload)
    {
        return Err(BallotError::Malformed(
            "proposal id does not bind its payload".into(),
        ));
    }
    let owner_key: [u8; 32] = p
        .proposal_owner
        .as_slice()
        .try_into()
        .map_err(|_| BallotError::Malformed("owner key is not 32 bytes".into()))?;
    let mut header = p.clone();
    header.votes.truncate(1);
    header.round = 1;
    let digest = wire::proposal_digest(conversation, &header);
    let first = header
        .votes
        .first()
        .ok_or_else(|| BallotError::Malformed("no owner vote".into()))?;
    if first.vote_owner != p.proposal_owner || !first.vote {
        return Err(BallotError::Malformed(
            "first vote is not the owner's YES".into(),
        ));
    }
    Ok(Parsed {
        action,
        epoch,
        owner: MemberId::from_public_key(&owner_key),
        owner_key,
        digest,
        header,
    })
}

/// The group's rules for a proposal, whoever carries it: its voting window is the group's
/// `vote_timeout_ms`, its silent-voter rule the group's, its voter count sane.
pub fn check_rules(p: &wire::Proposal, settings: &Settings) -> Result<(), BallotError> {
    if p.expiration_timestamp.checked_sub(p.timestamp) != Some(settings.vote_timeout_ms) {
        return Err(BallotError::Rules(
            "the voting window is not the group's".into(),
        ));
    }
    if p.liveness_criteria_yes != settings.liveness_criteria_yes {
        return Err(BallotError::Rules(
            "the silent-voter rule is not the group's".into(),
        ));
    }
    if p.expected_voters_count == 0 || p.expected_voters_count as usize > wire::limits::MAX_MEMBERS
    {
        return Err(BallotError::Rules("bad voter count".into()));
    }
    Ok(())
}
