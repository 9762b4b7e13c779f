//! The hashes consensus relies on: [`vote_hash`] (what a voter signs), [`vote_digest`] (what
//! `parent_hash` and `received_hash` point at), [`proposal_digest`] (what names a proposal,
//! and how proposals are ordered in a commit), [`candidate_digest`] (what names a candidate
//! value, and what a certificate certifies) and [`round_vote_hash`] (what a prevote or
//! precommit signs). The canonical encodings are specified in the [`super`] module doc.
//! Every one of them covers the conversation id, so nothing signed in one conversation counts
//! in another.

use prost::Message as _;
use sha2::{Digest as _, Sha256};

use super::limits::HASH_BYTES;
use super::messages::{Proposal, Vote};
use super::round::{Candidate, EquivocationProof, Resolution};

/// Domain tag of [`vote_hash`].
pub const VOTE_HASH_DOMAIN: &[u8] = b"witan/vote-hash/v2";
/// Domain tag of [`proposal_digest`].
pub const PROPOSAL_DIGEST_DOMAIN: &[u8] = b"witan/proposal-digest/v2";
/// Domain tag of [`candidate_digest`].
pub const CANDIDATE_DIGEST_DOMAIN: &[u8] = b"witan/candidate/v1";
/// Domain tag of [`round_vote_hash`].
pub const ROUND_VOTE_DOMAIN: &[u8] = b"witan/round-vote/v1";

/// Domain tag of [`catch_up_hash`].
pub const CATCH_UP_DOMAIN: &[u8] = b"witan/catch-up/v1";

