//! A member driven by a child process, for the durability tests: the test binary re-executes
//! itself (`std::env::current_exe()`, running only its ignored `child_process` test) with
//! environment variables naming the member's database, its inbox and its spool directory.
//!
//! The child ([`child_main`]) opens a `WitanClient` on the database with a manual clock and
//! then obeys one command per stdin line, each carrying the virtual time:
//! `RECV <now>` (receive every packet file in the inbox as one batch, then delete the files),
//! `WAKE <now>` (the same through `handle_wakeup`, the notification extension's path),
//! `POLL <now>`, `SEND <now> <text>`, `JOIN <now>`, `QUIT`. It answers each with one stdout line
//! starting with `@@` (libtest prints its own lines too; they are skipped).
//!
//! Both directions go through files that appear atomically (written under a dot-name, then
//! renamed), so a SIGKILL at any instant leaves either the whole packet or none:
//! - the child's transport "publishes" by creating a file in the spool, which the parent drains
//!   into its router — a packet is handed to the network exactly when its file exists;
//! - the parent delivers by creating files in the inbox; the child deletes them only after
//!   `receive` committed, so a kill in between re-delivers them (they must be duplicates).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use witan::client::{
    ClientConfig, Clock, EventListener, InboundPacket, OutboundPacket, Transport, TransportError,
    WitanClient, WitanEvent,
};

use super::clients::{CONV, ManualClock};

pub const ENV_DB: &str = "WITAN_CHILD_DB";
pub const ENV_INBOX: &str = "WITAN_CHILD_INBOX";
pub const ENV_SPOOL: &str = "WITAN_CHILD_SPOOL";
pub const ENV_NOW: &str = "WITAN_CHILD_NOW";
/// Name of the ignored test that is the child's entry point.
pub const ENTRY_TEST: &str = "child_process";

/// Where one member process keeps its things.
#[derive(Clone, Debug)]
pub struct Paths {
    pub db: PathBuf,
    pub inbox: PathBuf,
    pub spool: PathBuf,
}

impl Paths {
    /// `db` plus an inbox and a spool directory named after `tag` under `dir`.
    pub fn new(dir: &Path, db: &Path, tag: &str) -> Paths {
        let p = Paths {
            db: db.to_path_buf(),
            inbox: dir.join(format!("{tag}-inbox")),
            spool: dir.join(format!("{tag}-spool")),
        };
        std::fs::create_dir_all(&p.inbox).unwrap();
        std::fs::create_dir_all(&p.spool).unwrap();
        p
    }
}

/// Writes `bytes` as `dir/name`, atomically (a dot-named temporary file renamed into place).
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".tmp-{name}"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// The complete (not dot-named) files of `dir`, sorted by name.
pub fn complete_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Drains the spool: the published packets in order, as (topic, payload).
pub fn drain_spool(spool: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for file in complete_files(spool) {
        let bytes = std::fs::read(&file).unwrap();
        let split = bytes.iter().position(|b| *b == b'\n').unwrap();
        let topic = String::from_utf8(bytes[..split].to_vec()).unwrap();
        out.push((topic, bytes[split + 1..].to_vec()));
        std::fs::remove_file(&file).unwrap();
    }
    out
}

// ----- the child -----

/// Publishes by creating spool files named so that their order is the publication order
/// (nanoseconds since the epoch, the process id, a counter).
struct SpoolTransport {
    dir: PathBuf,
    counter: AtomicU64,
}

impl Transport for SpoolTransport {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let name = format!("{nanos:024}-{:08}-{n:08}", std::process::id());
        let mut bytes = packet.topic.into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(&packet.payload);
        write_atomically(&self.dir, &name, &bytes).map_err(|e| TransportError::Unavailable {
            reason: e.to_string(),
        })
    }
    fn subscribe(&self, _: String) {}
    fn unsubscribe(&self, _: String) {}
}

/// Appends the events to `<database>.events` (for debugging a failed run; events of a step
/// killed before they were delivered are missing, as they are for a real app).
struct EventLog {
    path: PathBuf,
    clock: Arc<ManualClock>,
}

