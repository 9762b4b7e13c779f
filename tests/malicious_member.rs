//! A malicious member (issue #17, the protocol audit): one member runs a modified client and
//! crafts packets with the crate's public `wire`, `protocol` and `mls` modules, with its own
//! keys and MLS state. Each test is named for the attack and shows what the honest members
//! make of it; `docs/security.md` maps the audit's findings to these tests. Attacks on what a
//! member stores and on joiners are in `tests/malicious_state.rs`.

#[path = "support/attack.rs"]
mod attack;
mod support;

use attack::*;
use support::{CONV, Net, fast_settings};
use witan::protocol::ballot_box::new_vote;
use witan::protocol::commit_round::{max_faulty, quorum};
use witan::protocol::{Action, BallotError, Event, ProtocolError, Settings};
use witan::wire::{self, group_payload::Content};

/// Audit C1: a leader puts in its candidate a "decided" removal whose only vote is its own,
/// claiming one voter and an epoch far ahead, with a real MLS commit that removes the victim.
#[test]
fn a_leader_carrying_a_forged_one_voter_decision_gets_no_prevote_and_removes_nobody() {
    let mut net = Net::form(4, manual(false));
    net.run_for(10_000);
    let conv = net.nodes[0].conv().clone();
    let leader = index_of(&net, conv.leaders()[conv.commit_round().round() as usize]);
    let victim = (0..4).find(|i| *i != leader).unwrap();
    let honest: Vec<usize> = (0..4).filter(|i| *i != leader).collect();
    let s = conv.settings().clone();
    let forged = crafted(
        &net,
        leader,
        &Action::Remove {
            member: net.nodes[victim].id(),
        },
        conv.epoch() + 1000,
        1,
        net.now,
        &s,
    );
    let victim_id = net.nodes[victim].id();
    let commit = removal_commit(&mut net, leader, victim_id);
    let candidate = wire::Candidate {
        epoch: conv.epoch(),
        round: conv.commit_round().round(),
        proposer: net.nodes[leader].id().as_bytes().to_vec(),
        commit,
        welcome: Default::default(),
        resolutions: vec![wire::Resolution {
            proposal: Some(forged),
            approved: true,
            ..wire::Resolution::default()
        }],
        pol: None,
    };
    let packet = net.craft(leader, Content::Candidate(candidate));
    for &i in &honest {
        let _ = net.receive(i, &packet);
        assert!(!prevoted(&net, i, leader), "node {i} prevoted the forgery");
    }
    net.run_for(60_000);
    for &i in &honest {
        assert!(is_member(&net, i, victim), "node {i}");
    }
    net.assert_agree(&honest);
}

/// Audit C2, HG-15, HG-16: a proposer chooses its own voting window (1 ms, or a year) or its
/// own silent-voter rule. The proposal is refused on receipt and changes nothing.
#[test]
fn a_proposal_with_its_own_voting_window_or_silent_voter_rule_is_refused() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let group = net.nodes[0].conv().settings().clone();
    let action = Action::Remove {
        member: net.nodes[3].id(),
    };
    let epoch = net.nodes[1].conv().epoch();
    let one_ms = Settings {
        vote_timeout_ms: 1,
        ..group.clone()
    };
    let a_year = Settings {
        vote_timeout_ms: 365 * 24 * 3_600_000,
        ..group.clone()
    };
    let lenient = Settings {
        liveness_criteria_yes: true,
        ..group.clone()
    };
    for rules in [one_ms, a_year, lenient] {
        let p = crafted(&net, 1, &action, epoch, 4, net.now, &rules);
        let packet = net.craft(1, Content::Proposal(p));
        let before = net.snapshot(2);
        let err = net.receive(2, &packet).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Vote(BallotError::Rules(_))),
            "{err}"
        );
        assert_eq!(net.snapshot(2), before);
    }
}