/// The two kinds of round vote; the kind is signed, so a prevote never counts as a precommit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoundVoteKind {
    Prevote = 1,
    Precommit = 2,
}

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
/// encoding of `(conversation_id, proposal_digest, vote_id, vote_owner, proposal_id,
/// timestamp, vote, parent_hash, received_hash)`. `vote_hash` and `signature` themselves are
/// not covered. The vote is bound to the whole proposal (its digest), not only to its id.
pub fn vote_hash(
    conversation_id: &str,
    proposal_digest: &[u8; HASH_BYTES],
    v: &Vote,
) -> [u8; HASH_BYTES] {
    let mut c = Canonical::new(VOTE_HASH_DOMAIN);
    c.bytes(conversation_id.as_bytes())
        .bytes(proposal_digest)
        .u32(v.vote_id)
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
/// change as it gossips): `(conversation_id, name, payload, proposal_id, proposal_owner,
/// expected_voters_count, timestamp, expiration_timestamp, liveness_criteria_yes)`. Commits
/// order their proposals by this digest.
pub fn proposal_digest(conversation_id: &str, p: &Proposal) -> [u8; HASH_BYTES] {
    let mut c = Canonical::new(PROPOSAL_DIGEST_DOMAIN);
    c.bytes(conversation_id.as_bytes())
        .bytes(p.name.as_bytes())
        .bytes(&p.payload)
        .u64(p.proposal_id)
        .bytes(&p.proposal_owner)
        .u32(p.expected_voters_count)
        .u64(p.timestamp)
        .u64(p.expiration_timestamp)
        .bool(p.liveness_criteria_yes);
    c.finish()
}

/// The digest of a candidate's value: SHA-256 over the canonical encoding of
/// `(conversation_id, epoch, commit, welcome, number of resolutions, each resolution)`, a
/// resolution being `(proposal_digest, approved, at_expiry, dropped, number of votes, each
/// vote's vote_digest, number of proofs, each proof's two vote_digests)`. The round, the
/// proposer and the polka a candidate may carry are left out: a value proposed again in a
/// later round keeps its digest.
pub fn candidate_digest(conversation_id: &str, c: &Candidate) -> [u8; HASH_BYTES] {
    let mut h = Canonical::new(CANDIDATE_DIGEST_DOMAIN);
    h.bytes(conversation_id.as_bytes())
        .u64(c.epoch)
        .bytes(&c.commit)
        .bytes(&c.welcome)
        .u64(c.resolutions.len() as u64);
    for r in &c.resolutions {
        resolution(&mut h, conversation_id, r);
    }
    h.finish()
}

fn resolution(h: &mut Canonical, conversation_id: &str, r: &Resolution) {
    let digest = r
        .proposal
        .as_ref()
        .map(|p| proposal_digest(conversation_id, p))
        .unwrap_or([0; HASH_BYTES]);
    h.bytes(&digest)
        .bool(r.approved)
        .bool(r.at_expiry)
        .bool(r.dropped)
        .u64(r.votes.len() as u64);
    for v in &r.votes {
        h.bytes(&vote_digest(v));
    }
    h.u64(r.proofs.len() as u64);
    for p in &r.proofs {
        proof(h, p);
    }
}

fn proof(h: &mut Canonical, p: &EquivocationProof) {
    for v in [&p.first, &p.second] {
        let d = v.as_ref().map(vote_digest).unwrap_or([0; HASH_BYTES]);
        h.bytes(&d);
    }
}

/// What a prevote or precommit signs: SHA-256 over the canonical encoding of `(kind as u32,
/// conversation_id, epoch, round, digest)`, the digest empty for nil.
pub fn round_vote_hash(
    kind: RoundVoteKind,
    conversation_id: &str,
    epoch: u64,
    round: u32,
    digest: &[u8],
) -> [u8; HASH_BYTES] {
    let mut h = Canonical::new(ROUND_VOTE_DOMAIN);
    h.u32(kind as u32)
        .bytes(conversation_id.as_bytes())
        .u64(epoch)
        .u32(round)
        .bytes(digest);
    h.finish()
}

/// What a [`super::CatchUp`] signs: SHA-256 over the canonical encoding of
/// `(conversation_id, epoch, gone, oldest)`.
pub fn catch_up_hash(
    conversation_id: &str,
    epoch: u64,
    gone: bool,
    oldest: u64,
) -> [u8; HASH_BYTES] {
    let mut h = Canonical::new(CATCH_UP_DOMAIN);
    h.bytes(conversation_id.as_bytes())
        .u64(epoch)
        .bool(gone)
        .u64(oldest);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;

    const CONV: &str = "conversation";
    const DIGEST: [u8; 32] = [5; 32];

    /// The canonical encoding written out by hand, to pin the documented format.
    fn manual_vote_hash(v: &Vote) -> [u8; 32] {
        let mut buf = Vec::new();
        let bytes = |buf: &mut Vec<u8>, b: &[u8]| {
            buf.extend_from_slice(&(b.len() as u64).to_be_bytes());
            buf.extend_from_slice(b);
        };
        bytes(&mut buf, b"witan/vote-hash/v2");
        bytes(&mut buf, CONV.as_bytes());
        bytes(&mut buf, &DIGEST);
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
        let v = samples::vote(3);
        assert_eq!(vote_hash(CONV, &DIGEST, &v), manual_vote_hash(&v));
    }

    #[test]
    fn vote_hash_covers_every_signed_field_and_nothing_else() {
        let base = samples::vote(1);
        let h = vote_hash(CONV, &DIGEST, &base);
        assert_ne!(
            vote_hash("other", &DIGEST, &base),
            h,
            "bound to the conversation"
        );
        assert_ne!(
            vote_hash(CONV, &[6; 32], &base),
            h,
            "bound to the proposal digest"
        );
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
            assert_ne!(vote_hash(CONV, &DIGEST, &v), h);
        }
        let mut v = base.clone();
        v.vote_hash = vec![0; 32];
        v.signature = vec![0; 64];
        assert_eq!(vote_hash(CONV, &DIGEST, &v), h);
    }

    #[test]
    fn length_prefixes_prevent_field_boundary_shifts() {
        let mut a = samples::vote(1);
        a.parent_hash = vec![];
        a.received_hash = vec![5; 32];
        let mut b = a.clone();
        b.parent_hash = vec![5; 32];
        b.received_hash = vec![];
        assert_ne!(vote_hash(CONV, &DIGEST, &a), vote_hash(CONV, &DIGEST, &b));
    }

    #[test]
    fn vote_digest_is_sha256_of_the_encoding_and_covers_the_signature() {
        let v = samples::vote(2);
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
        let base = samples::proposal(2);
        let d = proposal_digest(CONV, &base);
        assert_ne!(
            proposal_digest("other", &base),
            d,
            "bound to the conversation"
        );
        let mut same = base.clone();
        same.votes.clear();
        same.round += 7;
        assert_eq!(proposal_digest(CONV, &same), d);
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
            assert_ne!(proposal_digest(CONV, &p), d);
        }
    }

    #[test]
    fn candidate_digest_covers_the_value_and_not_the_round_proposer_or_polka() {
        let base = samples::candidate();
        let d = candidate_digest(CONV, &base);
        assert_ne!(candidate_digest("other", &base), d);
        let mut same = base.clone();
        same.round += 3;
        same.proposer = vec![9; 20];
        same.pol = Some(samples::polka());
        assert_eq!(candidate_digest(CONV, &same), d);
        let changes: Vec<fn(&mut crate::Candidate)> = vec![
            |c| c.epoch += 1,
            |c| c.commit.push(0),
            |c| c.welcome = [&c.welcome[..], &[0]].concat().into(),
            |c| c.resolutions.pop().map(drop).unwrap_or(()),
            |c| c.resolutions[0].approved ^= true,
            |c| c.resolutions[0].at_expiry ^= true,
            |c| c.resolutions[0].dropped ^= true,
            |c| c.resolutions[0].votes[0].vote ^= true,
            |c| c.resolutions[0].proofs.clear(),
            |c| c.resolutions[1].proposal.as_mut().unwrap().timestamp += 1,
            |c| c.resolutions.swap(0, 1),
        ];
        for change in changes {
            let mut c = base.clone();
            change(&mut c);
            assert_ne!(candidate_digest(CONV, &c), d);
        }
    }

    #[test]
    fn round_vote_hash_separates_kinds_conversations_epochs_rounds_and_values() {
        let h = round_vote_hash(RoundVoteKind::Prevote, CONV, 4, 2, &[1; 32]);
        assert_ne!(
            round_vote_hash(RoundVoteKind::Precommit, CONV, 4, 2, &[1; 32]),
            h
        );
        assert_ne!(
            round_vote_hash(RoundVoteKind::Prevote, "x", 4, 2, &[1; 32]),
            h
        );
        assert_ne!(
            round_vote_hash(RoundVoteKind::Prevote, CONV, 5, 2, &[1; 32]),
            h
        );
        assert_ne!(
            round_vote_hash(RoundVoteKind::Prevote, CONV, 4, 3, &[1; 32]),
            h
        );
        assert_ne!(
            round_vote_hash(RoundVoteKind::Prevote, CONV, 4, 2, &[2; 32]),
            h
        );
        assert_ne!(round_vote_hash(RoundVoteKind::Prevote, CONV, 4, 2, &[]), h);
    }

    #[test]
    fn domains_of_the_canonical_hashes_differ() {
        let domains = [
            VOTE_HASH_DOMAIN,
            PROPOSAL_DIGEST_DOMAIN,
            CANDIDATE_DIGEST_DOMAIN,
            ROUND_VOTE_DOMAIN,
            CATCH_UP_DOMAIN,
        ];
        for (i, a) in domains.iter().enumerate() {
            for b in &domains[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
