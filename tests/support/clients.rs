//! Harness for scenarios through the public `WitanClient`: members with their own SQLite
//! files in one temporary directory, linked by an in-process topic router (FIFO), driven by a
//! manual clock that jumps to the earliest wake-up any member asked for when nothing is in
//! flight.
//!
//! The router can be made hostile per directed link: a *cut* link loses what it carries, a
//! *held* link (a partition) keeps it until [`World::heal`], and a delay function makes
//! every delivery wait (packets in flight count as wake-ups). Each local member reads the
//! shared clock through its own offset ([`World::set_offset`]): a member whose clock runs
//! ahead or behind.
//!
//! A member is either *local* (a client in this process, which can be closed and reopened
//! from its file; while closed, its packets wait in a mailbox like a push service keeps them)
//! or *remote* (anything implementing [`Remote`], for example a client driven by a child
//! process). Remote members receive every packet of every topic, in batches, and their
//! published packets are fed back into the router.
//!
//! Included with `#[path = "support/clients.rs"] mod clients;` by the client-level test files
//! (the engine harness in `support/mod.rs` is separate).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use witan::client::{
    ClientConfig, Clock, ConversationInfo, ConversationSettings, ConversationState, EventListener,
    InboundPacket, OutboundPacket, StoredMessage, Transport, TransportError, WitanClient,
    WitanEvent, default_conversation_settings,
};

pub const CONV: &str = "garden-club";

/// Settings that make a story quick in virtual time.
pub fn fast_settings() -> ConversationSettings {
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

/// A delivery delay in ms for a packet from `from` to `to`, the `seq`-th one routed.
pub type DelayFn = Box<dyn Fn(usize, usize, u64) -> u64 + Send>;

/// A packet on its way to one member: (from, to, topic, payload).
pub type InFlight = (usize, usize, String, Vec<u8>);

/// Topic router: a FIFO queue of published packets (with their sender) and per-node
/// subscriptions that survive a client restart.
#[derive(Default)]
pub struct Router {
    pub queue: Mutex<VecDeque<(usize, String, Vec<u8>)>>,
    pub subs: Mutex<BTreeMap<usize, BTreeSet<String>>>,
    /// Nodes whose packets are lost (a crashed or silent member).
    pub muted: Mutex<BTreeSet<usize>>,
    /// Directed links (from, to) on which every packet is lost.
    pub cut: Mutex<BTreeSet<(usize, usize)>>,
    /// Directed links (from, to) whose packets wait in `held` until `World::heal`.
    pub partitioned: Mutex<BTreeSet<(usize, usize)>>,
    pub held: Mutex<Vec<InFlight>>,
    /// Delay of each delivery, if any; packets wait in `in_flight` until due.
    pub delay: Mutex<Option<DelayFn>>,
    /// Packets waiting for their delivery time, by (due time, sequence).
    pub in_flight: Mutex<BTreeMap<(u64, u64), InFlight>>,
    pub routed: AtomicU64,
}

pub struct NodeTransport {
    pub router: Arc<Router>,
    pub node: usize,
}

impl Transport for NodeTransport {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        if self.router.muted.lock().unwrap().contains(&self.node) {
            return Ok(());
        }
        self.router
            .queue
            .lock()
            .unwrap()
            .push_back((self.node, packet.topic, packet.payload));
        Ok(())
    }
    fn subscribe(&self, topic: String) {
        let mut subs = self.router.subs.lock().unwrap();
        subs.entry(self.node).or_default().insert(topic);
    }
    fn unsubscribe(&self, topic: String) {
        let mut subs = self.router.subs.lock().unwrap();
        subs.entry(self.node).or_default().remove(&topic);
    }
}

#[derive(Default)]
pub struct Listener(pub Mutex<Vec<WitanEvent>>);

impl EventListener for Listener {
    fn on_event(&self, event: WitanEvent) {
        self.0.lock().unwrap().push(event);
    }
}

pub struct ManualClock(pub AtomicU64);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A member's view of the shared clock: `base + offset`.
pub struct OffsetClock {
    pub base: Arc<ManualClock>,
    pub offset_ms: Arc<AtomicI64>,
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        let offset = self.offset_ms.load(Ordering::SeqCst);
        self.base.now_ms().saturating_add_signed(offset)
    }
}

/// A member driven outside this process's clients (or in some other special way).
pub trait Remote {
    /// Hands it packets that arrived (every topic), at virtual time `now`.
    fn receive(&mut self, now: u64, packets: Vec<Vec<u8>>);
    /// Polls it at `now`; returns its next wake-up.
    fn poll(&mut self, now: u64) -> Option<u64>;
    /// Packets it published since the last call, in order, as (topic, payload).
    fn take_published(&mut self) -> Vec<(String, Vec<u8>)>;
}

