//! The world: N members, each a `WitanClient` over its own SQLite file, and every call the
//! simulator makes on them.
//!
//! After each call the world drains what the call produced — events (into the ledger),
//! published packets (into batches on the network) — refreshes the member's cached view
//! (conversation info and MLS epoch authenticator) and runs the per-step fork check. A crash
//! drops the client (closing its database) and a restart reopens it from the file; an
//! offline member keeps its client but is neither polled nor delivered to. Both come back
//! through `handle_wakeup` with the backlog their mailbox collected.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};
use witan::client::{
    ClientConfig, ConversationInfo, ConversationState, InboundPacket, WitanClient, WitanError,
};

use super::net::{
    Batch, Ev, MODE_NORMAL, MODE_REFUSE, MODE_SWALLOW, MemberClock, Recorder, SimTransport,
};
use super::{R, Sim};

pub const CONV: &str = "sim-conversation";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Down {
    Up,
    Offline,
    Crashed,
}

/// What `invoke` hands back: the call's result and the batches it published.
pub type Invoked<T> = (Result<T, WitanError>, Vec<Rc<Batch>>);

/// What a byzantine member does.
#[derive(Clone, Debug, Default)]
pub struct Byz {
    pub silent: bool,
    pub bogus: bool,
    pub replay: bool,
    pub equivocate: bool,
    /// Runs the byzantine-member family's attacks (`byzantine::Attack`).
    pub malicious: bool,
    /// Activated once it is a member and the chaos phase runs.
    pub active: bool,
    /// (epoch, round) it already equivocated in.
    pub equivocated: Option<(u64, u32)>,
    pub pool: super::byzantine::Pool,
}

/// One continuous membership of a member (a removal ends it; a re-join starts another).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tenure {
    pub id: u64,
    pub start_epoch: u64,
}

/// The member's state as of its last call.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub info: Option<ConversationInfo>,
    pub auth: Vec<u8>,
    pub tenure: Option<Tenure>,
}

impl View {
    pub fn in_group(&self) -> bool {
        self.info.as_ref().is_some_and(|i| {
            !matches!(
                i.state,
                ConversationState::PendingJoin | ConversationState::Left
            )
        })
    }
    pub fn epoch(&self) -> u64 {
        self.info.as_ref().map_or(0, |i| i.epoch)
    }
    pub fn state(&self) -> Option<ConversationState> {
        self.info.as_ref().map(|i| i.state)
    }
    pub fn member_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .info
            .iter()
            .flat_map(|i| i.members.iter().map(|m| m.member_id.clone()))
            .collect();
        ids.sort();
        ids
    }
}

pub struct Member {
    pub index: usize,
    pub secret: [u8; 32],
    pub id: String,
    pub path: String,
    pub client: Option<Arc<WitanClient>>,
    pub transport: Arc<SimTransport>,
    pub listener: Arc<Recorder>,
    pub clock: Arc<MemberClock>,
    pub down: Down,
    /// The next call fails to publish and the process dies after it.
    pub dying: bool,
    pub mailbox: Vec<Rc<Batch>>,
    pub wake_at: Option<u64>,
    pub spins: u32,
    pub byz: Option<Byz>,
    pub view: View,
}

impl Member {
    pub fn honest(&self) -> bool {
        self.byz.is_none()
    }
    pub fn up(&self) -> bool {
        self.down == Down::Up && self.client.is_some()
    }
    pub fn config(&self) -> ClientConfig {
        ClientConfig {
            database_path: self.path.clone(),
            identity_secret: Some(self.secret.to_vec()),
            database_key: None,
            role: None,
        }
    }
}

/// The identity secret of member `i` (fixed, so member ids are the same in every run).
pub use witan_testing::secret_of;

impl Sim {
    pub fn open_client(&mut self, m: usize) -> R<()> {
        let member = &self.members[m];
        let client = WitanClient::open_with_clock(
            member.config(),
            member.transport.clone(),
            member.listener.clone(),
            member.clock.clone(),
        )
        .map_err(|e| self.violation("open", format!("m{m} cannot open its database: {e}")))?;
        self.members[m].client = Some(client);
        Ok(())
    }