/// Member 1's removal of member 3, made two voting windows ago (already expired when it
/// arrives): its id, its packet, and the voting window.
fn expired_removal(net: &mut Net) -> (u64, Vec<u8>, u64) {
    let s = net.nodes[0].conv().settings().clone();
    let t = s.vote_timeout_ms;
    let epoch = net.nodes[1].conv().epoch();
    let action = Action::Remove {
        member: net.nodes[3].id(),
    };
    let p = crafted(net, 1, &action, epoch, 4, net.now - 2 * t, &s);
    let pid = p.proposal_id;
    (pid, net.craft(1, Content::Proposal(p)), t)
}

/// Audit C2 and HG-10: a proposal sent already expired (made two windows ago) is not decided
/// by silence at once: every member gets a full window of its own and is asked to vote.
#[test]
fn an_already_expired_proposal_gets_a_full_window_and_a_vote_request() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let (pid, packet, t) = expired_removal(&mut net);
    for i in [0, 2, 3] {
        net.receive(i, &packet).unwrap();
        let asked = net.count_events(
            i,
            |e| matches!(e, Event::VoteRequested(v) if v.proposal_id == pid),
        );
        assert_eq!(asked, 1, "node {i} is asked to vote");
    }
    net.run_for(t / 2);
    assert_eq!(
        resolved(&net, 0, pid),
        None,
        "decided before a window passed"
    );
    net.run_for(4 * t);
    for i in 0..4 {
        assert_eq!(resolved(&net, i, pid), Some(false), "node {i}");
        assert!(is_member(&net, i, 3));
    }
}

/// Audit C2 with the default silent-voter rule (silence counts as YES): an already expired
/// removal that only its proposer supports. A removal needs votes beyond its proposer's.
#[test]
fn an_already_expired_removal_backed_only_by_its_proposer_is_not_approved_by_silence() {
    let mut net = Net::form(4, manual(true));
    net.run_for(5_000);
    let (pid, packet, t) = expired_removal(&mut net);
    for i in [0, 2, 3] {
        net.receive(i, &packet).unwrap();
    }
    net.run_for(6 * t);
    for i in 0..4 {
        assert_eq!(resolved(&net, i, pid), Some(false), "node {i}");
        assert!(is_member(&net, i, 3), "node {i}");
    }
}

/// Audit H2, M3, HG-8: a vote signed for one proposal is carried to another proposal with the
/// same id, or to another conversation. Votes bind the proposal's digest and the
/// conversation: neither counts.
#[test]
fn a_vote_moved_to_another_proposal_or_conversation_does_not_count() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let target = net.nodes[3].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    let ballot = net.nodes[1].conv().ballots().by_id(pid).unwrap().clone();
    let me = &net.nodes[1].identity;
    // Signed for another conversation's copy of the proposal.
    let elsewhere = new_vote(
        me,
        "another-conversation",
        ballot.digest(),
        ballot.header(),
        true,
        net.now,
    );
    // Signed for a proposal with the same id and another payload (another digest).
    let mut other = ballot.header().clone();
    other.payload.push(0);
    let other_digest = wire::proposal_digest(CONV, &other);
    let collided = new_vote(me, CONV, &other_digest, &other, true, net.now);
    for vote in [elsewhere, collided] {
        assert_eq!(vote.proposal_id, pid);
        let packet = net.craft(1, Content::Vote(vote));
        let before = net.snapshot(2);
        let err = net.receive(2, &packet).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Vote(BallotError::Vote(_))),
            "{err}"
        );
        assert_eq!(net.snapshot(2), before);
    }
}

