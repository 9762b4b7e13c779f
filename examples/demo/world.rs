//! The demo's world: `witan_testing`'s [`World`] of six clients (one in-process router,
//! a virtual clock, crashed members whose packets are lost) with a listener that records
//! every event for the narration, and [`Demo`], which runs them — delivering packets and
//! polling, and jumping the clock to the earliest wake-up when nothing is in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use witan::client::{
    Clock, ConversationInfo, ConversationState, EventListener, WitanClient, WitanEvent,
};
use witan_testing::{Dir, MemberSpec, VirtualClock, World};

use crate::{CONV, NAMES, START_MS};

/// Every event any member hears, with the virtual time and who heard it.
pub type Log = Arc<Mutex<Vec<(u64, usize, WitanEvent)>>>;

pub struct Recorder {
    me: usize,
    log: Log,
    clock: Arc<VirtualClock>,
}

impl EventListener for Recorder {
    fn on_event(&self, event: WitanEvent) {
        let now = self.clock.now_ms();
        self.log.lock().unwrap().push((now, self.me, event));
    }
}

// ----- the demo world -----

pub struct Demo {
    pub world: World<Recorder>,
    pub log: Log,
    pub printed: usize,
    /// Member id (hex) -> name.
    pub names: BTreeMap<String, String>,
    /// Proposal id -> what it proposes, as learnt from the events.
    pub proposals: BTreeMap<u64, String>,
    /// Each member's epoch and who is in the conversation, as the printed events tell.
    pub epochs: Vec<u64>,
    pub present: BTreeSet<usize>,
}

impl Demo {
    pub fn new() -> Demo {
        let dir = tempfile::Builder::new()
            .prefix("witan-demo-")
            .tempdir()
            .expect("a temporary directory");
        let log: Log = Arc::default();
        let recorders = log.clone();
        let mut world = World::empty(
            Dir::Temp(dir),
            None,
            Box::new(move |me, clock| {
                let (log, clock) = (recorders.clone(), clock.clone());
                Arc::new(Recorder { me, log, clock })
            }),
        );
        world.conv = CONV.to_string();
        world.set_now(START_MS);
        let mut names = BTreeMap::new();
        println!("Work directory: {}", world.dir.path().display());
        for (i, name) in NAMES.iter().enumerate() {
            // Fixed identities keep the story (and the steward order) the same on every run.
            world.add_member(MemberSpec::named(name).with_secret(&[i as u8 + 1; 32]));
            world.open(i);
            let id = world.c(i).member_id();
            println!("  {name:<6} {}  {}", &id[..8], world.path(i));
            names.insert(id, name.to_string());
        }
        Demo {
            world,
            log,
            printed: 0,
            names,
            proposals: BTreeMap::new(),
            epochs: vec![0; NAMES.len()],
            present: BTreeSet::new(),
        }
    }

    pub fn now(&self) -> u64 {
        self.world.now()
    }

    pub fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("{}…", &id[..id.len().min(8)]))
    }

    /// The names of `ids`, in their order.
    pub fn names_of(&self, ids: &[String]) -> String {
        ids.iter()
            .map(|id| self.name(id))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The names of a set of members, in the order of `NAMES`.
    pub fn set_of(&self, ids: &[String]) -> String {
        let mut names: Vec<String> = ids.iter().map(|id| self.name(id)).collect();
        names.sort_by_key(|n| NAMES.iter().position(|m| m == n).unwrap_or(NAMES.len()));
        names.join(", ")
    }

    pub fn index(&self, id: &str) -> usize {
        NAMES
            .iter()
            .position(|n| *n == self.name(id))
            .expect("a demo member")
    }

    pub fn c(&self, i: usize) -> &WitanClient {
        self.world.c(i)
    }

    pub fn info(&self, i: usize) -> ConversationInfo {
        self.world.info(i)
    }

    pub fn crashed(&self, i: usize) -> bool {
        self.world.is_crashed(i)
    }

    /// Hands every packet in flight to every subscribed member that has not crashed.
    pub fn deliver(&mut self) {
        self.world.deliver();
    }

    /// Delivers and polls, jumping the clock to the earliest wake-up, for `ms` of virtual
    /// time (or until nothing is scheduled before then).
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now() + ms;
        loop {
            self.world.deliver();
            let next = self.world.poll_all();
            self.note_proposals();
            self.print_events(false);
            if self.world.net.in_flight() > 0 {
                continue;
            }
            match next {
                Some(at) if at <= self.now() => {}
                Some(at) if at <= end => self.world.set_now(at),
                _ => {
                    self.world.set_now(end);
                    self.world.deliver();
                    self.world.poll_all();
                    self.print_events(true);
                    return;
                }
            }
        }
    }

    /// Members still in the conversation and not crashed.
    pub fn live(&self) -> Vec<usize> {
        (0..NAMES.len())
            .filter(|&i| {
                !self.crashed(i)
                    && self
                        .c(i)
                        .conversation(CONV.into())
                        .ok()
                        .flatten()
                        .is_some_and(|c| {
                            !matches!(
                                c.state,
                                ConversationState::Left | ConversationState::PendingJoin
                            )
                        })
            })
            .collect()
    }

    pub fn chat(&mut self, from: usize, text: &str) {
        self.print_events(true);
        self.c(from)
            .send_message(CONV.into(), text.as_bytes().to_vec())
            .expect("send");
        println!(
            "{}   {:<22} sends \"{text}\"",
            Self::stamp(self.now()),
            NAMES[from]
        );
        self.deliver();
        self.print_events(true);
    }
}
