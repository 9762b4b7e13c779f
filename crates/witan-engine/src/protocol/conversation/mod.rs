//! The conversation state machine: one de-MLS group as seen by one member.
//!
//! States: `PendingJoin` (a node waiting for a welcome), `Working`, `Freezing` (collecting
//! commit candidates), `Selection` (choosing one), `Reelection` (no candidate came: a new
//! steward list is being elected) and the terminal `Left`. Every transition is reported as an
//! event. This file holds the state, the entry points and the dispatch of inbound packets;
//! `governance` handles proposals and votes, `commit` handles candidates, freeze rounds and
//! applying commits, `view` builds the host-facing summaries.

mod commit;
mod governance;
mod membership;
mod view;

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use view::{ConversationView, MemberView, ProposalView};

use super::consensus::{Action, Ballot};
use super::freeze::Candidate;
use super::scoring::Scores;
use super::settings::Settings;
use super::steward_list::StewardList;
use super::timers::{self, Timer};
use super::{ChatRecord, Ctx, Event, LeaveReason, Outbound, Output, ProtocolError, topics};
use crate::mls::{self, CachedGroup, Group, MemberId, MlsError};
use witan_wire::{self as wire, group_payload::Content};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    PendingJoin,
    Working,
    Freezing,
    Selection,
    Reelection,
    Left,
}

/// A key package seen on the welcome topic, kept until it is proposed or expires.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    pub key_package: Vec<u8>,
    pub seen_at_ms: u64,
}

/// What this member keeps of its own commit candidate until the selection decides.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OwnCommit {
    pub epoch: u64,
    pub retry_round: u32,
    pub welcome: Option<Vec<u8>>,
    pub joiners: Vec<MemberId>,
}

/// The persisted state of one conversation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub me: MemberId,
    pub state: State,
    pub settings: Settings,
    pub epoch: u64,
    pub members: Vec<MemberId>,
    /// Group size per recent epoch, to check `expected_voters_count` of carried evidence.
    pub member_counts: BTreeMap<u64, u32>,
    pub stewards: StewardList,
    /// Retry round of the current epoch (bumped by a failed freeze round).
    pub retry_round: u32,
    /// The group's peer scores: changed only by what every member applying the same commits
    /// and decisions sees alike (a commit's author and epoch steward, finalized emergency
    /// votes), so that all members of one epoch hold the same table.
    pub scores: Scores,
    /// Penalties from this member's own observations (invalid candidates it received),
    /// which other members may not have made. Kept apart from `scores` so the tables agree;
    /// counted with them when deciding to raise and vote for an emergency removal, which
    /// turns local evidence into a group decision.
    #[serde(default)]
    pub suspicion: BTreeMap<MemberId, i64>,
    /// Score changes made this epoch by decided emergencies: ballot → (target, changes). An
    /// emergency a commit makes moot is taken back (see `after_commit`).
    #[serde(default)]
    pub emergency_effects: BTreeMap<u64, (MemberId, Vec<(MemberId, i64)>)>,
    pub ballots: BTreeMap<u64, Ballot>,
    /// Proposals that arrived after their expiry (read from a backlog after being offline),
    /// with when their expiry may decide them: once the rest of that backlog, which holds
    /// their votes, has been read. Deciding at once would count the members whose votes are
    /// still further down the backlog as silent.
    #[serde(default)]
    pub late_ballots: BTreeMap<u64, u64>,
    pub join_requests: BTreeMap<MemberId, JoinRequest>,
    pub pending_join_until: Option<u64>,
    pub auto_votes: BTreeMap<u64, u64>,
    pub commit_at: Option<u64>,
    pub inactivity_at: Option<u64>,
    pub freeze_until: Option<u64>,
    pub election_since: Option<u64>,
    pub candidates: Vec<Candidate>,
    /// Candidates of this epoch and round (sender, encoded candidate) that reference a
    /// proposal this member holds but has not decided yet (its votes are still on their way,
    /// or it decides at expiry and its clock is behind the committer's). Judged again when
    /// one of its ballots is decided, instead of being refused as "not finalized".
    #[serde(default)]
    pub held_candidates: Vec<(MemberId, Vec<u8>)>,
    pub own_commit: Option<OwnCommit>,
    pub recovering: bool,
    /// Lower-class proposals created while an emergency was open, sent once it resolves.
    pub held_back: Vec<Vec<u8>>,
    /// Votes that arrived before their proposal (bounded).
    pub orphan_votes: Vec<(MemberId, Vec<u8>)>,
    pub leaving: bool,
    pub sent_count: u64,
    /// Since when traffic of a future epoch has been waiting for a commit this member lacks.
    #[serde(default)]
    pub behind_since: Option<u64>,
    /// The member fell too far behind and was told to re-join.
    #[serde(default)]
    pub rejoin_required: bool,
    /// Back from away: until then a poll acts on no deadline, so the backlog the transport is
    /// about to deliver is read first (see `poll`).
    #[serde(default)]
    pub catch_up_until: Option<u64>,
}