/// Audit M3, M4, HG-17: a proposal is replayed in another conversation, and a resolved one
/// is sent again in a later epoch. The first does not parse there (its id binds the
/// conversation), the second is remembered as resolved.
#[test]
fn a_proposal_replayed_in_another_conversation_or_after_its_resolution_is_refused() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(5_000);
    let target = net.nodes[3].id();
    let removal = net.make_proposal(0, Action::Remove { member: target });
    let mut moved = removal.clone();
    moved.proposal_id = witan::protocol::ballot_box::derive_proposal_id(
        "another-conversation",
        &moved.proposal_owner,
        moved.timestamp,
        &moved.payload,
    );
    let parsed = witan::protocol::ballot_box::parse(CONV, &moved);
    assert!(matches!(parsed, Err(BallotError::Malformed(_))));

    let rejected = net.make_proposal(
        0,
        Action::Emergency {
            member: net.nodes[2].id(),
            reason: "baseless".into(),
            evidence: Vec::new(),
        },
    );
    let rid = rejected.proposal_id;
    let packet = net.craft(0, Content::Proposal(rejected.clone()));
    for i in 1..4 {
        net.receive(i, &packet).unwrap();
    }
    net.run_for(20_000);
    assert_eq!(resolved(&net, 1, rid), Some(false));
    let epoch = net.nodes[1].conv().epoch();
    let again = net.craft(0, Content::Proposal(rejected));
    let err = net.receive(1, &again).unwrap_err();
    assert!(
        matches!(err, ProtocolError::Vote(BallotError::Refused(_))),
        "{err}"
    );
    assert!(net.nodes[1].conv().ballots().by_id(rid).is_none());
    assert_eq!(net.nodes[1].conv().epoch(), epoch);
}

/// Audit M5, HG-6: a member votes YES to some members and NO to others. Its votes stop
/// counting everywhere, the proof travels, and the certified commit that resolves the
/// proposal costs the voter score at every member.
#[test]
fn a_member_voting_both_ways_leaves_a_proof_and_loses_score() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let target = net.nodes[3].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    let yes = net.sign_vote(2, 0, pid, true);
    let no = net.sign_vote(2, 0, pid, false);
    let to_yes = net.craft(2, Content::Vote(yes));
    let to_no = net.craft(2, Content::Vote(no));
    net.receive(0, &to_yes).unwrap();
    net.receive(1, &to_no).unwrap();
    net.receive(0, &to_no).unwrap();
    assert!(
        net.count_events(
            0,
            |e| matches!(e, Event::Warning(w) if w.contains("both ways"))
        ) > 0
    );
    net.deliver();
    net.act(1, |c, ctx| c.vote(ctx, pid, true)).unwrap();
    net.run_for(30_000);
    let s = fast_settings();
    // The penalty, whether or not the voter also earned the reward of a commit it led (who
    // leads depends on the epoch's seed).
    let most = s.default_peer_score - s.score_invalid_candidate_penalty + s.score_commit_reward;
    for i in [0, 1, 3] {
        assert!(resolved(&net, i, pid).is_some(), "node {i}");
        let score = net.nodes[i].conv().scores().get(&net.nodes[2].id());
        assert!(score.is_some_and(|v| v <= most), "node {i}: {score:?}");
    }
}

