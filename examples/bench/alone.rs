//! (c) one member alone: what a removal costs a member in a process of its own, as on a
//! phone, beside what it costs in the bench's world, where one process hosts every member.
//!
//! Why both: at n = 1,000 the world's process holds the heaps and database files of a
//! thousand members (gigabytes), and on a VM that backs memory lazily the first touch of
//! each fresh page is dear; a member's calls pay for pages that a phone, holding one member,
//! does not need (docs/bench.md, "Where the n = 1,000 figures move").
//!
//! How: before the batched removal the databases of a sample of members are copied (between
//! calls no step is open, so the file and its log hold a committed state) and every call the
//! world then makes to them is recorded — its protocol time and its packets. After the
//! removal each of them is replayed in a fresh process (`__alone`): it opens its copy and
//! makes the same calls at the same times; the CPU of those calls (user and system, of the
//! calling thread) is its cost. Its group is not in memory when the first call comes, as
//! after a push wake-up, so that call also loads it. A replay must end in the epoch and
//! with the members the world's member ended with, or the run fails.
//!
//! The same process then replays fresh copies the same way, three times (the median is
//! kept): that is the member in a *warm* process, as in an app already running when the
//! commit comes (and as in the world), whose code, allocator and library state the first
//! replay brought in. A fresh process pays for those once whatever the group's size, which
//! flatters the growth from n = 128; the warm replay does not.
//!
//! When: once every size has run ([`replay_side_by_side`]), the members of all the removals
//! taking turns — a member of n = 128, one of n = 1,000, the next of n = 128… A replay at
//! n = 128 lasts about 15 ms, and the host's neighbours move the speed of these VMs by a
//! fifth or more over minutes: replayed right after their own removal, the two sizes were
//! measured minutes apart (the same copies replayed by hand a few minutes after a run took
//! 19–21 ms where the run had measured 12.7), and the growth between them moved with it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use witan::client::{ClientConfig, ConversationInfo, InboundPacket, WitanClient};
use witan_testing::VirtualClock;

use super::measure::{thread_cpu, thread_usage};
use super::scale_report::SCALE_OVER_128;
use super::wakeup::NullHost;
use super::workloads::{CONV, Removal, Target, removal};
use super::world::{BenchResult, World};

/// How many members of a removal are replayed alone.
pub const SAMPLE: usize = 9;

/// How many times each is replayed in its warm process (the median is taken: a replay at
/// n = 128 lasts about 15 ms, which a neighbour on the host moves by a fifth).
const WARM_REPLAYS: usize = 3;

/// One call the world made to a recorded member: `packets` for `receive`, `None` for `poll`.
pub struct Call {
    pub now_ms: u64,
    pub packets: Option<Vec<InboundPacket>>,
}

/// The world's calls to the recorded members (see the module doc).
pub struct Recorder {
    calls: BTreeMap<usize, Vec<Call>>,
}

impl Recorder {
    pub fn new(members: &[usize]) -> Recorder {
        Recorder {
            calls: members.iter().map(|i| (*i, Vec::new())).collect(),
        }
    }

    /// Notes a `receive` (`Some`) or a `poll` (`None`) made to member `i` at `now_ms`.
    pub fn note(&mut self, i: usize, now_ms: u64, packets: Option<&[InboundPacket]>) {
        if let Some(calls) = self.calls.get_mut(&i) {
            calls.push(Call {
                now_ms,
                packets: packets.map(<[InboundPacket]>::to_vec),
            });
        }
    }
}

/// The CPU of one replay's calls.
#[derive(Debug, Clone, Copy)]
struct Cost {
    cpu: Duration,
    user: Duration,
    system: Duration,
}

/// The costs of the sampled members' replays of one kind, each part sorted on its own (so
/// the medians of the parts need not add up).
#[derive(Debug, Clone, Default)]
pub struct Costs {
    cpu: Vec<Duration>,
    user: Vec<Duration>,
    system: Vec<Duration>,
}

