//! The protobuf messages witan puts on the wire, written by hand as `prost` derives (no build
//! script). `proto/witan_wire.proto` declares them for other implementations; the tests in
//! `proto_tests` check that these types encode exactly what it declares.
//!
//! Field tags are part of the wire format and never change. `Proposal` and `Vote` keep the tags
//! of the hashgraph-like consensus spec (10–19 and 20–28). Every other message numbers its
//! fields from 1. The structs here carry no validation; [`super::codec`] checks sizes and
//! lengths when decoding, and [`super::digest`] defines the hashes that votes and commits rely
//! on.

/// A member behind asks for the certified commits from `epoch` on (`gone` false), or a member
/// answers that it no longer keeps the one of `epoch` (`gone` true; `oldest` is the oldest it
/// keeps). Signed by the sender's identity key, since it travels outside the group's
/// encryption: the sender need not be able to read the epoch the other is in.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct CatchUp {
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    #[prost(bool, tag = "2")]
    pub gone: bool,
    #[prost(uint64, tag = "3")]
    pub oldest: u64,
    /// The sender's Ed25519 public key (32 bytes).
    #[prost(bytes = "vec", tag = "4")]
    pub key: Vec<u8>,
    /// Ed25519 signature (64 bytes) of `catch_up_hash`.
    #[prost(bytes = "vec", tag = "5")]
    pub signature: Vec<u8>,
}

/// A node asking to join: its key package.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct JoinRequest {
    /// Serialized MLS key package (an `MlsMessageOut`).
    #[prost(bytes = "vec", tag = "1")]
    pub key_package: Vec<u8>,
    /// Sender's clock when the request was made.
    #[prost(uint64, tag = "2")]
    pub requested_at_ms: u64,
}

/// The MLS welcome for the joiners of one commit, with the conversation sync that follows it.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct WelcomePacket {
    /// Serialized MLS welcome (a view of the packet when decoded from a shared buffer: with
    /// the sync, most of a large group's welcome packet).
    #[prost(bytes = "bytes", tag = "1")]
    pub welcome: prost::bytes::Bytes,
    /// Conversation sync for the joiners (opaque to `wire`; may be empty).
    #[prost(bytes = "bytes", tag = "2")]
    pub sync: prost::bytes::Bytes,
    /// 20-byte member ids of the members this welcome is for.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub joiners: Vec<Vec<u8>>,
    /// The certified MLS commit that adds them, taken out of the sync's candidate (empty when
    /// the sync holds it). It is a public MLS message, published on the group's topic as well,
    /// so it is not encrypted again inside the sync (a view of the packet when decoded from a
    /// shared buffer).
    #[prost(bytes = "bytes", tag = "4")]
    pub commit: prost::bytes::Bytes,
}

/// Plaintext of every MLS application message of a conversation.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct GroupPayload {
    /// Exactly one content; decoding rejects a payload without one.
    #[prost(
        oneof = "group_payload::Content",
        tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"
    )]
    pub content: Option<group_payload::Content>,
}

impl GroupPayload {
    /// A payload carrying `content`.
    pub fn new(content: group_payload::Content) -> Self {
        GroupPayload {
            content: Some(content),
        }
    }
}

/// The oneof of [`GroupPayload`].
pub mod group_payload {
    /// What a group application message carries.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Oneof)]
    pub enum Content {
        /// A chat message.
        #[prost(message, tag = "1")]
        Chat(super::Chat),
        /// A governance proposal with the votes collected so far.
        #[prost(message, tag = "2")]
        Proposal(super::Proposal),
        /// A single vote.
        #[prost(message, tag = "3")]
        Vote(super::Vote),
        /// A round leader's candidate commit.
        #[prost(message, tag = "4")]
        Candidate(super::Candidate),
        /// Conversation state for joiners.
        #[prost(message, tag = "5")]
        Sync(super::ConversationSync),
        /// Several votes at once.
        #[prost(message, tag = "6")]
        Votes(super::VoteBundle),
        /// A prevote, addressed to the round's leader.
        #[prost(message, tag = "7")]
        Prevote(super::RoundVote),
        /// A precommit, addressed to the round's leader.
        #[prost(message, tag = "8")]
        Precommit(super::RoundVote),
        /// A quorum of prevotes for one candidate, from the round's leader.
        #[prost(message, tag = "9")]
        Polka(super::Polka),
        /// A candidate with its certificate: the commit of the epoch.
        #[prost(message, tag = "10")]
        Certified(super::CertifiedCommit),
        /// A member moved to a round, addressed to its leader (with its lock, if any).
        #[prost(message, tag = "11")]
        NewRound(super::NewRound),
        /// Two conflicting votes of one member on one proposal.
        #[prost(message, tag = "12")]
        Proof(super::EquivocationProof),
    }
}

/// A chat message.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Chat {
    /// 16 random bytes chosen by the sender; history de-duplicates on it.
    #[prost(bytes = "vec", tag = "1")]
    pub message_id: Vec<u8>,
    /// Application bytes (at most `MAX_CHAT_BODY_BYTES`).
    #[prost(bytes = "vec", tag = "2")]
    pub body: Vec<u8>,
    /// Sender's clock when the message was sent.
    #[prost(uint64, tag = "3")]
    pub sent_at_ms: u64,
}

