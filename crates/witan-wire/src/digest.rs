//! The hashes consensus relies on: [`vote_hash`] (what a voter signs), [`vote_digest`] (what
//! `parent_hash` and `received_hash` point at) and [`proposal_digest`] (how proposals are
//! ordered in a commit). The canonical encodings are specified in the [`super`] module doc.

use prost::Message as _;
use sha2::{Digest as _, Sha256};

use super::limits::HASH_BYTES;
use super::messages::{Proposal, Vote};

/// Domain tag of [`vote_hash`].
pub const VOTE_HASH_DOMAIN: &[u8] = b"witan/vote-hash/v1";
/// Domain tag of [`proposal_digest`].
pub const PROPOSAL_DIGEST_DOMAIN: &[u8] = b"witan/proposal-digest/v1";

/// SHA-256 over a canonical encoding: unsigned integers big-endian at their width, booleans as
/// one byte, byte strings as an 8-byte big-endian length followed by the bytes.
struct Canonical(Sha256);

impl Canonical {
    fn new(domain: &[u8]) -> Self {
        let mut c = Canonical(Sha256::new());
        c.bytes(domain);
        c
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.update((b.len() as u64).to_be_bytes());
        self.0.update(b);
        self
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.update(v.to_be_bytes());
        self
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.update(v.to_be_bytes());
        self
    }

    fn bool(&mut self, v: bool) -> &mut Self {
        self.0.update([u8::from(v)]);
        self
    }

    fn finish(self) -> [u8; HASH_BYTES] {
        self.0.finalize().into()
    }
}

/// The hash a voter signs and stores in `Vote::vote_hash`: SHA-256 over the canonical
/// encoding of `(vote_id, vote_owner, proposal_id, timestamp, vote, parent_hash,
/// received_hash)`. `vote_hash` and `signature` themselves are not covered.
pub fn vote_hash(v: &Vote) -> [u8; HASH_BYTES] {
    let mut c = Canonical::new(VOTE_HASH_DOMAIN);
    c.u32(v.vote_id)
        .bytes(&v.vote_owner)
        .u64(v.proposal_id)
        .u64(v.timestamp)
        .bool(v.vote)
        .bytes(&v.parent_hash)
        .bytes(&v.received_hash);
    c.finish()
}

/// SHA-256 of the protobuf encoding of the whole vote (signature included); the value other
/// votes put in `parent_hash` and `received_hash`. prost encodes a decoded message the same
/// way on every member (fields in tag order, defaults omitted, unknown fields dropped).
pub fn vote_digest(v: &Vote) -> [u8; HASH_BYTES] {
    Sha256::digest(v.encode_to_vec()).into()
}

/// SHA-256 over the canonical encoding of a proposal without its `votes` and `round` (which
/// change as it gossips): `(name, payload, proposal_id, proposal_owner,
/// expected_voters_count, timestamp, expiration_timestamp, liveness_criteria_yes)`. Commits
/// order their proposals by this digest.
pub fn proposal_digest(p: &Proposal) -> [u8; HASH_BYTES] {
    let mut c = Canonical::new(PROPOSAL_DIGEST_DOMAIN);
    c.bytes(p.name.as_bytes())
        .bytes(&p.payload)
        .u64(p.proposal_id)
        .bytes(&p.proposal_owner)
        .u32(p.expected_voters_count)
        .u64(p.timestamp)
        .u64(p.expiration_timestamp)
        .bool(p.liveness_criteria_yes);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{sample_proposal, sample_vote};

    /// The canonical encoding written out by hand, to pin the documented format.
    fn manual_vote_hash(v: &Vote) -> [u8; 32] {
        let mut buf = Vec::new();
        let bytes = |buf: &mut Vec<u8>, b: &[u8]| {
            buf.extend_from_slice(&(b.len() as u64).to_be_bytes());
            buf.extend_from_slice(b);
        };
        bytes(&mut buf, b"witan/vote-hash/v1");
        buf.extend_from_slice(&v.vote_id.to_be_bytes());
        bytes(&mut buf, &v.vote_owner);
        buf.extend_from_slice(&v.proposal_id.to_be_bytes());
        buf.extend_from_slice(&v.timestamp.to_be_bytes());
        buf.push(u8::from(v.vote));
        bytes(&mut buf, &v.parent_hash);
        bytes(&mut buf, &v.received_hash);
        Sha256::digest(&buf).into()
    }

    #[test]
    fn vote_hash_matches_the_documented_encoding() {
        let v = sample_vote(3);
        assert_eq!(vote_hash(&v), manual_vote_hash(&v));
    }

    #[test]
    fn vote_hash_covers_every_signed_field_and_nothing_else() {
        let base = sample_vote(1);
        let h = vote_hash(&base);
        let changes: Vec<fn(&mut Vote)> = vec![
            |v| v.vote_id += 1,
            |v| v.vote_owner[0] ^= 1,
            |v| v.proposal_id += 1,
            |v| v.timestamp += 1,
            |v| v.vote = !v.vote,
            |v| v.parent_hash = vec![1; 32],
            |v| v.received_hash = vec![9; 32],
        ];
        for change in changes {
            let mut v = base.clone();
            change(&mut v);
            assert_ne!(vote_hash(&v), h);
        }
        let mut v = base.clone();
        v.vote_hash = vec![0; 32];
        v.signature = vec![0; 64];
        assert_eq!(vote_hash(&v), h);
    }

    #[test]
    fn length_prefixes_prevent_field_boundary_shifts() {
        let mut a = sample_vote(1);
        a.parent_hash = vec![];
        a.received_hash = vec![5; 32];
        let mut b = a.clone();
        b.parent_hash = vec![5; 32];
        b.received_hash = vec![];
        assert_ne!(vote_hash(&a), vote_hash(&b));
    }

    #[test]
    fn vote_digest_is_sha256_of_the_encoding_and_covers_the_signature() {
        let v = sample_vote(2);
        let expected: [u8; 32] = Sha256::digest(v.encode_to_vec()).into();
        assert_eq!(vote_digest(&v), expected);
        let mut w = v.clone();
        w.signature[0] ^= 1;
        assert_ne!(vote_digest(&w), vote_digest(&v));
        // Same after a decode round trip.
        let decoded = Vote::decode(v.encode_to_vec().as_slice()).unwrap();
        assert_eq!(vote_digest(&decoded), vote_digest(&v));
    }

    #[test]
    fn proposal_digest_ignores_votes_and_round_only() {
        let base = sample_proposal(2);
        let d = proposal_digest(&base);
        let mut same = base.clone();
        same.votes.clear();
        same.round += 7;
        assert_eq!(proposal_digest(&same), d);
        let changes: Vec<fn(&mut Proposal)> = vec![
            |p| p.name.push('x'),
            |p| p.payload.push(0),
            |p| p.proposal_id += 1,
            |p| p.proposal_owner[0] ^= 1,
            |p| p.expected_voters_count += 1,
            |p| p.timestamp += 1,
            |p| p.expiration_timestamp += 1,
            |p| p.liveness_criteria_yes = !p.liveness_criteria_yes,
        ];
        for change in changes {
            let mut p = base.clone();
            change(&mut p);
            assert_ne!(proposal_digest(&p), d);
        }
    }

    #[test]
    fn domains_separate_the_two_canonical_hashes() {
        assert_ne!(VOTE_HASH_DOMAIN, PROPOSAL_DIGEST_DOMAIN);
        assert_ne!(
            vote_hash(&Vote::default()),
            Canonical::new(PROPOSAL_DIGEST_DOMAIN).finish()
        );
    }
}
