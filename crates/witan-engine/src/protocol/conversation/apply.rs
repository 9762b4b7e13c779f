//! A certified commit, applied, and a joiner's first epoch.
//!
//! Applying a certified commit changes, at every member alike and from the certified data
//! alone: the MLS group (the author's pending commit merged, anyone else's pending commit
//! dropped and the commit staged and merged), the resolutions (`ProposalResolved` — final),
//! membership, scores (the author rewarded, the leaders ahead of the author in the epoch's order
//! penalised once each and dropped from the steward list, equivocators penalised, emergencies
//! settled), the steward list (renewed when used up), the next epoch's leader order. A member
//! the commit removes applies it too and learns it left. Whoever formed the certificate sends
//! the welcome of the members it adds, with the group's view and the certified commit, so
//! the joiner can check the certificate itself.

use std::collections::BTreeSet;

use prost::Message;

use super::{Conversation, PartKey, State};
use crate::mls::{Group, MemberId};
use crate::protocol::ballot_box::{Action, Parsed, parse, parse_checked, parse_unsigned};
use crate::protocol::commit_round::{CommitRound, Signers, quorum, valid_signers};
use crate::protocol::score_book::{ScoreBook, ScoreEvent};
use crate::protocol::settings::Settings;
use crate::protocol::steward_schedule::{StewardSchedule, epoch_seed};
use crate::protocol::{Ctx, Event, LeaveReason, Output, ProtocolError, topics};
use witan_wire::{self as wire, RoundVoteKind, group_payload::Content};

impl Conversation {
    /// Applies a certified commit of the current epoch (its certificate already verified).
    pub(super) fn apply_certified(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        mut certified: wire::CertifiedCommit,
        packet: Option<Vec<u8>>,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        // The candidate (with a thousand votes in a large group) is moved out, not copied;
        // a welcome puts it back (`send_welcome`).
        let candidate = certified.candidate.take().ok_or_else(|| {
            ProtocolError::InvalidInput("certified commit without a candidate".into())
        })?;
        let before = self.members();
        let staged = group.stage_commit(ctx.provider, &candidate.commit)?;
        let author = staged.committer;
        let failed = self.failed_leaders(author);
        let mine = author == self.me;
        if !mine && group.has_pending_commit() {
            group.clear_pending_commit(ctx.provider)?;
        }
        group.merge_staged(ctx.provider, staged)?;
        self.archive(ctx, candidate.epoch, packet);
        self.caught_up();
        self.resolve(&candidate, author, &failed, ctx.now_ms, out)?;
        let removed_me = !group.is_active();
        if removed_me {
            return self.leave_removed(out);
        }
        self.epoch_seed = epoch_seed(&candidate.resolutions);
        self.enter_epoch(ctx, group)?;
        let ids = self.members();
        let current: BTreeSet<MemberId> = ids.iter().copied().collect();
        self.joins.forget_admitted_unless(|m| current.contains(m));
        let stewards_before = self.stewards.active();
        self.renew_roles(&ids);
        let (added, removed) = self.settle_joins(&before, &ids, ctx.now_ms);
        tracing::info!(conversation = %self.id, epoch = self.epoch, author = %author.short(), round = certified.round, added = added.len(), removed = removed.len(), resolutions = candidate.resolutions.len(), "certified commit applied");
        out.epoch_advanced = true;
        out.events.push(Event::MembershipChanged {
            epoch: self.epoch,
            added: added.clone(),
            removed,
        });
        if self.stewards.active() != stewards_before {
            out.events
                .push(Event::StewardsChanged(self.stewards.active()));
        }
        self.set_state(State::Working, out);
        if !added.is_empty() && candidate.proposer.as_slice() == self.me.as_bytes() {
            self.send_welcome(ctx, group, candidate, certified, &added, out)?;
        }
        self.propose_due_joins(ctx, group, out)?;
        self.raise_emergencies(ctx, group, out)?;
        self.note_work(ctx, group, out)
    }

