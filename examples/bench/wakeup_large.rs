//! (d′) The push wake-up of a large group: a fresh process in the notification-extension role
//! opens one member's (encrypted) database of a 1,000-member conversation and calls
//! `handle_wakeup` with a backlog holding the certified commit of a removal plus 49 chats.
//!
//! Building it: the 1,000 members form the conversation (999 simultaneous join requests, as
//! in workload (a)); member 1 (the sleeper) is then closed while the others chat 24
//! messages, remove the last member by vote and chat 25 more. The backlog is everything the
//! group sent the sleeper meanwhile, in arrival order (the chats and the removal's
//! governance: proposal, votes, round messages, certified commit). The sleeper's database is
//! encrypted at rest, as an iOS extension ships it, before the wake-ups.
//!
//! The wake-up is the fresh process of row (d) (`wakeup::child`): wall time of open +
//! `handle_wakeup`, its CPU (user + system: on a shared machine wall time waits for the
//! cores) and its peak RSS (`VmHWM`) — the woken member alone, not the thousand
//! clients that built its database. Median wall of three runs on fresh copies, largest RSS.

use std::path::Path;
use std::time::Instant;

use super::measure::Meter;
use super::wakeup::{BACKLOG_CHATS, SLEEPER, Wakeup, chat, checkpoint, encrypt, write_backlog};
use super::workloads::{CONV, formation};
use super::world::{BenchResult, World};

pub const MEMBERS: usize = 1_000;
pub const MODE: &str = "extension, encrypted";

/// Builds the sleeper's database and backlog under `dir` and runs the fresh processes.
pub fn run(dir: &Path) -> BenchResult<Wakeup> {
    let started = Instant::now();
    let world_dir = dir.join("world");
    std::fs::create_dir_all(&world_dir)?;
    let mut w = World::new(MEMBERS, &world_dir)?;
    eprintln!("wake-up (d′): formation of {MEMBERS}");
    formation(&mut w)?;
    w.settle(120_000)?;
    let ids = w.member_ids()?;
    w.close(SLEEPER);
    let before = BACKLOG_CHATS / 2;
    chat(&mut w, MEMBERS, before, 0)?;
    eprintln!("wake-up (d′): removal");
    let removed = ids[MEMBERS - 1].clone();
    let remaining: Vec<usize> = (0..MEMBERS - 1).filter(|i| *i != SLEEPER).collect();
    let mut staying = ids;
    staying.retain(|id| *id != removed);
    w.router.set_phase("local");
    w.c(0)?.propose_removal(CONV.into(), removed)?;
    let mut meter = Meter::default();
    let done = w.run_until(&mut meter, 600_000, true, |w| {
        Ok(w.info(0, CONV)?.members.len() == MEMBERS - 1 && w.agree(CONV, &remaining, &staying)?)
    })?;
    if !done {
        return Err("wake-up (d′) setup: the removal did not complete".into());
    }
    chat(&mut w, MEMBERS, BACKLOG_CHATS - before, before)?;
    let backlog: Vec<Vec<u8>> = std::mem::take(&mut w.mailbox[SLEEPER])
        .into_iter()
        .map(|p| p.payload)
        .collect();
    let now = w.now();
    let db = std::path::PathBuf::from(w.path(SLEEPER));
    drop(w);
    checkpoint(&db)?;
    let backlog_path = dir.join("backlog-large.bin");
    write_backlog(&backlog_path, &backlog)?;
    let keyed = dir.join("wakeup-large-keyed.db");
    std::fs::copy(&db, &keyed)?;
    encrypt(&keyed, now)?;
    let build_s = started.elapsed().as_secs_f64();
    eprintln!(
        "wake-up (d′): built in {build_s:.0} s; backlog of {} packets at {now} ms",
        backlog.len()
    );
    std::fs::write(dir.join("wakeup-large-now.txt"), now.to_string())?;

    let (median, peak_rss_mib) =
        super::wakeup::median_run(dir, "wakeup-large", &keyed, &backlog_path, now, true)?;
    Ok(Wakeup {
        mode: MODE,
        members: MEMBERS,
        stored_conversations: 1,
        stored_messages: 0,
        backlog: backlog.len(),
        wall_ms: median.wall_ms,
        peak_rss_mib,
        cpu_ms: median.cpu_ms,
        notifications: median.notifications,
        published: median.published,
        build_s,
    })
}
