//! The commit round of one epoch: Tendermint's two phases with locks, led by one member per
//! round, so that at most one commit is ever certified for an epoch.
//!
//! Round r of epoch E is led by `order[r mod n]` (see `steward_schedule`). Its leader
//! proposes a [`wire::Candidate`]; members prevote its digest to the leader, the leader
//! broadcasts a [`wire::Polka`] once it holds a quorum of prevotes, members lock on it and
//! precommit, and the leader broadcasts the [`wire::CertifiedCommit`] once it holds a quorum
//! of precommits. A member
//! 1. signs at most one prevote and one precommit per round;
//! 2. prevotes a valid candidate of its round's leader if it is not locked, is locked on the
//!    same value, or the candidate carries a polka for it from a round at or after its lock;
//!    otherwise it does not prevote;
//! 3. on a valid polka locks on it (a newer polka replaces an older lock) and precommits the
//!    value if it is valid here, in the polka's round or after it as long as it has prevoted
//!    in no later round;
//! 4. applies any valid certificate of its epoch, of any round (the dispatcher does);
//! 5. moves to the next round when the round times out (round 0 after the commit inactivity
//!    window, round r after `freeze_window × r`, capped), telling everyone in a
//!    [`wire::NewRound`] (with its lock, for the next leader); it moves further only on a
//!    polka (a quorum is there), on more than f members ahead in one later round (their
//!    NewRound messages, and that round's leader's candidate, since a leader sends no
//!    NewRound for its own round), or when its round's leader passes its turn;
//! 6. leads round r > 0 once it holds NewRound messages from a quorum and a short collection
//!    window passed (or from every member), or, failing a quorum, half way through the round
//!    (members that saw no work send no NewRound; a candidate shows them the work): it
//!    proposes again the value of the newest polka reported, else its own value of this
//!    epoch if a polka for it may exist (one pending MLS commit per member), else a new one;
//!    a leader with nothing to propose says so (a NewRound for the next round, to everyone)
//!    instead of letting the others wait for its round to run out.
//!
//! Rounds start when there is work: the round-0 leader proposes `commit_delay` after it sees
//! work, and a member that sees work, or receives a candidate, starts its round timers (one
//! whose rounds rest joins the candidate's round, up to a few rounds ahead). A member with no
//! work and no lock lets its rounds rest when one times out.
//! Timers only drive liveness: safety rests on the quorums and the locks alone
//! (`docs/safety.md`). Every vote this part signs is in its state before it is sent, and the
//! caller persists the state before the packet leaves.

mod candidates;
mod leading;
mod quorum;
mod timing;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::mls::{Identity, MemberId};
use crate::protocol::ballot_box::Digest;
use witan_wire::{self as wire, RoundVoteKind};

pub(crate) use candidates::MAX_CANDIDATES;
pub use candidates::{Candidates, MAX_CANDIDATE_BYTES, MAX_KEPT_CANDIDATE_BYTES};
pub use timing::Timing;

pub use quorum::{
    QuorumError, Signers, max_faulty, quorum, sign, valid_signers, verify_one, verify_quorum,
    verify_vote,
};

/// Candidates of future rounds are held only this many rounds ahead.
const MAX_ROUNDS_AHEAD: u32 = 8;
/// What a step of the round needs to know of the conversation.
pub struct RoundCtx<'a> {
    pub conversation: &'a str,
    pub epoch: u64,
    pub identity: &'a Identity,
    /// The leader order of the epoch: every member once.
    pub leaders: &'a [MemberId],
    /// The members' keys: the signers.
    pub signers: &'a Signers,
    pub now_ms: u64,
    pub timing: Timing,
}

impl RoundCtx<'_> {
    pub fn me(&self) -> MemberId {
        self.identity.member_id()
    }
    pub fn n(&self) -> usize {
        self.leaders.len()
    }
    pub fn quorum(&self) -> usize {
        quorum(self.n())
    }
    pub fn leader(&self, round: u32) -> Option<MemberId> {
        let n = self.leaders.len();
        (n > 0).then(|| self.leaders[round as usize % n])
    }
    fn leads(&self, round: u32) -> bool {
        self.leader(round) == Some(self.me())
    }
}

/// A member's lock: the newest polka it saw, with its candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Lock {
    pub polka: wire::Polka,
    pub candidate: wire::Candidate,
}

