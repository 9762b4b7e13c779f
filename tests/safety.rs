//! A group never forks (issue #15): situations in which members used to apply different
//! commits for one epoch, each played through the public `WitanClient` and ending with every
//! honest member in the same epoch, with the same members and MLS epoch authenticator, no
//! proposal resolved both ways and nobody told to re-join.
//!
//! The equivocating epoch steward is the one member that does not follow the protocol: its
//! two commits are forged from its own database (`support/forge.rs`), as a modified client
//! would build them.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/forge.rs"]
mod forge;

use std::collections::BTreeMap;

use clients::{CONV, World, fast_settings};
use witan::client::{ConversationSettings, ConversationState, WitanEvent};

/// Every listed member agrees with the others, none was told to re-join, and no proposal was
/// resolved both ways among them.
fn assert_one_group(w: &World, members: &[usize]) {
    w.assert_agree(members);
    let mut decisions: BTreeMap<u64, (usize, bool)> = BTreeMap::new();
    for &i in members {
        for e in w.events(i) {
            match e {
                WitanEvent::RejoinRequired { .. } => {
                    panic!("{} was told to re-join", w.names[i])
                }
                WitanEvent::ProposalResolved {
                    proposal_id,
                    approved,
                    ..
                } => {
                    let (first, decided) = *decisions.entry(proposal_id).or_insert((i, approved));
                    assert_eq!(
                        decided, approved,
                        "proposal {proposal_id}: {} and {} decided differently",
                        w.names[first], w.names[i]
                    );
                }
                _ => {}
            }
        }
    }
}

fn epoch_steward(w: &World, observer: usize) -> usize {
    let info = w.info(observer);
    let id = info.epoch_steward.expect("the group has an epoch steward");
    w.index_of_member(&id).expect("the epoch steward is local")
}

/// How `i` resolved proposal `pid`, if it did.
fn resolved(w: &World, i: usize, pid: u64) -> Option<bool> {
    w.events(i).into_iter().find_map(|e| match e {
        WitanEvent::ProposalResolved {
            proposal_id,
            approved,
            ..
        } if proposal_id == pid => Some(approved),
        _ => None,
    })
}

fn is_member(w: &World, observer: usize, member: &str) -> bool {
    w.info(observer)
        .members
        .iter()
        .any(|m| m.member_id == member)
}

/// The members among `candidates` that have not left.
fn in_group(w: &World, candidates: &[usize]) -> Vec<usize> {
    candidates
        .iter()
        .copied()
        .filter(|i| w.info(*i).state != ConversationState::Left)
        .collect()
}

fn member_id(w: &World, i: usize) -> String {
    w.c(i).member_id()
}

#[test]
fn a_lost_no_vote_on_its_way_to_the_epoch_steward_does_not_fork_the_group() {
    let mut w = World::new(&["ann", "bob", "cat", "dan"]);
    // Automatic votes come late enough for the NO votes below to be cast first.
    let settings = ConversationSettings {
        auto_vote_delay_ms: Some(2_000),
        ..fast_settings()
    };
    w.c(0).create_conversation(CONV.into(), settings).unwrap();
    for i in 1..4 {
        w.c(i).request_to_join(CONV.into()).unwrap();
    }
    w.run_for(30_000);
    w.assert_agree(&[0, 1, 2, 3]);
    let steward = epoch_steward(&w, 0);
    let others: Vec<usize> = (0..4).filter(|i| *i != steward).collect();
    let (proposer, x, y) = (others[0], others[1], others[2]);
    let pid = w
        .c(proposer)
        .propose_removal(CONV.into(), member_id(&w, y))
        .unwrap();
    w.deliver();
    w.c(x).vote(CONV.into(), pid, false).unwrap();
    // y's NO vote never reaches the epoch steward, which does not vote by hand.
    w.cut(y, steward);
    w.c(y).vote(CONV.into(), pid, false).unwrap();
    w.deliver();
    w.uncut(y, steward);
    w.run_for(120_000);
    assert_one_group(&w, &[0, 1, 2, 3]);
    // The two NO votes win for everyone, the epoch steward included: a tie rejects.
    for i in 0..4 {
        assert_eq!(resolved(&w, i, pid), Some(false), "{}", w.names[i]);
    }
    assert!(is_member(&w, 0, &member_id(&w, y)));
}

#[test]
fn an_epoch_steward_whose_clock_runs_far_ahead_does_not_fork_the_group() {
    let mut w = World::new(&["ann", "bob", "cat", "dan"]);
    w.form(0, &[1, 2, 3]);
    w.run_for(10_000);
    w.assert_agree(&[0, 1, 2, 3]);
    let steward = epoch_steward(&w, 0);
    let target = (0..4).find(|i| *i != steward).unwrap();
    // Thirty times the allowed skew (fast settings allow one second).
    w.set_offset(steward, 30_000);
    let pid = w
        .c(steward)
        .propose_removal(CONV.into(), member_id(&w, target))
        .unwrap();
    w.run_for(300_000);
    let rest = in_group(&w, &(0..4).collect::<Vec<_>>());
    assert!(rest.contains(&steward) && rest.len() >= 3);
    assert_one_group(&w, &rest);
    // Decided once the others' clocks reached its window, and the same way everywhere.
    let decision = resolved(&w, steward, pid).expect("the removal was resolved");
    assert!(rest.iter().all(|i| resolved(&w, *i, pid) == Some(decision)));
}

