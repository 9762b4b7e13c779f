//! Liveness when phones sleep (issue #16), through the public `WitanClient`: a member that
//! is asleep is a closed client whose packets wait in its mailbox, as a push service keeps
//! them. Joins are proposed by whoever is awake, in the takeover order; silent stewards are
//! replaced; a member asleep through epochs catches up; a removed member always learns it
//! left; a member that left or was told to re-join comes back with `request_to_join`.

#[path = "support/clients.rs"]
mod clients;

use std::collections::BTreeSet;
use std::sync::Arc;

use clients::{CONV, NodeTransport, World, fast_settings};
use witan::client::{
    ClientConfig, ClientRole, ConversationSettings, ConversationState, InboundPacket, LeaveReason,
    ProposalKind, WitanClient, WitanEvent,
};

/// A group formed by vote from `creator` and `joiners`, with `settings`.
fn formed(names: &[&str], joiners: &[usize], settings: ConversationSettings) -> World {
    let mut w = World::new(names);
    w.c(0).create_conversation(CONV.into(), settings).unwrap();
    for &i in joiners {
        w.c(i).request_to_join(CONV.into()).unwrap();
    }
    w.run_for(30_000);
    w
}

fn with_list(size: u32) -> ConversationSettings {
    ConversationSettings {
        steward_list_min: size,
        steward_list_max: size,
        ..fast_settings()
    }
}

fn member_id(w: &World, i: usize) -> String {
    w.c(i).member_id()
}

/// The add proposals for `target` that any of `observers` was asked to vote on (a
/// proposer is not asked about its own), as (id, proposer).
fn add_proposals(w: &World, observers: &[usize], target: &str) -> BTreeSet<(u64, String)> {
    observers
        .iter()
        .flat_map(|i| w.events(*i))
        .filter_map(|e| match e {
            WitanEvent::VoteRequested { proposal, .. }
                if proposal.kind == ProposalKind::AddMember
                    && proposal.target.as_deref() == Some(target) =>
            {
                Some((proposal.proposal_id, proposal.proposer))
            }
            _ => None,
        })
        .collect()
}

fn joined(w: &World, i: usize) -> bool {
    w.events(i)
        .iter()
        .any(|e| matches!(e, WitanEvent::Joined { .. }))
}

fn left_removed(w: &World, i: usize) -> bool {
    w.events(i).iter().any(|e| {
        matches!(
            e,
            WitanEvent::Left {
                reason: LeaveReason::Removed,
                ..
            }
        )
    })
}

fn index(w: &World, id: &str) -> usize {
    w.index_of_member(id).expect("a local open member")
}

#[test]
fn a_sleeping_epoch_steward_is_taken_over_by_its_backup_and_the_join_is_proposed_once() {
    let names = ["ann", "bob", "cat", "dan", "eve", "fay", "gus"];
    let mut w = formed(&names, &[1, 2, 3, 4, 5], with_list(3));
    let all: Vec<usize> = (0..6).collect();
    w.assert_agree(&all);
    let info = w.info(0);
    let steward = index(&w, info.epoch_steward.as_ref().unwrap());
    let pos = info
        .stewards
        .iter()
        .position(|s| Some(s) == info.epoch_steward.as_ref())
        .unwrap();
    let backup = info.stewards[(pos + 1) % info.stewards.len()].clone();
    w.close(steward);
    let joiner = 6;
    w.c(joiner).request_to_join(CONV.into()).unwrap();
    w.run_for(60_000);
    assert!(joined(&w, joiner), "the joiner got in");
    let awake: Vec<usize> = (0..7).filter(|i| *i != steward).collect();
    w.assert_agree(&awake);
    let target = member_id(&w, joiner);
    let adds = add_proposals(&w, &awake, &target);
    assert_eq!(adds.len(), 1, "one add proposal: {adds:?}");
    assert_eq!(adds.first().unwrap().1, backup, "the backup proposed it");
}

