//! The group story played by separate processes on loopback — one `witan-node` and five
//! `witan-member`s, each with its own database, in real time — and checked: the member
//! killed with SIGKILL restarts from its file and catches up from the store (same epoch,
//! members, stewards and epoch authenticator as the others; the chats it missed, in order;
//! nothing twice), a member is voted out, everyone converges, every address is loopback and
//! no process is left behind. Every wait of the story has a deadline.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use witan_net::behaviour::is_loopback;
use witan_net::story::{self, Echo, Program, StageConfig};

fn program(path: &str) -> Program {
    Program {
        path: PathBuf::from(path),
        prefix: Vec::new(),
    }
}

#[test]
fn a_group_of_processes_survives_a_killed_member_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    // Every line every process printed, shown only if the story fails.
    let transcript: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = transcript.clone();
    let echo: Echo = Arc::new(move |who: &str, line: &Value| {
        keep.lock().unwrap().push(format!("{who}: {line}"));
    });
    let config = StageConfig {
        node: program(env!("CARGO_BIN_EXE_witan-node")),
        member: program(env!("CARGO_BIN_EXE_witan-member")),
        dir: dir.path().to_path_buf(),
        echo: Some(echo),
        names: Arc::default(),
    };
    let started = Instant::now();
    let steps: Arc<Mutex<Vec<String>>> = Arc::default();
    let heard = steps.clone();
    let result = story::play(config, &move |step| {
        heard.lock().unwrap().push(step.to_string())
    });
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            for line in transcript.lock().unwrap().iter() {
                eprintln!("{line}");
            }
            panic!("the story failed: {e}");
        }
    };
    eprintln!(
        "story played in {:.1} s over {} steps",
        started.elapsed().as_secs_f64(),
        steps.lock().unwrap().len()
    );

    // The restarted member read, from the store, the three chats it missed, in order,
    // after the four it had, and nothing twice.
    let history = &outcome.history_after_restart;
    assert_eq!(history.len(), 7, "{history:?}");
    assert_eq!(history[4..], outcome.missed[..]);
    assert!(
        outcome.caught_up_packets >= 3,
        "{}",
        outcome.caught_up_packets
    );

    // Everyone left agrees: four members, the removed one gone, the last chat in.
    let last = &outcome.last;
    assert_eq!(last["members"].as_array().unwrap().len(), 4);
    assert_eq!(last["state"], "Working");
    let texts: Vec<&str> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts.last(), Some(&"Good to be back."));
    assert_ne!(outcome.removed, outcome.restarted);

    // Loopback only, and every process is gone.
    assert!(outcome.addresses.len() >= 12, "{:?}", outcome.addresses);
    for address in &outcome.addresses {
        assert!(is_loopback(&address.parse().unwrap()), "{address}");
    }
    assert_eq!(outcome.pids.len(), 7, "node, five members and one restart");
    for pid in &outcome.pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} is still there"
        );
    }
}