pub enum Slot {
    /// `None` while closed.
    Local(Option<Arc<WitanClient>>),
    Remote(Box<dyn Remote>),
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub router: Arc<Router>,
    pub clock: Arc<ManualClock>,
    pub names: Vec<String>,
    pub slots: Vec<Slot>,
    pub listeners: Vec<Arc<Listener>>,
    /// Packets for closed local members.
    pub mailbox: BTreeMap<usize, Vec<Vec<u8>>>,
    /// Each member's clock offset from the shared clock (ms).
    pub offsets: Vec<Arc<AtomicI64>>,
    /// Database keys of the members whose files are encrypted (SQLCipher).
    pub keys: BTreeMap<usize, Vec<u8>>,
}

pub const START_MS: u64 = 1_700_000_000_000;

impl World {
    /// Local members named `names`, each opened on its own file.
    pub fn new(names: &[&str]) -> World {
        World::with_keys(names, false)
    }

    /// Like [`World::new`], but each member's file is encrypted with a key of its own.
    pub fn new_encrypted(names: &[&str]) -> World {
        World::with_keys(names, true)
    }

    fn with_keys(names: &[&str], encrypted: bool) -> World {
        let mut w = World {
            dir: tempfile::tempdir().unwrap(),
            router: Arc::new(Router::default()),
            clock: Arc::new(ManualClock(AtomicU64::new(START_MS))),
            names: Vec::new(),
            slots: Vec::new(),
            listeners: Vec::new(),
            mailbox: BTreeMap::new(),
            offsets: Vec::new(),
            keys: BTreeMap::new(),
        };
        for name in names {
            let i = w.add_slot(name, Slot::Local(None));
            if encrypted {
                w.keys.insert(i, vec![0xa0 ^ i as u8; 32]);
            }
            w.open(i);
        }
        w
    }

    fn add_slot(&mut self, name: &str, slot: Slot) -> usize {
        self.names.push(name.to_string());
        self.slots.push(slot);
        self.listeners.push(Arc::new(Listener::default()));
        self.offsets.push(Arc::new(AtomicI64::new(0)));
        self.slots.len() - 1
    }

    /// Makes member `i`'s clock run `offset_ms` ahead of the shared clock (behind if negative).
    pub fn set_offset(&self, i: usize, offset_ms: i64) {
        self.offsets[i].store(offset_ms, Ordering::SeqCst);
    }

    /// The shared clock's time for member `i`'s time `at`.
    fn global(&self, i: usize, at: u64) -> u64 {
        at.saturating_add_signed(-self.offsets[i].load(Ordering::SeqCst))
    }

    /// Packets from `from` to `to` are lost from now on (both directions with `cut_both`).
    pub fn cut(&self, from: usize, to: usize) {
        self.router.cut.lock().unwrap().insert((from, to));
    }

    pub fn uncut(&self, from: usize, to: usize) {
        self.router.cut.lock().unwrap().remove(&(from, to));
    }

    /// A partition between `side` and everyone else: packets across it wait until `heal`.
    pub fn partition(&self, side: &[usize]) {
        let mut links = self.router.partitioned.lock().unwrap();
        for a in 0..self.slots.len() {
            for b in 0..self.slots.len() {
                if side.contains(&a) != side.contains(&b) {
                    links.insert((a, b));
                }
            }
        }
    }

    /// Ends every partition; what waited is delivered with the next `deliver`.
    pub fn heal(&self) {
        self.router.partitioned.lock().unwrap().clear();
        let held = std::mem::take(&mut *self.router.held.lock().unwrap());
        let now = self.now();
        let mut in_flight = self.router.in_flight.lock().unwrap();
        for p in held {
            let seq = self.router.routed.fetch_add(1, Ordering::SeqCst);
            in_flight.insert((now, seq), p);
        }
    }

    /// Every delivery from now on waits `delay(from, to, seq)` ms.
    pub fn set_delay(&self, delay: Option<DelayFn>) {
        *self.router.delay.lock().unwrap() = delay;
    }

    /// Adds a remote member; returns its index.
    pub fn add_remote(&mut self, name: &str, remote: Box<dyn Remote>) -> usize {
        self.add_slot(name, Slot::Remote(remote))
    }

    pub fn remote(&mut self, i: usize) -> &mut dyn Remote {
        match &mut self.slots[i] {
            Slot::Remote(r) => r.as_mut(),
            Slot::Local(_) => panic!("{} is local", self.names[i]),
        }
    }