impl Costs {
    fn push(&mut self, c: Cost) {
        self.cpu.push(c.cpu);
        self.user.push(c.user);
        self.system.push(c.system);
    }

    fn sort(&mut self) {
        for v in [&mut self.cpu, &mut self.user, &mut self.system] {
            v.sort();
        }
    }

    fn max(&self) -> Duration {
        self.cpu.last().copied().unwrap_or_default()
    }
}

/// A sampled member's copy and trace, waiting to be replayed: where the world's member
/// ended (the replay must end there too) and what its calls cost in the world.
#[derive(Debug, Clone)]
struct Pending {
    member: usize,
    copy: PathBuf,
    trace: PathBuf,
    epoch: u64,
    members: u64,
    world_cpu: Duration,
}

/// What the sampled members cost, alone and in the world, for one removal.
#[derive(Debug, Clone, Default)]
pub struct Alone {
    /// The replays still to be made ([`replay_side_by_side`]).
    pending: Vec<Pending>,
    /// Each replayed member's calls in its own fresh process.
    fresh: Costs,
    /// The same, replayed again in that process, now warm.
    warm: Costs,
    /// CPU of each one's first call in the fresh process, which also loaded its group, sorted.
    first_call: Vec<Duration>,
    /// CPU of the same members' calls in the world, sorted.
    world_cpu: Vec<Duration>,
}

fn median(v: &[Duration]) -> Duration {
    v.get(v.len() / 2).copied().unwrap_or_default()
}

impl Alone {
    /// Sorts every list of costs, for the medians.
    fn sort(&mut self) {
        self.fresh.sort();
        self.warm.sort();
        self.first_call.sort();
        self.world_cpu.sort();
    }

    fn fresh_median(&self) -> Duration {
        median(&self.fresh.cpu)
    }

    fn warm_median(&self) -> Duration {
        median(&self.warm.cpu)
    }

    pub fn json(&self) -> Value {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        json!({
            "members": self.fresh.cpu.len(),
            "cpu_ms_median": ms(self.fresh_median()),
            "cpu_ms_max": ms(self.fresh.max()),
            "user_cpu_ms_median": ms(median(&self.fresh.user)),
            "system_cpu_ms_median": ms(median(&self.fresh.system)),
            "first_call_cpu_ms_median": ms(median(&self.first_call)),
            "warm_cpu_ms_median": ms(self.warm_median()),
            "warm_cpu_ms_max": ms(self.warm.max()),
            "warm_user_cpu_ms_median": ms(median(&self.warm.user)),
            "warm_system_cpu_ms_median": ms(median(&self.warm.system)),
            "world_cpu_ms_median": ms(median(&self.world_cpu)),
        })
    }
}

/// The table of the removals' members replayed alone, beside the same members in the world,
/// and the growth of the median from n = 128 to the largest n.
pub fn report(s: &mut String, removals: &[Removal]) {
    let rows: Vec<(usize, &Alone)> = removals
        .iter()
        .filter_map(|r| r.alone.as_ref().map(|a| (r.n, a)))
        .filter(|(_, a)| !a.fresh.cpu.is_empty())
        .collect();
    if rows.is_empty() {
        return;
    }
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
    let _ = writeln!(
        s,
        "### (c) removal: a member alone in its process (replayed from the world's calls)\n"
    );
    let _ = writeln!(
        s,
        "| n | members replayed | fresh process: CPU ms median | of it user / system median | of it the first call (loads the group) median | warm process: CPU ms median | of it user / system median | warm CPU ms max | the same members in the world, CPU ms median |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for (n, a) in &rows {
        let _ = writeln!(
            s,
            "| {n} | {} | {} | {} / {} | {} | {} | {} / {} | {} | {} |",
            a.fresh.cpu.len(),
            ms(a.fresh_median()),
            ms(median(&a.fresh.user)),
            ms(median(&a.fresh.system)),
            ms(median(&a.first_call)),
            ms(a.warm_median()),
            ms(median(&a.warm.user)),
            ms(median(&a.warm.system)),
            ms(a.warm.max()),
            ms(median(&a.world_cpu)),
        );
    }
    let at = |n: usize| rows.iter().find(|r| r.0 == n).map(|r| r.1);
    if let (Some(base), Some(&(largest, top))) = (at(128), rows.iter().max_by_key(|r| r.0))
        && largest > 128
    {
        let ratio = |f: fn(&Alone) -> Duration| f(top).as_secs_f64() / f(base).as_secs_f64();
        let (fresh, warm) = (ratio(Alone::fresh_median), ratio(Alone::warm_median));
        let _ = writeln!(
            s,
            "\nremoval, a member alone in a warm process: median CPU at n = {largest} is ×{warm:.2} its value at n = 128 (target ≤ ×{SCALE_OVER_128}) {} — in a fresh process ×{fresh:.2}",
            super::report::verdict(warm <= SCALE_OVER_128),
        );
    }
    s.push('\n');
}

