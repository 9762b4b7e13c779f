//! The dispatcher: one de-MLS conversation as seen by one member.
//!
//! [`Conversation`] owns the conversation's core facts (id, settings, epoch, members and
//! their keys, the leader order) and the parts, each of which owns its state and returns what
//! happened as values: the ballot box (proposals and votes), the commit round (candidates,
//! locks, quorums), the steward schedule, the score book and the join queue. The dispatcher
//! routes each input to the part it concerns, then acts on what the part returned, in order —
//! parts never call each other. The MLS group is touched only here (building, checking and
//! applying candidates; encrypting and decrypting). An error discards the whole step: the
//! caller keeps the state as it was before.
//!
//! Files: `start.rs` (creating a group; asking to join), `inbound.rs` (packets),
//! `governance.rs` (proposals, votes, joins), `round.rs` (the round's effects),
//! `candidate.rs` (building and checking candidates), `apply.rs` (a certified commit;
//! joining from a welcome), `sealed.rs` (votes sent outside MLS), `catch_up.rs` (certified commits kept for and asked by members
//! behind), `timers.rs` (deadlines), `view.rs` (the host's view), `persist.rs` and
//! `part_codec.rs` (the state in parts; its messages in `schema.rs`, its vocabulary in
//! `stored.rs`), `legacy.rs` (states stored before the parts), `testing.rs` (a read-only
//! look inside, for tests).

mod apply;
mod candidate;
mod catch_up;
mod governance;
mod inbound;
mod legacy;
mod part_codec;
mod persist;
mod roster;
mod round;
mod schema;
mod sealed;
mod start;
mod stored;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod timers;
mod view;
mod vote_rows;

use std::collections::BTreeSet;

use prost::Message;

pub use catch_up::{Archive, Archived, MAX_ARCHIVE_BYTES, MAX_ARCHIVED};
pub use stored::{PartKey, StateError};
pub use view::{ConversationView, MemberView, ProposalView};
pub use vote_rows::{StoredVote, VoteChanges};

use super::ballot_box::{BallotBox, Scope};
use super::commit_round::{CommitRound, RoundCtx, Signers, Timing};
use super::join_queue::JoinQueue;
use super::score_book::ScoreBook;
use super::settings::Settings;
use super::steward_schedule::StewardSchedule;
use super::{Ctx, Event, Outbound, Output, ProtocolError, topics};
use crate::mls::{CachedGroup, Group, MemberId, SealKey};
use witan_wire::{self as wire, group_payload::Content};

/// The states a conversation goes through, as the host sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Waiting for a welcome after asking to join.
    PendingJoin,
    /// A member; the epoch's commit, if any, is in its first round (the epoch steward's).
    Working,
    /// The first round failed: other stewards lead the rounds.
    Freezing,
    /// A later round: this member is locked on a value a quorum prevoted, awaiting the
    /// certificate.
    Selection,
    /// Every steward's round failed: other members lead the rounds (the stewards that failed
    /// lose their slots when the epoch's commit is certified).
    Reelection,
    /// Not a member any more (left, removed, or the join expired).
    Left,
}

/// Label of the MLS exporter that blinds recipient tags.
const TAG_LABEL: &str = "witan recipient tag";
/// How many times a joiner sends its request again, with a fresh key package, when
/// `pending_join_timeout_ms` passes without a welcome, before it gives up (`JoinExpired`).
/// A group of sleeping phones may read the request late and admit the device after one
/// timeout; a joiner that gave up by then would be a member that never learns it is in.
/// Each new request also starts the members' takeover windows again.
pub const JOIN_RENEWALS: u32 = 2;

