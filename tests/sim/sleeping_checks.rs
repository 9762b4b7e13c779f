//! One run of the sleeping-phones family (`sleeping.rs`): formation, the three measured
//! operations, the settling phase, and the checks — every member still in the group in one
//! epoch with one member set and one MLS epoch authenticator (no fork), no proposal resolved
//! both ways, nobody told to re-join, and the removed member told `Left { Removed }`.

use std::collections::BTreeSet;

use witan::client::{ConversationState, LeaveReason, WitanEvent};

use super::sleeping::{CONV, START_MS, SleepConfig, SleepSim};

/// What one seed measured (ms of virtual time; `None`: did not complete within the deadline).
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub seed: u64,
    /// `request_to_join` → `Joined`, for both devices that asked.
    pub joins: Vec<Option<u64>>,
    /// `propose_removal` → the commit applied by the first member.
    pub removal: Option<u64>,
    /// The epoch steward falls silent → a commit takes its slot away.
    pub reelection: Option<u64>,
    /// Safety invariants that did not hold.
    pub violations: Vec<String>,
    /// The run itself failed (a client call returned an error).
    pub error: Option<String>,
    /// Every event each device heard, in time order (only with `SleepConfig::trace`).
    pub trace: Vec<String>,
}

impl Outcome {
    /// Whether some operation never completed.
    pub fn incomplete(&self) -> bool {
        self.error.is_some()
            || self.removal.is_none()
            || self.reelection.is_none()
            || self.joins.iter().any(Option::is_none)
    }
}

/// Runs seed `seed` of the family.
pub fn check(seed: u64, cfg: &SleepConfig) -> Outcome {
    let mut out = Outcome {
        seed,
        ..Outcome::default()
    };
    if let Err(e) = run(seed, cfg, &mut out) {
        out.error = Some(e);
    }
    out
}

fn heard_at(sim: &SleepSim, i: usize, from: u64, f: impl Fn(&WitanEvent) -> bool) -> Option<u64> {
    let events = sim.phones[i].heard.events.lock().ok()?;
    events
        .iter()
        .find(|(at, e)| *at >= from && f(e))
        .map(|(at, _)| *at)
}

fn first_heard(sim: &SleepSim, from: u64, f: impl Fn(&WitanEvent) -> bool + Copy) -> Option<u64> {
    (0..sim.phones.len())
        .filter_map(|i| heard_at(sim, i, from, f))
        .min()
}

fn joined(e: &WitanEvent) -> bool {
    matches!(e, WitanEvent::Joined { .. })
}

fn run(seed: u64, cfg: &SleepConfig, out: &mut Outcome) -> Result<(), String> {
    let n = cfg.members;
    // The members, then two devices that ask to join.
    let mut sim = SleepSim::new(seed, cfg.clone(), n + 2)?;
    let ids = form_then_sleep(&mut sim, n)?;

    // 1. A new device asks to join.
    out.joins.push(join(&mut sim, n)?);
    let members: Vec<usize> = (0..=n).collect();

    // 2. A member opens the app and proposes to remove another.
    let (target, removal) = remove_one(&mut sim, cfg, &ids, &members)?;
    out.removal = removal;

    // 3. The epoch steward falls silent for good while a second device asks to join.
    let pause = sim.rng.range(10_000, 120_000);
    sim.run_until(sim.now() + pause, |_| Ok(false))?;
    let viewer = members
        .iter()
        .copied()
        .filter(|m| *m != target)
        .max_by_key(|m| sim.peek(*m).ok().flatten().map_or(0, |i| i.epoch))
        .unwrap_or(0);
    let steward = sim
        .peek(viewer)?
        .and_then(|i| i.epoch_steward)
        .and_then(|s| ids.iter().position(|id| *id == s));
    let t0 = sim.now();
    let silent = steward.unwrap_or(usize::MAX);
    if let Some(s) = steward {
        sim.phones[s].off = true;
        sim.phones[s].client = None;
        sim.phones[s].mailbox.clear();
    }
    let lost_slot = |e: &WitanEvent| match e {
        WitanEvent::StewardsChanged { stewards, .. } => {
            silent < ids.len() && !stewards.contains(&ids[silent])
        }
        _ => false,
    };
    out.joins.push(join(&mut sim, n + 1)?);
    let done = sim.run_until(t0 + cfg.deadline_ms, |s| {
        Ok(first_heard(s, t0, lost_slot).is_some())
    })?;
    out.reelection = done
        .then(|| first_heard(&sim, t0, lost_slot))
        .flatten()
        .map(|at| at - t0);

    settle(&mut sim, &ids, target, silent, out)
}

