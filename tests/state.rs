//! The engine's state in parts: what a step changed is reported part by part (a chat packet
//! changes none), and every part reads back as it was written, in the middle of a commit
//! round too.

mod support;

use std::collections::BTreeMap;

use support::{Net, fast_settings};
use witan::protocol::{Conversation, PartKey, State, StoredVote};
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

/// A conversation as a store keeping votes in rows holds it: its parts and vote rows.
#[derive(Default)]
struct Kept {
    parts: BTreeMap<PartKey, Vec<u8>>,
    rows: BTreeMap<([u8; 32], u32), StoredVote>,
}

impl Kept {
    /// Saves what `conv` changed as the client does (a part whose bytes did not change is not
    /// written); returns the bytes written, counting 36 per row key.
    fn save(&mut self, conv: &mut Conversation) -> usize {
        let changes = conv.place_votes();
        let mut written = 0;
        for k in conv.dirty_parts() {
            let bytes = conv.encode_part_without_rows(k);
            if self.parts.get(&k) != Some(&bytes) {
                written += bytes.len();
                self.parts.insert(k, bytes);
            }
        }
        if changes.all_dropped {
            self.rows.clear();
        }
        for d in &changes.dropped {
            self.rows.retain(|(ballot, _), _| ballot != d);
        }
        for key in &changes.taken {
            self.rows.remove(key);
        }
        written += 36 * (changes.dropped.len() + changes.taken.len());
        for v in changes.put {
            written += 36 + v.vote.len();
            self.rows.insert((v.ballot, v.row), v);
        }
        conv.clear_dirty();
        written
    }

    fn load(&self) -> Result<Conversation, witan::protocol::StateError> {
        Conversation::from_stored(&self.parts, self.rows.values().cloned().collect())
    }
}

/// A formed group of 12 in which a member proposes a removal, and a member (neither the
/// round-0 leader, the proposer nor the target) whose state is kept, as stored before it.
fn removal_watched() -> (Net, usize, Kept) {
    let mut net = Net::form(12, fast_settings());
    net.run_for(5_000);
    let leader = net.nodes[0].conv().leaders()[0];
    let order: Vec<usize> = (0..12).filter(|i| net.nodes[*i].id() != leader).collect();
    let (proposer, target, observer) = (order[0], order[1], order[2]);
    let target_id = net.nodes[target].id();
    let mut kept = Kept::default();
    let conv = net.nodes[observer].conv.as_mut().unwrap();
    for k in PartKey::ALL {
        kept.parts.insert(*k, conv.encode_part_without_rows(*k));
    }
    conv.clear_dirty();
    net.act(proposer, |c, ctx| {
        c.propose_removal(ctx, target_id).map(|(_, o)| o)
    })
    .unwrap();
    (net, observer, kept)
}

#[test]
fn a_vote_received_alone_is_saved_in_bytes_that_do_not_grow_with_the_votes_held() {
    // A live socket hands a member each vote in a step of its own: if a step rewrote every
    // vote its ballot holds, a removal in a group of n would write n² votes per member.
    let (mut net, observer, mut kept) = removal_watched();
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
        let before = held(&net);
        if !net.deliver_one() {
            break;
        }
        let after = held(&net);
        let conv = net.nodes[observer].conv.as_mut().unwrap();
        let written = kept.save(conv);
        // What is stored reads back as the member holds it, at every step.
        assert_eq!(kept.load().unwrap().to_bytes(), conv.to_bytes());
        if after == before + 1 {
            saves.push((after, written));
        }
    }
    assert!(saves.len() >= 8, "votes counted one at a time: {saves:?}");
    // The first votes of a ballot are written inline (a quarter of its votes or more), the
    // later ones in rows of their own.
    let later: Vec<usize> = (saves.iter().filter(|(k, _)| *k >= 6))
        .map(|(_, bytes)| *bytes)
        .collect();
    let (least, most) = (later.iter().min(), later.iter().max());
    assert!(later.len() >= 4, "{saves:?}");
    assert!(
        most <= least.map(|l| l + 16).as_ref(),
        "a step saving one vote wrote more as the votes held grew: {saves:?}"
    );
}

#[test]
fn a_candidate_is_saved_once_by_a_member_that_follows_its_round() {
    // A candidate carries every vote it resolves: a member that wrote it again at each later
    // step of its round (the polka, its precommit) wrote n votes several times per commit.
    let (mut net, observer, mut kept) = removal_watched();
    let epoch = net.nodes[observer].conv().epoch();
    // (the candidate's size, bytes saved by each later step of the epoch)
    let mut candidate: Option<usize> = None;
    let mut later: Vec<usize> = Vec::new();
    for _ in 0..5_000 {
        if !net.deliver_one() {
            let Some(at) = net.next_deadline() else { break };
            net.now = net.now.max(at);
            for i in 0..net.nodes.len() {
                net.poll(i);
            }
        }
        let conv = net.nodes[observer].conv.as_mut().unwrap();
        let written = kept.save(conv);
        assert_eq!(kept.load().unwrap().to_bytes(), conv.to_bytes());
        if conv.epoch() != epoch {
            break;
        }
        let held = (conv.commit_round().candidates())
            .map(prost::Message::encoded_len)
            .max();
        match (candidate, held) {
            (None, Some(len)) => candidate = Some(len),
            (Some(_), _) => later.push(written),
            _ => {}
        }
    }
    let len = candidate.expect("the observer received the round's candidate");
    assert!(
        net.nodes[observer].conv().epoch() > epoch,
        "the removal was certified"
    );
    let after: usize = later.iter().sum();
    assert!(
        later.iter().any(|b| *b > 0),
        "the round went on after the candidate: {later:?}"
    );
    assert!(
        after < len,
        "the steps after the candidate ({len} bytes) saved {after} bytes: {later:?}"
    );
}

#[test]
fn a_vote_row_stored_twice_or_for_a_proposal_not_open_is_a_damaged_state() {
    let mut net = Net::form(12, fast_settings());
    net.run_for(5_000);
    let target_id = net.nodes[11].id();
    let mut kept = Kept::default();
    let conv = net.nodes[2].conv.as_mut().unwrap();
    kept.save(conv);
    for k in PartKey::ALL {
        kept.parts.insert(*k, conv.encode_part_without_rows(*k));
    }
    net.act(1, |c, ctx| {
        c.propose_removal(ctx, target_id).map(|(_, o)| o)
    })
    .unwrap();
    while kept.rows.is_empty() && net.deliver_one() {
        kept.save(net.nodes[2].conv.as_mut().unwrap());
    }
    let rows: Vec<StoredVote> = kept.rows.values().cloned().collect();
    assert!(!rows.is_empty(), "a vote was stored in a row");
    assert!(kept.load().is_ok());
    let twice = [rows.clone(), rows.clone()].concat();
    assert!(Conversation::from_stored(&kept.parts, twice).is_err());
    let mut stray = rows.clone();
    stray[0].ballot = [0xAB; 32];
    assert!(Conversation::from_stored(&kept.parts, stray).is_err());
    let mut garbled = rows;
    garbled[0].vote.truncate(3);
    assert!(Conversation::from_stored(&kept.parts, garbled).is_err());
}
