//! What one member can do alone under a group's settings (README, "What one member can do
//! alone"): the safe defaults, played through the public `WitanClient` by honest clients.
//! A removal of another member needs a YES beyond its proposer's — silence alone never
//! removes anyone — and in a group of two a member cannot remove the other while it is away.

#[path = "support/clients.rs"]
mod clients;

use clients::{CONV, World, fast_settings};
use witan::client::{ConversationSettings, WitanEvent};

fn resolved(w: &World, i: usize, pid: u64) -> Option<bool> {
    w.events(i).iter().find_map(|e| match e {
        WitanEvent::ProposalResolved {
            proposal_id,
            approved,
            ..
        } if *proposal_id == pid => Some(*approved),
        _ => None,
    })
}

fn has_member(w: &World, observer: usize, who: usize) -> bool {
    let id = w.c(who).member_id();
    w.info(observer).members.iter().any(|m| m.member_id == id)
}

#[test]
fn a_removal_only_its_proposer_votes_for_is_rejected_when_its_window_closes() {
    let mut w = World::new(&["ann", "bob", "cat", "dan"]);
    // A group that votes by hand; silent voters count as YES (the default rule).
    let settings = ConversationSettings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    w.c(0).create_conversation(CONV.into(), settings).unwrap();
    for i in 1..4 {
        w.c(i).request_to_join(CONV.into()).unwrap();
    }
    w.run_for(60_000);
    w.assert_agree(&[0, 1, 2, 3]);
    let dan = w.c(3).member_id();
    let pid = w.c(0).propose_removal(CONV.into(), dan).unwrap();
    w.run_for(60_000);
    for i in 0..4 {
        assert_eq!(resolved(&w, i, pid), Some(false), "{}", w.names[i]);
        assert!(has_member(&w, i, 3), "{}", w.names[i]);
    }
    // With one more YES the same removal passes at the window's end.
    let pid = w
        .c(0)
        .propose_removal(CONV.into(), w.c(3).member_id())
        .unwrap();
    w.deliver();
    w.c(1).vote(CONV.into(), pid, true).unwrap();
    w.run_for(60_000);
    for i in 0..3 {
        assert_eq!(resolved(&w, i, pid), Some(true), "{}", w.names[i]);
        assert!(!has_member(&w, i, 3), "{}", w.names[i]);
    }
    w.assert_agree(&[0, 1, 2]);
}

#[test]
fn in_a_group_of_two_a_member_cannot_remove_the_other_while_it_is_away() {
    let mut w = World::new(&["ann", "bob"]);
    w.form(0, &[1]);
    w.assert_agree(&[0, 1]);
    w.close(1);
    let bob = w.c(0).conversation(CONV.into()).unwrap().unwrap();
    let bob = bob
        .members
        .iter()
        .find(|m| m.member_id != w.c(0).member_id())
        .unwrap()
        .member_id
        .clone();
    let pid = w.c(0).propose_removal(CONV.into(), bob.clone()).unwrap();
    w.run_for(120_000);
    assert_ne!(resolved(&w, 0, pid), Some(true));
    assert!(w.info(0).members.iter().any(|m| m.member_id == bob));
}