    /// Runs `f` on member `m`'s client and processes what it produced. `None` when the
    /// member has no open client.
    pub fn invoke<T>(
        &mut self,
        m: usize,
        label: &str,
        f: impl FnOnce(&WitanClient) -> Result<T, WitanError>,
    ) -> R<Option<Invoked<T>>> {
        let Some(client) = self.members[m].client.clone() else {
            return Ok(None);
        };
        let dying = std::mem::take(&mut self.members[m].dying);
        if dying {
            self.members[m]
                .transport
                .mode
                .store(MODE_REFUSE, Ordering::SeqCst);
        }
        self.stats.calls += 1;
        let result = f(&client);
        for line in super::logs::drain() {
            let line = self.shorten(&line);
            self.tr(|| format!("m{m}   · {line}"));
        }
        if let Err(e @ (WitanError::Internal { .. } | WitanError::Storage { .. })) = &result {
            return Err(self.violation("error", format!("{label} on m{m} failed: {e}")));
        }
        if let Err(e) = &result {
            let e = e.to_string();
            self.tr(|| format!("m{m} {label}: refused: {e}"));
        }
        let batches = self.after_call(m, &client)?;
        drop(client);
        if self.members[m].byz.as_ref().is_some_and(|b| b.equivocate) {
            self.maybe_equivocate(m)?;
        }
        if dying {
            self.crash_now(m)?;
        }
        Ok(Some((result, batches)))
    }

    fn after_call(&mut self, m: usize, client: &WitanClient) -> R<Vec<Rc<Batch>>> {
        self.refresh_view(m, client)?;
        let events = self.members[m].listener.take();
        let mark = self.trace.as_ref().map_or(0, Vec::len);
        for e in events {
            self.on_event(m, e)?;
        }
        // Events of one call may come in an order that follows proposal ids (random bytes):
        // the trace shows them sorted, so two runs of a seed print the same lines.
        if let Some(t) = self.trace.as_mut() {
            t[mark..].sort();
        }
        let published = self.sink.take_all();
        let mut batches: Vec<Rc<Batch>> = Vec::new();
        for witan_testing::Packet {
            from,
            topic,
            payload,
            ..
        } in published
        {
            match batches.last_mut() {
                Some(b) if b.topic == topic && b.from == from => {
                    if let Some(b) = Rc::get_mut(b) {
                        b.push(payload);
                    }
                }
                _ => batches.push(Rc::new(Batch::new(from, topic, vec![payload], false))),
            }
        }
        for b in &batches {
            self.trace_batch(b);
            self.route(b.clone());
        }
        self.check_fork(m)?;
        Ok(batches)
    }

    /// The engine state of member `m` (through its client; `None` when it has no client or
    /// no conversation).
    pub fn engine_state(&mut self, m: usize) -> R<Option<witan::protocol::Conversation>> {
        let Some(client) = self.members[m].client.clone() else {
            return Ok(None);
        };
        client
            .engine_state(CONV.into())
            .map_err(|e| self.violation("error", format!("m{m} engine_state(): {e}")))
    }

    /// Traces what a call published: the kinds of its packets (`+` if addressed to one
    /// member). They follow from the order of calls, never from random bytes, so two runs of
    /// a seed that diverge show it here first; sorted, as their order within the call may
    /// follow proposal digests (votes cast for several proposals at once).
    fn trace_batch(&mut self, b: &Batch) {
        let mut kinds: Vec<String> = b
            .packets
            .iter()
            .map(|p| match witan_wire::decode_envelope(p) {
                Ok(e) if e.recipient.is_empty() => e.kind.to_string(),
                Ok(e) => format!("{}+", e.kind),
                Err(_) => "?".into(),
            })
            .collect();
        kinds.sort();
        let topic = b.topic.rsplit('/').next().unwrap_or_default().to_string();
        let from = b.from;
        self.tr(|| format!("m{from} publishes on {topic}: [{}]", kinds.join(" ")));
    }

    /// Replaces short member ids (the engine logs the first 8 hex digits) by labels.
    fn shorten(&self, line: &str) -> String {
        let mut line = line.to_string();
        for (i, m) in self.members.iter().enumerate() {
            line = line.replace(&m.id[..8], &format!("m{i}"));
        }
        line
    }

