//! Proposals, votes and join requests: the local commands (propose a removal, vote, leave),
//! what arrives of them from others, automatic votes and relays, emergencies raised from
//! scores, and who turns a join request into an add proposal (`join_queue`).
//!
//! Every member is a voter; a member asked to vote hears `VoteRequested`. A tentative
//! decision here only starts the commit round: what the group decided is what a certified
//! commit resolves.

use super::{Conversation, PartKey};
use crate::mls::{self, Group, MemberId};
use crate::protocol::ballot_box::{
    Action, BallotError, Class, Digest, MAX_OPEN_ADDS_PER_OWNER, MAX_OPEN_PER_OWNER,
    ProposalContext, VoteOutcome, new_proposal, parse_payload, verify_evidence,
};
use crate::protocol::{Ctx, Event, LeaveReason, Output, ProtocolError};
use witan_wire::{self as wire, group_payload::Content};

impl Conversation {
    /// A local removal proposal. Returns its proposal id.
    pub fn propose_removal(
        &mut self,
        ctx: &Ctx,
        member: MemberId,
    ) -> Result<(u64, Output), ProtocolError> {
        self.require_member("propose a removal")?;
        self.refresh_epoch_facts(ctx)?;
        if member == self.me {
            return Err(ProtocolError::InvalidInput(
                "use leave() to remove yourself".into(),
            ));
        }
        if !self.is_member(&member) {
            return Err(ProtocolError::NotFound(format!(
                "member {}",
                member.to_hex()
            )));
        }
        if let Some(existing) = self
            .ballots
            .open()
            .find(|b| b.action().removes() == Some(member))
        {
            return Ok((existing.id(), Output::default()));
        }
        let mut group = self.load_group(ctx)?;
        let mut out = Output::default();
        let id = self.propose(ctx, &mut group, Action::Remove { member }, &mut out)?;
        self.finish_local(ctx, &mut group, &mut out)?;
        Ok((id, out))
    }

    /// A vote by hand.
    pub fn vote(
        &mut self,
        ctx: &Ctx,
        proposal_id: u64,
        approve: bool,
    ) -> Result<Output, ProtocolError> {
        self.require_member("vote")?;
        self.refresh_epoch_facts(ctx)?;
        let ballot = self
            .ballots
            .by_id(proposal_id)
            .ok_or_else(|| ProtocolError::NotFound(format!("proposal {proposal_id}")))?;
        if ballot.has_voted(&self.me) {
            return Err(ProtocolError::InvalidInput(
                "this member already voted on the proposal".into(),
            ));
        }
        let digest = *ballot.digest();
        let mut group = self.load_group(ctx)?;
        let mut out = Output::default();
        self.cast(ctx, &mut group, &digest, approve, &mut out)?;
        self.finish_local(ctx, &mut group, &mut out)?;
        Ok(out)
    }

    /// The member's own leave request.
    pub fn leave(&mut self, ctx: &Ctx) -> Result<Output, ProtocolError> {
        let mut out = Output::default();
        match self.state {
            super::State::Left => {
                return Err(ProtocolError::WrongState {
                    state: self.state,
                    reason: "already left".into(),
                });
            }
            super::State::PendingJoin => {
                self.pending_join_until = None;
                out.events.push(Event::Left(LeaveReason::SelfLeave));
                self.set_state(super::State::Left, &mut out);
                return Ok(out);
            }
            _ => {}
        }
        if self.members.len() <= 1 {
            out.events.push(Event::Left(LeaveReason::SelfLeave));
            self.set_state(super::State::Left, &mut out);
            return Ok(out);
        }
        if self.leaving {
            return Ok(out);
        }
        self.refresh_epoch_facts(ctx)?;
        self.leaving = true;
        self.touch(PartKey::Core);
        let mut group = self.load_group(ctx)?;
        self.propose(ctx, &mut group, Action::Leave { member: self.me }, &mut out)?;
        self.finish_local(ctx, &mut group, &mut out)?;
        Ok(out)
    }

    /// After a local command: due deadlines, the round's work, the state.
    fn finish_local(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        self.note_work(ctx, group, out)?;
        self.fire_due(ctx, out)?;
        self.settle_state(out);
        Ok(())
    }

