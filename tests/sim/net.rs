//! The simulated network's fates and the event queue (the router, the transports, the
//! recorder and the shared clock are `witan_testing`'s).
//!
//! Packets a client publishes during one call form a *batch* per topic. Each subscriber of the
//! topic (the sender included: pub/sub echoes) gets the batch after its own random delay, so
//! batches overtake each other (reordering); a batch may also be delivered twice
//! (duplication) or be lost on one attempt and re-delivered later (a store-and-forward
//! transport that retries: the protocol assumes eventual delivery). During a partition,
//! batches between the two sides wait and flow once it heals; batches for a member that is
//! offline or crashed wait in its mailbox (the push service) and arrive in one wake-up when it
//! returns.
//!
//! Fates are drawn per batch and recipient, in the order calls happen, never from packet
//! bytes: OpenMLS draws its randomness from the OS, so bytes differ between runs of one seed,
//! while the order of calls and the size of each batch do not.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::rc::Rc;
use std::sync::Arc;

use witan::client::Clock;

use super::rng::Rng;

/// Packets of one call on one topic, in publish order.
#[derive(Debug)]
pub struct Batch {
    pub from: usize,
    pub topic: String,
    pub packets: Vec<Vec<u8>>,
    /// SHA-256 of each packet (what the clients de-duplicate on).
    pub hashes: Vec<[u8; 32]>,
    /// Crafted by a byzantine member (bypasses its silence).
    pub crafted: bool,
}

/// What happens at a point of virtual time.
#[derive(Debug)]
pub enum Ev {
    Deliver {
        to: usize,
        batch: Rc<Batch>,
        attempt: u32,
    },
    /// Poll member `member` if its scheduled wake-up is still `at`.
    Wake {
        member: usize,
        at: u64,
    },
    /// The scenario's next random action.
    Tick,
    Restart {
        member: usize,
    },
    Return {
        member: usize,
    },
    Heal,
    /// Member `member` asks to join.
    Join {
        member: usize,
    },
}

struct Entry {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Events ordered by time, then by scheduling order.
#[derive(Default)]
pub struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    deliveries: usize,
}

impl Queue {
    pub fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        if matches!(ev, Ev::Deliver { .. }) {
            self.deliveries += 1;
        }
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            ev,
        }));
    }

    pub fn pop(&mut self) -> Option<(u64, Ev)> {
        let Reverse(e) = self.heap.pop()?;
        if matches!(e.ev, Ev::Deliver { .. }) {
            self.deliveries -= 1;
        }
        Some((e.at, e.ev))
    }

    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Deliveries still in flight.
    pub fn in_flight(&self) -> usize {
        self.deliveries
    }
}

/// How hostile the network is in this run.
#[derive(Clone, Copy, Debug)]
pub struct NetProfile {
    pub hostile: bool,
    /// Delays and retries are not bounded below the protocol's windows.
    pub slow: bool,
    pub dup_chance: f64,
    pub drop_chance: f64,
    pub tail_chance: f64,
}

/// With a bounded network no delivery takes longer than this (delay, plus one retry).
pub const BOUNDED_DELIVERY_MS: u64 = 500;

impl NetProfile {
    pub fn calm() -> NetProfile {
        NetProfile {
            hostile: false,
            slow: false,
            dup_chance: 0.0,
            drop_chance: 0.0,
            tail_chance: 0.0,
        }
    }

    /// One delivery delay.
    pub fn delay(&self, rng: &mut Rng) -> u64 {
        match (self.hostile, self.slow, rng.chance(self.tail_chance)) {
            (false, _, _) => 20,
            (true, true, true) => rng.range(300, 8_000),
            (true, false, true) => rng.range(100, 300),
            (true, _, false) => rng.range(5, 100),
        }
    }

    /// The wait before a lost delivery is tried again.
    pub fn retry(&self, rng: &mut Rng) -> u64 {
        if self.slow {
            rng.range(500, 5_000)
        } else {
            rng.range(50, BOUNDED_DELIVERY_MS - 300)
        }
    }

    /// Whether a delivery attempt is lost (`attempt` counts from 0). A bounded network loses
    /// a delivery at most once.
    pub fn lost(&self, rng: &mut Rng, attempt: u32) -> bool {
        self.hostile && (self.slow || attempt == 0) && rng.chance(self.drop_chance)
    }
}

/// Two sides that cannot reach each other until `until`.
#[derive(Debug, Clone)]
pub struct Partition {
    pub side_a: BTreeSet<usize>,
    pub until: u64,
}

impl Partition {
    pub fn separates(&self, a: usize, b: usize) -> bool {
        self.side_a.contains(&a) != self.side_a.contains(&b)
    }
}

// The network, the members' transports (with their publishing modes), the event recorder
// and the shared clock are `witan_testing`'s, under the names the simulator uses.
pub use witan_testing::MemberTransport as SimTransport;
pub use witan_testing::Network as Sink;
pub use witan_testing::VirtualClock as SimClock;
pub use witan_testing::{MODE_NORMAL, MODE_REFUSE, MODE_SWALLOW, Recorder};

/// A member's view of the clock: the shared time plus its own skew.
pub struct MemberClock {
    pub global: Arc<SimClock>,
    pub offset_ms: i64,
}

impl MemberClock {
    pub fn to_global(&self, local: u64) -> u64 {
        (local as i64 - self.offset_ms).max(0) as u64
    }
}

impl Clock for MemberClock {
    fn now_ms(&self) -> u64 {
        (self.global.now() as i64 + self.offset_ms).max(0) as u64
    }
}