    fn refresh_view(&mut self, m: usize, client: &WitanClient) -> R<()> {
        let info = client
            .conversation(CONV.into())
            .map_err(|e| self.violation("error", format!("m{m} conversation(): {e}")))?;
        let before = self.members[m].view.clone();
        let mut view = View {
            info,
            auth: Vec::new(),
            tenure: None,
        };
        if view.in_group() {
            let same_epoch = before.in_group() && before.epoch() == view.epoch();
            view.auth = if same_epoch && !before.auth.is_empty() {
                before.auth.clone()
            } else {
                client.epoch_authenticator(CONV.into()).map_err(|e| {
                    self.violation("error", format!("m{m} epoch_authenticator(): {e}"))
                })?
            };
            view.tenure = match before.tenure {
                Some(t) => Some(t),
                None => {
                    self.next_tenure += 1;
                    Some(Tenure {
                        id: self.next_tenure,
                        start_epoch: view.epoch(),
                    })
                }
            };
        }
        if before.state() != view.state() || before.epoch() != view.epoch() {
            let (state, epoch, n) = (view.state(), view.epoch(), view.member_ids().len());
            self.tr(|| format!("m{m} now {state:?} epoch {epoch} ({n} members)"));
        }
        self.members[m].view = view;
        Ok(())
    }

    /// Puts a batch on the network: one delivery per subscriber, each with its own fate.
    pub fn route(&mut self, batch: Rc<Batch>) {
        let now = self.now();
        for to in self.sink.subscribers(&batch.topic) {
            self.send_to(to, batch.clone(), now);
        }
    }

    pub fn send_to(&mut self, to: usize, batch: Rc<Batch>, now: u64) {
        let delay = self.net.delay(&mut self.rng_net);
        self.queue.push(
            now + delay,
            Ev::Deliver {
                to,
                batch: batch.clone(),
                attempt: 0,
            },
        );
        if self.net.hostile && self.rng_net.chance(self.net.dup_chance) {
            let again = self.net.delay(&mut self.rng_net);
            self.queue.push(
                now + again,
                Ev::Deliver {
                    to,
                    batch,
                    attempt: 1,
                },
            );
        }
    }

    /// A delivery is due.
    pub fn deliver(&mut self, to: usize, batch: Rc<Batch>, attempt: u32) -> R<()> {
        let now = self.now();
        if let Some(p) = &self.partition
            && p.separates(batch.from, to)
        {
            self.held.push((to, batch));
            return Ok(());
        }
        if self.members[to].down != Down::Up {
            self.members[to].mailbox.push(batch);
            return Ok(());
        }
        if self.net.lost(&mut self.rng_net, attempt) {
            let retry = self.net.retry(&mut self.rng_net);
            self.stats.dropped += 1;
            let attempt = attempt + 1;
            self.queue
                .push(now + retry, Ev::Deliver { to, batch, attempt });
            return Ok(());
        }
        self.handle(to, vec![batch])
    }

    /// Hands batches to member `to`: half the time the push path (`handle_wakeup`), otherwise
    /// `receive` followed by one poll 20 ms later for everything that arrived meanwhile.
    pub fn handle(&mut self, to: usize, batches: Vec<Rc<Batch>>) -> R<()> {
        let packets: Vec<InboundPacket> = batches
            .iter()
            .flat_map(|b| {
                b.packets.iter().map(|p| InboundPacket {
                    topic: b.topic.clone(),
                    payload: p.clone(),
                })
            })
            .collect();
        let count = packets.len();
        let use_receive = self.rng_net.chance(0.5);
        let from: Vec<usize> = batches.iter().map(|b| b.from).collect();
        self.stats.deliveries += count as u64;
        if use_receive {
            let Some((result, _)) = self.invoke(to, "receive", |c| c.receive(packets))? else {
                return Ok(());
            };
            if let Ok(r) = result {
                self.stats.rejected += u64::from(r.rejected);
                self.tr(|| {
                    format!(
                        "m{to} <- {count} from {from:?}: {}a {}d {}r",
                        r.accepted, r.duplicates, r.rejected
                    )
                });
            }
            let now = self.now();
            // An app that got packets in the foreground polls shortly after (coalesced).
            let soon = now + 20;
            if self.members[to].wake_at.is_none_or(|w| w > soon) {
                self.set_wake(to, Some(soon), true);
            }
        } else {
            let Some((result, _)) =
                self.invoke(to, "handle_wakeup", |c| c.handle_wakeup(packets))?
            else {
                return Ok(());
            };
            if let Ok(r) = result {
                let shown = r.notifications.len();
                self.tr(|| format!("m{to} <- {count} from {from:?} (push, {shown} shown)"));
                self.set_wake(to, r.next_wakeup_at_ms, false);
            }
        }
        self.note_stale(to, &batches);
        Ok(())
    }