#[test]
fn when_several_members_take_over_at_once_the_join_is_proposed_once() {
    // Both stewards asleep: the first ranked members take over, with windows that grow by
    // rank, so the second sees the first's proposal before its own window ends.
    let names = ["ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal"];
    let mut w = formed(&names, &[1, 2, 3, 4, 5, 6], with_list(2));
    let info = w.info(0);
    let asleep: Vec<usize> = info.stewards.iter().map(|s| index(&w, s)).collect();
    assert_eq!(asleep.len(), 2);
    for &i in &asleep {
        w.close(i);
    }
    let joiner = 7;
    w.c(joiner).request_to_join(CONV.into()).unwrap();
    w.run_for(120_000);
    assert!(joined(&w, joiner), "the joiner got in");
    let awake: Vec<usize> = (0..8).filter(|i| !asleep.contains(i)).collect();
    w.assert_agree(&awake);
    let target = member_id(&w, joiner);
    let adds = add_proposals(&w, &awake, &target);
    assert_eq!(adds.len(), 1, "one add proposal: {adds:?}");
}

#[test]
fn stewards_silent_through_a_join_lose_their_slots_and_the_list_is_renewed_without_them() {
    // Member ids are random, so each world ranks its members differently.
    for _ in 0..3 {
        let names = [
            "ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal", "ida",
        ];
        let mut w = formed(&names, &[1, 2, 3, 4, 5, 6], with_list(2));
        let info = w.info(0);
        let sleepers: Vec<String> = info.stewards.clone();
        let asleep: Vec<usize> = sleepers.iter().map(|s| index(&w, s)).collect();
        for &i in &asleep {
            w.close(i);
        }
        w.c(7).request_to_join(CONV.into()).unwrap();
        w.run_for(120_000);
        assert!(joined(&w, 7));
        let awake: Vec<usize> = (0..8).filter(|i| !asleep.contains(i)).collect();
        w.assert_agree(&awake);
        // Both slots were lost to silence, so the list was used up: it is renewed at once
        // (no other work needed) from the members that did not miss a commit.
        let after = w.info(awake[0]);
        assert!(!after.stewards.is_empty(), "a renewed list");
        for s in &after.stewards {
            assert!(!sleepers.contains(s), "a silent steward was chosen again");
        }
        let es = after.epoch_steward.clone().expect("an epoch steward");
        assert!(after.stewards.contains(&es));
        // The next join is proposed by the new epoch steward, once.
        w.c(8).request_to_join(CONV.into()).unwrap();
        w.run_for(60_000);
        assert!(joined(&w, 8));
        let adds = add_proposals(&w, &awake, &member_id(&w, 8));
        assert_eq!(adds.len(), 1, "{adds:?}");
        assert_eq!(
            adds.first().unwrap().1,
            es,
            "the new epoch steward proposed it"
        );
    }
}

#[test]
fn a_member_asleep_through_two_admissions_while_holding_the_epoch_steward_slot_catches_up() {
    let names = ["ann", "bob", "cat", "dan", "eve", "fay", "gus"];
    let mut w = formed(&names, &[1, 2, 3, 4], with_list(3));
    w.send(1, "before the nap");
    w.run_for(1_000);
    let steward = index(&w, &w.info(0).epoch_steward.unwrap());
    w.close(steward);
    let start = w.info((steward + 1) % 5).epoch;
    for joiner in [5, 6] {
        w.c(joiner).request_to_join(CONV.into()).unwrap();
        w.run_for(60_000);
        assert!(joined(&w, joiner), "{} got in", names[joiner]);
    }
    let awake: Vec<usize> = (0..7).filter(|i| *i != steward).collect();
    w.assert_agree(&awake);
    assert!(w.info(awake[0]).epoch >= start + 2);
    w.send(5, "while you slept");
    w.run_for(1_000);
    w.open(steward);
    w.deliver_mailbox(steward);
    w.run_for(30_000);
    let all: Vec<usize> = (0..7).collect();
    w.assert_agree(&all);
    let bodies = w.bodies(steward);
    assert!(bodies.contains(&"before the nap".to_string()));
    assert!(bodies.contains(&"while you slept".to_string()));
}

