//! (d) The push wake-up: a fresh process opens a client whose database holds a 100-member
//! conversation plus 1,000 other conversations and 100,000 stored messages, and calls
//! `handle_wakeup` with a backlog of 49 chat messages and one commit.
//!
//! Building the database: the 100-member conversation is formed through the public API (100
//! clients); member 1 is then closed while the others chat 24 messages, remove member 99 by
//! vote (the commit) and chat 25 more. Its backlog keeps, in arrival order, everything the
//! group sent it: the chat packets and the removal's governance (proposal, votes, round
//! messages, certified commit). (Until the certified-commit engine the backlog kept only the
//! chats and the commit candidate; the certificate is now sent by whoever forms it, in no
//! fixed phase, and a backlog without it left 25 chats unreadable.) The filler — 1,000 conversations (copies of the real one's
//! engine state under other ids, in witan's state encoding, with their topic rows, no
//! deadline and no MLS rows: a wake-up never loads a conversation it has no traffic or
//! deadline for) and the
//! stored messages (spread evenly over them) — is inserted with rusqlite directly, which is
//! faster than 100,000 sends and exercises the same tables a real history fills.
//!
//! The fourth row measures the extension with the governance it signs (`Ctx` in the engine:
//! automatic votes that are due, prevotes and precommits for what a push delivered): its
//! backlog is the same, followed by everything the group sent the sleeper during a second
//! removal by vote — the proposal, 98 votes, the round's candidate, polka, round votes
//! addressed to others, and the certificate — so the extension casts its automatic vote,
//! stages the candidate's commit and prevotes, verifies the polka and precommits, then
//! verifies and applies the certificate.
//!
//! The fresh process is this bench binary re-executed with the hidden subcommand
//! `__wakeup DB BACKLOG NOW_MS`; it reports its wall time (open + `handle_wakeup`) and its
//! peak RSS (`VmHWM`) as one JSON line. Each figure is the median of three runs, each on a
//! fresh copy of the database; the whole measurement is repeated with ten times the history.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use witan::client::{
    ClientConfig, ClientRole, Clock, EventListener, InboundPacket, OutboundPacket, Transport,
    TransportError, WitanClient, WitanEvent,
};

use witan::protocol::Conversation;
use witan::protocol::conversation::PartKey;

use super::measure::{Meter, peak_rss_mib};
use super::workloads::CONV;
use super::world::{BenchResult, World};

pub const MEMBERS: usize = 100;
pub const FILLER_CONVERSATIONS: usize = 1_000;
pub const STORED_MESSAGES: usize = 100_000;
pub const BACKLOG_CHATS: usize = 49;
/// The member whose database is woken up.
pub const SLEEPER: usize = 1;
pub const RUNS: usize = 3;

#[derive(Debug, Clone)]
pub struct Wakeup {
    /// `"app"`, or `"extension, encrypted"`: the notification-extension role on a database
    /// encrypted at rest (SQLCipher), as an iOS app would ship it.
    pub mode: &'static str,
    pub members: usize,
    pub stored_conversations: usize,
    pub stored_messages: usize,
    pub backlog: usize,
    pub wall_ms: f64,
    pub peak_rss_mib: f64,
    /// CPU (user + system) of the median run's process.
    pub cpu_ms: f64,
    pub notifications: u64,
    /// Packets the wake-up handed to the transport (its votes and signatures).
    pub published: u64,
    pub build_s: f64,
}

/// What the child reports.
#[derive(Debug, Clone, Copy)]
pub struct ChildReport {
    pub wall_ms: f64,
    pub peak_rss_mib: f64,
    pub cpu_ms: f64,
    pub notifications: u64,
    pub published: u64,
}

/// The sleeper's backlog with a second removal's governance after it, and the time after it.
struct SigningBacklog {
    packets: Vec<Vec<u8>>,
    now: u64,
}