    /// The leaders ahead of the commit's author in the epoch's order: they had their turn
    /// and did not commit. A function of the certified value alone (one value may be
    /// certified in several rounds, and members may apply different certificates of it).
    fn failed_leaders(&self, author: MemberId) -> Vec<MemberId> {
        let ahead = self.leaders.iter().position(|m| *m == author).unwrap_or(0);
        self.leaders[..ahead].to_vec()
    }
    /// The roles of a new epoch: the stewards renewed — members a certified commit penalised
    /// (a round they led failed: asleep, or worse) are chosen last, and every member holds
    /// the same scores — the round leaders' order, and the ballots of members gone forgotten.
    fn renew_roles(&mut self, ids: &[MemberId]) {
        let demoted: Vec<MemberId> = ids
            .iter()
            .copied()
            .filter(|m| {
                self.scores
                    .get(m)
                    .is_some_and(|s| s < self.settings.default_peer_score)
            })
            .collect();
        let seed = &self.epoch_seed;
        self.stewards
            .on_epoch(&self.id, self.epoch, seed, ids, &demoted, &self.settings);
        self.leaders = self.stewards.leader_order(&self.id, self.epoch, seed, ids);
        self.ballots.forget_voters(&self.roster().set);
        let joins = &self.joins;
        let moot = self
            .ballots
            .forget_moot(&self.roster().set, |kp| joins.is_spent(kp));
        if moot > 0 {
            tracing::debug!(conversation = %self.id, moot, "proposals made moot forgotten");
        }
    }

    /// Who a commit added and who it removed (members `before` and `ids` after), with the
    /// joins that follow: an added member's join is done; a removed member that asked to
    /// join again has its windows restarted.
    fn settle_joins(
        &mut self,
        before: &[MemberId],
        ids: &[MemberId],
        now_ms: u64,
    ) -> (Vec<MemberId>, Vec<MemberId>) {
        // Sets: a search of the other list for each member costs a large group n².
        let (was, is): (BTreeSet<&MemberId>, BTreeSet<&MemberId>) =
            (before.iter().collect(), ids.iter().collect());
        let added: Vec<MemberId> = ids.iter().copied().filter(|m| !was.contains(m)).collect();
        let removed: Vec<MemberId> = before.iter().copied().filter(|m| !is.contains(m)).collect();
        if !added.is_empty() {
            self.touch(PartKey::Joins);
        }
        for m in &added {
            self.joins.remove(m);
        }
        for m in &removed {
            if self.joins.get(m).is_some() {
                // A re-join: its old leaf is gone, its add comes next (see `join_queue`).
                self.touch(PartKey::Joins);
                self.joins.restart_windows(m, now_ms);
            }
        }
        (added, removed)
    }

    /// The certified resolutions and their score effects, in the candidate's order.
    fn resolve(
        &mut self,
        candidate: &wire::Candidate,
        author: MemberId,
        failed: &[MemberId],
        now_ms: u64,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let s = self.settings.clone();
        self.touch(PartKey::Ballots);
        self.touch(PartKey::Scores);
        self.touch(PartKey::Stewards);
        let mut equivocators: BTreeSet<MemberId> = BTreeSet::new();
        for res in &candidate.resolutions {
            let p = res.proposal.as_ref().ok_or_else(|| {
                ProtocolError::Internal("a certified resolution without its proposal".into())
            })?;
            let parsed = parse_checked(&self.id, p, &self.checked.signatures)?;
            self.ballots
                .close(&parsed.digest, p.proposal_id, p.timestamp);
            out.events.push(Event::ProposalResolved {
                proposal_id: p.proposal_id,
                approved: res.approved,
            });
            for proof in &res.proofs {
                if let Some(v) = &proof.first {
                    equivocators.insert(MemberId::from_public_key(&v.vote_owner));
                }
            }
            self.settle_resolution(&parsed, res.approved, res.dropped, now_ms, &s);
        }
        self.score_commit(&equivocators, author, failed, &s);
        Ok(())
    }

    /// What one resolution of a certified commit settles besides its ballot: the scores of
    /// an emergency's proposer and target, a refused leave of this member, an add's join.
    fn settle_resolution(
        &mut self,
        parsed: &Parsed,
        approved: bool,
        dropped: bool,
        now_ms: u64,
        s: &Settings,
    ) {
        match (&parsed.action, approved) {
            (Action::Emergency { member, .. }, true) => {
                self.scores.adjust(
                    &parsed.owner,
                    s.score_emergency_reward,
                    ScoreEvent::EmergencyRewarded,
                    s,
                );
                self.scores.adjust(
                    member,
                    -s.score_invalid_candidate_penalty,
                    ScoreEvent::EmergencyUpheld,
                    s,
                );
            }
            (Action::Emergency { member, .. }, false) => {
                self.scores.clear_suspicion(member);
                self.scores.adjust(
                    &parsed.owner,
                    -s.score_rejected_emergency_penalty,
                    ScoreEvent::EmergencyRejected,
                    s,
                );
            }
            (Action::Leave { member }, false) if *member == self.me => {
                self.leaving = false;
                self.touch(PartKey::Core);
            }
            (
                Action::Add {
                    member,
                    key_package,
                },
                approved,
            ) => {
                self.touch(PartKey::Joins);
                self.joins.remove(member);
                if approved && !dropped {
                    self.joins.spend(key_package);
                    self.joins.admit(*member, now_ms);
                }
            }
            _ => {}
        }
    }

