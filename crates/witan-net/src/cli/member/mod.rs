//! `witan-member`: one `WitanClient` in one process, with its own SQLite file, on a
//! `NetTransport` that dials a service node. It takes commands (`commands.rs`) on stdin or
//! from a script, prints what it sees as JSON lines (`cli::lines`), and runs `poll` at the
//! next wake-up the client asks for — after every command and every delivery too, since
//! either may move that wake-up earlier.
//!
//! ```text
//! witan-member --db FILE --node ADDR [--name NAME] [--listen ADDR|none] [--peer ADDR]...
//!              [--script FILE] [--timers fast|standard] [--auto-vote-ms N]
//!              [--catch-up-every-ms N]
//! ```
//!
//! The cursors live next to the database (`<db>-cursors`). With `--script` the member runs
//! the script and then goes on serving the group until `quit` or until it is stopped; without
//! it, it reads stdin and stops when stdin closes. `--timers fast` gives conversations that
//! this member creates windows of a second or two (the story's); `standard` is witan's
//! production defaults. Besides the catch-ups the transport runs by itself, the member
//! catches up every `--catch-up-every-ms` (default 3,000; 0: never) to fill gaps of the live
//! relay. `quit` first waits, up to 20 s, until the outbox has reached the network (a packet
//! that still has not stays in the database and leaves at the next start).

mod commands;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use witan::client::{
    ClientConfig, ConversationSettings, EventListener, WitanClient, WitanEvent,
    default_conversation_settings,
};

pub use commands::Command;

use super::args::Args;
use super::lines;
use crate::member::{NetConfig, NetEvent, NetTransport};

const VALUES: &[&str] = &[
    "db",
    "node",
    "name",
    "listen",
    "peer",
    "script",
    "timers",
    "auto-vote-ms",
    "catch-up-every-ms",
];
/// The longest the driver sleeps without polling (clocks can jump).
const MAX_IDLE: Duration = Duration::from_secs(1);
/// How long `quit` waits for the outbox to reach the network before stopping anyway.
const QUIT_GRACE: Duration = Duration::from_secs(20);
/// How often `quit` retries while it waits (the outbox's own backoff still applies).
const QUIT_STEP: Duration = Duration::from_millis(100);

/// Conversation timers with windows of a second or two, for groups whose members all run
/// on one machine (the story and the multi-process test). Votes are cast by hand (`vote`).
pub fn fast_settings() -> ConversationSettings {
    ConversationSettings {
        pending_join_timeout_ms: 60_000,
        commit_inactivity_ms: 6_000,
        recovery_inactivity_ms: 4_000,
        freeze_window_ms: 2_000,
        vote_timeout_ms: 8_000,
        auto_vote_delay_ms: None,
        commit_delay_ms: 300,
        max_clock_skew_ms: 10_000,
        ..default_conversation_settings()
    }
}

/// What the driver waits for.
enum Input {
    Line(String),
    /// Something was delivered: the next wake-up may have moved.
    Wake,
    /// The command source ended.
    End,
}

struct Printer;

impl EventListener for Printer {
    fn on_event(&self, event: WitanEvent) {
        lines::print(&lines::event(&event));
    }
}

struct Options {
    db: PathBuf,
    net: NetConfig,
    script: Option<PathBuf>,
    settings: ConversationSettings,
    catch_up_every: Option<Duration>,
    name: String,
}

/// The program; `args` without the program name.
pub fn main(args: Vec<String>) -> ExitCode {
    super::exit(run(args))
}

fn options(args: Vec<String>) -> Result<Options, String> {
    let args = Args::parse(args, VALUES, &[])?;
    let db = PathBuf::from(args.require("db")?);
    let node = args.require("node")?;
    let node: libp2p::Multiaddr = node.parse().map_err(|e| format!("--node {node:?}: {e}"))?;
    let mut peers = vec![node.clone()];
    for p in args.all("peer") {
        peers.push(p.parse().map_err(|e| format!("--peer {p:?}: {e}"))?);
    }
    let listen = match args.get("listen").unwrap_or("/ip4/127.0.0.1/tcp/0") {
        "none" => Vec::new(),
        a => vec![a.parse().map_err(|e| format!("--listen {a:?}: {e}"))?],
    };
    let mut settings = match args.get("timers").unwrap_or("fast") {
        "fast" => fast_settings(),
        "standard" => default_conversation_settings(),
        other => return Err(format!("--timers {other:?}: fast or standard")),
    };
    if args.has("auto-vote-ms") {
        settings.auto_vote_delay_ms = Some(args.number("auto-vote-ms", 0)?);
    }
    let every = args.number("catch-up-every-ms", 3_000u64)?;
    let mut cursors = db.clone().into_os_string();
    cursors.push("-cursors");
    Ok(Options {
        net: NetConfig {
            listen,
            peers,
            store: Some(node),
            cursor_path: Some(cursors.into()),
            ..NetConfig::default()
        },
        db,
        script: args.get("script").map(PathBuf::from),
        settings,
        catch_up_every: (every > 0).then(|| Duration::from_millis(every)),
        name: args.get("name").unwrap_or("member").to_string(),
    })
}

