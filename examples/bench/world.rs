//! The bench's world: N `WitanClient`s in one process, each with its own SQLite file under
//! the shipped durability settings, linked by an in-memory topic router and driven by a
//! virtual clock.
//!
//! The router is FIFO and loses nothing. It does not echo a packet to its publisher (a
//! client's own echo is a duplicate that changes nothing). Delivery goes in rounds: a round
//! takes every packet in flight and hands each client, in one `receive` call, the ones on its
//! topics in publication order; packets published meanwhile go to the next round. When
//! nothing is in flight, every client is polled and the clock jumps to the earliest wake-up
//! they asked for.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use witan::client::{
    ClientConfig, Clock, ConversationInfo, EventListener, InboundPacket, OutboundPacket, Transport,
    TransportError, WitanClient, WitanEvent,
};

use super::measure::Meter;

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Virtual time starts here (2023-11-14T22:13:20Z).
pub const START_MS: u64 = 1_700_000_000_000;

/// One published packet.
#[derive(Clone, Debug)]
pub struct Packet {
    pub from: usize,
    pub topic: String,
    pub payload: Vec<u8>,
    /// What the publisher was doing (see [`Router::set_phase`]); shown when a backlog is
    /// inspected (`Debug`), no workload selects on it any more.
    #[allow(dead_code)]
    pub phase: &'static str,
}

/// FIFO topic router with publication counters.
#[derive(Default)]
pub struct Router {
    queue: Mutex<VecDeque<Packet>>,
    subs: Mutex<Vec<BTreeSet<String>>>,
    phase: Mutex<&'static str>,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Every published packet is also kept here while set (used to build backlogs).
    pub record: AtomicBool,
    pub log: Mutex<Vec<Packet>>,
}

impl Router {
    /// Labels the packets published from now on.
    pub fn set_phase(&self, phase: &'static str) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
    }

    pub fn in_flight(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.len())
    }

    fn take_all(&self) -> Vec<Packet> {
        self.queue
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// (packets, bytes) published so far.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.packets.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

struct NodeTransport {
    router: Arc<Router>,
    node: usize,
}

impl Transport for NodeTransport {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        let r = &self.router;
        r.packets.fetch_add(1, Ordering::Relaxed);
        r.bytes
            .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
        let phase = *r.phase.lock().unwrap_or_else(|p| p.into_inner());
        let p = Packet {
            from: self.node,
            topic: packet.topic,
            payload: packet.payload,
            phase,
        };
        if r.record.load(Ordering::Relaxed) {
            r.log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(p.clone());
        }
        r.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(p);
        Ok(())
    }

    fn subscribe(&self, topic: String) {
        let mut subs = self.router.subs.lock().unwrap_or_else(|p| p.into_inner());
        if subs.len() <= self.node {
            subs.resize(self.node + 1, BTreeSet::new());
        }
        subs[self.node].insert(topic);
    }

    fn unsubscribe(&self, topic: String) {
        let mut subs = self.router.subs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = subs.get_mut(self.node) {
            s.remove(&topic);
        }
    }
}

/// Keeps counts, not events (a 128-member formation produces a great many).
#[derive(Default)]
pub struct Listener {
    /// A membership change or a join happened since the flag was last cleared.
    pub membership: AtomicBool,
    pub messages: AtomicU64,
    pub warnings: AtomicU64,
}

