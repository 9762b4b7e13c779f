//! The bench's world: `witan_testing`'s [`World`](witan_testing::World) of N `WitanClient`s,
//! each with its own SQLite file under the shipped durability settings, with what the bench
//! measures plugged in: a [`Router`] tap that counts and labels every published packet, and a
//! [`Listener`] that keeps counts instead of events.
//!
//! Delivery goes in rounds (`World::deliver_round`: no echo to the publisher, one `receive`
//! per client and round — or, with [`World::live`], one per packet, as a live socket delivers
//! them — its time added up). When nothing is in flight, every client is polled and the clock
//! jumps to the earliest wake-up they asked for.
//!
//! What each client costs is kept per member ([`MemberCost`]): the CPU of the thread that
//! ran its calls (the main thread, or its own with `threads`), the bytes and packets handed
//! to it, the engine's counters of signatures checked and certificate bytes read
//! (`witan_engine::metrics`), the heap allocations its calls made (`alloc`), and the page
//! faults they took (fresh pages for a growing heap or file cache).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use witan::client::{
    ConversationInfo, EventListener, InboundPacket, WitanClient, WitanError, WitanEvent,
};
use witan_engine::metrics::{self, Counters};
use witan_testing::{Dir, MemberSpec, Tap};

use super::alloc::{made, mark_held, risen_since};
use super::alone::Recorder;
use super::measure::{Meter, thread_cpu, thread_usage};
use super::threads::{MemberThreads, Worker, worker};

pub use witan_testing::Packet;

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Counts and labels every published packet.
#[derive(Default)]
pub struct Router {
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