#[test]
fn a_member_removed_right_after_formation_always_learns_it_was_removed() {
    // The removal comes at several instants after formation (while the first epochs'
    // rounds and steward slots are still settling), with the removed member awake or asleep.
    for (delay_ms, asleep) in [
        (0, false),
        (0, true),
        (150, false),
        (700, true),
        (2_500, false),
    ] {
        let names = ["ann", "bob", "cat", "dan"];
        let mut w = World::new(&names);
        w.c(0)
            .create_conversation(CONV.into(), fast_settings())
            .unwrap();
        for i in 1..4 {
            w.c(i).request_to_join(CONV.into()).unwrap();
        }
        w.deliver();
        for _ in 0..200 {
            if (1..4).all(|i| joined(&w, i)) {
                break;
            }
            w.run_for(100);
        }
        w.send(3, "mine to keep");
        w.deliver();
        w.run_for(delay_ms);
        let removed = member_id(&w, 3);
        if asleep {
            w.close(3);
        }
        w.c(1).propose_removal(CONV.into(), removed).unwrap();
        w.run_for(60_000);
        if asleep {
            w.open(3);
            w.deliver_mailbox(3);
            w.run_for(30_000);
        }
        let case = format!("removal {delay_ms} ms after formation, asleep: {asleep}");
        w.assert_agree(&[0, 1, 2]);
        assert_eq!(w.info(0).members.len(), 3, "{case}");
        assert!(left_removed(&w, 3), "{case}: Left {{ Removed }}");
        assert_eq!(w.info(3).state, ConversationState::Left, "{case}");
        assert!(
            w.bodies(3).contains(&"mine to keep".to_string()),
            "{case}: history readable"
        );
    }
}

#[test]
fn a_member_that_left_comes_back_through_a_vote_and_keeps_its_history() {
    let names = ["ann", "bob", "cat", "dan"];
    let mut w = formed(&names, &[1, 2, 3], fast_settings());
    w.send(0, "first life");
    w.run_for(1_000);
    let id = member_id(&w, 3);
    let before = w.info(0);
    w.c(3).leave(CONV.into()).unwrap();
    w.run_for(30_000);
    assert_eq!(w.info(3).state, ConversationState::Left);
    assert!(!clients::member_set(&w.info(0)).contains(&id));
    w.c(3).request_to_join(CONV.into()).unwrap();
    w.run_for(60_000);
    w.assert_agree(&[0, 1, 2, 3]);
    assert_eq!(
        clients::member_set(&w.info(0)),
        clients::member_set(&before)
    );
    w.send(1, "second life");
    w.run_for(1_000);
    let bodies = w.bodies(3);
    assert!(bodies.contains(&"first life".to_string()), "{bodies:?}");
    assert!(bodies.contains(&"second life".to_string()), "{bodies:?}");
}

#[test]
fn a_member_told_to_rejoin_comes_back_through_a_vote_with_a_new_leaf_and_keeps_its_history() {
    let settings = ConversationSettings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let names = ["ann", "bob", "cat", "dan", "eve"];
    let mut w = World::new(&names);
    w.c(0).create_conversation(CONV.into(), settings).unwrap();
    for (i, name) in names.iter().enumerate().skip(1) {
        w.c(i).request_to_join(CONV.into()).unwrap();
        w.deliver();
        // Joins need votes by hand here: everyone approves.
        for _ in 0..5 {
            for v in 0..i {
                let open = w.info(v).open_proposals;
                for p in open {
                    let _ = w.c(v).vote(CONV.into(), p.proposal_id, true);
                }
            }
            w.run_for(2_000);
        }
        assert!(joined(&w, i), "{name} joined");
    }
    w.send(0, "before the trip");
    w.run_for(1_000);
    let away = 4;
    w.close(away);
    // More epochs than anyone keeps certified commits for: rejected removals.
    let target = member_id(&w, 3);
    for _ in 0..10 {
        let pid = w.c(0).propose_removal(CONV.into(), target.clone()).unwrap();
        w.deliver();
        for i in 1..4 {
            w.c(i).vote(CONV.into(), pid, false).unwrap();
        }
        w.run_for(10_000);
    }
    assert!(w.info(0).epoch >= w.info(1).epoch && w.info(0).epoch >= 14);
    // Back from a long trip: the backlog was pruned from the store.
    w.mailbox[away].clear();
    w.open(away);
    w.send(1, "far ahead");
    w.run_for(120_000);
    assert!(
        w.events(away)
            .iter()
            .any(|e| matches!(e, WitanEvent::RejoinRequired { .. })),
        "told to re-join"
    );
    let id = member_id(&w, away);
    w.c(away).request_to_join(CONV.into()).unwrap();
    w.deliver();
    for _ in 0..10 {
        for v in 0..4 {
            for p in w.info(v).open_proposals {
                let _ = w.c(v).vote(CONV.into(), p.proposal_id, true);
            }
        }
        w.run_for(3_000);
    }
    w.run_for(30_000);
    w.assert_agree(&[0, 1, 2, 3, away]);
    let info = w.info(0);
    assert_eq!(
        info.members.len(),
        5,
        "the old leaf was replaced, not kept beside"
    );
    assert!(clients::member_set(&info).contains(&id));
    w.send(2, "welcome back");
    w.run_for(1_000);
    let bodies = w.bodies(away);
    assert!(
        bodies.contains(&"before the trip".to_string()),
        "{bodies:?}"
    );
    assert!(bodies.contains(&"welcome back".to_string()), "{bodies:?}");
}

