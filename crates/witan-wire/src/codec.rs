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
//! itself against the same rules before sending them. The checks of proposals and votes are
//! in `ballot_codec`, those of the commit round's messages in `round_codec`, the field rules
//! and the bounded decode both use in `fields`. They check sizes and shapes only:
//! signatures, hash chains and membership are the protocol layer's business.

use prost::bytes::{Buf, Bytes};

use super::WIRE_VERSION;
use super::ballot_codec::{validate_proof, validate_proposal, validate_vote};
use super::envelope::{Envelope, PacketKind, SeenKey, body_digest, seen_key};
use super::error::WireError;
use super::fields::{bad, check_max, decode_bounded, exact, member_ids, non_empty};
use super::limits::*;
use super::messages::{
    CatchUp, Chat, ConversationSync, GroupPayload, JoinRequest, WelcomePacket,
    group_payload::Content,
};
use super::round_codec::{
    validate_candidate, validate_certified, validate_new_round, validate_polka,
    validate_round_vote, validate_synced_certified,
};
use super::scan;

/// Decodes and validates an [`Envelope`]: version, conversation id, sender, kind, body size
/// and `packet_id == SHA256(body)[..16]`.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, WireError> {
    decode_envelope_keyed(bytes).map(|(envelope, _)| envelope)
}

/// [`decode_envelope`], also returning the packet's [`SeenKey`]: the body is hashed once, for
/// both its packet id and the key.
pub fn decode_envelope_keyed(bytes: &[u8]) -> Result<(Envelope, SeenKey), WireError> {
    let envelope: Envelope = decode_bounded("envelope", bytes, MAX_ENVELOPE_BYTES, None)?;
    keyed(envelope)
}

/// [`decode_envelope_keyed`] from a shared buffer: the envelope's body is a view of `bytes`
/// rather than a copy (a packet's body is most of it, a large commit's a megabyte or more).
pub fn decode_envelope_keyed_shared(bytes: Bytes) -> Result<(Envelope, SeenKey), WireError> {
    let envelope: Envelope = decode_bounded("envelope", bytes, MAX_ENVELOPE_BYTES, None)?;
    keyed(envelope)
}

