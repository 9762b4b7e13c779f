//! Helpers of the in-process tests: members (a `WitanClient` on its own file with a
//! `NetTransport`) around a service node on a thread, and waiting with a deadline.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use witan::client::{
    ClientConfig, ConversationSettings, ConversationState, EventListener, WitanClient, WitanEvent,
    default_conversation_settings,
};
use witan_net::{NetConfig, NetTransport};

pub const CONV: &str = "loopback-club";

/// Fast timers for a few members on loopback.
pub fn settings() -> ConversationSettings {
    ConversationSettings {
        pending_join_timeout_ms: 60_000,
        commit_inactivity_ms: 4_000,
        recovery_inactivity_ms: 3_000,
        freeze_window_ms: 1_500,
        vote_timeout_ms: 6_000,
        auto_vote_delay_ms: Some(0),
        commit_delay_ms: 100,
        max_clock_skew_ms: 10_000,
        ..default_conversation_settings()
    }
}

#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<WitanEvent>>);

impl EventListener for Recorder {
    fn on_event(&self, event: WitanEvent) {
        self.0.lock().unwrap().push(event);
    }
}

pub struct Member {
    pub client: Arc<WitanClient>,
    pub net: Arc<NetTransport>,
    pub events: Arc<Recorder>,
}

impl Member {
    /// Opens `name`'s client (file `<dir>/<name>.db`, cursors next to it) on a transport
    /// that dials `node` and catches up from it.
    pub fn open(
        dir: &Path,
        name: &str,
        node: &Multiaddr,
        tweak: impl FnOnce(&mut NetConfig),
    ) -> Member {
        let mut config = NetConfig {
            peers: vec![node.clone()],
            store: Some(node.clone()),
            cursor_path: Some(dir.join(format!("{name}.cursors.db"))),
            ..NetConfig::default()
        };
        tweak(&mut config);
        let net = NetTransport::start(config).expect("the transport starts");
        let events = Arc::new(Recorder::default());
        let client = WitanClient::open(
            ClientConfig {
                database_path: dir
                    .join(format!("{name}.db"))
                    .to_string_lossy()
                    .into_owned(),
                identity_secret: None,
                database_key: None,
                role: None,
            },
            net.clone(),
            events.clone(),
        )
        .expect("the client opens");
        net.attach(&client);
        Member {
            client,
            net,
            events,
        }
    }

    pub fn state(&self) -> Option<ConversationState> {
        self.client
            .conversation(CONV.into())
            .ok()
            .flatten()
            .map(|c| c.state)
    }

    /// Sends each text, then waits (2 s at most) until the outbox has handed them all to
    /// the relay.
    pub fn send_all(&self, texts: &[&str]) {
        for text in texts {
            self.client
                .send_message(CONV.into(), text.as_bytes().to_vec())
                .expect("the chat is sent");
        }
        drive_until(&[self], Duration::from_secs(2), "the outbox empty", || {
            self.client.poll().is_ok_and(|r| r.outbox_pending == 0)
        });
    }

    pub fn bodies(&self) -> Vec<String> {
        self.client
            .messages(CONV.into(), None, 1_000)
            .map(|m| {
                m.into_iter()
                    .map(|m| String::from_utf8_lossy(&m.body).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Polls every member every 50 ms until `done` holds; panics after `limit`.
pub fn drive_until(members: &[&Member], limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        for m in members {
            let _ = m.client.poll();
        }
        if done() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (without polling anyone) until `done` holds; panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
