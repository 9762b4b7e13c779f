//! Membership by vote: formation through join requests, batched joins, chat delivered exactly
//! once, removal, self-leave, a rejected proposal, join expiry — with every member agreeing on
//! the epoch authenticator after each certified commit.

mod support;

use support::{CONV, Net, fast_settings};
use witan::protocol::{Conversation, Event, LeaveReason, Output, ProposalKind, State};

fn sorted(mut v: Vec<witan::mls::MemberId>) -> Vec<witan::mls::MemberId> {
    v.sort();
    v
}

#[test]
fn two_members_form_a_group_by_join_request() {
    let net = Net::form(2, fast_settings());
    assert_eq!(net.nodes[1].state(), State::Working);
    assert_eq!(sorted(net.nodes[1].conv().members()), net.ids(&[0, 1]));
    assert_eq!(net.count_events(1, |e| *e == Event::Joined), 1);
    net.assert_agree(&[0, 1]);
}

/// The welcome packet carries the MLS welcome and the certified commit once each: the
/// conversation sync beside them holds the certified candidate without a second copy of
/// either, and the joiner puts both back before it checks the certificate.
#[test]
fn a_welcome_packet_carries_its_welcome_and_commit_once_and_the_joiner_joins_with_them() {
    let mut net = Net::form(3, fast_settings());
    net.run_for(5_000);
    let missed = net.join_while_offline();
    let joiner = missed.joiner;
    let sync = net.read_sync(0, &missed.packet);
    let candidate = sync.certified.unwrap().candidate.unwrap();
    assert!(!missed.packet.welcome.is_empty());
    assert!(!missed.packet.commit.is_empty());
    assert!(candidate.welcome.is_empty());
    assert!(candidate.commit.is_empty());
    net.offline.remove(&joiner);
    for p in missed.backlog {
        let _ = net.receive(joiner, &p);
    }
    net.run_for(10_000);
    assert_eq!(net.nodes[joiner].state(), State::Working);
    net.assert_agree(&[0, 1, 2, joiner]);
}

#[test]
fn four_joiners_are_batched_into_one_commit() {
    let net = Net::form(4, fast_settings());
    net.assert_agree(&[0, 1, 2, 3]);
    assert_eq!(net.nodes[0].conv().members().len(), 4);
    // One commit added all three joiners at once.
    let commits: Vec<_> = net.nodes[0]
        .events
        .iter()
        .filter(|e| matches!(e, Event::MembershipChanged { .. }))
        .collect();
    assert_eq!(commits.len(), 1, "{commits:?}");
    assert!(
        matches!(commits[0], Event::MembershipChanged { epoch: 1, added, .. } if added.len() == 3)
    );
}

#[test]
fn forty_simultaneous_joiners_are_added_in_one_commit() {
    // More join requests than one member may hold open proposals of other kinds (32): the
    // epoch steward proposes an add for each and one commit adds them all.
    let net = Net::form(41, fast_settings());
    let all: Vec<usize> = (0..41).collect();
    net.assert_agree(&all);
    assert_eq!(net.nodes[0].conv().members().len(), 41);
    assert_eq!(net.nodes[0].conv().view().epoch, 1, "one commit");
}

#[test]
fn sixteen_members_form_and_elect_a_steward_list() {
    let mut net = Net::form(16, fast_settings());
    net.run_for(20_000);
    let all: Vec<usize> = (0..16).collect();
    net.assert_agree(&all);
    let c = net.nodes[5].conv();
    assert_eq!(c.members().len(), 16);
    assert_eq!(
        c.stewards().active().len(),
        5,
        "a list of sn_max stewards once the group outgrew sn_min"
    );
    assert!(c.view().epoch_steward.is_some());
}

#[test]
fn chat_reaches_every_member_exactly_once() {
    let mut net = Net::form(4, fast_settings());
    let mut sent = Vec::new();
    for i in 0..4 {
        sent.push(net.send(i, format!("hello from {i}").as_bytes()));
    }
    net.deliver();
    // Duplicated delivery changes nothing.
    for i in 0..4 {
        let received: Vec<_> = net.nodes[i]
            .events
            .iter()
            .filter(|e| matches!(e, Event::MessageReceived(_)))
            .collect();
        assert_eq!(
            received.len(),
            3,
            "node {i} receives the three others' messages once"
        );
        assert_eq!(
            net.history_bodies(i).len(),
            4,
            "node {i} history holds all four messages"
        );
    }
}

