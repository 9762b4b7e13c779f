//! Peer scoring and recovery: invalid candidates cost their author this member's trust until
//! an emergency removal takes it out; silent stewards are replaced by the other members'
//! rounds and the same work is committed; an open emergency holds this member's
//! lower-class proposals back; a member offline through several epochs catches up from its
//! backlog, or by asking when its backlog lost a commit, and is told to re-join only when
//! nobody keeps that commit any more.

mod support;

use support::{Net, fast_settings};
use witan::protocol::{Action, Event, LeaveReason, Settings, State};
use witan::wire::{self, group_payload::Content};

/// A candidate from `author`, which does not lead the current round: a removal nobody voted
/// for, with a broken commit.
fn bogus_candidate(net: &mut Net, author: usize) -> Vec<u8> {
    let conv = net.nodes[author].conv().clone();
    let victim = conv
        .members()
        .into_iter()
        .find(|m| *m != net.nodes[author].id())
        .unwrap();
    let p = net.make_proposal(author, Action::Remove { member: victim });
    let c = wire::Candidate {
        epoch: conv.epoch(),
        round: conv.commit_round().round(),
        proposer: net.nodes[author].id().as_bytes().to_vec(),
        commit: vec![1, 2, 3],
        welcome: Default::default(),
        resolutions: vec![wire::Resolution {
            proposal: Some(p),
            approved: true,
            ..wire::Resolution::default()
        }],
        pol: None,
    };
    net.craft(author, Content::Candidate(c))
}

#[test]
fn repeated_invalid_candidates_lead_to_an_emergency_removal() {
    let mut net = Net::form(7, fast_settings());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let bad_id = conv.leaders()[2];
    let bad = net.nodes.iter().position(|n| n.id() == bad_id).unwrap();
    let honest: Vec<usize> = (0..7).filter(|i| *i != bad).collect();

    let first = bogus_candidate(&mut net, bad);
    let s = fast_settings();
    for &i in &honest {
        net.receive(i, &first).unwrap();
        assert_eq!(
            net.nodes[i].conv().scores().local_score(&bad_id),
            Some(s.default_peer_score - s.score_invalid_candidate_penalty),
            "node {i} counted it against the author"
        );
        assert_eq!(
            net.nodes[i].conv().epoch(),
            conv.epoch(),
            "nothing was applied"
        );
        // Its own suspicion only: the group's table is unchanged.
        assert_eq!(
            net.nodes[i].conv().scores().get(&bad_id),
            Some(s.default_peer_score)
        );
    }
    let second = bogus_candidate(&mut net, bad);
    net.muted.insert(bad);
    for &i in &honest {
        net.receive(i, &second).unwrap();
    }
    net.run_for(60_000);
    net.assert_agree(&honest);
    let after = net.nodes[honest[0]].conv();
    assert!(
        !after.members().contains(&bad_id),
        "the offender was voted out"
    );
    assert_eq!(after.members().len(), 6);
    for &i in &honest {
        let resolved = net.nodes[i]
            .events
            .iter()
            .any(|e| matches!(e, Event::ProposalResolved { approved: true, .. }));
        assert!(resolved);
    }
    assert_eq!(net.nodes[bad].state(), State::Left);
    assert!(
        net.nodes[bad]
            .events
            .contains(&Event::Left(LeaveReason::Removed))
    );
}