/// Validates a decoded envelope and computes its seen key.
fn keyed(envelope: Envelope) -> Result<(Envelope, SeenKey), WireError> {
    let digest = validate_envelope_digest(&envelope)?;
    let key = seen_key(&envelope, &digest);
    Ok((envelope, key))
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

/// Decodes and validates a [`CatchUp`].
pub fn decode_catch_up(bytes: &[u8]) -> Result<CatchUp, WireError> {
    let c: CatchUp = decode_bounded("catch_up", bytes, MAX_CATCH_UP_BYTES, None)?;
    validate_catch_up(&c)?;
    Ok(c)
}

/// Checks a [`CatchUp`]: a 32-byte key and a 64-byte signature.
pub fn validate_catch_up(c: &CatchUp) -> Result<(), WireError> {
    exact("catch_up.key", &c.key, PUBLIC_KEY_BYTES)?;
    exact("catch_up.signature", &c.signature, SIGNATURE_BYTES)
}

/// Decodes and validates a [`WelcomePacket`].
pub fn decode_welcome_packet(bytes: &[u8]) -> Result<WelcomePacket, WireError> {
    welcome_packet_from(bytes)
}

/// [`decode_welcome_packet`] from a shared buffer (an envelope's body): the welcome, the sync
/// and the commit are views of `bytes`, not copies — a large group's welcome packet is
/// megabytes.
pub fn decode_welcome_packet_shared(bytes: Bytes) -> Result<WelcomePacket, WireError> {
    welcome_packet_from(bytes)
}

fn welcome_packet_from<B: Buf + AsRef<[u8]>>(bytes: B) -> Result<WelcomePacket, WireError> {
    let packet: WelcomePacket = decode_bounded(
        "welcome_packet",
        bytes,
        MAX_WELCOME_PACKET_BYTES,
        Some(&scan::WELCOME_PACKET),
    )?;
    validate_welcome_packet(&packet)?;
    Ok(packet)
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

/// Checks an [`Envelope`]; see [`decode_envelope`].
pub fn validate_envelope(e: &Envelope) -> Result<(), WireError> {
    validate_envelope_digest(e).map(|_| ())
}

/// [`validate_envelope`], returning the body's SHA-256 it computed for the packet id.
fn validate_envelope_digest(e: &Envelope) -> Result<[u8; 32], WireError> {
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
        Ok(
            PacketKind::JoinRequest
            | PacketKind::Welcome
            | PacketKind::Group
            | PacketKind::CatchUp
            | PacketKind::Sealed,
        ) => {}
        Ok(PacketKind::Unspecified) | Err(_) => {
            return Err(bad(
                "envelope.kind",
                format!("unknown packet kind {}", e.kind),
            ));
        }
    }
    check_max("envelope.body", e.body.len(), MAX_BODY_BYTES)?;
    exact("envelope.packet_id", &e.packet_id, PACKET_ID_BYTES)?;
    let digest = body_digest(&e.body);
    if e.packet_id[..] != digest[..PACKET_ID_BYTES] {
        return Err(bad("envelope.packet_id", "does not match SHA256(body)"));
    }
    if !e.recipient.is_empty() {
        exact("envelope.recipient", &e.recipient, RECIPIENT_TAG_BYTES)?;
    }
    Ok(digest)
}

/// Checks a [`GroupPayload`] and everything it contains.
pub fn validate_group_payload(p: &GroupPayload) -> Result<(), WireError> {
    match &p.content {
        None => Err(bad("group_payload.content", "missing or unknown content")),
        Some(Content::Chat(chat)) => validate_chat(chat),
        Some(Content::Proposal(proposal)) => validate_proposal(proposal),
        Some(Content::Vote(vote)) => validate_vote(vote),
        Some(Content::Candidate(candidate)) => validate_candidate(candidate),
        Some(Content::Sync(sync)) => validate_conversation_sync(sync),
        Some(Content::Votes(bundle)) => {
            check_max(
                "vote_bundle.votes",
                bundle.votes.len(),
                MAX_VOTES_PER_BUNDLE,
            )?;
            bundle.votes.iter().try_for_each(validate_vote)
        }
        Some(Content::Prevote(v) | Content::Precommit(v)) => validate_round_vote(v),
        Some(Content::Polka(p)) => validate_polka(p),
        Some(Content::Certified(c)) => validate_certified(c),
        Some(Content::NewRound(n)) => validate_new_round(n),
        Some(Content::Proof(p)) => validate_proof(p),
    }
}

/// Checks a [`Chat`]: a 16-byte message id and a body of at most `MAX_CHAT_BODY_BYTES`.
pub fn validate_chat(c: &Chat) -> Result<(), WireError> {
    exact("chat.message_id", &c.message_id, MESSAGE_ID_BYTES)?;
    check_max("chat.body", c.body.len(), MAX_CHAT_BODY_BYTES)
}

/// Checks a [`ConversationSync`]: settings and certified commit present (its candidate's commit
/// may be empty: it travels beside the sync, `WelcomePacket::commit`), steward list and score
/// table bounded, every member id 20 bytes.
pub fn validate_conversation_sync(s: &ConversationSync) -> Result<(), WireError> {
    if s.settings.is_none() {
        return Err(bad("conversation_sync.settings", "missing"));
    }
    match &s.certified {
        None => return Err(bad("conversation_sync.certified", "missing")),
        Some(c) => validate_synced_certified(c)?,
    }
    member_ids("conversation_sync.stewards", &s.stewards, MAX_STEWARDS)?;
    check_max("conversation_sync.scores", s.scores.len(), MAX_PEER_SCORES)?;
    check_max(
        "conversation_sync.open_proposals",
        s.open_proposals.len(),
        MAX_SYNC_OPEN_PROPOSALS,
    )?;
    s.open_proposals
        .iter()
        .try_for_each(|d| exact("conversation_sync.open_proposals", d, HASH_BYTES))?;
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

/// Checks a [`WelcomePacket`]: a non-empty welcome, a bounded sync and 20-byte joiner ids (the
/// commit beside them is bounded by the packet's own limit, which is the commit's).
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

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "content_tests.rs"]
mod content_tests;
