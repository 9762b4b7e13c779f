//! The engine's state in parts: what a step changed is reported part by part (a chat packet
//! changes none), and every part reads back as it was written, in the middle of a commit
//! round too.

mod support;

use std::collections::BTreeMap;

use support::{Net, fast_settings};
use witan::protocol::{Conversation, PartKey};
use witan::wire::{self, group_payload::Content};

#[test]
fn a_chat_packet_changes_no_part_of_the_state() {
    let mut net = Net::form(3, fast_settings());
    net.run_for(5_000);
    let chat = net.craft(
        0,
        Content::Chat(wire::Chat {
            message_id: vec![9; 16],
            body: b"hello".to_vec(),
            sent_at_ms: 1,
        }),
    );
    net.nodes[2].conv.as_mut().unwrap().clear_dirty();
    net.receive(2, &chat).unwrap();
    assert!(net.nodes[2].history.iter().any(|m| m.body == b"hello"));
    assert!(
        net.nodes[2].conv().dirty_parts().is_empty(),
        "{:?}",
        net.nodes[2].conv().dirty_parts()
    );
    // A vote changes the ballots, and only what the vote moves on.
    let target = net.nodes[1].id();
    net.act(0, |c, ctx| c.propose_removal(ctx, target).map(|(_, o)| o))
        .unwrap();
    net.nodes[2].conv.as_mut().unwrap().clear_dirty();
    net.deliver();
    let dirty = net.nodes[2].conv().dirty_parts();
    assert!(dirty.contains(&PartKey::Ballots));
    assert!(!dirty.contains(&PartKey::Joins) && !dirty.contains(&PartKey::Archive));
}

#[test]
fn every_part_reads_back_as_it_was_written() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(5_000);
    // In the middle of a round: a removal decided, the round-0 leader silent, a later
    // round's value prevoted by a quorum.
    let leader = net.nodes[0].conv().leaders()[0];
    let silent = net.nodes.iter().position(|n| n.id() == leader).unwrap();
    net.muted.insert(silent);
    let target = (0..4).find(|i| *i != silent).unwrap();
    let proposer = (0..4).find(|i| *i != silent && *i != target).unwrap();
    let target_id = net.nodes[target].id();
    net.act(proposer, |c, ctx| {
        c.propose_removal(ctx, target_id).map(|(_, o)| o)
    })
    .unwrap();
    let epoch = net.nodes[proposer].conv().epoch();
    // Until a member is locked on a value (a polka formed) and the commit is not applied yet.
    let locked = |net: &Net| {
        net.nodes
            .iter()
            .any(|n| n.conv().commit_round().lock().is_some())
    };
    for _ in 0..200 {
        if locked(&net) {
            break;
        }
        if !net.deliver_one() {
            net.now += 50;
            for i in 0..4 {
                net.poll(i);
            }
        }
    }
    assert!(locked(&net), "a member locked on a value");
    assert_eq!(net.nodes[proposer].conv().epoch(), epoch);
    for i in 0..4 {
        let conv = net.nodes[i].conv();
        let parts: BTreeMap<PartKey, Vec<u8>> = PartKey::ALL
            .iter()
            .map(|k| (*k, conv.encode_part(*k)))
            .collect();
        let back = Conversation::from_parts(&parts).unwrap();
        assert_eq!(back.to_bytes(), conv.to_bytes(), "node {i}");
        let mut one = parts.clone();
        one.remove(&PartKey::Round);
        assert!(
            Conversation::from_parts(&one).is_err(),
            "every part is needed"
        );
        let mut damaged = parts;
        if let Some(core) = damaged.get_mut(&PartKey::Core) {
            core.truncate(core.len() / 2);
        }
        assert!(Conversation::from_parts(&damaged).is_err());
    }
}
