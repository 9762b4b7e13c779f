//! The stored form of a conversation: one prost message per part, each with a version
//! field, so a part can be stored under its own key and a step rewrites only the parts it
//! changed. Field tags never change; a new field takes a new tag, an incompatible change
//! bumps the part's version (a part of an unknown version is refused, never misread).
//!
//! Wire messages (proposals, votes, candidates, polkas) are stored as they travel: the same
//! bytes, checked the same way when they are read back.

use witan_wire as wire;

/// Version of every part written by this code.
pub const PART_VERSION: u32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct CorePart {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(bytes = "vec", tag = "3")]
    pub me: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub state: i32,
    #[prost(message, optional, tag = "5")]
    pub settings: Option<wire::SyncSettings>,
    #[prost(uint64, tag = "6")]
    pub epoch: u64,
    #[prost(message, repeated, tag = "7")]
    pub members: Vec<MemberKey>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub leaders: Vec<Vec<u8>>,
    #[prost(bytes = "vec", tag = "9")]
    pub tag: Vec<u8>,
    #[prost(uint64, optional, tag = "10")]
    pub pending_join_until: Option<u64>,
    #[prost(bool, tag = "11")]
    pub leaving: bool,
    #[prost(uint64, tag = "12")]
    pub sent_count: u64,
    #[prost(bool, tag = "13")]
    pub rejoin_required: bool,
    #[prost(uint64, tag = "14")]
    pub since_epoch: u64,
    #[prost(uint64, optional, tag = "15")]
    pub catch_up_at: Option<u64>,
    #[prost(uint32, tag = "16")]
    pub catch_up_tries: u32,
    #[prost(bytes = "vec", repeated, tag = "17")]
    pub gone: Vec<Vec<u8>>,
    #[prost(uint32, tag = "18")]
    pub join_renewals: u32,
    #[prost(bytes = "vec", optional, tag = "19")]
    pub join_anchor: Option<Vec<u8>>,
    #[prost(bytes = "vec", tag = "20")]
    pub epoch_seed: Vec<u8>,
    #[prost(bool, tag = "21")]
    pub join_expired: bool,
    #[prost(message, repeated, tag = "22")]
    pub seal_keys: Vec<StoredSealKey>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredSealKey {
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberKey {
    #[prost(bytes = "vec", tag = "1")]
    pub member: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BallotsPart {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(message, repeated, tag = "2")]
    pub open: Vec<StoredBallot>,
    #[prost(message, repeated, tag = "3")]
    pub resolved: Vec<StoredResolved>,
    #[prost(uint64, tag = "4")]
    pub floor_ms: u64,
    #[prost(message, repeated, tag = "5")]
    pub orphans: Vec<StoredOrphan>,
    #[prost(message, repeated, tag = "6")]
    pub auto_votes: Vec<StoredDeadline>,
    #[prost(uint64, tag = "7")]
    pub checked_at_ms: u64,
    /// The proposals open when this member joined (`ballot_box::joined`).
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub open_at_join: Vec<Vec<u8>>,
    #[prost(uint64, tag = "9")]
    pub joined_at_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredBallot {
    /// The proposal with its owner's vote only.
    #[prost(message, optional, tag = "1")]
    pub header: Option<wire::Proposal>,
    #[prost(uint64, tag = "2")]
    pub first_seen_ms: u64,
    #[prost(message, repeated, tag = "3")]
    pub votes: Vec<wire::Vote>,
    #[prost(message, repeated, tag = "4")]
    pub proofs: Vec<wire::EquivocationProof>,
    #[prost(bool, tag = "5")]
    pub relayed: bool,
    #[prost(bool, tag = "6")]
    pub held: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredResolved {
    #[prost(bytes = "vec", tag = "1")]
    pub digest: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub id: u64,
    #[prost(uint64, tag = "3")]
    pub created_at_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredOrphan {
    #[prost(bytes = "vec", tag = "1")]
    pub carrier: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub vote: Option<wire::Vote>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredDeadline {
    #[prost(bytes = "vec", tag = "1")]
    pub digest: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub at_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RoundPart {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(uint64, tag = "2")]
    pub epoch: u64,
    #[prost(uint32, tag = "3")]
    pub round: u32,
    #[prost(bool, tag = "4")]
    pub started: bool,
    #[prost(uint64, optional, tag = "5")]
    pub deadline: Option<u64>,
    #[prost(uint64, optional, tag = "6")]
    pub commit_at: Option<u64>,
    #[prost(message, optional, tag = "7")]
    pub lock: Option<StoredLock>,
    #[prost(uint32, optional, tag = "8")]
    pub prevoted: Option<u32>,
    #[prost(uint32, optional, tag = "9")]
    pub precommitted: Option<u32>,
    #[prost(message, optional, tag = "10")]
    pub own: Option<wire::Candidate>,
    #[prost(uint32, optional, tag = "11")]
    pub proposed: Option<u32>,
    #[prost(message, repeated, tag = "12")]
    pub candidates: Vec<wire::Candidate>,
    #[prost(message, repeated, tag = "13")]
    pub early_polkas: Vec<wire::Polka>,
    #[prost(message, repeated, tag = "14")]
    pub prevotes: Vec<StoredCollected>,
    #[prost(message, repeated, tag = "15")]
    pub precommits: Vec<StoredCollected>,
    #[prost(message, repeated, tag = "16")]
    pub new_rounds: Vec<StoredNewRound>,
    #[prost(uint64, optional, tag = "17")]
    pub collect_until: Option<u64>,
    #[prost(message, repeated, tag = "18")]
    pub ahead: Vec<StoredNewRound>,
    #[prost(uint32, repeated, tag = "19")]
    pub polka_sent: Vec<u32>,
    #[prost(bool, tag = "20")]
    pub certified_sent: bool,
    #[prost(message, repeated, tag = "23")]
    pub valid: Vec<StoredValid>,
    #[prost(uint64, optional, tag = "22")]
    pub fallback_at: Option<u64>,
    /// `own` is the candidate held for this round with its round and polka cleared (so it
    /// is stored once: a leader's candidate carries every vote it resolves).
    #[prost(uint32, optional, tag = "24")]
    pub own_of_round: Option<u32>,
    /// The candidates are in a part of their own ([`CandidatesPart`]), not in `candidates`
    /// (a round part stored before they had one holds them inline).
    #[prost(bool, tag = "25")]
    pub candidates_apart: bool,
}

/// The candidates a round keeps, apart from the rest of the round: written when they change,
/// not at every step of the round.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CandidatesPart {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(message, repeated, tag = "2")]
    pub candidates: Vec<wire::Candidate>,
}

/// A value found valid, with the author of its MLS commit.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredValid {
    #[prost(bytes = "vec", tag = "1")]
    pub digest: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub committer: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredLock {
    #[prost(message, optional, tag = "1")]
    pub polka: Option<wire::Polka>,
    /// The locked value, unless it is `candidate_of_round`.
    #[prost(message, optional, tag = "2")]
    pub candidate: Option<wire::Candidate>,
    /// The locked value is the round part's candidate of this round, stored once there.
    #[prost(uint32, optional, tag = "3")]
    pub candidate_of_round: Option<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredCollected {
    #[prost(uint32, tag = "1")]
    pub round: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub digest: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    pub signatures: Vec<wire::RoundSignature>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredNewRound {
    #[prost(uint32, tag = "1")]
    pub round: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub member: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    pub lock: Option<StoredLock>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StewardsPart {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// One entry per slot; empty for a vacant slot.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub slots: Vec<Vec<u8>>,
    #[prost(uint64, tag = "3")]
    pub base_epoch: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScoresPart {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(message, repeated, tag = "2")]
    pub scores: Vec<wire::PeerScore>,
    #[prost(message, repeated, tag = "3")]
    pub suspicion: Vec<wire::PeerScore>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinsPart {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(message, repeated, tag = "2")]
    pub requests: Vec<StoredJoin>,
    /// Hashes (32 bytes) of the key packages certified commits added, oldest first.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub spent: Vec<Vec<u8>>,
    /// When this member entered the group (created or welcomed); 0 in older states.
    #[prost(uint64, tag = "5")]
    pub member_since_ms: u64,
    /// When this member applied the commit that added each member that came in after it
    /// (`seen_at_ms`; the key package is left empty).
    #[prost(message, repeated, tag = "6")]
    pub admitted: Vec<StoredJoin>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredJoin {
    #[prost(bytes = "vec", tag = "1")]
    pub member: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub key_package: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub seen_at_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ArchivePart {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<StoredArchived>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredArchived {
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub packet: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub keys: Vec<Vec<u8>>,
    /// The packet's length when the packet is in its own row (`packet` empty).
    #[prost(uint64, tag = "4")]
    pub packet_len: u64,
}

/// Every part in one value, for a store that keeps a conversation in one row.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredConversation {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(message, repeated, tag = "2")]
    pub parts: Vec<StoredPart>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredPart {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(bytes = "vec", tag = "2")]
    pub bytes: Vec<u8>,
}
