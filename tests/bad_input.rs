//! Bad input of every kind is refused with a typed error and leaves the member unchanged:
//! truncated and oversized bytes, another conversation, a sender outside the group, a stale
//! epoch, forged and replayed votes.

mod support;

use support::{CONV, Net, fast_settings};
use witan::protocol::{BallotError, ProtocolError};
use witan::wire::{self, group_payload::Content};

fn formed() -> Net {
    let mut net = Net::form(3, fast_settings());
    net.run_for(5_000);
    net
}

#[test]
fn truncated_and_oversized_packets_are_malformed() {
    let mut net = formed();
    let before = net.snapshot(1);
    let good = net.craft(
        0,
        Content::Chat(wire::Chat {
            message_id: vec![1; 16],
            body: b"x".to_vec(),
            sent_at_ms: 1,
        }),
    );
    assert!(wire::decode_envelope(&good[..good.len() / 2]).is_err());
    assert!(matches!(
        net.receive(1, &good[..good.len() - 3]),
        Err(ProtocolError::Wire(_))
    ));
    let huge = vec![0u8; wire::limits::MAX_ENVELOPE_BYTES + 1];
    assert!(matches!(net.receive(1, &huge), Err(ProtocolError::Wire(_))));
    assert_eq!(net.snapshot(1), before);
}

#[test]
fn packet_for_another_conversation_is_refused() {
    let mut net = formed();
    let before = net.snapshot(1);
    let env = wire::Envelope::new(
        "another",
        net.nodes[0].id().as_bytes(),
        wire::PacketKind::Group,
        vec![1, 2, 3],
    );
    let err = net.receive(1, &wire::encode(&env)).unwrap_err();
    assert!(matches!(err, ProtocolError::WrongConversation), "{err}");
    assert_eq!(net.snapshot(1), before);
}

#[test]
fn sender_outside_the_group_is_refused() {
    let mut net = formed();
    // A stranger runs its own group under the same conversation id.
    net.nodes.push(Net::new(9).nodes.pop().unwrap());
    net.create(3, fast_settings());
    let packet = net.craft(
        3,
        Content::Chat(wire::Chat {
            message_id: vec![2; 16],
            body: b"spam".to_vec(),
            sent_at_ms: 1,
        }),
    );
    let before = net.snapshot(1);
    assert!(net.receive(1, &packet).is_err());
    assert_eq!(net.snapshot(1), before);
    assert!(net.nodes[1].history.iter().all(|m| m.body != b"spam"));
}

#[test]
fn sender_field_must_match_the_authenticated_sender() {
    let mut net = formed();
    let packet = net.craft(
        0,
        Content::Chat(wire::Chat {
            message_id: vec![3; 16],
            body: b"who".to_vec(),
            sent_at_ms: 1,
        }),
    );
    let mut env = wire::decode_envelope(&packet).unwrap();
    env.sender = net.nodes[2].id().as_bytes().to_vec();
    let forged = wire::encode(&env);
    let before = net.snapshot(1);
    assert!(matches!(
        net.receive(1, &forged),
        Err(ProtocolError::SenderMismatch)
    ));
    assert_eq!(net.snapshot(1), before);
}

#[test]
fn forged_vote_is_refused_and_changes_nothing() {
    let settings = witan::protocol::Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::form(4, settings);
    let target = net.nodes[3].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    let mut vote = net.sign_vote(1, 1, pid, true);
    vote.signature[5] ^= 0x40;
    let packet = net.craft(1, Content::Vote(vote));
    let before = net.snapshot(2);
    let err = net.receive(2, &packet).unwrap_err();
    assert!(
        matches!(err, ProtocolError::Vote(BallotError::Vote(_))),
        "{err}"
    );
    assert_eq!(net.snapshot(2), before);
}

