//! The `witan-member` program on its own: a script creates a conversation, says something,
//! asks for the status and leaves; the program prints each answer and event as a JSON line,
//! refuses a bad command with an error line and goes on, and stops at `quit`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use witan_net::story::procs::{Proc, Program};

fn program(path: &str) -> Program {
    Program {
        path: PathBuf::from(path),
        prefix: Vec::new(),
    }
}

fn wait_for(p: &Proc, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((_, line)) = p.find(0, &matches) {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no {what}: {:?}",
            p.name,
            p.lines_from(0)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The arguments of a member with its database `name.db` in `dir`, on the node at `address`,
/// running `script`.
fn scripted_args(dir: &std::path::Path, name: &str, address: &str, script: &str) -> Vec<String> {
    let path = dir.join("script.txt");
    std::fs::write(&path, script).unwrap();
    let db = dir
        .join(format!("{name}.db"))
        .to_string_lossy()
        .into_owned();
    [
        "--db",
        &db,
        "--node",
        address,
        "--script",
        &path.to_string_lossy(),
    ]
    .map(String::from)
    .to_vec()
}

fn wait_until_exited(p: &mut Proc, within: Duration) {
    let deadline = Instant::now() + within;
    while !p.exited() {
        assert!(Instant::now() < deadline, "{} did not stop at quit", p.name);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_scripted_member_creates_says_reports_its_status_and_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let node = Proc::spawn(
        "node",
        &program(env!("CARGO_BIN_EXE_witan-node")),
        &["--until-stdin-closes".to_string()],
        None,
    )
    .unwrap();
    let listening = wait_for(&node, "listen address", |v| v["node"] == "listening");
    let address = listening["address"].as_str().unwrap().to_string();

    let args = scripted_args(
        dir.path(),
        "solo",
        &address,
        "# a member alone\ncreate notes\nsay notes first line\ndance\nstatus notes\n\
         leave notes\nsleep 200\nquit\n",
    );
    let mut member = Proc::spawn(
        "solo",
        &program(env!("CARGO_BIN_EXE_witan-member")),
        &args,
        None,
    )
    .unwrap();

    wait_for(&member, "ready line", |v| {
        v["ready"]["member_id"].is_string()
    });
    wait_for(&member, "create answer", |v| v["ok"] == "create");
    let said = wait_for(&member, "say answer", |v| v["ok"] == "say");
    let refused = wait_for(&member, "error for the bad command", |v| {
        v.get("error").is_some()
    });
    assert!(
        refused["error"].as_str().unwrap().contains("dance"),
        "{refused}"
    );
    let status = wait_for(&member, "status", |v| v.get("status").is_some());
    assert_eq!(status["status"]["messages"][0]["text"], "first line");
    assert_eq!(
        status["status"]["messages"][0]["message_id"],
        said["message_id"]
    );
    wait_for(&member, "left event", |v| v["event"] == "left");
    // The node stored what the member published.
    wait_for(&node, "stored message", |v| v["node"] == "stored");

    wait_until_exited(&mut member, Duration::from_secs(10));
    // A restart reads the same file: the conversation is there, left.
    let mut again = Proc::spawn(
        "solo-again",
        &program(env!("CARGO_BIN_EXE_witan-member")),
        &args[..4],
        None,
    )
    .unwrap();
    again.send("status notes").unwrap();
    let status = wait_for(&again, "status after restart", |v| {
        v.get("status").is_some()
    });
    assert_eq!(status["status"]["state"], "Left");
    again.close(Duration::from_secs(5));
}

#[test]
fn a_member_told_to_quit_while_its_node_is_down_waits_and_delivers_when_the_node_returns() {
    let dir = tempfile::tempdir().unwrap();
    let node_db = dir.path().join("node.db").to_string_lossy().into_owned();
    let node_args = |listen: &str| -> Vec<String> {
        ["--db", &node_db, "--listen", listen, "--until-stdin-closes"]
            .map(String::from)
            .to_vec()
    };
    let node_program = program(env!("CARGO_BIN_EXE_witan-node"));
    // A first run fixes the node's address (its key lives in its database), then it stops.
    let mut first = Proc::spawn(
        "node",
        &node_program,
        &node_args("/ip4/127.0.0.1/tcp/0"),
        None,
    )
    .unwrap();
    let listening = wait_for(&first, "listen address", |v| v["node"] == "listening");
    let address = listening["address"].as_str().unwrap().to_string();
    first.close(Duration::from_secs(5));

    // The member says something and quits at once, while nothing answers at its node's
    // address: what it said waits in its outbox.
    let args = scripted_args(
        dir.path(),
        "hasty",
        &address,
        "create notes\nsay notes last words\nquit\n",
    );
    let mut member = Proc::spawn(
        "hasty",
        &program(env!("CARGO_BIN_EXE_witan-member")),
        &args,
        None,
    )
    .unwrap();
    wait_for(&member, "say answer", |v| v["ok"] == "say");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!member.exited(), "the member quit with its outbox full");

    // The node comes back at the same address; the member delivers, then stops.
    let tcp = address.split("/p2p/").next().unwrap();
    let node = Proc::spawn("node-again", &node_program, &node_args(tcp), None).unwrap();
    wait_for(&node, "stored message", |v| v["node"] == "stored");
    wait_until_exited(&mut member, Duration::from_secs(30));
}