/// The members replayed: spread over the group, never the proposer (member 0, whose
/// proposal is a call of another kind), the last member (the removal's usual target) nor a
/// steward (a steward's commit is random; one made again in a replay is another commit).
fn sample(w: &World) -> BenchResult<Vec<usize>> {
    let n = w.n();
    let span = n.saturating_sub(2).max(1);
    let mut picked: Vec<usize> = (0..SAMPLE).map(|k| 1 + k * span / SAMPLE).collect();
    picked.retain(|i| *i + 1 < n);
    picked.dedup();
    let mut members = Vec::new();
    for i in picked {
        if !steward(&w.info(i, CONV)?, &w.c(i)?.member_id()) {
            members.push(i);
        }
    }
    Ok(members)
}

/// Whether member `id` is a steward in `info`, its own view of the conversation.
fn steward(info: &ConversationInfo, id: &str) -> bool {
    info.members
        .iter()
        .any(|m| m.member_id == id && m.is_steward)
        || info.epoch_steward.as_deref() == Some(id)
}

/// One batched removal in `w` (`workloads::removal`), with its sample recorded for replaying
/// alone ([`replay_side_by_side`]). The copies and traces go to `scratch`, outside the
/// world's directory (each can be replayed again by hand: `bench __alone COPY TRACE`
/// replays a fresh copy of `COPY`).
pub fn removal_with_replays(w: &mut World, target: Target, scratch: &Path) -> BenchResult<Removal> {
    let members = sample(w)?;
    std::fs::create_dir_all(scratch)?;
    let mut copies = Vec::new();
    for &i in &members {
        let db = PathBuf::from(w.path(i));
        let copy = scratch.join(format!("member-{i}.db"));
        copy_with_log(&db, &copy)?;
        copies.push((i, copy));
    }
    let costs0 = w.costs.clone();
    w.recorder = Some(Recorder::new(&members));
    let result = removal(w, false, target);
    let recorder = w.recorder.take();
    let mut result = result?;
    let recorder = recorder.ok_or("the removal's recorder went missing")?;
    let mut alone = Alone::default();
    for (i, copy) in copies {
        let expected = w.info(i, CONV)?;
        let id = w.c(i)?.member_id();
        if !expected.members.iter().any(|m| m.member_id == id) || steward(&expected, &id) {
            continue; // removed, or made a steward: nothing to replay faithfully
        }
        let calls = recorder
            .calls
            .get(&i)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let trace = scratch.join(format!("member-{i}.trace"));
        write_trace(&trace, calls)?;
        alone.pending.push(Pending {
            member: i,
            copy,
            trace,
            epoch: expected.epoch,
            members: expected.members.len() as u64,
            world_cpu: w.costs[i].since(&costs0[i]).cpu,
        });
    }
    result.alone = Some(alone);
    Ok(result)
}