/// Builds the databases and runs the fresh processes; one result per history size.
pub fn run(dir: &Path) -> BenchResult<Vec<Wakeup>> {
    let started = Instant::now();
    let (db, backlog, now, signing) = build_conversation(dir)?;
    let backlog_path = dir.join("backlog.bin");
    write_backlog(&backlog_path, &backlog)?;
    let signing_path = dir.join("backlog-signing.bin");
    write_backlog(&signing_path, &signing.packets)?;
    // The times the children run at, for running one by hand on a kept directory.
    std::fs::write(
        dir.join("now.txt"),
        format!("backlog.bin {now}\nbacklog-signing.bin {}\n", signing.now),
    )?;
    let state = conversation_state(&db)?;
    let base = dir.join("wakeup-1x.db");
    std::fs::copy(&db, &base)?;
    add_filler(&base, &state, 0, STORED_MESSAGES)?;
    let bigger = dir.join("wakeup-10x.db");
    std::fs::copy(&base, &bigger)?;
    add_filler(&bigger, &state, STORED_MESSAGES, 10 * STORED_MESSAGES)?;
    let keyed = dir.join("wakeup-1x-keyed.db");
    std::fs::copy(&base, &keyed)?;
    encrypt(&keyed, now)?;
    let build_s = started.elapsed().as_secs_f64();

    let mut out = Vec::new();
    for (mode, path, messages, (backlog_file, at, count)) in [
        (
            "app",
            &base,
            STORED_MESSAGES,
            (&backlog_path, now, backlog.len()),
        ),
        (
            "app",
            &bigger,
            10 * STORED_MESSAGES,
            (&backlog_path, now, backlog.len()),
        ),
        (
            EXTENSION_MODE,
            &keyed,
            STORED_MESSAGES,
            (&backlog_path, now, backlog.len()),
        ),
        (
            EXTENSION_SIGNING_MODE,
            &keyed,
            STORED_MESSAGES,
            (&signing_path, signing.now, signing.packets.len()),
        ),
    ] {
        let (median, peak_rss_mib) =
            median_run(dir, "wakeup", path, backlog_file, at, mode != "app")?;
        out.push(Wakeup {
            mode,
            members: MEMBERS,
            stored_conversations: FILLER_CONVERSATIONS + 1,
            stored_messages: messages,
            backlog: count,
            wall_ms: median.wall_ms,
            peak_rss_mib,
            cpu_ms: median.cpu_ms,
            notifications: median.notifications,
            published: median.published,
            build_s,
        });
    }
    Ok(out)
}

/// `RUNS` fresh processes, each woken on a copy of `db` (`<name>-run-<k>.db` in `dir`) with
/// the backlog in `backlog` at `at`: the median run by wall time, and the highest peak RSS of
/// them all. Each must show the backlog's chats.
pub fn median_run(
    dir: &Path,
    name: &str,
    db: &Path,
    backlog: &Path,
    at: u64,
    extension: bool,
) -> BenchResult<(ChildReport, f64)> {
    let mut reports = Vec::new();
    for run in 0..RUNS {
        let copy = dir.join(format!("{name}-run-{run}.db"));
        copy_synced(db, &copy)?;
        reports.push(spawn_child(&copy, backlog, at, extension)?);
        std::fs::remove_file(&copy)?;
    }
    reports.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    let median = reports[RUNS / 2];
    if median.notifications != BACKLOG_CHATS as u64 {
        return Err(format!(
            "{name}: the wake-up showed {} notifications, not {BACKLOG_CHATS}",
            median.notifications
        )
        .into());
    }
    let peak = reports.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
    Ok((median, peak))
}