/// The persisted state of one conversation. See the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    pub(crate) id: String,
    pub(crate) me: MemberId,
    pub(crate) state: State,
    pub(crate) settings: Settings,
    pub(crate) epoch: u64,
    /// Members of the epoch in leaf order, with their signature keys.
    pub(crate) members: Vec<(MemberId, [u8; 32])>,
    /// The epoch's leader order (see `steward_schedule`).
    pub(crate) leaders: Vec<MemberId>,
    /// This member's recipient tag in the epoch.
    pub(crate) tag: Vec<u8>,
    pub(crate) pending_join_until: Option<u64>,
    /// How many times this joiner sent its request again (see [`JOIN_RENEWALS`]).
    pub(crate) join_renewals: u32,
    /// This member gave up waiting to join (`JoinExpired`) and was never in: a welcome that
    /// comes later (an add approved in time and certified after that) still brings it in.
    pub(crate) join_expired: bool,
    pub(crate) leaving: bool,
    pub(crate) sent_count: u64,
    pub(crate) rejoin_required: bool,
    /// The epoch this member entered the group in (created or joined).
    pub(crate) since_epoch: u64,
    /// When this member next asks for the certified commits it lacks, and how often it did.
    pub(crate) catch_up_at: Option<u64>,
    pub(crate) catch_up_tries: u32,
    /// Members of this epoch that said the commit this member needs is no longer kept.
    pub(crate) gone: BTreeSet<MemberId>,
    /// While joining: the member the joiner expects in the group it joins (its trust
    /// anchor, see `request_join_expecting`).
    pub(crate) join_anchor: Option<MemberId>,
    /// The epoch's seed (`steward_schedule::epoch_seed` of the commit that opened it).
    pub(crate) epoch_seed: Vec<u8>,
    /// Sealing keys of this epoch and of the last `MAX_PAST_EPOCHS` (oldest first): votes
    /// sealed in an epoch this member has just left still count (see `sealed.rs`).
    pub(crate) seal_keys: Vec<SealKey>,
    pub(crate) ballots: BallotBox,
    pub(crate) round: CommitRound,
    pub(crate) stewards: StewardSchedule,
    pub(crate) scores: ScoreBook,
    pub(crate) joins: JoinQueue,
    pub(crate) archive: Archive,
    /// Parts changed since the state was loaded or last encoded.
    pub(crate) dirty: BTreeSet<PartKey>,
    /// The member set and signer map of `members` (never stored; see `roster.rs`).
    pub(crate) roster: roster::RosterCache,
    /// Vote signatures a batch proved for the packets being applied (never stored; see
    /// `sealed.rs`).
    pub(crate) checked: sealed::ProvedVotes,
}

impl Conversation {
    /// The conversation's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The current MLS epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The members of the current epoch.
    pub fn members(&self) -> Vec<MemberId> {
        self.members.iter().map(|(m, _)| *m).collect()
    }

    /// This member's blinded recipient tag in the current epoch: packets addressed to another
    /// member carry another tag in their envelope, so a client may drop them unread (the
    /// engine drops them too).
    pub fn recipient_tag(&self) -> &[u8] {
        &self.tag
    }

    /// The member was told it fell too far behind and must join again.
    pub fn rejoin_required(&self) -> bool {
        self.rejoin_required
    }

    pub fn is_member_state(&self) -> bool {
        !matches!(self.state, State::PendingJoin | State::Left)
    }

    /// Topics this conversation needs delivered: [`Self::topics_of`] its id and whether it
    /// [`listens`](Self::listens).
    pub fn topics(&self) -> Vec<String> {
        Self::topics_of(&self.id, self.listens())
    }

    /// Whether this conversation takes traffic: it has not left, or it is a join that gave up
    /// and still listens for a late welcome. Its topics change only when this does.
    pub fn listens(&self) -> bool {
        self.state != State::Left || self.join_expired
    }

    /// The topics of conversation `id`, listening or not.
    pub fn topics_of(id: &str, listens: bool) -> Vec<String> {
        if listens {
            vec![topics::app(id), topics::welcome(id)]
        } else {
            Vec::new()
        }
    }

    /// Whether a welcome is awaited: a join under way, or one that gave up (`JoinExpired`)
    /// and still listens for a late welcome, for as long again as it waited.
    pub fn is_waiting_to_join(&self) -> bool {
        self.state == State::PendingJoin || (self.state == State::Left && self.join_expired)
    }

    /// Whether `m` is a member of the epoch (through the roster's set: this runs once per
    /// packet, and per vote of a thousand).
    fn is_member(&self, m: &MemberId) -> bool {
        self.roster().set.contains(m)
    }

    /// Replaces the member list (and forgets what was derived from the old one).
    pub(crate) fn set_members(&mut self, members: Vec<(MemberId, [u8; 32])>) {
        self.members = members;
        self.roster = roster::RosterCache::default();
    }

    /// The member set and signer map of the epoch (built once per member list).
    fn roster(&self) -> std::sync::Arc<roster::Roster> {
        self.roster.get(&self.members)
    }

    fn touch(&mut self, part: PartKey) {
        self.dirty.insert(part);
    }

