//! A live member for the `receive` targets, built once per process: two `WitanClient`s form
//! conversation [`CONV`] through an in-process topic router driven by a manual clock (as in
//! `tests/client.rs`). Member 1, with a `":memory:"` database, is the one fed fuzz input;
//! member 0 uses a file database so that, once formed, its client is closed and its MLS group
//! can encrypt arbitrary plaintexts as a real member of the conversation. After formation
//! the router drops everything member 1 publishes and the clock stands still, so no deadline
//! fires while fuzzing.
//!
//! Member 1's state only changes when a packet is accepted (a rejected one is rolled back),
//! which random input rarely achieves; inputs are therefore nearly, but not exactly,
//! independent of each other.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use witan::client::{
    ClientConfig, Clock, ConversationSettings, ConversationState, EventListener, InboundPacket,
    OutboundPacket, ReceiveReport, Transport, TransportError, WitanClient, WitanError, WitanEvent,
    default_conversation_settings,
};
use witan::mls::{Group, Identity, MlsProvider};
use witan::store::{Database, StoreOptions};
use witan::wire::{self, Envelope, PacketKind};

/// The conversation id (also the MLS group id).
pub const CONV: &str = "fuzz-conv";

const START_MS: u64 = 1_700_000_000_000;
const SECRETS: [[u8; 32]; 2] = [[1; 32], [2; 32]];

#[derive(Default)]
struct Router {
    queue: Mutex<VecDeque<(String, Vec<u8>)>>,
    subs: Mutex<BTreeMap<usize, BTreeSet<String>>>,
    log: Mutex<Vec<Vec<u8>>>,
    sealed: AtomicBool,
}

struct NodeTransport {
    router: Arc<Router>,
    node: usize,
}

impl Transport for NodeTransport {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        if self.router.sealed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let r = &self.router;
        r.log.lock().expect("log").push(packet.payload.clone());
        r.queue
            .lock()
            .expect("queue")
            .push_back((packet.topic, packet.payload));
        Ok(())
    }
    fn subscribe(&self, topic: String) {
        let mut subs = self.router.subs.lock().expect("subs");
        subs.entry(self.node).or_default().insert(topic);
    }
    fn unsubscribe(&self, topic: String) {
        let mut subs = self.router.subs.lock().expect("subs");
        subs.entry(self.node).or_default().remove(&topic);
    }
}

struct NoListener;

impl EventListener for NoListener {
    fn on_event(&self, _event: WitanEvent) {}
}

struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The formed conversation and the valid packets seen while forming it.
pub struct ClientFixture {
    /// Member 1 (`":memory:"`), the client under test.
    pub member: Arc<WitanClient>,
    /// Member 0's database and identity, to encrypt as member 0.
    sender: Mutex<Database>,
    sender_identity: Identity,
    /// Member ids: `[member 0, member 1]`.
    pub ids: [[u8; 20]; 2],
    /// Every packet published while forming (member 1 has seen them all).
    pub captured: Vec<Vec<u8>>,
    /// Valid packets of member 0 that member 1 has not received (two chats, a proposal).
    pub fresh: Vec<Vec<u8>>,
    /// The time on member 1's clock, which stands still after formation.
    pub now_ms: u64,
}

fn fast_settings() -> ConversationSettings {
    ConversationSettings {
        pending_join_timeout_ms: 60_000,
        commit_inactivity_ms: 3_000,
        recovery_inactivity_ms: 2_000,
        freeze_window_ms: 1_000,
        vote_timeout_ms: 5_000,
        auto_vote_delay_ms: Some(0),
        commit_delay_ms: 100,
        max_clock_skew_ms: 1_000,
        ..default_conversation_settings()
    }
}