    /// The scores a certified commit moves: its equivocators and the leaders of the rounds
    /// that failed before it lose, its author gains; a failed leader also loses its
    /// steward's seat.
    fn score_commit(
        &mut self,
        equivocators: &BTreeSet<MemberId>,
        author: MemberId,
        failed: &[MemberId],
        s: &Settings,
    ) {
        for m in equivocators {
            self.scores.adjust(
                m,
                -s.score_invalid_candidate_penalty,
                ScoreEvent::Equivocation,
                s,
            );
        }
        self.scores.adjust(
            &author,
            s.score_commit_reward,
            ScoreEvent::CommitCertified,
            s,
        );
        for m in failed.iter().filter(|m| **m != author) {
            self.scores.adjust(
                m,
                -s.score_missed_commit_penalty,
                ScoreEvent::MissedCommit,
                s,
            );
            self.stewards.drop_member(m);
        }
    }

    /// The certified commit removed this member.
    fn leave_removed(&mut self, out: &mut Output) -> Result<(), ProtocolError> {
        let reason = if self.leaving {
            LeaveReason::SelfLeave
        } else {
            LeaveReason::Removed
        };
        tracing::info!(conversation = %self.id, ?reason, "removed by a certified commit");
        out.epoch_advanced = true;
        out.events.push(Event::Left(reason));
        self.round = CommitRound::new(self.epoch);
        self.touch(PartKey::Round);
        self.set_state(State::Left, out);
        Ok(())
    }

    /// The view a joiner starts from, with the certified commit that adds it.
    fn sync(&self, certified: wire::CertifiedCommit) -> wire::ConversationSync {
        let slots = self.stewards.slots();
        wire::ConversationSync {
            settings: Some(self.settings.to_wire()),
            stewards: slots
                .iter()
                .map(|s| {
                    s.map(|m| m.as_bytes().to_vec())
                        .unwrap_or_else(|| vec![0; 20])
                })
                .collect(),
            scores: self
                .scores
                .iter()
                .map(|(m, s)| wire::PeerScore {
                    member_id: m.as_bytes().to_vec(),
                    score: *s,
                })
                .collect(),
            steward_base_epoch: self.stewards.base_epoch(),
            certified: Some(certified),
            open_proposals: self.ballots.open_for_joiners(),
        }
    }

    fn send_welcome(
        &self,
        ctx: &Ctx,
        group: &mut Group,
        mut candidate: wire::Candidate,
        certified: wire::CertifiedCommit,
        added: &[MemberId],
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        // The welcome and the commit travel once, beside the sync: copies inside it would only
        // be encrypted, decrypted and copied again by every joiner, which puts them back
        // (`on_welcome`). The commit is a public MLS message, sent on the group's topic too.
        let welcome = std::mem::take(&mut candidate.welcome);
        let commit = std::mem::take(&mut candidate.commit);
        let certified = wire::CertifiedCommit {
            candidate: Some(candidate),
            ..certified
        };
        let plaintext = wire::GroupPayload {
            content: Some(Content::Sync(self.sync(certified))),
        }
        .encode_to_vec();
        let sync = group.encrypt(ctx.provider, ctx.identity, &plaintext)?;
        let packet = wire::WelcomePacket {
            welcome,
            sync: sync.into(),
            joiners: added.iter().map(|m| m.as_bytes().to_vec()).collect(),
            commit: commit.into(),
        };
        self.emit(
            out,
            topics::welcome(&self.id),
            wire::PacketKind::Welcome,
            wire::encode(&packet),
            None,
        );
        Ok(())
    }