    pub fn path(&self, i: usize) -> String {
        let file = format!("{}.db", self.names[i]);
        self.dir.path().join(file).to_str().unwrap().to_string()
    }

    pub fn open(&mut self, i: usize) {
        let client = WitanClient::open_with_clock(
            ClientConfig {
                database_path: self.path(i),
                identity_secret: None,
                database_key: self.keys.get(&i).cloned(),
                role: None,
            },
            Arc::new(NodeTransport {
                router: self.router.clone(),
                node: i,
            }),
            self.listeners[i].clone(),
            Arc::new(OffsetClock {
                base: self.clock.clone(),
                offset_ms: self.offsets[i].clone(),
            }),
        )
        .unwrap();
        self.slots[i] = Slot::Local(Some(client));
    }

    pub fn close(&mut self, i: usize) {
        self.slots[i] = Slot::Local(None);
    }

    /// Reopens a closed member without handing it its mailbox yet.
    pub fn reopen_quietly(&mut self, i: usize) {
        self.open(i);
    }

    /// Hands a reopened member the packets that arrived while it was closed.
    pub fn deliver_mailbox(&mut self, i: usize) {
        let backlog = self.mailbox.remove(&i).unwrap_or_default();
        let packets = backlog
            .into_iter()
            .map(|payload| InboundPacket {
                topic: String::new(),
                payload,
            })
            .collect();
        self.c(i).receive(packets).unwrap();
    }

