//! The world: N members, each a `WitanClient` over its own SQLite file (or in memory), on
//! one [`Network`], reading one [`VirtualClock`] through a skew of its own.
//!
//! A member is either *local* (a client in this process, which can be closed and reopened
//! from its file; while closed, its packets wait in a mailbox as a push service keeps them)
//! or *remote* (anything implementing [`Remote`], for example a client driven by a child
//! process). A local member can also be *crashed*: it is neither polled nor delivered to and
//! what it publishes is lost, but its client stays readable.
//!
//! Delivering, polling and running the clock are in `run.rs`; what a test asks of the
//! conversation (form it, read it, check agreement) in `story.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use witan::client::{ClientConfig, ClientRole, EventListener, WitanClient, WitanError, WitanEvent};

use crate::clock::{SkewedClock, VirtualClock};
use crate::links::Links;
use crate::listener::Recorder;
use crate::net::{MemberTransport, Mode, Network, Packet, Tap};

/// Where the members' files live.
pub enum Dir {
    /// Removed when the world is dropped (unless kept with [`Dir::keep`]).
    Temp(tempfile::TempDir),
    /// A directory the caller owns.
    Kept(PathBuf),
}

impl Dir {
    /// A fresh temporary directory.
    pub fn temp() -> Dir {
        Dir::Temp(tempfile::tempdir().expect("a temporary directory"))
    }

    pub fn path(&self) -> &Path {
        match self {
            Dir::Temp(t) => t.path(),
            Dir::Kept(p) => p,
        }
    }

    /// Keeps the directory after the world is gone; returns its path.
    pub fn keep(self) -> PathBuf {
        match self {
            Dir::Temp(t) => t.keep(),
            Dir::Kept(p) => p,
        }
    }
}

/// How one member's client is opened.
#[derive(Clone, Debug, Default)]
pub struct MemberSpec {
    /// Its label; its file is `<name>.db` in the world's directory.
    pub name: String,
    /// `None`: the client makes an identity of its own on first open.
    pub identity_secret: Option<Vec<u8>>,
    /// Encrypts its file (SQLCipher).
    pub database_key: Option<Vec<u8>>,
    /// A `":memory:"` database instead of a file.
    pub in_memory: bool,
}

impl MemberSpec {
    pub fn named(name: &str) -> MemberSpec {
        MemberSpec {
            name: name.to_string(),
            ..MemberSpec::default()
        }
    }

    pub fn with_secret(mut self, secret: &[u8]) -> MemberSpec {
        self.identity_secret = Some(secret.to_vec());
        self
    }
}

/// A member driven outside this process's clients (or in some other special way).
pub trait Remote {
    /// Hands it packets that arrived (every topic), at virtual time `now`.
    fn receive(&mut self, now: u64, packets: Vec<Vec<u8>>);
    /// Polls it at `now`; returns its next wake-up.
    fn poll(&mut self, now: u64) -> Option<u64>;
    /// Packets it published since the last call, in order, as (topic, payload).
    fn take_published(&mut self) -> Vec<(String, Vec<u8>)>;
}

pub enum Slot {
    /// `None` while closed.
    Local(Option<Arc<WitanClient>>),
    Remote(Box<dyn Remote>),
}

/// How many packets delivery rounds handed to `receive`, in how many calls (the bench times
/// the calls itself, around each call).
#[derive(Default, Debug, Clone, Copy)]
pub struct ReceiveStats {
    pub packets: u64,
    pub calls: u64,
}

/// Makes member `i`'s listener (it may read the world's clock).
pub type ListenerFn<L> = Box<dyn Fn(usize, &Arc<VirtualClock>) -> Arc<L>>;

pub struct World<L: EventListener + 'static = Recorder> {
    pub dir: Dir,
    pub net: Arc<Network>,
    pub clock: Arc<VirtualClock>,
    /// The conversation the story helpers act on.
    pub conv: String,
    pub names: Vec<String>,
    pub specs: Vec<MemberSpec>,
    pub slots: Vec<Slot>,
    pub transports: Vec<Arc<MemberTransport>>,
    pub clocks: Vec<Arc<SkewedClock>>,
    pub listeners: Vec<Arc<L>>,
    /// Packets for closed local members, in arrival order.
    pub mailbox: Vec<Vec<Packet>>,
    pub links: Links,
    pub crashed: BTreeSet<usize>,
    pub receive: ReceiveStats,
    new_listener: ListenerFn<L>,
}

impl World<Recorder> {
    /// Local members named `names`, each opened on its own file with an identity of its own.
    pub fn new(names: &[&str]) -> World {
        World::with_keys(names, false)
    }

