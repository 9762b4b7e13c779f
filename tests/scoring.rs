//! Peer scoring and recovery: invalid candidates cost score until an emergency removal takes
//! the offender out; stewards that all go silent lead to a re-election that commits the same
//! approved batch; an open emergency holds lower-class governance back; a member that was
//! offline through several epochs catches up from its backlog.

mod support;

use support::{Net, fast_settings};
use witan::protocol::{Action, Event, ProtocolError, Settings, State, consensus};
use witan::wire::{self, group_payload::Content};

fn bogus_candidate(net: &mut Net, steward: usize) -> Vec<u8> {
    // References a proposal that nobody saw finalized: only its owner's vote.
    let conv = net.nodes[steward].conv().clone();
    let victim = conv
        .members
        .iter()
        .copied()
        .find(|m| *m != net.nodes[steward].id())
        .unwrap();
    let p = consensus::new_proposal(
        &net.nodes[steward].identity,
        &Action::Remove { member: victim },
        conv.epoch,
        conv.members.len() as u32,
        net.now,
        conv.settings.vote_timeout_ms,
        true,
    );
    let c = wire::CommitCandidate {
        epoch: conv.epoch,
        retry_round: conv.retry_round,
        committer: net.nodes[steward].id().as_bytes().to_vec(),
        commit: vec![1, 2, 3],
        proposals: vec![p],
    };
    net.craft(steward, Content::Candidate(c))
}

#[test]
fn repeated_invalid_candidates_lead_to_an_emergency_removal() {
    let mut net = Net::form(7, fast_settings());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let es = conv.stewards.epoch_steward(conv.epoch).unwrap();
    let bad_id = conv
        .stewards
        .active()
        .into_iter()
        .find(|s| *s != es)
        .unwrap();
    let bad = net.nodes.iter().position(|n| n.id() == bad_id).unwrap();
    let honest: Vec<usize> = (0..7).filter(|i| *i != bad).collect();

    let first = bogus_candidate(&mut net, bad);
    for &i in &honest {
        net.receive(i, &first).unwrap();
        let expected =
            fast_settings().default_peer_score - fast_settings().score_invalid_candidate_penalty;
        assert_eq!(
            net.nodes[i].conv().local_score(&bad_id),
            Some(expected),
            "node {i} penalised the author"
        );
        assert_eq!(
            net.nodes[i].conv().epoch,
            conv.epoch,
            "the candidate was rejected"
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
        !after.members.contains(&bad_id),
        "the offender was voted out"
    );
    assert_eq!(after.members.len(), 6);
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
            .contains(&Event::Left(witan::protocol::LeaveReason::Removed))
    );
}

#[test]
fn silent_stewards_lead_to_reelection_and_the_same_batch_is_committed() {
    let settings = Settings {
        steward_list_max: 3,
        ..fast_settings()
    };
    let mut net = Net::form(7, settings);
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let stewards: Vec<usize> = (0..7)
        .filter(|i| conv.stewards.contains(&net.nodes[*i].id()))
        .collect();
    assert_eq!(stewards.len(), 3);
    let online: Vec<usize> = (0..7).filter(|i| !stewards.contains(i)).collect();
    for &s in &stewards {
        net.offline.insert(s);
        net.muted.insert(s);
    }
    let target = net.nodes[online[3]].id();
    let mut pid = 0;
    net.act(online[0], |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.run_for(120_000);
    let survivors: Vec<usize> = online[..3].to_vec();
    for &i in &survivors {
        assert!(
            net.nodes[i]
                .events
                .contains(&Event::StateChanged(State::Reelection)),
            "node {i} went through a re-election"
        );
        assert!(net.nodes[i].events.contains(&Event::ProposalResolved {
            proposal_id: pid,
            approved: true
        }));
    }
    net.assert_agree(&survivors);
    let after = net.nodes[survivors[0]].conv();
    assert!(
        !after.members.contains(&target),
        "the approved removal was committed by the new list"
    );
    let es = conv.stewards.epoch_steward(conv.epoch).unwrap();
    assert!(
        after.scores.get(&es).unwrap() < fast_settings().default_peer_score,
        "the silent epoch steward was penalised"
    );
}

#[test]
fn an_open_emergency_holds_lower_class_proposals_back() {
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
            reason: "test".into(),
        },
        conv.epoch,
        4,
        net.now,
        conv.settings.vote_timeout_ms,
        false,
    );
    let eid = emergency.proposal_id;
    let packet = net.craft(1, Content::Proposal(emergency));
    net.receive(0, &packet).unwrap();
    net.receive(2, &packet).unwrap();
    // A removal proposal made now is held back, not sent.
    let target = net.nodes[1].id();
    let out = net
        .act(2, |c, ctx| c.propose_removal(ctx, target).map(|(_, o)| o))
        .unwrap();
    assert!(out.outbound.is_empty());
    assert_eq!(net.nodes[2].conv().held_back.len(), 1);
    // A lower-class proposal received during the emergency is refused.
    let other = consensus::new_proposal(
        &net.nodes[0].identity,
        &Action::Remove { member: target },
        conv.epoch,
        4,
        net.now,
        5_000,
        true,
    );
    let lower = net.craft(0, Content::Proposal(other));
    assert!(matches!(
        net.receive(2, &lower),
        Err(ProtocolError::HeldBack)
    ));
    // The emergency is voted down; the held-back proposal goes out.
    for i in [0, 2] {
        net.act(i, |c, ctx| c.vote(ctx, eid, false)).unwrap();
        net.deliver();
    }
    assert!(net.nodes[2].conv().held_back.is_empty());
    net.deliver();
    let seen_by_0 = net.nodes[0]
        .conv()
        .ballots
        .values()
        .any(|b| b.action == Action::Remove { member: target });
    assert!(
        seen_by_0,
        "the removal proposal reached the others after the emergency"
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
    let epoch = net.nodes[0].conv().epoch;
    assert!(
        epoch >= net.nodes[4].conv().epoch + 2,
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
fn a_member_that_missed_a_commit_for_good_is_told_to_rejoin() {
    let mut net = Net::new(6);
    net.create(0, fast_settings());
    for i in 1..5 {
        net.request_join(i);
    }
    net.run_for(30_000);
    // Node 4 misses the next commit entirely (no backlog), then sees later traffic.
    net.offline.insert(4);
    net.request_join(5);
    net.run_for(30_000);
    net.mailbox.remove(&4);
    net.offline.remove(&4);
    net.send(1, b"newer epoch");
    net.deliver();
    assert!(!net.nodes[4].buffered.is_empty(), "future traffic is kept");
    assert!(!net.nodes[4].events.contains(&Event::RejoinRequired));
    net.run_for(120_000);
    assert!(net.nodes[4].events.contains(&Event::RejoinRequired));
    assert!(net.nodes[4].conv().rejoin_required);
}