const MAX_ORPHAN_VOTES: usize = 1024;
const MAX_HELD_CANDIDATES: usize = 64;
const MAX_JOIN_REQUESTS: usize = 4096;
const MAX_BALLOTS: usize = 8192;
const EPOCH_HISTORY: usize = 16;

impl Conversation {
    fn blank(id: &str, me: MemberId, settings: Settings, state: State) -> Self {
        Conversation {
            id: id.to_string(),
            me,
            state,
            settings,
            epoch: 0,
            members: Vec::new(),
            member_counts: BTreeMap::new(),
            stewards: StewardList::default(),
            retry_round: 0,
            scores: Scores::default(),
            suspicion: BTreeMap::new(),
            emergency_effects: BTreeMap::new(),
            ballots: BTreeMap::new(),
            late_ballots: BTreeMap::new(),
            join_requests: BTreeMap::new(),
            pending_join_until: None,
            auto_votes: BTreeMap::new(),
            commit_at: None,
            inactivity_at: None,
            freeze_until: None,
            catch_up_until: None,
            election_since: None,
            candidates: Vec::new(),
            held_candidates: Vec::new(),
            own_commit: None,
            recovering: false,
            held_back: Vec::new(),
            orphan_votes: Vec::new(),
            leaving: false,
            sent_count: 0,
            behind_since: None,
            rejoin_required: false,
        }
    }

    /// Creates a new group with this member as its only member and steward.
    pub fn create(
        ctx: &Ctx,
        id: &str,
        settings: Settings,
    ) -> Result<(Self, Output), ProtocolError> {
        validate_conversation_id(id)?;
        settings.validate()?;
        Group::create(ctx.provider, ctx.identity, id.as_bytes())?;
        let me = ctx.identity.member_id();
        let mut conv = Conversation::blank(id, me, settings, State::Working);
        conv.members = vec![me];
        conv.member_counts.insert(0, 1);
        conv.scores.ensure(me, conv.settings.default_peer_score);
        conv.stewards = StewardList {
            stewards: vec![me],
            base_epoch: 0,
            retry_round: 0,
        };
        let mut out = Output::default();
        out.events.push(Event::StateChanged(State::Working));
        out.events
            .push(Event::StewardsChanged(conv.stewards.active()));
        Ok((conv, out))
    }