fn run(args: Vec<String>) -> Result<(), String> {
    let o = options(args)?;
    let net = NetTransport::start(o.net.clone()).map_err(|e| e.to_string())?;
    let client = WitanClient::open(
        ClientConfig {
            database_path: o.db.to_string_lossy().into_owned(),
            identity_secret: None,
            database_key: None,
            role: None,
        },
        net.clone(),
        Arc::new(Printer),
    )
    .map_err(|e| e.to_string())?;
    net.attach(&client);
    let listen: Vec<String> = net
        .listen_addresses()
        .iter()
        .map(|a| a.to_string())
        .collect();
    lines::print(&json!({"ready": {
        "name": o.name, "member_id": client.member_id(), "peer_id": net.peer_id().to_string(),
        "listen": listen, "database": o.db.to_string_lossy(),
    }}));
    let (tx, rx) = channel();
    if let Some(events) = net.events() {
        let tx = tx.clone();
        std::thread::spawn(move || forward_net_events(events, tx));
    }
    let script = o.script.clone();
    std::thread::spawn(move || read_commands(script, tx));
    drive(&client, &net, &rx, &o);
    net.stop();
    Ok(())
}

fn forward_net_events(events: Receiver<NetEvent>, tx: Sender<Input>) {
    for event in events {
        lines::print(&lines::net(&event));
        if matches!(
            event,
            NetEvent::Delivered { .. } | NetEvent::CaughtUp { .. }
        ) {
            let _ = tx.send(Input::Wake);
        }
    }
}

/// Feeds the script's lines (pausing at `sleep`), then stdin's unless a script was given.
fn read_commands(script: Option<PathBuf>, tx: Sender<Input>) {
    if let Some(path) = script {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines() {
                    if let Ok(Command::Sleep(ms)) = Command::parse(line) {
                        std::thread::sleep(Duration::from_millis(ms));
                    } else if tx.send(Input::Line(line.to_string())).is_err() {
                        return;
                    }
                }
            }
            Err(e) => lines::print(&json!({"error": format!("script {}: {e}", path.display())})),
        }
        // A scripted member goes on serving the group.
        return;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if tx.send(Input::Line(line)).is_err() {
            return;
        }
    }
    let _ = tx.send(Input::End);
}

/// Polls at every wake-up, runs commands as they come, catches up periodically.
fn drive(client: &WitanClient, net: &NetTransport, rx: &Receiver<Input>, o: &Options) {
    let mut next_catch_up = o.catch_up_every.map(|every| Instant::now() + every);
    loop {
        let wait = match client.poll() {
            Ok(report) => until(report.next_wakeup_at_ms),
            Err(e) => {
                lines::print(&json!({"error": format!("poll: {e}")}));
                MAX_IDLE
            }
        };
        let wait = next_catch_up.map_or(wait, |at| {
            wait.min(at.saturating_duration_since(Instant::now()))
        });
        match rx.recv_timeout(wait) {
            Ok(Input::Line(line)) => match Command::parse(&line) {
                Ok(Command::Quit) => return drain_outbox(client),
                Ok(command) => {
                    if let Some(answer) = commands::execute(command, client, net, &o.settings) {
                        lines::print(&answer);
                    }
                }
                Err(e) => lines::print(&json!({"error": e})),
            },
            Ok(Input::Wake) => {}
            Ok(Input::End) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let (Some(at), Some(every)) = (next_catch_up, o.catch_up_every)
            && Instant::now() >= at
        {
            // A failure is reported as a net warning; the next round tries again.
            let _ = net.catch_up();
            next_catch_up = Some(Instant::now() + every);
        }
    }
}

/// Before the program stops, what this member said reaches the network if it can within
/// [`QUIT_GRACE`]; what cannot stays in the database's outbox for the next start.
fn drain_outbox(client: &WitanClient) {
    let deadline = Instant::now() + QUIT_GRACE;
    let pending = loop {
        let (pending, wait) = match client.poll() {
            Ok(report) => (report.outbox_pending, until(report.next_wakeup_at_ms)),
            Err(e) => {
                // The database is failing: nothing here can send the outbox.
                lines::print(&json!({"error": format!("poll: {e}")}));
                return;
            }
        };
        if pending == 0 || Instant::now() >= deadline {
            break pending;
        }
        std::thread::sleep(wait.clamp(QUIT_STEP, MAX_IDLE));
    };
    if pending > 0 {
        lines::print(&json!({"quit": {"outbox_pending": pending}}));
    }
}

/// How long until `at_ms` (ms since the Unix epoch), at most [`MAX_IDLE`].
fn until(at_ms: Option<u64>) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    at_ms.map_or(MAX_IDLE, |at| {
        Duration::from_millis(at.saturating_sub(now)).min(MAX_IDLE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_need_a_database_and_a_node_and_fill_the_rest() {
        assert!(options(vec![]).is_err());
        let node = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGBfKqTqgKhJ2fCx3fHU6Bm6jy1UjbHTLTLVWbxzLvQwC";
        let o = options(
            [
                "--db",
                "a.db",
                "--node",
                node,
                "--listen",
                "none",
                "--auto-vote-ms",
                "5",
            ]
            .map(String::from)
            .to_vec(),
        )
        .unwrap();
        assert!(o.net.listen.is_empty());
        assert_eq!(o.net.peers.len(), 1);
        assert_eq!(
            o.net.cursor_path.as_deref(),
            Some(std::path::Path::new("a.db-cursors"))
        );
        assert_eq!(o.settings.auto_vote_delay_ms, Some(5));
        assert_eq!(o.catch_up_every, Some(Duration::from_secs(3)));
        assert!(
            options(
                ["--db", "a", "--node", node, "--timers", "slow"]
                    .map(String::from)
                    .to_vec()
            )
            .is_err()
        );
    }

    #[test]
    fn the_driver_never_sleeps_past_a_wakeup_or_a_second() {
        assert_eq!(until(None), MAX_IDLE);
        assert_eq!(until(Some(0)), Duration::ZERO);
        assert!(until(Some(u64::MAX)) <= MAX_IDLE);
    }
}
