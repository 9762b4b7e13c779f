//! Quorums of the commit round: who may sign, how many signatures make a quorum, and how a
//! prevote or precommit is signed and checked.
//!
//! The signers of epoch E are all its members (n of them, agreed by every honest member
//! because E itself was certified). With f(n) = ⌈n/3⌉ − 1 byzantine members tolerated, a
//! quorum is q(n) = ⌊(n + f)/2⌋ + 1 signatures: two quorums share more than f members, so at
//! least one honest member, which signs at most one prevote and one precommit per round.

use std::collections::{BTreeMap, BTreeSet};

use crate::mls::batch::Batch;
use crate::mls::{Identity, MemberId, verify_signature};
use crate::protocol::ballot_box::Digest;
use witan_wire::{self as wire, RoundVoteKind};

/// Byzantine members tolerated in a group of `n`.
pub fn max_faulty(n: usize) -> usize {
    n.div_ceil(3).saturating_sub(1)
}

/// Signatures that make a quorum in a group of `n`.
pub fn quorum(n: usize) -> usize {
    // In u128: n + f overflows usize for n near its limit (a panic in debug builds, a tiny
    // quorum in release ones). The result is at most n.
    let q = (n as u128 + max_faulty(n) as u128) / 2 + 1;
    usize::try_from(q).unwrap_or(usize::MAX)
}

/// The members of an epoch by their Ed25519 key.
pub type Signers = BTreeMap<[u8; 32], MemberId>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    #[error("the signer is not a member of the epoch")]
    NotSigner,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("a member signed twice")]
    Duplicate,
    #[error("{0} valid signatures, a quorum is {1}")]
    TooFew(usize, usize),
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// This member's signed vote of `kind` for `digest` (`None`: nil).
pub fn sign(
    identity: &Identity,
    kind: RoundVoteKind,
    conversation: &str,
    epoch: u64,
    round: u32,
    digest: Option<&Digest>,
) -> wire::RoundVote {
    let digest = digest.map(|d| d.to_vec()).unwrap_or_default();
    let hash = wire::round_vote_hash(kind, conversation, epoch, round, &digest);
    wire::RoundVote {
        epoch,
        round,
        signature: identity.sign(&hash),
        digest,
        voter_key: identity.public_key().to_vec(),
    }
}

fn key_of(bytes: &[u8]) -> Result<[u8; 32], QuorumError> {
    bytes
        .try_into()
        .map_err(|_| QuorumError::Malformed("key is not 32 bytes"))
}

/// Checks one signature of a round vote; returns the signer.
pub fn verify_one(
    kind: RoundVoteKind,
    conversation: &str,
    (epoch, round, digest): (u64, u32, &[u8]),
    voter_key: &[u8],
    signature: &[u8],
    signers: &Signers,
) -> Result<MemberId, QuorumError> {
    let key = key_of(voter_key)?;
    let member = *signers.get(&key).ok_or(QuorumError::NotSigner)?;
    let hash = wire::round_vote_hash(kind, conversation, epoch, round, digest);
    crate::metrics::round_signature_checked();
    if !verify_signature(&key, &hash, signature) {
        return Err(QuorumError::BadSignature);
    }
    Ok(member)
}

/// Checks a single prevote or precommit; returns its signer.
pub fn verify_vote(
    kind: RoundVoteKind,
    conversation: &str,
    v: &wire::RoundVote,
    signers: &Signers,
) -> Result<MemberId, QuorumError> {
    verify_one(
        kind,
        conversation,
        (v.epoch, v.round, &v.digest),
        &v.voter_key,
        &v.signature,
        signers,
    )
}

/// Checks that `signatures` are at least a quorum of distinct signers of the epoch, every one
/// valid for `(kind, epoch, round, digest)`. Returns the signers.
///
/// The signatures are checked as one batch (`mls::batch`): every member judges a list alike,
/// and a list costs about two thirds of its single checks.
pub fn verify_quorum(
    kind: RoundVoteKind,
    conversation: &str,
    (epoch, round, digest): (u64, u32, &Digest),
    signatures: &[wire::RoundSignature],
    signers: &Signers,
) -> Result<BTreeSet<MemberId>, QuorumError> {
    let need = quorum(signers.len());
    if signatures.len() < need {
        return Err(QuorumError::TooFew(signatures.len(), need));
    }
    let hash = wire::round_vote_hash(kind, conversation, epoch, round, digest);
    let mut batch = Batch::new(&hash);
    let mut seen = BTreeSet::new();
    for s in signatures {
        let key = key_of(&s.voter_key)?;
        let member = *signers.get(&key).ok_or(QuorumError::NotSigner)?;
        if !seen.insert(member) {
            return Err(QuorumError::Duplicate);
        }
        crate::metrics::round_signature_checked();
        batch.push(&key, &s.signature);
    }
    if !batch.verify() {
        return Err(QuorumError::BadSignature);
    }
    Ok(seen)
}

