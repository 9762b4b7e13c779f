//! Workloads (a)–(c) on one world of N clients: formation by join requests and votes, chat
//! rounds, and the removal of a member by vote. They run in this order on the same world
//! (chat and removal need a formed group; formation is then not reported unless asked for).

use std::time::{Duration, Instant};

use witan::client::{ConversationSettings, default_conversation_settings};

use super::alone::Alone;
use super::measure::Meter;
use super::world::{BenchResult, MemberCost, World};

pub const CONV: &str = "bench-conversation";
/// Chat rounds of workload (b).
pub const CHAT_ROUNDS: usize = 20;
/// Chat body size of workload (b).
pub const CHAT_BODY: usize = 64;

/// Production settings, except that every vote request is answered at once.
pub fn settings() -> ConversationSettings {
    ConversationSettings {
        auto_vote_delay_ms: Some(0),
        ..default_conversation_settings()
    }
}

/// What one commit cost each member, over the members that took part (see `PerCommit::of`).
#[derive(Debug, Clone, Default)]
pub struct PerCommit {
    pub commits: u64,
    /// CPU per member per commit: median and maximum over members.
    pub cpu_median: Duration,
    pub cpu_max: Duration,
    /// The second-highest member's CPU per commit: far below the maximum, one member alone
    /// (a round's leader) pays the maximum.
    pub cpu_second: Duration,
    /// Bytes received per member per commit (median, maximum).
    pub bytes_median: f64,
    pub bytes_max: f64,
    /// Signatures checked per member per commit (median, maximum), and of those the
    /// prevote and precommit signatures (the certificate's cost).
    pub signatures_median: f64,
    pub signatures_max: f64,
    pub round_signatures_median: f64,
    pub round_signatures_max: f64,
    /// Bytes of polka and certificate signature lists read per member per commit (median).
    pub certificate_bytes_median: f64,
    /// Heap allocations per member per commit and their bytes (medians): work that grows
    /// as n is linear here whatever one allocation costs on the host.
    pub allocations_median: f64,
    pub allocated_bytes_median: f64,
    /// Page faults per member per commit (median): pages its heap and files took fresh.
    pub page_faults_median: f64,
    /// The CPU per member per commit split between its own code and the kernel (medians of
    /// `cpu − system` and `system`): what grows with the group on the user side, and what
    /// the host's fresh pages and file writes cost on the other.
    pub user_cpu_median: Duration,
    pub system_cpu_median: Duration,
    /// The most a member's heap rose within one call (median and maximum over members; not
    /// divided by the commits): the transient memory a phone needs on top of what it holds.
    pub heap_rise_median: f64,
    pub heap_rise_max: f64,
    /// Protocol (virtual) time from the first action to every member having applied.
    pub latency_ms: u64,
}

/// The median, the second-highest and the maximum of `v`.
pub fn median_second_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let median = v.get(v.len() / 2).copied().unwrap_or(0.0);
    let from_top = |k: usize| v.len().checked_sub(k).and_then(|i| v.get(i)).copied();
    (
        median,
        from_top(2).unwrap_or(0.0),
        from_top(1).unwrap_or(0.0),
    )
}

impl PerCommit {
    /// Per-member figures from each member's cost over the workload, divided by `commits`.
    pub fn of(costs: &[MemberCost], commits: u64, latency_ms: u64) -> PerCommit {
        let per = |f: &dyn Fn(&MemberCost) -> f64| {
            median_second_max(costs.iter().map(|c| f(c) / commits.max(1) as f64).collect())
        };
        let (cpu_median, cpu_second, cpu_max) = per(&|c| c.cpu.as_secs_f64());
        let (bytes_median, _, bytes_max) = per(&|c| c.bytes_in as f64);
        let (signatures_median, _, signatures_max) = per(&|c| c.counters.signatures as f64);
        let (round_signatures_median, _, round_signatures_max) =
            per(&|c| c.counters.round_signatures as f64);
        let (certificate_bytes_median, ..) = per(&|c| c.counters.certificate_bytes as f64);
        let (allocations_median, ..) = per(&|c| c.allocations as f64);
        let (allocated_bytes_median, ..) = per(&|c| c.allocated_bytes as f64);
        let (page_faults_median, ..) = per(&|c| c.page_faults as f64);
        let (user_cpu_median, ..) = per(&|c| c.cpu.saturating_sub(c.system_cpu).as_secs_f64());
        let (system_cpu_median, ..) = per(&|c| c.system_cpu.as_secs_f64());
        let (heap_rise_median, _, heap_rise_max) =
            median_second_max(costs.iter().map(|c| c.heap_rise as f64).collect());
        PerCommit {
            commits,
            cpu_median: Duration::from_secs_f64(cpu_median),
            cpu_max: Duration::from_secs_f64(cpu_max),
            cpu_second: Duration::from_secs_f64(cpu_second),
            bytes_median,
            bytes_max,
            signatures_median,
            signatures_max,
            round_signatures_median,
            round_signatures_max,
            certificate_bytes_median,
            allocations_median,
            allocated_bytes_median,
            page_faults_median,
            user_cpu_median: Duration::from_secs_f64(user_cpu_median),
            system_cpu_median: Duration::from_secs_f64(system_cpu_median),
            heap_rise_median,
            heap_rise_max,
            latency_ms,
        }
    }
}