/// A voting proposal (hashgraph-like consensus spec §1, tags 10–19).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Proposal {
    /// Human-readable name.
    #[prost(string, tag = "10")]
    pub name: String,
    /// An encoded [`ProposalPayload`].
    #[prost(bytes = "vec", tag = "11")]
    pub payload: Vec<u8>,
    /// Identifier chosen by the owner.
    #[prost(uint64, tag = "12")]
    pub proposal_id: u64,
    /// 32-byte Ed25519 public key of the creator.
    #[prost(bytes = "vec", tag = "13")]
    pub proposal_owner: Vec<u8>,
    /// Votes collected so far, in the order they were received.
    #[prost(message, repeated, tag = "14")]
    pub votes: Vec<Vote>,
    /// Number of distinct voters expected.
    #[prost(uint32, tag = "15")]
    pub expected_voters_count: u32,
    /// Number of gossip rounds so far.
    #[prost(uint32, tag = "16")]
    pub round: u32,
    /// Creation time.
    #[prost(uint64, tag = "17")]
    pub timestamp: u64,
    /// Time at which the proposal expires.
    #[prost(uint64, tag = "18")]
    pub expiration_timestamp: u64,
    /// Whether silent voters count as YES at expiry.
    #[prost(bool, tag = "19")]
    pub liveness_criteria_yes: bool,
}

/// A signed, hash-chained vote (hashgraph-like consensus spec §1, tags 20–28).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Vote {
    /// Identifier chosen by the voter.
    #[prost(uint32, tag = "20")]
    pub vote_id: u32,
    /// 32-byte Ed25519 public key of the voter.
    #[prost(bytes = "vec", tag = "21")]
    pub vote_owner: Vec<u8>,
    /// The proposal voted on.
    #[prost(uint64, tag = "22")]
    pub proposal_id: u64,
    /// Time the vote was cast.
    #[prost(uint64, tag = "23")]
    pub timestamp: u64,
    /// YES (`true`) or NO.
    #[prost(bool, tag = "24")]
    pub vote: bool,
    /// `vote_digest` of the owner's previous vote, or empty.
    #[prost(bytes = "vec", tag = "25")]
    pub parent_hash: Vec<u8>,
    /// `vote_digest` of the previous vote received in the proposal, or empty.
    #[prost(bytes = "vec", tag = "26")]
    pub received_hash: Vec<u8>,
    /// `vote_hash` of the fields above (32 bytes).
    #[prost(bytes = "vec", tag = "27")]
    pub vote_hash: Vec<u8>,
    /// Ed25519 signature of `vote_hash` by `vote_owner` (64 bytes).
    #[prost(bytes = "vec", tag = "28")]
    pub signature: Vec<u8>,
}

/// What a proposal asks the group to do, and in which epoch it was made.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct ProposalPayload {
    /// MLS epoch the proposal was created in.
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    /// Exactly one action; decoding rejects a payload without one. (Tag 5, a steward
    /// election of wire version 1, is retired: steward lists are derived, not voted.)
    #[prost(oneof = "proposal_payload::Action", tags = "2, 3, 4, 6")]
    pub action: Option<proposal_payload::Action>,
}

impl ProposalPayload {
    /// A payload for `action` made in `epoch`.
    pub fn new(epoch: u64, action: proposal_payload::Action) -> Self {
        ProposalPayload {
            epoch,
            action: Some(action),
        }
    }
}

/// The oneof of [`ProposalPayload`].
pub mod proposal_payload {
    /// The governance action of a proposal.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Oneof)]
    pub enum Action {
        /// Add a member from its key package.
        #[prost(message, tag = "2")]
        Add(super::AddMember),
        /// Remove a member.
        #[prost(message, tag = "3")]
        Remove(super::RemoveMember),
        /// The proposer leaves.
        #[prost(message, tag = "4")]
        Leave(super::SelfLeave),
        /// Remove a member under emergency criteria.
        #[prost(message, tag = "6")]
        Emergency(super::EmergencyRemoval),
    }
}

/// Add the owner of `key_package`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AddMember {
    /// Serialized MLS key package of the joiner.
    #[prost(bytes = "vec", tag = "1")]
    pub key_package: Vec<u8>,
    /// 20-byte member id of the joiner.
    #[prost(bytes = "vec", tag = "2")]
    pub member_id: Vec<u8>,
}

/// Remove a member.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct RemoveMember {
    /// 20-byte member id.
    #[prost(bytes = "vec", tag = "1")]
    pub member_id: Vec<u8>,
}

/// The proposer asks to leave.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct SelfLeave {
    /// 20-byte member id of the leaver.
    #[prost(bytes = "vec", tag = "1")]
    pub member_id: Vec<u8>,
}

