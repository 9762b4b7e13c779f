//! Decoding with limits: the `decode_*` entry points and the `validate_*` checks they run.
//!
//! Every `decode_*` function works in three steps, and none of them can panic:
//! 1. refuse input longer than the message's byte limit ([`WireError::TooLarge`]);
//! 2. pre-scan the protobuf framing (see [`super::scan`]) so repeated elements cannot amplify
//!    memory, then decode with prost ([`WireError::Malformed`] on bad bytes or UTF-8);
//! 3. validate every variable-length field, descending into proposals, votes, candidates and
//!    syncs ([`WireError::BadField`], [`WireError::TooLarge`]).
//!
//! The `validate_*` functions are public so that the engine can check messages it builds
//! itself against the same rules before sending them. They check sizes and shapes only:
//! signatures, hash chains and membership are the protocol layer's business.

use prost::Message;

use super::WIRE_VERSION;
use super::error::WireError;
use super::limits::*;
use super::messages::{
    Chat, CommitCandidate, ConversationSync, Envelope, GroupPayload, JoinRequest, PacketKind,
    Proposal, ProposalPayload, Vote, WelcomePacket, group_payload::Content, packet_id,
    proposal_payload::Action,
};
use super::scan::{self, Shape};

/// Decodes and validates an [`Envelope`]: version, conversation id, sender, kind, body size
/// and `packet_id == SHA256(body)[..16]`.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, WireError> {
    let envelope: Envelope = decode_bounded("envelope", bytes, MAX_ENVELOPE_BYTES, None)?;
    validate_envelope(&envelope)?;
    Ok(envelope)
}

/// Decodes and validates a [`GroupPayload`] (an MLS application plaintext).
pub fn decode_group_payload(bytes: &[u8]) -> Result<GroupPayload, WireError> {
    let payload: GroupPayload = decode_bounded(
        "group_payload",
        bytes,
        MAX_GROUP_PAYLOAD_BYTES,
        Some(&scan::GROUP_PAYLOAD),
    )?;
    validate_group_payload(&payload)?;
    Ok(payload)
}

/// Decodes and validates a [`JoinRequest`].
pub fn decode_join_request(bytes: &[u8]) -> Result<JoinRequest, WireError> {
    let request: JoinRequest = decode_bounded("join_request", bytes, MAX_JOIN_REQUEST_BYTES, None)?;
    validate_join_request(&request)?;
    Ok(request)
}

/// Decodes and validates a [`WelcomePacket`].
pub fn decode_welcome_packet(bytes: &[u8]) -> Result<WelcomePacket, WireError> {
    let packet: WelcomePacket = decode_bounded(
        "welcome_packet",
        bytes,
        MAX_WELCOME_PACKET_BYTES,
        Some(&scan::WELCOME_PACKET),
    )?;
    validate_welcome_packet(&packet)?;
    Ok(packet)
}

/// Decodes and validates a [`ProposalPayload`] (the bytes of `Proposal::payload`).
pub fn decode_proposal_payload(bytes: &[u8]) -> Result<ProposalPayload, WireError> {
    let payload: ProposalPayload = decode_bounded(
        "proposal_payload",
        bytes,
        MAX_PROPOSAL_PAYLOAD_BYTES,
        Some(&scan::PROPOSAL_PAYLOAD),
    )?;
    validate_proposal_payload(&payload)?;
    Ok(payload)
}

/// Decodes and validates a [`ConversationSync`] sent on its own (for example the bytes of
/// `WelcomePacket::sync`, if the sender put an encoded sync there).
pub fn decode_conversation_sync(bytes: &[u8]) -> Result<ConversationSync, WireError> {
    let sync: ConversationSync = decode_bounded(
        "conversation_sync",
        bytes,
        MAX_SYNC_BYTES,
        Some(&scan::CONVERSATION_SYNC),
    )?;
    validate_conversation_sync(&sync)?;
    Ok(sync)
}

fn decode_bounded<M: Message + Default>(
    what: &'static str,
    bytes: &[u8],
    max: usize,
    shape: Option<&Shape>,
) -> Result<M, WireError> {
    check_max(what, bytes.len(), max)?;
    if let Some(shape) = shape {
        scan::scan(bytes, shape)?;
    }
    M::decode(bytes).map_err(|e| WireError::Malformed(format!("{what}: {e}")))
}

