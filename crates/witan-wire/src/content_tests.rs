//! Tests of [`super`]: the rules for group payload contents, checked recursively (chats,
//! votes, proposals and their payloads, commit candidates, syncs, vote bundles).

use super::*;
use crate::decode_proposal_payload;
use crate::encode;
use crate::messages::*;
use crate::proposal_payload::Action;
use crate::samples;
use crate::testutil::*;

fn group_err(content: Content) -> WireError {
    decode_group_payload(&encode(&GroupPayload::new(content))).unwrap_err()
}

fn proposal_err(p: Proposal) -> &'static str {
    field_of(group_err(Content::Proposal(p)))
}

fn vote_err(v: Vote) -> &'static str {
    field_of(group_err(Content::Vote(v)))
}

fn payload_err(action: Action) -> &'static str {
    field_of(decode_proposal_payload(&encode(&ProposalPayload::new(1, action))).unwrap_err())
}

#[test]
fn group_payload_needs_content_and_chat_rules_hold() {
    let err = decode_group_payload(&encode(&GroupPayload::default())).unwrap_err();
    assert_eq!(field_of(err), "group_payload.content");
    // An unknown content tag (13) decodes to no content.
    let err = decode_group_payload(&[0x6a, 0x00]).unwrap_err();
    assert_eq!(field_of(err), "group_payload.content");

    for message_id in [vec![], vec![1; 15], vec![1; 17]] {
        let chat = Chat {
            message_id,
            ..samples::chat()
        };
        assert_eq!(field_of(group_err(Content::Chat(chat))), "chat.message_id");
    }
    let chat = Chat {
        body: vec![0; MAX_CHAT_BODY_BYTES + 1],
        ..samples::chat()
    };
    assert_eq!(field_of(group_err(Content::Chat(chat))), "chat.body");
    let chat = Chat {
        body: vec![0; MAX_CHAT_BODY_BYTES],
        ..samples::chat()
    };
    validate_chat(&chat).unwrap();
}

#[test]
fn vote_field_lengths_are_enforced() {
    let v = |f: fn(&mut Vote)| {
        let mut v = samples::vote(1);
        f(&mut v);
        v
    };
    assert_eq!(
        vote_err(v(|v| v.vote_owner = vec![1; 31])),
        "vote.vote_owner"
    );
    assert_eq!(
        vote_err(v(|v| v.vote_owner = vec![1; 33])),
        "vote.vote_owner"
    );
    assert_eq!(
        vote_err(v(|v| v.parent_hash = vec![1; 31])),
        "vote.parent_hash"
    );
    assert_eq!(
        vote_err(v(|v| v.received_hash = vec![1; 33])),
        "vote.received_hash"
    );
    assert_eq!(vote_err(v(|v| v.vote_hash = vec![])), "vote.vote_hash");
    assert_eq!(vote_err(v(|v| v.vote_hash = vec![1; 20])), "vote.vote_hash");
    assert_eq!(vote_err(v(|v| v.signature = vec![1; 63])), "vote.signature");
    assert_eq!(vote_err(v(|v| v.signature = vec![1; 65])), "vote.signature");
    // Empty or 32-byte chain hashes are fine.
    validate_vote(&v(|v| v.parent_hash = vec![1; 32])).unwrap();
    validate_vote(&v(|v| v.received_hash = vec![])).unwrap();
}

#[test]
fn proposal_rules_are_enforced_recursively() {
    let p = |f: fn(&mut Proposal)| {
        let mut p = samples::proposal(1);
        f(&mut p);
        p
    };
    assert_eq!(
        proposal_err(p(|p| p.name = "n".repeat(257))),
        "proposal.name"
    );
    assert_eq!(
        proposal_err(p(|p| p.proposal_owner = vec![1; 20])),
        "proposal.proposal_owner"
    );
    assert_eq!(
        proposal_err(p(|p| p.payload = vec![0; MAX_PROPOSAL_PAYLOAD_BYTES + 1])),
        "proposal.payload"
    );
    // The payload must itself be a valid ProposalPayload.
    assert_eq!(
        proposal_err(p(|p| p.payload = vec![])),
        "proposal_payload.action"
    );
    assert!(matches!(
        group_err(Content::Proposal(p(|p| p.payload = vec![0x0a, 0x05]))),
        WireError::Malformed(_)
    ));
    // A bad vote inside the proposal is found: by the pre-scan when shorter than any valid
    // vote, by validation otherwise.
    assert_eq!(
        proposal_err(p(|p| p.votes[1].signature.clear())),
        "proposal.votes"
    );
    assert_eq!(
        proposal_err(p(|p| p.votes[1].signature.push(0))),
        "vote.signature"
    );
    let too_many = p(|p| p.votes = vec![samples::vote(0); MAX_VOTES_PER_PROPOSAL + 1]);
    assert_eq!(proposal_err(too_many), "proposal.votes");
    validate_proposal(&p(|p| {
        p.votes = vec![samples::vote(0); MAX_VOTES_PER_PROPOSAL]
    }))
    .unwrap();
}