    /// Runs `f` with the ballot box and a scope of the current epoch (the box is marked
    /// changed).
    fn with_ballots<T>(
        &mut self,
        now_ms: u64,
        f: impl FnOnce(&mut BallotBox, &Scope<'_>) -> T,
    ) -> T {
        self.touch(PartKey::Ballots);
        let roster = self.roster();
        let scope = Scope {
            conversation: &self.id,
            members: &roster.set,
            roster: roster.serial,
            now_ms,
            settings: &self.settings,
            checked: &self.checked.signatures,
        };
        f(&mut self.ballots, &scope)
    }

    /// Reads the ballot box with a scope of the current epoch.
    fn read_ballots<T>(&self, now_ms: u64, f: impl FnOnce(&BallotBox, &Scope<'_>) -> T) -> T {
        let roster = self.roster();
        let scope = Scope {
            conversation: &self.id,
            members: &roster.set,
            roster: roster.serial,
            now_ms,
            settings: &self.settings,
            checked: &self.checked.signatures,
        };
        f(&self.ballots, &scope)
    }

    /// Runs `f` with the commit round and its context (the round is marked changed).
    fn with_round<T>(
        &mut self,
        ctx: &Ctx,
        f: impl FnOnce(&mut CommitRound, &RoundCtx<'_>) -> T,
    ) -> T {
        self.touch(PartKey::Round);
        let roster = self.roster();
        let rcx = round_ctx(
            &self.id,
            self.epoch,
            &self.leaders,
            &self.settings,
            ctx,
            &roster.signers,
        );
        f(&mut self.round, &rcx)
    }

    /// Reads the commit round with its context.
    fn read_round<T>(&self, ctx: &Ctx, f: impl FnOnce(&CommitRound, &RoundCtx<'_>) -> T) -> T {
        let roster = self.roster();
        let rcx = round_ctx(
            &self.id,
            self.epoch,
            &self.leaders,
            &self.settings,
            ctx,
            &roster.signers,
        );
        f(&self.round, &rcx)
    }

    /// The state the parts imply (see [`State`]).
    fn derived_state(&self) -> State {
        if !self.is_member_state() {
            return self.state;
        }
        let round = self.round.round();
        if round == 0 || !self.round.started() {
            return State::Working;
        }
        if self.round.lock().is_some() {
            return State::Selection;
        }
        let leader = self.leaders.get(round as usize % self.leaders.len().max(1));
        match leader {
            Some(l) if self.stewards.contains(l) => State::Freezing,
            _ => State::Reelection,
        }
    }

    fn set_state(&mut self, state: State, out: &mut Output) {
        if self.state != state {
            tracing::info!(conversation = %self.id, from = ?self.state, to = ?state, epoch = self.epoch, "state changed");
            self.state = state;
            self.touch(PartKey::Core);
            out.events.push(Event::StateChanged(state));
        }
    }

    /// After a step: the state follows the parts.
    fn settle_state(&mut self, out: &mut Output) {
        let state = self.derived_state();
        self.set_state(state, out);
    }

    /// Reads the epoch's facts from the group when a migrated state lacks them.
    fn refresh_epoch_facts(&mut self, ctx: &Ctx) -> Result<(), ProtocolError> {
        if !self.needs_epoch_facts() {
            return Ok(());
        }
        let group = self.load_group(ctx)?;
        self.set_members(group.member_keys());
        let ids = self.members();
        self.leaders = self
            .stewards
            .leader_order(&self.id, self.epoch, &self.epoch_seed, &ids);
        self.tag = recipient_tag(ctx, &group, &self.me)?;
        self.scores
            .set_members(&ids, self.settings.default_peer_score);
        self.touch(PartKey::Core);
        self.touch(PartKey::Scores);
        Ok(())
    }

    /// Takes the facts of a new epoch from the group: members, keys, leader order, this
    /// member's recipient tag.
    fn enter_epoch(&mut self, ctx: &Ctx, group: &Group) -> Result<(), ProtocolError> {
        self.epoch = group.epoch();
        self.set_members(group.member_keys());
        let ids = self.members();
        self.leaders = self
            .stewards
            .leader_order(&self.id, self.epoch, &self.epoch_seed, &ids);
        self.tag = recipient_tag(ctx, group, &self.me)?;
        if group.is_active() {
            self.keep_seal_key(group.seal_key(ctx.provider)?);
        }
        self.round = CommitRound::new(self.epoch);
        self.scores
            .set_members(&ids, self.settings.default_peer_score);
        for part in PartKey::ALL {
            self.touch(*part);
        }
        Ok(())
    }

    fn emit(
        &self,
        out: &mut Output,
        topic: String,
        kind: wire::PacketKind,
        body: Vec<u8>,
        recipient: Option<Vec<u8>>,
    ) {
        let (env, seen) =
            wire::Envelope::keyed(&self.id, self.me.as_bytes(), kind, body, recipient);
        out.outbound.push(Outbound {
            topic,
            payload: wire::encode(&env),
            packet_id: env.packet_id_hex(),
            seen,
            copy_known: kind == wire::PacketKind::Sealed,
        });
    }

    /// The MLS group, from the provider's group cache when it holds it (see
    /// `mls::GroupCache`); it goes back there when dropped.
    fn load_group<'c>(&self, ctx: &Ctx<'c, '_>) -> Result<CachedGroup<'c>, ProtocolError> {
        CachedGroup::load(ctx.provider, self.id.as_bytes())?
            .ok_or_else(|| ProtocolError::Internal("MLS group state is missing".into()))
    }

    /// Encrypts a payload for the group and queues it on the app topic, to everyone or
    /// addressed to one member.
    fn send(
        &self,
        ctx: &Ctx,
        group: &mut Group,
        content: Content,
        to: Option<MemberId>,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let plaintext = wire::GroupPayload {
            content: Some(content),
        }
        .encode_to_vec();
        let ciphertext = group.encrypt(ctx.provider, ctx.identity, &plaintext)?;
        self.publish(ctx, group, wire::PacketKind::Group, ciphertext, to, out)
    }

    /// Queues a packet of the group's traffic (an MLS message or a sealed one) on the
    /// application topic, to everyone or to `to`'s recipient tag.
    fn publish(
        &self,
        ctx: &Ctx,
        group: &Group,
        kind: wire::PacketKind,
        body: Vec<u8>,
        to: Option<MemberId>,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let recipient = to.map(|m| recipient_tag(ctx, group, &m)).transpose()?;
        self.emit(out, topics::app(&self.id), kind, body, recipient);
        Ok(())
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

    /// A local command: send a chat message.
    pub fn send_message(
        &mut self,
        ctx: &Ctx,
        body: &[u8],
    ) -> Result<(String, Output), ProtocolError> {
        use sha2::{Digest, Sha256};
        self.require_member("send a message")?;
        self.refresh_epoch_facts(ctx)?;
        if body.len() > wire::limits::MAX_CHAT_BODY_BYTES {
            return Err(ProtocolError::InvalidInput(format!(
                "message body is {} bytes; at most {} are allowed",
                body.len(),
                wire::limits::MAX_CHAT_BODY_BYTES
            )));
        }
        let mut group = self.load_group(ctx)?;
        self.sent_count += 1;
        self.touch(PartKey::Core);
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
        self.send(ctx, &mut group, Content::Chat(chat), None, &mut out)?;
        let id = hex::encode(&message_id);
        out.messages.push(super::ChatRecord {
            message_id: id.clone(),
            sender: self.me,
            body: body.to_vec(),
            sent_at_ms: ctx.now_ms,
            own: true,
        });
        Ok((id, out))
    }
}

/// The commit round's view of the conversation.
fn round_ctx<'a>(
    conversation: &'a str,
    epoch: u64,
    leaders: &'a [MemberId],
    s: &Settings,
    ctx: &'a Ctx,
    signers: &'a Signers,
) -> RoundCtx<'a> {
    RoundCtx {
        conversation,
        epoch,
        identity: ctx.identity,
        leaders,
        signers,
        now_ms: ctx.now_ms,
        timing: Timing {
            first_round_ms: s.commit_inactivity_ms,
            round_ms: s.freeze_window_ms,
            commit_delay_ms: s.commit_delay_ms,
            collect_ms: (s.freeze_window_ms / 4).max(1),
        },
    }
}

/// This member's (or `member`'s) blinded recipient tag in the group's current epoch.
fn recipient_tag(ctx: &Ctx, group: &Group, member: &MemberId) -> Result<Vec<u8>, ProtocolError> {
    if !group.is_active() {
        return Ok(Vec::new());
    }
    Ok(group.export(
        ctx.provider,
        TAG_LABEL,
        member.as_bytes(),
        wire::limits::RECIPIENT_TAG_BYTES,
    )?)
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
