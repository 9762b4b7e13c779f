//! The demo's world: an in-process topic router (one FIFO queue, per-member subscriptions,
//! crashed members whose packets are lost), a virtual clock, a listener that records every
//! event, and [`Demo`], which owns the six clients and runs them — delivering packets and
//! polling, and jumping the clock to the earliest wake-up when nothing is in flight.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use witan::client::{
    ClientConfig, Clock, ConversationInfo, ConversationState, EventListener, InboundPacket,
    OutboundPacket, Transport, TransportError, WitanClient, WitanEvent,
};

use crate::{CONV, NAMES, START_MS};

// ----- the in-process network -----

/// Topic router: one FIFO queue, per-member subscriptions, and crashed members whose
/// packets are lost.
#[derive(Default)]
pub struct Net {
    pub queue: Mutex<VecDeque<(String, Vec<u8>)>>,
    pub subs: Mutex<BTreeMap<usize, BTreeSet<String>>>,
    pub crashed: Mutex<BTreeSet<usize>>,
}

pub struct MemberTransport {
    net: Arc<Net>,
    me: usize,
}

impl Transport for MemberTransport {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        // A crashed member's packets never reach anyone.
        if !self.net.crashed.lock().unwrap().contains(&self.me) {
            let mut queue = self.net.queue.lock().unwrap();
            queue.push_back((packet.topic, packet.payload));
        }
        Ok(())
    }
    fn subscribe(&self, topic: String) {
        let mut subs = self.net.subs.lock().unwrap();
        subs.entry(self.me).or_default().insert(topic);
    }
    fn unsubscribe(&self, topic: String) {
        let mut subs = self.net.subs.lock().unwrap();
        subs.entry(self.me).or_default().remove(&topic);
    }
}

pub struct VirtualClock(pub AtomicU64);

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Every event any member hears, with the virtual time and who heard it.
pub type Log = Arc<Mutex<Vec<(u64, usize, WitanEvent)>>>;

pub struct Recorder {
    me: usize,
    log: Log,
    clock: Arc<VirtualClock>,
}

impl EventListener for Recorder {
    fn on_event(&self, event: WitanEvent) {
        let now = self.clock.now_ms();
        self.log.lock().unwrap().push((now, self.me, event));
    }
}

// ----- the demo world -----

pub struct Demo {
    pub dir: tempfile::TempDir,
    pub net: Arc<Net>,
    pub clock: Arc<VirtualClock>,
    pub clients: Vec<Arc<WitanClient>>,
    pub log: Log,
    pub printed: usize,
    /// Member id (hex) -> name.
    pub names: BTreeMap<String, String>,
    /// Proposal id -> what it proposes, as learnt from the events.
    pub proposals: BTreeMap<u64, String>,
    /// Each member's epoch and who is in the conversation, as the printed events tell.
    pub epochs: Vec<u64>,
    pub present: BTreeSet<usize>,
}

impl Demo {
    pub fn new() -> Demo {
        let dir = tempfile::Builder::new()
            .prefix("witan-demo-")
            .tempdir()
            .expect("a temporary directory");
        let net = Arc::new(Net::default());
        let clock = Arc::new(VirtualClock(AtomicU64::new(START_MS)));
        let log: Log = Arc::default();
        let mut clients = Vec::new();
        let mut names = BTreeMap::new();
        println!("Work directory: {}", dir.path().display());
        for (i, name) in NAMES.iter().enumerate() {
            let path = dir.path().join(format!("{name}.db"));
            let client = WitanClient::open_with_clock(
                ClientConfig {
                    database_path: path.to_str().expect("a UTF-8 path").to_string(),
                    // Fixed identities keep the story (and the steward order) the same on every run.
                    identity_secret: Some(vec![i as u8 + 1; 32]),
                    database_key: None,
                    role: None,
                },
                Arc::new(MemberTransport {
                    net: net.clone(),
                    me: i,
                }),
                Arc::new(Recorder {
                    me: i,
                    log: log.clone(),
                    clock: clock.clone(),
                }),
                clock.clone(),
            )
            .expect("the client opens");
            println!(
                "  {name:<6} {}  {}",
                &client.member_id()[..8],
                path.display()
            );
            names.insert(client.member_id(), name.to_string());
            clients.push(client);
        }
        Demo {
            dir,
            net,
            clock,
            clients,
            log,
            printed: 0,
            names,
            proposals: BTreeMap::new(),
            epochs: vec![0; NAMES.len()],
            present: BTreeSet::new(),
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("{}…", &id[..id.len().min(8)]))
    }

