//! Deadlines. Every deadline is an absolute time in the parts' state, so a member that slept
//! past several fires them on its next poll, earliest first: a join that timed out (its
//! request sent again, `JOIN_RENEWALS` times, then given up), automatic
//! votes, relays of held votes, join requests whose takeover window passed, proposals whose
//! voting window closed (work for the commit round), and the round's own timers.
//!
//! Timers drive liveness only; no safety property depends on when they fire. In the
//! extension role the round's work fires too — automatic votes, join takeovers, round
//! timeouts, leading — so that a group of mostly sleeping phones moves on during push
//! wake-ups; relays, emergencies and asking for lost commits wait for the app.

use super::{Conversation, PartKey, State};
use crate::protocol::{Ctx, Event, Output, ProtocolError, commit_round};
use witan_wire::{self as wire, group_payload::Content};

/// Which of its work a member shares (see [`Conversation::share_work`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sharing {
    All,
    /// Only the proposals fewer than a quorum voted on.
    Unquorate,
}

/// Rounds of firing per poll at most (a guard against a bug looping in the host).
const MAX_FIRINGS: usize = 1_000;

impl Conversation {
    /// Fires every deadline due at `ctx.now_ms`.
    pub fn poll(&mut self, ctx: &Ctx) -> Result<Output, ProtocolError> {
        self.refresh_epoch_facts(ctx)?;
        let mut out = Output::default();
        self.fire_due(ctx, &mut out)?;
        self.settle_state(&mut out);
        Ok(out)
    }

