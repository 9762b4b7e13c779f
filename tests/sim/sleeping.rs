//! The sleeping-phones family: a group of phones that sleep most of the time (issue #16).
//!
//! Each member is a `WitanClient` on its own SQLite file, on one virtual clock. A phone is
//! asleep (no client open) unless the user has the app open — sessions of
//! [`SleepConfig::app_session_ms`] now and then, so that a phone is asleep about
//! [`SleepConfig::asleep`] of the time — or a push woke it: packets for a sleeping phone wait
//! with the push service, which wakes the phone [`PUSH_LATENCY_MS`] later in the
//! notification-extension role for [`SleepConfig::extension_awake_ms`] and hands it the whole
//! backlog (`handle_wakeup`); while awake it gets further packets as they come.
//!
//! A run forms the group (every member in the app), then measures three things, one after
//! the other: a new device's `request_to_join` until it is `Joined`; a member's
//! `propose_removal` until the commit is applied (by the first member that applies it); and
//! the epoch steward falling silent for good (while a second device asks to join, the work
//! that makes the group notice) until a commit takes its slot away (the first member that
//! applies it). Each has [`SleepConfig::deadline_ms`] of virtual time; past it, it never
//! completed. At the end every phone but the silent one opens the app until the group
//! settles, and the safety invariants are checked (`sleeping_checks.rs`).
//!
//! Randomness (delays, sessions, choices, identities) comes from the seed; OpenMLS draws its
//! own random bytes, so the engine's ids differ between two runs of a seed.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use witan::client::{
    ClientConfig, ClientRole, Clock, EventListener, InboundPacket, OutboundPacket, Transport,
    TransportError, WitanClient, WitanEvent, default_conversation_settings,
};

use super::rng::Rng;
// The example reads `Outcome`; the CI sweep only calls `check`.
#[allow(unused_imports)]
pub use super::sleeping_checks::{Outcome, check};
pub const CONV: &str = "sleeping-phones";
pub const START_MS: u64 = 1_700_000_000_000;
/// From a packet's arrival at the push service to the phone's wake-up.
pub const PUSH_LATENCY_MS: (u64, u64) = (500, 3_000);
/// One network delivery.
const DELIVERY_MS: (u64, u64) = (50, 800);
/// A bound on events per run.
const MAX_EVENTS: u64 = 2_000_000;

#[derive(Clone, Debug)]
pub struct SleepConfig {
    pub members: usize,
    /// The share of time a phone is asleep (neither app nor extension).
    pub asleep: f64,
    pub app_session_ms: u64,
    pub extension_awake_ms: u64,
    /// How long each measured operation may take before it counts as never completing.
    pub deadline_ms: u64,
    /// Keep every event each device heard in the outcome (`--trace`).
    pub trace: bool,
}

impl SleepConfig {
    pub fn new(members: usize) -> SleepConfig {
        SleepConfig {
            members,
            asleep: 0.9,
            app_session_ms: 30_000,
            extension_awake_ms: 5_000,
            deadline_ms: 30 * 60_000,
            trace: false,
        }
    }
}

pub struct SimClock(AtomicU64);

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Packets published by every client, with their sender, and each device's topics.
#[derive(Default)]
pub struct Router {
    out: Mutex<Vec<(usize, String, Vec<u8>)>>,
    subs: Mutex<BTreeMap<usize, BTreeSet<String>>>,
}

struct Port {
    router: Arc<Router>,
    node: usize,
}

impl Transport for Port {
    fn publish(&self, p: OutboundPacket) -> Result<(), TransportError> {
        let mut out = self.router.out.lock().unwrap_or_else(|e| e.into_inner());
        out.push((self.node, p.topic, p.payload));
        Ok(())
    }
    fn subscribe(&self, topic: String) {
        let mut subs = self.router.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.entry(self.node).or_default().insert(topic);
    }
    fn unsubscribe(&self, topic: String) {
        let mut subs = self.router.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.entry(self.node).or_default().remove(&topic);
    }
}