/// Both stewards are silent (two of seven: within the f = 2 the group tolerates). Rounds
/// pass to the other members, who commit the approved removal; the stewards lose score and
/// their slots.
#[test]
fn silent_stewards_are_replaced_by_other_members_and_the_same_work_is_committed() {
    let settings = Settings {
        steward_list_min: 2,
        steward_list_max: 2,
        ..fast_settings()
    };
    let mut net = Net::form(7, settings);
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let stewards: Vec<usize> = (0..7)
        .filter(|i| conv.stewards().contains(&net.nodes[*i].id()))
        .collect();
    assert_eq!(stewards.len(), 2);
    let online: Vec<usize> = (0..7).filter(|i| !stewards.contains(i)).collect();
    for &s in &stewards {
        net.offline.insert(s);
        net.muted.insert(s);
    }
    let target = net.nodes[online[4]].id();
    let mut pid = 0;
    net.act(online[0], |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.run_for(120_000);
    let survivors: Vec<usize> = online[..4].to_vec();
    for &i in &survivors {
        assert!(
            net.nodes[i]
                .events
                .contains(&Event::StateChanged(State::Reelection)),
            "node {i}: a round led by a non-steward"
        );
        assert!(net.nodes[i].events.contains(&Event::ProposalResolved {
            proposal_id: pid,
            approved: true
        }));
    }
    net.assert_agree(&survivors);
    let after = net.nodes[survivors[0]].conv();
    assert!(!after.members().contains(&target));
    for &s in &stewards {
        let id = net.nodes[s].id();
        assert!(after.scores().get(&id).unwrap() < fast_settings().default_peer_score);
        assert!(
            !after.stewards().contains(&id),
            "a silent steward lost its slot"
        );
    }
}

#[test]
fn an_open_emergency_holds_lower_class_proposals_back() {
    let settings = Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::form(4, settings);
    let emergency = net.make_proposal(
        1,
        Action::Emergency {
            member: net.nodes[3].id(),
            reason: "test".into(),
            evidence: Vec::new(),
        },
    );
    let eid = emergency.proposal_id;
    let packet = net.craft(1, Content::Proposal(emergency));
    net.receive(0, &packet).unwrap();
    net.receive(2, &packet).unwrap();
    // A removal proposal made now is held back, not sent.
    let target = net.nodes[1].id();
    let mut rid = 0;
    let out = net
        .act(2, |c, ctx| {
            let (id, out) = c.propose_removal(ctx, target)?;
            rid = id;
            Ok(out)
        })
        .unwrap();
    assert!(out.outbound.is_empty());
    assert!(net.nodes[2].conv().ballots().by_id(rid).unwrap().is_held());
    // The emergency is voted down; once that is certified, the held proposal goes out.
    for i in [0, 2] {
        net.act(i, |c, ctx| c.vote(ctx, eid, false)).unwrap();
        net.deliver();
    }
    assert!(
        net.nodes[0].conv().ballots().by_id(rid).is_none(),
        "still held"
    );
    net.run_for(10_000);
    for i in 0..4 {
        assert!(
            net.nodes[i].events.contains(&Event::ProposalResolved {
                proposal_id: eid,
                approved: false
            }),
            "node {i}"
        );
    }
    let seen_by_0 = net.nodes[0].conv().ballots().by_id(rid).is_some()
        || net.nodes[0].events.iter().any(
            |e| matches!(e, Event::ProposalResolved { proposal_id, .. } if *proposal_id == rid),
        );
    assert!(
        seen_by_0,
        "the removal proposal reached the others after the emergency, with its id"
    );
}

#[test]
fn a_member_offline_through_two_epochs_catches_up_from_its_backlog() {
    let mut net = Net::new(7);
    net.create(0, fast_settings());
    for i in 1..5 {
        net.request_join(i);
    }
    net.run_for(30_000);
    net.offline.insert(4);
    for i in 5..7 {
        net.request_join(i);
        net.run_for(30_000);
    }
    let epoch = net.nodes[0].conv().epoch();
    assert!(
        epoch >= net.nodes[4].conv().epoch() + 2,
        "the group moved on by two epochs"
    );
    net.send(1, b"while you were away");
    net.deliver();
    net.reconnect(4);
    net.run_for(10_000);
    net.assert_agree(&[0, 1, 2, 3, 4, 5, 6]);
    assert!(
        net.nodes[4]
            .history
            .iter()
            .any(|m| m.body == b"while you were away")
    );
}

#[test]
fn a_member_that_lost_a_commit_asks_for_it_and_catches_up() {
    let mut net = Net::new(6);
    net.create(0, fast_settings());
    for i in 1..5 {
        net.request_join(i);
    }
    net.run_for(30_000);
    // Node 4 misses the next commit entirely (its backlog is lost), then sees later traffic.
    net.offline.insert(4);
    net.request_join(5);
    net.run_for(30_000);
    net.mailbox.remove(&4);
    net.offline.remove(&4);
    net.send(1, b"newer epoch");
    net.deliver();
    assert!(!net.nodes[4].buffered.is_empty(), "future traffic is kept");
    net.run_for(30_000);
    assert!(!net.nodes[4].events.contains(&Event::RejoinRequired));
    net.assert_agree(&[0, 1, 2, 3, 4, 5]);
    assert!(
        net.nodes[4]
            .history
            .iter()
            .any(|m| m.body == b"newer epoch")
    );
}

#[test]
fn a_member_whose_lost_commit_nobody_keeps_is_told_to_rejoin() {
    let settings = Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::form(5, settings);
    net.offline.insert(4);
    // More epochs than anyone keeps certified commits for, each a rejected removal.
    let target = net.nodes[3].id();
    for _ in 0..10 {
        let mut pid = 0;
        net.act(0, |c, ctx| {
            let (id, out) = c.propose_removal(ctx, target)?;
            pid = id;
            Ok(out)
        })
        .unwrap();
        net.deliver();
        for i in [1, 2, 3] {
            net.act(i, |c, ctx| c.vote(ctx, pid, false)).unwrap();
        }
        net.run_for(10_000);
    }
    assert!(net.nodes[0].conv().epoch() >= net.nodes[4].conv().epoch() + 10);
    net.mailbox.remove(&4);
    net.offline.remove(&4);
    net.send(1, b"far ahead");
    net.deliver();
    net.run_for(120_000);
    assert!(net.nodes[4].events.contains(&Event::RejoinRequired));
    assert!(net.nodes[4].conv().rejoin_required());
    net.assert_agree(&[0, 1, 2, 3]);
}

/// In a group of two (or three) one member answers a catch-up request: the first of the
/// leader order. When that member is the one asking, the other must answer in its place.
#[test]
fn in_a_group_of_two_a_member_first_in_the_order_that_lost_a_commit_is_answered() {
    let mut asked_first_in_order = false;
    for away in [0usize, 1] {
        let other = 1 - away;
        let mut net = Net::form(3, fast_settings());
        let before = net.nodes[other].conv().epoch();
        // Member 2 is removed while `away` is offline; its backlog is then lost.
        net.offline.insert(away);
        let leaving = net.nodes[2].id();
        net.act(other, |c, ctx| Ok(c.propose_removal(ctx, leaving)?.1))
            .unwrap();
        net.run_for(30_000);
        let conv = net.nodes[other].conv().clone();
        assert_eq!(
            conv.epoch(),
            before + 1,
            "the removal committed without {away}"
        );
        let mut members = conv.members();
        members.sort();
        assert_eq!(members, net.ids(&[0, 1]));
        asked_first_in_order |= conv.leaders().first() == Some(&net.nodes[away].id());
        net.mailbox.remove(&away);
        net.offline.remove(&away);
        net.send(other, b"newer epoch");
        net.deliver();
        net.run_for(60_000);
        assert!(!net.nodes[away].events.contains(&Event::RejoinRequired));
        net.assert_agree(&[0, 1]);
    }
    assert!(
        asked_first_in_order,
        "one of the two runs has the member first in the order ask"
    );
}
