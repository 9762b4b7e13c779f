//! The engine's state in parts: what a step changed is reported part by part (a chat packet
//! changes none), and every part reads back as it was written, in the middle of a commit
//! round too.

mod support;

use std::collections::BTreeMap;

use support::{Net, fast_settings};
use witan::protocol::{Conversation, PartKey, State};
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
        // As a store keeps it: the ballots without their votes, the votes as rows. Votes
        // read inline are to be moved to rows (the ballots part is marked changed).
        let votes = back.vote_changes().put;
        assert!(!votes.is_empty(), "node {i} holds votes");
        assert!(back.dirty_parts().contains(&PartKey::Ballots));
        let apart: BTreeMap<PartKey, Vec<u8>> = PartKey::ALL
            .iter()
            .map(|k| (*k, conv.encode_part_without_votes(*k)))
            .collect();
        assert!(apart[&PartKey::Ballots].len() < parts[&PartKey::Ballots].len());
        let rows = Conversation::from_stored(&apart, votes.clone()).unwrap();
        assert_eq!(rows.to_bytes(), conv.to_bytes(), "node {i}");
        assert!(rows.vote_changes().is_empty() && rows.dirty_parts().is_empty());
        // A vote stored twice, or on a proposal that is not open, is a damaged state.
        let twice = [votes.clone(), votes.clone()].concat();
        assert!(Conversation::from_stored(&apart, twice).is_err());
        let mut stray = votes.clone();
        stray[0].ballot = [0xAB; 32];
        assert!(Conversation::from_stored(&apart, stray).is_err());
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

/// The parts of every node, encoded.
fn encoded(net: &Net) -> Vec<Option<BTreeMap<PartKey, Vec<u8>>>> {
    net.nodes
        .iter()
        .map(|n| {
            n.conv.as_ref().map(|c| {
                PartKey::ALL
                    .iter()
                    .map(|k| (*k, c.encode_part(*k)))
                    .collect()
            })
        })
        .collect()
}

/// Runs `act` with every node's change marks cleared, then checks that every part that
/// changed at a node is marked: a store rewrites only the marked parts.
fn checked(net: &mut Net, what: &str, act: impl FnOnce(&mut Net)) {
    for n in &mut net.nodes {
        if let Some(c) = n.conv.as_mut() {
            c.clear_dirty();
        }
    }
    let before = encoded(net);
    act(net);
    for (i, (b, a)) in before.iter().zip(encoded(net)).enumerate() {
        let (Some(b), Some(a)) = (b, a) else { continue };
        let dirty = net.nodes[i].conv().dirty_parts();
        for k in PartKey::ALL {
            assert!(
                b[k] == a[k] || dirty.contains(k),
                "{what}: node {i} changed its {} part without marking it",
                k.as_str()
            );
        }
    }
}

/// Like `Net::run_for`, one delivery or poll at a time, each `checked`.
fn run_checked(net: &mut Net, horizon_ms: u64) {
    let end = net.now + horizon_ms;
    loop {
        let mut delivered = true;
        while delivered {
            checked(net, "a delivery", |net| delivered = net.deliver_one());
        }
        for i in 0..net.nodes.len() {
            checked(net, "a poll", |net| net.poll(i));
        }
        let mut more = false;
        checked(net, "a delivery", |net| more = net.deliver_one());
        match net.next_deadline() {
            Some(at) if at <= end => net.now = net.now.max(at),
            _ if more => {}
            _ => return,
        }
    }
}

#[test]
fn every_part_a_step_changes_is_marked_through_joins_commits_and_removals() {
    let mut net = Net::new(6);
    net.create(0, fast_settings());
    for i in 1..4 {
        net.request_join(i);
    }
    run_checked(&mut net, 30_000);
    net.request_join(4);
    run_checked(&mut net, 30_000);
    assert!(net.nodes[0].conv().members().contains(&net.nodes[4].id()));
    // One commit adds a requested member and removes another: the removed member applies it
    // too (and learns it left).
    // The member removed is last in the leader order (the first leader proposes both).
    let target = *net.nodes[0].conv().leaders().last().unwrap();
    let t = net.nodes.iter().position(|n| n.id() == target).unwrap();
    let proposer = (0..5).find(|i| *i != t).unwrap();
    net.request_join(5);
    checked(&mut net, "a proposal", |net| {
        net.act(proposer, |c, ctx| {
            c.propose_removal(ctx, target).map(|(_, o)| o)
        })
        .unwrap();
    });
    run_checked(&mut net, 30_000);
    let members = net.nodes[0].conv().members();
    assert!(!members.contains(&target) && members.contains(&net.nodes[5].id()));
    assert_eq!(net.nodes[t].conv().state(), State::Left);
    let rest: Vec<usize> = (0..6).filter(|i| *i != t).collect();
    net.assert_agree(&rest);
}

/// What a store writes for a step of `conv`: every part the step marked changed (the
/// ballots without their votes) and the vote rows that changed.
fn saved_bytes(conv: &Conversation) -> usize {
    let parts: usize = (conv.dirty_parts().iter())
        .map(|k| conv.encode_part_without_votes(*k).len())
        .sum();
    let votes = conv.vote_changes();
    let rows: usize = votes.put.iter().map(|v| 36 + v.vote.len()).sum();
    parts + rows + 36 * (votes.taken.len() + votes.dropped.len())
}

#[test]
fn a_vote_received_alone_is_saved_in_bytes_that_do_not_grow_with_the_votes_held() {
    // A live socket hands a member each vote in a step of its own: if a step rewrote every
    // vote its ballot holds, a removal in a group of n would write n² votes per member.
    let mut net = Net::form(12, fast_settings());
    net.run_for(5_000);
    let leader = net.nodes[0].conv().leaders()[0];
    let order: Vec<usize> = (0..12).filter(|i| net.nodes[*i].id() != leader).collect();
    let (proposer, target, observer) = (order[0], order[1], order[2]);
    let target_id = net.nodes[target].id();
    net.act(proposer, |c, ctx| {
        c.propose_removal(ctx, target_id).map(|(_, o)| o)
    })
    .unwrap();
    let held = |net: &Net| {
        let c = net.nodes[observer].conv();
        c.ballots()
            .open()
            .map(|b| b.votes().count())
            .max()
            .unwrap_or(0)
    };
    // (votes held after the step, bytes the step saves) for each step that counted a vote.
    let mut saves: Vec<(usize, usize)> = Vec::new();
    for _ in 0..500 {
        net.nodes[observer].conv.as_mut().unwrap().clear_dirty();
        let before = held(&net);
        if !net.deliver_one() {
            break;
        }
        let after = held(&net);
        if after == before + 1 {
            saves.push((after, saved_bytes(net.nodes[observer].conv())));
        }
    }
    assert!(saves.len() >= 6, "votes counted one at a time: {saves:?}");
    let (first, last) = (saves[1], saves[saves.len() - 1]);
    assert!(last.0 >= first.0 + 4, "{saves:?}");
    assert!(
        last.1 <= first.1 + 16,
        "a step saving one vote wrote {} bytes with {} votes held, {} with {}: {saves:?}",
        last.1,
        last.0,
        first.1,
        first.0
    );
}