/// Forms the conversation, produces the sleeper's backlog; returns the sleeper's database
/// (checkpointed, closed), its backlog and the virtual time after the traffic, and the
/// backlog with a second removal's governance after it (the fourth row).
fn build_conversation(dir: &Path) -> BenchResult<(PathBuf, Vec<Vec<u8>>, u64, SigningBacklog)> {
    let world_dir = dir.join("world");
    std::fs::create_dir_all(&world_dir)?;
    let mut w = World::new(MEMBERS, &world_dir)?;
    let mut meter = Meter::default();
    formation_in_waves(&mut w, &mut meter)?;
    w.settle(120_000)?;
    let ids = w.member_ids()?;
    w.close(SLEEPER);

    let before = BACKLOG_CHATS / 2;
    chat(&mut w, MEMBERS, before, 0)?;
    let removed = ids[MEMBERS - 1].clone();
    let second = ids[MEMBERS - 2].clone();
    let remaining: Vec<usize> = (0..MEMBERS - 1).filter(|i| *i != SLEEPER).collect();
    let mut staying = ids;
    staying.retain(|id| *id != removed);
    w.router.set_phase("local");
    w.c(0)?.propose_removal(CONV.into(), removed.clone())?;
    let done = w.run_until(&mut meter, 600_000, true, |w| {
        Ok(w.info(0, CONV)?.members.len() == MEMBERS - 1 && w.agree(CONV, &remaining, &staying)?)
    })?;
    if !done {
        return Err("wake-up setup: the removal did not complete".into());
    }
    chat(&mut w, MEMBERS, BACKLOG_CHATS - before, before)?;

    // Everything the group sent the sleeper, in arrival order: the chats and the removal's
    // governance (its proposal, votes, round messages and certified commit; which packet is
    // the certificate depends on who formed it, so nothing is left out).
    let backlog: Vec<Vec<u8>> = std::mem::take(&mut w.mailbox[SLEEPER])
        .into_iter()
        .map(|p| p.payload)
        .collect();
    let now = w.now();
    let signing = second_removal(&mut w, &mut meter, &backlog, second, staying)?;
    let path = PathBuf::from(w.path(SLEEPER));
    drop(w);
    checkpoint(&path)?;
    Ok((path, backlog, now, signing))
}

/// `count` chat messages from the members other than the creator, the sleeper and the last
/// one (who is removed), each delivered before the next is sent.
pub fn chat(w: &mut World, members: usize, count: usize, offset: usize) -> BenchResult<()> {
    w.router.set_phase("chat");
    for k in 0..count {
        let sender = 2 + (offset + k) % (members - 3);
        w.c(sender)?.send_message(
            CONV.into(),
            format!("backlog message {}", offset + k).into_bytes(),
        )?;
        while w.deliver_round()? > 0 {}
    }
    Ok(())
}

/// Removes `second` by vote while the sleeper is still closed; everything the group sent it
/// meanwhile follows `backlog`.
fn second_removal(
    w: &mut World,
    meter: &mut Meter,
    backlog: &[Vec<u8>],
    second: String,
    mut staying: Vec<String>,
) -> BenchResult<SigningBacklog> {
    w.router.set_phase("local");
    w.c(0)?.propose_removal(CONV.into(), second.clone())?;
    staying.retain(|id| *id != second);
    let remaining: Vec<usize> = (0..MEMBERS - 2).filter(|i| *i != SLEEPER).collect();
    let done = w.run_until(meter, 600_000, true, |w| {
        Ok(w.info(0, CONV)?.members.len() == MEMBERS - 2 && w.agree(CONV, &remaining, &staying)?)
    })?;
    if !done {
        return Err("wake-up setup: the second removal did not complete".into());
    }
    let mut packets = backlog.to_vec();
    packets.extend(
        std::mem::take(&mut w.mailbox[SLEEPER])
            .into_iter()
            .map(|p| p.payload),
    );
    Ok(SigningBacklog {
        packets,
        now: w.now(),
    })
}

/// Forms the group 30 joiners at a time: 99 requests at once do not all get in (one member
/// may hold 32 open proposals, and only the creator saw the requests; see docs/bench.md).
fn formation_in_waves(w: &mut World, meter: &mut Meter) -> BenchResult<()> {
    w.router.set_phase("local");
    w.c(0)?
        .create_conversation(CONV.into(), super::workloads::settings())?;
    let mut size = 1;
    while size < MEMBERS {
        let wave = (MEMBERS - size).min(30);
        for i in size..size + wave {
            w.c(i)?.request_to_join(CONV.into())?;
        }
        size += wave;
        let done = w.run_until(meter, 600_000, true, |w| {
            Ok(w.info(0, CONV)?.members.len() == size)
        })?;
        if !done {
            return Err(format!("wake-up setup: the group did not reach {size}").into());
        }
    }
    Ok(())
}