#[test]
fn proposal_payload_rules_are_enforced() {
    let id = |n: usize| vec![1u8; n];
    let err = decode_proposal_payload(&encode(&ProposalPayload {
        epoch: 1,
        action: None,
    }));
    assert_eq!(field_of(err.unwrap_err()), "proposal_payload.action");
    let add = |key_package: Vec<u8>, member_id: Vec<u8>| {
        Action::Add(AddMember {
            key_package,
            member_id,
        })
    };
    assert_eq!(payload_err(add(vec![], id(20))), "add_member.key_package");
    assert_eq!(
        payload_err(add(vec![1; MAX_KEY_PACKAGE_BYTES + 1], id(20))),
        "add_member.key_package"
    );
    assert_eq!(
        payload_err(add(vec![1; 10], id(21))),
        "add_member.member_id"
    );
    assert_eq!(
        payload_err(Action::Remove(RemoveMember { member_id: id(19) })),
        "remove_member.member_id"
    );
    assert_eq!(
        payload_err(Action::Leave(SelfLeave { member_id: id(0) })),
        "self_leave.member_id"
    );
    let emergency = |member_id, reason: String, evidence| {
        Action::Emergency(EmergencyRemoval {
            member_id,
            reason,
            evidence,
        })
    };
    assert_eq!(
        payload_err(emergency(id(2), "r".into(), vec![])),
        "emergency_removal.member_id"
    );
    assert_eq!(
        payload_err(emergency(id(20), "r".repeat(MAX_REASON_BYTES + 1), vec![])),
        "emergency_removal.reason"
    );
    assert_eq!(
        payload_err(emergency(
            id(20),
            "r".into(),
            vec![0; MAX_EVIDENCE_BYTES + 1]
        )),
        "emergency_removal.evidence"
    );
}

#[test]
fn candidate_rules_are_enforced_recursively() {
    let c = |f: fn(&mut Candidate)| {
        let mut c = samples::candidate();
        f(&mut c);
        field_of(group_err(Content::Candidate(c)))
    };
    assert_eq!(c(|c| c.proposer = vec![1; 32]), "candidate.proposer");
    assert_eq!(c(|c| c.commit.clear()), "candidate.commit");
    assert_eq!(
        c(|c| c.resolutions[2].proposal = None),
        "resolution.proposal"
    );
    assert_eq!(
        c(|c| c.resolutions[2]
            .proposal
            .as_mut()
            .unwrap()
            .proposal_owner
            .clear()),
        "proposal.proposal_owner"
    );
    assert_eq!(
        c(|c| c.resolutions[1]
            .proposal
            .as_mut()
            .unwrap()
            .expected_voters_count = 0),
        "proposal.expected_voters_count"
    );
    assert_eq!(
        c(|c| c.resolutions[1]
            .proposal
            .as_mut()
            .unwrap()
            .expected_voters_count = MAX_MEMBERS as u32 + 1),
        "proposal.expected_voters_count"
    );
    assert_eq!(
        c(|c| c.resolutions[4].votes[0].vote_owner.clear()),
        "vote.vote_owner"
    );
    // A proof with one vote is shorter than any valid proof: the pre-scan refuses it.
    assert_eq!(
        c(|c| c.resolutions[0].proofs[0].second = None),
        "resolution.proofs"
    );
    assert_eq!(
        c(|c| c.resolutions[0].proposal.as_mut().unwrap().payload =
            encode(&ProposalPayload::default())),
        "proposal_payload.action"
    );
    assert_eq!(
        c(|c| c.pol = Some(Polka {
            digest: vec![1; 31],
            ..samples::polka()
        })),
        "polka.digest"
    );
    let mut many = samples::candidate();
    many.resolutions = vec![samples::resolution(1); MAX_RESOLUTIONS_PER_CANDIDATE + 1];
    assert_eq!(
        field_of(validate_candidate(&many).unwrap_err()),
        "candidate.resolutions"
    );
}