/// Every event a device heard, with the virtual time it heard it.
pub struct Heard {
    clock: Arc<SimClock>,
    pub events: Mutex<Vec<(u64, WitanEvent)>>,
}

impl EventListener for Heard {
    fn on_event(&self, event: WitanEvent) {
        let at = self.clock.now_ms();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push((at, event));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Deliver(usize, u64),
    PushWake(usize),
    ExtensionEnds(usize),
    AppOpens(usize),
    AppCloses(usize),
    Poll(usize),
}

/// One phone.
pub struct Phone {
    pub client: Option<(Arc<WitanClient>, ClientRole)>,
    pub app_until: u64,
    pub extension_until: u64,
    pub push_at: Option<u64>,
    pub mailbox: Vec<InboundPacket>,
    pub heard: Arc<Heard>,
    /// Never wakes again (the silent steward).
    pub off: bool,
    /// Keeps its app open (a device asking to join, the settling phase).
    pub pinned: bool,
}

pub struct SleepSim {
    pub cfg: SleepConfig,
    pub seed: u64,
    pub dir: tempfile::TempDir,
    pub clock: Arc<SimClock>,
    pub router: Arc<Router>,
    pub phones: Vec<Phone>,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    parcels: BTreeMap<u64, Rc<RefCell<Option<InboundPacket>>>>,
    seq: u64,
    pub rng: Rng,
    events: u64,
}

/// Where the phones' database files go: a memory-backed file system where there is one, so
/// that the fsync of every durable step costs nothing. The files, their SQL and their
/// durability settings are the client's own; only the disk under them differs.
fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("witan-sleep")
            .tempdir_in(shm)
    {
        return Ok(dir);
    }
    tempfile::tempdir()
}

fn secret(seed: u64, i: usize) -> [u8; 32] {
    let mut r = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
    let mut s = [0u8; 32];
    for chunk in s.chunks_mut(8) {
        chunk.copy_from_slice(&r.next_u64().to_be_bytes());
    }
    s
}

impl SleepSim {
    /// `devices` phones (the members, then the devices that will ask to join).
    pub fn new(seed: u64, cfg: SleepConfig, devices: usize) -> Result<SleepSim, String> {
        let clock = Arc::new(SimClock(AtomicU64::new(START_MS)));
        let mut sim = SleepSim {
            cfg,
            seed,
            dir: scratch_dir().map_err(|e| e.to_string())?,
            clock: clock.clone(),
            router: Arc::new(Router::default()),
            phones: Vec::new(),
            queue: BinaryHeap::new(),
            parcels: BTreeMap::new(),
            seq: 0,
            rng: Rng::new(seed),
            events: 0,
        };
        for _ in 0..devices {
            sim.phones.push(Phone {
                client: None,
                app_until: 0,
                extension_until: 0,
                push_at: None,
                mailbox: Vec::new(),
                heard: Arc::new(Heard {
                    clock: clock.clone(),
                    events: Mutex::new(Vec::new()),
                }),
                off: false,
                pinned: false,
            });
        }
        Ok(sim)
    }

    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn since_start(&self) -> u64 {
        self.now() - START_MS
    }