    /// (packets, bytes) published so far.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.packets.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

impl Tap for Router {
    fn published(&self, packet: &mut Packet) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
        packet.phase = *self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if self.record.load(Ordering::Relaxed) {
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            log.push(packet.clone());
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

/// The `receive` calls alone, summed over members: wall time and the calling thread's CPU,
/// each taken around the call itself — as the reference's harness times its own calls —
/// so that the bench's accounting around a call (its CPU clock reads, the per-member
/// counters) is not counted as witan's.
#[derive(Default, Debug, Clone, Copy)]
pub struct ReceiveCalls {
    pub wall: Duration,
    pub cpu: Duration,
}

impl ReceiveCalls {
    /// What was spent between `earlier` and `self`.
    pub fn since(&self, earlier: &ReceiveCalls) -> ReceiveCalls {
        ReceiveCalls {
            wall: self.wall.saturating_sub(earlier.wall),
            cpu: self.cpu.saturating_sub(earlier.cpu),
        }
    }
}

/// What one member cost so far (see the module doc).
#[derive(Default, Debug, Clone, Copy)]
pub struct MemberCost {
    pub cpu: Duration,
    pub bytes_in: u64,
    pub packets_in: u64,
    pub counters: Counters,
    /// Heap allocations made inside the member's calls, and their bytes (`alloc::made`).
    pub allocations: u64,
    pub allocated_bytes: u64,
    /// Page faults taken in the member's calls, and the part of `cpu` spent in the kernel
    /// (`measure::thread_usage`).
    pub page_faults: u64,
    pub system_cpu: Duration,
    /// The most the heap rose within one of the member's calls since [`World::mark_heap`]
    /// (`alloc::risen_since`): not a sum, so [`MemberCost::since`] keeps the later value.
    pub heap_rise: u64,
}

impl MemberCost {
    /// What was spent between `earlier` and `self`.
    pub fn since(&self, earlier: &MemberCost) -> MemberCost {
        MemberCost {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            bytes_in: self.bytes_in - earlier.bytes_in,
            packets_in: self.packets_in - earlier.packets_in,
            counters: self.counters.since(&earlier.counters),
            allocations: self.allocations - earlier.allocations,
            allocated_bytes: self.allocated_bytes - earlier.allocated_bytes,
            page_faults: self.page_faults - earlier.page_faults,
            system_cpu: self.system_cpu.saturating_sub(earlier.system_cpu),
            heap_rise: self.heap_rise,
        }
    }

    /// Runs `f` — on the member's thread `on` if there is one — adding the CPU of the thread
    /// that ran it, its allocations and the engine's counters it spent.
    fn charge<T: Send>(
        &mut self,
        on: Option<&Worker>,
        f: impl FnOnce() -> Result<T, WitanError> + Send,
    ) -> Result<T, WitanError> {
        let measured = move || {
            let usage0 = thread_usage();
            let (cpu0, counters0, made0) = (thread_cpu(), metrics::counters(), made());
            let held0 = mark_held();
            let result = f();
            let (cpu1, made1, heap_rise) = (thread_cpu(), made(), risen_since(held0));
            let usage1 = thread_usage();
            let spent = MemberCost {
                cpu: cpu1.saturating_sub(cpu0),
                counters: metrics::counters().since(&counters0),
                allocations: made1.0 - made0.0,
                allocated_bytes: made1.1 - made0.1,
                page_faults: usage1.page_faults.saturating_sub(usage0.page_faults),
                system_cpu: usage1.system.saturating_sub(usage0.system),
                heap_rise,
                ..MemberCost::default()
            };
            (result, spent)
        };
        let (result, spent) = match on {
            Some(worker) => worker.run(measured),
            None => measured(),
        };
        self.cpu += spent.cpu;
        self.allocations += spent.allocations;
        self.allocated_bytes += spent.allocated_bytes;
        self.page_faults += spent.page_faults;
        self.system_cpu += spent.system_cpu;
        self.heap_rise = self.heap_rise.max(spent.heap_rise);
        self.counters.signatures += spent.counters.signatures;
        self.counters.round_signatures += spent.counters.round_signatures;
        self.counters.certificate_bytes += spent.counters.certificate_bytes;
        result
    }
}

/// The harness's world (its fields — `receive`, `listeners`, `mailbox`, … — read through
/// `Deref`) with the bench's router, per-member costs and fallible calls.
pub struct World {
    inner: witan_testing::World<Listener>,
    pub router: Arc<Router>,
    /// Per member (see the module doc).
    pub costs: Vec<MemberCost>,
    /// Each packet in a `receive` call of its own (a live socket) instead of a round's batch.
    pub live: bool,
    /// The `receive` calls of [`World::deliver_round`].
    pub calls: ReceiveCalls,
    /// A thread per member for its calls, if asked for (`threads`).
    threads: Option<MemberThreads>,
    /// While set, the calls made to some members are recorded (`alone`).
    pub recorder: Option<Recorder>,
}

impl std::ops::Deref for World {
    type Target = witan_testing::World<Listener>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl World {
    /// Opens `n` clients with files `member-<i>.db` under `dir`.
    pub fn new(n: usize, dir: &std::path::Path) -> BenchResult<World> {
        let router = Arc::new(Router::default());
        let tap: Arc<dyn Tap> = router.clone();
        let mut inner = witan_testing::World::empty(
            Dir::Kept(dir.to_path_buf()),
            Some(tap),
            Box::new(|_, _| Arc::new(Listener::default())),
        );
        let threads = MemberThreads::from_env(n)?;
        for i in 0..n {
            inner.add_member(MemberSpec::named(&format!("member-{i}")));
            // A member with a thread of its own is opened there, so that what its client
            // keeps from the start lives in that thread's heap too.
            match worker(threads.as_ref(), i) {
                Some(worker) => inner.try_open_by(i, None, |open| worker.run(open))?,
                None => inner.try_open(i)?,
            }
        }
        Ok(World {
            inner,
            router,
            costs: vec![MemberCost::default(); n],
            live: false,
            calls: ReceiveCalls::default(),
            threads,
            recorder: None,
        })
    }

    /// Runs `f` on client `i`, charging it what the call cost.
    pub fn charged<T: Send>(
        &mut self,
        i: usize,
        f: impl FnOnce(&WitanClient) -> Result<T, WitanError> + Send,
    ) -> BenchResult<T> {
        let client = match self.inner.client(i) {
            Some(c) => c,
            None => return Err(format!("client {i} is closed").into()),
        };
        let on = worker(self.threads.as_ref(), i);
        Ok(self.costs[i].charge(on, || f(client))?)
    }

    pub fn c(&self, i: usize) -> BenchResult<&WitanClient> {
        match self.inner.client(i) {
            Some(c) => Ok(c),
            None => Err(format!("client {i} is closed").into()),
        }
    }

    /// Delivers one round; returns how many packets were taken.
    pub fn deliver_round(&mut self) -> BenchResult<usize> {
        let live = self.live;
        let costs = &mut self.costs;
        let spent = &mut self.calls;
        let threads = self.threads.as_ref();
        let (recorder, now) = (&mut self.recorder, self.inner.now());
        Ok(self.inner.deliver_round_by(|i, c, packets| {
            let calls: Vec<Vec<InboundPacket>> = if live {
                packets.into_iter().map(|p| vec![p]).collect()
            } else {
                vec![packets]
            };
            let n = calls.len() as u64;
            for call in calls {
                if let Some(r) = recorder.as_mut() {
                    r.note(i, now, Some(&call));
                }
                let cost = &mut costs[i];
                cost.bytes_in += call.iter().map(|p| p.payload.len() as u64).sum::<u64>();
                cost.packets_in += call.len() as u64;
                let cpu0 = cost.cpu;
                let on = worker(threads, i);
                cost.charge(on, || {
                    let started = Instant::now();
                    let result = c.receive(call);
                    spent.wall += started.elapsed();
                    result
                })?;
                spent.cpu += cost.cpu.saturating_sub(cpu0);
            }
            Ok(n)
        })?)
    }

    /// Polls every open client; the earliest wake-up they asked for.
    pub fn poll_all(&mut self) -> BenchResult<Option<u64>> {
        self.router.set_phase("poll");
        let costs = &mut self.costs;
        let threads = self.threads.as_ref();
        let (recorder, now) = (&mut self.recorder, self.inner.now());
        let next = self.inner.try_poll_all_by(|i, c| {
            if let Some(r) = recorder.as_mut() {
                r.note(i, now, None);
            }
            let on = worker(threads, i);
            costs[i].charge(on, || c.poll())
        })?;
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
            if self.net.in_flight() > 0 {
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

    /// Starts each member's heap rise (`MemberCost::heap_rise`) again from nothing.
    pub fn mark_heap(&mut self) {
        for c in &mut self.costs {
            c.heap_rise = 0;
        }
    }

    pub fn member_ids(&self) -> BenchResult<Vec<String>> {
        (0..self.n()).map(|i| Ok(self.c(i)?.member_id())).collect()
    }
}