/// Checks an [`Envelope`]; see [`decode_envelope`].
pub fn validate_envelope(e: &Envelope) -> Result<(), WireError> {
    if e.version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(e.version));
    }
    non_empty("envelope.conversation_id", e.conversation_id.as_bytes())?;
    check_max(
        "envelope.conversation_id",
        e.conversation_id.len(),
        MAX_CONVERSATION_ID_BYTES,
    )?;
    exact("envelope.sender", &e.sender, MEMBER_ID_BYTES)?;
    match PacketKind::try_from(e.kind) {
        Ok(PacketKind::JoinRequest | PacketKind::Welcome | PacketKind::Group) => {}
        Ok(PacketKind::Unspecified) | Err(_) => {
            return Err(bad(
                "envelope.kind",
                format!("unknown packet kind {}", e.kind),
            ));
        }
    }
    check_max("envelope.body", e.body.len(), MAX_BODY_BYTES)?;
    exact("envelope.packet_id", &e.packet_id, PACKET_ID_BYTES)?;
    if e.packet_id[..] != packet_id(&e.body)[..] {
        return Err(bad("envelope.packet_id", "does not match SHA256(body)"));
    }
    Ok(())
}

/// Checks a [`GroupPayload`] and everything it contains.
pub fn validate_group_payload(p: &GroupPayload) -> Result<(), WireError> {
    match &p.content {
        None => Err(bad("group_payload.content", "missing or unknown content")),
        Some(Content::Chat(chat)) => validate_chat(chat),
        Some(Content::Proposal(proposal)) => validate_proposal(proposal),
        Some(Content::Vote(vote)) => validate_vote(vote),
        Some(Content::Candidate(candidate)) => validate_commit_candidate(candidate),
        Some(Content::Sync(sync)) => validate_conversation_sync(sync),
        Some(Content::Votes(bundle)) => {
            check_max(
                "vote_bundle.votes",
                bundle.votes.len(),
                MAX_VOTES_PER_BUNDLE,
            )?;
            bundle.votes.iter().try_for_each(validate_vote)
        }
    }
}

/// Checks a [`Chat`]: a 16-byte message id and a body of at most `MAX_CHAT_BODY_BYTES`.
pub fn validate_chat(c: &Chat) -> Result<(), WireError> {
    exact("chat.message_id", &c.message_id, MESSAGE_ID_BYTES)?;
    check_max("chat.body", c.body.len(), MAX_CHAT_BODY_BYTES)
}

/// Checks a [`Proposal`], its payload (decoded with [`decode_proposal_payload`]) and its votes.
pub fn validate_proposal(p: &Proposal) -> Result<(), WireError> {
    check_max("proposal.name", p.name.len(), MAX_PROPOSAL_NAME_BYTES)?;
    check_max(
        "proposal.payload",
        p.payload.len(),
        MAX_PROPOSAL_PAYLOAD_BYTES,
    )?;
    decode_proposal_payload(&p.payload)?;
    exact(
        "proposal.proposal_owner",
        &p.proposal_owner,
        PUBLIC_KEY_BYTES,
    )?;
    check_max("proposal.votes", p.votes.len(), MAX_VOTES_PER_PROPOSAL)?;
    p.votes.iter().try_for_each(validate_vote)
}

/// Checks a [`Vote`]: 32-byte owner key and `vote_hash`, 64-byte signature, and 32-byte or
/// empty `parent_hash` / `received_hash`.
pub fn validate_vote(v: &Vote) -> Result<(), WireError> {
    exact("vote.vote_owner", &v.vote_owner, PUBLIC_KEY_BYTES)?;
    hash_or_empty("vote.parent_hash", &v.parent_hash)?;
    hash_or_empty("vote.received_hash", &v.received_hash)?;
    exact("vote.vote_hash", &v.vote_hash, HASH_BYTES)?;
    exact("vote.signature", &v.signature, SIGNATURE_BYTES)
}

/// Checks a [`CommitCandidate`] and each of its proposals.
pub fn validate_commit_candidate(c: &CommitCandidate) -> Result<(), WireError> {
    exact("commit_candidate.committer", &c.committer, MEMBER_ID_BYTES)?;
    non_empty("commit_candidate.commit", &c.commit)?;
    check_max("commit_candidate.commit", c.commit.len(), MAX_COMMIT_BYTES)?;
    check_max(
        "commit_candidate.proposals",
        c.proposals.len(),
        MAX_PROPOSALS_PER_CANDIDATE,
    )?;
    c.proposals.iter().try_for_each(validate_proposal)
}

