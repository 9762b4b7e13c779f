//! One run: member 0 creates the conversation and the others ask to join (all at once, or one
//! at a time); then rounds of chaos (random chats, removals, leaves, re-joins and faults at
//! random times, see `actions.rs`),
//! each followed by healing (partitions end, everyone comes back) and a calm period after
//! which the group must have converged. The run's fault mix is a random subset of the enabled
//! families; byzantine members are fewer than a third of the smallest group the run allows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use witan::client::{ConversationSettings, default_conversation_settings};

use super::invariants::Ledger;
use super::net::{
    Ev, MODE_SWALLOW, MemberClock, NetProfile, Queue, Recorder, SimClock, SimTransport, Sink,
};
use super::rng::Rng;
use super::world::{Byz, CONV, Down, Member, View, secret_of};
use super::{Config, Faults, R, Sim, Stats};

const START_MS: u64 = 1_700_000_000_000;
/// A bound on events per run (a runaway loop is reported, not waited out).
const MAX_EVENTS: u64 = 3_000_000;

/// The conversation's settings: short windows so a run covers many rounds, still several
/// times longer than a bounded network's worst delivery (`net::BOUNDED_DELIVERY_MS`).
pub fn settings() -> ConversationSettings {
    ConversationSettings {
        pending_join_timeout_ms: 60_000,
        commit_inactivity_ms: 4_000,
        recovery_inactivity_ms: 3_000,
        freeze_window_ms: 2_000,
        vote_timeout_ms: 5_000,
        auto_vote_delay_ms: Some(0),
        commit_delay_ms: 100,
        max_clock_skew_ms: 1_000,
        ..default_conversation_settings()
    }
}