/// Replays the recorded members of every removal (see the module doc), taking turns across
/// the removals so that every size is measured over the same minutes.
pub fn replay_side_by_side(removals: &mut [Removal]) -> BenchResult<()> {
    let mut queues: Vec<(usize, Vec<Pending>)> = removals
        .iter_mut()
        .enumerate()
        .filter_map(|(k, r)| Some((k, std::mem::take(&mut r.alone.as_mut()?.pending))))
        .collect();
    let turns = queues.iter().map(|(_, q)| q.len()).max().unwrap_or(0);
    for turn in 0..turns {
        for (k, queue) in &mut queues {
            let Some(p) = queue.get(turn) else { continue };
            let n = removals[*k].n;
            eprintln!("n={n}: member {} replayed alone", p.member);
            let report = spawn(&p.copy, &p.trace)?;
            if (report.epoch, report.members) != (p.epoch, p.members) {
                return Err(format!(
                    "member {} of n = {n} replayed alone ended in epoch {} with {} members, in the world in epoch {} with {}",
                    p.member, report.epoch, report.members, p.epoch, p.members
                )
                .into());
            }
            let Some(alone) = removals[*k].alone.as_mut() else {
                continue;
            };
            alone.fresh.push(report.fresh);
            alone.warm.push(report.warm);
            alone.first_call.push(report.first_call);
            alone.world_cpu.push(p.world_cpu);
        }
    }
    for a in removals.iter_mut().filter_map(|r| r.alone.as_mut()) {
        a.sort();
    }
    Ok(())
}

/// Copies a database and its write-ahead log (the log holds what was not checkpointed).
fn copy_with_log(db: &Path, to: &Path) -> BenchResult<()> {
    std::fs::copy(db, to)?;
    let log = |p: &Path| PathBuf::from(format!("{}-wal", p.display()));
    if log(db).exists() {
        std::fs::copy(log(db), log(to))?;
    }
    Ok(())
}

/// Trace file: per call its time (u64), then `u32::MAX` for a poll or the packet count, each
/// packet as topic and payload, each with a u32 length; big-endian.
fn write_trace(path: &Path, calls: &[Call]) -> BenchResult<()> {
    let mut out = Vec::new();
    let put = |out: &mut Vec<u8>, bytes: &[u8]| -> BenchResult<()> {
        out.extend_from_slice(&u32::try_from(bytes.len())?.to_be_bytes());
        out.extend_from_slice(bytes);
        Ok(())
    };
    for call in calls {
        out.extend_from_slice(&call.now_ms.to_be_bytes());
        match &call.packets {
            None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
            Some(packets) => {
                out.extend_from_slice(&u32::try_from(packets.len())?.to_be_bytes());
                for p in packets {
                    put(&mut out, p.topic.as_bytes())?;
                    put(&mut out, &p.payload)?;
                }
            }
        }
    }
    std::fs::write(path, out)?;
    Ok(())
}

fn read_trace(path: &Path) -> BenchResult<Vec<Call>> {
    let bytes = std::fs::read(path)?;
    let mut rest = bytes.as_slice();
    let mut take = |len: usize| -> BenchResult<&[u8]> {
        if rest.len() < len {
            return Err("truncated trace".into());
        }
        let (head, tail) = rest.split_at(len);
        rest = tail;
        Ok(head)
    };
    let mut calls = Vec::new();
    loop {
        let Ok(now) = take(8) else { break };
        let now_ms = u64::from_be_bytes(now.try_into()?);
        let count = u32::from_be_bytes(take(4)?.try_into()?);
        let packets = if count == u32::MAX {
            None
        } else {
            let mut packets = Vec::new();
            for _ in 0..count {
                let len = u32::from_be_bytes(take(4)?.try_into()?) as usize;
                let topic = String::from_utf8(take(len)?.to_vec())?;
                let len = u32::from_be_bytes(take(4)?.try_into()?) as usize;
                let payload = take(len)?.to_vec();
                packets.push(InboundPacket { topic, payload });
            }
            Some(packets)
        };
        calls.push(Call { now_ms, packets });
    }
    Ok(calls)
}

/// What a child printed: its fresh and (median) warm replay, and where they ended.
struct Report {
    fresh: Cost,
    first_call: Duration,
    warm: Cost,
    epoch: u64,
    members: u64,
}

