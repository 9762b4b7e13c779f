//! The steward list and its violations: a list cannot be voted in (it is derived from
//! certified state, and an election proposal is refused as malformed); members on their way
//! out lose their slots; a candidate from a member that does not lead the round costs its
//! author this member's trust; an emergency voted down costs its proposer score.

mod support;

use support::{CONV, Net, fast_settings};
use witan::protocol::steward_schedule;
use witan::protocol::{Action, Event, ProtocolError, Settings};
use witan::wire::{self, group_payload::Content};

#[test]
fn a_steward_list_cannot_be_voted_in() {
    let mut net = Net::form(7, fast_settings());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    // Node 1 proposes a list made of itself only, as wire version 1 allowed: an election
    // (action tag 5) is not an action any more.
    let mut p = net.make_proposal(
        1,
        Action::Remove {
            member: net.nodes[2].id(),
        },
    );
    let mut election = vec![0x08, 0x01, 0x2a, 22, 0x1a, 20];
    election.extend_from_slice(net.nodes[1].id().as_bytes());
    p.payload = election;
    p.name = "steward_election".into();
    let packet = net.craft(1, Content::Proposal(p));
    for i in [0, 2, 3, 4, 5, 6] {
        assert!(matches!(
            net.receive(i, &packet),
            Err(ProtocolError::Wire(_) | ProtocolError::Vote(_))
        ));
    }
    net.run_for(10_000);
    for i in [0, 2, 3, 4, 5, 6] {
        assert_eq!(net.nodes[i].conv().stewards(), conv.stewards(), "node {i}");
    }
}

#[test]
fn a_member_on_its_way_out_loses_its_slot() {
    // Small lists (2 of 5) so lists are renewed often.
    let settings = Settings {
        steward_list_min: 2,
        steward_list_max: 2,
        ..fast_settings()
    };
    let mut net = Net::form(5, settings.clone());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let eligible: Vec<_> = conv
        .members()
        .into_iter()
        .filter(|m| *m != net.nodes[4].id())
        .collect();
    // The derivation itself leaves out whoever is not a member.
    let without = steward_schedule::derive(CONV, conv.epoch(), &eligible, &settings);
    assert!(!without.contains(&net.nodes[4].id()));
    assert_eq!(without.len(), 2);
    // In the running group: node 4 asks to leave; every list afterwards omits it.
    net.act(4, |c, ctx| c.leave(ctx)).unwrap();
    net.run_for(60_000);
    for i in 0..4 {
        assert!(
            !net.nodes[i].conv().stewards().contains(&net.nodes[4].id()),
            "node {i}"
        );
        assert!(
            !net.nodes[i].conv().members().contains(&net.nodes[4].id()),
            "node {i}"
        );
    }
    net.assert_agree(&[0, 1, 2, 3]);
}

#[test]
fn a_candidate_from_a_member_that_does_not_lead_the_round_costs_its_author_trust() {
    let mut net = Net::form(7, fast_settings());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let leader = conv.leaders()[conv.commit_round().round() as usize];
    let outsider = (0..7).find(|i| net.nodes[*i].id() != leader).unwrap();
    let c = wire::Candidate {
        epoch: conv.epoch(),
        round: conv.commit_round().round(),
        proposer: net.nodes[outsider].id().as_bytes().to_vec(),
        commit: vec![1; 8],
        ..wire::Candidate::default()
    };
    let packet = net.craft(outsider, Content::Candidate(c));
    let observer = (0..7).find(|i| *i != outsider).unwrap();
    net.receive(observer, &packet).unwrap();
    let s = fast_settings();
    let score = net.nodes[observer]
        .conv()
        .scores()
        .local_score(&net.nodes[outsider].id());
    assert_eq!(
        score,
        Some(s.default_peer_score - s.score_invalid_candidate_penalty)
    );
    assert_eq!(net.nodes[observer].conv().epoch(), conv.epoch());
}

#[test]
fn an_emergency_voted_down_costs_its_proposer_score() {
    let settings = Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::form(4, settings);
    let emergency = net.make_proposal(
        1,
        Action::Emergency {
            member: net.nodes[3].id(),
            reason: "baseless".into(),
        },
    );
    let eid = emergency.proposal_id;
    let packet = net.craft(1, Content::Proposal(emergency));
    for i in [0, 2, 3] {
        net.receive(i, &packet).unwrap();
    }
    // Two NO votes decide it (n = 4: YES can no longer win); the commit makes it final.
    for i in [0, 2] {
        net.act(i, |c, ctx| c.vote(ctx, eid, false)).unwrap();
        net.deliver();
    }
    net.run_for(10_000);
    let s = fast_settings();
    for i in 0..4 {
        assert!(net.nodes[i].events.contains(&Event::ProposalResolved {
            proposal_id: eid,
            approved: false
        }));
        assert_eq!(
            net.nodes[i].conv().scores().get(&net.nodes[1].id()),
            Some(s.default_peer_score - s.score_rejected_emergency_penalty),
            "node {i}"
        );
        assert!(net.nodes[i].conv().members().contains(&net.nodes[3].id()));
    }
}