impl EventListener for Listener {
    fn on_event(&self, event: WitanEvent) {
        match event {
            WitanEvent::MembershipChanged { .. } | WitanEvent::Joined { .. } => {
                self.membership.store(true, Ordering::Relaxed)
            }
            WitanEvent::MessageReceived { .. } => {
                self.messages.fetch_add(1, Ordering::Relaxed);
            }
            WitanEvent::Warning { .. } => {
                self.warnings.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

pub struct VirtualClock(pub AtomicU64);

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Time spent inside `receive` and how many packets it was handed.
#[derive(Default, Debug, Clone, Copy)]
pub struct ReceiveStats {
    pub time: Duration,
    pub packets: u64,
    pub calls: u64,
}

pub struct World {
    pub dir: std::path::PathBuf,
    pub router: Arc<Router>,
    pub clock: Arc<VirtualClock>,
    pub clients: Vec<Option<Arc<WitanClient>>>,
    pub listeners: Vec<Arc<Listener>>,
    pub receive: ReceiveStats,
    /// Packets for clients that are closed, in arrival order.
    pub mailbox: Vec<Vec<Packet>>,
}

impl World {
    /// Opens `n` clients with files under `dir`.
    pub fn new(n: usize, dir: &std::path::Path) -> BenchResult<World> {
        let mut w = World {
            dir: dir.to_path_buf(),
            router: Arc::new(Router::default()),
            clock: Arc::new(VirtualClock(AtomicU64::new(START_MS))),
            clients: (0..n).map(|_| None).collect(),
            listeners: (0..n).map(|_| Arc::new(Listener::default())).collect(),
            receive: ReceiveStats::default(),
            mailbox: vec![Vec::new(); n],
        };
        for i in 0..n {
            w.open(i)?;
        }
        Ok(w)
    }

    pub fn n(&self) -> usize {
        self.clients.len()
    }

    pub fn path(&self, i: usize) -> String {
        self.dir
            .join(format!("member-{i}.db"))
            .to_string_lossy()
            .into_owned()
    }

    pub fn open(&mut self, i: usize) -> BenchResult<()> {
        let client = WitanClient::open_with_clock(
            ClientConfig {
                database_path: self.path(i),
                identity_secret: None,
                database_key: None,
                role: None,
            },
            Arc::new(NodeTransport {
                router: self.router.clone(),
                node: i,
            }),
            self.listeners[i].clone(),
            self.clock.clone(),
        )?;
        self.clients[i] = Some(client);
        Ok(())
    }

    /// Drops client `i`: packets for it go to its mailbox until it is opened again.
    pub fn close(&mut self, i: usize) {
        self.clients[i] = None;
    }

    pub fn c(&self, i: usize) -> BenchResult<&WitanClient> {
        self.clients[i]
            .as_deref()
            .ok_or_else(|| format!("client {i} is closed").into())
    }

    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn set_now(&self, at: u64) {
        self.clock.0.store(at, Ordering::SeqCst);
    }

    /// Delivers one round (see the module doc); returns how many packets were taken.
    pub fn deliver_round(&mut self) -> BenchResult<usize> {
        let batch = self.router.take_all();
        if batch.is_empty() {
            return Ok(0);
        }
        let subs = self
            .router
            .subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for i in 0..self.n() {
            let Some(topics) = subs.get(i) else { continue };
            let mine = batch
                .iter()
                .filter(|p| p.from != i && topics.contains(&p.topic));
            match &self.clients[i] {
                Some(c) => {
                    let packets: Vec<InboundPacket> = mine
                        .map(|p| InboundPacket {
                            topic: p.topic.clone(),
                            payload: p.payload.clone(),
                        })
                        .collect();
                    if packets.is_empty() {
                        continue;
                    }
                    let count = packets.len() as u64;
                    let started = Instant::now();
                    c.receive(packets)?;
                    self.receive.time += started.elapsed();
                    self.receive.packets += count;
                    self.receive.calls += 1;
                }
                None => self.mailbox[i].extend(mine.cloned()),
            }
        }
        Ok(batch.len())
    }

    /// Polls every open client; the earliest wake-up they asked for.
    pub fn poll_all(&self) -> BenchResult<Option<u64>> {
        self.router.set_phase("poll");
        let mut next: Option<u64> = None;
        for c in self.clients.iter().flatten() {
            if let Some(at) = c.poll()?.next_wakeup_at_ms {
                next = Some(next.map_or(at, |n: u64| n.min(at)));
            }
        }
        self.router.set_phase("receive");
        Ok(next)
    }

    /// Runs deliveries, polls and clock jumps until `done` holds or `horizon_ms` of virtual
    /// time passed. `done` runs with the meter paused, and only after a delivery round in
    /// which a membership changed (or when the world is quiet) if `on_membership` is set.
    pub fn run_until(
        &mut self,
        meter: &mut Meter,
        horizon_ms: u64,
        on_membership: bool,
        mut done: impl FnMut(&World) -> BenchResult<bool>,
    ) -> BenchResult<bool> {
        let end = self.now() + horizon_ms;
        self.router.set_phase("receive");
        let mut check = |w: &World, meter: &mut Meter, quiet: bool| -> BenchResult<bool> {
            let changed = w
                .listeners
                .iter()
                .any(|l| l.membership.swap(false, Ordering::Relaxed));
            if on_membership && !changed && !quiet {
                return Ok(false);
            }
            meter.pause();
            let d = done(w);
            meter.resume();
            d
        };
        for _ in 0..1_000_000 {
            while self.deliver_round()? > 0 {
                if check(self, meter, false)? {
                    return Ok(true);
                }
            }
            let next = self.poll_all()?;
            if self.router.in_flight() > 0 {
                continue;
            }
            if check(self, meter, true)? {
                return Ok(true);
            }
            match next {
                Some(at) if at > self.now() && at <= end => self.set_now(at),
                Some(at) if at <= self.now() => self.set_now(self.now() + 1),
                _ => return Ok(false),
            }
        }
        Err("the world did not settle".into())
    }

    /// Lets every timer within `horizon_ms` fire (untimed).
    pub fn settle(&mut self, horizon_ms: u64) -> BenchResult<()> {
        let mut meter = Meter::default();
        let end = self.now() + horizon_ms;
        self.run_until(&mut meter, horizon_ms, false, |_| Ok(false))?;
        if self.now() < end {
            self.set_now(end);
        }
        self.poll_all()?;
        while self.deliver_round()? > 0 {}
        Ok(())
    }

    /// Conversation info of client `i`.
    pub fn info(&self, i: usize, conversation: &str) -> BenchResult<ConversationInfo> {
        self.c(i)?
            .conversation(conversation.to_string())?
            .ok_or_else(|| format!("client {i} has no conversation {conversation:?}").into())
    }

    /// Whether the given open clients are all in one epoch with exactly `members` as members.
    pub fn agree(
        &self,
        conversation: &str,
        clients: &[usize],
        members: &[String],
    ) -> BenchResult<bool> {
        let mut want: Vec<&String> = members.iter().collect();
        want.sort();
        let mut epoch = None;
        for &i in clients {
            let Some(info) = self.c(i)?.conversation(conversation.to_string())? else {
                return Ok(false);
            };
            if *epoch.get_or_insert(info.epoch) != info.epoch || info.members.len() != members.len()
            {
                return Ok(false);
            }
            let mut have: Vec<&String> = info.members.iter().map(|m| &m.member_id).collect();
            have.sort();
            if have != want {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn member_ids(&self) -> BenchResult<Vec<String>> {
        (0..self.n()).map(|i| Ok(self.c(i)?.member_id())).collect()
    }
}
