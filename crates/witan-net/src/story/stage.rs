//! The story's stage: the node and member processes, and what the story does with them —
//! commands and their answers, the members' votes (every member approves every proposal
//! except one that removes itself, as its user would), status checks, and waiting, always
//! with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::procs::{Echo, Proc, Program};
use super::render::Names;
use crate::behaviour::is_loopback;

/// The conversation of the story.
pub const CONVERSATION: &str = "garden";
/// How long one command may take to answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);
/// How long a process may take to start.
const START_LIMIT: Duration = Duration::from_secs(30);

pub struct StageConfig {
    pub node: Program,
    pub member: Program,
    /// Where the databases go (one per process).
    pub dir: PathBuf,
    /// Shows the processes' lines as they come (`None`: quiet).
    pub echo: Option<Echo>,
    /// Member id -> name, filled as members start (the echo uses it).
    pub names: Arc<Mutex<Names>>,
}

pub struct Stage {
    config: StageConfig,
    pub node_address: String,
    node: Option<Proc>,
    members: BTreeMap<String, Proc>,
    /// Name -> member id.
    pub ids: BTreeMap<String, String>,
    voted: BTreeSet<(String, u64)>,
    scanned: BTreeMap<String, usize>,
    /// Every process started (for the check that none is left behind).
    pub pids: Vec<u32>,
    /// Every address a process listened on, dialled or was connected through.
    pub addresses: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Stage {
    pub fn new(config: StageConfig) -> Stage {
        Stage {
            config,
            node_address: String::new(),
            node: None,
            members: BTreeMap::new(),
            ids: BTreeMap::new(),
            voted: BTreeSet::new(),
            scanned: BTreeMap::new(),
            pids: Vec::new(),
            addresses: Vec::new(),
        }
    }

    fn path(&self, file: &str) -> String {
        self.config.dir.join(file).to_string_lossy().into_owned()
    }

    pub fn start_node(&mut self) -> Result<(), String> {
        let args: Vec<String> = ["--db", &self.path("node.db"), "--until-stdin-closes"]
            .map(String::from)
            .to_vec();
        let node = Proc::spawn("node", &self.config.node, &args, self.config.echo.clone())?;
        self.pids.push(node.pid());
        let (_, line) = wait_line(&node, 0, START_LIMIT, |v| {
            v["node"] == "listening" || v.get("error").is_some()
        })?;
        self.node_address = line["address"]
            .as_str()
            .ok_or_else(|| format!("the node did not start: {line}"))?
            .to_string();
        self.node = Some(node);
        Ok(())
    }

    /// Starts (or restarts, on its file) a member and waits until it is connected.
    pub fn start_member(&mut self, name: &str) -> Result<(), String> {
        let args: Vec<String> = [
            "--db",
            &self.path(&format!("{name}.db")),
            "--node",
            &self.node_address,
            "--name",
            name,
        ]
        .map(String::from)
        .to_vec();
        let member = Proc::spawn(name, &self.config.member, &args, self.config.echo.clone())?;
        self.pids.push(member.pid());
        let (_, ready) = wait_line(&member, 0, START_LIMIT, |v| {
            v.get("ready").is_some() || v.get("error").is_some()
        })?;
        let id = ready["ready"]["member_id"]
            .as_str()
            .ok_or_else(|| format!("{name} did not start: {ready}"))?
            .to_string();
        wait_line(&member, 0, START_LIMIT, |v| v["net"] == "connected")?;
        lock(&self.config.names).insert(id.clone(), name.to_string());
        self.ids.insert(name.to_string(), id);
        self.scanned.insert(name.to_string(), 0);
        self.members.insert(name.to_string(), member);
        Ok(())
    }

    fn member(&mut self, name: &str) -> Result<&mut Proc, String> {
        self.members
            .get_mut(name)
            .ok_or_else(|| format!("{name} is not running"))
    }

    /// Sends a command and returns its answer (`ok`, `error` or `status` line).
    pub fn command(&mut self, name: &str, line: &str) -> Result<Value, String> {
        let member = self.member(name)?;
        let from = member.len();
        member.send(line)?;
        let (_, answer) = wait_line(member, from, ANSWER_LIMIT, |v| {
            v.get("ok").is_some() || v.get("error").is_some() || v.get("status").is_some()
        })?;
        if let Some(e) = answer.get("error") {
            return Err(format!("{name}: {line:?} failed: {e}"));
        }
        Ok(answer)
    }

    pub fn status(&mut self, name: &str) -> Result<Value, String> {
        let answer = self.command(name, &format!("status {CONVERSATION}"))?;
        Ok(answer["status"].clone())
    }

    /// The sum of `field` over the `net` lines of kind `kind` a running member printed.
    pub fn net_total(&self, name: &str, kind: &str, field: &str) -> u64 {
        self.members.get(name).map_or(0, |p| {
            p.lines_from(0)
                .iter()
                .filter(|l| l["net"] == kind)
                .filter_map(|l| l[field].as_u64())
                .sum()
        })
    }

    /// SIGKILL: the member gets no chance to finish anything.
    pub fn kill(&mut self, name: &str) -> Result<(), String> {
        let mut member = self
            .members
            .remove(name)
            .ok_or_else(|| format!("{name} is not running"))?;
        member.kill();
        self.harvest(&member);
        Ok(())
    }

    /// Answers the vote requests each member printed since the last look.
    fn answer_votes(&mut self) -> Result<(), String> {
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            let from = self.scanned.get(&name).copied().unwrap_or(0);
            let member = self.member(&name)?;
            let lines = member.lines_from(from);
            self.scanned.insert(name.clone(), from + lines.len());
            // A proposal already resolved (this batch included) cannot be voted on.
            let resolved: BTreeSet<u64> = lines
                .iter()
                .filter(|l| l["event"] == "proposal_resolved")
                .filter_map(|l| l["proposal"].as_u64())
                .collect();
            for line in lines.iter().filter(|l| l["event"] == "vote_requested") {
                let Some(proposal) = line["proposal"].as_u64() else {
                    continue;
                };
                if resolved.contains(&proposal) || !self.voted.insert((name.clone(), proposal)) {
                    continue;
                }
                let own = self.ids.get(&name).map(String::as_str);
                let approve = line["target"].as_str() != own;
                let vote = format!(
                    "vote {CONVERSATION} {proposal} {}",
                    if approve { "yes" } else { "no" }
                );
                // Waited for, so its answer is not taken for the next command's. A vote
                // that is no longer possible (the proposal resolved meanwhile) is not a
                // failure of the story.
                let _ = self.command(&name, &vote);
            }
        }
        Ok(())
    }