impl Sim {
    pub fn new(seed: u64, cfg: Config) -> R<Sim> {
        let mut root = Rng::new(seed);
        let mut rng_scn = root.fork();
        let rng_net = root.fork();
        let rng_byz = root.fork();
        let n = cfg.members.max(2);
        // The draws below come in a fixed order: a seed names the same run on every build.
        let mix = draw_mix(&cfg.faults, cfg.mix_chance, &mut rng_scn);
        let net = net_profile(&mix, &mut rng_scn);
        let dir = run_dir().map_err(|e| violation_at(seed, "setup", e.to_string()))?;
        let clock = Arc::new(SimClock::default());
        clock.set(START_MS);
        let sink = Arc::new(Sink::default());
        let byz_members = draw_byzantine(&mix, n, &mut rng_scn);
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            let at = dir.path().join(format!("m{i}.db"));
            let (clock, sink) = (clock.clone(), sink.clone());
            let byz = byz_members.contains(&i);
            let member = new_member(i, at, clock, sink, &mix, byz, &mut rng_scn)
                .map_err(|e| violation_at(seed, "setup", e))?;
            members.push(member);
        }
        let trace = cfg.trace.then(Vec::new);
        if cfg.trace {
            super::logs::capture();
        }
        let mut sim = Sim {
            seed,
            cfg,
            mix,
            dir,
            clock,
            start_ms: START_MS,
            sink,
            queue: Queue::default(),
            members,
            net,
            partition: None,
            held: Vec::new(),
            rng_net,
            rng_scn,
            rng_byz,
            ledger: Ledger::new(n),
            stats: Stats::default(),
            next_tenure: 0,
            chaos: false,
            trace,
            events_run: 0,
            churn_quiet_until: 0,
        };
        for i in 0..n {
            sim.open_client(i)?;
        }
        let byz: Vec<String> = byz_members
            .iter()
            .map(|i| format!("m{i}:{:?}", sim.members[*i].byz))
            .collect();
        let mix_s = super::describe(&sim.mix);
        sim.tr(|| format!("seed {seed}: {n} members, faults [{mix_s}], byzantine {byz:?}"));
        Ok(sim)
    }

    pub fn run(&mut self) -> R<()> {
        let n = self.members.len();
        if let Some((Err(e), _)) = self.invoke(0, "create", |c| {
            c.create_conversation(CONV.into(), settings())
        })? {
            return Err(self.violation("setup", format!("create failed: {e}")));
        }
        self.set_wake(0, Some(self.now()), true);
        for i in 1..n {
            // A burst: everyone asks within two seconds; otherwise one every 1.5 s, each
            // admitted before the next asks.
            let at = if self.mix.burst_joins {
                self.now() + self.rng_scn.range(0, 2_000)
            } else {
                self.now() + 1_500 * i as u64
            };
            self.queue.push(at, Ev::Join { member: i });
        }
        for round in 0..self.cfg.rounds {
            self.chaos = true;
            self.tr(|| format!("--- round {round}: chaos"));
            let first_tick = if round == 0 && !self.mix.burst_joins {
                1_500 * n as u64
            } else {
                1_000
            };
            self.queue.push(self.now() + first_tick, Ev::Tick);
            let end = self.now() + self.cfg.chaos_ms;
            self.run_until(end)?;
            self.chaos = false;
            self.tr(|| format!("--- round {round}: healing"));
            self.heal_all()?;
            let end = self.now() + self.cfg.settle_ms;
            self.run_until(end)?;
            // Whatever is still in flight (long retries) must land before checking.
            for _ in 0..20 {
                if self.queue.in_flight() == 0 && self.held.is_empty() {
                    break;
                }
                let end = self.now() + 10_000;
                self.run_until(end)?;
            }
            self.tr(|| format!("--- round {round}: checking"));
            self.check_settled()?;
        }
        self.check_histories()?;
        self.stats.virtual_ms = self.now() - self.start_ms;
        if let Some(r) = self
            .members
            .iter()
            .find(|m| m.honest() && m.view.in_group())
        {
            self.stats.final_epoch = r.view.epoch();
            self.stats.final_members = r.view.member_ids().len() as u64;
        }
        Ok(())
    }

    fn run_until(&mut self, end: u64) -> R<()> {
        while let Some(at) = self.queue.peek_time() {
            if at > end {
                break;
            }
            let Some((at, ev)) = self.queue.pop() else {
                break;
            };
            if at > self.now() {
                self.clock.set(at);
            }
            self.events_run += 1;
            if self.events_run > MAX_EVENTS {
                return Err(self.violation("liveness", "the run does not settle".into()));
            }
            self.dispatch(ev)?;
        }
        if end > self.now() {
            self.clock.set(end);
        }
        Ok(())
    }

    fn dispatch(&mut self, ev: Ev) -> R<()> {
        match ev {
            Ev::Deliver { to, batch, attempt } => self.deliver(to, batch, attempt),
            Ev::Wake { member, at } => {
                if self.members[member].wake_at == Some(at) && self.members[member].up() {
                    self.members[member].wake_at = None;
                    self.poll(member)?;
                }
                Ok(())
            }
            Ev::Tick => {
                if self.chaos {
                    self.activate_byzantine();
                    self.random_action()?;
                    let gap = self.rng_scn.range(200, 1_500);
                    self.queue.push(self.now() + gap, Ev::Tick);
                }
                Ok(())
            }
            Ev::Restart { member } if self.members[member].down == Down::Crashed => {
                self.come_back(member)
            }
            Ev::Return { member } if self.members[member].down == Down::Offline => {
                self.come_back(member)
            }
            Ev::Heal => {
                if self
                    .partition
                    .as_ref()
                    .is_some_and(|p| p.until <= self.now())
                {
                    self.heal_partition();
                }
                Ok(())
            }
            Ev::Join { member } => self.join(member),
            Ev::Restart { .. } | Ev::Return { .. } => Ok(()),
        }
    }

    pub(crate) fn join(&mut self, m: usize) -> R<()> {
        if !self.members[m].up() {
            return Ok(());
        }
        if let Some((Ok(()), _)) =
            self.invoke(m, "request_to_join", |c| c.request_to_join(CONV.into()))?
        {
            self.tr(|| format!("m{m} asks to join"));
            let now = self.now();
            self.set_wake(m, Some(now), true);
        }
        Ok(())
    }

    fn heal_partition(&mut self) {
        self.partition = None;
        let now = self.now();
        for (to, batch) in std::mem::take(&mut self.held) {
            self.send_to(to, batch, now);
        }
        self.tr(|| "partition HEALED".into());
    }

    fn heal_all(&mut self) -> R<()> {
        if self.partition.is_some() {
            self.heal_partition();
        }
        for m in 0..self.members.len() {
            self.members[m].dying = false;
            if self.members[m].down != Down::Up {
                self.come_back(m)?;
            }
        }
        Ok(())
    }

    /// Byzantine members misbehave only while they are members of a group large enough to
    /// tolerate all of them (more than three times their number): with fewer members the
    /// group cannot commit without them, which no protocol can change. (Removals they slip
    /// through can shrink the group; they then behave until it grows again.)
    fn activate_byzantine(&mut self) {
        let byzantine = self.members.iter().filter(|m| m.byz.is_some()).count();
        for m in 0..self.members.len() {
            let large_enough = self.members[m].view.member_ids().len() > 3 * byzantine;
            if !large_enough
                && let Some(b) = self.members[m].byz.as_mut()
                && b.active
            {
                b.active = false;
                self.members[m]
                    .transport
                    .mode
                    .store(super::net::MODE_NORMAL, Ordering::SeqCst);
                self.tr(|| format!("m{m} behaves while the group is small"));
                continue;
            }
            let in_group = self.members[m].view.in_group() && large_enough;
            let Some(b) = self.members[m].byz.as_mut() else {
                continue;
            };
            if b.active || !in_group {
                continue;
            }
            b.active = true;
            if b.silent {
                self.members[m]
                    .transport
                    .mode
                    .store(MODE_SWALLOW, Ordering::SeqCst);
            }
            let b = format!("{:?}", self.members[m].byz);
            self.tr(|| format!("m{m} turns BYZANTINE {b}"));
        }
    }
}

