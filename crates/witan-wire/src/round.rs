//! The messages of the commit round: a leader's [`Candidate`] with the [`Resolution`]s it
//! commits, the members' signed [`RoundVote`]s (prevotes and precommits), the quorums the
//! leader aggregates from them ([`Polka`] of prevotes, [`CertifiedCommit`] with its
//! certificate of precommits), a member's [`NewRound`] and an [`EquivocationProof`].
//!
//! All of them travel inside MLS application messages of the epoch they are about. What a
//! round vote signs, and the digest that names a candidate, are defined in `digest`
//! ([`crate::round_vote_hash`], [`crate::candidate_digest`]). Field tags never change.

use super::messages::{Proposal, Vote};

/// A leader's proposal for the commit of an epoch.
///
/// Its value (what a certificate certifies) is everything but `round`, `proposer` and `pol`,
/// so the same value can be proposed again in a later round by another leader.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Candidate {
    /// The epoch the commit is made in.
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    /// The round it is proposed in.
    #[prost(uint32, tag = "2")]
    pub round: u32,
    /// 20-byte member id of the leader of `round` that proposes it.
    #[prost(bytes = "vec", tag = "3")]
    pub proposer: Vec<u8>,
    /// The MLS commit (a serialized `PublicMessage`); its MLS sender is the value's author.
    #[prost(bytes = "vec", tag = "4")]
    pub commit: Vec<u8>,
    /// The MLS welcome for the members the commit adds (empty when it adds none; shared with
    /// the welcome packet it came in, so a joiner does not copy it).
    #[prost(bytes = "bytes", tag = "5")]
    pub welcome: prost::bytes::Bytes,
    /// The proposals the commit resolves, in ascending proposal-digest order.
    #[prost(message, repeated, tag = "6")]
    pub resolutions: Vec<Resolution>,
    /// A polka for this value from an earlier round, when it is proposed again because of it.
    #[prost(message, optional, tag = "7")]
    pub pol: Option<Polka>,
}

/// How a candidate resolves one proposal, with the signed votes that show it.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Resolution {
    /// The proposal, with its owner's vote only.
    #[prost(message, optional, tag = "1")]
    pub proposal: Option<Proposal>,
    /// Approved (`true`) or rejected.
    #[prost(bool, tag = "2")]
    pub approved: bool,
    /// Decided at expiry: silent voters counted as the group's settings say.
    #[prost(bool, tag = "3")]
    pub at_expiry: bool,
    /// Approved, but the change can no longer be committed (an add whose key package
    /// expired): resolved without an MLS change.
    #[prost(bool, tag = "4")]
    pub dropped: bool,
    /// Every vote the leader holds on it (the owner's is in `proposal`).
    #[prost(message, repeated, tag = "5")]
    pub votes: Vec<Vote>,
    /// Proofs that voters voted both ways; their votes on this proposal do not count.
    #[prost(message, repeated, tag = "6")]
    pub proofs: Vec<EquivocationProof>,
}

/// Two signed votes of one member on one proposal with opposite values.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct EquivocationProof {
    #[prost(message, optional, tag = "1")]
    pub first: Option<Vote>,
    #[prost(message, optional, tag = "2")]
    pub second: Option<Vote>,
}

/// A member's signed prevote or precommit for a candidate digest (or for none: nil).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct RoundVote {
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    #[prost(uint32, tag = "2")]
    pub round: u32,
    /// The candidate digest (32 bytes), or empty for nil.
    #[prost(bytes = "vec", tag = "3")]
    pub digest: Vec<u8>,
    /// The voter's Ed25519 public key (32 bytes); its member id is derived from it.
    #[prost(bytes = "vec", tag = "4")]
    pub voter_key: Vec<u8>,
    /// Ed25519 signature (64 bytes) of `round_vote_hash` over the fields above.
    #[prost(bytes = "vec", tag = "5")]
    pub signature: Vec<u8>,
}

/// One signature of a quorum: the voter's key and its signature.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct RoundSignature {
    /// The voter's Ed25519 public key (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub voter_key: Vec<u8>,
    /// Its signature (64 bytes) of the round vote for the quorum's epoch, round and digest.
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// A quorum of prevotes for one candidate in one round.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Polka {
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    #[prost(uint32, tag = "2")]
    pub round: u32,
    /// The candidate digest (32 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub digest: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub signatures: Vec<RoundSignature>,
}

/// A candidate with a quorum of precommits for it: the commit of its epoch.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct CertifiedCommit {
    #[prost(message, optional, tag = "1")]
    pub candidate: Option<Candidate>,
    /// The round the precommits were made in.
    #[prost(uint32, tag = "2")]
    pub round: u32,
    #[prost(message, repeated, tag = "3")]
    pub signatures: Vec<RoundSignature>,
}

/// A member moved to `round`; sent to that round's leader, with the member's lock.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct NewRound {
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    #[prost(uint32, tag = "2")]
    pub round: u32,
    /// The polka the member is locked on, if any.
    #[prost(message, optional, tag = "3")]
    pub lock: Option<Polka>,
    /// The candidate of that polka.
    #[prost(message, optional, tag = "4")]
    pub locked: Option<Candidate>,
}