#[test]
fn duplicate_packets_are_applied_once() {
    let mut net = Net::form(3, fast_settings());
    net.send(1, b"once");
    // Capture the packet and deliver it twice more.
    let payload = {
        let out = net
            .act(1, |c, ctx| c.send_message(ctx, b"twice").map(|(_, o)| o))
            .unwrap();
        out.outbound[0].payload.clone()
    };
    net.deliver();
    net.receive(2, &payload).unwrap();
    net.receive(2, &payload).unwrap();
    let twice = net.nodes[2]
        .history
        .iter()
        .filter(|m| m.body == b"twice")
        .count();
    assert_eq!(twice, 1);
}

#[test]
fn a_member_is_removed_by_vote() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    let target = net.nodes[3].id();
    net.act(0, |c, ctx| c.propose_removal(ctx, target).map(|(_, o)| o))
        .unwrap();
    net.run_for(20_000);
    net.assert_agree(&[0, 1, 2]);
    assert_eq!(sorted(net.nodes[0].conv().members()), net.ids(&[0, 1, 2]));
    assert_eq!(net.nodes[3].state(), State::Left);
    assert_eq!(
        net.count_events(3, |e| *e == Event::Left(LeaveReason::Removed)),
        1
    );
}

#[test]
fn a_member_leaves_by_itself() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    net.act(2, |c, ctx| c.leave(ctx)).unwrap();
    net.run_for(20_000);
    net.assert_agree(&[0, 1, 3]);
    assert_eq!(net.nodes[2].state(), State::Left);
    assert_eq!(
        net.count_events(2, |e| *e == Event::Left(LeaveReason::SelfLeave)),
        1
    );
}

/// A rejection is final only once a certified commit resolves it: that commit changes the
/// epoch and nothing else.
#[test]
fn a_rejected_proposal_is_resolved_by_a_commit_that_changes_no_membership() {
    let settings = witan::protocol::Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::form(4, settings);
    let before_epoch = net.nodes[0].conv().epoch();
    let target = net.nodes[3].id();
    let (mut pid, mut out_events) = (0, Vec::new());
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    for i in 1..4 {
        let requested = net.nodes[i].events.iter().any(|e| matches!(e, Event::VoteRequested(p) if p.proposal_id == pid && p.kind == ProposalKind::RemoveMember));
        assert!(requested, "node {i} was asked to vote");
        net.act(i, |c, ctx| c.vote(ctx, pid, false)).unwrap();
    }
    net.run_for(20_000);
    for i in 0..4 {
        out_events.push(net.nodes[i].events.iter().any(|e| {
            *e == Event::ProposalResolved {
                proposal_id: pid,
                approved: false,
            }
        }));
    }
    assert!(
        out_events.iter().all(|x| *x),
        "every member resolved the proposal as rejected"
    );
    assert_eq!(net.nodes[0].conv().epoch(), before_epoch + 1);
    assert_eq!(net.nodes[0].conv().members().len(), 4);
    net.assert_agree(&[0, 1, 2, 3]);
}

#[test]
fn a_join_request_without_welcome_expires() {
    // The joiner sends its request again twice (`JOIN_RENEWALS`), a timeout apart, then
    // gives up: three timeouts (60 s each here) after its first request.
    let mut net = Net::new(2);
    net.request_join(1);
    net.run_for(170_000);
    assert_eq!(net.nodes[1].state(), State::PendingJoin);
    net.run_for(20_000);
    assert_eq!(net.nodes[1].state(), State::Left);
    assert_eq!(net.count_events(1, |e| *e == Event::JoinExpired), 1);
    // It listens for a late welcome as long again as it waited, then stops.
    assert!(net.nodes[1].conv().is_waiting_to_join());
    assert!(!net.nodes[1].conv().topics().is_empty());
    net.run_for(190_000);
    assert!(!net.nodes[1].conv().is_waiting_to_join());
    assert!(net.nodes[1].conv().topics().is_empty());
    assert_eq!(net.nodes[1].conv().next_deadline(), None);
    assert_eq!(net.count_events(1, |e| *e == Event::JoinExpired), 1);
}

