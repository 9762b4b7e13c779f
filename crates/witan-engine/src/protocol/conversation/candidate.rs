//! Candidates and the MLS group: a leader building one from its tentative decisions, and a
//! member checking one before it prevotes (the check a byzantine leader's garbage must fail).
//!
//! A candidate resolves the proposals its leader considers decided, in ascending digest
//! order, at most `max_commit_proposals` of them and within a byte budget (the rest follow in
//! the next epoch); a resolution that would remove the leader itself is left for another
//! leader (MLS does not let a member commit its own removal). Its MLS commit adds exactly the
//! approved adds of non-members and removes exactly the approved removals of members. An
//! approved add whose key package can no longer be committed (its lifetime is over, or an
//! earlier commit used it) is resolved but *dropped*, so it never blocks later commits.
//!
//! A member finds a candidate valid when every resolution passes the ballot box's check
//! (`ballot_box::evidence`), the MLS commit stages cleanly on its group and changes exactly
//! the members the resolutions say (the group keeps it staged for its merge), a dropped
//! add's key package is indeed expired (by the member's clock, with twice the allowed skew
//! in the leader's favour), and the welcome is for exactly the added key packages. Forgeries (bad signatures, a broken or mismatching
//! commit) also count against the leader as this member's suspicion; disagreements (votes
//! this member holds, a window still open on its clock) do not.

use std::collections::BTreeSet;

use super::{Conversation, PartKey};
use crate::mls::{self, Group, MemberId};
use crate::protocol::ballot_box::{Action, Digest, ResolutionCheck, parse_checked};
use crate::protocol::commit_round::{MAX_CANDIDATE_BYTES, verify_quorum};
use crate::protocol::score_book::ScoreEvent;
use crate::protocol::{Ctx, Output, ProtocolError};
use witan_wire::{self as wire, RoundVoteKind};

/// Bytes of resolutions one candidate carries at most: with its MLS commit and welcome the
/// candidate stays within what members accept (`commit_round::MAX_CANDIDATE_BYTES`); one
/// that does not is halved until it does.
const MAX_RESOLUTION_BYTES: usize = 1024 * 1024;

/// What a member makes of a candidate.
enum Verdict {
    /// Valid, with the author of its MLS commit.
    Valid(MemberId),
    /// Its own view differs (votes it holds, its clock, proposals it had not seen).
    Disagree(String),
    /// The candidate cannot be right for anyone.
    Forged(String),
}

/// The membership changes a candidate's resolutions ask for.
#[derive(Default)]
struct Changes {
    adds: Vec<(MemberId, Vec<u8>)>,
    removes: Vec<MemberId>,
    dropped: Vec<Vec<u8>>,
}

impl Conversation {
    /// Whether an add's key package can no longer be committed: a certified commit already
    /// used it, it does not validate (OpenMLS checks its lifetime with the system clock), or
    /// its lifetime ends within `margin_ms` of this member's (injected) clock.
    fn expired_key_package(&self, ctx: &Ctx, key_package: &[u8], margin_ms: u64) -> bool {
        if self.joins.is_spent(key_package) {
            return true;
        }
        match mls::validate_key_package(ctx.provider, key_package) {
            Ok(info) => info.not_after_ms <= ctx.now_ms.saturating_add(margin_ms),
            Err(_) => true,
        }
    }

    /// The changes of the approved resolutions (`dropped` marks adds not committed).
    fn changes_of(&self, resolutions: &[(Action, bool, bool)]) -> Changes {
        let mut c = Changes::default();
        for (action, approved, dropped) in resolutions {
            if !approved {
                continue;
            }
            match action {
                Action::Add { key_package, .. } if *dropped => c.dropped.push(key_package.clone()),
                Action::Add {
                    member,
                    key_package,
                } => {
                    if !self.is_member(member) && !c.adds.iter().any(|(m, _)| m == member) {
                        c.adds.push((*member, key_package.clone()));
                    }
                }
                other => {
                    if let Some(m) = other.removes()
                        && self.is_member(&m)
                        && !c.removes.contains(&m)
                    {
                        c.removes.push(m);
                    }
                }
            }
        }
        c
    }

