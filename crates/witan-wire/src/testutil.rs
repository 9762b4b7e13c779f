//! Sample messages for the wire tests: every message type, filled with valid values, plus a
//! tiny xorshift generator for garbage inputs (no extra crates).

use super::messages::*;
use super::{WireError, encode, group_payload::Content, proposal_payload::Action};

/// A valid vote; `seed` varies the contents.
pub(crate) fn sample_vote(seed: u8) -> Vote {
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

/// One valid payload per action kind, chosen by `i % 5`.
pub(crate) fn sample_action(i: u8) -> Action {
    match i % 5 {
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
        3 => Action::Election(StewardElection {
            epoch: 9,
            retry_round: 1,
            stewards: vec![vec![1; 20], vec![2; 20], vec![3; 20]],
        }),
        _ => Action::Emergency(EmergencyRemoval {
            member_id: vec![i; 20],
            reason: "score below threshold".into(),
            evidence: vec![7; 10],
        }),
    }
}

/// A valid proposal with two votes.
pub(crate) fn sample_proposal(seed: u8) -> Proposal {
    Proposal {
        name: format!("proposal {seed}"),
        payload: encode(&ProposalPayload::new(5, sample_action(seed))),
        proposal_id: 42,
        proposal_owner: vec![seed; 32],
        votes: vec![sample_vote(seed), sample_vote(seed.wrapping_add(1))],
        expected_voters_count: 3,
        round: 1,
        timestamp: 1_700_000_000_000,
        expiration_timestamp: 1_700_000_060_000,
        liveness_criteria_yes: true,
    }
}

pub(crate) fn sample_settings() -> SyncSettings {
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

pub(crate) fn sample_sync() -> ConversationSync {
    ConversationSync {
        settings: Some(sample_settings()),
        stewards: vec![vec![1; 20], vec![2; 20]],
        retry_round: 2,
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
        recovering: true,
    }
}

pub(crate) fn sample_candidate() -> CommitCandidate {
    CommitCandidate {
        epoch: 8,
        retry_round: 0,
        committer: vec![4; 20],
        commit: vec![0xcc; 500],
        proposals: (0..5).map(sample_proposal).collect(),
    }
}

pub(crate) fn sample_chat() -> Chat {
    Chat {
        message_id: vec![6; 16],
        body: b"hello, group".to_vec(),
        sent_at_ms: 1_700_000_000_123,
    }
}

/// One valid group payload per content kind.
pub(crate) fn sample_group_payloads() -> Vec<GroupPayload> {
    vec![
        GroupPayload::new(Content::Chat(sample_chat())),
        GroupPayload::new(Content::Proposal(sample_proposal(1))),
        GroupPayload::new(Content::Vote(sample_vote(4))),
        GroupPayload::new(Content::Candidate(sample_candidate())),
        GroupPayload::new(Content::Sync(sample_sync())),
        GroupPayload::new(Content::Votes(VoteBundle {
            votes: (0..4).map(sample_vote).collect(),
        })),
    ]
}

pub(crate) fn sample_join_request() -> JoinRequest {
    JoinRequest {
        key_package: vec![0xab; 400],
        requested_at_ms: 1_700_000_000_000,
    }
}

pub(crate) fn sample_welcome() -> WelcomePacket {
    WelcomePacket {
        welcome: vec![0x77; 900],
        sync: encode(&sample_sync()),
        joiners: vec![vec![9; 20], vec![10; 20]],
    }
}

pub(crate) fn sample_envelope() -> Envelope {
    Envelope::new(
        "conversation-1",
        [3u8; 20],
        PacketKind::Welcome,
        encode(&sample_welcome()),
    )
}

/// The field named by a `BadField` or `TooLarge` error (panics on other errors).
pub(crate) fn field_of(err: WireError) -> &'static str {
    match err {
        WireError::BadField { field, .. } => field,
        WireError::TooLarge { what, .. } => what,
        other => panic!("expected a field error, got {other:?}"),
    }
}

/// Deterministic xorshift64 generator for garbage inputs.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
