//! Proposals and votes inside a conversation (spec "Consensus Types", "Partial Freeze
//! Semantics"): creating proposals, registering received ones, counting votes, voting by hand
//! or automatically, and the effects of a decision.
//!
//! Priority: while an emergency proposal is open, lower-class governance traffic (steward
//! elections and commit proposals, with their votes) is neither created nor accepted. Local
//! lower-class proposals made during that time are held back and sent once the emergency is
//! resolved; received ones are refused, so the sender's packet is not marked as processed and
//! a later re-delivery can still be accepted.

use prost::Message;

use super::{Conversation, MAX_BALLOTS, State};
use crate::mls::{self, Group, MemberId};
use crate::protocol::consensus::{self, Action, Ballot, Class};
use crate::protocol::scoring::ScoreEvent;
use crate::protocol::{Ctx, Event, Output, ProtocolError};
use witan_wire::{self as wire, group_payload::Content};

impl Conversation {
    /// A local removal proposal. Returns its proposal id.
    pub fn propose_removal(
        &mut self,
        ctx: &Ctx,
        member: MemberId,
    ) -> Result<(u64, Output), ProtocolError> {
        self.require_member("propose a removal")?;
        if member == self.me {
            return Err(ProtocolError::InvalidInput(
                "use leave() to remove yourself".into(),
            ));
        }
        if !self.members.contains(&member) {
            return Err(ProtocolError::NotFound(format!(
                "member {}",
                member.to_hex()
            )));
        }
        if let Some(existing) = self
            .ballots
            .values()
            .find(|b| b.action.removes() == Some(member) && b.decision != Some(false))
        {
            return Ok((existing.id, Output::default()));
        }
        let mut group = self.load_group(ctx)?;
        let mut out = Output::default();
        let id = self.propose(ctx, &mut group, Action::Remove { member }, &mut out)?;
        self.fire_due(ctx, &mut out)?;
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
        let ballot = self
            .ballots
            .get(&proposal_id)
            .ok_or_else(|| ProtocolError::NotFound(format!("proposal {proposal_id}")))?;
        if ballot.decision.is_some() {
            return Err(ProtocolError::WrongState {
                state: self.state,
                reason: "the proposal is already decided".into(),
            });
        }
        if !ballot.voters.contains(&self.me) {
            return Err(ProtocolError::InvalidInput(
                "this member is not a voter of the proposal".into(),
            ));
        }
        if ballot.has_voted(&self.me) {
            return Err(ProtocolError::InvalidInput(
                "this member already voted on the proposal".into(),
            ));
        }
        if self.emergency_open() && ballot.kind().class() < Class::Emergency {
            return Err(ProtocolError::HeldBack);
        }
        let mut group = self.load_group(ctx)?;
        let mut out = Output::default();
        self.cast(ctx, &mut group, proposal_id, approve, &mut out)?;
        self.fire_due(ctx, &mut out)?;
        Ok(out)
    }

    pub(super) fn emergency_open(&self) -> bool {
        self.ballots
            .values()
            .any(|b| b.decision.is_none() && b.kind().class() == Class::Emergency)
    }

    /// Creates, registers and sends a proposal (or holds it back behind an open emergency).
    pub(super) fn propose(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        action: Action,
        out: &mut Output,
    ) -> Result<u64, ProtocolError> {
        let p = consensus::new_proposal(
            ctx.identity,
            &action,
            self.epoch,
            self.members.len() as u32,
            ctx.now_ms,
            self.settings.vote_timeout_ms,
            self.settings.liveness_criteria_yes,
        );
        let id = p.proposal_id;
        if self.emergency_open() && action.kind().class() < Class::Emergency {
            self.held_back.push(p.encode_to_vec());
            return Ok(id);
        }
        self.register_and_send(ctx, group, p, out)?;
        Ok(id)
    }

    fn register_and_send(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        p: wire::Proposal,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let ballot = Ballot::new(&p, self.voters(), self.settings.max_clock_skew_ms)?;
        let id = ballot.id;
        self.ballots.insert(id, ballot);
        self.broadcast(ctx, group, Content::Proposal(p), out)?;
        self.resolve_if_decided(ctx, group, id, out)
    }

