//! Sealed packets: the governance messages that carry their own signature (votes, prevotes,
//! precommits), encrypted under a key of the epoch instead of framed as MLS messages.
//!
//! Such a message is authenticated by its own Ed25519 signature, which every member checks
//! anyway (and which evidence needs); MLS framing would add a second signature check and a
//! ratchet step per packet at every receiver. The key comes from the epoch's MLS exporter
//! secret, so only the epoch's members read a sealed packet; the engine derives it and runs
//! the AEAD. A vote travels with the digest of its proposal, so that its signature can be
//! checked before the proposal itself has arrived.

use super::ballot_codec::validate_vote;
use super::error::WireError;
use super::fields::{bad, check_max, decode_bounded, exact};
use super::limits::{HASH_BYTES, MAX_SEALED_PLAINTEXT_BYTES, SEALED_NONCE_BYTES};
use super::messages::Vote;
use super::round::RoundVote;
use super::round_codec::validate_round_vote;

/// Bytes the AEAD adds to a plaintext (its tag).
pub const SEALED_TAG_BYTES: usize = 16;

/// The body of a [`super::PacketKind::Sealed`] envelope.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Sealed {
    /// The MLS epoch whose key sealed it.
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    /// The AEAD nonce (12 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub nonce: Vec<u8>,
    /// An encoded [`SealedPayload`], encrypted, with the AEAD's tag.
    #[prost(bytes = "vec", tag = "3")]
    pub ciphertext: Vec<u8>,
}

/// The plaintext of a [`Sealed`] packet.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct SealedPayload {
    /// Exactly one content; decoding refuses a payload without one.
    #[prost(oneof = "sealed_payload::Content", tags = "1, 2, 3")]
    pub content: Option<sealed_payload::Content>,
}

/// The oneof of [`SealedPayload`].
pub mod sealed_payload {
    /// What a sealed packet carries: only messages signed by their author.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Oneof)]
    pub enum Content {
        /// A member's own vote on a proposal.
        #[prost(message, tag = "1")]
        Vote(super::SignedVote),
        /// A prevote, addressed to the round's leader.
        #[prost(message, tag = "2")]
        Prevote(super::RoundVote),
        /// A precommit, addressed to the round's leader.
        #[prost(message, tag = "3")]
        Precommit(super::RoundVote),
    }
}

/// A vote with the digest of the proposal it votes on (which its signature covers).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct SignedVote {
    /// `proposal_digest` of the proposal (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub proposal_digest: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub vote: Option<Vote>,
}

impl SealedPayload {
    /// A payload carrying `content`.
    pub fn new(content: sealed_payload::Content) -> Self {
        SealedPayload {
            content: Some(content),
        }
    }
}

/// The largest [`Sealed`] body: the plaintext bound, the AEAD tag and the framing.
pub const MAX_SEALED_BYTES: usize = MAX_SEALED_PLAINTEXT_BYTES + SEALED_TAG_BYTES + 64;

/// Decodes and validates a [`Sealed`] body.
pub fn decode_sealed(bytes: &[u8]) -> Result<Sealed, WireError> {
    let sealed: Sealed = decode_bounded("sealed", bytes, MAX_SEALED_BYTES, None)?;
    validate_sealed(&sealed)?;
    Ok(sealed)
}

/// Checks a [`Sealed`] body: a 12-byte nonce and a ciphertext no longer than the largest
/// plaintext with its tag.
pub fn validate_sealed(s: &Sealed) -> Result<(), WireError> {
    exact("sealed.nonce", &s.nonce, SEALED_NONCE_BYTES)?;
    if s.ciphertext.len() < SEALED_TAG_BYTES {
        return Err(bad("sealed.ciphertext", "shorter than the AEAD tag"));
    }
    check_max(
        "sealed.ciphertext",
        s.ciphertext.len(),
        MAX_SEALED_PLAINTEXT_BYTES + SEALED_TAG_BYTES,
    )
}

/// Decodes and validates a [`SealedPayload`] (the plaintext of a sealed packet).
pub fn decode_sealed_payload(bytes: &[u8]) -> Result<SealedPayload, WireError> {
    let payload: SealedPayload =
        decode_bounded("sealed_payload", bytes, MAX_SEALED_PLAINTEXT_BYTES, None)?;
    validate_sealed_payload(&payload)?;
    Ok(payload)
}

/// Checks a [`SealedPayload`] and what it carries.
pub fn validate_sealed_payload(p: &SealedPayload) -> Result<(), WireError> {
    use sealed_payload::Content;
    match &p.content {
        None => Err(bad("sealed_payload.content", "missing or unknown content")),
        Some(Content::Vote(v)) => {
            exact(
                "signed_vote.proposal_digest",
                &v.proposal_digest,
                HASH_BYTES,
            )?;
            match &v.vote {
                Some(vote) => validate_vote(vote),
                None => Err(bad("signed_vote.vote", "missing")),
            }
        }
        Some(Content::Prevote(v) | Content::Precommit(v)) => validate_round_vote(v),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::samples;

    #[test]
    fn every_sample_round_trips_and_validates() {
        for p in samples::sealed_payloads() {
            let bytes = p.encode_to_vec();
            assert_eq!(decode_sealed_payload(&bytes), Ok(p));
        }
        let s = samples::sealed();
        assert_eq!(decode_sealed(&s.encode_to_vec()), Ok(s));
    }

    #[test]
    fn a_payload_without_content_or_with_a_short_digest_is_refused() {
        assert!(matches!(
            decode_sealed_payload(&[]),
            Err(WireError::BadField {
                field: "sealed_payload.content",
                ..
            })
        ));
        let mut short = samples::signed_vote();
        short.proposal_digest.pop();
        let p = SealedPayload::new(sealed_payload::Content::Vote(short));
        assert!(matches!(
            decode_sealed_payload(&p.encode_to_vec()),
            Err(WireError::BadField {
                field: "signed_vote.proposal_digest",
                ..
            })
        ));
        let empty = SealedPayload::new(sealed_payload::Content::Vote(SignedVote {
            proposal_digest: vec![1; 32],
            vote: None,
        }));
        assert!(decode_sealed_payload(&empty.encode_to_vec()).is_err());
    }

    #[test]
    fn a_sealed_body_needs_a_twelve_byte_nonce_and_a_bounded_ciphertext() {
        let mut s = samples::sealed();
        s.nonce.push(0);
        assert!(decode_sealed(&s.encode_to_vec()).is_err());
        let mut s = samples::sealed();
        s.ciphertext.truncate(SEALED_TAG_BYTES - 1);
        assert!(decode_sealed(&s.encode_to_vec()).is_err());
        let mut s = samples::sealed();
        s.ciphertext = vec![0; MAX_SEALED_PLAINTEXT_BYTES + SEALED_TAG_BYTES + 1];
        assert!(matches!(
            decode_sealed(&s.encode_to_vec()),
            Err(WireError::TooLarge { .. })
        ));
    }
}