#[test]
fn a_late_joiner_is_added_in_a_later_epoch() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    net.nodes.push(Net::new(5).nodes.pop().unwrap());
    net.request_join(4);
    net.run_for(30_000);
    net.assert_agree(&[0, 1, 2, 3, 4]);
    assert_eq!(net.nodes[4].conv().members().len(), 5);
    // The joiner starts with the group's view: same steward list and scores.
    assert_eq!(net.nodes[4].conv().settings(), &fast_settings());
    let _ = CONV;
}

/// Decisions are tentative until certified: node 0 decides before the proposal expires
/// because node 2's vote reaches it in a relay.
#[test]
fn a_lost_vote_is_relayed_so_the_proposal_is_decided_before_expiry() {
    // Slow commits, so no candidate's evidence can bring node 0 the vote first.
    let settings = witan::protocol::Settings {
        commit_delay_ms: 20_000,
        commit_inactivity_ms: 30_000,
        ..fast_settings()
    };
    let mut net = Net::form(4, settings);
    net.run_for(10_000);
    // Node 3 is silent; node 2's packets never reach node 0.
    net.offline.insert(3);
    net.muted.insert(3);
    net.cut.insert((2, 0));
    let target = net.nodes[3].id();
    let mut pid = 0;
    net.act(1, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    let timeout = fast_settings().vote_timeout_ms;
    net.run_for(timeout * 6 / 10);
    let conv = net.nodes[0].conv();
    let ballot = conv.ballots().by_id(pid).expect("open at node 0");
    assert!(
        ballot.has_voted(&net.nodes[2].id()),
        "node 2's vote came in a relay"
    );
    let t = conv
        .tentative(ballot, net.now)
        .expect("decided before expiry");
    assert!(t.approved && !t.at_expiry);
}

/// Votes by hand wait for the app (automatic votes, which the extension casts, are off
/// here: the user votes on every proposal).
#[test]
fn in_extension_mode_messages_and_commits_apply_but_voting_waits_for_the_app() {
    let settings = witan::protocol::Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::form(4, settings);
    net.run_for(10_000);
    net.extension.insert(2);
    let target = net.nodes[3].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.send(1, b"read me in the extension");
    net.deliver();
    for i in [1, 3] {
        net.act(i, |c, ctx| c.vote(ctx, pid, true)).unwrap();
    }
    net.deliver();
    // The extension decrypted the message but did not vote.
    assert!(
        net.nodes[2]
            .history
            .iter()
            .any(|m| m.body == b"read me in the extension")
    );
    let ballot = net.nodes[2].conv().ballots().by_id(pid).unwrap();
    assert!(!ballot.has_voted(&net.nodes[2].id()));
    assert!(
        net.nodes[2].conv().next_deadline().is_some(),
        "the vote stays scheduled for the app"
    );
    // The others decide and commit; the extension applies the commit so it can keep reading.
    net.run_for(20_000);
    assert!(!net.nodes[2].conv().members().contains(&target));
    net.assert_agree(&[0, 1, 2]);
    // Back in the app, nothing is left hanging.
    net.extension.remove(&2);
    net.run_for(10_000);
    net.assert_agree(&[0, 1, 2]);
}

/// The epoch steward cannot commit its own removal: it passes its round at once, and its
/// backup commits well before round 0 would have timed out.
#[test]
fn removing_the_epoch_steward_is_committed_by_its_backup_without_waiting() {
    let mut net = Net::form(5, fast_settings());
    net.run_for(20_000);
    let conv = net.nodes[0].conv().clone();
    let es = conv.stewards().epoch_steward(conv.epoch()).unwrap();
    let es_idx = net.nodes.iter().position(|n| n.id() == es).unwrap();
    let proposer = (0..5).find(|i| *i != es_idx).unwrap();
    net.act(proposer, |c, ctx| {
        c.propose_removal(ctx, es).map(|(_, o)| o)
    })
    .unwrap();
    let round_zero = fast_settings().commit_inactivity_ms;
    net.run_for(round_zero - 500);
    let rest: Vec<usize> = (0..5).filter(|i| *i != es_idx).collect();
    net.assert_agree(&rest);
    assert!(!net.nodes[rest[0]].conv().members().contains(&es));
    let s = fast_settings();
    for &i in &rest {
        assert_eq!(
            net.nodes[i].conv().scores().get(&net.nodes[rest[0]].id()),
            Some(s.default_peer_score),
            "node {i}: nobody was penalised"
        );
    }
}

#[test]
fn a_leave_only_its_member_saw_decided_is_shared_and_committed_by_another() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    // Node 3's leave reaches nobody; at expiry it alone considers it decided, and it cannot
    // commit its own removal.
    for to in 0..3 {
        net.cut.insert((3, to));
    }
    net.act(3, |c, ctx| c.leave(ctx)).unwrap();
    net.run_for(fast_settings().vote_timeout_ms + 100);
    assert!(net.nodes[0].conv().ballots().open().next().is_none());
    net.cut.clear();
    // Its rounds run out or it passes its turn: it shares the work, the others vote and one
    // of them commits it.
    net.run_for(60_000);
    net.assert_agree(&[0, 1, 2]);
    assert_eq!(net.nodes[0].conv().members().len(), 3);
    assert_eq!(net.nodes[3].conv().state(), witan::protocol::State::Left);
}

