//! How a conversation begins at this member: a new group it creates, or a join request it
//! publishes (again, when the group did not answer in time).

use std::collections::BTreeSet;

use super::{Archive, Conversation, PartKey, State, roster, validate_conversation_id};
use crate::mls::{self, Group, MemberId};
use crate::protocol::ballot_box::BallotBox;
use crate::protocol::commit_round::CommitRound;
use crate::protocol::join_queue::JoinQueue;
use crate::protocol::score_book::ScoreBook;
use crate::protocol::settings::Settings;
use crate::protocol::steward_schedule::StewardSchedule;
use crate::protocol::{Ctx, Event, Output, ProtocolError, topics};
use witan_wire as wire;

impl Conversation {
    pub(super) fn blank(id: &str, me: MemberId, settings: Settings, state: State) -> Self {
        Conversation {
            id: id.to_string(),
            me,
            state,
            settings,
            epoch: 0,
            members: Vec::new(),
            leaders: Vec::new(),
            tag: Vec::new(),
            pending_join_until: None,
            join_renewals: 0,
            join_expired: false,
            leaving: false,
            sent_count: 0,
            rejoin_required: false,
            since_epoch: 0,
            catch_up_at: None,
            catch_up_tries: 0,
            gone: BTreeSet::new(),
            join_anchor: None,
            epoch_seed: Vec::new(),
            seal_keys: Vec::new(),
            ballots: BallotBox::fresh(),
            round: CommitRound::new(0),
            stewards: StewardSchedule::default(),
            scores: ScoreBook::default(),
            joins: JoinQueue::default(),
            archive: Archive::default(),
            dirty: PartKey::ALL.iter().copied().collect(),
            roster: roster::RosterCache::default(),
            checked: Default::default(),
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
        let group = Group::create(ctx.provider, ctx.identity, id.as_bytes())?;
        let me = ctx.identity.member_id();
        let mut conv = Conversation::blank(id, me, settings, State::Working);
        conv.stewards = StewardSchedule::founding(me);
        conv.enter_epoch(ctx, &group)?;
        conv.joins.member_since_ms = ctx.now_ms;
        let mut out = Output::default();
        out.events.push(Event::StateChanged(State::Working));
        out.events
            .push(Event::StewardsChanged(conv.stewards.active()));
        Ok((conv, out))
    }

    /// Publishes a join request with a fresh key package and waits for the welcome until
    /// `until`.
    pub(super) fn send_join_request(
        &mut self,
        ctx: &Ctx,
        until: u64,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let key_package = mls::new_key_package(ctx.provider, ctx.identity)?;
        self.pending_join_until = Some(until);
        self.touch(PartKey::Core);
        let body = wire::encode(&wire::JoinRequest {
            key_package,
            requested_at_ms: ctx.now_ms,
        });
        self.emit(
            out,
            topics::welcome(&self.id),
            wire::PacketKind::JoinRequest,
            body,
            None,
        );
        Ok(())
    }

    /// Starts a join: publishes a key package on the welcome topic and waits for a welcome.
    /// Without a trust anchor: anyone who knows the conversation id can create a group under
    /// it and welcome this member first (see [`Self::request_join_expecting`]).
    pub fn request_join(
        ctx: &Ctx,
        id: &str,
        settings: Settings,
    ) -> Result<(Self, Output), ProtocolError> {
        Self::request_join_expecting(ctx, id, settings, None)
    }

    /// Starts a join that accepts only a welcome into a group `expected` is a member of and
    /// whose certificate (of the commit adding this member) `expected` signed: a member the
    /// joiner knows out-of-band, such as the one who invited it. An impostor group under the
    /// same id, alone or with members of its own making, cannot show that signature.
    pub fn request_join_expecting(
        ctx: &Ctx,
        id: &str,
        settings: Settings,
        expected: Option<MemberId>,
    ) -> Result<(Self, Output), ProtocolError> {
        validate_conversation_id(id)?;
        // A member told to re-join still holds the group it fell out of; the welcome that
        // brings it back builds the group anew under the same id.
        if let Some(stale) = Group::load(ctx.provider, id.as_bytes())? {
            stale.delete(ctx.provider)?;
        }
        let me = ctx.identity.member_id();
        let mut conv = Conversation::blank(id, me, settings, State::PendingJoin);
        conv.join_anchor = expected;
        let mut out = Output::default();
        let until = ctx
            .now_ms
            .saturating_add(conv.settings.pending_join_timeout_ms);
        conv.send_join_request(ctx, until, &mut out)?;
        out.events.push(Event::StateChanged(State::PendingJoin));
        Ok((conv, out))
    }
}