/// Audit H4: before the epoch steward commits, another steward sends a candidate with
/// genuine resolutions and a garbage commit. It is not the round's leader: the candidate is
/// refused, the epoch steward commits in round 0, and no honest leader is penalised.
#[test]
fn a_garbage_candidate_from_another_steward_does_not_suppress_the_epoch_stewards_commit() {
    let mut net = Net::form(5, fast_settings());
    net.run_for(10_000);
    let conv = net.nodes[0].conv().clone();
    let order: Vec<usize> = conv.leaders().iter().map(|m| index_of(&net, *m)).collect();
    let (steward, other) = (order[0], order[1]);
    let x = order[4];
    let proposer = order[2];
    let epoch = conv.epoch();
    let target = net.nodes[x].id();
    net.act(proposer, |c, ctx| {
        c.propose_removal(ctx, target).map(|(_, o)| o)
    })
    .unwrap();
    net.deliver();
    for i in 0..5 {
        net.poll(i);
    }
    net.deliver();
    let resolutions = net.nodes[other].conv().resolutions_at(net.now);
    assert!(!resolutions.is_empty(), "the removal is decided");
    let garbage = wire::Candidate {
        epoch,
        round: 0,
        proposer: net.nodes[other].id().as_bytes().to_vec(),
        commit: vec![0xde, 0xad],
        welcome: Default::default(),
        resolutions,
        pol: None,
    };
    let packet = net.craft(other, Content::Candidate(garbage));
    for i in (0..5).filter(|i| *i != other) {
        let _ = net.receive(i, &packet);
    }
    net.run_for(30_000);
    let s = fast_settings();
    for i in (0..5).filter(|i| *i != x) {
        let c = net.nodes[i].conv();
        assert_eq!(c.epoch(), epoch + 1, "node {i}");
        assert!(!is_member(&net, i, x), "node {i}");
        assert_eq!(
            c.scores().get(&net.nodes[steward].id()),
            Some(s.default_peer_score),
            "node {i}: the epoch steward was not penalised"
        );
    }
}

/// Audit H8, D-16, D-17 (T9): while an emergency is open, members vote NO on a removal. The
/// removal is not decided by silence behind the emergency, and the NO votes count.
#[test]
fn an_open_emergency_does_not_turn_silence_on_a_removal_into_approval() {
    let mut net = Net::form(5, manual(true));
    net.run_for(5_000);
    let target = net.nodes[3].id();
    let mut rid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        rid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    net.now += 1_000;
    let emergency = net.make_proposal(
        4,
        Action::Emergency {
            member: net.nodes[1].id(),
            reason: "crafted".into(),
            evidence: Vec::new(),
        },
    );
    let packet = net.craft(4, Content::Proposal(emergency));
    for i in 0..4 {
        net.receive(i, &packet).unwrap();
    }
    for i in 1..4 {
        net.act(i, |c, ctx| c.vote(ctx, rid, false)).unwrap();
        net.deliver();
    }
    net.run_for(fast_settings().vote_timeout_ms * 6);
    for i in [0, 2] {
        assert!(is_member(&net, i, 3), "node {i}: the removal passed");
        assert!(
            is_member(&net, i, 1),
            "node {i}: the emergency passed by silence"
        );
        assert_eq!(resolved(&net, i, rid), Some(false), "node {i}");
    }
}

/// Audit M16, HG-13: in a group of two, one member proposes removing the other while it is
/// offline. Silence never approves in a group of two: the removal is rejected.
#[test]
fn in_a_group_of_two_an_offline_member_is_not_removed_by_silence() {
    let mut net = Net::form(2, fast_settings());
    net.run_for(5_000);
    net.offline.insert(1);
    let target = net.nodes[1].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.run_for(60_000);
    assert!(is_member(&net, 0, 1));
    assert_ne!(resolved(&net, 0, pid), Some(true));
}

/// Audit M12: vote counts and group sizes at the limits of the integer types do not overflow
/// the decision rule or the quorum arithmetic (a panic in debug builds, a wrong quorum in
/// release ones).
#[test]
fn vote_counts_and_group_sizes_at_the_integer_limits_do_not_overflow() {
    use witan::protocol::ballot_box::decide;
    for n in [u64::MAX, u64::MAX - 1, 1 << 63, u32::MAX as u64 + 1] {
        assert_eq!(decide(n, 0, n, false, true), Some(false));
        assert_eq!(decide(n, n / 2 + 1, 0, false, true), None);
        assert_eq!(decide(n, 0, 0, true, false), Some(false));
        let _ = decide(n, u64::MAX, u64::MAX, true, true);
    }
    for n in [usize::MAX, usize::MAX - 1, usize::MAX / 2 + 1] {
        let q = quorum(n);
        assert!(q > n / 2 && q <= n, "q({n}) = {q}");
        assert!(2 * (q as u128) > n as u128 + max_faulty(n) as u128);
    }
}