    fn at(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    fn open(&mut self, i: usize, role: ClientRole) -> Result<Arc<WitanClient>, String> {
        if let Some((c, r)) = &self.phones[i].client
            && *r == role
        {
            return Ok(c.clone());
        }
        self.phones[i].client = None;
        let client = WitanClient::open_with_clock(
            ClientConfig {
                database_path: self
                    .dir
                    .path()
                    .join(format!("p{i}.db"))
                    .display()
                    .to_string(),
                identity_secret: Some(secret(self.seed, i).to_vec()),
                database_key: None,
                role: Some(role),
            },
            Arc::new(Port {
                router: self.router.clone(),
                node: i,
            }),
            self.phones[i].heard.clone(),
            self.clock.clone(),
        )
        .map_err(|e| format!("open p{i}: {e}"))?;
        self.phones[i].client = Some((client.clone(), role));
        Ok(client)
    }

    /// The app of phone `i`, opened now (it reads the backlog the push service kept).
    pub fn app(&mut self, i: usize) -> Result<Arc<WitanClient>, String> {
        let c = self.open(i, ClientRole::App)?;
        let backlog = std::mem::take(&mut self.phones[i].mailbox);
        self.phones[i].push_at = None;
        c.handle_wakeup(backlog)
            .map_err(|e| format!("p{i} app wake-up: {e}"))?;
        self.after_call(i)?;
        Ok(c)
    }

    /// Reads phone `i`'s stored view without waking it for work.
    pub fn peek(&mut self, i: usize) -> Result<Option<witan::client::ConversationInfo>, String> {
        let c = match &self.phones[i].client {
            Some((c, _)) => c.clone(),
            None => {
                let c = self.open(i, ClientRole::NotificationExtension)?;
                self.phones[i].client = None;
                c
            }
        };
        c.conversation(CONV.into()).map_err(|e| e.to_string())
    }

    /// Routes what the clients published and schedules the phone's next poll.
    pub fn after_call(&mut self, i: usize) -> Result<(), String> {
        let out = std::mem::take(&mut *self.router.out.lock().unwrap_or_else(|e| e.into_inner()));
        let subs = self
            .router
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (from, topic, payload) in out {
            for to in 0..self.phones.len() {
                if to == from || !subs.get(&to).is_some_and(|s| s.contains(&topic)) {
                    continue;
                }
                let delay = self.rng.range(DELIVERY_MS.0, DELIVERY_MS.1);
                self.seq += 1;
                let id = self.seq;
                let packet = InboundPacket {
                    topic: topic.clone(),
                    payload: payload.clone(),
                };
                self.parcels.insert(id, Rc::new(RefCell::new(Some(packet))));
                let at = self.now() + delay;
                self.at(at, Ev::Deliver(to, id));
            }
        }
        self.schedule_poll(i)
    }

    fn schedule_poll(&mut self, i: usize) -> Result<(), String> {
        let Some((c, role)) = self.phones[i].client.clone() else {
            return Ok(());
        };
        let next = c.poll().map_err(|e| format!("p{i} poll: {e}"))?;
        if let Some(at) = next.next_wakeup_at_ms {
            // The extension leaves some deadlines due for the app (relays, emergencies,
            // catch-up): it wakes only for those still ahead (an automatic vote, a round's
            // timeout), not again and again for the app's.
            let extension = role == ClientRole::NotificationExtension;
            if at <= self.awake_until(i) && !(extension && at <= self.now()) {
                self.at(at.max(self.now() + 1), Ev::Poll(i));
            }
        }
        Ok(())
    }

    fn awake_until(&self, i: usize) -> u64 {
        let p = &self.phones[i];
        if p.pinned {
            u64::MAX
        } else {
            p.app_until.max(p.extension_until)
        }
    }

    fn awake(&self, i: usize) -> bool {
        self.phones[i].client.is_some() && self.awake_until(i) >= self.now()
    }

    /// Starts phone `i`'s app sessions: one now and then, so it is asleep `cfg.asleep` of
    /// the time (pushes aside).
    pub fn start_sessions(&mut self, i: usize) {
        let gap = self.session_gap();
        let at = self.now() + self.rng.below(gap);
        self.at(at, Ev::AppOpens(i));
    }

    fn session_gap(&mut self) -> u64 {
        let awake = (1.0 - self.cfg.asleep).max(0.01);
        let mean = (self.cfg.app_session_ms as f64 / awake) as u64;
        // Uniform around the mean gap between session starts.
        self.rng.range(mean / 2, mean + mean / 2)
    }

    /// Runs events until `done` holds or `until` passes; returns whether `done` held.
    pub fn run_until(
        &mut self,
        until: u64,
        mut done: impl FnMut(&mut SleepSim) -> Result<bool, String>,
    ) -> Result<bool, String> {
        loop {
            if done(self)? {
                return Ok(true);
            }
            let Some(Reverse((at, _, ev))) = self.queue.pop() else {
                self.clock.0.store(until, Ordering::SeqCst);
                return Ok(false);
            };
            if at > until {
                self.queue.push(Reverse((at, 0, ev)));
                self.clock.0.store(until, Ordering::SeqCst);
                return done(self);
            }
            self.events += 1;
            if self.events > MAX_EVENTS {
                return Err("too many events".into());
            }
            self.clock.0.store(at.max(self.now()), Ordering::SeqCst);
            self.dispatch(ev)?;
        }
    }

    fn dispatch(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Deliver(to, id) => self.deliver(to, id),
            Ev::PushWake(i) => self.push_wake(i),
            Ev::ExtensionEnds(i) => {
                if self.now() >= self.phones[i].extension_until {
                    if let Some((c, ClientRole::NotificationExtension)) =
                        self.phones[i].client.clone()
                    {
                        // What fell due while awake, then sleep.
                        c.handle_wakeup(Vec::new())
                            .map_err(|e| format!("p{i}: {e}"))?;
                        self.after_call(i)?;
                    }
                    self.sleep_if_idle(i);
                }
                Ok(())
            }
            Ev::AppOpens(i) => {
                if !self.phones[i].off {
                    self.phones[i].app_until = self.now() + self.cfg.app_session_ms;
                    self.app(i)?;
                    let end = self.phones[i].app_until;
                    self.at(end, Ev::AppCloses(i));
                }
                let gap = self.session_gap();
                let next = self.now() + gap;
                self.at(next, Ev::AppOpens(i));
                Ok(())
            }
            Ev::AppCloses(i) => {
                self.sleep_if_idle(i);
                Ok(())
            }
            Ev::Poll(i) => {
                if !self.awake(i) {
                    return Ok(());
                }
                let Some((c, _)) = self.phones[i].client.clone() else {
                    return Ok(());
                };
                c.handle_wakeup(Vec::new())
                    .map_err(|e| format!("p{i}: {e}"))?;
                self.after_call(i)
            }
        }
    }