    /// As leader of `round`: a new candidate from this member's tentative decisions, or
    /// `None` when there is nothing it can commit.
    pub(super) fn build_candidate(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        round: u32,
    ) -> Result<Option<wire::Candidate>, ProtocolError> {
        let me = self.me;
        let decided = self.with_ballots(ctx.now_ms, |b, scope| b.decided(scope));
        let margin = self.settings.max_clock_skew_ms;
        let mut chosen: Vec<(Action, bool, bool)> = Vec::new();
        let mut resolutions = Vec::new();
        let mut bytes = 0usize;
        for (digest, t) in decided {
            let Some(action) = self.ballots.get(&digest).map(|b| b.action().clone()) else {
                continue;
            };
            if t.approved && action.removes() == Some(me) {
                continue;
            }
            let dropped = match &action {
                Action::Add { key_package, .. } if t.approved => {
                    self.expired_key_package(ctx, key_package, margin)
                }
                _ => false,
            };
            let res = self.with_ballots(ctx.now_ms, |b, scope| {
                b.resolution(&digest, t, dropped, scope)
            });
            let Some(res) = res else { continue };
            bytes = bytes.saturating_add(prost::Message::encoded_len(&res));
            if bytes > MAX_RESOLUTION_BYTES
                || resolutions.len() >= self.settings.max_commit_proposals as usize
            {
                break;
            }
            chosen.push((action, t.approved, dropped));
            resolutions.push(res);
        }
        if resolutions.is_empty() {
            return Ok(None);
        }
        loop {
            let changes = self.changes_of(&chosen);
            let key_packages: Vec<Vec<u8>> =
                changes.adds.iter().map(|(_, kp)| kp.clone()).collect();
            group.clear_pending_commit(ctx.provider)?;
            let output =
                group.create_commit(ctx.provider, ctx.identity, &key_packages, &changes.removes)?;
            let c = wire::Candidate {
                epoch: self.epoch,
                round,
                proposer: me.as_bytes().to_vec(),
                commit: output.commit,
                welcome: output.welcome.unwrap_or_default().into(),
                resolutions: resolutions.clone(),
                pol: None,
            };
            if resolutions.len() == 1 || prost::Message::encoded_len(&c) <= MAX_CANDIDATE_BYTES {
                return Ok(Some(c));
            }
            // Members refuse a larger one: half of the work now, the rest in the next epochs.
            let half = resolutions.len() / 2;
            chosen.truncate(half);
            resolutions.truncate(half);
        }
    }

    /// Whether this member finds `c`'s value valid (see the module doc); remembers a valid
    /// value with its author.
    pub(super) fn check_candidate(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        c: &wire::Candidate,
        out: &mut Output,
    ) -> Result<bool, ProtocolError> {
        Ok(self.value_author(ctx, group, c, out)?.is_some())
    }

    /// Whether this member prevotes `c` as its round's candidate: its value is valid, and it
    /// is its proposer's own commit or comes with a polka of an earlier round (another
    /// leader proposing it again). A new value only from its author is what lets an author
    /// that saw no polka for its value replace it (`CommitRound::own_may_be_certified`).
    pub(super) fn check_proposed(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        c: &wire::Candidate,
        out: &mut Output,
    ) -> Result<bool, ProtocolError> {
        let Some(author) = self.value_author(ctx, group, c, out)? else {
            return Ok(false);
        };
        if author.as_bytes() == c.proposer.as_slice() {
            return Ok(true);
        }
        let digest = wire::candidate_digest(&self.id, c);
        let roster = self.roster();
        let signers = &roster.signers;
        let polka = c.pol.as_ref().is_some_and(|p| {
            p.round < c.round
                && p.epoch == self.epoch
                && p.digest.as_slice() == digest.as_slice()
                && verify_quorum(
                    RoundVoteKind::Prevote,
                    &self.id,
                    (self.epoch, p.round, &digest),
                    &p.signatures,
                    signers,
                )
                .is_ok()
        });
        if !polka {
            tracing::info!(conversation = %self.id, epoch = self.epoch, round = c.round, "not signing a candidate: another member's value without a polka");
        }
        Ok(polka)
    }

    /// The author of `c`'s MLS commit if this member finds its value valid.
    fn value_author(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        c: &wire::Candidate,
        out: &mut Output,
    ) -> Result<Option<MemberId>, ProtocolError> {
        let digest = wire::candidate_digest(&self.id, c);
        if let Some(author) = self.round.known_valid(&digest) {
            return Ok(Some(author));
        }
        let proposer = MemberId::from_slice(&c.proposer).ok();
        match self.judge(ctx, group, c, out)? {
            Verdict::Valid(author) => {
                self.touch(PartKey::Round);
                self.round.mark_valid(&digest, author);
                Ok(Some(author))
            }
            Verdict::Disagree(why) => {
                tracing::info!(conversation = %self.id, epoch = self.epoch, round = c.round, "not signing a candidate: {why}");
                Ok(None)
            }
            Verdict::Forged(why) => {
                if let Some(p) = proposer {
                    self.suspect(
                        p,
                        ScoreEvent::InvalidCandidate,
                        &format!("invalid candidate: {why}"),
                        out,
                    );
                }
                Ok(None)
            }
        }
    }

