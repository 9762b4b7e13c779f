//! The `validate_*` checks of the hashgraph-like consensus messages: proposals, their
//! payloads and votes. Sizes and shapes only: signatures and tallies are the engine's.

use super::error::WireError;
use super::fields::{bad, check_max, decode_bounded, exact, hash_or_empty, non_empty};
use super::limits::*;
use super::messages::{
    EmergencyEvidence, EquivocationProof, Proposal, ProposalPayload, Vote, proposal_payload::Action,
};
use super::scan;

/// Decodes and validates a [`ProposalPayload`] (the bytes of `Proposal::payload`).
pub fn decode_proposal_payload(bytes: &[u8]) -> Result<ProposalPayload, WireError> {
    let payload: ProposalPayload = decode_bounded(
        "proposal_payload",
        bytes,
        MAX_PROPOSAL_PAYLOAD_BYTES,
        Some(&scan::PROPOSAL_PAYLOAD),
    )?;
    validate_proposal_payload(&payload)?;
    Ok(payload)
}

/// Decodes and validates an [`EmergencyEvidence`] (the bytes of `EmergencyRemoval::evidence`).
pub fn decode_emergency_evidence(bytes: &[u8]) -> Result<EmergencyEvidence, WireError> {
    let e: EmergencyEvidence =
        decode_bounded("emergency_evidence", bytes, MAX_EVIDENCE_BYTES, None)?;
    validate_emergency_evidence(&e)?;
    Ok(e)
}

/// Checks an [`EmergencyEvidence`]: both parts present, each well formed.
pub fn validate_emergency_evidence(e: &EmergencyEvidence) -> Result<(), WireError> {
    match (&e.proposal, &e.proof) {
        (Some(p), Some(proof)) => {
            validate_proposal(p)?;
            validate_proof(proof)
        }
        _ => Err(bad(
            "emergency_evidence",
            "a proposal and a proof are needed",
        )),
    }
}

/// Checks an [`EquivocationProof`]: both votes present and well-formed.
pub fn validate_proof(p: &EquivocationProof) -> Result<(), WireError> {
    for v in [&p.first, &p.second] {
        match v {
            Some(v) => validate_vote(v)?,
            None => return Err(bad("equivocation_proof.vote", "missing")),
        }
    }
    Ok(())
}

/// Checks a [`Proposal`], its payload (decoded with [`decode_proposal_payload`]) and its votes.
pub fn validate_proposal(p: &Proposal) -> Result<(), WireError> {
    check_max("proposal.name", p.name.len(), MAX_PROPOSAL_NAME_BYTES)?;
    check_max(
        "proposal.payload",
        p.payload.len(),
        MAX_PROPOSAL_PAYLOAD_BYTES,
    )?;
    decode_proposal_payload(&p.payload)?;
    exact(
        "proposal.proposal_owner",
        &p.proposal_owner,
        PUBLIC_KEY_BYTES,
    )?;
    if p.expected_voters_count == 0 || p.expected_voters_count as usize > MAX_MEMBERS {
        return Err(bad(
            "proposal.expected_voters_count",
            format!("must be 1 to {MAX_MEMBERS}"),
        ));
    }
    check_max("proposal.votes", p.votes.len(), MAX_VOTES_PER_PROPOSAL)?;
    p.votes.iter().try_for_each(validate_vote)
}

/// Checks a [`Vote`]: 32-byte owner key and `vote_hash`, 64-byte signature, and 32-byte or
/// empty `parent_hash` / `received_hash`.
pub fn validate_vote(v: &Vote) -> Result<(), WireError> {
    exact("vote.vote_owner", &v.vote_owner, PUBLIC_KEY_BYTES)?;
    hash_or_empty("vote.parent_hash", &v.parent_hash)?;
    hash_or_empty("vote.received_hash", &v.received_hash)?;
    exact("vote.vote_hash", &v.vote_hash, HASH_BYTES)?;
    exact("vote.signature", &v.signature, SIGNATURE_BYTES)
}

/// Checks a [`ProposalPayload`]: an action present, with well-sized fields.
pub fn validate_proposal_payload(p: &ProposalPayload) -> Result<(), WireError> {
    match &p.action {
        None => Err(bad("proposal_payload.action", "missing or unknown action")),
        Some(Action::Add(add)) => {
            non_empty("add_member.key_package", &add.key_package)?;
            check_max(
                "add_member.key_package",
                add.key_package.len(),
                MAX_KEY_PACKAGE_BYTES,
            )?;
            exact("add_member.member_id", &add.member_id, MEMBER_ID_BYTES)
        }
        Some(Action::Remove(remove)) => exact(
            "remove_member.member_id",
            &remove.member_id,
            MEMBER_ID_BYTES,
        ),
        Some(Action::Leave(leave)) => {
            exact("self_leave.member_id", &leave.member_id, MEMBER_ID_BYTES)
        }
        Some(Action::Emergency(emergency)) => {
            exact(
                "emergency_removal.member_id",
                &emergency.member_id,
                MEMBER_ID_BYTES,
            )?;
            check_max(
                "emergency_removal.reason",
                emergency.reason.len(),
                MAX_REASON_BYTES,
            )?;
            check_max(
                "emergency_removal.evidence",
                emergency.evidence.len(),
                MAX_EVIDENCE_BYTES,
            )
        }
    }
}
