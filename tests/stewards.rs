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
            evidence: Vec::new(),
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

#[test]
fn another_members_value_proposed_without_its_polka_is_not_prevoted() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    let ids: Vec<_> = net.nodes.iter().map(|n| n.id()).collect();
    let order: Vec<usize> = net.nodes[0]
        .conv()
        .leaders()
        .iter()
        .map(|m| ids.iter().position(|x| x == m).unwrap())
        .collect();
    let (first, second) = (order[0], order[1]);
    let rest: Vec<usize> = (0..4).filter(|i| *i != first && *i != second).collect();
    let (c, d) = (rest[0], rest[1]);
    // The round-0 and round-1 leaders' packets are lost; c proposes removing d.
    net.muted.insert(first);
    net.muted.insert(second);
    let target = net.nodes[d].id();
    net.act(c, |conv, ctx| {
        conv.propose_removal(ctx, target).map(|(_, o)| o)
    })
    .unwrap();
    net.run_for(500);
    let value = net.nodes[first]
        .conv()
        .commit_round()
        .own()
        .cloned()
        .expect("the round-0 leader built its value");
    let prevoted = |net: &Net, from: usize, reader: usize| {
        net.in_flight_from(from, reader)
            .iter()
            .any(|m| matches!(m, Content::Prevote(_)))
    };
    // From its author, in its round, the value is prevoted.
    net.drop_in_flight();
    let own = net.craft(first, Content::Candidate(value.clone()));
    net.receive(d, &own).unwrap();
    assert!(prevoted(&net, d, first), "its author's value is prevoted");
    net.drop_in_flight();
    // c decides at the window's end and its rounds run: in a later round led by another
    // member, that leader proposes the same value as its own, without a polka.
    net.run_for(fast_settings().vote_timeout_ms + 3_000);
    let at = |net: &Net| {
        let round = net.nodes[c].conv().commit_round().round();
        (round, order[round as usize % 4])
    };
    let (mut round, mut leader) = at(&net);
    for _ in 0..200 {
        if leader != first && leader != c {
            break;
        }
        net.run_for(200);
        (round, leader) = at(&net);
    }
    assert!(round > 0 && leader != first && leader != c, "round {round}");
    net.drop_in_flight();
    let again = wire::Candidate {
        round,
        proposer: net.nodes[leader].id().as_bytes().to_vec(),
        pol: None,
        ..value
    };
    let packet = net.craft(leader, Content::Candidate(again));
    net.receive(c, &packet).unwrap();
    assert!(
        !prevoted(&net, c, leader),
        "prevoted another member's value"
    );
}