/// Copies the database for one run and waits until the copy is on the disk: otherwise the
/// run's first fsync (ext4 commits its journal in order) also writes out the hundreds of MiB
/// the copy left dirty in the page cache, and the run is charged for the bench's own copy
/// (0.4 s of a 0.6 s wake-up on this machine).
pub fn copy_synced(from: &Path, to: &Path) -> BenchResult<()> {
    std::fs::copy(from, to)?;
    std::fs::File::open(to)?.sync_all()?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub fn checkpoint(path: &Path) -> BenchResult<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// The stored engine state of the real conversation.
fn conversation_state(db: &Path) -> BenchResult<Conversation> {
    let conn = rusqlite::Connection::open(db)?;
    let mut stmt =
        conn.prepare("SELECT part, value FROM engine_state WHERE conversation_id = ?1")?;
    let mut parts = std::collections::BTreeMap::new();
    for row in stmt.query_map([CONV], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
        let (name, value) = row?;
        let key = PartKey::parse(&name).ok_or_else(|| format!("unknown part {name:?}"))?;
        parts.insert(key, value);
    }
    Ok(Conversation::from_parts(&parts)?)
}

fn filler_id(i: usize) -> String {
    format!("filler-{i:04}")
}

/// Inserts the filler conversations (if `messages_from` is 0) and the stored messages
/// `messages_from..messages_to`, spread evenly over them, in one transaction.
fn add_filler(
    db: &Path,
    state: &Conversation,
    messages_from: usize,
    messages_to: usize,
) -> BenchResult<()> {
    let mut conn = rusqlite::Connection::open(db)?;
    let tx = conn.transaction()?;
    if messages_from == 0 {
        for i in 0..FILLER_CONVERSATIONS {
            let id = filler_id(i);
            let s = state.renamed(&id);
            tx.execute(
                "INSERT INTO conversations (id, next_deadline_ms) VALUES (?1, NULL)",
                [&id],
            )?;
            for part in PartKey::ALL {
                tx.execute(
                    "INSERT INTO engine_state (conversation_id, part, value) VALUES (?1, ?2, ?3)",
                    rusqlite::params![id, part.as_str(), s.encode_part(*part)],
                )?;
            }
            let topics = serde_json::to_vec(&[
                witan::protocol::topics::app(&id),
                witan::protocol::topics::welcome(&id),
            ])?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                rusqlite::params![format!("topics:{id}"), topics],
            )?;
        }
    }
    {
        let mut insert = tx.prepare(
            "INSERT INTO messages (conversation_id, seq, message_id, sender, body, sent_at_ms, own)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
        )?;
        let sender = "ab".repeat(20);
        for k in messages_from..messages_to {
            let conv = k % FILLER_CONVERSATIONS;
            let seq = (k / FILLER_CONVERSATIONS + 1) as i64;
            let mut body = [0u8; 64];
            body[..8].copy_from_slice(&(k as u64).to_be_bytes());
            insert.execute(rusqlite::params![
                filler_id(conv),
                seq,
                format!("{k:032x}"),
                sender,
                &body[..],
                1_600_000_000_000i64 + k as i64,
            ])?;
        }
    }
    tx.commit()?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

pub fn write_backlog(path: &Path, packets: &[Vec<u8>]) -> BenchResult<()> {
    let mut bytes = Vec::new();
    for p in packets {
        bytes.extend_from_slice(&(p.len() as u32).to_be_bytes());
        bytes.extend_from_slice(p);
    }
    std::fs::write(path, bytes)?;
    Ok(())
}

fn read_backlog(path: &Path) -> BenchResult<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path)?;
    let mut rest = bytes.as_slice();
    let mut packets = Vec::new();
    while rest.len() >= 4 {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_be_bytes(len.try_into()?) as usize;
        if tail.len() < len {
            return Err("truncated backlog".into());
        }
        let (packet, tail) = tail.split_at(len);
        packets.push(packet.to_vec());
        rest = tail;
    }
    Ok(packets)
}

