//! Scenarios through the public `WitanClient`: members with their own SQLite files, linked by
//! an in-process topic router and driven by a manual clock. Formation by vote and chat among
//! three members, bad and duplicate input, typed errors, restart from the file, deadlines that
//! expired while a client was closed, and a failing transport.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use witan::client::{
    ClientConfig, ConversationState, InboundPacket, WitanClient, WitanError, WitanEvent,
};
use witan::wire;

#[path = "support/clients.rs"]
mod clients;

use clients::{CONV, Listener, NodeTransport, fast_settings};

/// The harness's world of members `member-<i>` with this file's helpers.
struct World(clients::World);

impl std::ops::Deref for World {
    type Target = clients::World;
    fn deref(&self) -> &clients::World {
        &self.0
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut clients::World {
        &mut self.0
    }
}

impl World {
    fn new(n: usize) -> World {
        let names: Vec<String> = (0..n).map(|i| format!("member-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        World(clients::World::new(&names))
    }

    /// Creator 0, members 1..n join by request and vote.
    fn form(n: usize) -> World {
        let mut w = World::new(n);
        let joiners: Vec<usize> = (1..n).collect();
        w.0.form(0, &joiners);
        w
    }

    fn received(&self, i: usize) -> Vec<Vec<u8>> {
        self.events(i)
            .into_iter()
            .filter_map(|e| match e {
                WitanEvent::MessageReceived { message, .. } => Some(message.body),
                _ => None,
            })
            .collect()
    }

    fn history(&self, i: usize) -> Vec<Vec<u8>> {
        self.c(i)
            .messages(CONV.into(), None, 100)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect()
    }

    fn assert_formed(&self, members: &[usize]) {
        let reference = self
            .c(members[0])
            .conversation(CONV.into())
            .unwrap()
            .unwrap();
        let mut ids: Vec<String> = members.iter().map(|i| self.c(*i).member_id()).collect();
        ids.sort();
        for &i in members {
            let info = self.c(i).conversation(CONV.into()).unwrap().unwrap();
            assert_eq!(info.state, ConversationState::Working, "member {i}");
            assert_eq!(info.epoch, reference.epoch, "member {i}");
            let mut have: Vec<String> = info.members.iter().map(|m| m.member_id.clone()).collect();
            have.sort();
            assert_eq!(have, ids, "member {i}");
        }
    }
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

#[test]
fn three_members_join_by_vote_and_chat() {
    let mut w = World::form(3);
    w.assert_formed(&[0, 1, 2]);
    let info = w.c(0).conversation(CONV.into()).unwrap().unwrap();
    assert!(info.epoch >= 1);
    assert!(!info.stewards.is_empty());
    for i in 1..3 {
        assert!(
            w.events(i)
                .iter()
                .any(|e| matches!(e, WitanEvent::Joined { .. })),
            "member {i} heard Joined"
        );
        assert_eq!(w.c(i).subscriptions(), w.c(0).subscriptions());
        let stewards = w.c(i).conversation(CONV.into()).unwrap().unwrap().stewards;
        assert_eq!(
            stewards, info.stewards,
            "member {i} agrees on the steward list"
        );
    }
    for i in 0..3 {
        w.c(i)
            .send_message(CONV.into(), format!("hello from {i}").into_bytes())
            .unwrap();
    }
    w.deliver();
    let all: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("hello from {i}").into_bytes())
        .collect();
    for i in 0..3 {
        assert_eq!(sorted(w.history(i)), sorted(all.clone()), "history of {i}");
        let mut others = all.clone();
        others.remove(i);
        assert_eq!(sorted(w.received(i)), sorted(others), "events of {i}");
    }
    // Sequence numbers are per conversation, 1..=3, and `after_seq` pages.
    let page = w.c(1).messages(CONV.into(), Some(1), 10).unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 3]);
}

#[test]
fn duplicates_and_garbage_change_nothing() {
    let mut w = World::form(2);
    w.c(0).send_message(CONV.into(), b"once".to_vec()).unwrap();
    let chat = w.net.last().unwrap();
    w.deliver();
    assert_eq!(w.received(1), vec![b"once".to_vec()]);
    let before = (
        w.c(1).conversation(CONV.into()).unwrap(),
        w.history(1),
        w.events(1).len(),
    );

    let packet = |payload: Vec<u8>| InboundPacket {
        topic: chat.topic.clone(),
        payload,
    };
    let report = w.c(1).receive(vec![packet(chat.payload.clone())]).unwrap();
    assert_eq!(
        (report.accepted, report.duplicates, report.rejected),
        (0, 1, 0)
    );

    let mut flipped = chat.payload.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    let other = wire::encode(&wire::Envelope::new(
        "another-conversation",
        vec![7u8; 20],
        wire::PacketKind::Group,
        vec![1, 2, 3],
    ));
    let report = w
        .c(1)
        .receive(vec![
            packet(b"not a packet".to_vec()),
            packet(Vec::new()),
            packet(flipped),
            packet(other),
        ])
        .unwrap();
    assert_eq!(
        (report.accepted, report.duplicates, report.rejected),
        (0, 0, 4)
    );
    let after = (
        w.c(1).conversation(CONV.into()).unwrap(),
        w.history(1),
        w.events(1).len(),
    );
    assert_eq!(before, after);
}

#[test]
fn a_packet_refused_after_decrypting_is_undone_alone_within_its_batch() {
    // The forged packet decrypts (consuming the message key in the group held in memory)
    // and is then refused (its envelope names another sender): undoing it must also forget
    // that group, or the genuine packet after it in the same batch could not decrypt.
    let mut w = World::form(2);
    let mut sent = Vec::new();
    for text in [b"first".to_vec(), b"second".to_vec()] {
        w.c(0).send_message(CONV.into(), text).unwrap();
        sent.push(w.net.last().unwrap());
    }
    w.net.clear();
    let genuine = wire::decode_envelope(&sent[0].payload).unwrap();
    let forged = wire::encode(&wire::Envelope::new(
        CONV,
        vec![7u8; 20],
        wire::PacketKind::Group,
        genuine.body.clone(),
    ));
    let before = w.c(1).conversation(CONV.into()).unwrap().unwrap();
    let packet = |payload: Vec<u8>| InboundPacket {
        topic: sent[0].topic.clone(),
        payload,
    };
    let report = w
        .c(1)
        .receive(vec![
            packet(forged.clone()),
            packet(sent[0].payload.clone()),
            packet(forged),
            packet(sent[1].payload.clone()),
        ])
        .unwrap();
    // The second forgery wraps the MLS message the genuine packet brought, whose key is used
    // up by then: a copy of a message read, whatever its envelope claims.
    assert_eq!(
        (report.accepted, report.duplicates, report.rejected),
        (2, 1, 1)
    );
    assert_eq!(w.received(1), vec![b"first".to_vec(), b"second".to_vec()]);
    let after = w.c(1).conversation(CONV.into()).unwrap().unwrap();
    assert_eq!(after.epoch, before.epoch);
    // The group rows written by the batch are those of the two genuine packets: the member
    // keeps reading the conversation after a restart.
    w.close(1);
    w.open(1);
    w.c(0).send_message(CONV.into(), b"third".to_vec()).unwrap();
    w.deliver();
    assert_eq!(w.history(1).last().unwrap(), b"third");
}

#[test]
fn typed_errors_for_unknown_conversations_and_early_sends() {
    let w = World::new(2);
    let err = w
        .c(0)
        .send_message("nope".into(), b"x".to_vec())
        .unwrap_err();
    assert!(matches!(err, WitanError::NotFound { .. }), "{err:?}");
    w.c(1).request_to_join(CONV.into()).unwrap();
    let err = w.c(1).send_message(CONV.into(), b"x".to_vec()).unwrap_err();
    assert!(
        matches!(
            err,
            WitanError::WrongState {
                state: ConversationState::PendingJoin,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(w.c(1).messages(CONV.into(), None, 10).unwrap().is_empty());
}

#[test]
fn a_restarted_member_catches_up_from_its_file_and_keeps_chatting() {
    let mut w = World::form(3);
    let id2 = w.c(2).member_id();
    w.c(0)
        .send_message(CONV.into(), b"before".to_vec())
        .unwrap();
    w.deliver();
    w.close(2);
    w.c(0)
        .send_message(CONV.into(), b"while away".to_vec())
        .unwrap();
    w.c(1)
        .send_message(CONV.into(), b"me too".to_vec())
        .unwrap();
    w.deliver();
    w.run_for(2_000);
    w.reopen(2);
    assert_eq!(w.c(2).member_id(), id2);
    assert_eq!(
        sorted(w.history(2)),
        sorted(vec![
            b"before".to_vec(),
            b"while away".to_vec(),
            b"me too".to_vec()
        ])
    );
    w.c(2).send_message(CONV.into(), b"back".to_vec()).unwrap();
    w.deliver();
    for i in 0..2 {
        assert!(w.history(i).contains(&b"back".to_vec()), "member {i}");
    }
    w.assert_formed(&[0, 1, 2]);
}

#[test]
fn a_deadline_that_expired_while_closed_fires_on_the_next_poll() {
    let mut w = World::new(1);
    w.c(0).request_to_join(CONV.into()).unwrap();
    assert_eq!(w.c(0).subscriptions().len(), 2);
    let due = w.c(0).poll().unwrap().next_wakeup_at_ms.unwrap();
    assert!(due > w.now());
    w.close(0);
    w.clock.0.store(due + 3_600_000, Ordering::SeqCst);
    w.reopen(0);
    let report = w.c(0).poll().unwrap();
    assert_eq!(report.next_wakeup_at_ms, None);
    assert!(
        w.events(0)
            .iter()
            .any(|e| matches!(e, WitanEvent::JoinExpired { .. }))
    );
    let info = w.c(0).conversation(CONV.into()).unwrap().unwrap();
    assert_eq!(info.state, ConversationState::Left);
    assert!(w.c(0).subscriptions().is_empty());
    assert!(w.net.subscriptions()[&0].is_empty());
}

#[test]
fn a_failed_publish_stays_in_the_outbox_until_a_later_poll_sends_it() {
    let mut w = World::form(2);
    w.set_network_down(true);
    w.c(0)
        .send_message(CONV.into(), b"queued".to_vec())
        .unwrap();
    w.deliver();
    assert!(w.received(1).is_empty());
    let report = w.c(0).poll().unwrap();
    assert_eq!(report.outbox_pending, 1);
    assert_eq!(report.sent, 0);
    let retry_at = report.next_wakeup_at_ms.unwrap();
    assert!(retry_at > w.now() && retry_at <= w.now() + 1_000);

    w.set_network_down(false);
    // Not due yet: nothing is sent before the backoff elapsed.
    assert_eq!(w.c(0).poll().unwrap().sent, 0);
    w.clock.0.store(retry_at, Ordering::SeqCst);
    let report = w.c(0).poll().unwrap();
    assert_eq!((report.sent, report.outbox_pending), (1, 0));
    w.deliver();
    assert_eq!(w.received(1), vec![b"queued".to_vec()]);
}

#[test]
fn handle_wakeup_returns_the_new_messages_for_the_notification() {
    let mut w = World::form(2);
    w.close(1);
    w.c(0).send_message(CONV.into(), b"ping".to_vec()).unwrap();
    w.deliver();
    w.open(1);
    let packets = std::mem::take(&mut w.mailbox[1])
        .into_iter()
        .map(|p| InboundPacket {
            topic: String::new(),
            payload: p.payload,
        })
        .collect::<Vec<_>>();
    let report = w.c(1).handle_wakeup(packets.clone()).unwrap();
    assert_eq!(report.notifications.len(), 1);
    assert_eq!(report.notifications[0].body, b"ping".to_vec());
    assert_eq!(report.notifications[0].sender, w.c(0).member_id());
    // The same push delivered again shows nothing new.
    assert!(
        w.c(1)
            .handle_wakeup(packets)
            .unwrap()
            .notifications
            .is_empty()
    );
}

#[test]
fn traffic_that_arrives_before_the_welcome_is_buffered_and_replayed() {
    let mut w = World::new(3);
    w.c(0)
        .create_conversation(CONV.into(), fast_settings())
        .unwrap();
    w.c(1).request_to_join(CONV.into()).unwrap();
    w.run_for(30_000);
    w.assert_formed(&[0, 1]);

    // Member 2 asks to join and goes offline; the group admits it and chats on.
    w.c(2).request_to_join(CONV.into()).unwrap();
    w.close(2);
    w.run_for(20_000);
    let info = w.c(0).conversation(CONV.into()).unwrap().unwrap();
    assert_eq!(info.members.len(), 3, "member 2 was admitted");
    w.c(0)
        .send_message(CONV.into(), b"welcome aboard".to_vec())
        .unwrap();
    w.deliver();

    // It comes back and gets the chat first, the welcome after it: the chat waits in the
    // buffer (stored in the same step, so it survives a kill) and is replayed on joining.
    w.open(2);
    let mut backlog: Vec<Vec<u8>> = std::mem::take(&mut w.mailbox[2])
        .into_iter()
        .map(|p| p.payload)
        .collect();
    let chat = backlog.pop().unwrap();
    let first = w
        .c(2)
        .receive(vec![InboundPacket {
            topic: String::new(),
            payload: chat.clone(),
        }])
        .unwrap();
    assert_eq!(
        (first.accepted, first.duplicates, first.rejected),
        (1, 0, 0)
    );
    assert!(w.history(2).is_empty(), "not readable before the welcome");
    // The same packet again is a duplicate even while it is buffered.
    let again = w
        .c(2)
        .receive(vec![InboundPacket {
            topic: String::new(),
            payload: chat,
        }])
        .unwrap();
    assert_eq!(again.duplicates, 1);

    // Restart before the welcome arrives: the buffered chat is on disk.
    w.close(2);
    w.open(2);
    let packets = backlog
        .into_iter()
        .map(|payload| InboundPacket {
            topic: String::new(),
            payload,
        })
        .collect();
    w.c(2).receive(packets).unwrap();
    assert_eq!(w.history(2), vec![b"welcome aboard".to_vec()]);
    assert!(w.received(2).contains(&b"welcome aboard".to_vec()));
    w.run_for(5_000);
    w.assert_formed(&[0, 1, 2]);
}

#[test]
fn two_clients_on_one_file_see_each_others_steps() {
    // The app and its notification extension: two connections to one database, no cache.
    let mut w = World::form(2);
    let path = w.path(1);
    let extension = WitanClient::open_with_clock(
        ClientConfig {
            database_path: path,
            identity_secret: None,
            database_key: None,
            role: None,
        },
        Arc::new(NodeTransport::new(w.net.clone(), 1)),
        Arc::new(Listener::default()),
        w.clock.clone(),
    )
    .unwrap();
    assert_eq!(extension.member_id(), w.c(1).member_id());
    extension
        .send_message(CONV.into(), b"from the extension".to_vec())
        .unwrap();
    w.c(1)
        .send_message(CONV.into(), b"from the app".to_vec())
        .unwrap();
    w.deliver();
    assert_eq!(
        sorted(w.history(0)),
        sorted(vec![
            b"from the extension".to_vec(),
            b"from the app".to_vec()
        ])
    );
    let seen_by_extension: Vec<Vec<u8>> = extension
        .messages(CONV.into(), None, 10)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(seen_by_extension, w.history(1));
    assert_eq!(seen_by_extension.len(), 2);
}

/// A joiner naming its inviter (`request_to_join_expecting`) joins through the client API;
/// a malformed expected member id is refused before anything is published.
#[test]
fn a_joiner_naming_its_inviter_joins_and_a_malformed_anchor_is_refused() {
    let mut w = World::new(3);
    w.0.form(0, &[]);
    let err = w
        .c(1)
        .request_to_join_expecting(CONV.into(), "not hex".into())
        .unwrap_err();
    assert!(matches!(err, WitanError::InvalidInput { .. }), "{err:?}");
    assert!(w.c(1).conversation(CONV.into()).unwrap().is_none());
    let inviter = w.c(0).member_id();
    w.c(1)
        .request_to_join_expecting(CONV.into(), inviter.clone())
        .unwrap();
    w.c(2)
        .request_to_join_expecting(CONV.into(), inviter)
        .unwrap();
    w.run_for(30_000);
    w.assert_formed(&[0, 1, 2]);
}