/// Member 0 creates the conversation and members 1..n join with their apps open; then every
/// phone closes its app and the members' sessions start. Returns the member ids of all the
/// phones (the two devices that join later included).
fn form_then_sleep(sim: &mut SleepSim, n: usize) -> Result<Vec<String>, String> {
    let ids: Vec<String> = (0..n + 2)
        .map(|i| {
            sim.phones[i].pinned = true;
            sim.app(i).map(|c| c.member_id())
        })
        .collect::<Result<_, _>>()?;
    sim.app(0)?
        .create_conversation(CONV.into(), SleepSim::settings())
        .map_err(|e| e.to_string())?;
    sim.after_call(0)?;
    for i in 1..n {
        sim.app(i)?
            .request_to_join(CONV.into())
            .map_err(|e| e.to_string())?;
        sim.after_call(i)?;
    }
    let start = sim.now();
    let formed = sim.run_until(start + 600_000, |s| {
        Ok((1..n).all(|i| heard_at(s, i, 0, joined).is_some()))
    })?;
    if !formed {
        return Err("the group did not form".into());
    }
    for i in 0..n + 2 {
        sim.phones[i].pinned = false;
        sim.phones[i].app_until = sim.now();
        sim.phones[i].client = None;
    }
    for i in 0..n {
        sim.start_sessions(i);
    }
    let pause = sim.rng.range(0, 60_000);
    sim.run_until(sim.now() + pause, |_| Ok(false))?;
    Ok(ids)
}

/// After a pause, a random member opens its app and proposes to remove another; returns the
/// target and how long until a phone heard the removal (`None`: not before the deadline).
fn remove_one(
    sim: &mut SleepSim,
    cfg: &SleepConfig,
    ids: &[String],
    members: &[usize],
) -> Result<(usize, Option<u64>), String> {
    let pause = sim.rng.range(10_000, 120_000);
    sim.run_until(sim.now() + pause, |_| Ok(false))?;
    let proposer = members[sim.rng.below(members.len() as u64) as usize];
    let others: Vec<usize> = members.iter().copied().filter(|m| *m != proposer).collect();
    let target = others[sim.rng.below(others.len() as u64) as usize];
    let t0 = sim.now();
    sim.phones[proposer].app_until = t0 + cfg.app_session_ms;
    sim.app(proposer)?
        .propose_removal(CONV.into(), ids[target].clone())
        .map_err(|e| format!("propose_removal: {e}"))?;
    sim.after_call(proposer)?;
    let removed = |e: &WitanEvent| matches!(e, WitanEvent::MembershipChanged { removed, .. } if removed.contains(&ids[target]));
    let done = sim.run_until(t0 + cfg.deadline_ms, |s| {
        Ok(first_heard(s, t0, removed).is_some())
    })?;
    let took = done
        .then(|| first_heard(sim, t0, removed))
        .flatten()
        .map(|at| at - t0);
    Ok((target, took))
}

/// Device `d` asks to join with its app open; returns how long until `Joined`.
fn join(sim: &mut SleepSim, d: usize) -> Result<Option<u64>, String> {
    sim.phones[d].pinned = true;
    let t0 = sim.now();
    sim.app(d)?
        .request_to_join(CONV.into())
        .map_err(|e| format!("request_to_join: {e}"))?;
    sim.after_call(d)?;
    let deadline = t0 + sim.cfg.deadline_ms;
    let done = sim.run_until(deadline, |s| Ok(heard_at(s, d, t0, joined).is_some()))?;
    sim.phones[d].pinned = false;
    sim.phones[d].app_until = sim.now() + sim.cfg.app_session_ms;
    sim.start_sessions(d);
    Ok(done
        .then(|| heard_at(sim, d, t0, joined))
        .flatten()
        .map(|at| at - t0))
}