/// The signers of the epoch among `signatures` whose signature is valid for `(kind, epoch,
/// round, digest)` by the rules of [`verify_quorum`]; the others are left out. For a joiner,
/// which can check only the members it can see.
pub fn valid_signers(
    kind: RoundVoteKind,
    conversation: &str,
    (epoch, round, digest): (u64, u32, &[u8]),
    signatures: &[wire::RoundSignature],
    signers: &Signers,
) -> BTreeSet<MemberId> {
    let hash = wire::round_vote_hash(kind, conversation, epoch, round, digest);
    let known: BTreeMap<MemberId, ([u8; 32], &[u8])> = signatures
        .iter()
        .filter_map(|s| {
            let key = key_of(&s.voter_key).ok()?;
            let member = *signers.get(&key)?;
            Some((member, (key, s.signature.as_slice())))
        })
        .collect();
    let check = |items: &mut dyn Iterator<Item = &([u8; 32], &[u8])>| {
        let mut batch = Batch::new(&hash);
        for (key, signature) in items {
            crate::metrics::round_signature_checked();
            batch.push(key, signature);
        }
        batch.verify()
    };
    if check(&mut known.values()) {
        return known.into_keys().collect();
    }
    known
        .into_iter()
        .filter(|(_, item)| check(&mut std::iter::once(item)))
        .map(|(member, _)| member)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_sizes_follow_the_formula() {
        let cases = [
            (1, 0, 1),
            (2, 0, 2),
            (3, 0, 2),
            (4, 1, 3),
            (5, 1, 4),
            (6, 1, 4),
            (7, 2, 5),
            (10, 3, 7),
            (1000, 333, 667),
        ];
        for (n, f, q) in cases {
            assert_eq!((max_faulty(n), quorum(n)), (f, q), "n = {n}");
        }
    }

    #[test]
    fn two_quorums_always_share_an_honest_member() {
        for n in 1..=200 {
            let (f, q) = (max_faulty(n), quorum(n));
            assert!(
                q <= n,
                "a quorum exists without the byzantine members: n = {n}"
            );
            assert!(2 * q > n + f, "intersection exceeds f: n = {n}");
            assert!(q <= n - f, "honest members alone reach a quorum: n = {n}");
        }
    }

    #[test]
    fn signatures_bind_kind_round_and_digest() {
        let ids: Vec<Identity> = (1..=4u8)
            .map(|i| Identity::from_secret(&[i; 32]).unwrap())
            .collect();
        let signers: Signers = ids
            .iter()
            .map(|i| (i.public_key(), i.member_id()))
            .collect();
        let d = [7u8; 32];
        let votes: Vec<wire::RoundVote> = ids
            .iter()
            .map(|i| sign(i, RoundVoteKind::Prevote, "c", 3, 1, Some(&d)))
            .collect();
        let sigs: Vec<wire::RoundSignature> = votes
            .iter()
            .map(|v| wire::RoundSignature {
                voter_key: v.voter_key.clone(),
                signature: v.signature.clone(),
            })
            .collect();
        let ok = verify_quorum(
            RoundVoteKind::Prevote,
            "c",
            (3, 1, &d),
            &sigs[..3],
            &signers,
        );
        assert_eq!(ok.map(|s| s.len()), Ok(3));
        assert_eq!(
            verify_quorum(
                RoundVoteKind::Prevote,
                "c",
                (3, 1, &d),
                &sigs[..2],
                &signers
            ),
            Err(QuorumError::TooFew(2, 3))
        );
        let twice = vec![sigs[0].clone(), sigs[0].clone(), sigs[1].clone()];
        assert_eq!(
            verify_quorum(RoundVoteKind::Prevote, "c", (3, 1, &d), &twice, &signers),
            Err(QuorumError::Duplicate)
        );
        for (kind, round, digest) in [
            (RoundVoteKind::Precommit, 1, d),
            (RoundVoteKind::Prevote, 2, d),
            (RoundVoteKind::Prevote, 1, [8; 32]),
        ] {
            assert_eq!(
                verify_quorum(kind, "c", (3, round, &digest), &sigs[..3], &signers),
                Err(QuorumError::BadSignature)
            );
        }
        let outsider = Identity::from_secret(&[9; 32]).unwrap();
        let v = sign(&outsider, RoundVoteKind::Prevote, "c", 3, 1, Some(&d));
        assert_eq!(
            verify_vote(RoundVoteKind::Prevote, "c", &v, &signers),
            Err(QuorumError::NotSigner)
        );
    }
}