    /// Starts a join: publishes a key package on the welcome topic and waits for a welcome.
    pub fn request_join(
        ctx: &Ctx,
        id: &str,
        settings: Settings,
    ) -> Result<(Self, Output), ProtocolError> {
        validate_conversation_id(id)?;
        let key_package = mls::new_key_package(ctx.provider, ctx.identity)?;
        let me = ctx.identity.member_id();
        let mut conv = Conversation::blank(id, me, settings, State::PendingJoin);
        conv.pending_join_until = Some(
            ctx.now_ms
                .saturating_add(conv.settings.pending_join_timeout_ms),
        );
        let body = wire::encode(&wire::JoinRequest {
            key_package,
            requested_at_ms: ctx.now_ms,
        });
        let mut out = Output::default();
        conv.emit(
            &mut out,
            topics::welcome(id),
            wire::PacketKind::JoinRequest,
            body,
        );
        out.events.push(Event::StateChanged(State::PendingJoin));
        Ok((conv, out))
    }

    pub fn is_member_state(&self) -> bool {
        !matches!(self.state, State::PendingJoin | State::Left)
    }

    /// Topics this conversation needs delivered: a function of its id and state only (the
    /// client recomputes them only when the state changed).
    pub fn topics(&self) -> Vec<String> {
        match self.state {
            State::Left => Vec::new(),
            _ => vec![topics::app(&self.id), topics::welcome(&self.id)],
        }
    }

    fn set_state(&mut self, state: State, out: &mut Output) {
        if self.state != state {
            tracing::info!(conversation = %self.id, from = ?self.state, to = ?state, epoch = self.epoch, "state changed");
            self.state = state;
            out.events.push(Event::StateChanged(state));
        }
    }

    fn emit(&self, out: &mut Output, topic: String, kind: wire::PacketKind, body: Vec<u8>) {
        let env = wire::Envelope::new(&self.id, self.me.as_bytes(), kind, body);
        let packet_id = hex::encode(&env.packet_id);
        out.outbound.push(Outbound {
            topic,
            payload: wire::encode(&env),
            packet_id,
        });
    }

    /// The MLS group, from the provider's group cache when it holds it (see
    /// `mls::GroupCache`); it goes back there when dropped.
    fn load_group<'c>(&self, ctx: &Ctx<'c, '_>) -> Result<CachedGroup<'c>, ProtocolError> {
        CachedGroup::load(ctx.provider, self.id.as_bytes())?
            .ok_or_else(|| ProtocolError::Internal("MLS group state is missing".into()))
    }

    /// Encrypts a payload for the group and queues it on the app topic.
    fn broadcast(
        &self,
        ctx: &Ctx,
        group: &mut Group,
        content: Content,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let plaintext = wire::GroupPayload {
            content: Some(content),
        }
        .encode_to_vec();
        let ciphertext = group.encrypt(ctx.provider, ctx.identity, &plaintext)?;
        self.emit(
            out,
            topics::app(&self.id),
            wire::PacketKind::Group,
            ciphertext,
        );
        Ok(())
    }

    fn voters(&self) -> BTreeSet<MemberId> {
        self.members.iter().copied().collect()
    }

    /// Handles one inbound envelope.
    pub fn handle_packet(
        &mut self,
        ctx: &Ctx,
        env: &wire::Envelope,
    ) -> Result<Output, ProtocolError> {
        if env.conversation_id != self.id {
            return Err(ProtocolError::WrongConversation);
        }
        let mut out = Output::default();
        match wire::PacketKind::try_from(env.kind).unwrap_or(wire::PacketKind::Unspecified) {
            wire::PacketKind::JoinRequest => {
                let req = wire::decode_join_request(&env.body)?;
                if self.is_member_state() {
                    self.on_join_request(ctx, req, &mut out)?;
                }
            }
            wire::PacketKind::Welcome => {
                let packet = wire::decode_welcome_packet(&env.body)?;
                if self.state == State::PendingJoin {
                    self.on_welcome(ctx, packet, &mut out)?;
                }
            }
            wire::PacketKind::Group => self.on_group_packet(ctx, env, &mut out)?,
            wire::PacketKind::Unspecified => {
                return Err(ProtocolError::InvalidInput("unknown packet kind".into()));
            }
        }
        self.fire_due_while_reading(ctx, &mut out)?;
        Ok(out)
    }