    /// Waits until `done` holds, answering votes meanwhile; fails after `limit`.
    pub fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&mut Stage) -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            self.answer_votes()?;
            if done(self)? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("timed out after {limit:?} waiting until {what}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The first member's status when `names` all agree: Working, with the same epoch,
    /// members (there are `count`), stewards and epoch authenticator, no message twice, and
    /// each history a suffix of the first member's (a member that joined later has only
    /// the messages since it joined). List a member that was there from the start first.
    pub fn agreement(&mut self, names: &[&str], count: usize) -> Result<Option<Value>, String> {
        let mut first: Option<(Value, Vec<Value>)> = None;
        for name in names {
            let s = self.status(name)?;
            let ids: Vec<Value> = s["messages"]
                .as_array()
                .map(|m| m.iter().map(|m| m["message_id"].clone()).collect())
                .unwrap_or_default();
            let unique: BTreeSet<String> = ids.iter().map(Value::to_string).collect();
            if unique.len() != ids.len() {
                return Err(format!("{name} holds a message twice: {s}"));
            }
            if s["state"] != "Working"
                || s["members"].as_array().map(Vec::len) != Some(count)
                || s["authenticator"].is_null()
            {
                return Ok(None);
            }
            let key = |v: &Value| {
                [
                    &v["epoch"],
                    &v["members"],
                    &v["stewards"],
                    &v["authenticator"],
                ]
                .map(Clone::clone)
            };
            match &first {
                None => first = Some((s, ids)),
                Some((f, history)) if key(f) == key(&s) && history.ends_with(&ids) => {}
                Some(_) => return Ok(None),
            }
        }
        Ok(first.map(|(s, _)| s))
    }

    /// Stops everyone (members first), collects the addresses and checks they are loopback.
    pub fn finish(&mut self) -> Result<(), String> {
        let members = std::mem::take(&mut self.members);
        for (_, mut member) in members {
            member.close(Duration::from_secs(5));
            self.harvest(&member);
        }
        if let Some(mut node) = self.node.take() {
            node.close(Duration::from_secs(5));
            self.harvest(&node);
        }
        match self
            .addresses
            .iter()
            .find(|a| !a.parse().is_ok_and(|a| is_loopback(&a)))
        {
            Some(a) => Err(format!("an address outside loopback was used: {a}")),
            None => Ok(()),
        }
    }

    fn harvest(&mut self, p: &Proc) {
        for line in p.lines_from(0) {
            for field in [&line["address"], &line["ready"]["listen"]] {
                match field {
                    Value::String(a) => self.addresses.push(a.clone()),
                    Value::Array(all) => self
                        .addresses
                        .extend(all.iter().filter_map(|a| a.as_str().map(String::from))),
                    _ => {}
                }
            }
        }
    }
}

/// Waits for a line of `p` from index `from` on that `matches`.
fn wait_line(
    p: &Proc,
    from: usize,
    limit: Duration,
    matches: impl Fn(&Value) -> bool,
) -> Result<(usize, Value), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = p.find(from, &matches) {
            return Ok(found);
        }
        if Instant::now() > deadline {
            let tail: Vec<String> = p
                .lines_from(p.len().saturating_sub(5))
                .iter()
                .map(Value::to_string)
                .collect();
            return Err(format!(
                "{}: no expected line within {limit:?}; last lines: {}",
                p.name,
                tail.join(" | ")
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