fn spawn(db: &Path, trace: &Path) -> BenchResult<Report> {
    let output = Command::new(std::env::current_exe()?)
        .arg("__alone")
        .arg(db)
        .arg(trace)
        .output()?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(format!("a member replayed alone failed: {err}").into());
    }
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim())?;
    let ms = |k: &str| -> BenchResult<Duration> {
        Ok(Duration::from_secs_f64(
            v[k].as_f64().ok_or(k.to_string())? / 1e3,
        ))
    };
    Ok(Report {
        fresh: Cost {
            cpu: ms("cpu_ms")?,
            user: ms("user_ms")?,
            system: ms("system_ms")?,
        },
        first_call: ms("first_call_ms")?,
        warm: Cost {
            cpu: ms("warm_cpu_ms")?,
            user: ms("warm_user_ms")?,
            system: ms("warm_system_ms")?,
        },
        epoch: v["epoch"].as_u64().ok_or("epoch")?,
        members: v["members"].as_u64().ok_or("members")?,
    })
}

/// The fresh process: `__alone DB TRACE` (see the module doc); prints one JSON line.
pub fn child(args: &[String]) -> BenchResult<()> {
    let [db, trace] = args else {
        return Err("usage: __alone DB TRACE".into());
    };
    let calls = read_trace(Path::new(trace))?;
    let (fresh, first_call, info) = replay(Path::new(db), "replayed", &calls)?;
    let mut warm = Vec::new();
    for _ in 0..WARM_REPLAYS {
        let (cost, _, again) = replay(Path::new(db), "warm", &calls)?;
        if (again.epoch, again.members.len()) != (info.epoch, info.members.len()) {
            return Err("a warm replay ended elsewhere than the first".into());
        }
        warm.push(cost);
    }
    warm.sort_by_key(|c| c.cpu);
    let warm = warm.swap_remove(WARM_REPLAYS / 2);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let line = json!({
        "cpu_ms": ms(fresh.cpu),
        "user_ms": ms(fresh.user),
        "system_ms": ms(fresh.system),
        "first_call_ms": ms(first_call),
        "warm_cpu_ms": ms(warm.cpu),
        "warm_user_ms": ms(warm.user),
        "warm_system_ms": ms(warm.system),
        "epoch": info.epoch,
        "members": info.members.len(),
    });
    println!("{line}");
    Ok(())
}

/// Replays `calls` on a fresh copy of `db` (`DB.ending`; the copy stays as the world left
/// it, so that the replay can be made again): their CPU, that of the first call, and the
/// conversation it ends with.
fn replay(
    db: &Path,
    ending: &str,
    calls: &[Call],
) -> BenchResult<(Cost, Duration, ConversationInfo)> {
    let copy = format!("{}.{ending}", db.display());
    for log in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{copy}{log}"));
    }
    copy_with_log(db, Path::new(&copy))?;
    let clock = Arc::new(VirtualClock::new(calls.first().map_or(0, |c| c.now_ms)));
    let host = Arc::new(NullHost::default());
    let config = ClientConfig {
        database_path: copy,
        identity_secret: None,
        database_key: None,
        role: None,
    };
    let client = WitanClient::open_with_clock(config, host.clone(), host, clock.clone())?;
    let (cpu0, usage0) = (thread_cpu(), thread_usage());
    // The first call also loads the group (see the module doc): its share is reported.
    let mut first = None;
    for call in calls {
        clock.set(call.now_ms);
        match &call.packets {
            Some(packets) => drop(client.receive(packets.clone())?),
            None => drop(client.poll()?),
        }
        first.get_or_insert_with(|| thread_cpu() - cpu0);
    }
    let (cpu, usage) = (thread_cpu() - cpu0, thread_usage());
    let system = usage.system.saturating_sub(usage0.system).min(cpu);
    let info = client.conversation(CONV.into())?.ok_or("no conversation")?;
    let cost = Cost {
        cpu,
        user: cpu - system,
        system,
    };
    Ok((cost, first.unwrap_or(cpu), info))
}
