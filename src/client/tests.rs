//! Unit tests of the client on one member: opening, identity, local actions and their
//! errors, subscriptions, and `receive` of bad input. Multi-member scenarios live in
//! `tests/client.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

#[derive(Default)]
struct Recorder {
    published: Mutex<Vec<OutboundPacket>>,
    subscribed: Mutex<Vec<String>>,
    unsubscribed: Mutex<Vec<String>>,
    events: Mutex<Vec<WitanEvent>>,
}

impl Transport for Recorder {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        self.published.lock().unwrap().push(packet);
        Ok(())
    }
    fn subscribe(&self, topic: String) {
        self.subscribed.lock().unwrap().push(topic);
    }
    fn unsubscribe(&self, topic: String) {
        self.unsubscribed.lock().unwrap().push(topic);
    }
}

impl EventListener for Recorder {
    fn on_event(&self, event: WitanEvent) {
        self.events.lock().unwrap().push(event);
    }
}

struct FixedClock(AtomicU64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn open(path: &str, secret: Option<Vec<u8>>) -> (Arc<WitanClient>, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let client = WitanClient::open_with_clock(
        ClientConfig {
            database_path: path.to_string(),
            identity_secret: secret,
            database_key: None,
            role: None,
        },
        rec.clone(),
        rec.clone(),
        Arc::new(FixedClock(AtomicU64::new(1_000_000))),
    )
    .unwrap();
    (client, rec)
}

#[test]
fn a_generated_identity_is_kept_and_a_given_one_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db").to_str().unwrap().to_string();
    let (a, _) = open(&path, None);
    let id = a.member_id();
    assert_eq!(id.len(), 40);
    drop(a);
    let (a, _) = open(&path, None);
    assert_eq!(a.member_id(), id, "reopening keeps the identity");

    let path_b = dir.path().join("b.db").to_str().unwrap().to_string();
    let (b, _) = open(&path_b, Some(vec![9; 32]));
    let b_id = b.member_id();
    drop(b);
    let mut db = Database::open(&path_b, &StoreOptions::default()).unwrap();
    assert_eq!(db.read().unwrap().identity_secret().unwrap(), None);
    drop(db);
    // The database now belongs to that identity.
    let err = WitanClient::open(
        ClientConfig {
            database_path: path_b.clone(),
            identity_secret: Some(vec![8; 32]),
            database_key: None,
            role: None,
        },
        Arc::new(Recorder::default()),
        Arc::new(Recorder::default()),
    )
    .unwrap_err();
    assert!(matches!(err, WitanError::InvalidInput { .. }), "{err:?}");
    assert_eq!(open(&path_b, Some(vec![9; 32])).0.member_id(), b_id);
}

#[test]
fn a_bad_identity_secret_is_invalid_input() {
    let err = WitanClient::open(
        ClientConfig {
            database_path: ":memory:".into(),
            identity_secret: Some(vec![1; 5]),
            database_key: None,
            role: None,
        },
        Arc::new(Recorder::default()),
        Arc::new(Recorder::default()),
    )
    .unwrap_err();
    assert!(matches!(err, WitanError::InvalidInput { .. }), "{err:?}");
}

#[test]
fn creating_subscribes_and_reports_the_conversation() {
    let (c, rec) = open(":memory:", None);
    assert!(c.subscriptions().is_empty());
    let info = c
        .create_conversation("room".into(), default_conversation_settings())
        .unwrap();
    assert_eq!(info.state, ConversationState::Working);
    assert_eq!(info.members.len(), 1);
    assert_eq!(info.stewards, vec![c.member_id()]);
    let subs = c.subscriptions();
    assert_eq!(subs.len(), 2);
    let mut pushed = rec.subscribed.lock().unwrap().clone();
    pushed.sort();
    assert_eq!(pushed, subs);
    assert!(rec.events.lock().unwrap().iter().any(|e| matches!(
        e,
        WitanEvent::StateChanged {
            state: ConversationState::Working,
            ..
        }
    )));
    // Creating it again is refused and changes nothing.
    let err = c
        .create_conversation("room".into(), default_conversation_settings())
        .unwrap_err();
    assert!(matches!(err, WitanError::WrongState { .. }), "{err:?}");
    assert_eq!(c.conversations().unwrap().len(), 1);
}