    fn sleep_if_idle(&mut self, i: usize) {
        if !self.awake(i) || self.phones[i].off {
            self.phones[i].client = None;
        }
    }

    fn deliver(&mut self, to: usize, id: u64) -> Result<(), String> {
        let Some(parcel) = self.parcels.remove(&id) else {
            return Ok(());
        };
        let Some(packet) = parcel.borrow_mut().take() else {
            return Ok(());
        };
        if self.phones[to].off {
            return Ok(());
        }
        if self.awake(to) {
            let Some((c, _)) = self.phones[to].client.clone() else {
                return Ok(());
            };
            c.handle_wakeup(vec![packet])
                .map_err(|e| format!("p{to} receive: {e}"))?;
            return self.after_call(to);
        }
        self.phones[to].mailbox.push(packet);
        if self.phones[to].push_at.is_none() {
            let at = self.now() + self.rng.range(PUSH_LATENCY_MS.0, PUSH_LATENCY_MS.1);
            self.phones[to].push_at = Some(at);
            self.at(at, Ev::PushWake(to));
        }
        Ok(())
    }

    fn push_wake(&mut self, i: usize) -> Result<(), String> {
        self.phones[i].push_at = None;
        if self.phones[i].off || self.phones[i].mailbox.is_empty() {
            return Ok(());
        }
        if self.awake(i) {
            let backlog = std::mem::take(&mut self.phones[i].mailbox);
            if let Some((c, _)) = self.phones[i].client.clone() {
                c.handle_wakeup(backlog).map_err(|e| format!("p{i}: {e}"))?;
            }
            return self.after_call(i);
        }
        let c = self.open(i, ClientRole::NotificationExtension)?;
        self.phones[i].extension_until = self.now() + self.cfg.extension_awake_ms;
        let backlog = std::mem::take(&mut self.phones[i].mailbox);
        c.handle_wakeup(backlog)
            .map_err(|e| format!("p{i} push: {e}"))?;
        let end = self.phones[i].extension_until;
        self.at(end, Ev::ExtensionEnds(i));
        self.after_call(i)
    }

    /// The settings of the measured group: production defaults.
    pub fn settings() -> witan::client::ConversationSettings {
        default_conversation_settings()
    }
}