/// Checks a [`ConversationSync`]: settings present, steward list and score table bounded,
/// every member id 20 bytes.
pub fn validate_conversation_sync(s: &ConversationSync) -> Result<(), WireError> {
    if s.settings.is_none() {
        return Err(bad("conversation_sync.settings", "missing"));
    }
    member_ids("conversation_sync.stewards", &s.stewards, MAX_STEWARDS)?;
    check_max("conversation_sync.scores", s.scores.len(), MAX_PEER_SCORES)?;
    s.scores
        .iter()
        .try_for_each(|score| exact("peer_score.member_id", &score.member_id, MEMBER_ID_BYTES))
}

/// Checks a [`JoinRequest`]: a non-empty key package of at most `MAX_KEY_PACKAGE_BYTES`.
pub fn validate_join_request(r: &JoinRequest) -> Result<(), WireError> {
    non_empty("join_request.key_package", &r.key_package)?;
    check_max(
        "join_request.key_package",
        r.key_package.len(),
        MAX_KEY_PACKAGE_BYTES,
    )
}

/// Checks a [`WelcomePacket`]: a non-empty welcome, a bounded sync and 20-byte joiner ids.
pub fn validate_welcome_packet(w: &WelcomePacket) -> Result<(), WireError> {
    non_empty("welcome_packet.welcome", &w.welcome)?;
    check_max("welcome_packet.welcome", w.welcome.len(), MAX_WELCOME_BYTES)?;
    check_max("welcome_packet.sync", w.sync.len(), MAX_SYNC_BYTES)?;
    member_ids(
        "welcome_packet.joiners",
        &w.joiners,
        MAX_JOINERS_PER_WELCOME,
    )
}

/// Checks a [`ProposalPayload`]: an action present, with well-sized fields.
pub fn validate_proposal_payload(p: &ProposalPayload) -> Result<(), WireError> {
    match &p.action {
        None => Err(bad("proposal_payload.action", "missing or unknown action")),
        Some(Action::Add(add)) => {
            non_empty("add_member.key_package", &add.key_package)?;
            check_max(
                "add_member.key_package",
                add.key_package.len(),
                MAX_KEY_PACKAGE_BYTES,
            )?;
            exact("add_member.member_id", &add.member_id, MEMBER_ID_BYTES)
        }
        Some(Action::Remove(remove)) => exact(
            "remove_member.member_id",
            &remove.member_id,
            MEMBER_ID_BYTES,
        ),
        Some(Action::Leave(leave)) => {
            exact("self_leave.member_id", &leave.member_id, MEMBER_ID_BYTES)
        }
        Some(Action::Election(election)) => member_ids(
            "steward_election.stewards",
            &election.stewards,
            MAX_STEWARDS,
        ),
        Some(Action::Emergency(emergency)) => {
            exact(
                "emergency_removal.member_id",
                &emergency.member_id,
                MEMBER_ID_BYTES,
            )?;
            check_max(
                "emergency_removal.reason",
                emergency.reason.len(),
                MAX_REASON_BYTES,
            )?;
            check_max(
                "emergency_removal.evidence",
                emergency.evidence.len(),
                MAX_EVIDENCE_BYTES,
            )
        }
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> WireError {
    WireError::BadField {
        field,
        reason: reason.into(),
    }
}

fn check_max(what: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        return Err(WireError::TooLarge { what, len, max });
    }
    Ok(())
}

fn exact(field: &'static str, bytes: &[u8], len: usize) -> Result<(), WireError> {
    if bytes.len() != len {
        return Err(bad(
            field,
            format!("must be {len} bytes, got {}", bytes.len()),
        ));
    }
    Ok(())
}

fn non_empty(field: &'static str, bytes: &[u8]) -> Result<(), WireError> {
    if bytes.is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    Ok(())
}

fn hash_or_empty(field: &'static str, bytes: &[u8]) -> Result<(), WireError> {
    if !bytes.is_empty() && bytes.len() != HASH_BYTES {
        return Err(bad(
            field,
            format!("must be empty or {HASH_BYTES} bytes, got {}", bytes.len()),
        ));
    }
    Ok(())
}

fn member_ids(field: &'static str, ids: &[Vec<u8>], max: usize) -> Result<(), WireError> {
    check_max(field, ids.len(), max)?;
    ids.iter()
        .try_for_each(|id| exact(field, id, MEMBER_ID_BYTES))
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "content_tests.rs"]
mod content_tests;
