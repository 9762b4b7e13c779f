//! The story of a group, played by separate processes on loopback: one service node and
//! five members, each with its own database. The `witan-story` binary plays it for people
//! (printing what every process sees); the multi-process test plays it quietly and checks
//! the outcome.
//!
//! 1. alice creates the conversation; bob, carol and dave ask to join and are voted in.
//! 2. They chat.
//! 3. One of them (not the epoch steward) is killed with SIGKILL.
//! 4. erin asks to join and is voted in by the others; they chat on.
//! 5. The killed member restarts from its file and catches up from the store: the same
//!    epoch, members, stewards and epoch authenticator as the others, the chats it missed
//!    in order, nothing twice.
//! 6. A member is removed by vote; everyone left agrees; a last chat.
//!
//! Every wait has a deadline ([`STEP_LIMIT`]); every process is killed when the story ends,
//! however it ends.

pub mod procs;
pub mod render;
pub mod stage;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use procs::{Echo, Program};
pub use stage::{CONVERSATION, Stage, StageConfig};

/// The longest any one step of the story may take.
pub const STEP_LIMIT: Duration = Duration::from_secs(25);

/// What the story leaves for its checks.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The status everyone left agreed on at the end.
    pub last: Value,
    /// The member that was killed and restarted.
    pub restarted: String,
    /// The chats sent while it was away, in order.
    pub missed: Vec<String>,
    /// The history the restarted member had once it caught up (texts, in order).
    pub history_after_restart: Vec<String>,
    /// Packets the restarted member took from the store (catch-ups after its restart).
    pub caught_up_packets: u64,
    /// The member that was voted out.
    pub removed: String,
    /// Every process started, and every address used.
    pub pids: Vec<u32>,
    pub addresses: Vec<String>,
}

/// Plays the story. `narrate` hears each step's heading.
pub fn play(config: StageConfig, narrate: &dyn Fn(&str)) -> Result<Outcome, String> {
    let mut s = Stage::new(config);
    let result = plot(&mut s, narrate);
    let finished = s.finish();
    let mut outcome = result?;
    finished?;
    outcome.pids = s.pids.clone();
    outcome.addresses = s.addresses.clone();
    Ok(outcome)
}

/// The message ids of a status's history, in order.
fn ids(status: &Value) -> Vec<Value> {
    status["messages"]
        .as_array()
        .map(|m| m.iter().map(|m| m["message_id"].clone()).collect())
        .unwrap_or_default()
}