/// Each member's cost since `before`, for the members in `who`.
fn spent(w: &World, before: &[MemberCost], who: &[usize]) -> Vec<MemberCost> {
    who.iter().map(|&i| w.costs[i].since(&before[i])).collect()
}

#[derive(Debug, Clone)]
pub struct Formation {
    pub n: usize,
    pub wall: Duration,
    pub cpu: Duration,
    pub cpu_precise: Duration,
    pub commits: u64,
    pub packets: u64,
    pub bytes: u64,
    pub receive_calls: u64,
    pub packets_received: u64,
    pub peak_rss_mib: f64,
    pub per_commit: PerCommit,
}

#[derive(Debug, Clone)]
pub struct Chat {
    /// Each packet in a `receive` call of its own (b′) rather than a round per call (b).
    pub live: bool,
    pub n: usize,
    pub rounds: usize,
    pub receives: u64,
    pub receives_per_s: f64,
    pub us_per_receive: f64,
    pub us_per_send: f64,
    pub bytes_per_message: f64,
    /// Ed25519 signatures checked per received packet (the sends check none).
    pub signatures_per_receive: f64,
    /// CPU of the `receive` calls alone (this thread's clock around each call) per receive.
    pub receive_cpu_us: f64,
    /// CPU time of the whole chat (sends and receives).
    pub cpu: Duration,
}

#[derive(Debug, Clone)]
pub struct Removal {
    pub n: usize,
    /// One packet per `receive` call (c′).
    pub live: bool,
    pub wall: Duration,
    pub cpu: Duration,
    pub cpu_precise: Duration,
    pub packets: u64,
    pub bytes: u64,
    pub packets_received: u64,
    pub per_commit: PerCommit,
    /// How many removals, each in a world of its own, this one is the median of.
    pub runs: usize,
    /// Its sampled members replayed each in a process of its own (`alone`).
    pub alone: Option<Alone>,
}

/// (a) The creator creates; N-1 joiners announce at t=0; done when all N agree on one epoch
/// with N members.
pub fn formation(w: &mut World) -> BenchResult<Formation> {
    let n = w.n();
    let ids = w.member_ids()?;
    let all: Vec<usize> = (0..n).collect();
    let (packets0, bytes0) = w.router.counters();
    let receive0 = w.receive;
    w.mark_heap();
    let costs0 = w.costs.clone();
    let t0 = w.now();
    let mut meter = Meter::started();
    w.router.set_phase("local");
    w.charged(0, |c| c.create_conversation(CONV.into(), settings()))?;
    for i in 1..n {
        w.charged(i, |c| c.request_to_join(CONV.into()))?;
    }
    let done = w.run_until(&mut meter, 3_600_000, true, |w| {
        // Cheap first: the creator must see everyone before the others are asked.
        Ok(w.info(0, CONV)?.members.len() == n && w.agree(CONV, &all, &ids)?)
    })?;
    let (wall, cpu, cpu_precise) = meter.finish();
    if !done {
        let creator = w.info(0, CONV)?;
        let joined = (1..n)
            .filter(|&i| w.info(i, CONV).is_ok_and(|c| c.epoch > 0))
            .count();
        return Err(format!(
            "formation of {n} did not complete: at {} ms the creator is at epoch {} with {} members; {joined} joiners have joined",
            w.now() - t0,
            creator.epoch,
            creator.members.len()
        )
        .into());
    }
    let (packets1, bytes1) = w.router.counters();
    let commits = w.info(0, CONV)?.epoch;
    let per_commit = PerCommit::of(&spent(w, &costs0, &all), commits, w.now() - t0);
    Ok(Formation {
        n,
        wall,
        cpu,
        cpu_precise,
        commits,
        packets: packets1 - packets0,
        bytes: bytes1 - bytes0,
        receive_calls: w.receive.calls - receive0.calls,
        packets_received: w.receive.packets - receive0.packets,
        peak_rss_mib: super::measure::peak_rss_mib(),
        per_commit,
    })
}

