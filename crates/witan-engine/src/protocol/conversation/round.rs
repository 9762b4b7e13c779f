//! The dispatcher's side of the commit round: it feeds the round part what arrived (after the
//! checks that need the MLS group or the ballot box) and carries out the effects the part
//! returns, in order, until there are none — sending votes, polkas and certified commits,
//! proposing as leader, applying a certificate. Once a certificate is applied the epoch is
//! over and whatever the old epoch's round still asked for is dropped.

use std::collections::VecDeque;

use super::Conversation;
use super::timers::Sharing;
use crate::mls::{Group, MemberId};
use crate::protocol::commit_round::{MAX_CANDIDATE_BYTES, RoundEffect};
use crate::protocol::score_book::ScoreEvent;
use crate::protocol::{Ctx, Event, Output, ProtocolError};
use witan_wire::{self as wire, group_payload::Content};

/// Effects carried out in one step at most (a guard against a bug looping in the host).
const MAX_EFFECTS: usize = 10_000;

impl Conversation {
    /// Carries out the round's effects (see the module doc).
    pub(super) fn drive(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        effects: Vec<RoundEffect>,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let epoch = self.epoch;
        let mut queue: VecDeque<RoundEffect> = effects.into();
        let mut done = 0;
        while let Some(effect) = queue.pop_front() {
            if self.epoch != epoch || !self.is_member_state() {
                break;
            }
            done += 1;
            if done > MAX_EFFECTS {
                return Err(ProtocolError::Internal(
                    "round effects did not settle".into(),
                ));
            }
            let more = self.carry_out(ctx, group, effect, out)?;
            queue.extend(more);
        }
        Ok(())
    }

    fn carry_out(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        effect: RoundEffect,
        out: &mut Output,
    ) -> Result<Vec<RoundEffect>, ProtocolError> {
        match effect {
            RoundEffect::SendVote { to, content } => {
                self.send_sealed(ctx, group, content, Some(to), out)?;
                Ok(Vec::new())
            }
            RoundEffect::Polka(p) => {
                self.send(ctx, group, Content::Polka(p), None, out)?;
                Ok(Vec::new())
            }
            RoundEffect::NewRound { to, message } => {
                self.send(ctx, group, Content::NewRound(message), to, out)?;
                Ok(Vec::new())
            }
            RoundEffect::Certified(c) => {
                self.send(ctx, group, Content::Certified(c.clone()), None, out)?;
                let packet = out.outbound.last().map(|o| o.payload.clone());
                self.apply_certified(ctx, group, c, packet, out)?;
                Ok(Vec::new())
            }
            RoundEffect::Propose { round, value } => self.lead(ctx, group, round, value, out),
            RoundEffect::Consider(c) => {
                let valid = self.check_proposed(ctx, group, &c, out)?;
                Ok(self.with_round(ctx, |r, rcx| r.on_candidate(c, valid, rcx)))
            }
        }
    }

    /// Proposes in `round` as its leader: `value` again (with its polka), or a new value.
    fn lead(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        round: u32,
        value: Option<(wire::Candidate, Option<wire::Polka>)>,
        out: &mut Output,
    ) -> Result<Vec<RoundEffect>, ProtocolError> {
        if self.round.proposed_in(round) || round != self.round.round() {
            // A leader proposes once per round, in its current round (the extension too: its
            // candidate is one MLS commit of at most `max_commit_proposals` proposals).
            return Ok(Vec::new());
        }
        // Its own value again only if it may be certified: otherwise a fresh value, from what
        // this member considers decided now (its old value may have gone stale).
        let own_again = |v: &Option<(wire::Candidate, Option<wire::Polka>)>| matches!(v, Some((c, None)) if self.round.own().is_some_and(|o| o.commit == c.commit));
        let value =
            if own_again(&value) && !self.read_round(ctx, |r, rcx| r.own_may_be_certified(rcx)) {
                None
            } else {
                value
            };
        let (mut candidate, built) = match value {
            // A value that removes this member: whoever certifies it welcomes the members it
            // adds in the new epoch, which this member will not be in — the next leader
            // proposes it.
            Some((c, _)) if self.removes_me(&c) => {
                tracing::debug!(conversation = %self.id, epoch = self.epoch, round, "passing the round: the value removes this member");
                return Ok(self.with_round(ctx, |r, rcx| r.pass(rcx)));
            }
            Some((c, pol)) => (wire::Candidate { pol, ..c }, false),
            None => match self.build_candidate(ctx, group, round)? {
                Some(c) => (c, true),
                // Work it cannot commit (its own removal): it passes its turn at once.
                None if self.has_work(ctx) => {
                    tracing::debug!(conversation = %self.id, epoch = self.epoch, round, "passing the round: nothing this member can commit");
                    self.share_work(ctx, group, Sharing::All, out)?;
                    return Ok(self.with_round(ctx, |r, rcx| r.pass(rcx)));
                }
                // Nothing to commit at all: its round runs out (or rests).
                None => return Ok(Vec::new()),
            },
        };
        candidate.round = round;
        candidate.proposer = self.me.as_bytes().to_vec();
        let own = self
            .round
            .own()
            .is_some_and(|o| o.commit == candidate.commit);
        let valid = built || own || self.check_candidate(ctx, group, &candidate, out)?;
        tracing::info!(conversation = %self.id, epoch = self.epoch, round, resolutions = candidate.resolutions.len(), again = !built, "proposing a candidate");
        self.send(ctx, group, Content::Candidate(candidate.clone()), None, out)?;
        Ok(self.with_round(ctx, |r, rcx| r.proposed(candidate, built, valid, rcx)))
    }