/// Every phone but the silent one opens the app until the group agrees; then the checks.
fn settle(
    sim: &mut SleepSim,
    ids: &[String],
    removed: usize,
    silent: usize,
    out: &mut Outcome,
) -> Result<(), String> {
    let awake: Vec<usize> = (0..sim.phones.len()).filter(|i| *i != silent).collect();
    for &i in &awake {
        sim.phones[i].pinned = true;
        sim.app(i)?;
    }
    let end = sim.now() + 600_000;
    sim.run_until(end, |s| Ok(agreed(s, &awake)?.is_ok()))?;
    if let Err(why) = agreed(sim, &awake)? {
        out.violations.push(why);
    }
    let mut decided: std::collections::BTreeMap<u64, bool> = Default::default();
    for i in 0..sim.phones.len() {
        let events = sim.phones[i]
            .heard
            .events
            .lock()
            .map_err(|e| e.to_string())?;
        for (_, e) in events.iter() {
            match e {
                WitanEvent::ProposalResolved {
                    proposal_id,
                    approved,
                    ..
                } if *decided.entry(*proposal_id).or_insert(*approved) != *approved => {
                    out.violations
                        .push(format!("proposal {proposal_id} resolved both ways"));
                }
                WitanEvent::RejoinRequired { .. } => {
                    out.violations.push(format!("p{i} was told to re-join"));
                }
                _ => {}
            }
        }
    }
    let left = heard_at(sim, removed, 0, |e| {
        matches!(
            e,
            WitanEvent::Left {
                reason: LeaveReason::Removed,
                ..
            }
        )
    });
    if left.is_none() && removed != silent {
        out.violations.push(format!(
            "the removed member p{removed} never learned it left"
        ));
    }
    if sim.cfg.trace {
        out.trace = trace(sim, ids);
    }
    Ok(())
}

/// Whether the phones in `who` that are still in the group agree (one epoch, one member
/// set, one epoch authenticator).
fn agreed(sim: &mut SleepSim, who: &[usize]) -> Result<Result<(), String>, String> {
    let mut views = Vec::new();
    for &i in who {
        let Some(info) = sim.peek(i)? else { continue };
        if info.state == ConversationState::Left || info.state == ConversationState::PendingJoin {
            continue;
        }
        let Some((c, _)) = sim.phones[i].client.clone() else {
            continue;
        };
        let auth = c
            .epoch_authenticator(CONV.into())
            .map_err(|e| e.to_string())?;
        let members: BTreeSet<String> = info.members.iter().map(|m| m.member_id.clone()).collect();
        views.push((i, info.epoch, members, auth));
    }
    let Some((first, epoch, members, auth)) = views.first().cloned() else {
        return Ok(Err("nobody is in the group".into()));
    };
    for (i, e, m, a) in &views {
        if *e != epoch || *m != members {
            return Ok(Err(format!(
                "p{i} (epoch {e}, {} members) and p{first} (epoch {epoch}, {} members) differ",
                m.len(),
                members.len()
            )));
        }
        if *a != auth {
            return Ok(Err(format!("p{i} and p{first} forked in epoch {e}")));
        }
    }
    Ok(Ok(()))
}

/// Every event each device heard, as `time device event` lines in time order.
fn trace(sim: &SleepSim, ids: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, phone) in sim.phones.iter().enumerate() {
        let Ok(events) = phone.heard.events.lock() else {
            continue;
        };
        for (at, e) in events.iter() {
            lines.push((*at, i, format!("{e:?}")));
        }
    }
    lines.sort_by_key(|(at, i, _)| (*at, *i));
    let short = |s: String| {
        ids.iter()
            .enumerate()
            .fold(s, |s, (i, id)| s.replace(id.as_str(), &format!("p{i}")))
    };
    lines
        .into_iter()
        .map(|(at, i, e)| {
            format!(
                "{:>9.1} p{i} {}",
                at.saturating_sub(START_MS) as f64 / 1000.0,
                short(e)
            )
        })
        .collect()
}