/// Audit M8, D-33: the round-0 leader proposes a candidate that leaves one of two approved
/// removals out (censorship by omission), before its own client's honest one. Whether that
/// value is certified or its round fails, the omitted removal stays open and decided, and a
/// later leader commits it: both removals end up committed.
#[test]
fn a_leader_that_leaves_an_approved_removal_out_does_not_keep_it_out() {
    let mut net = Net::form(7, fast_settings());
    net.run_for(10_000);
    let conv = net.nodes[0].conv().clone();
    let order: Vec<usize> = conv.leaders().iter().map(|m| index_of(&net, *m)).collect();
    let leader = order[0];
    let (x, y) = (order[5], order[6]);
    for target in [x, y] {
        let id = net.nodes[target].id();
        net.act(order[1], |c, ctx| {
            c.propose_removal(ctx, id).map(|(_, o)| o)
        })
        .unwrap();
    }
    net.deliver();
    for i in 0..7 {
        net.poll(i);
    }
    net.deliver();
    let x_id = net.nodes[x].id();
    let kept: Vec<wire::Resolution> = net.nodes[leader]
        .conv()
        .resolutions_at(net.now)
        .into_iter()
        .filter(|r| {
            r.proposal
                .as_ref()
                .and_then(|p| witan::protocol::ballot_box::parse_payload(p).ok())
                .is_some_and(|(a, _)| a.target() == x_id)
        })
        .collect();
    assert_eq!(kept.len(), 1, "both removals are decided, one is kept");
    let commit = removal_commit(&mut net, leader, x_id);
    let censored = wire::Candidate {
        epoch: conv.epoch(),
        round: 0,
        proposer: net.nodes[leader].id().as_bytes().to_vec(),
        commit,
        welcome: Default::default(),
        resolutions: kept,
        pol: None,
    };
    let packet = net.craft(leader, Content::Candidate(censored));
    for i in (0..7).filter(|i| *i != leader) {
        let _ = net.receive(i, &packet);
    }
    net.run_for(120_000);
    let rest: Vec<usize> = (0..5).map(|k| order[k]).collect();
    for &i in &rest {
        assert!(!is_member(&net, i, x), "node {i}");
        assert!(
            !is_member(&net, i, y),
            "node {i}: the omitted removal was kept out"
        );
    }
    net.assert_agree(&rest);
}

/// Audit M13: the other members vote a member's leave down. The member is told (its leave is
/// resolved not approved), stays a member in the group's view and its own, and may ask again.
#[test]
fn a_leave_voted_down_is_reported_and_can_be_asked_again() {
    let mut net = Net::form(4, manual(false));
    net.run_for(5_000);
    let leave_id = |net: &Net| {
        net.nodes[0]
            .conv()
            .ballots()
            .open()
            .find(|b| matches!(b.action(), Action::Leave { .. }))
            .map(|b| b.id())
            .expect("the leave is open")
    };
    net.act(3, |c, ctx| c.leave(ctx)).unwrap();
    net.deliver();
    let pid = leave_id(&net);
    for i in 0..3 {
        net.act(i, |c, ctx| c.vote(ctx, pid, false)).unwrap();
        net.deliver();
    }
    net.run_for(30_000);
    assert_eq!(resolved(&net, 3, pid), Some(false));
    assert!(is_member(&net, 0, 3));
    assert!(!net.nodes[3].conv().is_leaving());
    assert_eq!(net.nodes[3].state(), witan::protocol::State::Working);
    net.act(3, |c, ctx| c.leave(ctx)).unwrap();
    net.deliver();
    let again = leave_id(&net);
    for i in 0..3 {
        net.act(i, |c, ctx| c.vote(ctx, again, true)).unwrap();
        net.deliver();
    }
    net.run_for(30_000);
    assert!(!is_member(&net, 0, 3));
    assert_eq!(net.nodes[3].state(), witan::protocol::State::Left);
}