    /// Whether a value's approved resolutions remove this member.
    fn removes_me(&self, c: &wire::Candidate) -> bool {
        c.resolutions
            .iter()
            .filter(|r| r.approved && !r.dropped)
            .filter_map(|r| r.proposal.as_ref())
            .filter_map(|p| crate::protocol::ballot_box::parse_payload(p).ok())
            .any(|(action, _)| action.removes() == Some(self.me))
    }

    /// A candidate from `sender`, which must be the leader of its round.
    pub(super) fn on_candidate(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        sender: MemberId,
        c: wire::Candidate,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if c.epoch != self.epoch {
            return Ok(());
        }
        let size = prost::Message::encoded_len(&c);
        if size > MAX_CANDIDATE_BYTES {
            // No leader builds one this large: refused before it is kept anywhere.
            return Err(ProtocolError::InvalidInput(format!(
                "candidate of {size} bytes exceeds {MAX_CANDIDATE_BYTES}"
            )));
        }
        let leader = self
            .leaders
            .get(c.round as usize % self.leaders.len().max(1));
        if leader != Some(&sender) || c.proposer.as_slice() != sender.as_bytes() {
            self.suspect(
                sender,
                ScoreEvent::UnauthorizedLeader,
                "a candidate from a member that does not lead its round",
                out,
            );
            return Ok(());
        }
        let joined = self.with_round(ctx, |r, rcx| r.follow_candidate(c.round, sender, rcx));
        self.drive(ctx, group, joined, out)?;
        let effects = if self.round.placement(c.round) == std::cmp::Ordering::Equal {
            let valid = self.check_proposed(ctx, group, &c, out)?;
            self.with_round(ctx, |r, rcx| r.on_candidate(c, valid, rcx))
        } else {
            self.with_round(ctx, |r, _| r.hold(c))
        };
        self.drive(ctx, group, effects, out)
    }

    pub(super) fn on_polka(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        p: wire::Polka,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if p.epoch != self.epoch {
            return Ok(());
        }
        crate::metrics::certificate_received(prost::encoding::message::encoded_len_repeated(
            4,
            &p.signatures,
        ));
        let candidate = self.read_round(ctx, |r, rcx| r.candidate(rcx, &p.digest).cloned());
        let valid = match &candidate {
            Some(c) => self.check_candidate(ctx, group, c, out)?,
            None => false,
        };
        let effects = self.with_round(ctx, |r, rcx| r.on_polka(p, valid, rcx));
        self.drive(ctx, group, effects, out)
    }

    /// A certified commit (`packet`: the envelope it came in, kept for members behind).
    pub(super) fn on_certified(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        c: wire::CertifiedCommit,
        packet: Option<Vec<u8>>,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let epoch = c.candidate.as_ref().map(|x| x.epoch);
        if epoch != Some(self.epoch) {
            return Ok(());
        }
        crate::metrics::certificate_received(prost::encoding::message::encoded_len_repeated(
            3,
            &c.signatures,
        ));
        let verified = self.read_round(ctx, |r, rcx| r.verify_certificate(&c, rcx));
        if let Err(e) = verified {
            return Err(ProtocolError::InvalidInput(format!(
                "certified commit does not verify: {e}"
            )));
        }
        self.apply_certified(ctx, group, c, packet, out)
    }

    /// Records an objection of this member's own (see `score_book`).
    pub(super) fn suspect(
        &mut self,
        member: MemberId,
        why: ScoreEvent,
        what: &str,
        out: &mut Output,
    ) {
        tracing::warn!(conversation = %self.id, member = %member.short(), "{what}");
        out.events.push(Event::Warning(format!(
            "{what} (member {})",
            member.short()
        )));
        let penalty = self.settings.score_invalid_candidate_penalty;
        self.touch(super::PartKey::Scores);
        self.scores.suspect(&member, -penalty, why);
    }
}