impl EventLog {
    fn note(db: &str, line: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{db}.events"))
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

impl EventListener for EventLog {
    fn on_event(&self, event: WitanEvent) {
        use std::sync::atomic::Ordering::SeqCst;
        let line = format!("{} {event:?}\n", self.clock.0.load(SeqCst));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    }
}

/// The packet files waiting in the inbox, in delivery order, and their contents.
fn read_inbox(inbox: &Path) -> (Vec<PathBuf>, Vec<InboundPacket>) {
    let files = complete_files(inbox);
    let packets = files
        .iter()
        .map(|f| InboundPacket {
            topic: String::new(),
            payload: std::fs::read(f).unwrap(),
        })
        .collect();
    (files, packets)
}

fn remove_all(files: &[PathBuf]) {
    for f in files {
        std::fs::remove_file(f).unwrap();
    }
}

fn reply(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@{line}").unwrap();
    out.flush().unwrap();
}

/// The child's main loop (see the module doc). Returns on `QUIT` or end of input.
pub fn child_main() {
    let var = |name: &str| std::env::var(name).unwrap();
    let inbox = PathBuf::from(var(ENV_INBOX));
    let clock = Arc::new(ManualClock(AtomicU64::new(var(ENV_NOW).parse().unwrap())));
    let client = WitanClient::open_with_clock(
        ClientConfig {
            database_path: var(ENV_DB),
            identity_secret: None,
            database_key: None,
            role: None,
        },
        Arc::new(SpoolTransport {
            dir: PathBuf::from(var(ENV_SPOOL)),
            counter: AtomicU64::new(0),
        }),
        Arc::new(EventLog {
            path: PathBuf::from(format!("{}.events", var(ENV_DB))),
            clock: clock.clone(),
        }),
        clock.clone(),
    )
    .unwrap();
    reply(&format!("READY {}", client.member_id()));
    EventLog::note(&var(ENV_DB), &format!("{} opened", clock.now_ms()));
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        if cmd == "QUIT" {
            reply("OK");
            return;
        }
        let now: u64 = words.next().unwrap().parse().unwrap();
        clock.0.store(now, Ordering::SeqCst);
        let answer = match cmd {
            "RECV" => {
                let (files, packets) = read_inbox(&inbox);
                client.receive(packets).map(|r| {
                    remove_all(&files);
                    format!("{} {} {}", r.accepted, r.duplicates, r.rejected)
                })
            }
            "WAKE" => {
                let (files, packets) = read_inbox(&inbox);
                client.handle_wakeup(packets).map(|r| {
                    remove_all(&files);
                    let next = r
                        .next_wakeup_at_ms
                        .map_or("-".to_string(), |t| t.to_string());
                    format!("{next} {}", r.notifications.len())
                })
            }
            "POLL" => client.poll().map(|r| {
                let next = r
                    .next_wakeup_at_ms
                    .map_or("-".to_string(), |t| t.to_string());
                format!("{next} {}", r.outbox_pending)
            }),
            "SEND" => {
                let text = words.next().unwrap();
                client.send_message(CONV.into(), text.as_bytes().to_vec())
            }
            "JOIN" => client.request_to_join(CONV.into()).map(|()| String::new()),
            other => panic!("unknown command {other:?}"),
        };
        match answer {
            Ok(text) => {
                EventLog::note(&var(ENV_DB), &format!("{now} {line} -> {text}"));
                reply(&format!("OK {text}"))
            }
            Err(e) => reply(&format!("ERR {e}")),
        }
    }
}

// ----- the parent's handle -----

/// A running child process.
pub struct MemberProcess {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    pub member_id: Option<String>,
    /// Commands sent whose answer was not read yet.
    outstanding: usize,
}

/// How long a child may take to answer before the test fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

impl MemberProcess {
    /// Starts a child on `paths` with its clock at `now`; does not wait for it to be ready.
    pub fn spawn(paths: &Paths, now: u64) -> MemberProcess {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--exact",
                ENTRY_TEST,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(ENV_DB, &paths.db)
            .env(ENV_INBOX, &paths.inbox)
            .env(ENV_SPOOL, &paths.spool)
            .env(ENV_NOW, now.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(answer) = line.strip_prefix("@@")
                    && tx.send(answer.to_string()).is_err()
                {
                    return;
                }
            }
        });
        MemberProcess {
            child,
            stdin,
            replies: rx,
            member_id: None,
            outstanding: 1, // READY
        }
    }

    /// Waits for the child to have opened its client; returns the member id.
    pub fn wait_ready(&mut self) -> String {
        if let Some(id) = &self.member_id {
            return id.clone();
        }
        let line = self.answer();
        let id = line.strip_prefix("READY ").unwrap().to_string();
        self.member_id = Some(id.clone());
        id
    }

    /// Sends one command line without waiting for the answer.
    pub fn send(&mut self, line: &str) {
        self.wait_ready();
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        self.outstanding += 1;
    }

    /// The next answer; panics if the child died or hangs.
    pub fn answer(&mut self) -> String {
        match self.replies.recv_timeout(ANSWER_TIMEOUT) {
            Ok(line) => {
                self.outstanding -= 1;
                line
            }
            Err(RecvTimeoutError::Timeout) => panic!("the child process did not answer"),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().unwrap();
                panic!("the child process died: {status}")
            }
        }
    }

    /// Sends a command and returns its answer, which must be `OK ...` (the rest is returned).
    pub fn call(&mut self, line: &str) -> String {
        self.send(line);
        let answer = self.answer();
        match answer.strip_prefix("OK") {
            Some(rest) => rest.trim().to_string(),
            None => panic!("{line}: {answer}"),
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix), and reap it. Returns whether the child had
    /// already answered every command (the kill came after the work, not inside it).
    pub fn kill(mut self) -> bool {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader forwards what the child wrote before it died, then hangs up.
        while self.replies.recv_timeout(ANSWER_TIMEOUT).is_ok() {
            self.outstanding = self.outstanding.saturating_sub(1);
        }
        self.outstanding == 0
    }

    /// Asks the child to exit and waits for it.
    pub fn quit(mut self) {
        self.call("QUIT");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "child exited with {status}");
    }
}

/// Writes packets into an inbox as files named by a running counter (their delivery order).
#[derive(Default)]
pub struct InboxWriter {
    next: u64,
}

impl InboxWriter {
    pub fn write(&mut self, inbox: &Path, payload: &[u8]) {
        self.next += 1;
        write_atomically(inbox, &format!("{:012}", self.next), payload).unwrap();
    }
}
