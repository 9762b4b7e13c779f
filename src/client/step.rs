//! One engine run inside one store step, and everything it writes.
//!
//! [`StepEnv::run_engine`] takes the conversation's state (loaded inside the transaction the
//! first time the step needs it), builds the MLS provider over the step's rows, runs the
//! engine, and — only if the engine succeeded — writes its outputs to that transaction: the
//! MLS rows, the state (kept for the step and written back by [`StepEnv::flush`]; see
//! `state.rs`), outbound packets (queued in the outbox and marked seen, so our own echo is a
//! duplicate), chat messages (appended to the history), and the conversation's topics. What
//! the host must hear goes into [`Effects`], delivered by the caller after the commit.
//!
//! The store's transaction is the only undo: a run that fails writes nothing (its outputs
//! are dropped with it), and a step that fails is rolled back whole. What is kept in memory
//! across runs — the decoded MLS group the store lends out (`mls::GroupCache`), the decoded
//! conversation states — is only ever what a successful run left, and the group is dropped
//! whenever a run fails.
//!
//! Two kinds of failure are kept apart: the engine refusing the input (the inner error:
//! nothing was written, the caller may carry on with the same step) and a database write
//! failing (the outer error: the step must be dropped).
//!
//! A step may let the MLS storage defer the message secrets OpenMLS rewrites after every
//! message ([`StepEnv::defer_message_secrets`]; see `mls::cache`): the decoded group then
//! carries them, and they are written once, before the commit or before a run on another
//! conversation. If a group carrying deferred secrets has to be dropped (a run failed after
//! others succeeded), the step is lost ([`StepEnv::is_lost`]): it must be dropped, and may
//! be redone without deferring.
//!
//! A receive step whose every engine run read a chat (or found a copy) may even leave those
//! secrets for a later step (`GroupCache::carry`): a live socket hands chats over one per
//! step, and writing the sender's ratchet with each would double what each step writes. The
//! rows then still hold those chats' keys until the next step that is not a chat read, a run
//! on another group, [`GroupCache::carry`]'s bound, or a step run for nothing else (`poll`,
//! `suspend`, closing the client); a copy read from them after a kill meets the chat's
//! history row and is a duplicate. Such a step also appends its chats to the history's tail
//! (one page, no index; `witan_store::history`), which the step that writes the secrets moves
//! into the history.
//!
//! [`StepEnv::refeed`] feeds packets buffered for a future epoch back to the engine once the
//! conversation reached that epoch. It runs inside the step that advanced the epoch: the
//! store hands buffered packets out by removing them, so replaying them in the same
//! transaction is what keeps a kill between "taken" and "applied" from losing them.

use std::collections::{BTreeMap, BTreeSet};

use crate::mls::{Carrying, GroupCache, GroupLoans, Identity, Layer, MemberId, MlsProvider};
use crate::protocol::{ChatRecord, Conversation, Ctx, Event, Output, State};
use crate::store::{BufferBounds, HistoryPart, NewMessage, Step};
use crate::wire;

use super::error::WitanError;
use super::state::States;
use super::subscriptions;
use super::types::{StoredMessage, WitanEvent};

/// What one conversation may keep for future epochs: anyone who knows its id can send
/// packets claiming one, so the bound holds in bytes too (two envelopes of the largest size),
/// and a full buffer evicts the farthest claims first (`witan_store::BufferBounds`).
pub(crate) const FUTURE_EPOCH_BUFFER: BufferBounds = BufferBounds {
    packets: 1024,
    bytes: 2 * wire::limits::MAX_ENVELOPE_BYTES as u64,
};

/// Replays of buffered packets stop after this many in one step (more than a buffer holds: a
/// guard against a bug looping inside the host's process).
const MAX_REFED_PACKETS: u32 = 2 * FUTURE_EPOCH_BUFFER.packets;

/// What the host hears after a step committed.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub events: Vec<WitanEvent>,
    pub subscribe: BTreeSet<String>,
    pub unsubscribe: BTreeSet<String>,
    /// The step queued packets in the outbox: they are published once it committed.
    pub queued: bool,
}

impl Effects {
    pub fn merge(&mut self, other: Effects) {
        self.events.extend(other.events);
        self.queued |= other.queued;
        for t in other.subscribe {
            self.unsubscribe.remove(&t);
            self.subscribe.insert(t);
        }
        for t in other.unsubscribe {
            self.subscribe.remove(&t);
            self.unsubscribe.insert(t);
        }
    }
}

