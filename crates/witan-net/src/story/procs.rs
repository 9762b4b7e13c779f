//! Child processes for the story: each one's output lines are parsed as JSON and logged
//! (with the time they were read), optionally shown as they come, and the process is killed
//! when its handle is dropped — on success, on failure and on a panic — so none is left
//! behind.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Value, json};

/// How to start one of the programs: an executable and the arguments that come first
/// (the story binary runs itself as `witan-story node …`).
#[derive(Debug, Clone)]
pub struct Program {
    pub path: PathBuf,
    pub prefix: Vec<String>,
}

/// Where lines go as they are read (the story binary prints them; the test keeps quiet).
pub type Echo = Arc<dyn Fn(&str, &Value) + Send + Sync>;

/// Most lines kept per process (older ones are dropped; a story prints a few hundred).
const MAX_LINES: usize = 100_000;

pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<Mutex<Vec<(Instant, Value)>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proc {
    pub fn spawn(
        name: &str,
        program: &Program,
        args: &[String],
        echo: Option<Echo>,
    ) -> Result<Proc, String> {
        let mut child = Command::new(&program.path)
            .args(&program.prefix)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", program.path.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let outputs: [(Option<Box<dyn std::io::Read + Send>>, bool); 2] = [
            (child.stdout.take().map(|s| Box::new(s) as _), false),
            (child.stderr.take().map(|s| Box::new(s) as _), true),
        ];
        for (output, is_stderr) in outputs {
            let Some(output) = output else { continue };
            let (log, echo, name) = (log.clone(), echo.clone(), name.to_string());
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines() {
                    let Ok(line) = line else { break };
                    let value = if is_stderr {
                        json!({"stderr": line})
                    } else {
                        serde_json::from_str(&line).unwrap_or_else(|_| json!({"raw": line}))
                    };
                    if let Some(echo) = &echo {
                        echo(&name, &value);
                    }
                    let mut log = lock(&log);
                    if log.len() < MAX_LINES {
                        log.push((Instant::now(), value));
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(Proc {
            name: name.to_string(),
            child,
            stdin,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: input already closed", self.name))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("{}: cannot send {line:?}: {e}", self.name))
    }

    /// Lines read so far.
    pub fn len(&self) -> usize {
        lock(&self.log).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lines from index `from` on.
    pub fn lines_from(&self, from: usize) -> Vec<Value> {
        lock(&self.log)
            .iter()
            .skip(from)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The first line from index `from` on that `matches`, with its index.
    pub fn find(&self, from: usize, matches: impl Fn(&Value) -> bool) -> Option<(usize, Value)> {
        lock(&self.log)
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, (_, v))| matches(v))
            .map(|(i, (_, v))| (i, v.clone()))
    }

    /// Whether the process has ended.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin (members and the node then stop by themselves) and waits a moment for
    /// the process to end before killing it.
    pub fn close(&mut self, grace: std::time::Duration) {
        self.stdin = None;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