/// Wakes sleeping member `i` for a push: its notification extension opens its file, takes
/// the backlog the push service kept, and closes again.
fn push_wakeup(w: &mut World, i: usize) {
    let backlog: Vec<InboundPacket> = std::mem::take(&mut w.mailbox[i])
        .into_iter()
        .map(|p| InboundPacket {
            topic: String::new(),
            payload: p.payload,
        })
        .collect();
    if backlog.is_empty() {
        return;
    }
    let ext = WitanClient::open_with_clock(
        ClientConfig {
            database_path: w.path(i),
            identity_secret: None,
            database_key: None,
            role: Some(ClientRole::NotificationExtension),
        },
        Arc::new(NodeTransport::new(w.net.clone(), i)),
        w.listeners[i].clone(),
        w.clock.clone(),
    )
    .unwrap();
    ext.handle_wakeup(backlog).unwrap();
}

#[test]
fn a_group_of_mostly_sleeping_phones_reaches_its_quorums_from_push_wakeups() {
    // Silence counts as NO here, so the join passes only with the sleepers' automatic votes;
    // and three of five members asleep leave the two awake ones short of a quorum (4 of 5)
    // without the sleepers' prevotes and precommits.
    let settings = ConversationSettings {
        liveness_criteria_yes: false,
        ..fast_settings()
    };
    let names = ["ann", "bob", "cat", "dan", "eve", "fay"];
    let mut w = formed(&names, &[1, 2, 3, 4], settings);
    w.assert_agree(&[0, 1, 2, 3, 4]);
    let sleepers = [2, 3, 4];
    for &i in &sleepers {
        w.close(i);
    }
    w.c(5).request_to_join(CONV.into()).unwrap();
    for _ in 0..240 {
        w.run_for(500);
        for &i in &sleepers {
            push_wakeup(&mut w, i);
        }
        if joined(&w, 5) {
            break;
        }
    }
    assert!(joined(&w, 5), "the joiner got in while three of five slept");
    w.run_for(5_000);
    w.assert_agree(&[0, 1, 5]);
    // The sleepers' apps open later and find themselves in step.
    for &i in &sleepers {
        w.open(i);
        w.deliver_mailbox(i);
    }
    w.run_for(30_000);
    w.assert_agree(&[0, 1, 2, 3, 4, 5]);
}

#[test]
fn a_join_request_delivered_late_to_a_member_that_joined_with_it_is_not_a_rejoin() {
    let mut w = World::new(&["ann", "bob", "cat"]);
    w.c(0)
        .create_conversation(CONV.into(), fast_settings())
        .unwrap();
    // Everything cat sends bob takes 5 s: its join request reaches bob after both were
    // added by one commit.
    w.set_delay(Some(Box::new(
        |from, to, _| {
            if (from, to) == (2, 1) { 5_000 } else { 0 }
        },
    )));
    w.c(1).request_to_join(CONV.into()).unwrap();
    w.c(2).request_to_join(CONV.into()).unwrap();
    w.run_for(60_000);
    w.assert_agree(&[0, 1, 2]);
    assert_eq!(w.info(0).members.len(), 3);
    let removals = (0..3)
        .flat_map(|i| w.events(i))
        .filter(|e| {
            matches!(e, WitanEvent::VoteRequested { proposal, .. }
                if proposal.kind == ProposalKind::RemoveMember)
        })
        .count();
    assert_eq!(removals, 0, "nobody was asked to remove cat");
}