/// When a step's commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Local actions (they publish): the commit itself is fsynced (`synchronous = FULL`).
    Synced,
    /// Receiving and deadlines: the commit survives an app kill at once and a power cut
    /// after the next sync. A step that queued packets syncs right after its commit, and
    /// nothing is published before that sync, so nothing peers saw can be rolled back.
    SyncedBeforePublishing,
}

/// What a successful engine run left behind that the caller still acts on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied {
    pub buffer_for_epoch: Option<u64>,
    pub epoch_advanced: bool,
    pub epoch: u64,
    pub state: State,
    /// This run turned a pending join into membership (at `epoch`).
    pub joined: bool,
    /// The packet was a copy of a message read before: nothing changed.
    pub duplicate: bool,
    /// The run stored a chat message (for a received packet: the packet was a chat, now
    /// read).
    pub chat_read: bool,
    /// The packet was a sealed vote or round message, whose copy the engine knows as one.
    pub copy_known: bool,
}

impl Applied {
    /// Whether the packet's hash must be marked seen so that a copy of it is known as one.
    /// A chat needs no mark: its copy asks MLS for the sender's key of that message, which
    /// reading it used up (and the history keeps one row per sender and message id). Not
    /// marking chats spares each received chat two pages of the log (the mark's row and
    /// its hash index). Nor does a sealed vote, prevote or precommit: its copy is the same
    /// vote again, counted once by the ballot box or the round. A commit brings each member
    /// n of those; their marks, inserted at random places of the hash index, were over a third
    /// of the pages a member's removal wrote at n = 1,000.
    pub fn needs_seen_mark(&self) -> bool {
        !self.duplicate && !self.chat_read && !self.copy_known
    }
}

/// The engine operation: given the stored conversation (if any) and the context, the new
/// conversation, a value for the caller and the engine's output.
pub(crate) type EngineResult<T> = Result<(Conversation, T, Output), WitanError>;

/// Outer: a database write failed (drop the step). Inner: the engine refused (nothing
/// written).
pub(crate) type RunResult<T> = Result<Result<(T, Applied), WitanError>, WitanError>;

/// The environment of one step.
pub(crate) struct StepEnv<'s, 'c> {
    pub step: &'s Step<'c>,
    pub identity: &'s Identity,
    pub now_ms: u64,
    /// Extension role: the engine leaves governance work for the app (`Ctx`).
    pub defer_governance: bool,
    pub effects: Effects,
    /// The step's conversation states: loaded once, written back by `flush`.
    states: States,
    /// The decoded MLS group the store lends the step (`None`: the cache is off).
    groups: Option<&'c GroupCache>,
    /// Some run queued packets to publish (a relaxed step must then sync before they leave).
    pub queued_packets: bool,
    /// Whether MLS message secrets may be deferred (see the module doc).
    defer_secrets: bool,
    /// Chats the engine runs of this step read.
    chats_read: u32,
    /// Every engine run of this step read a chat or found a copy (see the module doc).
    only_chats: bool,
    /// Chats read go to the history's tail (`witan_store::HistoryPart::Tail`).
    history_tail: bool,
}

impl<'s, 'c> StepEnv<'s, 'c> {
    pub fn new(step: &'s Step<'c>, identity: &'s Identity, now_ms: u64) -> Self {
        StepEnv {
            step,
            identity,
            now_ms,
            defer_governance: false,
            effects: Effects::default(),
            states: States::default(),
            groups: step.groups().filter(|_| Layer::Group.enabled()),
            queued_packets: false,
            defer_secrets: false,
            chats_read: 0,
            only_chats: true,
            history_tail: false,
        }
    }
}

impl StepEnv<'_, '_> {
    /// Starts from the states a previous committed step left (see `state.rs`).
    pub fn start_from(&mut self, kept: super::state::KeptStates) {
        self.states = States::from_kept(kept);
    }

    /// The step's states, once flushed, for the next step (see `state.rs`).
    pub fn take_states(&mut self) -> States {
        std::mem::take(&mut self.states)
    }

    /// Lets the engine runs of this step defer MLS message secrets (see the module doc).
    pub fn defer_message_secrets(&mut self) {
        self.defer_secrets = Layer::Secrets.enabled();
    }