    /// The earliest deadline this conversation has.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.state == State::Left && !self.join_expired {
            return None;
        }
        let mut next = self.pending_join_until;
        if self.is_member_state() {
            for at in [
                self.ballots.next_deadline(&self.me, &self.settings),
                self.round.next_deadline(),
                self.join_deadline(),
                self.catch_up_at,
            ]
            .into_iter()
            .flatten()
            {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }

    pub(super) fn fire_due(&mut self, ctx: &Ctx, out: &mut Output) -> Result<(), ProtocolError> {
        self.fire_join_timeout(ctx, out)?;
        if !self.is_member_state() {
            return Ok(());
        }
        self.expire_joins(ctx.now_ms);
        // Asking for lost commits waits for the app (its answers may be large).
        if !ctx.defer_governance && self.catch_up_at.is_some_and(|at| at <= ctx.now_ms) {
            self.ask_to_catch_up(ctx, out);
        }
        let mut group = self.load_group(ctx)?;
        for _ in 0..MAX_FIRINGS {
            let epoch = self.epoch;
            let fired = self.fire_ballots(ctx, &mut group, out)?;
            let released = self.release_held(ctx, &mut group, out)?;
            if !self.is_member_state() {
                return Ok(());
            }
            self.propose_due_joins(ctx, &mut group, out)?;
            // Before `note_work`, which moves a round that ran out on: the round's leader
            // may lack the work, shared once per round run out (F31).
            if self.round.timed_out(ctx.now_ms) && self.has_work(ctx) {
                self.share_work(ctx, &mut group, Sharing::Unquorate, out)?;
            }
            self.note_work(ctx, &mut group, out)?;
            if self.round.timed_out(ctx.now_ms) && !self.has_work(ctx) {
                // Nothing to commit here: rounds rest rather than run on for ever.
                self.touch(PartKey::Round);
                self.round.rest();
            }
            let round_fired = self.poll_round(ctx, &mut group, out)?;
            if !fired && !released && !round_fired && self.epoch == epoch {
                self.raise_emergencies(ctx, &mut group, out)?;
                if self.ballots.prune(ctx.now_ms) {
                    self.touch(PartKey::Ballots);
                }
                return Ok(());
            }
        }
        Err(ProtocolError::Internal("deadlines did not settle".into()))
    }

    /// A joiner's wait ran out: it sends its request again (see `JOIN_RENEWALS`) or gives up.
    fn fire_join_timeout(&mut self, ctx: &Ctx, out: &mut Output) -> Result<(), ProtocolError> {
        if let Some(mut until) = self.pending_join_until.filter(|at| *at <= ctx.now_ms) {
            self.pending_join_until = None;
            self.touch(PartKey::Core);
            // The joiner's whole patience counts from its first request: one asleep through
            // a renewal's window spends it without sending.
            while until <= ctx.now_ms && self.join_renewals < super::JOIN_RENEWALS {
                self.join_renewals += 1;
                until = until.saturating_add(self.settings.pending_join_timeout_ms);
            }
            if self.state == State::PendingJoin && until > ctx.now_ms {
                self.send_join_request(ctx, until, out)?;
            } else if self.state == State::PendingJoin {
                out.events.push(Event::JoinExpired);
                self.set_state(State::Left, out);
                // Still listening, for as long again, for a welcome of an add the group
                // approved in time and certified late (`late_join_window_ms`) — unless this
                // member slept through that too.
                let late_until = until.saturating_add(self.late_join_window_ms());
                if late_until > ctx.now_ms {
                    self.join_expired = true;
                    self.pending_join_until = Some(late_until);
                }
            } else if self.join_expired {
                tracing::info!(conversation = %self.id, "no late welcome came: stops listening");
                self.join_expired = false;
            }
        }
        Ok(())
    }

    /// How long a join that gave up still listens for a late welcome: its patience again.
    fn late_join_window_ms(&self) -> u64 {
        let timeouts = u64::from(super::JOIN_RENEWALS) + 1;
        self.settings
            .pending_join_timeout_ms
            .saturating_mul(timeouts)
    }

    /// Fires the round's due timers, if any; returns whether they asked for something.
    pub(super) fn poll_round(
        &mut self,
        ctx: &Ctx,
        group: &mut crate::mls::Group,
        out: &mut Output,
    ) -> Result<bool, ProtocolError> {
        if self.round.next_deadline().is_none_or(|at| at > ctx.now_ms) {
            return Ok(false);
        }
        let effects = self.with_round(ctx, |r, rcx| r.poll(rcx));
        let fired = !effects.is_empty();
        self.drive(ctx, group, effects, out)?;
        Ok(fired)
    }

    /// Shares the work this member holds — the proposals it considers decided, with the votes
    /// it holds — when a round runs out or it passes its turn: whoever leads next may not have
    /// seen them, and a member without work lets its rounds rest. A leader passing its turn
    /// shares all of it (one member, once a round); a round running out, which every member
    /// with work sees at once, shares only what fewer than a quorum voted on: one a quorum
    /// voted on is held by more than f honest members, whose turns come; sharing it too would
    /// cost every member a copy from every member whenever a leader sleeps.
    pub(super) fn share_work(
        &mut self,
        ctx: &Ctx,
        group: &mut crate::mls::Group,
        which: Sharing,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let decided = self.read_ballots(ctx.now_ms, |b, scope| b.decided(scope));
        let limit = self.settings.max_commit_proposals as usize;
        let quorum = match which {
            Sharing::All => usize::MAX,
            Sharing::Unquorate => commit_round::quorum(self.roster().set.len()),
        };
        let shared: Vec<wire::Proposal> = decided
            .iter()
            .filter_map(|(d, _)| self.ballots.get(d))
            .filter(|b| b.signed_votes().count() < quorum)
            .take(limit)
            .map(|b| {
                let mut p = b.header().clone();
                p.votes.extend(
                    b.signed_votes()
                        .filter(|v| v.vote_owner != p.proposal_owner)
                        .cloned(),
                );
                p
            })
            .collect();
        for p in shared {
            self.send(ctx, group, Content::Proposal(p), None, out)?;
        }
        Ok(())
    }

    /// Fires due automatic votes and relays; returns whether any fired.
    fn fire_ballots(
        &mut self,
        ctx: &Ctx,
        group: &mut crate::mls::Group,
        out: &mut Output,
    ) -> Result<bool, ProtocolError> {
        let now = ctx.now_ms;
        let due_votes: Vec<_> = self
            .ballots
            .auto_votes
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(d, _)| *d)
            .collect();
        // Relays wait for the app: the extension's pushes carry the votes anyway.
        let due_relays: Vec<_> = self
            .ballots
            .open()
            .filter(|b| {
                !ctx.defer_governance && !b.relayed && b.has_voted(&self.me) && b.relay_at() <= now
            })
            .map(|b| *b.digest())
            .collect();
        for d in &due_votes {
            self.auto_vote(ctx, group, d, out)?;
        }
        for d in &due_relays {
            self.relay(ctx, group, d, out)?;
        }
        Ok(!due_votes.is_empty() || !due_relays.is_empty())
    }
}
