//! Sample messages of every wire type, filled with values the decoders accept: the wire
//! tests' fixtures and the fuzz targets' seeds (feature `samples`). `seed` arguments vary the
//! contents.

use super::envelope::*;
use super::messages::*;
use super::{Sealed, SealedPayload, SignedVote};
use super::{encode, group_payload::Content, proposal_payload::Action};

/// A valid vote; `seed` varies the contents.
pub fn vote(seed: u8) -> Vote {
    Vote {
        vote_id: u32::from(seed) + 1,
        vote_owner: vec![seed; 32],
        proposal_id: 42,
        timestamp: 1_700_000_000_000 + u64::from(seed),
        vote: seed.is_multiple_of(2),
        parent_hash: vec![],
        received_hash: vec![seed.wrapping_add(1); 32],
        vote_hash: vec![seed.wrapping_add(2); 32],
        signature: vec![seed.wrapping_add(3); 64],
    }
}

/// One valid payload per action kind, chosen by `i % 4`.
pub fn action(i: u8) -> Action {
    match i % 4 {
        0 => Action::Add(AddMember {
            key_package: vec![0xab; 300],
            member_id: vec![i; 20],
        }),
        1 => Action::Remove(RemoveMember {
            member_id: vec![i; 20],
        }),
        2 => Action::Leave(SelfLeave {
            member_id: vec![i; 20],
        }),
        _ => Action::Emergency(EmergencyRemoval {
            member_id: vec![i; 20],
            reason: "score below threshold".into(),
            evidence: vec![7; 10],
        }),
    }
}

/// A valid proposal with two votes.
pub fn proposal(seed: u8) -> Proposal {
    Proposal {
        name: format!("proposal {seed}"),
        payload: encode(&ProposalPayload::new(5, action(seed))),
        proposal_id: 42,
        proposal_owner: vec![seed; 32],
        votes: vec![vote(seed), vote(seed.wrapping_add(1))],
        expected_voters_count: 3,
        round: 1,
        timestamp: 1_700_000_000_000,
        expiration_timestamp: 1_700_000_060_000,
        liveness_criteria_yes: true,
    }
}

pub fn settings() -> SyncSettings {
    SyncSettings {
        steward_list_min: 3,
        steward_list_max: 5,
        pending_join_timeout_ms: 60_000,
        commit_inactivity_ms: 30_000,
        recovery_inactivity_ms: 10_000,
        freeze_window_ms: 5_000,
        vote_timeout_ms: 20_000,
        auto_vote_delay_ms: Some(2_000),
        default_peer_score: 100,
        removal_threshold: -50,
        score_commit_reward: 5,
        score_missed_commit_penalty: -20,
        score_invalid_candidate_penalty: -30,
        score_rejected_emergency_penalty: -10,
        score_emergency_reward: 3,
        max_commit_proposals: 50,
        commit_delay_ms: 100,
        liveness_criteria_yes: true,
        max_clock_skew_ms: 30_000,
    }
}

pub fn sync() -> ConversationSync {
    ConversationSync {
        settings: Some(settings()),
        stewards: vec![vec![1; 20], vec![2; 20]],
        scores: vec![
            PeerScore {
                member_id: vec![1; 20],
                score: 100,
            },
            PeerScore {
                member_id: vec![2; 20],
                score: -7,
            },
        ],
        steward_base_epoch: 8,
        certified: Some(certified()),
        open_proposals: vec![vec![3; 32]],
    }
}

pub fn resolution(seed: u8) -> Resolution {
    let mut proposal = proposal(seed);
    let votes = proposal.votes.split_off(1);
    Resolution {
        proposal: Some(proposal),
        approved: seed.is_multiple_of(2),
        at_expiry: seed.is_multiple_of(3),
        dropped: false,
        votes,
        proofs: vec![EquivocationProof {
            first: Some(vote(seed)),
            second: Some(vote(seed.wrapping_add(7))),
        }],
    }
}

pub fn candidate() -> Candidate {
    Candidate {
        epoch: 8,
        round: 1,
        proposer: vec![4; 20],
        commit: vec![0xcc; 500],
        welcome: vec![0x77; 300].into(),
        resolutions: (0..5).map(resolution).collect(),
        pol: None,
    }
}

pub fn signatures(n: u8) -> Vec<RoundSignature> {
    (0..n)
        .map(|i| RoundSignature {
            voter_key: vec![i; 32],
            signature: vec![i.wrapping_add(1); 64],
        })
        .collect()
}

pub fn polka() -> Polka {
    Polka {
        epoch: 8,
        round: 0,
        digest: vec![0xdd; 32],
        signatures: signatures(3),
    }
}

pub fn round_vote() -> RoundVote {
    RoundVote {
        epoch: 8,
        round: 2,
        digest: vec![0xdd; 32],
        voter_key: vec![3; 32],
        signature: vec![4; 64],
    }
}

pub fn certified() -> CertifiedCommit {
    CertifiedCommit {
        candidate: Some(candidate()),
        round: 1,
        signatures: signatures(4),
    }
}