    /// Appends the chats this step reads to the history's tail, which the next step that
    /// writes the secrets moves into the history (see the module doc). For a step of one
    /// packet that defers secrets, which may then be carried.
    pub fn append_chats_to_tail(&mut self) {
        self.history_tail = self.defer_secrets && Layer::Kept.enabled();
    }

    /// Lets the engine runs of this step take the conversation states themselves instead of
    /// clones (see `state.rs`); a failed run may then lose the step.
    pub fn lend_states(&mut self) {
        self.states.lend();
    }

    /// A group carrying deferred message secrets was dropped, or a failed run consumed a
    /// state with changes of this step: the step must be dropped.
    pub fn is_lost(&self) -> bool {
        self.groups.is_some_and(GroupCache::is_lost) || self.states.is_lost()
    }

    /// Writes the message secrets the cached group carries to the step's rows.
    fn write_deferred(&mut self) -> Result<(), WitanError> {
        let Some(groups) = self.groups.filter(|g| g.is_ahead()) else {
            return Ok(());
        };
        let provider = MlsProvider::with_kept_crypto(self.step, GroupLoans::kept_crypto(groups));
        groups
            .write_deferred(&provider)
            .map_err(|e| WitanError::Storage {
                reason: e.to_string(),
            })?;
        let changes = provider.storage().take_changes();
        drop(provider);
        self.step.apply_mls_changes(&changes)?;
        Ok(())
    }

    /// Writes what the step still holds in memory (deferred message secrets, unless they may
    /// be carried past the commit; changed conversation states) to the step. Runs before the
    /// step commits.
    pub fn flush(&mut self) -> Result<(), WitanError> {
        match self.carry_secrets() {
            Carrying::Refused => {
                self.write_deferred()?;
                self.step.fold_history_tail()?;
            }
            // What an earlier carry left in the tail (its group was dropped unwritten) goes
            // now: the tail holds the chats of one carry at most.
            Carrying::Began if self.step.history_tail_len()? > u64::from(self.chats_read) => {
                self.step.fold_history_tail()?;
            }
            Carrying::Began | Carrying::Continued => {}
        }
        if self.is_lost() {
            return Err(WitanError::internal(
                "deferred MLS secrets or a lent state were lost",
            ));
        }
        self.states.flush(self.step)
    }

    /// Whether the group's deferred secrets stay in memory past the commit (see the module
    /// doc). Only while groups are kept from step to step: otherwise the next step would
    /// forget them unwritten.
    fn carry_secrets(&self) -> Carrying {
        match self.groups {
            Some(groups) if self.defer_secrets && self.only_chats && Layer::Kept.enabled() => {
                groups.carry(self.chats_read, self.now_ms)
            }
            _ => Carrying::Refused,
        }
    }

    /// Runs `op` on conversation `id`; see the module doc.
    pub fn run_engine<T>(
        &mut self,
        id: &str,
        op: impl FnOnce(Option<Conversation>, &Ctx) -> EngineResult<T>,
    ) -> RunResult<T> {
        if self
            .groups
            .is_some_and(|g| g.is_ahead() && !g.holds(id.as_bytes()))
        {
            // The run will use another group: the one held is written before it goes.
            self.write_deferred()?;
        }
        let result = self.run_engine_once(id, op);
        match &result {
            Ok(Ok((_, applied))) if applied.chat_read => {
                self.chats_read = self.chats_read.saturating_add(1);
            }
            Ok(Ok((_, applied))) if applied.duplicate => {}
            _ => self.only_chats = false,
        }
        if !matches!(result, Ok(Ok(_))) {
            // Nothing of a failed run is kept: neither may the group it left in memory be.
            if let Some(groups) = self.groups {
                groups.run_failed();
            }
            self.states.run_failed(self.step, id);
        }
        result
    }

