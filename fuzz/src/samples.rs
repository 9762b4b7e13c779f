//! Valid sample messages of every wire type (the seeds of the decoder targets), filled with
//! values that pass the decoders' checks.

use witan::wire::{
    self, AddMember, Chat, CommitCandidate, ConversationSync, EmergencyRemoval, Envelope,
    GroupPayload, JoinRequest, PacketKind, PeerScore, Proposal, ProposalPayload, RemoveMember,
    SelfLeave, StewardElection, SyncSettings, Vote, VoteBundle, WelcomePacket,
    group_payload::Content, proposal_payload::Action,
};

/// A vote with well-shaped fields; `seed` varies the contents.
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

/// One action per kind, chosen by `i % 5`.
pub fn action(i: u8) -> Action {
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

/// A proposal with two votes.
pub fn proposal(seed: u8) -> Proposal {
    Proposal {
        name: format!("proposal {seed}"),
        payload: wire::encode(&ProposalPayload::new(5, action(seed))),
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

/// Conversation sync with every field set.
pub fn sync() -> ConversationSync {
    ConversationSync {
        settings: Some(SyncSettings {
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
        }),
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

/// One group payload per content kind.
pub fn group_payloads() -> Vec<GroupPayload> {
    vec![
        GroupPayload::new(Content::Chat(Chat {
            message_id: vec![6; 16],
            body: b"hello, group".to_vec(),
            sent_at_ms: 1_700_000_000_123,
        })),
        GroupPayload::new(Content::Proposal(proposal(1))),
        GroupPayload::new(Content::Vote(vote(4))),
        GroupPayload::new(Content::Candidate(CommitCandidate {
            epoch: 8,
            retry_round: 0,
            committer: vec![4; 20],
            commit: vec![0xcc; 200],
            proposals: (0..3).map(proposal).collect(),
        })),
        GroupPayload::new(Content::Sync(sync())),
        GroupPayload::new(Content::Votes(VoteBundle {
            votes: (0..4).map(vote).collect(),
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
        welcome: vec![0x77; 300],
        sync: wire::encode(&sync()),
        joiners: vec![vec![9; 20], vec![10; 20]],
    }
}

/// One envelope per packet kind.
pub fn envelopes() -> Vec<Envelope> {
    vec![
        Envelope::new(
            "conversation-1",
            [3u8; 20],
            PacketKind::Welcome,
            wire::encode(&welcome()),
        ),
        Envelope::new(
            "conversation-1",
            [4u8; 20],
            PacketKind::JoinRequest,
            wire::encode(&join_request()),
        ),
        Envelope::new("conversation-1", [5u8; 20], PacketKind::Group, vec![1; 64]),
    ]
}

/// Encodings of every sample message (seeds for any decoder).
pub fn all_encoded() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = envelopes().iter().map(wire::encode).collect();
    v.extend(group_payloads().iter().map(wire::encode));
    v.push(wire::encode(&join_request()));
    v.push(wire::encode(&welcome()));
    v.push(wire::encode(&sync()));
    v.extend((0..5).map(|i| wire::encode(&ProposalPayload::new(1, action(i)))));
    v
}
