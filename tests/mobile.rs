//! Mobile life through the public `WitanClient`: the notification-extension role (decrypts
//! and notifies, leaves governance to the app, waits a bounded time for the app's lock and
//! keeps packets aside instead of blocking), encryption at rest (a keyed database, wrong
//! and missing keys, encrypting a database written without a key), and a client kept open
//! while another connection (the other process) moves its group on.

#[path = "support/clients.rs"]
mod clients;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clients::{CONV, Listener, ManualClock, World, fast_settings};
use witan::client::{
    ClientConfig, ClientRole, ConversationSettings, InboundPacket, OutboundPacket, Transport,
    TransportError, WitanClient, WitanError, WitanEvent,
};

/// A transport that records what it is asked to publish.
#[derive(Default)]
struct Recorder(Mutex<Vec<OutboundPacket>>);

impl Transport for Recorder {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        self.0.lock().unwrap().push(packet);
        Ok(())
    }
    fn subscribe(&self, _topic: String) {}
    fn unsubscribe(&self, _topic: String) {}
}

fn config(path: &str, key: Option<&[u8]>, role: Option<ClientRole>) -> ClientConfig {
    ClientConfig {
        database_path: path.to_string(),
        identity_secret: None,
        database_key: key.map(<[u8]>::to_vec),
        role,
    }
}

fn open(
    path: &str,
    key: Option<&[u8]>,
    role: Option<ClientRole>,
    transport: Arc<dyn Transport>,
    clock: Arc<ManualClock>,
) -> Result<Arc<WitanClient>, WitanError> {
    WitanClient::open_with_clock(
        config(path, key, role),
        transport,
        Arc::new(Listener::default()),
        clock,
    )
}

/// Bob's extension on his file, with a transport that records.
fn extension(w: &World, member: usize) -> (Arc<WitanClient>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = open(
        &w.path(member),
        None,
        Some(ClientRole::NotificationExtension),
        recorder.clone(),
        w.clock.clone(),
    )
    .unwrap();
    (client, recorder)
}

fn mailbox(w: &mut World, member: usize) -> Vec<InboundPacket> {
    std::mem::take(&mut w.mailbox[member])
        .into_iter()
        .map(|p| InboundPacket {
            topic: String::new(),
            payload: p.payload,
        })
        .collect()
}

