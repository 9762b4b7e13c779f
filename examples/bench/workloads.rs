//! Workloads (a)–(c) on one world of N clients: formation by join requests and votes, chat
//! rounds, and the removal of a member by vote. They run in this order on the same world
//! (chat and removal need a formed group; formation is then not reported unless asked for).

use std::time::{Duration, Instant};

use witan::client::{ConversationSettings, default_conversation_settings};

use super::measure::Meter;
use super::world::{BenchResult, World};

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
}

#[derive(Debug, Clone)]
pub struct Chat {
    pub n: usize,
    pub rounds: usize,
    pub receives: u64,
    pub receives_per_s: f64,
    pub us_per_receive: f64,
    pub us_per_send: f64,
    pub bytes_per_message: f64,
    /// CPU time of the whole chat (sends and receives).
    pub cpu: Duration,
}

#[derive(Debug, Clone)]
pub struct Removal {
    pub n: usize,
    pub wall: Duration,
    pub cpu: Duration,
    pub cpu_precise: Duration,
    pub packets: u64,
    pub bytes: u64,
    pub packets_received: u64,
}

/// (a) The creator creates; N-1 joiners announce at t=0; done when all N agree on one epoch
/// with N members.
pub fn formation(w: &mut World) -> BenchResult<Formation> {
    let n = w.n();
    let ids = w.member_ids()?;
    let all: Vec<usize> = (0..n).collect();
    let (packets0, bytes0) = w.router.counters();
    let receive0 = w.receive;
    let mut meter = Meter::started();
    w.router.set_phase("local");
    w.c(0)?.create_conversation(CONV.into(), settings())?;
    for i in 1..n {
        w.c(i)?.request_to_join(CONV.into())?;
    }
    let done = w.run_until(&mut meter, 3_600_000, true, |w| {
        // Cheap first: the creator must see everyone before the others are asked.
        Ok(w.info(0, CONV)?.members.len() == n && w.agree(CONV, &all, &ids)?)
    })?;
    let (wall, cpu, cpu_precise) = meter.finish();
    if !done {
        return Err(format!("formation of {n} did not complete").into());
    }
    let (packets1, bytes1) = w.router.counters();
    Ok(Formation {
        n,
        wall,
        cpu,
        cpu_precise,
        commits: w.info(0, CONV)?.epoch,
        packets: packets1 - packets0,
        bytes: bytes1 - bytes0,
        receive_calls: w.receive.calls - receive0.calls,
        packets_received: w.receive.packets - receive0.packets,
        peak_rss_mib: super::measure::peak_rss_mib(),
    })
}

/// (b) `CHAT_ROUNDS` rounds: every member sends one `CHAT_BODY`-byte message, then every
/// member receives the others' messages of the round in one `receive` call.
pub fn chat(w: &mut World) -> BenchResult<Chat> {
    let n = w.n();
    let before: Vec<u64> = w
        .listeners
        .iter()
        .map(|l| l.messages.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    let (_, bytes0) = w.router.counters();
    let receive0 = w.receive;
    let mut send_time = Duration::ZERO;
    let meter = Meter::started();
    let started = Instant::now();
    w.router.set_phase("chat");
    for round in 0..CHAT_ROUNDS {
        for i in 0..n {
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
    let (_, bytes1) = w.router.counters();
    let receives = w.receive.packets - receive0.packets;
    let receive_time = w.receive.time - receive0.time;
    let expected = (CHAT_ROUNDS * (n - 1)) as u64;
    for (i, l) in w.listeners.iter().enumerate() {
        let got = l.messages.load(std::sync::atomic::Ordering::Relaxed) - before[i];
        if got != expected {
            return Err(format!("chat: member {i} received {got} messages, not {expected}").into());
        }
    }
    let sends = (CHAT_ROUNDS * n) as f64;
    Ok(Chat {
        n,
        rounds: CHAT_ROUNDS,
        receives,
        receives_per_s: receives as f64 / wall.as_secs_f64(),
        us_per_receive: receive_time.as_secs_f64() * 1e6 / receives as f64,
        us_per_send: send_time.as_secs_f64() * 1e6 / sends,
        bytes_per_message: (bytes1 - bytes0) as f64 / sends,
        cpu,
    })
}

/// (c) Member 0 proposes removing member N-1; the others vote YES (automatically, at once);
/// done when every remaining member applied the commit.
pub fn removal(w: &mut World) -> BenchResult<Removal> {
    let n = w.n();
    let mut ids = w.member_ids()?;
    let target = ids.pop().ok_or("removal needs members")?;
    let remaining: Vec<usize> = (0..n - 1).collect();
    let (packets0, bytes0) = w.router.counters();
    let receive0 = w.receive;
    let mut meter = Meter::started();
    w.router.set_phase("local");
    w.c(0)?.propose_removal(CONV.into(), target)?;
    let done = w.run_until(&mut meter, 3_600_000, true, |w| {
        Ok(w.info(0, CONV)?.members.len() == n - 1 && w.agree(CONV, &remaining, &ids)?)
    })?;
    let (wall, cpu, cpu_precise) = meter.finish();
    if !done {
        return Err(format!("removal in a group of {n} did not complete").into());
    }
    let (packets1, bytes1) = w.router.counters();
    Ok(Removal {
        n,
        wall,
        cpu,
        cpu_precise,
        packets: packets1 - packets0,
        bytes: bytes1 - bytes0,
        packets_received: w.receive.packets - receive0.packets,
    })
}