    fn run_engine_once<T>(
        &mut self,
        id: &str,
        op: impl FnOnce(Option<Conversation>, &Ctx) -> EngineResult<T>,
    ) -> RunResult<T> {
        let step = self.step;
        let before = match self.states.get(step, id) {
            Ok(before) => before,
            Err(e) => return Ok(Err(e)),
        };
        // Topics change only when a conversation starts or stops listening.
        let listened = before.as_ref().map(|c| c.listens());
        let was_pending = before.as_ref().is_some_and(|c| c.is_waiting_to_join());
        let provider = match self.groups {
            Some(groups) if self.defer_secrets => {
                MlsProvider::deferring_message_secrets(step, groups)
            }
            Some(groups) => MlsProvider::with_group_cache(step, groups),
            None => MlsProvider::new(step),
        };
        let ctx = Ctx {
            provider: &provider,
            identity: self.identity,
            now_ms: self.now_ms,
            defer_governance: self.defer_governance,
        };
        let (conv, value, out) = match op(before, &ctx) {
            Ok(done) => done,
            Err(e) => return Ok(Err(e)),
        };
        if conv.id() != id {
            return Ok(Err(WitanError::internal(
                "engine returned another conversation",
            )));
        }
        let changes = provider.storage().take_changes();
        drop(provider);

        // From here on every failure is a failed write: the caller drops the step.
        if !changes.is_empty() {
            step.apply_mls_changes(&changes)?;
        }
        self.queued_packets |= !out.outbound.is_empty();
        for o in &out.outbound {
            step.outbox_push(&o.packet_id, &o.topic, &o.payload, self.now_ms)?;
            if !o.copy_known {
                step.mark_seen(&o.seen, self.now_ms)?;
            }
        }
        let mut stored = self.store_messages(id, &out.messages)?;
        // Chats the history already held: copies, read again from keys the database still had
        // (see the module doc).
        let only_copies = !out.messages.is_empty() && stored.is_empty();
        if listened != Some(conv.listens()) {
            self.resubscribe(id, listened, &conv)?;
        }
        self.announce(id, &out.events, &mut stored);
        let applied = Applied {
            buffer_for_epoch: out.buffer_for_epoch,
            epoch_advanced: out.epoch_advanced,
            epoch: conv.epoch(),
            state: conv.state(),
            joined: was_pending && conv.is_member_state(),
            duplicate: out.duplicate || only_copies,
            chat_read: !out.messages.is_empty(),
            copy_known: out.copy_known,
        };
        self.states.replace(step, id, conv)?;
        Ok(Ok((value, applied)))
    }