/// One member may hold 32 open proposals; the requests past that (34 here) wait for its next
/// chance instead of being dropped (the bench's formation of 64 admitted 32 and the others
/// expired).
#[test]
fn more_join_requests_at_once_than_one_member_may_propose_are_all_admitted() {
    let names: Vec<String> = (0..35).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let joiners: Vec<usize> = (1..35).collect();
    let mut w = formed(&refs, &joiners, fast_settings());
    w.run_for(60_000);
    for &i in &joiners {
        assert!(joined(&w, i), "{} got in", names[i]);
    }
    assert_eq!(w.info(0).members.len(), 35);
}

#[test]
fn a_joiner_the_group_admits_after_its_first_patience_ran_out_gets_in_and_learns_its_removal() {
    // Every member asleep when the request comes, for longer than a joiner waits for one
    // request (`pending_join_timeout_ms`, the default 10 minutes before the welcome tells the
    // joiner the group's own): the members read it from their backlog when their apps open
    // and admit the device. A joiner that gave up by then would be a member the group
    // counts that never learns it is in — nor, later, that it was removed (the
    // sleeping-phones family's seed 112).
    let names = ["ann", "bob", "cat", "dan"];
    let mut w = formed(&names, &[1, 2], fast_settings());
    w.assert_agree(&[0, 1, 2]);
    for i in 0..3 {
        w.close(i);
    }
    let joiner = 3;
    w.c(joiner).request_to_join(CONV.into()).unwrap();
    w.run_for(11 * 60_000);
    for i in 0..3 {
        w.open(i);
        w.deliver_mailbox(i);
    }
    w.run_for(60_000);
    assert!(joined(&w, joiner), "the joiner got in");
    w.assert_agree(&[0, 1, 2, 3]);
    w.c(0)
        .propose_removal(CONV.into(), member_id(&w, joiner))
        .unwrap();
    w.run_for(60_000);
    w.assert_agree(&[0, 1, 2]);
    assert!(
        left_removed(&w, joiner),
        "the removed joiner learned it left"
    );
}

#[test]
fn a_removal_commits_from_push_wakeups_alone_once_the_proposer_closes_its_app() {
    // The proposer's app is open only long enough to send the proposal; from then on no
    // app runs. The extension that a push wakes does the round's work — automatic votes,
    // the round-0 leader's candidate, round timeouts, prevotes, precommits — so the
    // removal is certified with every phone asleep between pushes.
    let settings = ConversationSettings {
        auto_vote_delay_ms: Some(1_000),
        ..fast_settings()
    };
    let names = ["ann", "bob", "cat", "dan", "eve"];
    let mut w = formed(&names, &[1, 2, 3, 4], settings);
    let all: Vec<usize> = (0..5).collect();
    w.assert_agree(&all);
    let epoch = w.info(0).epoch;
    let target = member_id(&w, 4);
    for i in 1..5 {
        w.close(i);
    }
    w.c(0).propose_removal(CONV.into(), target.clone()).unwrap();
    w.deliver();
    w.close(0);
    // A push wakes a phone with mail in its extension role for three seconds.
    let mut awake_until = [0u64; 5];
    for _ in 0..600 {
        w.run_for(500);
        for (i, until) in awake_until.iter_mut().enumerate() {
            let now = w.now();
            if *until > 0 && *until <= now {
                w.close(i);
                *until = 0;
            }
            if *until == 0 && !w.mailbox[i].is_empty() {
                w.open_extension(i);
                w.deliver_mailbox(i);
                *until = now + 3_000;
            }
        }
    }
    for i in 0..5 {
        w.open(i);
    }
    let info = w.info(0);
    assert!(
        info.epoch > epoch,
        "a commit was certified while every app was closed"
    );
    assert!(
        info.members.iter().all(|m| m.member_id != target),
        "the removal was committed"
    );
    assert!(left_removed(&w, 4), "the removed member learned it left");
}