/// At most this many members are outside the group at once (removed, left, joining).
pub fn max_outside(n: usize) -> usize {
    (n / 4).max(1)
}

fn violation_at(seed: u64, kind: &str, detail: String) -> Box<super::Violation> {
    Box::new(super::Violation {
        seed,
        at_ms: 0,
        kind: kind.into(),
        detail,
        mix: String::new(),
        trace: Vec::new(),
    })
}

/// The run's mix: each enabled family is on with probability `chance`.
fn draw_mix(enabled: &Faults, chance: f64, rng: &mut Rng) -> Faults {
    let mut mix = Faults::none();
    for (on, slot) in [
        (enabled.churn, &mut mix.churn),
        (enabled.burst_joins, &mut mix.burst_joins),
        (enabled.network, &mut mix.network),
        (enabled.slow_network, &mut mix.slow_network),
        (enabled.partitions, &mut mix.partitions),
        (enabled.long_partitions, &mut mix.long_partitions),
        (enabled.crashes, &mut mix.crashes),
        (enabled.slow_restart, &mut mix.slow_restart),
        (enabled.offline, &mut mix.offline),
        (enabled.skew, &mut mix.skew),
        (enabled.silent, &mut mix.silent),
        (enabled.bogus, &mut mix.bogus),
        (enabled.replay, &mut mix.replay),
        (enabled.equivocation, &mut mix.equivocation),
        (enabled.byzantine_member, &mut mix.byzantine_member),
    ] {
        *slot = on && rng.chance(chance);
    }
    mix
}

/// The network of the run: hostile (drops, copies, a long tail) when a network family is on.
fn net_profile(mix: &Faults, rng: &mut Rng) -> NetProfile {
    if mix.network || mix.slow_network {
        NetProfile {
            hostile: true,
            slow: mix.slow_network,
            dup_chance: 0.05,
            drop_chance: rng.range(2, 15) as f64 / 100.0,
            tail_chance: 0.08,
        }
    } else {
        NetProfile::calm()
    }
}

/// The directory of the members' databases. Every step fsyncs (`synchronous = FULL`): on a
/// RAM disk that costs nothing.
fn run_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::Builder::new().prefix("witan-sim").tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
}

/// The byzantine members: fewer than a third of the smallest group this run allows, never
/// member 0 (the creator).
fn draw_byzantine(mix: &Faults, n: usize, rng: &mut Rng) -> Vec<usize> {
    let min_group = n - max_outside(n);
    let max_byz = (min_group - 1) / 3;
    let byz_count = if mix.byzantine() {
        rng.range(1, max_byz as u64 + 1) as usize
    } else {
        0
    };
    let mut byz_members: Vec<usize> = (1..n).collect();
    rng.shuffle(&mut byz_members);
    byz_members.truncate(byz_count);
    byz_members
}

/// What a byzantine member does in this mix: each of the mix's behaviours with some chance,
/// and at least one.
fn draw_byz(mix: &Faults, rng: &mut Rng) -> Byz {
    let mut b = Byz {
        silent: mix.silent && rng.chance(0.5),
        bogus: mix.bogus && rng.chance(0.7),
        replay: mix.replay && rng.chance(0.7),
        equivocate: mix.equivocation,
        malicious: mix.byzantine_member,
        ..Byz::default()
    };
    if !(b.silent || b.bogus || b.replay || b.equivocate || b.malicious) {
        b.silent = mix.silent;
        b.bogus = !mix.silent && mix.bogus;
        b.replay = !mix.silent && !mix.bogus;
    }
    b
}

/// Member `i`, its database at `path`, its clock skewed when the mix has skew; no client
/// open yet.
fn new_member(
    i: usize,
    path: std::path::PathBuf,
    clock: Arc<SimClock>,
    sink: Arc<Sink>,
    mix: &Faults,
    byzantine: bool,
    rng: &mut Rng,
) -> Result<Member, String> {
    let secret = secret_of(i);
    let id = witan::mls::Identity::from_secret(&secret)
        .map_err(|e| e.to_string())?
        .member_id()
        .to_hex();
    let offset_ms = if mix.skew {
        rng.range(0, 601) as i64 - 300
    } else {
        0
    };
    let byz = byzantine.then(|| draw_byz(mix, rng));
    Ok(Member {
        index: i,
        secret,
        id,
        path: path.to_string_lossy().into_owned(),
        client: None,
        transport: Arc::new(SimTransport {
            sink,
            member: i,
            mode: AtomicU8::new(0),
        }),
        listener: Arc::new(Recorder::default()),
        clock: Arc::new(MemberClock {
            global: clock,
            offset_ms,
        }),
        down: Down::Up,
        dying: false,
        mailbox: Vec::new(),
        wake_at: None,
        spins: 0,
        byz,
        view: View::default(),
    })
}