    fn on_group_packet(
        &mut self,
        ctx: &Ctx,
        env: &wire::Envelope,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let message_epoch = Group::message_epoch(&env.body)?;
        if self.state == State::PendingJoin {
            // Traffic of the group we are about to join: keep it for after the welcome.
            out.buffer_for_epoch = Some(message_epoch);
            return Ok(());
        }
        if self.state == State::Left {
            return Err(ProtocolError::WrongState {
                state: self.state,
                reason: "left the conversation".into(),
            });
        }
        if message_epoch > self.epoch {
            out.buffer_for_epoch = Some(message_epoch);
            if self.behind_since.is_none() {
                self.behind_since = Some(ctx.now_ms);
            }
            // Traffic of a later epoch proves a commit was applied; if its candidate is among
            // those held, apply it now (the driver then re-feeds this packet).
            if !self.candidates.is_empty() && self.all_candidates_in() {
                let mut group = self.load_group(ctx)?;
                self.apply_best_received(ctx, &mut group, out)?;
            }
            return Ok(());
        }
        let mut group = self.load_group(ctx)?;
        let decrypted = match group.decrypt(ctx.provider, &env.body) {
            Ok(d) => d,
            Err(MlsError::WrongEpoch { .. }) => return Err(ProtocolError::Stale),
            // Our own packet echoed back by the transport: already applied when it was sent.
            Err(MlsError::OwnMessage) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if env.sender.as_slice() != decrypted.sender.as_bytes() {
            return Err(ProtocolError::SenderMismatch);
        }
        let sender = decrypted.sender;
        if !self.members.contains(&sender) {
            return Err(ProtocolError::NotMember);
        }
        let payload = wire::decode_group_payload(&decrypted.plaintext)?;
        let content = payload
            .content
            .ok_or_else(|| ProtocolError::InvalidInput("empty payload".into()))?;
        match content {
            Content::Chat(chat) => {
                let message_id = hex::encode(&chat.message_id);
                let record = ChatRecord {
                    message_id,
                    sender,
                    body: chat.body,
                    sent_at_ms: chat.sent_at_ms,
                    own: false,
                };
                out.messages.push(record.clone());
                out.events.push(Event::MessageReceived(record));
            }
            Content::Proposal(p) => self.on_proposal(ctx, &mut group, sender, p, out)?,
            Content::Vote(v) => self.on_vote(ctx, &mut group, Some(sender), v, out)?,
            Content::Votes(bundle) => {
                for v in bundle.votes {
                    // Relayed votes count through their signatures; bad ones are skipped.
                    let _ = self.on_vote(ctx, &mut group, None, v, out);
                }
            }
            Content::Candidate(c) => self.on_candidate(ctx, &mut group, sender, c, out)?,
            Content::Sync(_) => {
                // Syncs are for joiners; members already hold this view.
            }
        }
        Ok(())
    }

    /// A local command: send a chat message.
    pub fn send_message(
        &mut self,
        ctx: &Ctx,
        body: &[u8],
    ) -> Result<(String, Output), ProtocolError> {
        self.require_member("send a message")?;
        if body.len() > wire::limits::MAX_CHAT_BODY_BYTES {
            return Err(ProtocolError::InvalidInput(format!(
                "message body is {} bytes; at most {} are allowed",
                body.len(),
                wire::limits::MAX_CHAT_BODY_BYTES
            )));
        }
        let mut group = self.load_group(ctx)?;
        self.sent_count += 1;
        let mut h = Sha256::new();
        h.update(self.me.as_bytes());
        h.update(self.id.as_bytes());
        h.update(self.sent_count.to_be_bytes());
        h.update(ctx.now_ms.to_be_bytes());
        let message_id = h.finalize()[..16].to_vec();
        let chat = wire::Chat {
            message_id: message_id.clone(),
            body: body.to_vec(),
            sent_at_ms: ctx.now_ms,
        };
        let mut out = Output::default();
        self.broadcast(ctx, &mut group, Content::Chat(chat), &mut out)?;
        let id = hex::encode(&message_id);
        out.messages.push(ChatRecord {
            message_id: id.clone(),
            sender: self.me,
            body: body.to_vec(),
            sent_at_ms: ctx.now_ms,
            own: true,
        });
        Ok((id, out))
    }

    fn require_member(&self, what: &str) -> Result<(), ProtocolError> {
        if self.is_member_state() {
            Ok(())
        } else {
            Err(ProtocolError::WrongState {
                state: self.state,
                reason: format!("cannot {what} before joining or after leaving"),
            })
        }
    }

    /// The earliest deadline this conversation has.
    pub fn next_deadline(&self) -> Option<u64> {
        self.next_timer().map(|(at, _)| at)
    }

    fn next_timer(&self) -> Option<(u64, Timer)> {
        self.next_timer_for(false)
    }

    /// The earliest deadline; when `deferring`, only those that apply inbound work (expiry
    /// of a join, tallies at expiry, falling behind) — never those that start new work.
    fn next_timer_for(&self, deferring: bool) -> Option<(u64, Timer)> {
        if self.state == State::Left {
            return None;
        }
        let mut d: Vec<(u64, Timer)> = Vec::new();
        if let Some(at) = self.pending_join_until {
            d.push((at, Timer::PendingJoin));
        }
        if self.is_member_state() {
            for b in self.ballots.values() {
                if b.decision.is_none() {
                    let at = self.late_ballots.get(&b.id).copied().unwrap_or(0);
                    d.push((b.expires_at_ms.max(at), Timer::Ballot(b.id)));
                }
                // Decided members relay too: they hold the votes the others may lack.
                if !b.relayed && !b.by_evidence && b.has_voted(&self.me) {
                    d.push((b.relay_at_ms(), Timer::Relay(b.id)));
                }
            }
            d.extend(
                self.auto_votes
                    .iter()
                    .map(|(id, at)| (*at, Timer::AutoVote(*id))),
            );
            d.extend(self.commit_at.map(|at| (at, Timer::StewardCommit)));
            d.extend(self.freeze_until.map(|at| (at, Timer::Freeze)));
            d.extend(self.catch_up_until.map(|at| (at, Timer::CatchUp)));
            d.extend(self.inactivity_at.map(|at| (at, Timer::Inactivity)));
            if let Some(at) = self.election_deadline() {
                d.push((at, Timer::Election));
            }
            if let Some(since) = self.behind_since
                && !self.rejoin_required
            {
                d.push((since.saturating_add(self.catch_up_window()), Timer::Behind));
            }
        }
        if deferring {
            d.retain(|(_, t)| matches!(t, Timer::PendingJoin | Timer::Ballot(_) | Timer::Behind));
        }
        if let Some(until) = self.catch_up_until {
            // Waiting for the backlog (`wait_for_backlog_if_back`).
            for (at, timer) in &mut d {
                if matches!(timer, Timer::StewardCommit | Timer::Inactivity) {
                    *at = (*at).max(until);
                }
            }
        }
        timers::earliest(d)
    }

    /// Fires every deadline due at `ctx.now_ms`, earliest first.
    pub fn poll(&mut self, ctx: &Ctx) -> Result<Output, ProtocolError> {
        let mut out = Output::default();
        self.wait_for_backlog_if_back(ctx);
        self.fire_due(ctx, &mut out)?;
        Ok(out)
    }

    /// A poll that finds the commit or inactivity deadline passed long ago (more than the
    /// allowed clock skew) comes from a member back from away — killed, suspended, offline —
    /// and is often the app's first call, before the transport hands over the backlog.
    /// Acting on it at once would act blind: an epoch steward whose commit timer is overdue
    /// would commit alone although the others froze and moved on without it, a fork. So those
    /// two deadlines wait one freeze window (`catch_up_until`; the host is woken at its end)
    /// while packets that arrive meanwhile are read and every other deadline fires as usual.
    fn wait_for_backlog_if_back(&mut self, ctx: &Ctx) {
        if self.catch_up_until.is_some() || ctx.defer_governance {
            return;
        }
        let overdue = ctx.now_ms.saturating_sub(self.settings.max_clock_skew_ms);
        let long_overdue = [self.commit_at, self.inactivity_at]
            .into_iter()
            .flatten()
            .any(|at| at < overdue);
        if long_overdue {
            self.catch_up_until = Some(ctx.now_ms.saturating_add(self.settings.freeze_window_ms));
        }
    }

    fn fire_due(&mut self, ctx: &Ctx, out: &mut Output) -> Result<(), ProtocolError> {
        // Each firing clears or moves its deadline; the bound only guards against a bug
        // turning into an endless loop inside the host's process.
        for _ in 0..10_000 {
            let Some((at, timer)) = self.next_timer_for(ctx.defer_governance) else {
                return Ok(());
            };
            if at > ctx.now_ms {
                return Ok(());
            }
            self.fire(ctx, timer, out)?;
        }
        Err(ProtocolError::Internal("deadlines did not settle".into()))
    }

    /// `fire_due` after an inbound packet, stopping at a deadline that passed long ago (more
    /// than the allowed clock skew): the member was away (offline, killed, suspended) and is
    /// reading its backlog, which may still hold what that deadline should act on — the
    /// candidates of the freeze round it froze in, the votes of a proposal. The poll that
    /// follows the backlog (`handle_wakeup`, or the host's next wake-up) fires it.
    fn fire_due_while_reading(&mut self, ctx: &Ctx, out: &mut Output) -> Result<(), ProtocolError> {
        let overdue = ctx.now_ms.saturating_sub(self.settings.max_clock_skew_ms);
        for _ in 0..10_000 {
            let Some((at, timer)) = self.next_timer_for(ctx.defer_governance) else {
                return Ok(());
            };
            if at > ctx.now_ms || at < overdue {
                return Ok(());
            }
            self.fire(ctx, timer, out)?;
        }
        Err(ProtocolError::Internal("deadlines did not settle".into()))
    }

    fn fire(&mut self, ctx: &Ctx, timer: Timer, out: &mut Output) -> Result<(), ProtocolError> {
        match timer {
            Timer::PendingJoin => {
                self.pending_join_until = None;
                if self.state == State::PendingJoin {
                    out.events.push(Event::JoinExpired);
                    self.set_state(State::Left, out);
                }
                Ok(())
            }
            Timer::Ballot(id) => {
                let mut group = self.load_group(ctx)?;
                self.resolve_if_decided(ctx, &mut group, id, out)
            }
            Timer::Relay(id) => {
                let mut group = self.load_group(ctx)?;
                self.relay_votes(ctx, &mut group, id, out)
            }
            Timer::AutoVote(id) => {
                self.auto_votes.remove(&id);
                let mut group = self.load_group(ctx)?;
                self.auto_vote(ctx, &mut group, id, out)
            }
            Timer::StewardCommit => {
                self.commit_at = None;
                let mut group = self.load_group(ctx)?;
                self.steward_commit(ctx, &mut group, out)
            }
            Timer::Inactivity => {
                self.inactivity_at = None;
                let mut group = self.load_group(ctx)?;
                self.enter_freeze(ctx, &mut group, out)
            }
            Timer::CatchUp => {
                self.catch_up_until = None;
                Ok(())
            }
            Timer::Freeze => {
                self.freeze_until = None;
                let mut group = self.load_group(ctx)?;
                self.select_and_apply(ctx, &mut group, out)
            }
            Timer::Election => {
                let mut group = self.load_group(ctx)?;
                self.election_timer(ctx, &mut group, out)
            }
            Timer::Behind => {
                // Its own removal was approved and the group moved on to an epoch it cannot
                // read: the commit it missed is that removal (it cannot be in a later epoch
                // without having been welcomed to it), so it has left — not something to
                // re-join.
                let removal_approved = self
                    .ballots
                    .values()
                    .any(|b| b.decision == Some(true) && b.action.removes() == Some(self.me));
                if removal_approved {
                    let reason = if self.leaving {
                        LeaveReason::SelfLeave
                    } else {
                        LeaveReason::Removed
                    };
                    tracing::info!(conversation = %self.id, "removal missed; left");
                    out.events.push(Event::Left(reason));
                    self.clear_round();
                    self.set_state(State::Left, out);
                    return Ok(());
                }
                // The commit that would let this member read the newer traffic never came:
                // it cannot catch up and must re-join with a fresh key package.
                self.rejoin_required = true;
                out.events.push(Event::RejoinRequired);
                Ok(())
            }
        }
    }

    /// The member's own leave request.
    pub fn leave(&mut self, ctx: &Ctx) -> Result<Output, ProtocolError> {
        let mut out = Output::default();
        match self.state {
            State::Left => {
                return Err(ProtocolError::WrongState {
                    state: self.state,
                    reason: "already left".into(),
                });
            }
            State::PendingJoin => {
                self.pending_join_until = None;
                out.events.push(Event::Left(LeaveReason::SelfLeave));
                self.set_state(State::Left, &mut out);
                return Ok(out);
            }
            _ => {}
        }
        if self.members.len() <= 1 {
            out.events.push(Event::Left(LeaveReason::SelfLeave));
            self.clear_round();
            self.set_state(State::Left, &mut out);
            return Ok(out);
        }
        if self.leaving {
            return Ok(out);
        }
        self.leaving = true;
        let mut group = self.load_group(ctx)?;
        self.propose(ctx, &mut group, Action::Leave { member: self.me }, &mut out)?;
        self.fire_due(ctx, &mut out)?;
        Ok(out)
    }

    /// How long future-epoch traffic may wait for the missing commit before this member
    /// gives up catching up: a full recovery cycle of the group.
    pub fn catch_up_window(&self) -> u64 {
        let s = &self.settings;
        s.commit_inactivity_ms
            .saturating_add(s.freeze_window_ms)
            .saturating_add(s.vote_timeout_ms)
            .saturating_mul(2)
    }

    fn clear_round(&mut self) {
        self.auto_votes.clear();
        self.commit_at = None;
        self.inactivity_at = None;
        self.freeze_until = None;
        self.election_since = None;
        self.candidates.clear();
        self.own_commit = None;
    }

    fn bound_collections(&mut self) {
        if self.held_candidates.len() > MAX_HELD_CANDIDATES {
            let excess = self.held_candidates.len() - MAX_HELD_CANDIDATES;
            self.held_candidates.drain(..excess);
        }
        if self.orphan_votes.len() > MAX_ORPHAN_VOTES {
            let excess = self.orphan_votes.len() - MAX_ORPHAN_VOTES;
            self.orphan_votes.drain(..excess);
        }
        while self.join_requests.len() > MAX_JOIN_REQUESTS {
            let oldest = self
                .join_requests
                .iter()
                .min_by_key(|(_, r)| r.seen_at_ms)
                .map(|(m, _)| *m);
            match oldest {
                Some(m) => self.join_requests.remove(&m),
                None => break,
            };
        }
        while self.member_counts.len() > EPOCH_HISTORY {
            self.member_counts.pop_first();
        }
    }
}

pub(crate) fn validate_conversation_id(id: &str) -> Result<(), ProtocolError> {
    if id.is_empty() || id.len() > wire::limits::MAX_CONVERSATION_ID_BYTES {
        return Err(ProtocolError::InvalidInput(format!(
            "conversation id must be 1 to {} bytes",
            wire::limits::MAX_CONVERSATION_ID_BYTES
        )));
    }
    Ok(())
}