#[test]
fn vote_carried_by_another_member_is_not_counted() {
    let settings = witan::protocol::Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::form(4, settings);
    let target = net.nodes[3].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    // Node 1 signs a vote with a throw-away key outside the group.
    net.nodes.push(Net::new(43).nodes.pop().unwrap());
    net.nodes[4].identity = witan::mls::Identity::from_secret(&[42; 32]).unwrap();
    let stuffed = net.sign_vote(4, 1, pid, true);
    let packet = net.craft(1, Content::Vote(stuffed));
    assert!(net.receive(2, &packet).is_err());
    let votes = |net: &Net| {
        net.nodes[2]
            .conv()
            .ballots()
            .by_id(pid)
            .unwrap()
            .votes()
            .count()
    };
    assert_eq!(votes(&net), 1);
}

#[test]
fn replayed_vote_changes_nothing() {
    let settings = witan::protocol::Settings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    let mut net = Net::form(4, settings);
    let target = net.nodes[3].id();
    let mut pid = 0;
    net.act(0, |c, ctx| {
        let (id, out) = c.propose_removal(ctx, target)?;
        pid = id;
        Ok(out)
    })
    .unwrap();
    net.deliver();
    let vote = net.sign_vote(1, 1, pid, true);
    let first = net.craft(1, Content::Vote(vote.clone()));
    let replay = net.craft(1, Content::Vote(vote));
    net.receive(2, &first).unwrap();
    let votes = |net: &Net| {
        net.nodes[2]
            .conv()
            .ballots()
            .by_id(pid)
            .unwrap()
            .votes()
            .count()
    };
    let before = votes(&net);
    net.receive(2, &replay).unwrap();
    assert_eq!(votes(&net), before);
}

#[test]
fn late_traffic_of_the_previous_epoch_is_delivered_once_and_a_left_member_refuses_it() {
    let mut net = Net::form(4, fast_settings());
    net.run_for(10_000);
    let old = net.craft(
        1,
        Content::Chat(wire::Chat {
            message_id: vec![4; 16],
            body: b"old".to_vec(),
            sent_at_ms: 1,
        }),
    );
    let epoch_before = net.nodes[2].conv().epoch();
    let target = net.nodes[3].id();
    net.act(0, |c, ctx| c.propose_removal(ctx, target).map(|(_, o)| o))
        .unwrap();
    net.run_for(20_000);
    assert!(net.nodes[2].conv().epoch() > epoch_before);
    assert_eq!(net.nodes[3].state(), witan::protocol::State::Left);
    net.receive(2, &old).unwrap();
    net.receive(2, &old).unwrap();
    assert_eq!(
        net.nodes[2]
            .history
            .iter()
            .filter(|m| m.body == b"old")
            .count(),
        1
    );
    let before = net.snapshot(3);
    assert!(matches!(
        net.receive(3, &old),
        Err(ProtocolError::WrongState { .. })
    ));
    assert_eq!(net.snapshot(3), before);
    let _ = CONV;
}

#[test]
fn a_resolved_proposal_replayed_to_a_member_that_joined_later_is_refused() {
    let mut net = Net::new(4);
    net.create(0, fast_settings());
    for i in 1..3 {
        net.request_join(i);
    }
    net.run_for(30_000);
    // Member 0 proposes removing member 1; the group commits it.
    let removal = net.make_proposal(
        0,
        witan::protocol::Action::Remove {
            member: net.nodes[1].id(),
        },
    );
    let packet = net.craft(0, Content::Proposal(removal.clone()));
    for i in 1..3 {
        net.receive(i, &packet).unwrap();
    }
    net.run_for(30_000);
    assert!(!net.nodes[0].conv().members().contains(&net.nodes[1].id()));
    net.request_join(3);
    net.run_for(30_000);
    assert!(net.nodes[3].conv().is_member_state());
    // Member 2 replays the old proposal, with its votes, in the current epoch.
    let replay = net.craft(2, Content::Proposal(removal));
    let before = net.snapshot(3);
    let err = net.receive(3, &replay).unwrap_err();
    assert!(
        err.to_string().contains("before this member joined"),
        "{err}"
    );
    assert_eq!(net.snapshot(3), before);
    // A member that saw it resolved refuses it too.
    let before = net.snapshot(0);
    assert!(net.receive(0, &replay).is_err());
    assert_eq!(net.snapshot(0), before);
}
