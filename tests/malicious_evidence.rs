//! A malicious member against what the group derives from evidence (issue #17, the
//! protocol audit): an emergency removal backed by a proof of equivocation, or by a forged
//! one, and a joiner that would compute the leader order of the epoch it joins in to grind
//! keys for a rank. Packets are crafted with the crate's public `wire`, `protocol` and `mls`
//! modules; `docs/security.md` maps the audit's findings to these tests.

#[path = "support/attack.rs"]
mod attack;
mod support;

use attack::*;
use support::{CONV, Net, fast_settings};
use witan::protocol::Action;
use witan::protocol::ballot_box::new_vote;
use witan::wire::{self, group_payload::Content};

/// Audit M10, D-15: an emergency removal carries evidence any member can check — a proposal
/// and its target's two signed votes on it with opposite values. Members that never saw the
/// equivocation (their scores of the target are untouched) check the proof and approve; the
/// same emergency with a forged proof is voted down and removes nobody.
#[test]
fn an_emergency_with_a_proof_of_equivocation_removes_its_target_and_a_forged_one_does_not() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(5_000);
    let target = 3;
    let target_id = net.nodes[target].id();
    // A proposal only the target saw, and its two conflicting votes on it.
    let seen = net.make_proposal(
        0,
        Action::Leave {
            member: net.nodes[0].id(),
        },
    );
    let parsed = witan::protocol::ballot_box::parse(CONV, &seen).unwrap();
    let vote = |approve| {
        let id = &net.nodes[target].identity;
        new_vote(id, CONV, &parsed.digest, &parsed.header, approve, net.now)
    };
    let proof = wire::EquivocationProof {
        first: Some(vote(true)),
        second: Some(vote(false)),
    };
    let mut forged = proof.clone();
    forged.second.as_mut().unwrap().signature[0] ^= 1;
    let evidence = |proof: wire::EquivocationProof| {
        wire::encode(&wire::EmergencyEvidence {
            proposal: Some(parsed.header.clone()),
            proof: Some(proof),
        })
    };
    let emergency = |net: &mut Net, evidence: Vec<u8>| {
        let p = net.make_proposal(
            1,
            Action::Emergency {
                member: target_id,
                reason: "voted both ways".into(),
                evidence,
            },
        );
        let packet = net.craft(1, Content::Proposal(p.clone()));
        for i in [0, 2, 3] {
            net.receive(i, &packet).unwrap();
        }
        net.run_for(20_000);
        p.proposal_id
    };
    let fake = emergency(&mut net, evidence(forged));
    for i in 0..3 {
        assert_eq!(resolved(&net, i, fake), Some(false), "node {i}");
        assert!(is_member(&net, i, target), "node {i}");
    }
    net.now += 1;
    let real = emergency(&mut net, evidence(proof));
    for i in 0..3 {
        assert_eq!(resolved(&net, i, real), Some(true), "node {i}");
        assert!(!is_member(&net, i, target), "node {i}");
    }
    net.assert_agree(&[0, 1, 2]);
}

/// Audit M7, D-21: a joiner that knows the conversation id, the epoch it will be added in and
/// the member set could compute the leader order of that epoch in advance and grind keys
/// that rank first. The order must depend on something nobody outside can choose or know in
/// advance (the certified commit that opens the epoch), so that prediction fails.
#[test]
fn a_joiner_cannot_predict_the_leader_order_of_the_epoch_it_joins_in() {
    let mut net = Net::form(10, fast_settings());
    net.run_for(5_000);
    let conv = net.nodes[0].conv();
    let members = conv.members();
    let predicted = conv
        .stewards()
        .leader_order(CONV, conv.epoch(), &[], &members);
    let actual = conv.leaders().to_vec();
    let tail = |order: &[witan::mls::MemberId]| -> Vec<witan::mls::MemberId> {
        let stewards = conv.stewards().active();
        order
            .iter()
            .filter(|m| !stewards.contains(m))
            .copied()
            .collect()
    };
    assert!(tail(&actual).len() >= 5);
    assert_ne!(
        tail(&predicted),
        tail(&actual),
        "the order follows from public facts alone"
    );
}
