//! Size limits for everything [`super`] decodes.
//!
//! Each `decode_*` function refuses input longer than its message's byte limit before prost
//! sees it, pre-scans the protobuf framing so that no repeated element is shorter than its
//! smallest valid encoding (which keeps decoded memory proportional to the input), and after
//! decoding checks every variable-length field against the limits here. Fixed-size fields
//! (member ids, keys, hashes, signatures, ids) must have exactly their size; hashes may also be
//! empty where the consensus spec allows it (`parent_hash`, `received_hash`).

/// Largest encoded [`super::Envelope`] accepted (8 MiB).
pub const MAX_ENVELOPE_BYTES: usize = 8 * 1024 * 1024;
/// Largest envelope body: the envelope limit minus room for the envelope's own fields.
pub const MAX_BODY_BYTES: usize = MAX_ENVELOPE_BYTES - 1024;
/// Largest encoded [`super::GroupPayload`] (it travels inside an MLS message in a body).
pub const MAX_GROUP_PAYLOAD_BYTES: usize = MAX_BODY_BYTES;
/// Largest encoded [`super::WelcomePacket`].
pub const MAX_WELCOME_PACKET_BYTES: usize = MAX_BODY_BYTES;
/// Largest serialized MLS welcome inside a [`super::WelcomePacket`].
pub const MAX_WELCOME_BYTES: usize = MAX_WELCOME_PACKET_BYTES;
/// Largest serialized MLS commit inside a [`super::CommitCandidate`].
pub const MAX_COMMIT_BYTES: usize = MAX_GROUP_PAYLOAD_BYTES;
/// Largest serialized MLS key package (join requests and add proposals).
pub const MAX_KEY_PACKAGE_BYTES: usize = 64 * 1024;
/// Largest encoded [`super::JoinRequest`]: a key package plus a timestamp.
pub const MAX_JOIN_REQUEST_BYTES: usize = MAX_KEY_PACKAGE_BYTES + 64;
/// Largest encoded [`super::ConversationSync`], and largest `WelcomePacket::sync`: room for
/// the resolved adds of a thousand-member formation (each with its key package), within
/// the envelope.
pub const MAX_SYNC_BYTES: usize = 4 * 1024 * 1024;
/// Largest chat body.
pub const MAX_CHAT_BODY_BYTES: usize = 64 * 1024;
/// Longest conversation id, in UTF-8 bytes.
pub const MAX_CONVERSATION_ID_BYTES: usize = 128;
/// Longest proposal name, in UTF-8 bytes.
pub const MAX_PROPOSAL_NAME_BYTES: usize = 256;
/// Largest encoded [`super::ProposalPayload`] (`Proposal::payload`).
pub const MAX_PROPOSAL_PAYLOAD_BYTES: usize = 128 * 1024;
/// Longest emergency-removal reason, in UTF-8 bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// Largest emergency-removal evidence.
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024;

/// Most votes carried by one proposal.
pub const MAX_VOTES_PER_PROPOSAL: usize = 4096;
/// Most votes in one [`super::VoteBundle`].
pub const MAX_VOTES_PER_BUNDLE: usize = 4096;
/// Most stewards in a steward list (election or sync).
pub const MAX_STEWARDS: usize = 256;
/// Most joiners named by one welcome packet.
pub const MAX_JOINERS_PER_WELCOME: usize = 4096;
/// Most entries in a synced score table.
pub const MAX_PEER_SCORES: usize = 4096;
/// Most open proposals a sync names.
pub const MAX_SYNC_OPEN_PROPOSALS: usize = 4096;

/// A member id: `SHA256(public key)[..20]`.
pub const MEMBER_ID_BYTES: usize = 20;
/// An Ed25519 public key.
pub const PUBLIC_KEY_BYTES: usize = 32;
/// A SHA-256 hash.
pub const HASH_BYTES: usize = 32;
/// An Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;
/// An envelope's packet id: `SHA256(body)[..16]`.
pub const PACKET_ID_BYTES: usize = 16;
/// A chat message id.
pub const MESSAGE_ID_BYTES: usize = 16;

/// Smallest encoding of a valid [`super::Vote`]: `vote_owner`, `vote_hash` and `signature`
/// (two-byte keys, one-byte lengths), all other fields at their defaults.
pub const MIN_VOTE_BYTES: usize =
    (2 + 1 + PUBLIC_KEY_BYTES) + (2 + 1 + HASH_BYTES) + (2 + 1 + SIGNATURE_BYTES);
/// Smallest encoding of a valid [`super::ProposalPayload`]: a remove or leave action
/// (`action` key and length, `member_id` key, length and bytes).
pub const MIN_PROPOSAL_PAYLOAD_BYTES: usize = 1 + 1 + (1 + 1 + MEMBER_ID_BYTES);
/// Smallest encoding of a valid [`super::Proposal`]: `proposal_owner`, `payload` and an
/// `expected_voters_count` below 128.
pub const MIN_PROPOSAL_BYTES: usize =
    (1 + 1 + PUBLIC_KEY_BYTES) + (1 + 1 + MIN_PROPOSAL_PAYLOAD_BYTES) + 2;
/// Smallest encoding of a valid [`super::PeerScore`]: its `member_id`.
pub const MIN_PEER_SCORE_BYTES: usize = 1 + 1 + MEMBER_ID_BYTES;

/// Most members a group may have (bounds voter counts, quorums and member lists on the wire).
pub const MAX_MEMBERS: usize = 4096;
/// Most resolutions in one candidate (and the largest `max_commit_proposals` a group may set).
pub const MAX_RESOLUTIONS_PER_CANDIDATE: usize = 1024;
/// Most equivocation proofs carried for one proposal.
pub const MAX_PROOFS_PER_RESOLUTION: usize = MAX_MEMBERS;
/// Most signatures in a polka or a certificate.
pub const MAX_ROUND_SIGNATURES: usize = MAX_MEMBERS;
/// An envelope's recipient tag: empty, or this many bytes.
pub const RECIPIENT_TAG_BYTES: usize = 16;

/// Smallest encoding of a valid [`super::RoundSignature`]: a key and a signature.
pub const MIN_ROUND_SIGNATURE_BYTES: usize = (1 + 1 + PUBLIC_KEY_BYTES) + (1 + 1 + SIGNATURE_BYTES);
/// Smallest encoding of a valid [`super::Resolution`]: its proposal.
pub const MIN_RESOLUTION_BYTES: usize = 1 + 1 + MIN_PROPOSAL_BYTES;
/// Smallest encoding of a valid [`super::EquivocationProof`]: two votes.
pub const MIN_PROOF_BYTES: usize = 2 * (1 + 2 + MIN_VOTE_BYTES);
/// Largest encoded [`super::CatchUp`].
pub const MAX_CATCH_UP_BYTES: usize = 256;
/// Largest plaintext of a sealed packet (a vote with its proposal's digest, or a round vote,
/// each a few hundred bytes).
pub const MAX_SEALED_PLAINTEXT_BYTES: usize = 1024;
/// Bytes of a sealed packet's AEAD nonce.
pub const SEALED_NONCE_BYTES: usize = 12;
