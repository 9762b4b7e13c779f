//! Commit candidates, freeze rounds and applying commits (spec "Commit validation service",
//! "Steward violation list", "Timer-Based Anti-Deadlock Mechanism").
//!
//! Normal path: approved work starts the epoch steward's batching timer; when it fires the
//! steward builds a candidate from the first K approved proposals in ascending
//! `SHA256(proposal)` order, each carried with its signed votes as evidence, sends it and
//! applies it; members apply the epoch steward's candidate when it arrives. A member that
//! missed some votes verifies the evidence and adopts the decision instead of rejecting the
//! candidate.
//!
//! Recovery: approved work and no commit for the inactivity window → `Freezing`, every steward
//! sends a candidate; when all are in or the window ends → `Selection` (see `freeze`). A
//! candidate that fails in MLS, or whose changes differ from its proposals (a broken commit),
//! is penalised and the next best is tried. No valid candidate with approved work → the epoch
//! steward is penalised for censorship/inactivity, the retry round is bumped and a new list is
//! elected (`Reelection`), keeping the approved batch for the next steward.
//!
//! Welcomes for joiners are sent only by the committer whose candidate was applied, after it
//! was applied, together with the conversation sync encrypted in the new epoch.

use std::collections::BTreeSet;

use super::{Conversation, EPOCH_HISTORY, OwnCommit, State};
use crate::mls::{Group, MemberId};
use crate::protocol::consensus::{self, Action};
use crate::protocol::freeze::{self, Candidate};
use crate::protocol::scoring::ScoreEvent;
use crate::protocol::{Ctx, Event, LeaveReason, Output, ProtocolError, topics};
use witan_wire::{self as wire, group_payload::Content};

/// A candidate's ballots with their digests, in commit order.
type Sequence = (Vec<u64>, Vec<[u8; 32]>);

/// What a candidate's evidence shows this member.
enum Evidence {
    Valid(Sequence),
    /// A referenced proposal is held here undecided: judge the candidate once it is decided.
    Undecided,
    Invalid,
}

/// The membership changes a sequence of ballots asks for, as every member computes them.
struct Changes {
    adds: Vec<(MemberId, Vec<u8>)>,
    removes: Vec<MemberId>,
}

impl Conversation {
    /// Who commits the approved work of this epoch in normal operation: the epoch steward,
    /// unless an approved proposal removes it — MLS does not let a member commit its own
    /// removal — in which case its backup commits at once instead of after a freeze round.
    pub(super) fn acting_committer(&self) -> Option<MemberId> {
        let es = self.stewards.epoch_steward(self.epoch)?;
        let es_leaving = self
            .ballots
            .values()
            .any(|b| b.decision == Some(true) && b.action.removes() == Some(es));
        if es_leaving {
            self.stewards.backup(self.epoch).filter(|b| *b != es)
        } else {
            Some(es)
        }
    }

    pub(super) fn has_approved_work(&self) -> bool {
        self.ballots
            .values()
            .any(|b| b.decision == Some(true) && b.action.needs_commit())
    }

    /// Approved ballots in commit order: ascending digest, removals of `committer` left out
    /// (MLS does not let a member commit its own removal), at most K.
    fn approved_sequence(&self, committer: MemberId) -> Vec<u64> {
        let mut seq: Vec<([u8; 32], u64)> = self
            .ballots
            .values()
            .filter(|b| {
                b.decision == Some(true)
                    && b.action.needs_commit()
                    && b.action.removes() != Some(committer)
            })
            .map(|b| (b.digest, b.id))
            .collect();
        seq.sort();
        seq.truncate(self.settings.max_commit_proposals as usize);
        seq.into_iter().map(|(_, id)| id).collect()
    }

    fn changes(&self, ballots: &[u64], committer: MemberId) -> Changes {
        let mut adds: Vec<(MemberId, Vec<u8>)> = Vec::new();
        let mut removes: Vec<MemberId> = Vec::new();
        for b in ballots.iter().filter_map(|id| self.ballots.get(id)) {
            match &b.action {
                Action::Add {
                    member,
                    key_package,
                } => {
                    if !self.members.contains(member) && !adds.iter().any(|(m, _)| m == member) {
                        adds.push((*member, key_package.clone()));
                    }
                }
                other => {
                    if let Some(m) = other.removes()
                        && self.members.contains(&m)
                        && m != committer
                        && !removes.contains(&m)
                    {
                        removes.push(m);
                    }
                }
            }
        }
        Changes { adds, removes }
    }