pub fn new_round() -> NewRound {
    NewRound {
        epoch: 8,
        round: 3,
        lock: Some(polka()),
        locked: Some(Candidate {
            pol: Some(polka()),
            ..candidate()
        }),
    }
}

pub fn chat() -> Chat {
    Chat {
        message_id: vec![6; 16],
        body: b"hello, group".to_vec(),
        sent_at_ms: 1_700_000_000_123,
    }
}

/// One valid group payload per content kind.
pub fn group_payloads() -> Vec<GroupPayload> {
    vec![
        GroupPayload::new(Content::Chat(chat())),
        GroupPayload::new(Content::Proposal(proposal(1))),
        GroupPayload::new(Content::Vote(vote(4))),
        GroupPayload::new(Content::Candidate(candidate())),
        GroupPayload::new(Content::Sync(sync())),
        GroupPayload::new(Content::Votes(VoteBundle {
            votes: (0..4).map(vote).collect(),
        })),
        GroupPayload::new(Content::Prevote(round_vote())),
        GroupPayload::new(Content::Precommit(RoundVote {
            digest: Vec::new(),
            ..round_vote()
        })),
        GroupPayload::new(Content::Polka(polka())),
        GroupPayload::new(Content::Certified(certified())),
        GroupPayload::new(Content::NewRound(new_round())),
        GroupPayload::new(Content::NewRound(NewRound {
            epoch: 1,
            round: 1,
            lock: None,
            locked: None,
        })),
        GroupPayload::new(Content::Proof(EquivocationProof {
            first: Some(vote(1)),
            second: Some(vote(2)),
        })),
    ]
}

pub fn join_request() -> JoinRequest {
    JoinRequest {
        key_package: vec![0xab; 400],
        requested_at_ms: 1_700_000_000_000,
    }
}

pub fn welcome() -> WelcomePacket {
    WelcomePacket {
        welcome: vec![0x77; 900].into(),
        sync: encode(&sync()).into(),
        joiners: vec![vec![9; 20], vec![10; 20]],
        commit: vec![0xcc; 500].into(),
    }
}

pub fn envelope() -> Envelope {
    Envelope::new(
        "conversation-1",
        [3u8; 20],
        PacketKind::Welcome,
        encode(&welcome()),
    )
}

/// A catch-up request with well-shaped key and signature.
pub fn catch_up() -> CatchUp {
    CatchUp {
        epoch: 8,
        gone: false,
        oldest: 0,
        key: vec![5; 32],
        signature: vec![6; 64],
    }
}

/// One envelope per packet kind.
pub fn envelopes() -> Vec<Envelope> {
    vec![
        envelope(),
        Envelope::new(
            "conversation-1",
            [4u8; 20],
            PacketKind::JoinRequest,
            encode(&join_request()),
        ),
        Envelope::new("conversation-1", [5u8; 20], PacketKind::Group, vec![1; 64]),
        Envelope::new(
            "conversation-1",
            [6u8; 20],
            PacketKind::CatchUp,
            encode(&catch_up()),
        ),
        Envelope::new(
            "conversation-1",
            [7u8; 20],
            PacketKind::Sealed,
            encode(&sealed()),
        ),
    ]
}

/// A vote with its proposal's digest.
pub fn signed_vote() -> SignedVote {
    SignedVote {
        proposal_digest: vec![0xab; 32],
        vote: Some(vote(4)),
    }
}

/// One sealed payload of each content.
pub fn sealed_payloads() -> Vec<SealedPayload> {
    use crate::sealed_payload::Content;
    vec![
        SealedPayload::new(Content::Vote(signed_vote())),
        SealedPayload::new(Content::Prevote(round_vote())),
        SealedPayload::new(Content::Precommit(round_vote())),
    ]
}

/// A sealed body (its ciphertext is random bytes: the wire does not decrypt).
pub fn sealed() -> Sealed {
    Sealed {
        epoch: 8,
        nonce: vec![9; 12],
        ciphertext: vec![0x5a; 120],
    }
}

/// A valid emergency evidence: a proposal and two opposite votes on it.
pub fn emergency_evidence() -> EmergencyEvidence {
    let mut second = vote(1);
    second.vote = !second.vote;
    EmergencyEvidence {
        proposal: Some(proposal(1)),
        proof: Some(EquivocationProof {
            first: Some(vote(1)),
            second: Some(second),
        }),
    }
}

/// Encodings of every sample message (seeds for any decoder).
pub fn all_encoded() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = envelopes().iter().map(encode).collect();
    v.extend(group_payloads().iter().map(encode));
    v.push(encode(&join_request()));
    v.push(encode(&welcome()));
    v.push(encode(&sync()));
    v.push(encode(&catch_up()));
    v.push(encode(&emergency_evidence()));
    v.extend(sealed_payloads().iter().map(encode));
    v.extend((0..4).map(|i| encode(&ProposalPayload::new(1, action(i)))));
    v
}