    fn judge(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        c: &wire::Candidate,
        out: &mut Output,
    ) -> Result<Verdict, ProtocolError> {
        if c.resolutions.is_empty() {
            return Ok(Verdict::Forged("it resolves nothing".into()));
        }
        if c.resolutions.len() > self.settings.max_commit_proposals as usize {
            return Ok(Verdict::Forged(
                "it resolves more than the group's cap".into(),
            ));
        }
        let mut resolved: Vec<(Action, bool, bool)> = Vec::new();
        let mut unknown: Vec<Digest> = Vec::new();
        let mut last: Option<Digest> = None;
        for res in &c.resolutions {
            let Some(p) = &res.proposal else {
                return Ok(Verdict::Forged("a resolution without its proposal".into()));
            };
            let parsed = match parse_checked(&self.id, p, &self.checked.signatures) {
                Ok(parsed) => parsed,
                Err(e) => return Ok(Verdict::Forged(e.to_string())),
            };
            if last.is_some_and(|l| l >= parsed.digest) {
                return Ok(Verdict::Forged(
                    "resolutions are not in ascending digest order".into(),
                ));
            }
            last = Some(parsed.digest);
            if self.ballots.get(&parsed.digest).is_none()
                && !self.ballots.is_resolved(&parsed.digest)
            {
                unknown.push(parsed.digest);
            }
            resolved.push((parsed.action, res.approved, res.dropped));
        }
        let mut disagree: Option<String> = None;
        let mut learned: Vec<Digest> = Vec::new();
        for res in &c.resolutions {
            match self.with_ballots(ctx.now_ms, |b, scope| b.check(res, scope)) {
                Ok(ResolutionCheck::Accept) => {}
                Ok(ResolutionCheck::Refuse(why)) => disagree = disagree.or(Some(why)),
                Ok(ResolutionCheck::Learned(d)) => learned.push(d),
                Err(e) => return Ok(Verdict::Forged(e.to_string())),
            }
        }
        // A proposal first seen in a candidate is one this member may vote on like any other.
        for d in &unknown {
            self.welcome_proposal(ctx, d, out);
        }
        for d in &learned {
            self.auto_vote(ctx, group, d, out)?;
        }
        if !learned.is_empty() {
            return Ok(Verdict::Disagree(
                "it resolves proposals this member had not seen".into(),
            ));
        }
        if let Some(why) = disagree {
            return Ok(Verdict::Disagree(why));
        }
        self.judge_commit(ctx, group, c, &resolved)
    }

    fn judge_commit(
        &self,
        ctx: &Ctx,
        group: &mut Group,
        c: &wire::Candidate,
        resolved: &[(Action, bool, bool)],
    ) -> Result<Verdict, ProtocolError> {
        let changes = self.changes_of(resolved);
        let margin = self.settings.max_clock_skew_ms.saturating_mul(2);
        if changes
            .dropped
            .iter()
            .any(|kp| !self.expired_key_package(ctx, kp, margin))
        {
            return Ok(Verdict::Disagree(
                "it drops an add whose key package is still valid here".into(),
            ));
        }
        let staged = match group.stage_commit(ctx.provider, &c.commit) {
            Ok(staged) => staged,
            Err(e) => return Ok(Verdict::Forged(format!("broken commit: {e}"))),
        };
        if changes.removes.contains(&staged.committer) {
            return Ok(Verdict::Forged("the commit's author removes itself".into()));
        }
        let author = staged.committer;
        let want_adds: BTreeSet<MemberId> = changes.adds.iter().map(|(m, _)| *m).collect();
        let want_removes: BTreeSet<MemberId> = changes.removes.iter().copied().collect();
        let got_adds: BTreeSet<MemberId> = staged.added.iter().copied().collect();
        let got_removes: BTreeSet<MemberId> = staged.removed.iter().copied().collect();
        if want_adds != got_adds || want_removes != got_removes {
            return Ok(Verdict::Forged(
                "the commit does not match its resolutions".into(),
            ));
        }
        // Its certificate, if it comes, merges what was staged here (`mls::group::commit`).
        group.keep_staged(&c.commit, staged);
        if changes.adds.is_empty() {
            if !c.welcome.is_empty() {
                return Ok(Verdict::Forged("a welcome without adds".into()));
            }
            return Ok(Verdict::Valid(author));
        }
        let recipients: BTreeSet<[u8; 32]> = match Group::welcome_recipients(&c.welcome) {
            Ok(r) => r.into_iter().collect(),
            Err(e) => return Ok(Verdict::Forged(format!("broken welcome: {e}"))),
        };
        let mut expected = BTreeSet::new();
        for (_, kp) in &changes.adds {
            match mls::validate_key_package(ctx.provider, kp) {
                Ok(info) => expected.insert(info.hash),
                Err(e) => return Ok(Verdict::Disagree(format!("an added key package: {e}"))),
            };
        }
        if recipients != expected {
            return Ok(Verdict::Forged(
                "the welcome is not for the added members".into(),
            ));
        }
        Ok(Verdict::Valid(author))
    }
}