    /// The epoch steward's batching timer fired.
    pub(super) fn steward_commit(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if self.state != State::Working || self.acting_committer() != Some(self.me) {
            return Ok(());
        }
        // Candidates of other stewards for this epoch mean the others froze while this steward
        // was away: the group has (or will have) applied the best of them, so follow it
        // rather than forking with a commit of its own.
        let others_froze = self.candidates.iter().any(|c| {
            c.epoch == self.epoch && c.retry_round == self.retry_round && c.committer != self.me
        });
        if others_froze {
            // Join the round as a voter, without a candidate of its own: members that select
            // before it would arrive could not include it, and would apply another one.
            self.set_state(State::Freezing, out);
            self.freeze_until = Some(ctx.now_ms.saturating_add(self.settings.freeze_window_ms));
            if self.all_candidates_in() {
                self.freeze_until = None;
                return self.select_and_apply(ctx, group, out);
            }
            return Ok(());
        }
        // The timer fires late (the app was suspended or killed): the others' inactivity
        // windows have run out too and they may already have frozen and chosen another
        // candidate. Join the freeze round instead of applying a commit of its own.
        if self.inactivity_at.is_some_and(|at| ctx.now_ms >= at) {
            self.inactivity_at = None;
            return self.enter_freeze(ctx, group, out);
        }
        if let Some(index) = self.send_candidate(ctx, group, out)? {
            let candidate = self.candidates.remove(index);
            self.apply_or_penalise(ctx, group, candidate, out)?;
        }
        Ok(())
    }