    /// Appends the chats an engine run read to the history; returns those stored for the
    /// first time, by sender and message id (a message is its sender's: ids are chosen by
    /// senders).
    fn store_messages<'m>(
        &self,
        id: &str,
        messages: &'m [ChatRecord],
    ) -> Result<BTreeMap<(MemberId, &'m str), StoredMessage>, WitanError> {
        let part = if self.history_tail {
            HistoryPart::Tail
        } else {
            HistoryPart::Indexed
        };
        let mut stored = BTreeMap::new();
        for m in messages {
            let sender = m.sender.to_hex();
            let new = NewMessage {
                conversation_id: id,
                message_id: &m.message_id,
                sender: &sender,
                body: &m.body,
                sent_at_ms: m.sent_at_ms,
                own: m.own,
            };
            if let Some(seq) = self.step.append_message(&new, part)? {
                stored.insert(
                    (m.sender, m.message_id.as_str()),
                    StoredMessage {
                        conversation_id: id.to_string(),
                        message_id: m.message_id.clone(),
                        seq,
                        sender,
                        body: m.body.clone(),
                        sent_at_ms: m.sent_at_ms,
                        own: m.own,
                    },
                );
            }
        }
        Ok(stored)
    }

    /// Saves a conversation's topics after it started or stopped listening (`listened`: what
    /// it listened to before the run, `None` if it did not exist) and hands the difference
    /// to the transport.
    fn resubscribe(
        &mut self,
        id: &str,
        listened: Option<bool>,
        conv: &Conversation,
    ) -> Result<(), WitanError> {
        let before_topics = listened.map_or_else(Vec::new, |l| Conversation::topics_of(id, l));
        let after_topics = conv.topics();
        subscriptions::save(self.step, id, &after_topics)?;
        let before: BTreeSet<String> = before_topics.into_iter().collect();
        let after: BTreeSet<String> = after_topics.into_iter().collect();
        let diff = Effects {
            subscribe: after.difference(&before).cloned().collect(),
            unsubscribe: before.difference(&after).cloned().collect(),
            ..Effects::default()
        };
        self.effects.merge(diff);
        Ok(())
    }

    /// Turns an engine run's events into the app's; a chat is announced only when it was
    /// stored for the first time (taken from `stored`).
    fn announce<'m>(
        &mut self,
        id: &str,
        events: &'m [Event],
        stored: &mut BTreeMap<(MemberId, &'m str), StoredMessage>,
    ) {
        for e in events {
            match e {
                Event::MessageReceived(m) => {
                    if let Some(message) = stored.remove(&(m.sender, m.message_id.as_str())) {
                        self.effects.events.push(WitanEvent::MessageReceived {
                            conversation_id: id.to_string(),
                            message,
                        });
                    }
                }
                other => self
                    .effects
                    .events
                    .extend(WitanEvent::from_engine(id, other)),
            }
        }
    }

    /// Handles one inbound envelope for the conversation it names.
    pub fn handle_packet(&mut self, env: &wire::Envelope) -> RunResult<()> {
        self.run_engine(&env.conversation_id, |conv, ctx| {
            let mut conv = conv.ok_or_else(|| {
                WitanError::not_found(format!("conversation {:?}", env.conversation_id))
            })?;
            let state = conv.state();
            let out = conv
                .handle_packet(ctx, env)
                .map_err(|e| WitanError::from_protocol(e, state))?;
            Ok((conv, (), out))
        })
    }

    /// Checks the sealed votes among `packets` (each with its hash) as one batch per
    /// conversation before they are applied one by one (see `Conversation::check_sealed_votes`).
    /// Packets seen before are left out: a batch delivered again (the live relay and a catch-up
    /// bring the same packets) is all duplicates. It changes no outcome, so a conversation it
    /// cannot run on is passed over.
    pub fn check_sealed_votes(
        &mut self,
        packets: &[(&[u8; 32], &wire::Envelope)],
    ) -> Result<(), WitanError> {
        let sealed =
            |(_, e): &&(&[u8; 32], &wire::Envelope)| e.kind == wire::PacketKind::Sealed as i32;
        // A live packet comes alone: nothing to batch, and no lookup to spend on it.
        if packets.iter().filter(sealed).nth(1).is_none() {
            return Ok(());
        }
        let mut unseen: Vec<&wire::Envelope> = Vec::new();
        for (hash, e) in packets.iter().filter(sealed) {
            if !self.step.is_seen(&hash[..])? {
                unseen.push(e);
            }
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &unseen {
            *counts.entry(e.conversation_id.as_str()).or_default() += 1;
        }
        for (id, count) in counts {
            if count < 2 {
                continue;
            }
            let ran = self.run_engine(id, |conv, ctx| {
                let mut conv =
                    conv.ok_or_else(|| WitanError::not_found(format!("conversation {id:?}")))?;
                conv.check_sealed_votes(ctx, &unseen);
                Ok((conv, (), Output::default()))
            })?;
            if let Err(e) = ran {
                tracing::debug!(conversation = id, error = %e, "sealed votes not batched");
            }
        }
        Ok(())
    }

    /// Replays the packets of conversation `id` buffered for epochs up to the current one, in
    /// order, following the epoch as it advances. A replayed packet the engine refuses is
    /// dropped; one still for a future epoch is buffered again.
    pub fn refeed(&mut self, id: &str, mut applied: Applied) -> Result<(), WitanError> {
        if applied.joined {
            // A member holds the secrets of the epoch it joined in, never of earlier ones:
            // what was kept from before can only be refused (as stale). Dropping it unread
            // spares decoding the group once per packet.
            let dropped = self.step.drop_buffered_below(id, applied.epoch)?;
            if dropped > 0 {
                tracing::debug!(
                    conversation = id,
                    dropped,
                    "traffic from before the join dropped"
                );
            }
        }
        for _ in 0..MAX_REFED_PACKETS {
            if matches!(applied.state, State::PendingJoin | State::Left) {
                return Ok(());
            }
            // One at a time: memory holds one buffered packet, however full the buffer.
            let Some(payload) = self.step.take_next_buffered(id, applied.epoch)? else {
                return Ok(());
            };
            let Ok((env, hash)) = wire::decode_envelope_keyed(&payload) else {
                continue;
            };
            match self.handle_packet(&env)? {
                Ok(((), a)) => {
                    match a.buffer_for_epoch {
                        Some(epoch) => {
                            let packet = (&hash, payload.as_slice());
                            self.step.buffer_inbound(
                                id,
                                epoch,
                                packet,
                                self.now_ms,
                                FUTURE_EPOCH_BUFFER,
                            )?;
                        }
                        None if a.needs_seen_mark() => self.step.mark_seen(&hash, self.now_ms)?,
                        None => {}
                    }
                    applied = a;
                }
                Err(e) => {
                    tracing::debug!(conversation = id, error = %e, "buffered packet dropped")
                }
            }
        }
        Err(WitanError::internal("buffered packets did not settle"))
    }
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;