    /// Like [`World::new`], but each member's file is encrypted with a key of its own.
    pub fn new_encrypted(names: &[&str]) -> World {
        World::with_keys(names, true)
    }

    fn with_keys(names: &[&str], encrypted: bool) -> World {
        let mut w = World::empty(Dir::temp(), None, Box::new(|_, _| Arc::default()));
        for (i, name) in names.iter().enumerate() {
            let mut spec = MemberSpec::named(name);
            if encrypted {
                spec.database_key = Some(vec![0xa0 ^ i as u8; 32]);
            }
            let i = w.add_member(spec);
            w.open(i);
        }
        w
    }

    /// The events member `i` heard so far.
    pub fn events(&self, i: usize) -> Vec<WitanEvent> {
        self.listeners[i].events()
    }
}

impl<L: EventListener + 'static> World<L> {
    /// A world without members; `tap` sees every packet published, `listener` makes each
    /// member's listener.
    pub fn empty(dir: Dir, tap: Option<Arc<dyn Tap>>, listener: ListenerFn<L>) -> World<L> {
        World {
            dir,
            net: Arc::new(tap.map_or_else(Network::default, Network::with_tap)),
            clock: Arc::new(VirtualClock::default()),
            conv: crate::CONV.to_string(),
            names: Vec::new(),
            specs: Vec::new(),
            slots: Vec::new(),
            transports: Vec::new(),
            clocks: Vec::new(),
            listeners: Vec::new(),
            mailbox: Vec::new(),
            links: Links::default(),
            crashed: BTreeSet::new(),
            receive: ReceiveStats::default(),
            new_listener: listener,
        }
    }

    fn add_slot(&mut self, spec: MemberSpec, slot: Slot) -> usize {
        let i = self.slots.len();
        self.names.push(spec.name.clone());
        self.specs.push(spec);
        self.slots.push(slot);
        let transport = MemberTransport::new(self.net.clone(), i);
        self.transports.push(Arc::new(transport));
        self.clocks
            .push(Arc::new(SkewedClock::new(self.clock.clone(), 0)));
        self.listeners.push((self.new_listener)(i, &self.clock));
        self.mailbox.push(Vec::new());
        i
    }

    /// Adds a local member, closed; returns its index.
    pub fn add_member(&mut self, spec: MemberSpec) -> usize {
        self.add_slot(spec, Slot::Local(None))
    }

    /// Adds a remote member; returns its index.
    pub fn add_remote(&mut self, name: &str, remote: Box<dyn Remote>) -> usize {
        self.add_slot(MemberSpec::named(name), Slot::Remote(remote))
    }

    pub fn n(&self) -> usize {
        self.slots.len()
    }

    pub fn remote(&mut self, i: usize) -> &mut dyn Remote {
        match &mut self.slots[i] {
            Slot::Remote(r) => r.as_mut(),
            Slot::Local(_) => panic!("{} is local", self.names[i]),
        }
    }

    /// Member `i`'s database path.
    pub fn path(&self, i: usize) -> String {
        if self.specs[i].in_memory {
            return ":memory:".to_string();
        }
        let file = format!("{}.db", self.names[i]);
        self.dir.path().join(file).to_string_lossy().into_owned()
    }

    /// Opens (or reopens) local member `i`'s client.
    pub fn try_open(&mut self, i: usize) -> Result<(), WitanError> {
        self.try_open_as(i, None)
    }

    /// Opens member `i` in the notification-extension role, as a push wakes a sleeping
    /// phone: it gets packets and fires its deadlines like an app until it is closed.
    pub fn open_extension(&mut self, i: usize) {
        let role = Some(ClientRole::NotificationExtension);
        if let Err(e) = self.try_open_as(i, role) {
            panic!("{} does not open: {e}", self.names[i]);
        }
    }

    fn try_open_as(&mut self, i: usize, role: Option<ClientRole>) -> Result<(), WitanError> {
        self.try_open_by(i, role, |open| open())
    }

    /// Opens member `i`'s client by handing the opening to `run`, which calls it — on a
    /// thread of the caller's choosing (the bench opens each member on the thread that
    /// later runs its calls, so that the client's memory comes from that thread's heap).
    pub fn try_open_by(
        &mut self,
        i: usize,
        role: Option<ClientRole>,
        run: impl FnOnce(
            &(dyn Fn() -> Result<Arc<WitanClient>, WitanError> + Sync),
        ) -> Result<Arc<WitanClient>, WitanError>,
    ) -> Result<(), WitanError> {
        let spec = &self.specs[i];
        let config = ClientConfig {
            database_path: self.path(i),
            identity_secret: spec.identity_secret.clone(),
            database_key: spec.database_key.clone(),
            role,
        };
        let (transport, listener, clock) = (
            self.transports[i].clone(),
            self.listeners[i].clone(),
            self.clocks[i].clone(),
        );
        let open = || {
            WitanClient::open_with_clock(
                config.clone(),
                transport.clone(),
                listener.clone(),
                clock.clone(),
            )
        };
        let client = run(&open)?;
        self.slots[i] = Slot::Local(Some(client));
        Ok(())
    }

    pub fn open(&mut self, i: usize) {
        if let Err(e) = self.try_open(i) {
            panic!("{} does not open: {e}", self.names[i]);
        }
    }

    /// Drops member `i`'s client: packets for it go to its mailbox until it is opened again.
    pub fn close(&mut self, i: usize) {
        self.slots[i] = Slot::Local(None);
    }

    /// Kills member `i`'s process: its client is dropped abandoned (`WitanClient::abandon`),
    /// so nothing it held only in memory reaches its database (as when the system kills an
    /// app). Packets for it go to its mailbox until it is opened again.
    pub fn kill(&mut self, i: usize) {
        if let Slot::Local(client) = &mut self.slots[i]
            && let Some(client) = client.take()
        {
            client.abandon();
        }
    }

    /// Reopens a closed member without handing it its mailbox yet.
    pub fn reopen_quietly(&mut self, i: usize) {
        self.open(i);
    }

    /// Reopens a closed member and hands it the packets that arrived meanwhile.
    pub fn reopen(&mut self, i: usize) {
        self.open(i);
        self.deliver_mailbox(i);
    }

    /// Every member's publishes fail from now on (`false`: they work again); what the
    /// clients could not publish waits in their outboxes.
    pub fn set_network_down(&self, down: bool) {
        let mode = if down { Mode::Refuse } else { Mode::Normal };
        for t in &self.transports {
            t.set_mode(mode);
        }
    }

    /// Member `i`'s process stops: it is no longer polled or delivered to, and what it
    /// publishes is lost; its client stays readable.
    pub fn crash(&mut self, i: usize) {
        self.crashed.insert(i);
        self.transports[i].set_mode(Mode::Swallow);
    }

    pub fn is_crashed(&self, i: usize) -> bool {
        self.crashed.contains(&i)
    }

    /// Member `i`'s open client.
    pub fn client(&self, i: usize) -> Option<&Arc<WitanClient>> {
        match &self.slots[i] {
            Slot::Local(Some(c)) => Some(c),
            _ => None,
        }
    }

    /// Member `i`'s open client (panics when it is closed or remote).
    pub fn c(&self, i: usize) -> &WitanClient {
        match self.client(i) {
            Some(c) => c,
            None => panic!("{} is not an open local client", self.names[i]),
        }
    }

    /// The open local clients, with their index.
    pub fn open_clients(&self) -> impl Iterator<Item = (usize, &Arc<WitanClient>)> {
        (0..self.n()).filter_map(|i| self.client(i).map(|c| (i, c)))
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    pub fn set_now(&self, at: u64) {
        self.clock.set(at);
    }

    /// Makes member `i`'s clock run `offset_ms` ahead of the shared clock (behind if negative).
    pub fn set_offset(&self, i: usize, offset_ms: i64) {
        self.clocks[i].set_offset(offset_ms);
    }

    /// Packets of member `i` are lost from now on (`false`: they flow again).
    pub fn mute(&self, i: usize, muted: bool) {
        let mode = if muted { Mode::Swallow } else { Mode::Normal };
        self.transports[i].set_mode(mode);
    }

    /// Packets from `from` to `to` are lost from now on.
    pub fn cut(&mut self, from: usize, to: usize) {
        self.links.cut.insert((from, to));
    }

    pub fn uncut(&mut self, from: usize, to: usize) {
        self.links.cut.remove(&(from, to));
    }

    /// A partition between `side` and everyone else: packets across it wait until `heal`.
    pub fn partition(&mut self, side: &[usize]) {
        self.links.partition(self.slots.len(), side);
    }

    /// Ends every partition; what waited is delivered with the next `deliver`.
    pub fn heal(&mut self) {
        let now = self.now();
        self.links.heal(now);
    }

    /// Every delivery from now on waits `delay(from, to, seq)` ms.
    pub fn set_delay(&mut self, delay: Option<crate::links::DelayFn>) {
        self.links.delay = delay;
    }

    /// The index of the open local member with id `member_id`.
    pub fn index_of_member(&self, member_id: &str) -> Option<usize> {
        self.open_clients()
            .find(|(_, c)| c.member_id() == member_id)
            .map(|(i, _)| i)
    }
}
