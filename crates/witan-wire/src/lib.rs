//! `wire` owns witan's bytes on the network: the protobuf messages (hand-written `prost`
//! derives, declared for other implementations in `proto/witan_wire.proto`; see *Messages*
//! below), the versioned [`Envelope`], the size
//! [`limits`], decoding that never panics ([`decode_envelope`] and friends, returning
//! [`WireError`]), and the hashes that votes and commits are built on.
//!
//! # Layout
//!
//! Every packet on a transport topic is an encoded [`Envelope`] of version [`WIRE_VERSION`]
//! with `packet_id = SHA256(body)[..16]` ([`Envelope::new`] computes it; [`decode_envelope`]
//! checks it). The body is, by [`PacketKind`]: an encoded [`JoinRequest`], an encoded
//! [`WelcomePacket`], an encoded [`CatchUp`], or an MLS message whose application plaintext
//! is an encoded [`GroupPayload`]. Proposals carry their action as an encoded [`ProposalPayload`] in
//! `Proposal::payload`; [`decode_group_payload`] decodes and checks it too.
//!
//! # Messages
//!
//! `Proposal` and `Vote` keep the field tags of the hashgraph-like consensus spec (10–19,
//! 20–28). Other messages number from 1. Tags never change; a new field takes a new tag, and
//! an incompatible change bumps [`WIRE_VERSION`].
//!
//! # Decoding
//!
//! Each `decode_*` refuses input over its byte limit, pre-scans the framing so repeated
//! elements cannot amplify memory, decodes with prost, then validates every variable-length
//! field recursively (see `codec`). The `validate_*` functions run the same checks on
//! messages built locally.
//!
//! # Canonical encodings
//!
//! Two hashes are computed over a canonical byte string rather than over protobuf bytes, so
//! that they do not depend on how an encoder orders or omits fields. The byte string is the
//! concatenation of, in order:
//!
//! * a domain tag, encoded as a byte string;
//! * each field: a `u32` or `u64` as big-endian bytes of its width (4 or 8), a `bool` as one
//!   byte `0x00`/`0x01`, and a byte string (or UTF-8 string) as its length as an 8-byte
//!   big-endian `u64` followed by its bytes.
//!
//! [`vote_hash`]`(conversation, proposal_digest, v)` = SHA-256 of: domain
//! `"witan/vote-hash/v2"`, `conversation_id: bytes`, `proposal_digest: bytes`, `vote_id: u32`,
//! `vote_owner: bytes`, `proposal_id: u64`, `timestamp: u64`, `vote: bool`,
//! `parent_hash: bytes`, `received_hash: bytes`. This is the value stored in
//! `Vote::vote_hash` and signed (Ed25519) into `Vote::signature`: a vote counts for one whole
//! proposal of one conversation.
//!
//! [`proposal_digest`]`(conversation, p)` = SHA-256 of: domain
//! `"witan/proposal-digest/v2"`, `conversation_id: bytes`, `name: bytes`, `payload: bytes`,
//! `proposal_id: u64`, `proposal_owner: bytes`, `expected_voters_count: u32`,
//! `timestamp: u64`, `expiration_timestamp: u64`, `liveness_criteria_yes: bool`. `votes` and
//! `round` are left out because they grow while the proposal gossips; commits order their
//! proposals by this digest.
//!
//! [`candidate_digest`]`(conversation, c)` names a candidate's value (what a certificate
//! certifies): domain `"witan/candidate/v1"`, `conversation_id`, `epoch: u64`,
//! `commit: bytes`, `welcome: bytes`, the number of resolutions as `u64` and for each its
//! proposal digest, `approved`, `at_expiry`, `dropped` (bools), its votes (count, then each
//! `vote_digest`) and proofs (count, then both votes' `vote_digest`). Round, proposer and
//! polka are left out.
//!
//! [`catch_up_hash`]`(conversation, epoch, gone, oldest)` is what a [`CatchUp`] signs:
//! domain `"witan/catch-up/v1"`, `conversation_id`, `epoch: u64`, `gone: bool`,
//! `oldest: u64`.
//!
//! [`round_vote_hash`]`(kind, conversation, epoch, round, digest)` is what a prevote
//! (`kind` 1) or precommit (2) signs: domain `"witan/round-vote/v1"`, `kind: u32`,
//! `conversation_id`, `epoch: u64`, `round: u32`, `digest: bytes` (empty for nil).
//!
//! [`vote_digest`]`(v)` = SHA-256 of [`encode`]`(v)`, the protobuf encoding of the whole
//! vote including its signature; `parent_hash` and `received_hash` hold such digests. prost
//! encodes a given decoded vote identically everywhere (fields in tag order, default values
//! omitted, unknown fields dropped), so members that decoded the same vote agree on it.

mod ballot_codec;
mod codec;
mod digest;
mod envelope;
mod error;
mod fields;
pub mod limits;
mod messages;
mod round;
mod round_codec;
mod scan;
mod sealed;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod proto_tests;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
#[cfg(test)]
pub(crate) mod testutil;

/// The shared byte buffer an [`Envelope`]'s body is (prost's, re-exported so that callers
/// hand the decoder the same type).
pub use prost::bytes::Bytes;

pub use ballot_codec::{
    decode_emergency_evidence, decode_proposal_payload, validate_emergency_evidence,
    validate_proof, validate_proposal, validate_proposal_payload, validate_vote,
};
pub use codec::{
    decode_catch_up, decode_conversation_sync, decode_envelope, decode_envelope_keyed,
    decode_envelope_keyed_shared, decode_group_payload, decode_join_request, decode_welcome_packet,
    decode_welcome_packet_shared, validate_catch_up, validate_chat, validate_conversation_sync,
    validate_envelope, validate_group_payload, validate_join_request, validate_welcome_packet,
};
pub use digest::{
    CANDIDATE_DIGEST_DOMAIN, CATCH_UP_DOMAIN, PROPOSAL_DIGEST_DOMAIN, ROUND_VOTE_DOMAIN,
    RoundVoteKind, VOTE_HASH_DOMAIN, candidate_digest, catch_up_hash, proposal_digest,
    round_vote_hash, vote_digest, vote_hash,
};
pub use envelope::{Envelope, PacketKind, SeenKey, body_digest, packet_id, seen_key};
pub use error::WireError;
pub use messages::{
    AddMember, Candidate, CatchUp, CertifiedCommit, Chat, ConversationSync, EmergencyEvidence,
    EmergencyRemoval, EquivocationProof, GroupPayload, JoinRequest, NewRound, PeerScore, Polka,
    Proposal, ProposalPayload, RemoveMember, Resolution, RoundSignature, RoundVote, SelfLeave,
    SyncSettings, Vote, VoteBundle, WelcomePacket, group_payload, proposal_payload,
};
pub use round_codec::{
    validate_candidate, validate_certified, validate_new_round, validate_polka,
    validate_resolution, validate_round_vote,
};
pub use sealed::{
    MAX_SEALED_BYTES, SEALED_TAG_BYTES, Sealed, SealedPayload, SignedVote, decode_sealed,
    decode_sealed_payload, sealed_payload, validate_sealed, validate_sealed_payload,
};

/// Version of the envelope format; envelopes of any other version are refused. Version 2
/// (certified commits) changed what votes sign and the governance messages; version 1
/// packets are refused.
pub const WIRE_VERSION: u32 = 2;

/// The protobuf encoding of `m`.
pub fn encode<M: prost::Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}