    /// A welcome while waiting to join.
    pub(super) fn on_welcome(
        &mut self,
        ctx: &Ctx,
        packet: wire::WelcomePacket,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if !packet
            .joiners
            .iter()
            .any(|j| j.as_slice() == self.me.as_bytes())
        {
            return Ok(());
        }
        let mut group = Group::join(ctx.provider, &packet.welcome, self.id.as_bytes())?;
        let (sender, mut sync) = open_sync(ctx, &mut group, &packet.sync)?;
        let (certified, candidate) = certified_beside(&mut sync, &packet)?;
        if candidate.proposer.as_slice() != sender.as_bytes() {
            return Err(ProtocolError::InvalidInput(
                "the sync does not come from the certified commit's leader".into(),
            ));
        }
        if candidate.epoch.saturating_add(1) != group.epoch() {
            return Err(ProtocolError::InvalidInput(
                "the welcome is not the certified one".into(),
            ));
        }
        let settings = sync
            .settings
            .as_ref()
            .ok_or_else(|| ProtocolError::InvalidInput("sync without settings".into()))
            .and_then(Settings::from_wire)?;
        let parsed = self.parse_resolutions(&candidate);
        let joiners = &packet.joiners;
        let signed =
            check_joiner_certificate(&self.id, &group, &certified, &candidate, &parsed, joiners)?;
        if let Some(expected) = self.join_anchor
            && !signed.contains(&expected)
        {
            return Err(ProtocolError::UntrustedWelcome(format!(
                "member {} did not sign the certificate of the commit adding this member",
                expected.short()
            )));
        }
        self.join_anchor = None;
        self.join_expired = false;
        self.adopt_sync(ctx, &group, &sync, &candidate, &parsed, settings)?;
        self.since_epoch = self.epoch;
        self.touch(PartKey::Joins);
        self.joins.member_since_ms = ctx.now_ms;
        out.epoch_advanced = true;
        out.events.push(Event::Joined);
        self.set_state(State::Working, out);
        out.events
            .push(Event::StewardsChanged(self.stewards.active()));
        self.note_work(ctx, &mut group, out)
    }

    /// The proposals of the resolutions of the commit that adds this member, parsed once for
    /// the certificate check and for closing them (`None`: refused). The owner's signature is
    /// checked only where the joiner's acceptance depends on it: an approved removal lowers
    /// the signatures the certificate check needs, so it is counted only when its signature
    /// verifies, as before. The others are only closed here; each was checked by every
    /// signer of the certificate before it signed, and a welcome into a commit the members
    /// never certified leaves the joiner alone with its author whatever it closes. That was
    /// n of a joiner's 2n + 1 signature checks in an n-member formation.
    fn parse_resolutions(&self, candidate: &wire::Candidate) -> Vec<Option<Parsed>> {
        let one = |r: &wire::Resolution| {
            let p = r.proposal.as_ref()?;
            let unsigned = parse_unsigned(&self.id, p).ok()?;
            let removal = r.approved && !r.dropped && unsigned.action.removes().is_some();
            if removal {
                parse(&self.id, p).ok()
            } else {
                Some(unsigned)
            }
        };
        candidate.resolutions.iter().map(one).collect()
    }

    fn adopt_sync(
        &mut self,
        ctx: &Ctx,
        group: &Group,
        sync: &wire::ConversationSync,
        candidate: &wire::Candidate,
        parsed: &[Option<Parsed>],
        settings: Settings,
    ) -> Result<(), ProtocolError> {
        self.settings = settings;
        self.pending_join_until = None;
        let members: Vec<MemberId> = group.member_keys().into_iter().map(|(m, _)| m).collect();
        let mut slots = Vec::with_capacity(sync.stewards.len());
        for s in &sync.stewards {
            let id = MemberId::from_slice(s)?;
            slots.push(members.contains(&id).then_some(id));
        }
        self.stewards = StewardSchedule {
            slots,
            base_epoch: sync.steward_base_epoch,
        };
        let mut entries = Vec::with_capacity(sync.scores.len());
        for s in &sync.scores {
            entries.push((MemberId::from_slice(&s.member_id)?, s.score));
        }
        self.scores = ScoreBook::from_sync(&entries, &members, self.settings.default_peer_score);
        self.epoch_seed = epoch_seed(&candidate.resolutions);
        self.enter_epoch(ctx, group)?;
        self.leaders =
            self.stewards
                .leader_order(&self.id, self.epoch, &self.epoch_seed, &self.members());
        for (res, parsed) in candidate.resolutions.iter().zip(parsed) {
            if let (Some(p), Some(parsed)) = (&res.proposal, parsed) {
                self.ballots
                    .close(&parsed.digest, p.proposal_id, p.timestamp);
            }
        }
        let open = sync.open_proposals.iter().map(Vec::as_slice);
        self.ballots.adopt_open_at_join(open, ctx.now_ms);
        Ok(())
    }
}

