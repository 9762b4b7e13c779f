//! The `validate_*` checks of the commit round's messages (see `round`), run by
//! `decode_group_payload` on everything a payload contains and public for messages built
//! locally. Sizes and shapes only: signatures, quorums and MLS contents are the engine's.

use super::ballot_codec::{validate_proof, validate_proposal, validate_vote};
use super::error::WireError;
use super::fields::{bad, check_max, exact, non_empty};
use super::limits::*;
use super::round::{
    Candidate, CertifiedCommit, NewRound, Polka, Resolution, RoundSignature, RoundVote,
};

/// Checks a [`Candidate`]: a 20-byte proposer, a non-empty bounded commit, a bounded welcome,
/// at most [`MAX_RESOLUTIONS_PER_CANDIDATE`] well-formed resolutions, and its polka.
pub fn validate_candidate(c: &Candidate) -> Result<(), WireError> {
    non_empty("candidate.commit", &c.commit)?;
    validate_candidate_beside_commit(c)
}

/// [`validate_candidate`] except that the commit may be empty: a sync's candidate, whose
/// commit travels beside the sync in the welcome packet (`WelcomePacket::commit`).
fn validate_candidate_beside_commit(c: &Candidate) -> Result<(), WireError> {
    exact("candidate.proposer", &c.proposer, MEMBER_ID_BYTES)?;
    check_max("candidate.commit", c.commit.len(), MAX_COMMIT_BYTES)?;
    check_max("candidate.welcome", c.welcome.len(), MAX_WELCOME_BYTES)?;
    check_max(
        "candidate.resolutions",
        c.resolutions.len(),
        MAX_RESOLUTIONS_PER_CANDIDATE,
    )?;
    c.resolutions.iter().try_for_each(validate_resolution)?;
    match &c.pol {
        Some(p) => validate_polka(p),
        None => Ok(()),
    }
}

/// Checks a [`Resolution`]: its proposal present and valid, bounded votes and proofs.
pub fn validate_resolution(r: &Resolution) -> Result<(), WireError> {
    match &r.proposal {
        Some(p) => validate_proposal(p)?,
        None => return Err(bad("resolution.proposal", "missing")),
    }
    check_max("resolution.votes", r.votes.len(), MAX_VOTES_PER_PROPOSAL)?;
    r.votes.iter().try_for_each(validate_vote)?;
    check_max(
        "resolution.proofs",
        r.proofs.len(),
        MAX_PROOFS_PER_RESOLUTION,
    )?;
    r.proofs.iter().try_for_each(validate_proof)
}

/// Checks a [`RoundVote`]: a 32-byte digest or none (nil), a 32-byte key, a 64-byte
/// signature.
pub fn validate_round_vote(v: &RoundVote) -> Result<(), WireError> {
    if !v.digest.is_empty() {
        exact("round_vote.digest", &v.digest, HASH_BYTES)?;
    }
    exact("round_vote.voter_key", &v.voter_key, PUBLIC_KEY_BYTES)?;
    exact("round_vote.signature", &v.signature, SIGNATURE_BYTES)
}

fn validate_signatures(what: &'static str, s: &[RoundSignature]) -> Result<(), WireError> {
    check_max(what, s.len(), MAX_ROUND_SIGNATURES)?;
    for sig in s {
        exact(
            "round_signature.voter_key",
            &sig.voter_key,
            PUBLIC_KEY_BYTES,
        )?;
        exact("round_signature.signature", &sig.signature, SIGNATURE_BYTES)?;
    }
    Ok(())
}

/// Checks a [`Polka`]: a 32-byte digest and well-sized signatures.
pub fn validate_polka(p: &Polka) -> Result<(), WireError> {
    exact("polka.digest", &p.digest, HASH_BYTES)?;
    validate_signatures("polka.signatures", &p.signatures)
}

/// Checks a [`CertifiedCommit`]: its candidate and well-sized signatures.
pub fn validate_certified(c: &CertifiedCommit) -> Result<(), WireError> {
    certified_with(c, validate_candidate)
}

/// [`validate_certified`] for the certified commit of a sync, whose candidate's commit may
/// travel beside the sync (the joiner puts it back before checking the certificate).
pub(crate) fn validate_synced_certified(c: &CertifiedCommit) -> Result<(), WireError> {
    certified_with(c, validate_candidate_beside_commit)
}

fn certified_with(
    c: &CertifiedCommit,
    candidate_rule: fn(&Candidate) -> Result<(), WireError>,
) -> Result<(), WireError> {
    match &c.candidate {
        Some(candidate) => candidate_rule(candidate)?,
        None => return Err(bad("certified_commit.candidate", "missing")),
    }
    validate_signatures("certified_commit.signatures", &c.signatures)
}

/// Checks a [`NewRound`]: its lock (a polka with its candidate, both or neither).
pub fn validate_new_round(n: &NewRound) -> Result<(), WireError> {
    match (&n.lock, &n.locked) {
        (Some(p), Some(c)) => {
            validate_polka(p)?;
            validate_candidate(c)
        }
        (None, None) => Ok(()),
        _ => Err(bad(
            "new_round.lock",
            "a lock needs both its polka and its candidate",
        )),
    }
}
