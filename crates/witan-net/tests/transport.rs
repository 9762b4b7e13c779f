//! The transport on loopback, in one process: a service node on a thread and members with
//! their own files. Publishing with no peer or over the size limit is an error (the outbox
//! keeps the packet), members talk through the node, a member that was away catches up from
//! the store, a page the client refuses leaves the cursor where it was, and live packets the
//! client refused come back on `resume`.

mod support;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use support::{CONV, Member, drive_until, settings, wait_until};
use witan::client::{ConversationState, OutboundPacket, Transport};
use witan_net::node::{NodeConfig, NodeHandle};
use witan_net::{Limits, NetConfig, NetEvent, NetTransport};

const LIMIT: Duration = Duration::from_secs(30);

fn node() -> NodeHandle {
    NodeHandle::spawn(NodeConfig::default()).expect("the node starts")
}

/// Alice creates the conversation, bob joins it, and bob's catch-ups have settled.
fn pair(dir: &Path, n: &NodeHandle) -> (Member, Member) {
    let alice = Member::open(dir, "alice", &n.address(), |_| {});
    let bob = Member::open(dir, "bob", &n.address(), |_| {});
    alice
        .client
        .create_conversation(CONV.into(), settings())
        .unwrap();
    bob.client.request_to_join(CONV.into()).unwrap();
    drive_until(&[&alice, &bob], LIMIT, "bob joined", || {
        bob.state() == Some(ConversationState::Working)
    });
    drive_until(&[&alice, &bob], LIMIT, "bob's catch-ups settled", || {
        bob.net.catch_up().is_ok_and(|r| r.packets == 0)
    });
    (alice, bob)
}

#[test]
fn publishing_with_no_relay_peer_is_an_error_and_the_outbox_keeps_the_packet() {
    let dir = tempfile::tempdir().unwrap();
    let alone = NetTransport::start(NetConfig::default()).unwrap();
    let packet = OutboundPacket {
        topic: "/witan/1/00/app".into(),
        payload: vec![1; 10],
        packet_id: "00".into(),
    };
    let err = alone.publish(packet).unwrap_err();
    assert!(err.to_string().contains("no relay peer"), "{err}");

    // Through witan: the key package of a join cannot go out, so it stays queued.
    let n = node();
    let m = Member::open(dir.path(), "joiner", &n.address(), |c| {
        c.peers.clear();
        c.store = None;
    });
    m.client.request_to_join(CONV.into()).unwrap();
    let report = m.client.poll().unwrap();
    assert_eq!(report.outbox_pending, 1);
    assert_eq!(report.sent, 0);
}

#[test]
fn a_packet_over_the_size_limit_is_refused_and_stays_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let n = node();
    let small = |c: &mut NetConfig| c.limits = Limits::new(2_000).unwrap();
    let alice = Member::open(dir.path(), "alice", &n.address(), small);
    wait_until(LIMIT, "alice connected", || {
        alice.net.connected_peers() == 1
    });
    let over = OutboundPacket {
        topic: "/witan/1/00/app".into(),
        payload: vec![0; 2_001],
        packet_id: "01".into(),
    };
    let err = alice.net.publish(over).unwrap_err();
    assert!(err.to_string().contains("over the relay limit"), "{err}");

    alice
        .client
        .create_conversation(CONV.into(), settings())
        .unwrap();
    let pending = alice.client.poll().unwrap().outbox_pending;
    alice
        .client
        .send_message(CONV.into(), vec![b'x'; 3_000])
        .unwrap();
    let report = alice.client.poll().unwrap();
    assert_eq!(
        report.outbox_pending,
        pending + 1,
        "the large chat waits in the outbox"
    );
}

#[test]
fn members_talk_through_the_node_and_one_that_was_away_catches_up_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let n = node();
    let (alice, bob) = pair(dir.path(), &n);
    assert_eq!(
        (alice.net.connected_peers(), bob.net.connected_peers()),
        (1, 1)
    );
    alice
        .client
        .send_message(CONV.into(), b"live".to_vec())
        .unwrap();
    drive_until(&[&alice, &bob], LIMIT, "bob got the live chat", || {
        bob.bodies() == ["live"]
    });

    // Bob goes away (transport and client dropped); alice goes on talking.
    drop(bob);
    alice.send_all(&["while", "you", "were", "away"]);
    let bob = Member::open(dir.path(), "bob", &n.address(), |_| {});
    drive_until(&[&alice, &bob], LIMIT, "bob caught up", || {
        bob.bodies().len() == 5
    });
    assert_eq!(bob.bodies(), ["live", "while", "you", "were", "away"]);
    // The cursor was kept: a catch-up now brings nothing new.
    let again = bob.net.catch_up().unwrap();
    assert_eq!(again.packets, 0, "{again:?}");
}

#[test]
fn a_page_the_client_refuses_leaves_the_cursor_and_comes_again() {
    let dir = tempfile::tempdir().unwrap();
    let n = node();
    let (alice, bob) = pair(dir.path(), &n);

    // Bob stops hearing the relay (his transport is replaced by one with no relay peer,
    // catching up from the same cursors), and alice sends two chats.
    let bob_db = dir.path().join("bob.db");
    drop(bob);
    alice.send_all(&["one", "two"]);
    // Another connection holds bob's database while he comes back (with no relay peer: he
    // can only catch up): handle_wakeup fails (busy) and the cursor must not move. The
    // catch-up that attaching starts in the background fails the same way.
    let blocker = Connection::open(&bob_db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let bob = Member::open(dir.path(), "bob", &n.address(), |c| c.peers.clear());
    assert!(bob.net.catch_up().is_err());
    blocker.execute_batch("ROLLBACK").unwrap();
    // Bob hears no relay: the chats can only come from the store, from his cursor. Had the
    // refused page moved it, they would never come.
    drive_until(&[&bob], LIMIT, "bob caught up after the refusal", || {
        let _ = bob.net.catch_up();
        bob.bodies() == ["one", "two"]
    });
    assert_eq!(bob.net.catch_up().unwrap().packets, 0);
}

#[test]
fn live_packets_the_client_refused_are_caught_up_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let n = node();
    let (alice, bob) = pair(dir.path(), &n);
    // Bob's network events from now on (older ones are dropped).
    let events = bob.net.events().unwrap();
    while events.try_recv().is_ok() {}

    // Bob's database is held by another connection when alice's chat arrives: the live
    // packet is refused, and so is the catch-up that follows it.
    let blocker = Connection::open(dir.path().join("bob.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    alice
        .client
        .send_message(CONV.into(), b"while busy".to_vec())
        .unwrap();
    let mut warnings = Vec::new();
    wait_until(LIMIT, "the refused delivery and catch-up", || {
        while let Ok(event) = events.try_recv() {
            if let NetEvent::Warning { message } = event {
                warnings.push(message);
            }
        }
        warnings.iter().any(|w| w.starts_with("catch-up failed"))
    });
    assert!(warnings[0].contains("live packets refused"), "{warnings:?}");
    blocker.execute_batch("ROLLBACK").unwrap();

    // Nothing else would bring the chat now (the transport catches up on triggers only);
    // coming back does.
    std::thread::sleep(Duration::from_millis(300));
    assert!(bob.bodies().is_empty());
    bob.net.resume();
    wait_until(LIMIT, "bob caught up on resume", || {
        bob.bodies() == ["while busy"]
    });
}