#[test]
fn an_epoch_steward_that_sends_two_different_valid_commits_to_two_halves_does_not_fork_the_group() {
    let mut w = World::new(&["ann", "bob", "cat", "dan", "eve"]);
    w.form(0, &[1, 2, 3, 4]);
    w.run_for(10_000);
    w.assert_agree(&[0, 1, 2, 3, 4]);
    let steward = epoch_steward(&w, 0);
    let honest: Vec<usize> = (0..5).filter(|i| *i != steward).collect();
    let target = honest[3];
    // The epoch steward turns byzantine: nothing it sends honestly reaches anyone.
    w.mute(steward, true);
    w.c(honest[0])
        .propose_removal(CONV.into(), member_id(&w, target))
        .unwrap();
    w.deliver();
    w.poll_all();
    w.deliver();
    // Its two commits for the approved removal, one for each half of the group.
    let (a, b) = forge::two_commits(&w, steward);
    forge::inject(&mut w, &a, &[honest[0], honest[1]]);
    forge::inject(&mut w, &b, &[honest[2], honest[3]]);
    w.run_for(300_000);
    let rest = in_group(&w, &honest);
    assert!(rest.len() >= 3, "the honest members stayed together");
    assert_one_group(&w, &rest);
    assert!(!rest.contains(&target) && !is_member(&w, rest[0], &member_id(&w, target)));
}

#[test]
fn a_partition_longer_than_every_protocol_window_heals_into_one_group() {
    let mut w = World::new(&["ann", "bob", "cat", "dan", "eve", "fay"]);
    w.form(0, &[1, 2, 3, 4, 5]);
    w.run_for(20_000);
    let all: Vec<usize> = (0..6).collect();
    w.assert_agree(&all);
    let info = w.info(0);
    let steward = epoch_steward(&w, 0);
    let backup = info
        .stewards
        .iter()
        .filter_map(|s| w.index_of_member(s))
        .find(|i| *i != steward)
        .expect("a second steward");
    // Four members (with the epoch steward) on one side, two (with another steward) on the
    // other; each side proposes to remove someone on the other side.
    let small: Vec<usize> = std::iter::once(backup)
        .chain((0..6).find(|i| *i != steward && *i != backup))
        .collect();
    let large: Vec<usize> = (0..6).filter(|i| !small.contains(i)).collect();
    w.partition(&small);
    let removed_by_large = small[1];
    w.c(large[0])
        .propose_removal(CONV.into(), member_id(&w, removed_by_large))
        .unwrap();
    let victim = *large.iter().find(|i| **i != steward).unwrap();
    w.c(backup)
        .propose_removal(CONV.into(), member_id(&w, victim))
        .unwrap();
    w.run_for(60_000);
    // The side with a quorum (four of six) commits; the other side waits.
    assert!(!is_member(&w, steward, &member_id(&w, removed_by_large)));
    assert_eq!(
        w.info(backup).epoch,
        info.epoch,
        "the small side committed nothing"
    );
    // Longer than voting, inactivity, freeze and join windows together, many times over.
    w.run_for(60_000);
    w.heal();
    w.run_for(300_000);
    let rest = in_group(&w, &(0..6).collect::<Vec<_>>());
    assert!(rest.len() >= 4, "{rest:?}");
    assert_one_group(&w, &rest);
    // The small side learned it lost a member, and its own proposal went through once it
    // could reach a quorum.
    assert!(!rest.contains(&removed_by_large));
    assert!(!is_member(&w, rest[0], &member_id(&w, victim)));
}

#[test]
fn deliveries_slower_than_the_freeze_window_do_not_fork_the_group() {
    let mut w = World::new(&["ann", "bob", "cat", "dan", "eve"]);
    w.form(0, &[1, 2, 3, 4]);
    w.run_for(10_000);
    w.assert_agree(&[0, 1, 2, 3, 4]);
    let steward = epoch_steward(&w, 0);
    let others: Vec<usize> = (0..5).filter(|i| *i != steward).collect();
    // Every delivery takes 1.2 to 4 s (the freeze window is 1 s), in varying order.
    w.set_delay(Some(Box::new(|from, to, seq| {
        1_200 + ((from as u64 * 31 + to as u64 * 17 + seq * 7) % 2_800)
    })));
    // The epoch steward is silent, so the others must commit the removal among themselves.
    w.mute(steward, true);
    let target = member_id(&w, others[3]);
    w.c(others[0])
        .propose_removal(CONV.into(), target.clone())
        .unwrap();
    w.run_for(600_000);
    assert!(
        !is_member(&w, others[0], &target),
        "committed without the epoch steward"
    );
    w.set_delay(None);
    w.mute(steward, false);
    w.run_for(300_000);
    let rest = in_group(&w, &(0..5).collect::<Vec<_>>());
    assert!(rest.len() >= 4, "{rest:?}");
    assert_one_group(&w, &rest);
}