/// A fresh directory for member 0's file; directories of finished processes are removed.
fn scratch_dir() -> PathBuf {
    let base = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(pid) = name.strip_prefix("witan-fuzz-client-")
                && !PathBuf::from(format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("witan-fuzz-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

struct Forming {
    router: Arc<Router>,
    clock: Arc<ManualClock>,
    clients: Vec<Arc<WitanClient>>,
}

impl Forming {
    fn deliver(&self) {
        loop {
            let next = self.router.queue.lock().expect("queue").pop_front();
            let Some((topic, payload)) = next else { return };
            let subs = self.router.subs.lock().expect("subs").clone();
            for (i, c) in self.clients.iter().enumerate() {
                if subs.get(&i).is_some_and(|s| s.contains(&topic)) {
                    let packet = InboundPacket {
                        topic: topic.clone(),
                        payload: payload.clone(),
                    };
                    c.receive(vec![packet]).expect("receive while forming");
                }
            }
        }
    }

    fn poll_all(&self) -> Option<u64> {
        let mut next: Option<u64> = None;
        for c in &self.clients {
            if let Some(at) = c.poll().expect("poll").next_wakeup_at_ms {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }

    fn run_for(&self, horizon_ms: u64) {
        let end = self.clock.now_ms() + horizon_ms;
        for _ in 0..100_000 {
            self.deliver();
            let next = self.poll_all();
            self.deliver();
            let next = match (next, self.poll_all()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let now = self.clock.now_ms();
            match next {
                Some(at) if at <= end && at > now => self.clock.0.store(at, Ordering::SeqCst),
                Some(at) if at <= now => {}
                _ => {
                    self.clock.0.store(end, Ordering::SeqCst);
                    self.poll_all();
                    self.deliver();
                    return;
                }
            }
        }
        panic!("fixture: the conversation did not settle");
    }

    /// Packets published since the last call, not delivered.
    fn take_published(&self) -> Vec<Vec<u8>> {
        let mut q = self.router.queue.lock().expect("queue");
        q.drain(..).map(|(_, p)| p).collect()
    }
}

fn build() -> ClientFixture {
    let dir = scratch_dir();
    let sender_path = dir.join("member-0.db").to_string_lossy().to_string();
    let router = Arc::new(Router::default());
    let clock = Arc::new(ManualClock(AtomicU64::new(START_MS)));
    let open = |i: usize, path: &str| {
        WitanClient::open_with_clock(
            ClientConfig {
                database_path: path.to_string(),
                identity_secret: Some(SECRETS[i].to_vec()),
                database_key: None,
                role: None,
            },
            Arc::new(NodeTransport {
                router: router.clone(),
                node: i,
            }),
            Arc::new(NoListener),
            clock.clone(),
        )
        .expect("open client")
    };
    let w = Forming {
        router: router.clone(),
        clock: clock.clone(),
        clients: vec![open(0, &sender_path), open(1, ":memory:")],
    };
    w.clients[0]
        .create_conversation(CONV.into(), fast_settings())
        .expect("create");
    w.clients[1]
        .request_to_join(CONV.into())
        .expect("request to join");
    w.run_for(30_000);
    let info = w.clients[1]
        .conversation(CONV.into())
        .expect("conversation")
        .expect("member 1 has the conversation");
    assert_eq!(info.state, ConversationState::Working, "fixture formed");
    let captured = router.log.lock().expect("log").clone();

    let (c0, c1) = (&w.clients[0], &w.clients[1]);
    c0.send_message(CONV.into(), b"fresh chat one".to_vec())
        .expect("chat");
    c0.send_message(CONV.into(), b"fresh chat two".to_vec())
        .expect("chat");
    let _ = c0.propose_removal(CONV.into(), c1.member_id());
    let fresh = w.take_published();
    router.sealed.store(true, Ordering::SeqCst);

    let member = w.clients[1].clone();
    drop(w);
    let sender = Database::open(&sender_path, &StoreOptions::default()).expect("sender db");
    let ids = SECRETS.map(|s| {
        *Identity::from_secret(&s)
            .expect("identity")
            .member_id()
            .as_bytes()
    });
    ClientFixture {
        member,
        sender: Mutex::new(sender),
        sender_identity: Identity::from_secret(&SECRETS[0]).expect("identity"),
        ids,
        captured,
        fresh,
        now_ms: clock.now_ms(),
    }
}

/// The fixture, built on first use.
pub fn get() -> &'static ClientFixture {
    static FIXTURE: OnceLock<ClientFixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

impl ClientFixture {
    /// Feeds one packet to member 1 and checks the contract: `Ok`, exactly one packet
    /// counted, and no packet rejected with an internal error.
    pub fn receive(&self, payload: Vec<u8>) -> ReceiveReport {
        let packet = InboundPacket {
            topic: String::new(),
            payload,
        };
        let report: Result<ReceiveReport, WitanError> = self.member.receive(vec![packet]);
        let report = match report {
            Ok(r) => r,
            Err(e) => panic!("receive returned an error for one packet: {e:?}"),
        };
        crate::debug(|| format!("receive: {report:?}"));
        assert_eq!(
            report.accepted + report.duplicates + report.rejected,
            1,
            "{report:?}"
        );
        if let Some(reason) = crate::watch::take_internal() {
            panic!("packet rejected with an internal error: {reason}");
        }
        report
    }

    /// Encrypts `plaintext` as member 0 in the current epoch and feeds the resulting group
    /// packet to member 1. Member 0's ratchet advances only if member 1 accepted the packet,
    /// so the two stay in step however many packets are rejected.
    pub fn receive_from_sender(&self, plaintext: &[u8]) -> ReceiveReport {
        let mut db = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let step = db.step().expect("sender step");
        let p = MlsProvider::new(&step);
        let mut group = Group::load(&p, CONV.as_bytes())
            .expect("sender group loads")
            .expect("sender group stored");
        let ct = match group.encrypt(&p, &self.sender_identity, plaintext) {
            Ok(ct) => ct,
            Err(e) => panic!("sender cannot encrypt: {e}"),
        };
        let changes = p.storage().take_changes();
        drop(p);
        step.apply_mls_changes(&changes).expect("sender rows");
        let env = Envelope::new(CONV, self.ids[0], PacketKind::Group, ct);
        let report = self.receive(wire::encode(&env));
        if report.accepted == 1 {
            step.commit().expect("sender commit");
        }
        report
    }

    /// Every valid packet the fixture knows.
    pub fn valid_packets(&self) -> Vec<Vec<u8>> {
        let mut v = self.captured.clone();
        v.extend(self.fresh.iter().cloned());
        v
    }
}