fn texts(status: &Value) -> Vec<String> {
    status["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["text"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `names` agree with `count` members and `chats` messages; returns the status.
fn agree(
    s: &mut Stage,
    names: &[&str],
    count: usize,
    chats: usize,
    what: &str,
) -> Result<Value, String> {
    let mut last = Value::Null;
    s.wait_until(what, STEP_LIMIT, |s| match s.agreement(names, count)? {
        Some(status) if texts(&status).len() == chats => {
            last = status;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    Ok(last)
}

/// `who` sends a chat; returns once every one of `readers` has it, so that the next chat
/// is a reply (chat histories are in each member's order of arrival: two chats sent at the
/// same moment may be stored in either order).
fn say(s: &mut Stage, who: &str, text: &str, readers: &[&str]) -> Result<(), String> {
    let answer = s.command(who, &format!("say {CONVERSATION} {text}"))?;
    let id = answer["message_id"].clone();
    s.wait_until(&format!("everyone read {text:?}"), STEP_LIMIT, |s| {
        for reader in readers {
            if !ids(&s.status(reader)?).contains(&id) {
                return Ok(false);
            }
        }
        Ok(true)
    })
}

fn plot(s: &mut Stage, narrate: &dyn Fn(&str)) -> Result<Outcome, String> {
    narrate("a service node starts: it relays the group's traffic and keeps it in its store");
    s.start_node()?;
    narrate("four members start, each a process with its own database");
    for name in ["alice", "bob", "carol", "dave"] {
        s.start_member(name)?;
    }
    narrate("alice creates \"garden\"; bob, carol and dave ask to join and are voted in");
    s.command("alice", &format!("create {CONVERSATION}"))?;
    for name in ["bob", "carol", "dave"] {
        s.command(name, &format!("join {CONVERSATION}"))?;
    }
    let four = ["alice", "bob", "carol", "dave"];
    agree(s, &four, 4, 0, "the four agree on the group")?;

    narrate("they chat");
    say(s, "alice", "Welcome to the garden club!", &four)?;
    say(s, "bob", "Thanks! The tomatoes are finally red.", &four)?;
    say(s, "carol", "Anyone has spare basil seedlings?", &four)?;
    say(s, "dave", "I do, come by on Saturday.", &four)?;
    let before = agree(s, &four, 4, 4, "everyone has the four chats")?;

    let steward = before["epoch_steward"].as_str().unwrap_or("").to_string();
    let victim = ["dave", "carol", "bob"]
        .into_iter()
        .find(|n| s.ids.get(*n).map(String::as_str) != Some(steward.as_str()))
        .ok_or("no member to kill")?
        .to_string();
    narrate(&format!(
        "{victim} is killed with SIGKILL (it is not the epoch steward)"
    ));
    s.kill(&victim)?;
    let live: Vec<&str> = four.iter().copied().filter(|n| *n != victim).collect();

    narrate("erin starts and asks to join; the live members vote her in");
    s.start_member("erin")?;
    s.command("erin", &format!("join {CONVERSATION}"))?;
    let mut five_live = live.clone();
    five_live.push("erin");
    agree(s, &five_live, 5, 4, "erin is in and the live members agree")?;
    narrate(&format!("they chat while {victim} is away"));
    let missed = vec![
        "Hello everyone, I am new here.".to_string(),
        "Welcome, erin!".to_string(),
        format!("{victim} will read this later."),
    ];
    say(s, "erin", &missed[0], &five_live)?;
    say(s, "alice", &missed[1], &five_live)?;
    say(s, live[1], &missed[2], &five_live)?;
    agree(s, &five_live, 5, 7, "the live members have the seven chats")?;

    narrate(&format!(
        "{victim} restarts from its database and catches up from the store"
    ));
    s.start_member(&victim)?;
    let all = ["alice", "bob", "carol", "dave", "erin"];
    let caught_up = agree(s, &all, 5, 7, "the restarted member agrees with everyone")?;
    let restarted = s.status(&victim)?;
    if ids(&restarted) != ids(&caught_up) {
        return Err(format!(
            "{victim}'s history differs from alice's: {restarted}"
        ));
    }
    let packets = s.net_total(&victim, "caught_up", "packets");
    let mut outcome = removal(s, &victim, narrate)?;
    outcome.missed = missed;
    outcome.history_after_restart = texts(&restarted);
    outcome.caught_up_packets = packets;
    Ok(outcome)
}

/// Step 6: a member (not alice, not the restarted one, not erin) is voted out.
fn removal(s: &mut Stage, victim: &str, narrate: &dyn Fn(&str)) -> Result<Outcome, String> {
    let removed = ["bob", "carol", "dave"]
        .into_iter()
        .find(|n| *n != victim)
        .ok_or("no member to remove")?
        .to_string();
    let target = s.ids.get(&removed).cloned().ok_or("unknown member")?;
    narrate(&format!(
        "alice proposes to remove {removed}; the others vote yes, {removed} no"
    ));
    s.command("alice", &format!("remove {CONVERSATION} {target}"))?;
    let rest: Vec<&str> = ["alice", "bob", "carol", "dave", "erin"]
        .into_iter()
        .filter(|n| *n != removed)
        .collect();
    agree(
        s,
        &rest,
        4,
        7,
        "the four left agree without the removed member",
    )?;
    s.wait_until("the removed member knows it left", STEP_LIMIT, |s| {
        Ok(s.status(&removed)?["state"] == "Left")
    })?;
    narrate("a last chat among the four");
    say(s, victim, "Good to be back.", &rest)?;
    let last = agree(s, &rest, 4, 8, "everyone has the last chat")?;
    Ok(Outcome {
        last,
        restarted: victim.to_string(),
        missed: Vec::new(),
        history_after_restart: Vec::new(),
        caught_up_packets: 0,
        removed,
        pids: Vec::new(),
        addresses: Vec::new(),
    })
}

/// The `witan-story` program: plays the story, printing every process's lines as
/// sentences. `--keep` keeps the databases; `--dir DIR` puts them there.
pub fn main(program: Program, args: Vec<String>) -> std::process::ExitCode {
    let args = match crate::cli::args::Args::parse(args, &["dir"], &["keep"]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("witan-story: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let dir = args.get("dir").map_or_else(
        || std::env::temp_dir().join(format!("witan-story-{}", std::process::id())),
        Into::into,
    );
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("witan-story: {}: {e}", dir.display());
        return std::process::ExitCode::FAILURE;
    }
    let start = std::time::Instant::now();
    let names: Arc<Mutex<render::Names>> = Arc::default();
    let shown = names.clone();
    let echo: Echo = Arc::new(move |who: &str, line: &Value| {
        let names = shown.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(text) = render::sentence(line, &names) {
            println!("{:>7.2}s  {who:<6} {text}", start.elapsed().as_secs_f64());
        }
    });
    println!("witan story: a node and five members, each a separate process, on 127.0.0.1");
    println!("databases in {}\n", dir.display());
    let config = StageConfig {
        node: Program {
            path: program.path.clone(),
            prefix: vec!["node".into()],
        },
        member: Program {
            path: program.path,
            prefix: vec!["member".into()],
        },
        dir: dir.clone(),
        echo: Some(echo),
        names,
    };
    let narrate = |text: &str| println!("\n== {text}");
    let result = play(config, &narrate);
    if !args.has("keep") {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok(o) => {
            println!("\n== the end, after {:.1} s", start.elapsed().as_secs_f64());
            println!(
                "{} restarted and caught up: it read the {} chats it missed, in order; everyone left agrees on epoch {} with {} members; {} was voted out; every address was on loopback.",
                o.restarted,
                o.missed.len(),
                o.last["epoch"],
                o.last["members"].as_array().map_or(0, Vec::len),
                o.removed,
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            println!("\n== the story failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