impl Lock {
    pub fn round(&self) -> u32 {
        self.polka.round
    }
    pub fn digest(&self) -> &[u8] {
        &self.polka.digest
    }
}

/// What the round asks the dispatcher to do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum RoundEffect {
    /// Send this member's signed prevote or precommit to `to` (the round's leader), sealed.
    SendVote {
        to: MemberId,
        content: wire::sealed_payload::Content,
    },
    /// Broadcast a polka.
    Polka(wire::Polka),
    /// Broadcast this certified commit and apply it.
    Certified(wire::CertifiedCommit),
    /// Send a NewRound to `to` (or to everyone with `None`: a leader passing its turn).
    NewRound {
        to: Option<MemberId>,
        message: wire::NewRound,
    },
    /// Lead `round`: propose `value` (with its polka) or, with `None`, build a new one.
    Propose {
        round: u32,
        value: Option<(wire::Candidate, Option<wire::Polka>)>,
    },
    /// A candidate held for the round just entered: check it and pass it to `on_candidate`.
    Consider(wire::Candidate),
}

/// Signatures collected by a leader for one value of one round.
pub type Collected = BTreeMap<[u8; 32], Vec<u8>>;
/// Collected signatures by (round, digest).
pub type CollectedByValue = BTreeMap<(u32, Vec<u8>), Collected>;

/// The commit round of one epoch. See the module doc.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitRound {
    pub(crate) epoch: u64,
    pub(crate) round: u32,
    /// Rounds are running (work was seen or a candidate arrived).
    pub(crate) started: bool,
    /// When the current round times out.
    pub(crate) deadline: Option<u64>,
    /// The round-0 leader's proposal time.
    pub(crate) commit_at: Option<u64>,
    pub(crate) lock: Option<Lock>,
    /// The last round this member prevoted / precommitted in.
    pub(crate) prevoted: Option<u32>,
    pub(crate) precommitted: Option<u32>,
    /// The value this member built this epoch (its one MLS commit).
    pub(crate) own: Option<wire::Candidate>,
    /// The last round this member proposed in.
    pub(crate) proposed: Option<u32>,
    /// Candidates seen this epoch, by round (one per round: its leader's first).
    pub(crate) candidates: Candidates,
    /// Polkas whose candidate has not arrived yet, by digest.
    pub(crate) early_polkas: BTreeMap<Vec<u8>, wire::Polka>,
    /// As a leader: prevotes and precommits collected, by (round, digest).
    pub(crate) prevotes: CollectedByValue,
    pub(crate) precommits: CollectedByValue,
    /// As leader of `round`: NewRound messages (with the locks they carry) and until when
    /// more are awaited.
    pub(crate) new_rounds: BTreeMap<MemberId, Option<Lock>>,
    pub(crate) collect_until: Option<u64>,
    /// As leader of `round`: when it proposes even without a quorum of NewRound messages.
    pub(crate) fallback_at: Option<u64>,
    /// NewRound messages for rounds ahead of this member's, by round, with their locks.
    pub(crate) ahead: BTreeMap<u32, BTreeMap<MemberId, Option<Lock>>>,
    /// Rounds whose polka / certificate this member (as leader) already sent.
    pub(crate) polka_sent: BTreeSet<u32>,
    pub(crate) certified_sent: bool,
    /// Values this member checked and found valid this epoch, with the author of their MLS
    /// commit (checking one stages its commit, which is not repeated).
    pub(crate) valid: BTreeMap<Vec<u8>, MemberId>,
    /// The digests of `candidates` (derived, see `candidates::DigestMemo`).
    pub(crate) digests: candidates::DigestMemo,
}

fn digest_of(ctx: &RoundCtx<'_>, c: &wire::Candidate) -> Digest {
    wire::candidate_digest(ctx.conversation, c)
}