const EXTENSION_MODE: &str = "extension, encrypted";
const EXTENSION_SIGNING_MODE: &str = "extension, encrypted, signing";
/// The database key of the encrypted run.
const KEY: [u8; 32] = [0x5e; 32];

/// Encrypts the database at `db` in place (what the first keyed open of an upgraded app does).
pub fn encrypt(db: &Path, now: u64) -> BenchResult<()> {
    let host = Arc::new(NullHost::default());
    let client = WitanClient::open_with_clock(
        config(db, true),
        host.clone(),
        host,
        Arc::new(FixedClock(now)),
    )?;
    drop(client);
    Ok(())
}

fn config(db: &Path, extension: bool) -> ClientConfig {
    ClientConfig {
        database_path: db.to_string_lossy().into_owned(),
        identity_secret: None,
        database_key: extension.then(|| KEY.to_vec()),
        role: extension.then_some(ClientRole::NotificationExtension),
    }
}

pub fn spawn_child(
    db: &Path,
    backlog: &Path,
    now: u64,
    extension: bool,
) -> BenchResult<ChildReport> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .arg("__wakeup")
        .arg(db)
        .arg(backlog)
        .arg(now.to_string())
        .arg(if extension { "extension" } else { "app" })
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "wake-up process failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim())?;
    Ok(ChildReport {
        wall_ms: v["wall_ms"].as_f64().ok_or("wall_ms")?,
        peak_rss_mib: v["peak_rss_mib"].as_f64().ok_or("peak_rss_mib")?,
        cpu_ms: v["cpu_ms"].as_f64().ok_or("cpu_ms")?,
        notifications: v["notifications"].as_u64().ok_or("notifications")?,
        published: v["published"].as_u64().ok_or("published")?,
    })
}

struct FixedClock(u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// Accepts every packet (the wake-up may publish votes or relays), counts it and drops it.
#[derive(Default)]
pub struct NullHost(std::sync::atomic::AtomicU64);

impl Transport for NullHost {
    fn publish(&self, _packet: OutboundPacket) -> Result<(), TransportError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    fn subscribe(&self, _topic: String) {}
    fn unsubscribe(&self, _topic: String) {}
}

impl EventListener for NullHost {
    fn on_event(&self, _event: WitanEvent) {}
}

/// The child: `__wakeup DB BACKLOG NOW_MS app|extension`. Prints one JSON line.
pub fn child(args: &[String]) -> BenchResult<()> {
    let [db, backlog, now, mode] = args else {
        return Err("usage: __wakeup DB BACKLOG NOW_MS app|extension".into());
    };
    let packets: Vec<InboundPacket> = read_backlog(Path::new(backlog))?
        .into_iter()
        .map(|payload| InboundPacket {
            topic: witan::protocol::topics::app(CONV),
            payload,
        })
        .collect();
    let now: u64 = now.parse()?;
    let host = Arc::new(NullHost::default());
    let started = Instant::now();
    let client = WitanClient::open_with_clock(
        config(Path::new(db), mode == "extension"),
        host.clone(),
        host.clone(),
        Arc::new(FixedClock(now)),
    )?;
    let report = client.handle_wakeup(packets)?;
    if report.spooled_packets > 0 {
        return Err("the wake-up spooled its packets: nothing held the lock".into());
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    let line = serde_json::json!({
        "wall_ms": wall_ms,
        "peak_rss_mib": peak_rss_mib(),
        "cpu_ms": super::measure::process_cpu_precise().as_secs_f64() * 1e3,
        "notifications": report.notifications.len(),
        "published": host.0.load(std::sync::atomic::Ordering::Relaxed),
    });
    println!("{line}");
    Ok(())
}