    /// The names of `ids`, in their order.
    pub fn names_of(&self, ids: &[String]) -> String {
        ids.iter()
            .map(|id| self.name(id))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The names of a set of members, in the order of `NAMES`.
    pub fn set_of(&self, ids: &[String]) -> String {
        let mut names: Vec<String> = ids.iter().map(|id| self.name(id)).collect();
        names.sort_by_key(|n| NAMES.iter().position(|m| m == n).unwrap_or(NAMES.len()));
        names.join(", ")
    }

    pub fn index(&self, id: &str) -> usize {
        NAMES
            .iter()
            .position(|n| *n == self.name(id))
            .expect("a demo member")
    }

    pub fn c(&self, i: usize) -> &WitanClient {
        &self.clients[i]
    }

    pub fn info(&self, i: usize) -> ConversationInfo {
        self.c(i)
            .conversation(CONV.into())
            .expect("the database reads")
            .expect("the conversation exists")
    }

    pub fn crashed(&self, i: usize) -> bool {
        self.net.crashed.lock().unwrap().contains(&i)
    }

    /// Hands every packet in flight to every subscribed member that has not crashed.
    pub fn deliver(&mut self) {
        loop {
            let next = self.net.queue.lock().unwrap().pop_front();
            let Some((topic, payload)) = next else { return };
            let subs = self.net.subs.lock().unwrap().clone();
            for (i, client) in self.clients.iter().enumerate() {
                if self.crashed(i) || !subs.get(&i).is_some_and(|s| s.contains(&topic)) {
                    continue;
                }
                let packet = InboundPacket {
                    topic: topic.clone(),
                    payload: payload.clone(),
                };
                client.receive(vec![packet]).expect("receive");
            }
        }
    }

    /// Polls every member that has not crashed; returns the earliest wake-up.
    pub fn poll_all(&mut self) -> Option<u64> {
        let mut next: Option<u64> = None;
        for (i, client) in self.clients.iter().enumerate() {
            if self.crashed(i) {
                continue;
            }
            if let Some(at) = client.poll().expect("poll").next_wakeup_at_ms {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }

    /// Delivers and polls, jumping the clock to the earliest wake-up, for `ms` of virtual
    /// time (or until nothing is scheduled before then).
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now() + ms;
        loop {
            self.deliver();
            let next = self.poll_all();
            self.note_proposals();
            self.print_events(false);
            if !self.net.queue.lock().unwrap().is_empty() {
                continue;
            }
            match next {
                Some(at) if at <= self.now() => {}
                Some(at) if at <= end => self.clock.0.store(at, Ordering::SeqCst),
                _ => {
                    self.clock.0.store(end, Ordering::SeqCst);
                    self.deliver();
                    self.poll_all();
                    self.print_events(true);
                    return;
                }
            }
        }
    }

    /// Members still in the conversation and not crashed.
    pub fn live(&self) -> Vec<usize> {
        (0..NAMES.len())
            .filter(|&i| {
                !self.crashed(i)
                    && self
                        .c(i)
                        .conversation(CONV.into())
                        .ok()
                        .flatten()
                        .is_some_and(|c| {
                            !matches!(
                                c.state,
                                ConversationState::Left | ConversationState::PendingJoin
                            )
                        })
            })
            .collect()
    }

    pub fn chat(&mut self, from: usize, text: &str) {
        self.print_events(true);
        self.c(from)
            .send_message(CONV.into(), text.as_bytes().to_vec())
            .expect("send");
        println!(
            "{}   {:<22} sends \"{text}\"",
            Self::stamp(self.now()),
            NAMES[from]
        );
        self.deliver();
        self.print_events(true);
    }
}