    /// Builds and sends this member's candidate; returns its index in `candidates`.
    fn send_candidate(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<Option<usize>, ProtocolError> {
        if self
            .own_commit
            .as_ref()
            .is_some_and(|o| o.epoch == self.epoch && o.retry_round == self.retry_round)
        {
            return Ok(None);
        }
        let seq = self.approved_sequence(self.me);
        if seq.is_empty() {
            return Ok(None);
        }
        let changes = self.changes(&seq, self.me);
        if group.has_pending_commit() {
            group.clear_pending_commit(ctx.provider)?;
        }
        let key_packages: Vec<Vec<u8>> = changes.adds.iter().map(|(_, kp)| kp.clone()).collect();
        let output =
            group.create_commit(ctx.provider, ctx.identity, &key_packages, &changes.removes)?;
        let mut proposals = Vec::with_capacity(seq.len());
        let mut digests = Vec::with_capacity(seq.len());
        for id in &seq {
            if let Some(b) = self.ballots.get(id) {
                proposals.push(b.evidence()?);
                digests.push(b.digest);
            }
        }
        let wire_candidate = wire::CommitCandidate {
            epoch: self.epoch,
            retry_round: self.retry_round,
            committer: self.me.as_bytes().to_vec(),
            commit: output.commit.clone(),
            proposals,
        };
        self.broadcast(ctx, group, Content::Candidate(wire_candidate), out)?;
        self.own_commit = Some(OwnCommit {
            epoch: self.epoch,
            retry_round: self.retry_round,
            welcome: output.welcome,
            joiners: changes.adds.iter().map(|(m, _)| *m).collect(),
        });
        self.candidates.push(Candidate {
            committer: self.me,
            epoch: self.epoch,
            retry_round: self.retry_round,
            commit: output.commit,
            ballots: seq,
            digests,
            received_at_ms: ctx.now_ms,
        });
        Ok(Some(self.candidates.len() - 1))
    }

    /// A commit candidate received from `sender`.
    pub(super) fn on_candidate(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        sender: MemberId,
        c: wire::CommitCandidate,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if c.committer.as_slice() != sender.as_bytes() {
            return Err(ProtocolError::SenderMismatch);
        }
        if !matches!(
            self.state,
            State::Working | State::Freezing | State::Selection
        ) || c.epoch != self.epoch
            || c.retry_round != self.retry_round
        {
            // Context-inconsistent: for another epoch or round. Dropped without penalty, as a
            // delayed honest candidate looks the same.
            return Ok(());
        }
        let s = self.settings.clone();
        if !self.stewards.active().contains(&sender) {
            // An election this member has not decided yet (its last votes are on their way)
            // may make the sender a steward, as it already did for the committer: judge the
            // candidate once it is decided.
            let election_open = self.ballots.values().any(|b| {
                b.decision.is_none()
                    && matches!(&b.action, Action::Election { stewards, .. } if stewards.contains(&sender))
            });
            if election_open {
                self.held_candidates
                    .push((sender, prost::Message::encode_to_vec(&c)));
                self.bound_collections();
                return Ok(());
            }
            self.violation(
                sender,
                -s.score_invalid_candidate_penalty,
                ScoreEvent::UnauthorizedCommitter,
                "commit candidate from a non-steward",
                out,
            );
            return self.raise_emergencies(ctx, group, out);
        }
        if let Some(existing) = self.candidates.iter().find(|x| x.committer == sender) {
            if existing.commit != c.commit {
                self.violation(
                    sender,
                    -s.score_invalid_candidate_penalty,
                    ScoreEvent::InvalidCandidate,
                    "two different candidates from one steward",
                    out,
                );
                return self.raise_emergencies(ctx, group, out);
            }
            return Ok(());
        }
        let (ballots, digests) = match self.accept_evidence(ctx, group, &c, out)? {
            Evidence::Valid(x) => x,
            Evidence::Undecided => {
                self.held_candidates
                    .push((sender, prost::Message::encode_to_vec(&c)));
                self.bound_collections();
                return Ok(());
            }
            Evidence::Invalid => {
                self.violation(
                    sender,
                    -s.score_invalid_candidate_penalty,
                    ScoreEvent::InvalidCandidate,
                    "candidate references proposals that are not finalized",
                    out,
                );
                return self.raise_emergencies(ctx, group, out);
            }
        };
        let candidate = Candidate {
            committer: sender,
            epoch: c.epoch,
            retry_round: c.retry_round,
            commit: c.commit,
            ballots,
            digests,
            received_at_ms: ctx.now_ms,
        };
        if self.state == State::Working && self.acting_committer() == Some(sender) {
            return self.apply_or_penalise(ctx, group, candidate, out);
        }
        self.candidates.push(candidate);
        if self.state == State::Freezing && self.all_candidates_in() {
            self.freeze_until = None;
            return self.select_and_apply(ctx, group, out);
        }
        Ok(())
    }

    /// Judges the candidates held back for undecided proposals again (a ballot was decided).
    pub(super) fn recheck_held_candidates(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        for (sender, bytes) in std::mem::take(&mut self.held_candidates) {
            let Ok(c) = <wire::CommitCandidate as prost::Message>::decode(bytes.as_slice()) else {
                continue;
            };
            if c.epoch != self.epoch || c.retry_round != self.retry_round {
                continue;
            }
            self.on_candidate(ctx, group, sender, c, out)?;
        }
        Ok(())
    }

    /// Checks a candidate's proposals: each must be decided YES locally or carry verifiable
    /// evidence, in strictly ascending digest order, within the batch cap, and none may remove
    /// the committer.
    fn accept_evidence(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        c: &wire::CommitCandidate,
        out: &mut Output,
    ) -> Result<Evidence, ProtocolError> {
        if c.proposals.is_empty() || c.proposals.len() > self.settings.max_commit_proposals as usize
        {
            return Ok(Evidence::Invalid);
        }
        let committer = MemberId::from_slice(&c.committer)?;
        let voters: BTreeSet<MemberId> = self.voters();
        let skew = self.settings.max_clock_skew_ms;
        let mut ids = Vec::with_capacity(c.proposals.len());
        let mut digests: Vec<[u8; 32]> = Vec::with_capacity(c.proposals.len());
        let mut adopted = Vec::new();
        for p in &c.proposals {
            let digest = wire::proposal_digest(p);
            if digests.last().is_some_and(|last| *last >= digest) {
                return Ok(Evidence::Invalid);
            }
            let known_yes = self
                .ballots
                .get(&p.proposal_id)
                .is_some_and(|b| b.decision == Some(true) && b.digest == digest);
            if !known_yes {
                // A member of the proposal's epoch could have voted and holds the proposal
                // (or will, from its backlog): it decides expiry itself. One that joined later
                // never saw it and takes the carried decision, expiry included.
                // (`member_counts` starts at the epoch this member joined in, unless its
                // history was trimmed: then nothing older counts as "before my time".)
                let joined = self.member_counts.keys().next().copied().unwrap_or(0);
                let trimmed = self.member_counts.len() >= EPOCH_HISTORY;
                let was_member =
                    trimmed || consensus::parse_payload(p).is_ok_and(|(_, epoch)| epoch >= joined);
                let expiry_at = (!was_member).then_some(ctx.now_ms);
                let Ok(mut ballot) = consensus::verify_evidence(p, &voters, skew, expiry_at) else {
                    // A proposal this member holds undecided may still be decided here (at
                    // its expiry, or when its votes arrive): wait for that.
                    let undecided = self
                        .ballots
                        .get(&p.proposal_id)
                        .is_some_and(|b| b.decision.is_none() && b.digest == digest);
                    return Ok(if undecided {
                        Evidence::Undecided
                    } else {
                        Evidence::Invalid
                    });
                };
                if let Some(n) = self.member_counts.get(&ballot.epoch)
                    && *n != ballot.expected
                {
                    return Ok(Evidence::Invalid);
                }
                if let Some(local) = self.ballots.get(&p.proposal_id) {
                    // Keep the voter set this member registered; the evidence decides.
                    ballot.voters = local.voters.clone();
                }
                adopted.push(ballot);
            }
            ids.push(p.proposal_id);
            digests.push(digest);
        }
        for ballot in adopted {
            if ballot.action.removes() == Some(committer) {
                return Ok(Evidence::Invalid);
            }
            let id = ballot.id;
            out.events.push(Event::ProposalResolved {
                proposal_id: id,
                approved: true,
            });
            self.auto_votes.remove(&id);
            self.ballots.insert(id, ballot);
            self.on_decided(ctx, group, id, true, out)?;
        }
        if ids
            .iter()
            .filter_map(|id| self.ballots.get(id))
            .any(|b| b.action.removes() == Some(committer))
        {
            return Ok(Evidence::Invalid);
        }
        Ok(Evidence::Valid((ids, digests)))
    }

    pub(super) fn all_candidates_in(&self) -> bool {
        self.stewards
            .active()
            .iter()
            .all(|s| self.candidates.iter().any(|c| c.committer == *s))
    }

    /// The inactivity timer fired: freeze and let every steward send a candidate.
    pub(super) fn enter_freeze(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if self.state != State::Working || !self.has_approved_work() || self.needs_election() {
            return Ok(());
        }
        self.set_state(State::Freezing, out);
        self.freeze_until = Some(ctx.now_ms.saturating_add(self.settings.freeze_window_ms));
        let others_started = self.candidates.iter().any(|c| {
            c.epoch == self.epoch && c.retry_round == self.retry_round && c.committer != self.me
        });
        if self.stewards.active().contains(&self.me)
            && !others_started
            && let Err(e) = self.send_candidate(ctx, group, out)
        {
            out.events.push(Event::Warning(format!(
                "could not build a commit candidate: {e}"
            )));
        }
        if self.all_candidates_in() {
            self.freeze_until = None;
            return self.select_and_apply(ctx, group, out);
        }
        Ok(())
    }

    /// The commit validation service over the collected candidates.
    pub(super) fn select_and_apply(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if self.state != State::Freezing {
            return Ok(());
        }
        self.set_state(State::Selection, out);
        let epoch_steward = self.stewards.epoch_steward(self.epoch);
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.retain(|c| c.epoch == self.epoch && c.retry_round == self.retry_round);
        for index in
            freeze::preference_order(&candidates, epoch_steward, self.stewards.backup(self.epoch))
        {
            let candidate = candidates[index].clone();
            if self.try_apply(ctx, group, candidate, out)? {
                // The epoch steward's missed commit is penalised in `after_commit`, from the
                // applied commit itself, so that every member applying it agrees.
                return self.raise_emergencies(ctx, group, out);
            }
        }
        if group.has_pending_commit() {
            group.clear_pending_commit(ctx.provider)?;
        }
        self.own_commit = None;
        if !self.has_approved_work() {
            self.set_state(State::Working, out);
            return Ok(());
        }
        // No valid candidate at all: every member of this round reaches this point with the
        // same candidates (or the round forked anyway), so the penalty goes to the group's
        // table; the epoch steward counts it against itself too.
        if let Some(es) = epoch_steward {
            tracing::warn!(conversation = %self.id, member = %es.short(),
                "epoch steward did not commit approved work");
            let penalty = self.settings.score_missed_commit_penalty;
            self.score(es, -penalty, ScoreEvent::MissedCommit, out);
        }
        self.retry_round += 1;
        self.inactivity_at = None;
        self.commit_at = None;
        self.set_state(State::Reelection, out);
        let eligible = self.eligible_stewards();
        if eligible.len() <= self.settings.steward_list_min as usize {
            let list = self.expected_list();
            self.adopt_stewards(ctx, group, list, out)?;
        } else {
            self.election_since = Some(ctx.now_ms);
        }
        self.raise_emergencies(ctx, group, out)
    }

    /// Applies the best stored candidate of the current epoch and round, if any applies.
    /// Used when evidence shows the group already moved on: traffic of a later epoch arrived,
    /// or other stewards' freeze-round candidates are waiting.
    pub(super) fn apply_best_received(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<bool, ProtocolError> {
        if !matches!(
            self.state,
            State::Working | State::Freezing | State::Selection
        ) {
            return Ok(false);
        }
        let epoch_steward = self.stewards.epoch_steward(self.epoch);
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.retain(|c| c.epoch == self.epoch && c.retry_round == self.retry_round);
        let backup = self.stewards.backup(self.epoch);
        for index in freeze::preference_order(&candidates, epoch_steward, backup) {
            let candidate = candidates[index].clone();
            if self.try_apply(ctx, group, candidate, out)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn apply_or_penalise(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        candidate: Candidate,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if !self.try_apply(ctx, group, candidate, out)? {
            self.raise_emergencies(ctx, group, out)?;
        }
        Ok(())
    }

    /// Applies a candidate if its MLS commit is valid and matches its proposals; otherwise
    /// penalises its author (a broken commit) and returns false.
    fn try_apply(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        candidate: Candidate,
        out: &mut Output,
    ) -> Result<bool, ProtocolError> {
        let mine = candidate.committer == self.me
            && group.has_pending_commit()
            && self.own_commit.as_ref().is_some_and(|o| {
                o.epoch == candidate.epoch && o.retry_round == candidate.retry_round
            });
        let expected = self.changes(&candidate.ballots, candidate.committer);
        let before: Vec<MemberId> = self.members.clone();
        if mine {
            group.merge_pending_commit(ctx.provider)?;
        } else {
            if group.has_pending_commit() {
                group.clear_pending_commit(ctx.provider)?;
            }
            let staged = match group.stage_commit(ctx.provider, &candidate.commit) {
                Ok(staged) => staged,
                Err(e) => {
                    let p = self.settings.score_invalid_candidate_penalty;
                    self.violation(
                        candidate.committer,
                        -p,
                        ScoreEvent::InvalidCandidate,
                        &format!("broken commit: {e}"),
                        out,
                    );
                    return Ok(false);
                }
            };
            let mut want_adds: Vec<MemberId> = expected.adds.iter().map(|(m, _)| *m).collect();
            let mut want_removes = expected.removes.clone();
            let mut got_adds = staged.added.clone();
            let mut got_removes = staged.removed.clone();
            want_adds.sort();
            want_removes.sort();
            got_adds.sort();
            got_removes.sort();
            if staged.committer != candidate.committer
                || want_adds != got_adds
                || want_removes != got_removes
            {
                let p = self.settings.score_invalid_candidate_penalty;
                self.violation(
                    candidate.committer,
                    -p,
                    ScoreEvent::InvalidCandidate,
                    "commit does not match its proposals",
                    out,
                );
                return Ok(false);
            }
            group.merge_staged(ctx.provider, staged)?;
        }
        self.after_commit(ctx, group, &candidate, before, mine, out)?;
        Ok(true)
    }

    fn after_commit(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        candidate: &Candidate,
        before: Vec<MemberId>,
        mine: bool,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let epoch_steward = self.stewards.epoch_steward(self.epoch);
        self.epoch = group.epoch();
        self.members = group.members();
        self.member_counts
            .insert(self.epoch, self.members.len() as u32);
        let added: Vec<MemberId> = self
            .members
            .iter()
            .copied()
            .filter(|m| !before.contains(m))
            .collect();
        let removed: Vec<MemberId> = before
            .iter()
            .copied()
            .filter(|m| !self.members.contains(m))
            .collect();
        for id in &candidate.ballots {
            self.ballots.remove(id);
        }
        // Votes kept for proposals not seen yet belong to proposals of the epoch just left,
        // which can no longer be registered (a proposal must be of the current epoch).
        self.orphan_votes.clear();
        for b in self.ballots.values_mut() {
            for m in &removed {
                b.voters.remove(m);
            }
        }
        // Proposals this commit made moot (a second removal of the same member, an add of a
        // member that is now in) must not keep the group looking busy.
        let members = self.members.clone();
        self.ballots.retain(|_, b| match &b.action {
            Action::Add { member, .. } => !members.contains(member),
            other => other.removes().is_none_or(|m| members.contains(&m)),
        });
        // Emergencies against a member this commit removed, other than those it committed,
        // are moot: members that had not decided them yet drop them above, so those that
        // had take back their score effects — all members then agree. (Their votes, sent in
        // the old epoch, can no longer reach members already past it.)
        for (id, (target, effects)) in std::mem::take(&mut self.emergency_effects) {
            if removed.contains(&target) && !candidate.ballots.contains(&id) {
                for (m, delta) in effects {
                    if let Some(score) = self.scores.get(&m) {
                        self.scores.set(m, score.saturating_sub(delta));
                    }
                }
            }
        }
        let open = &self.ballots;
        self.late_ballots.retain(|id, _| open.contains_key(id));
        for m in &added {
            self.scores.ensure(*m, self.settings.default_peer_score);
            self.join_requests.remove(m);
        }
        for m in &removed {
            self.scores.remove(m);
            self.suspicion.remove(m);
            self.stewards.remove(m);
        }
        let reward = self.settings.score_commit_reward;
        self.score(candidate.committer, reward, ScoreEvent::CommitChosen, out);
        // A commit by another steward than the epoch steward of its epoch and round means
        // the epoch steward missed it (a freeze round replaced it). Derived from the applied
        // commit alone — not from whether this member saw the freeze round — so every member,
        // the epoch steward included, applies the same penalty. An epoch steward removed by
        // the commit (its backup commits its removal) is gone from the table.
        if let Some(es) = epoch_steward
            && es != candidate.committer
            && self.members.contains(&es)
        {
            let penalty = self.settings.score_missed_commit_penalty;
            self.score(es, -penalty, ScoreEvent::MissedCommit, out);
        }
        self.candidates.clear();
        self.held_candidates.clear();
        self.freeze_until = None;
        self.inactivity_at = None;
        self.commit_at = None;
        self.retry_round = 0;
        self.recovering = false;
        self.behind_since = None;
        out.epoch_advanced = true;
        tracing::info!(
            conversation = %self.id,
            epoch = self.epoch,
            committer = %candidate.committer.short(),
            added = added.len(),
            removed = removed.len(),
            proposals = candidate.ballots.len(),
            "commit applied"
        );
        out.events.push(Event::MembershipChanged {
            epoch: self.epoch,
            added: added.clone(),
            removed: removed.clone(),
        });
        if !removed.is_empty() {
            out.events
                .push(Event::StewardsChanged(self.stewards.active()));
        }
        let own = self.own_commit.take();
        if removed.contains(&self.me) || !group.is_active() {
            let reason = if self.leaving {
                LeaveReason::SelfLeave
            } else {
                LeaveReason::Removed
            };
            out.events.push(Event::Left(reason));
            self.clear_round();
            self.set_state(State::Left, out);
            return Ok(());
        }
        if mine
            && let Some(own) = own
            && let Some(welcome) = own.welcome
            && !own.joiners.is_empty()
        {
            let sync = self.sync_payload();
            let plaintext = prost::Message::encode_to_vec(&wire::GroupPayload {
                content: Some(sync),
            });
            let sync_ct = group.encrypt(ctx.provider, ctx.identity, &plaintext)?;
            let packet = wire::WelcomePacket {
                welcome,
                sync: sync_ct,
                joiners: own.joiners.iter().map(|m| m.as_bytes().to_vec()).collect(),
            };
            self.emit(
                out,
                topics::welcome(&self.id),
                wire::PacketKind::Welcome,
                wire::encode(&packet),
            );
        }
        self.set_state(State::Working, out);
        self.after_epoch_change(ctx, group, out)
    }

    fn violation(
        &mut self,
        member: MemberId,
        delta: i64,
        why: ScoreEvent,
        what: &str,
        out: &mut Output,
    ) {
        tracing::warn!(conversation = %self.id, member = %member.short(), "{what}");
        out.events.push(Event::Warning(format!(
            "{what} (member {})",
            member.short()
        )));
        // What a member finds wrong with a candidate it received is its own observation:
        // members in another epoch or round, or that were sent another candidate, did not
        // make it. It counts locally and reaches the group's table only through an emergency
        // vote.
        self.suspect(member, delta, why);
    }
}