    pub fn c(&self, i: usize) -> &WitanClient {
        match &self.slots[i] {
            Slot::Local(Some(c)) => c,
            _ => panic!("{} is not an open local client", self.names[i]),
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn set_now(&self, at: u64) {
        self.clock.0.store(at, Ordering::SeqCst);
    }

    /// Feeds the remotes' published packets into the router; true if there were any.
    fn pump_remotes(&mut self) -> bool {
        let mut any = false;
        for slot in &mut self.slots {
            if let Slot::Remote(r) = slot {
                let published = r.take_published();
                any |= !published.is_empty();
                // Remotes are not routed through the hostile links: their sender is unknown.
                let from = usize::MAX;
                let mut queue = self.router.queue.lock().unwrap();
                queue.extend(published.into_iter().map(|(t, p)| (from, t, p)));
            }
        }
        any
    }

    /// Delivers everything in flight to every subscribed node, the sender included (its echo
    /// must be a duplicate); remote members get every packet, in one batch per round.
    /// Packets on a cut link are lost, those across a partition wait for `heal`, and with a
    /// delay function they wait in flight until due.
    pub fn deliver(&mut self) {
        let now = self.now();
        loop {
            let mut for_remotes: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
            loop {
                let next = self.router.queue.lock().unwrap().pop_front();
                let Some((from, topic, payload)) = next else {
                    break;
                };
                let subs = self.router.subs.lock().unwrap().clone();
                for i in 0..self.slots.len() {
                    match &self.slots[i] {
                        Slot::Remote(_) => {
                            for_remotes.entry(i).or_default().push(payload.clone());
                        }
                        _ if !subs.get(&i).is_some_and(|s| s.contains(&topic)) => {}
                        Slot::Local(_) => self.route(from, i, topic.clone(), payload.clone()),
                    }
                }
            }
            while let Some((from, to, topic, payload)) = self.next_due(now) {
                self.hand_over(from, to, topic, payload);
            }
            for (i, packets) in for_remotes {
                self.remote(i).receive(now, packets);
            }
            let queued = !self.router.queue.lock().unwrap().is_empty();
            if !self.pump_remotes() && !queued && self.next_due_at().is_none_or(|at| at > now) {
                return;
            }
        }
    }

    /// Puts one packet for local member `to` on its way (or loses or holds it).
    fn route(&mut self, from: usize, to: usize, topic: String, payload: Vec<u8>) {
        let link = (from, to);
        if self.router.cut.lock().unwrap().contains(&link) {
            return;
        }
        if self.router.partitioned.lock().unwrap().contains(&link) {
            self.router
                .held
                .lock()
                .unwrap()
                .push((from, to, topic, payload));
            return;
        }
        let seq = self.router.routed.fetch_add(1, Ordering::SeqCst);
        let delay = match &*self.router.delay.lock().unwrap() {
            Some(d) if from != to => d(from, to, seq),
            _ => 0,
        };
        let at = self.now() + delay;
        self.router
            .in_flight
            .lock()
            .unwrap()
            .insert((at, seq), (from, to, topic, payload));
    }

    fn next_due_at(&self) -> Option<u64> {
        let in_flight = self.router.in_flight.lock().unwrap();
        in_flight.keys().next().map(|(at, _)| *at)
    }

    fn next_due(&self, now: u64) -> Option<InFlight> {
        let mut in_flight = self.router.in_flight.lock().unwrap();
        let key = *in_flight.keys().next().filter(|(at, _)| *at <= now)?;
        in_flight.remove(&key)
    }

    /// Hands a packet that is due to member `to` (or to its mailbox while it is closed).
    fn hand_over(&mut self, _from: usize, to: usize, topic: String, payload: Vec<u8>) {
        match &self.slots[to] {
            Slot::Local(Some(c)) => {
                c.receive(vec![InboundPacket { topic, payload }]).unwrap();
            }
            Slot::Local(None) => self.mailbox.entry(to).or_default().push(payload),
            Slot::Remote(_) => {}
        }
    }

    /// Polls every open member; returns the earliest wake-up they asked for.
    pub fn poll_all(&mut self) -> Option<u64> {
        let now = self.now();
        let mut next: Option<u64> = None;
        for i in 0..self.slots.len() {
            let at = match &mut self.slots[i] {
                Slot::Local(Some(c)) => c.poll().unwrap().next_wakeup_at_ms,
                Slot::Local(None) => None,
                Slot::Remote(r) => r.poll(now),
            };
            next = min_opt(next, at.map(|at| self.global(i, at)));
        }
        self.pump_remotes();
        min_opt(next, self.next_due_at())
    }

    /// Delivers and polls, jumping the clock to the next wake-up, for `horizon_ms`.
    pub fn run_for(&mut self, horizon_ms: u64) {
        let end = self.now() + horizon_ms;
        for _ in 0..100_000 {
            self.deliver();
            let first = self.poll_all();
            self.deliver();
            let next = min_opt(first, self.poll_all());
            match next {
                Some(at) if at <= end && at > self.now() => self.set_now(at),
                Some(at) if at <= self.now() => {}
                _ => {
                    self.set_now(end);
                    self.poll_all();
                    self.deliver();
                    return;
                }
            }
        }
        panic!("the world did not settle");
    }

    pub fn events(&self, i: usize) -> Vec<WitanEvent> {
        self.listeners[i].0.lock().unwrap().clone()
    }

    pub fn info(&self, i: usize) -> ConversationInfo {
        self.c(i).conversation(CONV.into()).unwrap().unwrap()
    }

    pub fn history(&self, i: usize) -> Vec<StoredMessage> {
        self.c(i).messages(CONV.into(), None, 100_000).unwrap()
    }

    pub fn bodies(&self, i: usize) -> Vec<String> {
        self.history(i)
            .into_iter()
            .map(|m| String::from_utf8(m.body).unwrap())
            .collect()
    }

    pub fn send(&self, i: usize, text: &str) {
        self.c(i)
            .send_message(CONV.into(), text.as_bytes().to_vec())
            .unwrap();
    }

    /// The creator `creator` and the joiners, admitted by vote.
    pub fn form(&mut self, creator: usize, joiners: &[usize]) {
        self.c(creator)
            .create_conversation(CONV.into(), fast_settings())
            .unwrap();
        for &i in joiners {
            self.c(i).request_to_join(CONV.into()).unwrap();
        }
        self.run_for(30_000);
    }

    /// The local members agree on the conversation: Working, same epoch, same members, same
    /// stewards, same MLS epoch authenticator.
    pub fn assert_agree(&self, members: &[usize]) {
        let reference = self.info(members[0]);
        let auth = self.c(members[0]).epoch_authenticator(CONV.into()).unwrap();
        for &i in members {
            let info = self.info(i);
            let who = &self.names[i];
            assert_eq!(info.state, ConversationState::Working, "{who}");
            assert_eq!(info.epoch, reference.epoch, "{who}");
            assert_eq!(member_set(&info), member_set(&reference), "{who}");
            assert_eq!(info.stewards, reference.stewards, "{who}");
            let a = self.c(i).epoch_authenticator(CONV.into()).unwrap();
            assert_eq!(a, auth, "{who} forked");
        }
    }

    pub fn index_of_member(&self, member_id: &str) -> Option<usize> {
        (0..self.slots.len()).find(|&i| match &self.slots[i] {
            Slot::Local(Some(c)) => c.member_id() == member_id,
            _ => false,
        })
    }
}

pub fn member_set(info: &ConversationInfo) -> BTreeSet<String> {
    info.members.iter().map(|m| m.member_id.clone()).collect()
}

pub fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