/// Remove a member under emergency criteria (for example a score below the threshold).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct EmergencyRemoval {
    /// 20-byte member id.
    #[prost(bytes = "vec", tag = "1")]
    pub member_id: Vec<u8>,
    /// Short machine- or human-readable reason.
    #[prost(string, tag = "2")]
    pub reason: String,
    /// Supporting bytes: empty (the target's certified score is the reason, which every
    /// member reads the same), or an encoded [`EmergencyEvidence`].
    #[prost(bytes = "vec", tag = "3")]
    pub evidence: Vec<u8>,
}

/// What an emergency removal shows against its target that any member can check: a
/// proposal and two signed votes of the target on it with opposite values.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct EmergencyEvidence {
    /// The proposal voted on, with its owner's vote (the votes sign its digest).
    #[prost(message, optional, tag = "1")]
    pub proposal: Option<Proposal>,
    #[prost(message, optional, tag = "2")]
    pub proof: Option<EquivocationProof>,
}

/// The group's view a joiner starts from, sent by the author of the certified commit that
/// adds it, encrypted in the new epoch. (Tags 3 and 6 of wire version 1 are retired.)
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct ConversationSync {
    /// Protocol settings; decoding rejects a sync without them.
    #[prost(message, optional, tag = "1")]
    pub settings: Option<SyncSettings>,
    /// 20-byte member ids of the current steward list, in order.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub stewards: Vec<Vec<u8>>,
    /// Peer scores.
    #[prost(message, repeated, tag = "4")]
    pub scores: Vec<PeerScore>,
    /// Epoch whose epoch steward is `stewards[0]`.
    #[prost(uint64, tag = "5")]
    pub steward_base_epoch: u64,
    /// The certified commit that added the joiners; decoding rejects a sync without it.
    #[prost(message, optional, tag = "7")]
    pub certified: Option<CertifiedCommit>,
    /// `proposal_digest`s of the proposals still open after that commit, as its leader
    /// knows them: a joiner takes these, though made before it joined, when a member passes
    /// them on (it refuses other proposals made before it joined, which may be replays of
    /// proposals resolved before it came).
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub open_proposals: Vec<Vec<u8>>,
}

/// One member's score.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct PeerScore {
    /// 20-byte member id.
    #[prost(bytes = "vec", tag = "1")]
    pub member_id: Vec<u8>,
    /// Current score.
    #[prost(int64, tag = "2")]
    pub score: i64,
}

/// The protocol settings shared with joiners, one field per setting; the protocol layer's
/// `Settings` documents each one and converts to and from this message.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct SyncSettings {
    #[prost(uint32, tag = "1")]
    pub steward_list_min: u32,
    #[prost(uint32, tag = "2")]
    pub steward_list_max: u32,
    #[prost(uint64, tag = "3")]
    pub pending_join_timeout_ms: u64,
    #[prost(uint64, tag = "4")]
    pub commit_inactivity_ms: u64,
    #[prost(uint64, tag = "5")]
    pub recovery_inactivity_ms: u64,
    #[prost(uint64, tag = "6")]
    pub freeze_window_ms: u64,
    #[prost(uint64, tag = "7")]
    pub vote_timeout_ms: u64,
    /// `None`: members only vote by hand.
    #[prost(uint64, optional, tag = "8")]
    pub auto_vote_delay_ms: Option<u64>,
    #[prost(int64, tag = "9")]
    pub default_peer_score: i64,
    #[prost(int64, tag = "10")]
    pub removal_threshold: i64,
    #[prost(int64, tag = "11")]
    pub score_commit_reward: i64,
    #[prost(int64, tag = "12")]
    pub score_missed_commit_penalty: i64,
    #[prost(int64, tag = "13")]
    pub score_invalid_candidate_penalty: i64,
    #[prost(int64, tag = "14")]
    pub score_rejected_emergency_penalty: i64,
    #[prost(int64, tag = "15")]
    pub score_emergency_reward: i64,
    #[prost(uint32, tag = "16")]
    pub max_commit_proposals: u32,
    #[prost(uint64, tag = "17")]
    pub commit_delay_ms: u64,
    #[prost(bool, tag = "18")]
    pub liveness_criteria_yes: bool,
    #[prost(uint64, tag = "19")]
    pub max_clock_skew_ms: u64,
}

pub use super::round::{
    Candidate, CertifiedCommit, EquivocationProof, NewRound, Polka, Resolution, RoundSignature,
    RoundVote,
};

/// Several votes sent together.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct VoteBundle {
    #[prost(message, repeated, tag = "1")]
    pub votes: Vec<Vote>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn proposal_and_vote_use_the_spec_tags() {
        // Tag 10, wire type 2 (len) = 0x52; tag 20, wire type 0 = 0xa0 0x01.
        let p = Proposal {
            name: "x".into(),
            ..Default::default()
        };
        assert_eq!(p.encode_to_vec(), vec![0x52, 1, b'x']);
        let v = Vote {
            vote_id: 1,
            ..Default::default()
        };
        assert_eq!(v.encode_to_vec(), vec![0xa0, 0x01, 1]);
        let v = Vote {
            signature: vec![9],
            ..Default::default()
        };
        // Tag 28, wire type 2 = (28 << 3) | 2 = 226 = 0xe2 0x01.
        assert_eq!(v.encode_to_vec(), vec![0xe2, 0x01, 1, 9]);
    }
}