#[test]
fn a_sleeping_epoch_steward_blocks_no_join() {
    let mut net = Net::new(7);
    net.create(0, fast_settings());
    for i in 1..6 {
        net.request_join(i);
    }
    net.run_for(30_000);
    // The epoch steward (the next round-0 leader) sleeps; a seventh device asks to join.
    let steward = net.nodes[0].conv().leaders()[0];
    let asleep = net.nodes.iter().position(|n| n.id() == steward).unwrap();
    net.offline.insert(asleep);
    net.muted.insert(asleep);
    net.request_join(6);
    net.run_for(30_000);
    assert!(net.nodes[6].conv().is_member_state(), "the joiner got in");
    let awake: Vec<usize> = (0..7).filter(|i| *i != asleep).collect();
    net.assert_agree(&awake);
    assert!(!net.nodes[6].events.contains(&Event::JoinExpired));
}

#[test]
fn with_every_steward_asleep_a_join_still_completes() {
    let settings = witan::protocol::Settings {
        steward_list_min: 2,
        steward_list_max: 2,
        ..fast_settings()
    };
    let mut net = Net::new(8);
    net.create(0, settings);
    for i in 1..7 {
        net.request_join(i);
    }
    net.run_for(30_000);
    let stewards = net.nodes[0].conv().stewards().active();
    assert_eq!(stewards.len(), 2);
    let asleep: Vec<usize> = (0..7)
        .filter(|i| stewards.contains(&net.nodes[*i].id()))
        .collect();
    for &i in &asleep {
        net.offline.insert(i);
        net.muted.insert(i);
    }
    net.request_join(7);
    net.run_for(60_000);
    assert!(net.nodes[7].conv().is_member_state(), "the joiner got in");
    let awake: Vec<usize> = (0..8).filter(|i| !asleep.contains(i)).collect();
    net.assert_agree(&awake);
}

#[test]
fn a_joiner_that_gave_up_before_its_add_was_certified_still_joins_when_the_welcome_arrives() {
    // Four members; a fifth device asks to join. The add is approved at once, but two members
    // go offline before the commit round ends (three of four are a quorum): the add waits,
    // approved, for longer than the joiner's patience (three timeouts of 60 s).
    let mut net = Net::new(5);
    net.form_among(4, fast_settings());
    net.assert_agree(&[0, 1, 2, 3]);
    let epoch = net.nodes[0].conv().epoch();
    let seen = net.nodes[0].events.len();
    net.request_join(4);
    // Every member has the add proposal and votes for it (automatic votes, no delay).
    let asked = |net: &Net| {
        net.nodes[0].events[seen..]
            .iter()
            .any(|e| matches!(e, Event::VoteRequested(p) if p.kind == ProposalKind::AddMember))
    };
    let mut waited = 0;
    while !asked(&net) && waited < 10_000 {
        net.run_for(1);
        waited += 1;
    }
    assert!(asked(&net), "the add was proposed");
    net.run_for(20);
    assert_eq!(net.nodes[0].conv().epoch(), epoch, "not yet committed");
    net.offline.insert(2);
    net.offline.insert(3);
    net.run_for(200_000);
    assert_eq!(net.nodes[0].conv().epoch(), epoch, "no quorum, no commit");
    assert_eq!(net.nodes[4].state(), State::Left);
    assert_eq!(net.count_events(4, |e| *e == Event::JoinExpired), 1);
    // The two come back; the add is certified and the welcome goes out: the joiner, which gave
    // up, still takes it.
    // (The failed rounds' timeouts grew while they were away: the commit takes a few minutes.)
    net.reconnect(2);
    net.reconnect(3);
    net.run_for(300_000);
    assert_eq!(net.nodes[0].conv().members().len(), 5, "the group added it");
    assert_eq!(
        net.count_events(4, |e| *e == Event::Joined),
        1,
        "the joiner learns it is in"
    );
    net.assert_agree(&[0, 1, 2, 3, 4]);
}