fn bodies(client: &WitanClient) -> Vec<Vec<u8>> {
    client
        .messages(CONV.into(), None, 1000)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

/// Votes by hand stay with the app: here the group has no automatic votes (the extension
/// casts those that are due, `tests/sleeping_phones.rs`).
#[test]
fn the_extension_notifies_and_leaves_votes_to_the_app() {
    let mut w = World::new(&["alice", "bob", "carol"]);
    let by_hand = ConversationSettings {
        auto_vote_delay_ms: None,
        ..fast_settings()
    };
    w.c(0).create_conversation(CONV.into(), by_hand).unwrap();
    w.c(1).request_to_join(CONV.into()).unwrap();
    w.run_for(30_000);
    w.assert_agree(&[0, 1]);
    let epoch = w.info(0).epoch;
    // The epoch steward proposes carol's admission; the other member must vote on it.
    let steward = w.info(0).epoch_steward.unwrap();
    let (proposer, voter) = if w.c(0).member_id() == steward {
        (0, 1)
    } else {
        (1, 0)
    };

    // The voter's app is suspended by the OS; a chat message and a vote request arrive by
    // push.
    w.close(voter);
    w.send(proposer, "dinner at eight?");
    w.c(2).request_to_join(CONV.into()).unwrap();
    w.deliver();
    let backlog = mailbox(&mut w, voter);

    let (ext, published) = extension(&w, voter);
    let report = ext.handle_wakeup(backlog).unwrap();
    let shown: Vec<&[u8]> = report
        .notifications
        .iter()
        .map(|n| n.body.as_slice())
        .collect();
    assert_eq!(shown, [&b"dinner at eight?"[..]]);
    assert_eq!(report.spooled_packets, 0);
    assert!(
        !report.deferred_work,
        "nothing is due: a vote by hand waits for the user, not for a deadline"
    );
    assert!(
        published.0.lock().unwrap().is_empty(),
        "the extension cast no vote"
    );
    let proposals = ext
        .conversation(CONV.into())
        .unwrap()
        .unwrap()
        .open_proposals;
    assert_eq!(proposals.len(), 1, "the proposal is stored, undecided");
    assert_eq!(proposals[0].target, Some(w.c(2).member_id()));
    drop(ext);

    // The app comes back: it votes, carol is admitted, and the history has the message once.
    w.open(voter);
    w.c(voter)
        .vote(CONV.into(), proposals[0].proposal_id, true)
        .unwrap();
    w.run_for(30_000);
    w.assert_agree(&[0, 1, 2]);
    assert!(w.info(voter).epoch > epoch);
    assert_eq!(w.bodies(voter), ["dinner at eight?"]);
}

#[test]
fn an_extension_that_cannot_get_the_lock_keeps_the_packets_for_the_app() {
    let mut w = World::new(&["alice", "bob"]);
    w.form(0, &[1]);
    w.close(1);
    w.send(0, "are you there?");
    w.deliver();
    let backlog = mailbox(&mut w, 1);
    assert_eq!(backlog.len(), 1);

    // The app is in the middle of a long step (here: a raw write lock on the file).
    let app_lock = rusqlite::Connection::open(w.path(1)).unwrap();
    app_lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (ext, _) = extension(&w, 1);
    let started = Instant::now();
    let report = ext.handle_wakeup(backlog.clone()).unwrap();
    // Bounded: well before the app's own 5 s lock timeout.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.spooled_packets, 1);
    assert!(report.notifications.is_empty());
    assert!(report.deferred_work);
    app_lock.execute_batch("ROLLBACK").unwrap();
    drop(app_lock);

    // The next run that gets the lock applies the kept packets first.
    w.open(1);
    w.c(1).poll().unwrap();
    assert_eq!(w.bodies(1), ["are you there?"]);
    let heard = w.events(1).into_iter().any(|e| {
        matches!(e, WitanEvent::MessageReceived { message, .. } if message.body == b"are you there?")
    });
    assert!(heard, "the app's listener hears the spooled message");
    // Applied once: the spool is empty and the packet is now a duplicate.
    w.c(1).poll().unwrap();
    assert_eq!(w.bodies(1).len(), 1);
    let again = ext.handle_wakeup(backlog).unwrap();
    assert!(again.notifications.is_empty());
    assert_eq!(again.spooled_packets, 0);
    assert_eq!(bodies(&ext), [b"are you there?".to_vec()]);
}

#[test]
fn an_app_that_is_busy_past_the_timeout_still_fails_loudly() {
    // Only the extension spools; the app's own calls report the busy database.
    let mut w = World::new(&["alice", "bob"]);
    w.form(0, &[1]);
    w.close(1);
    w.send(0, "hello");
    w.deliver();
    let backlog = mailbox(&mut w, 1);
    w.open(1);
    let app_lock = rusqlite::Connection::open(w.path(1)).unwrap();
    app_lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = w.c(1).handle_wakeup(backlog.clone()).unwrap_err();
    assert!(matches!(err, WitanError::Storage { .. }), "{err:?}");
    app_lock.execute_batch("ROLLBACK").unwrap();
    let report = w.c(1).handle_wakeup(backlog).unwrap();
    assert_eq!(report.notifications.len(), 1);
}

const KEY: [u8; 32] = [0x42; 32];

fn on_disk(path: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn lone_member(path: &str, key: Option<&[u8]>, clock: &Arc<ManualClock>) -> Arc<WitanClient> {
    open(
        path,
        key,
        None,
        Arc::new(Recorder::default()),
        clock.clone(),
    )
    .unwrap()
}

#[test]
fn a_keyed_database_keeps_state_and_messages_unreadable_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyed.db").to_str().unwrap().to_string();
    let clock = Arc::new(ManualClock(1_700_000_000_000.into()));
    let member = {
        let c = lone_member(&path, Some(&KEY), &clock);
        c.create_conversation(CONV.into(), clients::fast_settings())
            .unwrap();
        c.send_message(CONV.into(), b"top-secret-recipe".to_vec())
            .unwrap();
        c.member_id()
    };
    let bytes = on_disk(&path);
    assert!(!contains(&bytes, b"top-secret-recipe"));
    assert!(!contains(&bytes, CONV.as_bytes()));
    assert!(!contains(&bytes, member.as_bytes()));

    let wrong = open(
        &path,
        Some(&[0x43; 32]),
        None,
        Arc::new(Recorder::default()),
        clock.clone(),
    )
    .unwrap_err();
    assert!(matches!(&wrong, WitanError::Storage { reason } if reason.contains("wrong key")));
    let missing = open(
        &path,
        None,
        None,
        Arc::new(Recorder::default()),
        clock.clone(),
    )
    .unwrap_err();
    assert!(matches!(&missing, WitanError::Storage { reason } if reason.contains("encrypted")));
    let short = open(
        &path,
        Some(&[1; 16]),
        None,
        Arc::new(Recorder::default()),
        clock.clone(),
    )
    .unwrap_err();
    assert!(matches!(short, WitanError::InvalidInput { .. }));

    let c = lone_member(&path, Some(&KEY), &clock);
    assert_eq!(c.member_id(), member);
    assert_eq!(bodies(&c), [b"top-secret-recipe".to_vec()]);
    // Suspend and resume reopen with the key.
    c.suspend();
    c.resume().unwrap();
    c.send_message(CONV.into(), b"second".to_vec()).unwrap();
    assert_eq!(bodies(&c).len(), 2);
}

#[test]
fn a_database_written_without_a_key_is_encrypted_when_opened_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upgrade.db").to_str().unwrap().to_string();
    let clock = Arc::new(ManualClock(1_700_000_000_000.into()));
    let member = {
        let c = lone_member(&path, None, &clock);
        c.create_conversation(CONV.into(), clients::fast_settings())
            .unwrap();
        c.send_message(CONV.into(), b"written-before-the-upgrade".to_vec())
            .unwrap();
        c.member_id()
    };
    assert!(contains(&on_disk(&path), b"written-before-the-upgrade"));

    let c = lone_member(&path, Some(&KEY), &clock);
    assert_eq!(c.member_id(), member);
    assert_eq!(bodies(&c), [b"written-before-the-upgrade".to_vec()]);
    c.send_message(CONV.into(), b"after".to_vec()).unwrap();
    let info = c.conversation(CONV.into()).unwrap().unwrap();
    drop(c);
    assert!(!contains(&on_disk(&path), b"written-before-the-upgrade"));
    assert!(
        open(
            &path,
            None,
            None,
            Arc::new(Recorder::default()),
            clock.clone()
        )
        .is_err()
    );
    let c = lone_member(&path, Some(&KEY), &clock);
    assert_eq!(c.conversation(CONV.into()).unwrap().unwrap(), info);
    assert_eq!(bodies(&c).len(), 2);
}