/// A joiner's check of the certificate of the commit that adds it. It sees the members of
/// the new tree, not those the commit removed (their keys are not in its welcome), so it
/// counts the valid precommits of the members it sees (the joiners excluded) and needs a
/// quorum of the previous epoch less the members removed, at least one. The check is
/// partial: a commit that removes many members may carry few signatures the joiner can see.
/// What it cannot see cannot fork the group — a welcome into a commit the members never
/// certified leaves the joiner alone with its author, never the members apart. `parsed`:
/// the candidate's resolutions' proposals, parsed (`None`: refused by `parse`). Returns the
/// members whose precommits it verified (a joiner's expected member must be among them).
fn check_joiner_certificate(
    conversation: &str,
    group: &Group,
    certified: &wire::CertifiedCommit,
    candidate: &wire::Candidate,
    parsed: &[Option<Parsed>],
    joiners: &[Vec<u8>],
) -> Result<BTreeSet<MemberId>, ProtocolError> {
    let signers: Signers = group
        .member_keys()
        .into_iter()
        .filter(|(m, _)| !joiners.iter().any(|j| j.as_slice() == m.as_bytes()))
        .map(|(m, k)| (k, m))
        .collect();
    // The members the commit removed: the distinct targets of its approved removals (several
    // proposals may remove one member), none of them in the new tree.
    let removed = candidate
        .resolutions
        .iter()
        .zip(parsed)
        .filter(|(r, _)| r.approved && !r.dropped)
        .filter_map(|(_, p)| p.as_ref())
        .filter_map(|p| p.action.removes())
        .filter(|m| !signers.values().any(|s| s == m))
        .collect::<BTreeSet<MemberId>>()
        .len();
    let before = signers.len() + removed;
    let need = quorum(before).saturating_sub(removed).max(1);
    let digest = wire::candidate_digest(conversation, candidate);
    let signed = valid_signers(
        RoundVoteKind::Precommit,
        conversation,
        (candidate.epoch, certified.round, &digest),
        &certified.signatures,
        &signers,
    );
    if signed.len() < need {
        return Err(ProtocolError::InvalidInput(format!(
            "the welcome's certificate has {} signatures of members, {need} are needed",
            signed.len()
        )));
    }
    Ok(signed)
}

/// The sync beside a welcome, decrypted in the group just joined, and its sender. The
/// plaintext is dropped once decoded: a large group's sync is megabytes.
fn open_sync(
    ctx: &Ctx,
    group: &mut Group,
    sealed: &[u8],
) -> Result<(MemberId, wire::ConversationSync), ProtocolError> {
    let decrypted = group.decrypt(ctx.provider, sealed)?;
    let payload = wire::decode_group_payload(&decrypted.plaintext)?;
    match payload.content {
        Some(Content::Sync(sync)) => Ok((decrypted.sender, sync)),
        _ => Err(ProtocolError::InvalidInput(
            "welcome without a conversation sync".into(),
        )),
    }
}

/// The sync's certified commit and its candidate, made whole again: the welcome and the
/// commit travel once, beside the sync (`send_welcome`), and go back where they were
/// certified. The certificate's digest covers both, so one swapped here fails its check.
fn certified_beside(
    sync: &mut wire::ConversationSync,
    packet: &wire::WelcomePacket,
) -> Result<(wire::CertifiedCommit, wire::Candidate), ProtocolError> {
    let mut certified = sync
        .certified
        .take()
        .ok_or_else(|| ProtocolError::InvalidInput("sync without its certified commit".into()))?;
    let mut candidate = certified.candidate.take().unwrap_or_default();
    if candidate.welcome.is_empty() {
        candidate.welcome = packet.welcome.clone();
    }
    if candidate.commit.is_empty() {
        candidate.commit = packet.commit.to_vec();
    }
    if candidate.commit.is_empty() {
        return Err(ProtocolError::InvalidInput(
            "a welcome without the commit it was certified with".into(),
        ));
    }
    if candidate.welcome != packet.welcome {
        return Err(ProtocolError::InvalidInput(
            "the welcome is not the certified one".into(),
        ));
    }
    Ok((certified, candidate))
}