#[test]
fn a_join_request_made_before_its_member_was_admitted_and_delivered_late_is_not_a_re_join() {
    let mut net = Net::new(5);
    net.form_among(4, fast_settings());
    // Node 4 asks to join; a second request of the same attempt (a renewal with a fresh key
    // package, or a copy from a clock behind) is held back by the network.
    net.request_join(4);
    let mut late = Vec::new();
    net.step(4, |_, ctx| {
        let (_, out) = Conversation::request_join(ctx, CONV, fast_settings())?;
        late = out.outbound[0].payload.clone();
        Ok(Output::default())
    })
    .unwrap();
    net.run_for(30_000);
    net.assert_agree(&[0, 1, 2, 3, 4]);
    let epoch = net.nodes[0].conv().epoch();
    for i in 0..4 {
        let _ = net.receive(i, &late);
    }
    net.run_for(60_000);
    // Not taken for a re-join: no removal of its leaf, no add the device never asked for.
    assert_eq!(net.nodes[4].state(), State::Working);
    assert!(
        !net.nodes[4]
            .events
            .iter()
            .any(|e| matches!(e, Event::Left(_)))
    );
    assert_eq!(net.nodes[0].conv().epoch(), epoch);
    net.assert_agree(&[0, 1, 2, 3, 4]);
}

/// A proposal still open when a member joins reaches it later from whoever shares it (the
/// leader of the commit that added it named the proposal in its sync), although it was made
/// before the member joined; a replay of a proposal resolved before the join is still refused
/// (`a_resolved_proposal_replayed_to_a_member_that_joined_later_is_refused`, bad_input.rs).
#[test]
fn a_proposal_open_when_a_member_joins_is_accepted_from_whoever_shares_it() {
    // Without automatic votes the adds pass at expiry and the removal below stays open.
    let settings = witan::protocol::Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::new(4);
    net.create(0, settings.clone());
    for i in 1..3 {
        net.request_join(i);
    }
    net.run_for(30_000);
    net.request_join(3);
    net.run_for(2_000);
    let id1 = net.nodes[1].id();
    net.act(0, |c, ctx| c.propose_removal(ctx, id1).map(|(_, o)| o))
        .unwrap();
    let digest = *net.nodes[0]
        .conv()
        .ballots()
        .open()
        .find(|b| matches!(b.action(), witan::protocol::Action::Remove { .. }))
        .map(|b| b.digest())
        .unwrap();
    // The add passes at its expiry, before the removal's.
    net.run_for(settings.vote_timeout_ms - 1_500);
    assert!(net.nodes[3].conv().is_member_state(), "the joiner got in");
    assert!(net.nodes[0].conv().ballots().get(&digest).is_some());
    assert!(net.nodes[3].conv().ballots().get(&digest).is_none());
    // Member 1 shares the removal (with the votes it holds) with the newcomer.
    let proposal = net.nodes[1]
        .conv()
        .ballots()
        .get(&digest)
        .unwrap()
        .header()
        .clone();
    let share = net.craft(1, witan::wire::group_payload::Content::Proposal(proposal));
    net.receive(3, &share).unwrap();
    assert!(net.nodes[3].conv().ballots().get(&digest).is_some());
    // The group resolves it as one.
    net.run_for(30_000);
    net.assert_agree(&[0, 1, 2, 3]);
    assert!(net.nodes[3].conv().ballots().get(&digest).is_none());
    assert!(net.nodes[3].conv().ballots().is_resolved(&digest));
}