#[test]
fn round_messages_are_checked() {
    let v = |f: fn(&mut RoundVote)| {
        let mut v = samples::round_vote();
        f(&mut v);
        field_of(group_err(Content::Prevote(v)))
    };
    assert_eq!(v(|v| v.digest = vec![1; 31]), "round_vote.digest");
    assert_eq!(v(|v| v.voter_key = vec![1; 20]), "round_vote.voter_key");
    assert_eq!(
        v(|v| v.signature.pop().map(drop).unwrap()),
        "round_vote.signature"
    );
    let mut polka = samples::polka();
    polka.signatures[1].signature.push(0);
    assert_eq!(
        field_of(group_err(Content::Polka(polka))),
        "round_signature.signature"
    );
    let mut polka = samples::polka();
    polka.signatures = samples::signatures(1)
        .into_iter()
        .cycle()
        .take(MAX_ROUND_SIGNATURES + 1)
        .collect();
    assert_eq!(
        field_of(validate_polka(&polka).unwrap_err()),
        "polka.signatures"
    );
    let mut certified = samples::certified();
    certified.candidate = None;
    assert_eq!(
        field_of(group_err(Content::Certified(certified))),
        "certified_commit.candidate"
    );
    let mut certified = samples::certified();
    certified.signatures[0].voter_key.clear();
    assert_eq!(
        field_of(group_err(Content::Certified(certified))),
        "certified_commit.signatures"
    );
    let mut n = samples::new_round();
    n.locked = None;
    assert_eq!(field_of(group_err(Content::NewRound(n))), "new_round.lock");
    let proof = EquivocationProof {
        first: Some(samples::vote(1)),
        second: None,
    };
    assert_eq!(
        field_of(group_err(Content::Proof(proof))),
        "equivocation_proof.vote"
    );
}

/// The field a sample sync broken by `f` is refused for.
fn broken_sync_field(f: impl FnOnce(&mut ConversationSync)) -> &'static str {
    let mut s = samples::sync();
    f(&mut s);
    field_of(decode_conversation_sync(&encode(&s)).unwrap_err())
}

#[test]
fn a_sync_breaking_a_rule_is_refused_for_the_field_it_breaks() {
    type Break = fn(&mut ConversationSync);
    let refused: [(Break, &str); 8] = [
        (|s| s.settings = None, "conversation_sync.settings"),
        (
            |s| s.stewards.push(vec![1; 21]),
            "conversation_sync.stewards",
        ),
        (
            |s| s.stewards = vec![vec![1; 20]; MAX_STEWARDS + 1],
            "conversation_sync.stewards",
        ),
        (
            |s| s.scores[1].member_id = vec![1; 32],
            "peer_score.member_id",
        ),
        (
            |s| s.scores[0].member_id.clear(),
            "conversation_sync.scores",
        ),
        (
            |s| s.open_proposals.push(vec![1; 31]),
            "conversation_sync.open_proposals",
        ),
        (
            |s| s.open_proposals = vec![vec![1; 32]; MAX_SYNC_OPEN_PROPOSALS + 1],
            "conversation_sync.open_proposals",
        ),
        (|s| s.certified = None, "conversation_sync.certified"),
    ];
    for (break_it, field) in refused {
        assert_eq!(broken_sync_field(break_it), field);
    }
    let too_many = vec![
        PeerScore {
            member_id: vec![1; 20],
            score: 1
        };
        MAX_PEER_SCORES + 1
    ];
    assert_eq!(
        broken_sync_field(|s| s.scores = too_many),
        "conversation_sync.scores"
    );
    // The same checks apply to a sync inside a group payload.
    let mut bad = samples::sync();
    bad.settings = None;
    assert_eq!(
        field_of(group_err(Content::Sync(bad))),
        "conversation_sync.settings"
    );
}

#[test]
fn a_syncs_candidate_may_come_without_its_commit_but_not_without_its_proposer() {
    // The commit travels beside the sync, in the welcome packet; a certified commit on its
    // own may not lack it.
    let mut beside = samples::sync();
    if let Some(c) = beside.certified.as_mut().and_then(|c| c.candidate.as_mut()) {
        c.commit.clear();
    }
    assert_eq!(decode_conversation_sync(&encode(&beside)).unwrap(), beside);
    let payload = GroupPayload::new(Content::Sync(beside.clone()));
    assert!(decode_group_payload(&encode(&payload)).is_ok());
    assert_eq!(
        broken_sync_field(|s| {
            if let Some(c) = s.certified.as_mut().and_then(|c| c.candidate.as_mut()) {
                c.proposer.clear();
            }
        }),
        "candidate.proposer"
    );
    let certified = beside.certified.unwrap_or_default();
    assert_eq!(
        field_of(group_err(Content::Certified(certified))),
        "candidate.commit"
    );
}

#[test]
fn a_vote_bundle_past_its_bound_or_with_a_malformed_vote_is_refused() {
    let bundle = VoteBundle {
        votes: vec![samples::vote(1); MAX_VOTES_PER_BUNDLE + 1],
    };
    assert_eq!(
        field_of(group_err(Content::Votes(bundle))),
        "vote_bundle.votes"
    );
    let mut bundle = VoteBundle {
        votes: vec![samples::vote(1); 3],
    };
    bundle.votes[2].vote_hash.pop();
    assert_eq!(
        field_of(group_err(Content::Votes(bundle))),
        "vote.vote_hash"
    );
}