#[test]
fn bad_arguments_and_unknown_conversations_are_typed_errors() {
    let (c, _) = open(":memory:", None);
    let err = c.send_message("nope".into(), b"hi".to_vec()).unwrap_err();
    assert!(matches!(err, WitanError::NotFound { .. }), "{err:?}");
    assert!(matches!(
        c.messages("nope".into(), None, 10).unwrap_err(),
        WitanError::NotFound { .. }
    ));
    assert_eq!(c.conversation("nope".into()).unwrap(), None);
    let err = c
        .create_conversation(String::new(), default_conversation_settings())
        .unwrap_err();
    assert!(matches!(err, WitanError::InvalidInput { .. }), "{err:?}");
    let bad = ConversationSettings {
        steward_list_min: 0,
        ..default_conversation_settings()
    };
    assert!(matches!(
        c.create_conversation("x".into(), bad).unwrap_err(),
        WitanError::InvalidInput { .. }
    ));
    c.create_conversation("x".into(), default_conversation_settings())
        .unwrap();
    assert!(matches!(
        c.propose_removal("x".into(), "zz".into()).unwrap_err(),
        WitanError::InvalidInput { .. }
    ));
    assert!(matches!(
        c.propose_removal("x".into(), "ab".repeat(20)).unwrap_err(),
        WitanError::NotFound { .. }
    ));
    assert!(matches!(
        c.vote("x".into(), 7, true).unwrap_err(),
        WitanError::NotFound { .. }
    ));
}

#[test]
fn sending_before_the_join_completed_is_wrong_state() {
    let (c, rec) = open(":memory:", None);
    c.request_to_join("room".into()).unwrap();
    // The join request went out on the welcome topic.
    let published = rec.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert!(published[0].topic.ends_with("/welcome"));
    let err = c.send_message("room".into(), b"hi".to_vec()).unwrap_err();
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
    assert!(matches!(
        c.request_to_join("room".into()).unwrap_err(),
        WitanError::WrongState { .. }
    ));
}

#[test]
fn own_messages_are_stored_and_their_echo_is_a_duplicate() {
    let (c, rec) = open(":memory:", None);
    c.create_conversation("room".into(), default_conversation_settings())
        .unwrap();
    let id = c.send_message("room".into(), b"hello".to_vec()).unwrap();
    let history = c.messages("room".into(), None, 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].message_id, id);
    assert_eq!(history[0].seq, 1);
    assert!(history[0].own);
    let echo: Vec<InboundPacket> = rec
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|p| InboundPacket {
            topic: p.topic.clone(),
            payload: p.payload.clone(),
        })
        .collect();
    assert_eq!(echo.len(), 1);
    let report = c.receive(echo).unwrap();
    assert_eq!(
        report,
        ReceiveReport {
            accepted: 0,
            duplicates: 1,
            rejected: 0
        }
    );
}

#[test]
fn garbage_is_rejected_and_changes_nothing() {
    let (c, _) = open(":memory:", None);
    c.create_conversation("room".into(), default_conversation_settings())
        .unwrap();
    let before = c.conversation("room".into()).unwrap();
    let report = c
        .receive(vec![
            InboundPacket {
                topic: "t".into(),
                payload: vec![0xff; 40],
            },
            InboundPacket {
                topic: "t".into(),
                payload: Vec::new(),
            },
        ])
        .unwrap();
    assert_eq!(report.rejected, 2);
    assert_eq!(report.accepted + report.duplicates, 0);
    assert_eq!(c.conversation("room".into()).unwrap(), before);
}

#[test]
fn leaving_alone_unsubscribes() {
    let (c, rec) = open(":memory:", None);
    c.create_conversation("room".into(), default_conversation_settings())
        .unwrap();
    c.leave("room".into()).unwrap();
    assert!(c.subscriptions().is_empty());
    assert_eq!(rec.unsubscribed.lock().unwrap().len(), 2);
    let info = c.conversation("room".into()).unwrap().unwrap();
    assert_eq!(info.state, ConversationState::Left);
    assert!(matches!(
        c.leave("room".into()).unwrap_err(),
        WitanError::WrongState { .. }
    ));
}

#[test]
fn suspend_releases_the_file_and_the_next_call_reopens_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db").to_str().unwrap().to_string();
    let (c, _) = open(&path, None);
    c.create_conversation("room".into(), default_conversation_settings())
        .unwrap();
    c.suspend();
    assert!(c.db.lock().unwrap().is_none());
    assert_eq!(c.conversations().unwrap().len(), 1);
    c.suspend();
    c.resume().unwrap();
    assert!(c.db.lock().unwrap().is_some());
    let report = c.poll().unwrap();
    assert_eq!(report.outbox_pending, 0);
}