    /// A proposal received from `sender`.
    pub(super) fn on_proposal(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        sender: MemberId,
        p: wire::Proposal,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let skew = self.settings.max_clock_skew_ms;
        if self.ballots.contains_key(&p.proposal_id) {
            return Ok(());
        }
        if self.ballots.len() >= MAX_BALLOTS {
            return Err(ProtocolError::InvalidInput(
                "too many open proposals".into(),
            ));
        }
        let ballot = Ballot::new(&p, self.voters(), skew)?;
        if ballot.owner != sender {
            return Err(ProtocolError::SenderMismatch);
        }
        // A proposal of a recent past epoch is still registered when its voter count is that
        // epoch's group size: its owner made it before it saw the commit (reading a backlog,
        // or the commit crossed it on the network), and it is committed in a later epoch with
        // its votes as evidence. Refusing it would leave this member silent on it — counted
        // as YES at expiry by the members that hold it — and unable to verify that commit.
        let expected_here = if ballot.epoch == self.epoch {
            Some(self.members.len())
        } else if ballot.epoch < self.epoch {
            self.member_counts.get(&ballot.epoch).map(|n| *n as usize)
        } else {
            None
        };
        let Some(expected_here) = expected_here else {
            return Err(ProtocolError::Stale);
        };
        // A proposal of this epoch that expired before it arrived comes from a backlog: the
        // others decided it meanwhile, on votes that follow in that backlog. Register it
        // (refusing it would leave this member without the decision, e.g. a steward
        // election, and then refusing the new stewards' commits), do not vote (too late to
        // count), and let expiry decide it only once the backlog has been read.
        let late = ctx.now_ms >= ballot.expires_at_ms;
        if late {
            self.late_ballots
                .insert(ballot.id, ctx.now_ms.saturating_add(skew));
        }
        if ballot.created_at_ms > ctx.now_ms.saturating_add(skew) {
            return Err(ProtocolError::InvalidInput(
                "proposal is from the future".into(),
            ));
        }
        if ballot.expected as usize != expected_here {
            return Err(ProtocolError::InvalidInput(
                "expected_voters_count is not the group size".into(),
            ));
        }
        if self.emergency_open() && ballot.kind().class() < Class::Emergency {
            return Err(ProtocolError::HeldBack);
        }
        self.check_action(ctx, &ballot.action, sender)?;
        let id = ballot.id;
        self.ballots.insert(id, ballot);
        // Votes that overtook their proposal.
        let orphans: Vec<(MemberId, Vec<u8>)> = std::mem::take(&mut self.orphan_votes);
        for (carrier, bytes) in orphans {
            match wire::Vote::decode(bytes.as_slice()) {
                Ok(v) if v.proposal_id == id => {
                    if let Some(b) = self.ballots.get_mut(&id) {
                        let _ = b.add_vote(&v, Some(carrier), skew);
                    }
                }
                Ok(_) => self.orphan_votes.push((carrier, bytes)),
                Err(_) => {}
            }
        }
        let eligible = !late
            && self
                .ballots
                .get(&id)
                .is_some_and(|b| b.voters.contains(&self.me) && !b.has_voted(&self.me));
        if eligible {
            if let Some(view) = self.ballots.get(&id).map(|b| self.proposal_view(b)) {
                out.events.push(Event::VoteRequested(view));
            }
            let opinion_is_firm = matches!(
                self.ballots.get(&id).map(|b| &b.action),
                Some(Action::Election { .. })
            ) && !self.election_matches(id);
            if opinion_is_firm && !ctx.defer_governance {
                // A list that does not reproduce the deterministic one is refused at once.
                self.cast(ctx, group, id, false, out)?;
            } else if let Some(delay) = self.settings.auto_vote_delay_ms {
                self.auto_votes.insert(id, ctx.now_ms.saturating_add(delay));
            }
        }
        self.resolve_if_decided(ctx, group, id, out)
    }

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
                if self.members.contains(member) {
                    return Err(ProtocolError::InvalidInput("already a member".into()));
                }
            }
            Action::Remove { member } | Action::Emergency { member, .. } => {
                if !self.members.contains(member) {
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
            Action::Election { stewards, .. } => {
                if stewards.is_empty() || stewards.iter().any(|s| !self.members.contains(s)) {
                    return Err(ProtocolError::InvalidInput(
                        "election lists a non-member".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A vote received directly (`carrier` = its MLS sender) or relayed (`None`).
    pub(super) fn on_vote(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        carrier: Option<MemberId>,
        v: wire::Vote,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let skew = self.settings.max_clock_skew_ms;
        let Some(ballot) = self.ballots.get_mut(&v.proposal_id) else {
            if let Some(c) = carrier {
                self.orphan_votes.push((c, v.encode_to_vec()));
                self.bound_collections();
            }
            return Ok(());
        };
        if ballot.decision.is_none()
            && ballot.kind().class() < Class::Emergency
            && self.emergency_open()
        {
            return Err(ProtocolError::HeldBack);
        }
        let Some(ballot) = self.ballots.get_mut(&v.proposal_id) else {
            return Ok(());
        };
        let new = ballot.add_vote(&v, carrier, skew)?;
        if new {
            self.resolve_if_decided(ctx, group, v.proposal_id, out)?;
        }
        Ok(())
    }

    pub(super) fn auto_vote(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        id: u64,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let Some(ballot) = self.ballots.get(&id) else {
            return Ok(());
        };
        if ballot.decision.is_some()
            || ballot.has_voted(&self.me)
            || !ballot.voters.contains(&self.me)
        {
            return Ok(());
        }
        if self.emergency_open() && ballot.kind().class() < Class::Emergency {
            // Try again once the emergency is over.
            let retry = self
                .ballots
                .values()
                .filter(|b| b.decision.is_none() && b.kind().class() == Class::Emergency)
                .map(|b| b.expires_at_ms)
                .min();
            if let Some(at) = retry {
                self.auto_votes
                    .insert(id, at.max(ctx.now_ms.saturating_add(1)));
            }
            return Ok(());
        }
        let opinion = self.opinion(id);
        self.cast(ctx, group, id, opinion, out)
    }

    /// Re-broadcasts every vote this member holds for a still-open proposal, once, halfway
    /// through its window: members that lost some votes on the network can still finalize
    /// instead of waiting for expiry (relayed votes count through their signatures).
    pub(super) fn relay_votes(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        id: u64,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let Some(ballot) = self.ballots.get_mut(&id) else {
            return Ok(());
        };
        ballot.relayed = true;
        if ctx.now_ms >= ballot.expires_at_ms {
            return Ok(());
        }
        let votes = ballot.held_votes();
        self.broadcast(ctx, group, Content::Votes(wire::VoteBundle { votes }), out)
    }

    /// What this member votes when it votes automatically.
    fn opinion(&self, id: u64) -> bool {
        let Some(b) = self.ballots.get(&id) else {
            return false;
        };
        match &b.action {
            Action::Add { member, .. } => !self.members.contains(member),
            Action::Remove { member } | Action::Leave { member } => self.members.contains(member),
            Action::Election { .. } => self.election_matches(id),
            Action::Emergency { member, .. } => self
                .local_score(member)
                .is_some_and(|s| s < self.settings.removal_threshold),
        }
    }

    fn cast(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        id: u64,
        approve: bool,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let skew = self.settings.max_clock_skew_ms;
        let ballot = self
            .ballots
            .get_mut(&id)
            .ok_or_else(|| ProtocolError::NotFound(format!("proposal {id}")))?;
        let header = ballot.header()?;
        let vote = consensus::new_vote(ctx.identity, &header, approve, ctx.now_ms);
        ballot.add_vote(&vote, Some(self.me), skew)?;
        self.auto_votes.remove(&id);
        self.broadcast(ctx, group, Content::Vote(vote), out)?;
        self.resolve_if_decided(ctx, group, id, out)
    }

    /// Finalizes a ballot whose result can no longer change.
    pub(super) fn resolve_if_decided(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        id: u64,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let Some(ballot) = self.ballots.get_mut(&id) else {
            return Ok(());
        };
        if ballot.decision.is_some() {
            return Ok(());
        }
        // A late proposal is judged as of just before its expiry (carried majorities only)
        // until its backlog has been read.
        let judge_at = match self.late_ballots.get(&id) {
            Some(at) if ctx.now_ms < *at => ballot.expires_at_ms.saturating_sub(1),
            _ => ctx.now_ms,
        };
        let Some(approved) = ballot.tally(judge_at) else {
            return Ok(());
        };
        ballot.decision = Some(approved);
        self.late_ballots.remove(&id);
        self.auto_votes.remove(&id);
        tracing::debug!(conversation = %self.id, proposal = id, approved, "proposal resolved");
        out.events.push(Event::ProposalResolved {
            proposal_id: id,
            approved,
        });
        self.on_decided(ctx, group, id, approved, out)?;
        if !self.held_candidates.is_empty() {
            self.recheck_held_candidates(ctx, group, out)?;
        }
        Ok(())
    }

    /// Applies the consequences of a decision.
    pub(super) fn on_decided(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        id: u64,
        approved: bool,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let Some(ballot) = self.ballots.get(&id) else {
            return Ok(());
        };
        let action = ballot.action.clone();
        let owner = ballot.owner;
        let s = self.settings.clone();
        match (&action, approved) {
            (
                Action::Election {
                    epoch,
                    retry_round,
                    stewards,
                },
                true,
            ) => {
                if *epoch == self.epoch
                    && *retry_round == self.retry_round
                    && self.election_matches(id)
                {
                    self.adopt_stewards(ctx, group, stewards.clone(), out)?;
                }
                self.ballots.remove(&id);
            }
            (Action::Election { .. }, false) => {
                self.ballots.remove(&id);
                if self.needs_election() {
                    self.election_since = Some(ctx.now_ms);
                }
            }
            (Action::Emergency { member, .. }, true) => {
                let effects = vec![
                    self.score(
                        owner,
                        s.score_emergency_reward,
                        ScoreEvent::EmergencyRewarded,
                        out,
                    ),
                    self.score(
                        *member,
                        -s.score_invalid_candidate_penalty,
                        ScoreEvent::EmergencyUpheld,
                        out,
                    ),
                ];
                self.emergency_effects.insert(id, (*member, effects));
                self.on_new_approved_work(ctx, out);
            }
            (Action::Emergency { member, .. }, false) => {
                // The group judged this member: local evidence against it is superseded, and
                // must not raise the same emergency again.
                self.suspicion.remove(member);
                let effect = self.score(
                    owner,
                    -s.score_rejected_emergency_penalty,
                    ScoreEvent::EmergencyRejected,
                    out,
                );
                self.emergency_effects.insert(id, (*member, vec![effect]));
                self.ballots.remove(&id);
            }
            (_, true) => self.on_new_approved_work(ctx, out),
            (Action::Add { member, .. }, false) => {
                self.join_requests.remove(member);
                self.ballots.remove(&id);
            }
            (_, false) => {
                if action.removes() == Some(self.me) {
                    self.leaving = false;
                }
                self.ballots.remove(&id);
            }
        }
        if action.kind().class() == Class::Emergency && !self.emergency_open() {
            self.release_held_back(ctx, group, out)?;
        }
        Ok(())
    }

    /// Approved work appeared: start the inactivity timer and, for the epoch steward, the
    /// batching timer of its commit.
    pub(super) fn on_new_approved_work(&mut self, ctx: &Ctx, _out: &mut Output) {
        if self.needs_election() || self.state == State::Reelection {
            return;
        }
        if self.inactivity_at.is_none() && self.state == State::Working {
            let window = if self.recovering || self.retry_round > 0 {
                self.settings.recovery_inactivity_ms
            } else {
                self.settings.commit_inactivity_ms
            };
            self.inactivity_at = Some(ctx.now_ms.saturating_add(window));
        }
        if self.state == State::Working
            && self.commit_at.is_none()
            && self.acting_committer() == Some(self.me)
        {
            self.commit_at = Some(ctx.now_ms.saturating_add(self.settings.commit_delay_ms));
        }
    }

    fn release_held_back(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        for bytes in std::mem::take(&mut self.held_back) {
            let Ok(mut p) = wire::Proposal::decode(bytes.as_slice()) else {
                continue;
            };
            let Ok((action, _)) = consensus::parse_payload(&p) else {
                continue;
            };
            if p.expiration_timestamp <= ctx.now_ms
                || p.expected_voters_count as usize != self.members.len()
            {
                // Too late or the group changed meanwhile: make it again for the present.
                p = consensus::new_proposal(
                    ctx.identity,
                    &action,
                    self.epoch,
                    self.members.len() as u32,
                    ctx.now_ms,
                    self.settings.vote_timeout_ms,
                    self.settings.liveness_criteria_yes,
                );
            }
            self.register_and_send(ctx, group, p, out)?;
        }
        Ok(())
    }

    /// Applies a score change and warns on a downward threshold crossing; returns the member
    /// and the change actually made (rewards are capped).
    pub(super) fn score(
        &mut self,
        member: MemberId,
        delta: i64,
        why: ScoreEvent,
        out: &mut Output,
    ) -> (MemberId, i64) {
        let before = self.scores.get(&member);
        let crossed = self.scores.adjust(
            &member,
            delta,
            self.settings.default_peer_score,
            self.settings.removal_threshold,
        );
        tracing::debug!(member = %member.short(), delta, ?why, "score changed");
        if crossed && member != self.me {
            out.events.push(Event::Warning(format!(
                "member {} fell below the removal threshold",
                member.short()
            )));
        }
        let after = self.scores.get(&member);
        let applied = match (before, after) {
            (Some(b), Some(a)) => a.saturating_sub(b),
            _ => 0,
        };
        (member, applied)
    }

    /// Records a penalty this member observed on its own (see `suspicion`).
    pub(super) fn suspect(&mut self, member: MemberId, delta: i64, why: ScoreEvent) {
        if !self.members.contains(&member) {
            return;
        }
        let before = self.local_score(&member);
        let entry = self.suspicion.entry(member).or_insert(0);
        *entry = entry.saturating_add(delta);
        tracing::debug!(member = %member.short(), delta, ?why, "local penalty");
        let threshold = self.settings.removal_threshold;
        if before.is_some_and(|s| s >= threshold)
            && self.local_score(&member).is_some_and(|s| s < threshold)
        {
            tracing::warn!(member = %member.short(), "member fell below the removal threshold");
        }
    }

    /// The group's score of `member` with this member's own penalties counted: what it acts
    /// on when raising and voting on emergency removals.
    pub fn local_score(&self, member: &MemberId) -> Option<i64> {
        let agreed = self.scores.get(member)?;
        Some(agreed.saturating_add(self.suspicion.get(member).copied().unwrap_or(0)))
    }

    /// Raises emergency removals for members below the threshold that nobody has proposed yet.
    pub(super) fn raise_emergencies(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if !self.is_member_state() {
            return Ok(());
        }
        let threshold = self.settings.removal_threshold;
        let below: Vec<MemberId> = self
            .members
            .iter()
            .copied()
            .filter(|m| self.local_score(m).is_some_and(|s| s < threshold))
            .collect();
        for member in below {
            if member == self.me {
                continue;
            }
            let pending = self
                .ballots
                .values()
                .any(|b| b.action.removes() == Some(member) && b.decision != Some(false));
            if pending {
                continue;
            }
            let reason = "score below the removal threshold".to_string();
            self.propose(ctx, group, Action::Emergency { member, reason }, out)?;
        }
        Ok(())
    }
}