/// (b) `CHAT_ROUNDS` rounds: every member sends one `CHAT_BODY`-byte message, then every
/// member receives the others' messages of the round in one `receive` call — or, `live`
/// (b′), each of them in a `receive` call of its own.
pub fn chat(w: &mut World, live: bool) -> BenchResult<Chat> {
    let n = w.n();
    // Members that left (after a removal) neither send nor receive.
    let mut senders = Vec::with_capacity(n);
    for i in 0..n {
        if w.info(i, CONV)?.state != witan::client::ConversationState::Left {
            senders.push(i);
        }
    }
    w.live = live;
    let before: Vec<u64> = w
        .listeners
        .iter()
        .map(|l| l.messages.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    let (_, bytes0) = w.router.counters();
    let receive0 = w.receive;
    let calls0 = w.calls;
    let counters0 = witan_engine::metrics::counters();
    let mut send_time = Duration::ZERO;
    let meter = Meter::started();
    let started = Instant::now();
    w.router.set_phase("chat");
    for round in 0..CHAT_ROUNDS {
        for &i in &senders {
            let mut body = vec![0u8; CHAT_BODY];
            body[..16].copy_from_slice(&((round * n + i) as u128).to_be_bytes());
            let t = Instant::now();
            w.c(i)?.send_message(CONV.into(), body)?;
            send_time += t.elapsed();
        }
        while w.deliver_round()? > 0 {}
    }
    let wall = started.elapsed();
    let (_, cpu, _) = meter.finish();
    let signatures = witan_engine::metrics::counters()
        .since(&counters0)
        .signatures;
    w.live = false;
    let (_, bytes1) = w.router.counters();
    let receives = w.receive.packets - receive0.packets;
    let calls = w.calls.since(&calls0);
    let expected = (CHAT_ROUNDS * (senders.len() - 1)) as u64;
    for (i, l) in w.listeners.iter().enumerate() {
        if !senders.contains(&i) {
            continue;
        }
        let got = l.messages.load(std::sync::atomic::Ordering::Relaxed) - before[i];
        if got != expected {
            return Err(format!("chat: member {i} received {got} messages, not {expected}").into());
        }
    }
    let sends = (CHAT_ROUNDS * senders.len()) as f64;
    Ok(Chat {
        live,
        n,
        rounds: CHAT_ROUNDS,
        receives,
        receives_per_s: receives as f64 / wall.as_secs_f64(),
        us_per_receive: calls.wall.as_secs_f64() * 1e6 / receives as f64,
        us_per_send: send_time.as_secs_f64() * 1e6 / sends,
        bytes_per_message: (bytes1 - bytes0) as f64 / sends,
        signatures_per_receive: signatures as f64 / receives as f64,
        receive_cpu_us: calls.cpu.as_secs_f64() * 1e6 / receives as f64,
        cpu,
    })
}

/// The member a removal workload removes.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Member N-1, whatever its roles (identities are random: now and then it is the epoch's
    /// steward).
    Last,
    /// The epoch's steward (the round-0 leader): it may not commit its own removal, so it
    /// passes its turn and every member moves to round 1 with a NewRound (docs/bench.md).
    EpochSteward,
}

/// (c) Member 0 (member 1 if 0 is the target) proposes removing `target`; the others vote
/// YES (automatically, at once); done when every remaining member applied the commit. `live`: each packet in a `receive`
/// call of its own (c′), as a live socket delivers them, instead of a round's batch.
pub fn removal(w: &mut World, live: bool, target: Target) -> BenchResult<Removal> {
    w.live = live;
    let result = removal_run(w, live, target);
    w.live = false;
    result
}

fn removal_run(w: &mut World, live: bool, target: Target) -> BenchResult<Removal> {
    let n = w.n();
    let mut ids = w.member_ids()?;
    let index = match target {
        Target::Last => n - 1,
        Target::EpochSteward => {
            let steward = w.info(0, CONV)?.epoch_steward;
            steward
                .and_then(|s| ids.iter().position(|id| *id == s))
                .ok_or("the epoch's steward is unknown")?
        }
    };
    // Member 0 proposes, unless it is the one removed.
    let proposer = usize::from(index == 0);
    let target = ids.remove(index);
    let remaining: Vec<usize> = (0..n).filter(|i| *i != index).collect();
    let (packets0, bytes0) = w.router.counters();
    let receive0 = w.receive;
    w.mark_heap();
    let costs0 = w.costs.clone();
    let (t0, epoch0) = (w.now(), w.info(proposer, CONV)?.epoch);
    let mut meter = Meter::started();
    w.router.set_phase("local");
    w.charged(proposer, |c| c.propose_removal(CONV.into(), target))?;
    let done = w.run_until(&mut meter, 3_600_000, true, |w| {
        Ok(w.info(proposer, CONV)?.members.len() == n - 1 && w.agree(CONV, &remaining, &ids)?)
    })?;
    let (wall, cpu, cpu_precise) = meter.finish();
    if !done {
        return Err(format!("removal in a group of {n} did not complete").into());
    }
    let (packets1, bytes1) = w.router.counters();
    let commits = w.info(proposer, CONV)?.epoch - epoch0;
    let per_commit = PerCommit::of(&spent(w, &costs0, &remaining), commits, w.now() - t0);
    Ok(Removal {
        n,
        live,
        wall,
        cpu,
        cpu_precise,
        packets: packets1 - packets0,
        bytes: bytes1 - bytes0,
        packets_received: w.receive.packets - receive0.packets,
        per_commit,
        runs: 1,
        alone: None,
    })
}