    /// Member `m` asked to run at `at` (its local time; `global` when already converted).
    pub fn set_wake(&mut self, m: usize, at: Option<u64>, global: bool) {
        let now = self.now();
        let Some(at) = at else {
            self.members[m].wake_at = None;
            return;
        };
        let mut at = if global {
            at
        } else {
            self.members[m].clock.to_global(at)
        };
        if at <= now && !global {
            // Everything due was just fired: asking to run now again is a spin.
            self.members[m].spins += 1;
            at = now + 1;
        } else if !global {
            self.members[m].spins = 0;
        }
        if self.members[m].wake_at == Some(at) {
            return;
        }
        self.members[m].wake_at = Some(at);
        self.queue.push(at.max(now), Ev::Wake { member: m, at });
    }

    pub fn poll(&mut self, m: usize) -> R<()> {
        if self.members[m].spins > 100 {
            return Err(self.violation(
                "liveness",
                format!("m{m}: poll keeps asking to run again at once"),
            ));
        }
        if let Some((Ok(report), _)) = self.invoke(m, "poll", |c| c.poll())? {
            self.set_wake(m, report.next_wakeup_at_ms, false);
        }
        Ok(())
    }

    /// Drops the client as a killed process would (nothing it held only in memory is
    /// written); it restarts from its file later.
    pub fn crash_now(&mut self, m: usize) -> R<()> {
        if let Some(client) = self.members[m].client.take() {
            client.abandon();
        }
        self.members[m].down = Down::Crashed;
        self.members[m].wake_at = None;
        let downtime = if self.members[m].transport.mode.load(Ordering::SeqCst) == MODE_REFUSE
            && !self.mix.slow_restart
        {
            // Killed mid-call: its packets wait in the outbox until it restarts.
            self.rng_scn.range(50, 300)
        } else {
            self.rng_scn.range(200, 20_000)
        };
        let at = self.now() + downtime;
        self.queue.push(at, Ev::Restart { member: m });
        self.tr(|| format!("m{m} CRASHED (restart in {downtime} ms)"));
        Ok(())
    }

    /// Reopens a crashed member from its file, or brings an offline one back, and hands it
    /// the backlog in one wake-up.
    pub fn come_back(&mut self, m: usize) -> R<()> {
        match self.members[m].down {
            Down::Up => return Ok(()),
            Down::Crashed => {
                let mode = if self.members[m]
                    .byz
                    .as_ref()
                    .is_some_and(|b| b.silent && b.active)
                {
                    MODE_SWALLOW
                } else {
                    MODE_NORMAL
                };
                self.members[m].transport.mode.store(mode, Ordering::SeqCst);
                self.open_client(m)?;
            }
            Down::Offline => {}
        }
        self.members[m].down = Down::Up;
        let backlog = std::mem::take(&mut self.members[m].mailbox);
        let n: usize = backlog.iter().map(|b| b.packets.len()).sum();
        self.tr(|| format!("m{m} BACK with a backlog of {n} packets"));
        if backlog.is_empty() {
            return self.poll(m);
        }
        // Push services deliver a backlog in pages.
        for page in backlog.chunks(64) {
            let Some((result, _)) = self.invoke(m, "handle_wakeup", |c| {
                c.handle_wakeup(
                    page.iter()
                        .flat_map(|b| {
                            b.packets.iter().map(|p| InboundPacket {
                                topic: b.topic.clone(),
                                payload: p.clone(),
                            })
                        })
                        .collect(),
                )
            })?
            else {
                return Ok(());
            };
            self.stats.deliveries += page.iter().map(|b| b.packets.len() as u64).sum::<u64>();
            self.note_stale(m, page);
            if let Ok(r) = result {
                self.set_wake(m, r.next_wakeup_at_ms, false);
            }
        }
        Ok(())
    }

    /// Records chats that reached `to` too late for the MLS past-epoch window.
    fn note_stale(&mut self, to: usize, batches: &[Rc<Batch>]) {
        let epoch = self.members[to].view.epoch();
        for b in batches {
            for h in &b.hashes {
                self.ledger.note_delivery(to, h, epoch);
            }
        }
    }
}

impl Batch {
    pub fn new(from: usize, topic: String, packets: Vec<Vec<u8>>, crafted: bool) -> Batch {
        let hashes = packets.iter().map(|p| Sha256::digest(p).into()).collect();
        Batch {
            from,
            topic,
            packets,
            hashes,
            crafted,
        }
    }

    fn push(&mut self, payload: Vec<u8>) {
        self.hashes.push(Sha256::digest(&payload).into());
        self.packets.push(payload);
    }
}
