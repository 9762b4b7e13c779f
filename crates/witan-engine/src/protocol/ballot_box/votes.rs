//! Signed votes on proposals: signing, the checks a vote must pass before it counts, and
//! proofs of equivocation (one member's two opposite votes on one proposal).
//!
//! A vote signs `wire::vote_hash(conversation, proposal digest, vote)`, so it counts for one
//! whole proposal of one conversation. A proposal's first vote is its owner's YES; every other
//! vote links to it through `received_hash` (the spec's chain of received votes, kept as a
//! star rooted at the owner's vote). A member votes once: a second vote with the other value
//! is not refused silently but kept with the first as a proof, which voids both.

use super::{BallotError, Digest};
use crate::mls::{CheckedSignatures, Identity, MemberId};
use witan_wire as wire;

/// Fills in `vote_hash` and signs it.
pub(crate) fn sign_vote(
    identity: &Identity,
    conversation: &str,
    digest: &Digest,
    mut vote: wire::Vote,
) -> wire::Vote {
    vote.vote_hash = wire::vote_hash(conversation, digest, &vote).to_vec();
    vote.signature = identity.sign(&vote.vote_hash);
    vote
}

/// This member's vote on the proposal `header` (whose digest is `digest`).
pub fn new_vote(
    identity: &Identity,
    conversation: &str,
    digest: &Digest,
    header: &wire::Proposal,
    approve: bool,
    now_ms: u64,
) -> wire::Vote {
    let received_hash = header
        .votes
        .first()
        .map(|v| wire::vote_digest(v).to_vec())
        .unwrap_or_default();
    let vote = wire::Vote {
        vote_id: 1,
        vote_owner: identity.public_key().to_vec(),
        proposal_id: header.proposal_id,
        timestamp: now_ms,
        vote: approve,
        parent_hash: Vec::new(),
        received_hash,
        ..wire::Vote::default()
    };
    sign_vote(identity, conversation, digest, vote)
}

/// Checks a vote against its proposal: the id, the hash over the conversation and the
/// proposal digest, the signature and the link to the owner's vote. Returns the voter.
pub fn verify(
    conversation: &str,
    digest: &Digest,
    header: &wire::Proposal,
    vote: &wire::Vote,
) -> Result<MemberId, BallotError> {
    verify_with(
        conversation,
        digest,
        header,
        vote,
        &CheckedSignatures::default(),
    )
}

/// [`verify`], with signatures a batch proved taken as checked.
pub(crate) fn verify_with(
    conversation: &str,
    digest: &Digest,
    header: &wire::Proposal,
    vote: &wire::Vote,
    checked: &CheckedSignatures,
) -> Result<MemberId, BallotError> {
    if vote.proposal_id != header.proposal_id {
        return Err(BallotError::Vote("vote is for another proposal"));
    }
    verify_signed(conversation, digest, vote, checked)?;
    let first = header
        .votes
        .first()
        .ok_or_else(|| BallotError::Malformed("no owner vote".into()))?;
    if vote.vote_hash == first.vote_hash {
        if !vote.received_hash.is_empty() || !vote.parent_hash.is_empty() {
            return Err(BallotError::Vote("the owner's vote links to nothing"));
        }
    } else if vote.received_hash != wire::vote_digest(first).to_vec() {
        return Err(BallotError::Vote("vote does not link to the owner's vote"));
    }
    Ok(MemberId::from_public_key(&vote.vote_owner))
}

/// Checks that `vote` is signed by its owner over its fields and the proposal `digest`
/// (which a vote can be checked against before its proposal has arrived), taking signatures
/// a batch proved (`checked`) as checked. Returns the voter. The signature rule is the one of
/// every vote check (`mls::checked`).
pub fn verify_signed(
    conversation: &str,
    digest: &Digest,
    vote: &wire::Vote,
    checked: &CheckedSignatures,
) -> Result<MemberId, BallotError> {
    check_hash(conversation, digest, vote)?;
    if !checked.verify(&vote.vote_owner, &vote.vote_hash, &vote.signature) {
        return Err(BallotError::Vote("vote signature does not verify"));
    }
    Ok(MemberId::from_public_key(&vote.vote_owner))
}

/// Checks that `vote`'s hash is the one of its fields and the proposal `digest`: what a
/// signature check starts with, and all a vote that can count for nothing needs (a hash,
/// not a signature).
pub fn check_hash(
    conversation: &str,
    digest: &Digest,
    vote: &wire::Vote,
) -> Result<(), BallotError> {
    if wire::vote_hash(conversation, digest, vote).as_slice() != vote.vote_hash.as_slice() {
        return Err(BallotError::Vote("vote hash does not match its fields"));
    }
    Ok(())
}

/// Checks a proof of equivocation on the proposal: two verified votes of one voter with
/// opposite values. Returns the voter.
pub fn verify_proof(
    conversation: &str,
    digest: &Digest,
    header: &wire::Proposal,
    proof: &wire::EquivocationProof,
) -> Result<MemberId, BallotError> {
    let (Some(a), Some(b)) = (&proof.first, &proof.second) else {
        return Err(BallotError::Vote("a proof needs two votes"));
    };
    let voter = verify(conversation, digest, header, a)?;
    if verify(conversation, digest, header, b)? != voter || a.vote == b.vote {
        return Err(BallotError::Vote("the proof's votes do not conflict"));
    }
    Ok(voter)
}

/// Checks an emergency's evidence against its target: an encoded `wire::EmergencyEvidence`
/// whose proposal is sound for this conversation and whose two votes are the target's,
/// validly signed, with opposite values. Any member can check it, whatever it saw.
pub fn verify_evidence(
    conversation: &str,
    target: &MemberId,
    evidence: &[u8],
) -> Result<(), BallotError> {
    let e = wire::decode_emergency_evidence(evidence)
        .map_err(|e| BallotError::Malformed(format!("evidence: {e}")))?;
    let (Some(proposal), Some(proof)) = (&e.proposal, &e.proof) else {
        return Err(BallotError::Malformed("evidence without a proof".into()));
    };
    let parsed = super::parse(conversation, proposal)?;
    let voter = verify_proof(conversation, &parsed.digest, &parsed.header, proof)?;
    if voter != *target {
        return Err(BallotError::Vote("the evidence is against another member"));
    }
    Ok(())
}

/// The evidence a member can carry against `voter` from the proof it holds on `ballot`.
pub(crate) fn evidence_from(header: &wire::Proposal, proof: &wire::EquivocationProof) -> Vec<u8> {
    wire::encode(&wire::EmergencyEvidence {
        proposal: Some(header.clone()),
        proof: Some(proof.clone()),
    })
}