impl CommitRound {
    /// A fresh round for `epoch`; it replaces a stored one, so its (no) candidates are to be
    /// written.
    pub fn new(epoch: u64) -> Self {
        let mut r = CommitRound {
            epoch,
            ..CommitRound::default()
        };
        r.candidates.mark_changed();
        r
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    pub fn round(&self) -> u32 {
        self.round
    }
    pub fn started(&self) -> bool {
        self.started
    }
    pub fn lock(&self) -> Option<&Lock> {
        self.lock.as_ref()
    }
    pub fn own(&self) -> Option<&wire::Candidate> {
        self.own.as_ref()
    }
    /// The candidates kept this epoch, by round.
    pub fn candidates(&self) -> impl Iterator<Item = &wire::Candidate> {
        self.candidates.values()
    }

    /// Whether this member already proposed in `round`.
    pub fn proposed_in(&self, round: u32) -> bool {
        self.proposed.is_some_and(|p| p >= round)
    }

    /// The author of the value with this digest, if it was found valid here before.
    pub fn known_valid(&self, digest: &[u8]) -> Option<MemberId> {
        self.valid.get(digest).copied()
    }

    pub fn mark_valid(&mut self, digest: &[u8], committer: MemberId) {
        if self.valid.len() < MAX_CANDIDATES {
            self.valid.insert(digest.to_vec(), committer);
        }
    }

    /// Whether this member's own value may be certified: a polka for it exists. The first
    /// polka for a value can only be formed by its author (a value without a polka is valid
    /// only from its author), as the leader of a round it proposed it in — so an author that
    /// formed or saw none knows there is none, and may build a new value instead (its MLS
    /// commit replacing the old one, which can then never be certified).
    pub fn own_may_be_certified(&self, ctx: &RoundCtx<'_>) -> bool {
        let Some(own) = &self.own else {
            return false;
        };
        let digest = digest_of(ctx, own);
        let polka_here = self.polka_sent.iter().any(|r| {
            self.candidates
                .get(r)
                .is_some_and(|c| digest_of(ctx, c) == digest)
        });
        polka_here
            || self
                .lock
                .as_ref()
                .is_some_and(|l| l.digest() == digest.as_slice())
            || self.early_polkas.contains_key(digest.as_slice())
    }

    /// The candidate with this digest, if seen this epoch.
    pub fn candidate(&self, ctx: &RoundCtx<'_>, digest: &[u8]) -> Option<&wire::Candidate> {
        let mine = self
            .own
            .iter()
            .chain(self.lock.iter().map(|l| &l.candidate));
        mine.chain(self.candidates.values())
            .find(|c| digest_of(ctx, c).as_slice() == digest)
    }

    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.deadline,
            self.commit_at,
            self.collect_until,
            self.fallback_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The dispatcher sees work (a tentative resolution to commit): rounds start if they had
    /// not, and the round-0 leader schedules its proposal.
    pub fn note_work(&mut self, ctx: &RoundCtx<'_>) {
        self.start(ctx);
        if self.round == 0 && self.proposed.is_none() && ctx.leads(0) && self.commit_at.is_none() {
            self.commit_at = Some(ctx.now_ms.saturating_add(ctx.timing.commit_delay_ms));
        }
    }

    /// Whether [`Self::note_work`] would change anything (`me` in the epoch's `leaders`).
    pub fn needs_work_noted(&self, leaders: &[MemberId], me: &MemberId) -> bool {
        let leads_first = leaders.first() == Some(me);
        !self.started
            || (self.round == 0
                && self.proposed.is_none()
                && leads_first
                && self.commit_at.is_none())
    }

    fn start(&mut self, ctx: &RoundCtx<'_>) {
        if !self.started {
            self.started = true;
            self.deadline = Some(ctx.now_ms.saturating_add(ctx.timing.timeout(self.round)));
        }
    }

    /// Whether the current round has timed out (and rounds are running).
    pub fn timed_out(&self, now_ms: u64) -> bool {
        self.started && self.deadline.is_some_and(|at| at <= now_ms)
    }

    /// The dispatcher has no work left for this epoch and this member holds no lock: rounds
    /// stop here (its round number stays) until work or a candidate starts them again.
    pub fn rest(&mut self) {
        if self.lock.is_some() {
            return;
        }
        self.started = false;
        self.deadline = None;
        self.commit_at = None;
        self.collect_until = None;
        self.fallback_at = None;
    }

    /// Fires what is due.
    pub fn poll(&mut self, ctx: &RoundCtx<'_>) -> Vec<RoundEffect> {
        let mut out = Vec::new();
        if self.commit_at.is_some_and(|at| at <= ctx.now_ms) {
            self.commit_at = None;
            if self.round == 0 && self.proposed.is_none() {
                out.push(RoundEffect::Propose {
                    round: 0,
                    value: self.own.clone().map(|c| (c, None)),
                });
            }
        }
        let collected = self.collect_until.is_some_and(|at| at <= ctx.now_ms);
        let fallback = self.fallback_at.is_some_and(|at| at <= ctx.now_ms);
        if collected {
            self.collect_until = None;
        }
        if collected || fallback {
            out.extend(self.maybe_propose(ctx, true));
        }
        if fallback {
            self.fallback_at = None;
        }
        if self.deadline.is_some_and(|at| at <= ctx.now_ms) {
            let next = self.round.saturating_add(1);
            out.extend(self.advance_to(next, ctx));
        }
        out
    }

    /// Moves to `round` (later than the current one).
    fn advance_to(&mut self, round: u32, ctx: &RoundCtx<'_>) -> Vec<RoundEffect> {
        if round <= self.round && self.started {
            return Vec::new();
        }
        self.started = true;
        self.round = round;
        self.deadline = Some(ctx.now_ms.saturating_add(ctx.timing.timeout(round)));
        self.commit_at = None;
        self.new_rounds = self.ahead.remove(&round).unwrap_or_default();
        self.collect_until = None;
        self.fallback_at = None;
        self.ahead.retain(|r, _| *r > round);
        self.prevotes.retain(|(r, _), _| *r + 1 >= round);
        self.precommits.retain(|(r, _), _| *r + 1 >= round);
        let mut out = Vec::new();
        if ctx.leads(round) {
            // Its own lock is read from `self.lock` when it proposes: not kept twice.
            self.new_rounds.insert(ctx.me(), None);
            self.collect_until = Some(ctx.now_ms.saturating_add(ctx.timing.collect_ms));
            self.fallback_at = Some(ctx.now_ms.saturating_add(ctx.timing.timeout(round) / 2));
            out.extend(self.maybe_propose(ctx, false));
        } else {
            // To everyone: the leader collects them (with their locks), and members still in
            // an earlier round move on once more than f are ahead of them.
            out.push(RoundEffect::NewRound {
                to: None,
                message: self.new_round_message(round),
            });
        }
        if let Some(c) = self.candidates.get(&round) {
            out.push(RoundEffect::Consider(c.clone()));
        }
        out
    }

    /// A candidate of a later round arrived from `leader`, that round's leader. A member
    /// whose rounds are not running (it saw no work) joins that round; one whose rounds run
    /// counts the leader as a member ahead of it, like a NewRound (a leader sends none for its
    /// own round), and moves on once more than f are. Either way not further than a few
    /// rounds ahead. Without this a member that cannot time out (the notification
    /// extension) would stay behind when the only members awake are the next leader and
    /// one other, and their rounds would never reach a quorum.
    pub fn follow_candidate(
        &mut self,
        round: u32,
        leader: MemberId,
        ctx: &RoundCtx<'_>,
    ) -> Vec<RoundEffect> {
        let ahead = round > self.round && round <= self.round.saturating_add(MAX_ROUNDS_AHEAD);
        if !ahead {
            return Vec::new();
        }
        if self.started {
            let members = self.ahead.entry(round).or_default();
            members.entry(leader).or_insert(None);
            if members.len() <= max_faulty(ctx.n()) {
                return Vec::new();
            }
        }
        let mut out = self.advance_to(round, ctx);
        // The candidate itself is considered by the caller.
        out.retain(|e| !matches!(e, RoundEffect::Consider(_)));
        out
    }

    /// A candidate of the current round from its leader, found `valid` (or not) by the
    /// dispatcher.
    pub fn on_candidate(
        &mut self,
        c: wire::Candidate,
        valid: bool,
        ctx: &RoundCtx<'_>,
    ) -> Vec<RoundEffect> {
        let round = c.round;
        if round != self.round {
            return self.hold(c);
        }
        if let Some(first) = self.candidates.get(&round)
            && digest_of(ctx, first) != digest_of(ctx, &c)
        {
            // A second value from the same leader in one round: the first one stands.
            return Vec::new();
        }
        self.start(ctx);
        let digest = digest_of(ctx, &c);
        self.keep(c.clone());
        let mut out = Vec::new();
        if let Some(p) = self.early_polkas.remove(digest.as_slice()) {
            out.extend(self.on_polka(p, valid, ctx));
        }
        if self.prevoted.is_some_and(|r| r >= round) {
            return out;
        }
        self.prevoted = Some(round);
        if valid && self.may_prevote(&c, &digest, ctx) {
            out.extend(self.vote(RoundVoteKind::Prevote, round, &digest, ctx));
        }
        out
    }

    fn may_prevote(&self, c: &wire::Candidate, digest: &Digest, ctx: &RoundCtx<'_>) -> bool {
        let Some(lock) = &self.lock else {
            return true;
        };
        if lock.digest() == digest.as_slice() {
            return true;
        }
        c.pol.as_ref().is_some_and(|p| {
            p.round >= lock.round()
                && p.round < c.round
                && p.digest.as_slice() == digest.as_slice()
                && p.epoch == self.epoch
                && verify_quorum(
                    RoundVoteKind::Prevote,
                    ctx.conversation,
                    (self.epoch, p.round, digest),
                    &p.signatures,
                    ctx.signers,
                )
                .is_ok()
        })
    }

    /// Signs a vote and sends it to the round's leader (or counts it here if this member
    /// leads the round).
    fn vote(
        &mut self,
        kind: RoundVoteKind,
        round: u32,
        digest: &Digest,
        ctx: &RoundCtx<'_>,
    ) -> Vec<RoundEffect> {
        let v = sign(
            ctx.identity,
            kind,
            ctx.conversation,
            self.epoch,
            round,
            Some(digest),
        );
        if ctx.leads(round) {
            return match kind {
                RoundVoteKind::Prevote => self.on_prevote(v, ctx),
                RoundVoteKind::Precommit => self.on_precommit(v, ctx),
            };
        }
        let content = match kind {
            RoundVoteKind::Prevote => wire::sealed_payload::Content::Prevote(v),
            RoundVoteKind::Precommit => wire::sealed_payload::Content::Precommit(v),
        };
        match ctx.leader(round) {
            Some(to) => vec![RoundEffect::SendVote { to, content }],
            None => Vec::new(),
        }
    }

    /// A polka, verified here; `valid`: the dispatcher finds its candidate valid.
    pub fn on_polka(
        &mut self,
        p: wire::Polka,
        valid: bool,
        ctx: &RoundCtx<'_>,
    ) -> Vec<RoundEffect> {
        let Ok(digest) = Digest::try_from(p.digest.as_slice()) else {
            return Vec::new();
        };
        if p.epoch != self.epoch
            || verify_quorum(
                RoundVoteKind::Prevote,
                ctx.conversation,
                (self.epoch, p.round, &digest),
                &p.signatures,
                ctx.signers,
            )
            .is_err()
        {
            return Vec::new();
        }
        let Some(candidate) = self.candidate(ctx, &digest).cloned() else {
            // Its candidate is still on its way: kept until it arrives.
            if self.early_polkas.len() < MAX_ROUNDS_AHEAD as usize {
                self.early_polkas.insert(p.digest.clone(), p);
            }
            return Vec::new();
        };
        if self.lock.as_ref().is_none_or(|l| p.round > l.round()) {
            self.lock = Some(Lock {
                polka: p.clone(),
                candidate,
            });
        }
        let mut out = Vec::new();
        if p.round > self.round {
            // A quorum prevoted in that round: honest members are there.
            out.extend(self.advance_to(p.round, ctx));
        }
        // A polka of this round, or of one this member left before the polka reached it: it
        // precommits if it has prevoted in no later round (so every precommit of a
        // certificate comes before its signer's prevotes of later rounds, which is what the
        // locks need; docs/safety.md). Without it, members a round apart never certify.
        let prevoted_later = self.prevoted.is_some_and(|r| r > p.round);
        if p.round <= self.round
            && !prevoted_later
            && valid
            && self.precommitted.is_none_or(|r| r < p.round)
        {
            self.precommitted = Some(p.round);
            out.extend(self.vote(RoundVoteKind::Precommit, p.round, &digest, ctx));
        }
        out
    }

    /// Checks a certified commit of this epoch: a quorum of valid precommits for the digest
    /// of its candidate.
    pub fn verify_certificate(
        &self,
        c: &wire::CertifiedCommit,
        ctx: &RoundCtx<'_>,
    ) -> Result<Digest, QuorumError> {
        let candidate = c
            .candidate
            .as_ref()
            .ok_or(QuorumError::Malformed("no candidate"))?;
        if candidate.epoch != self.epoch {
            return Err(QuorumError::Malformed("another epoch"));
        }
        let digest = digest_of(ctx, candidate);
        verify_quorum(
            RoundVoteKind::Precommit,
            ctx.conversation,
            (self.epoch, c.round, &digest),
            &c.signatures,
            ctx.signers,
        )?;
        Ok(digest)
    }
}
