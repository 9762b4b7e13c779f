//! The steward list: a proposed list that does not reproduce the deterministic one is voted
//! down everywhere; members on their way out are not elected; a candidate from a non-steward
//! costs its author score; an emergency voted down costs its proposer score.

mod support;

use support::{Net, fast_settings};
use witan::protocol::{Action, Event, Settings, consensus, steward_list};
use witan::wire::{self, group_payload::Content};

#[test]
fn a_biased_steward_list_is_rejected_by_everyone() {
    let mut net = Net::form(7, fast_settings());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    // Node 1 proposes a list made of itself only.
    let biased = Action::Election {
        epoch: conv.epoch,
        retry_round: conv.retry_round,
        stewards: vec![net.nodes[1].id()],
    };
    let p = consensus::new_proposal(
        &net.nodes[1].identity,
        &biased,
        conv.epoch,
        7,
        net.now,
        5_000,
        true,
    );
    let pid = p.proposal_id;
    let packet = net.craft(1, Content::Proposal(p));
    for i in [0, 2, 3, 4, 5, 6] {
        net.receive(i, &packet).unwrap();
    }
    net.run_for(10_000);
    for i in [0, 2, 3, 4, 5, 6] {
        assert!(
            net.nodes[i].events.contains(&Event::ProposalResolved {
                proposal_id: pid,
                approved: false
            }),
            "node {i}"
        );
        assert_eq!(
            net.nodes[i].conv().stewards,
            conv.stewards,
            "node {i} kept the elected list"
        );
    }
}

#[test]
fn a_member_on_its_way_out_is_not_elected() {
    // Small lists (2 of 5) so the next election happens soon after a removal is approved.
    let settings = Settings {
        steward_list_min: 2,
        steward_list_max: 2,
        ..fast_settings()
    };
    let mut net = Net::form(5, settings);
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let eligible: Vec<_> = conv
        .members
        .iter()
        .copied()
        .filter(|m| *m != net.nodes[4].id())
        .collect();
    let without = steward_list::deterministic(&conv.id, conv.epoch, 0, &eligible, 2, 2);
    let with = steward_list::deterministic(&conv.id, conv.epoch, 0, &conv.members, 2, 2);
    // The deterministic rule itself leaves out whoever is excluded from the eligible set.
    assert!(!without.contains(&net.nodes[4].id()));
    assert_eq!(with.len(), 2);
    // In the running group: node 4 asks to leave; every list elected afterwards omits it.
    net.act(4, |c, ctx| c.leave(ctx)).unwrap();
    net.run_for(60_000);
    for i in 0..4 {
        assert!(
            !net.nodes[i].conv().stewards.contains(&net.nodes[4].id()),
            "node {i}"
        );
        assert!(
            !net.nodes[i].conv().members.contains(&net.nodes[4].id()),
            "node {i}"
        );
    }
    net.assert_agree(&[0, 1, 2, 3]);
}

#[test]
fn a_candidate_from_a_non_steward_costs_its_author_score() {
    let mut net = Net::form(7, fast_settings());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let outsider = (0..7)
        .find(|i| !conv.stewards.contains(&net.nodes[*i].id()))
        .unwrap();
    let c = wire::CommitCandidate {
        epoch: conv.epoch,
        retry_round: conv.retry_round,
        committer: net.nodes[outsider].id().as_bytes().to_vec(),
        commit: vec![1; 8],
        proposals: Vec::new(),
    };
    let packet = net.craft(outsider, Content::Candidate(c));
    let observer = (0..7).find(|i| *i != outsider).unwrap();
    net.receive(observer, &packet).unwrap();
    let s = fast_settings();
    assert_eq!(
        net.nodes[observer]
            .conv()
            .local_score(&net.nodes[outsider].id()),
        Some(s.default_peer_score - s.score_invalid_candidate_penalty)
    );
    assert_eq!(net.nodes[observer].conv().epoch, conv.epoch);
}

#[test]
fn an_emergency_voted_down_costs_its_proposer_score() {
    let settings = Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::form(4, settings);
    let conv = net.nodes[1].conv().clone();
    let emergency = consensus::new_proposal(
        &net.nodes[1].identity,
        &Action::Emergency {
            member: net.nodes[3].id(),
            reason: "baseless".into(),
        },
        conv.epoch,
        4,
        net.now,
        conv.settings.vote_timeout_ms,
        false,
    );
    let eid = emergency.proposal_id;
    let packet = net.craft(1, Content::Proposal(emergency));
    for i in [0, 2, 3] {
        net.receive(i, &packet).unwrap();
    }
    // Two NO votes decide it (n = 4: YES can no longer win).
    for i in [0, 2] {
        net.act(i, |c, ctx| c.vote(ctx, eid, false)).unwrap();
        net.deliver();
    }
    let s = fast_settings();
    for i in [0, 2] {
        assert_eq!(
            net.nodes[i].conv().scores.get(&net.nodes[1].id()),
            Some(s.default_peer_score - s.score_rejected_emergency_penalty),
            "node {i}"
        );
        assert!(net.nodes[i].conv().members.contains(&net.nodes[3].id()));
    }
}