    /// Creates, registers and sends a proposal.
    pub(super) fn propose(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        action: Action,
        out: &mut Output,
    ) -> Result<u64, ProtocolError> {
        let cx = ProposalContext {
            conversation: &self.id,
            epoch: self.epoch,
            members: self.members.len(),
            now_ms: ctx.now_ms,
            settings: &self.settings,
        };
        let p = new_proposal(ctx.identity, &action, &cx);
        let id = p.proposal_id;
        let me = self.me;
        let (digest, _) = self.with_ballots(ctx.now_ms, |b, scope| b.receive(&p, me, scope))?;
        if action.class() < Class::Emergency && self.ballots.emergency_open() {
            // Lower-class governance waits for the open emergency (spec "Partial Freeze").
            tracing::debug!(conversation = %self.id, proposal = id, "held back behind an emergency");
            self.ballots.hold(&digest);
            return Ok(id);
        }
        tracing::debug!(conversation = %self.id, proposal = id, kind = ?action.kind(), "proposed");
        self.send(ctx, group, Content::Proposal(p), None, out)?;
        Ok(id)
    }

    /// Checks what a proposal asks against the group before it is registered.
    fn check_action(
        &self,
        ctx: &Ctx,
        action: &Action,
        sender: MemberId,
    ) -> Result<(), ProtocolError> {
        match action {
            Action::Add {
                member,
                key_package,
            } => {
                let info = mls::validate_key_package(ctx.provider, key_package)?;
                if info.member_id != *member {
                    return Err(ProtocolError::InvalidInput(
                        "key package belongs to another member".into(),
                    ));
                }
                if self.is_member(member) {
                    return Err(ProtocolError::InvalidInput("already a member".into()));
                }
                if self.joins.is_spent(key_package) {
                    return Err(ProtocolError::InvalidInput(
                        "the key package was used by an earlier commit".into(),
                    ));
                }
            }
            Action::Remove { member } | Action::Emergency { member, .. } => {
                if !self.is_member(member) {
                    return Err(ProtocolError::InvalidInput("target is not a member".into()));
                }
            }
            Action::Leave { member } => {
                if *member != sender {
                    return Err(ProtocolError::InvalidInput(
                        "only a member itself can ask to leave".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A proposal received from `sender`: its owner, or a member sharing its work (the
    /// proposal then carries the votes that member holds after its owner's).
    pub(super) fn on_proposal(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        sender: MemberId,
        mut p: wire::Proposal,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let (action, made_in) = parse_payload(&p)?;
        let owner = MemberId::from_public_key(&p.proposal_owner);
        let shared = owner != sender;
        if made_in < self.since_epoch
            && !self
                .ballots
                .was_open_at_join(&wire::proposal_digest(&self.id, &p))
        {
            // Made before this member joined and not open then as far as it was told: whether
            // a commit it did not see resolved it is unknown here (a replay). A commit that
            // resolves it still shows it.
            return Err(ProtocolError::InvalidInput(
                "the proposal was made before this member joined".into(),
            ));
        }
        self.check_action(ctx, &action, owner)?;
        let (digest, new) =
            self.with_ballots(ctx.now_ms, |b, scope| b.receive(&p, sender, scope))?;
        if new {
            self.welcome_proposal(ctx, &digest, out);
        }
        if shared {
            for v in p.votes.drain(..).skip(1) {
                self.on_vote(ctx, group, None, v, out)?;
            }
        }
        self.note_work(ctx, group, out)
    }

    /// A proposal newly registered: asks this member to vote and schedules its automatic
    /// vote.
    pub(super) fn welcome_proposal(&mut self, ctx: &Ctx, digest: &Digest, out: &mut Output) {
        let Some(b) = self.ballots.get(digest) else {
            return;
        };
        if b.has_voted(&self.me) || !self.is_member(&self.me) {
            return;
        }
        out.events.push(Event::VoteRequested(self.proposal_view(b)));
        if let Some(delay) = self.settings.auto_vote_delay_ms {
            let at = ctx.now_ms.saturating_add(delay);
            self.touch(PartKey::Ballots);
            self.ballots.schedule_auto_vote(*digest, Some(at));
        }
    }

    /// A vote received directly (`carrier` = its MLS sender) or relayed (`None`: a bad one is
    /// skipped, the bundle's other votes still count).
    pub(super) fn on_vote(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        carrier: Option<MemberId>,
        v: wire::Vote,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        match self.with_ballots(ctx.now_ms, |b, scope| b.add_vote(&v, carrier, scope)) {
            Ok(VoteOutcome::Equivocation(proof)) => {
                let voter = MemberId::from_public_key(&v.vote_owner);
                tracing::warn!(conversation = %self.id, member = %voter.short(), "a member voted both ways");
                out.events.push(Event::Warning(format!(
                    "member {} voted both ways on a proposal",
                    voter.short()
                )));
                self.send(ctx, group, Content::Proof(*proof), None, out)?;
            }
            Ok(VoteOutcome::Duplicate) => out.duplicate = true,
            Ok(_) => {}
            Err(e) if carrier.is_some() => return Err(e.into()),
            Err(e) => tracing::debug!(conversation = %self.id, error = %e, "relayed vote skipped"),
        }
        self.note_work(ctx, group, out)
    }

    pub(super) fn on_proof(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        proof: wire::EquivocationProof,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        self.with_ballots(ctx.now_ms, |b, scope| b.add_proof(&proof, scope))?;
        self.note_work(ctx, group, out)
    }

    /// The automatic vote on a proposal, with this member's opinion.
    pub(super) fn auto_vote(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        digest: &Digest,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        self.touch(PartKey::Ballots);
        self.ballots.schedule_auto_vote(*digest, None);
        let Some(b) = self.ballots.get(digest) else {
            return Ok(());
        };
        if b.has_voted(&self.me) || !self.is_member(&self.me) {
            return Ok(());
        }
        let opinion = self.opinion(b.action());
        self.cast(ctx, group, digest, opinion, out)
    }

    /// What this member votes when it votes automatically.
    fn opinion(&self, action: &Action) -> bool {
        match action {
            Action::Add { member, .. } => !self.is_member(member),
            Action::Remove { member } | Action::Leave { member } => self.is_member(member),
            // Evidence, when carried, is what the vote is on: a proof any member checks.
            Action::Emergency {
                member, evidence, ..
            } if !evidence.is_empty() => {
                self.is_member(member) && verify_evidence(&self.id, member, evidence).is_ok()
            }
            Action::Emergency { member, .. } => self
                .scores
                .local_score(member)
                .is_some_and(|s| s < self.settings.removal_threshold),
        }
    }

    /// Re-broadcasts the votes held on a proposal, once, halfway through its window, so
    /// members that lost some votes on the network still get them.
    pub(super) fn relay(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        digest: &Digest,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        self.touch(PartKey::Ballots);
        if let Some(votes) = self.ballots.take_relay(digest, ctx.now_ms) {
            self.send(
                ctx,
                group,
                Content::Votes(wire::VoteBundle { votes }),
                None,
                out,
            )?;
        }
        Ok(())
    }

    /// Whether this member has something for the commit round: a proposal it considers
    /// decided.
    pub(super) fn has_work(&self, ctx: &Ctx) -> bool {
        self.read_ballots(ctx.now_ms, |b, scope| !b.decided(scope).is_empty())
    }

    /// Starts the commit round if this member tentatively considers something decided.
    pub(super) fn note_work(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if !self.is_member_state() {
            return Ok(());
        }
        if self.ballots.mark_checked(ctx.now_ms, &self.settings) {
            self.touch(PartKey::Ballots);
        }
        if !self.has_work(ctx) {
            return Ok(());
        }
        if self.round.needs_work_noted(&self.leaders, &self.me) {
            self.with_round(ctx, |r, rcx| r.note_work(rcx));
        }
        self.poll_round(ctx, group, out).map(|_| ())
    }

    /// A join request from an outsider on the welcome topic.
    pub(super) fn on_join_request(
        &mut self,
        ctx: &Ctx,
        req: wire::JoinRequest,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let info = mls::validate_key_package(ctx.provider, &req.key_package)?;
        // A member's request with a key package no commit used is a re-join (the device lost
        // its state); the key package it joined with is spent, so a replay of its first
        // request is refused by the queue.
        let skew = self.settings.max_clock_skew_ms;
        if info.member_id == self.me
            || (self.is_member(&info.member_id)
                && self
                    .joins
                    .made_before_membership(&info.member_id, req.requested_at_ms, skew))
        {
            return Ok(());
        }
        self.touch(PartKey::Joins);
        if !self.joins.add(info.member_id, req.key_package, ctx.now_ms) {
            return Ok(());
        }
        let mut group = self.load_group(ctx)?;
        self.propose_due_joins(ctx, &mut group, out)
    }

    /// This member's position in the epoch's leader order (its takeover rank).
    fn rank(&self) -> usize {
        self.leaders
            .iter()
            .position(|m| *m == self.me)
            .unwrap_or(self.leaders.len())
    }

    /// Whether the next step of `member`'s join request is proposed already: its add, or,
    /// for a re-join, the removal of its old leaf.
    fn join_proposed(&self, member: &MemberId) -> bool {
        let rejoin = self.is_member(member);
        self.ballots.open().any(|b| match b.action() {
            Action::Add { member: m, .. } => m == member,
            a => rejoin && a.removes() == Some(*member),
        })
    }

    /// Whether this member holds as many open proposals of either kind a join request may
    /// need (adds; removals of an old leaf, for a re-join) as one owner may: its next join
    /// proposals wait until a commit resolves some.
    fn proposals_full(&self) -> bool {
        let (adds, others) =
            self.ballots
                .open()
                .filter(|b| b.owner() == self.me)
                .fold((0, 0), |(a, o), b| match b.action() {
                    Action::Add { .. } => (a + 1, o),
                    _ => (a, o + 1),
                });
        adds >= MAX_OPEN_ADDS_PER_OWNER || others >= MAX_OPEN_PER_OWNER
    }

    /// When this member is next due to propose a join request (none while its proposals are
    /// at their bound: the commit that resolves some proposes the rest).
    pub(super) fn join_deadline(&self) -> Option<u64> {
        // No request, no deadline: spare the leader rank, a search of the member list.
        if self.joins.is_empty() || self.proposals_full() {
            return None;
        }
        let window = self.settings.recovery_inactivity_ms;
        self.joins
            .next_deadline(self.rank(), window, |m| self.join_proposed(m))
    }

    /// Proposes the adds of the join requests whose takeover window for this member passed.
    pub(super) fn propose_due_joins(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        // Runs after every packet: with no request queued it must not search the member list
        // (the leader rank), or a commit, which brings each member n packets, costs it n².
        if self.joins.is_empty() || !self.is_member_state() {
            return Ok(());
        }
        let window = self.settings.recovery_inactivity_ms;
        let due = self
            .joins
            .due(ctx.now_ms, self.rank(), window, |m| self.join_proposed(m));
        for (member, key_package) in due {
            // A re-join replaces the old leaf: its removal first, the add once committed.
            let action = if self.is_member(&member) {
                Action::Remove { member }
            } else {
                Action::Add {
                    member,
                    key_package,
                }
            };
            if self.proposals_full() {
                // The rest wait, queued, for the commit that resolves this member's proposals.
                break;
            }
            match self.propose(ctx, group, action, out) {
                Ok(_) => {}
                // The ballot box as a whole is full: the request waits, queued (it expires
                // with its joiner's patience).
                Err(ProtocolError::Vote(BallotError::Full(_))) => break,
                // A key package that expired since it was seen: the request is dropped.
                Err(ProtocolError::Mls(_)) => {
                    self.touch(PartKey::Joins);
                    self.joins.remove(&member);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends this member's proposals held back behind an emergency, once none is open.
    pub(super) fn release_held(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<bool, ProtocolError> {
        if ctx.defer_governance || !self.ballots.open().any(|b| b.held) {
            return Ok(false);
        }
        self.touch(PartKey::Ballots);
        let held = self.ballots.release_held();
        let any = !held.is_empty();
        for p in held {
            self.send(ctx, group, Content::Proposal(p), None, out)?;
        }
        Ok(any)
    }

    /// Raises emergency removals for members whose local score fell below the threshold and
    /// that no open proposal removes yet.
    pub(super) fn raise_emergencies(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if ctx.defer_governance || !self.is_member_state() {
            return Ok(());
        }
        for member in self.scores.below_threshold(&self.settings) {
            let pending = self
                .ballots
                .open()
                .any(|b| b.action().removes() == Some(member));
            if member == self.me || pending {
                continue;
            }
            let reason = "score below the removal threshold".to_string();
            let evidence = self.ballots.evidence_against(&member).unwrap_or_default();
            let action = Action::Emergency {
                member,
                reason,
                evidence,
            };
            self.propose(ctx, group, action, out)?;
        }
        Ok(())
    }

    /// Requests kept: the join queue expires what its joiners gave up on.
    pub(super) fn expire_joins(&mut self, now_ms: u64) {
        let timeout = self.settings.pending_join_timeout_ms;
        if self.joins.is_empty() {
            return;
        }
        // Expiring only drops requests: a change shows in their count, without a copy of the
        // queue per packet (a thousand key packages while a large group forms).
        let before = self.joins.len();
        self.joins.expire(now_ms, timeout);
        if self.joins.len() != before {
            self.touch(PartKey::Joins);
        }
    }
}