#[test]
fn an_app_kept_open_reads_the_epoch_another_connection_applied() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]);
    w.form(0, &[1, 2, 3]);
    w.assert_agree(&[0, 1, 2, 3]);
    let epoch = w.info(0).epoch;
    let bob_path = w.path(1);
    let clock = w.clock.clone();
    let open_bob = || {
        open(
            &bob_path,
            None,
            None,
            Arc::new(Recorder::default()),
            clock.clone(),
        )
    };
    // Bob's app runs outside the world's delivery: it takes in what his mailbox holds.
    w.close(1);
    let app = open_bob().unwrap();
    w.send(0, "one");
    w.deliver();
    app.receive(mailbox(&mut w, 1)).unwrap();
    assert_eq!(bodies(&app), [b"one".to_vec()]);

    // Carol is voted out while this app takes no packets; another connection on bob's file
    // (a second process) takes the commit in.
    let carol = w.c(2).member_id();
    w.c(0).propose_removal(CONV.into(), carol).unwrap();
    w.run_for(30_000);
    let target = w.info(0).epoch;
    assert!(target > epoch, "the removal was committed");
    let other = open_bob().unwrap();
    other.receive(mailbox(&mut w, 1)).unwrap();
    let epoch_of = |c: &WitanClient| c.conversation(CONV.into()).unwrap().unwrap().epoch;
    for _ in 0..20 {
        if epoch_of(&other) == target {
            break;
        }
        w.set_now(w.now() + 1_000);
        other.poll().unwrap();
    }
    assert_eq!(epoch_of(&other), target);
    drop(other);

    // The app, which had the previous epoch's group decoded, reads the new epoch's message.
    w.send(0, "two");
    w.deliver();
    let report = app.receive(mailbox(&mut w, 1)).unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(bodies(&app), [b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(epoch_of(&app), target);
}
