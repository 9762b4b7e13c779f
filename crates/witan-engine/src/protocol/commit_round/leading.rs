//! The leader's side of a round, and the NewRound messages: a leader of a later round
//! collects NewRound messages (with the locks they carry) and proposes the newest locked
//! value or its own; it collects the prevotes and precommits for the value it proposed into
//! a polka and a certificate. Any member moves ahead on NewRound messages from more than f
//! members (see the module doc of `commit_round`).

use super::*;

impl CommitRound {
    pub(super) fn new_round_message(&self, round: u32) -> wire::NewRound {
        wire::NewRound {
            epoch: self.epoch,
            round,
            lock: self.lock.as_ref().map(|l| l.polka.clone()),
            locked: self.lock.as_ref().map(|l| l.candidate.clone()),
        }
    }

    /// As leader of a later round: proposes once a quorum of members is in the round and the
    /// collection window is over (`window_over`), or every member is.
    pub(super) fn maybe_propose(
        &mut self,
        ctx: &RoundCtx<'_>,
        window_over: bool,
    ) -> Vec<RoundEffect> {
        let round = self.round;
        if round == 0 || !ctx.leads(round) || self.proposed.is_some_and(|p| p >= round) {
            return Vec::new();
        }
        let have = self.new_rounds.len();
        let over = window_over || self.collect_until.is_none_or(|at| at <= ctx.now_ms);
        let late = self.fallback_at.is_some_and(|at| at <= ctx.now_ms);
        if !(have >= ctx.n() || (have >= ctx.quorum() && over) || late) {
            return Vec::new();
        }
        let newest = self
            .new_rounds
            .values()
            .flatten()
            // Its own lock as it is now: it may have locked since it entered the round.
            .chain(self.lock.iter())
            .max_by_key(|l| l.round())
            .cloned();
        let value = match newest {
            Some(l) => Some((l.candidate, Some(l.polka))),
            None => self.own.clone().map(|c| (c, None)),
        };
        vec![RoundEffect::Propose { round, value }]
    }

    /// The dispatcher proposed `c` in its round (`built` now, or proposed again and found
    /// `valid` here): it is sent, and this member treats it as received from the leader.
    pub fn proposed(
        &mut self,
        c: wire::Candidate,
        built: bool,
        valid: bool,
        ctx: &RoundCtx<'_>,
    ) -> Vec<RoundEffect> {
        self.proposed = Some(c.round);
        self.collect_until = None;
        self.fallback_at = None;
        if built {
            let mut own = c.clone();
            own.round = 0;
            own.pol = None;
            self.own = Some(own);
        }
        self.on_candidate(c, valid, ctx)
    }

    /// The leader of the current round has nothing to propose: it passes its turn, telling
    /// everyone so that members in its round move on at once. It moves on itself only when
    /// its round runs out (or with the others, see `on_new_round`): a passer that moved at
    /// once would run ahead of members still in an earlier round, and the more often it
    /// passed the further ahead it would be, never in a round with them.
    pub fn pass(&mut self, _ctx: &RoundCtx<'_>) -> Vec<RoundEffect> {
        let round = self.round;
        self.proposed = Some(round);
        vec![RoundEffect::NewRound {
            to: None,
            message: self.new_round_message(round.saturating_add(1)),
        }]
    }

    /// As leader: a prevote for one of this member's rounds.
    pub fn on_prevote(&mut self, v: wire::RoundVote, ctx: &RoundCtx<'_>) -> Vec<RoundEffect> {
        let Some(count) = self.collect(RoundVoteKind::Prevote, &v, ctx) else {
            return Vec::new();
        };
        if count < ctx.quorum() || self.polka_sent.contains(&v.round) {
            return Vec::new();
        }
        // The polka carries them from here on (and the lock keeps it).
        let Some(sigs) = self.prevotes.remove(&(v.round, v.digest.clone())) else {
            return Vec::new();
        };
        let signatures = signatures(&sigs);
        let Ok(digest) = Digest::try_from(v.digest.as_slice()) else {
            return Vec::new();
        };
        self.polka_sent.insert(v.round);
        let polka = wire::Polka {
            epoch: self.epoch,
            round: v.round,
            digest: digest.to_vec(),
            signatures,
        };
        let mut out = vec![RoundEffect::Polka(polka.clone())];
        out.extend(self.on_polka(polka, true, ctx));
        out
    }

    /// As leader: a precommit for one of this member's rounds.
    pub fn on_precommit(&mut self, v: wire::RoundVote, ctx: &RoundCtx<'_>) -> Vec<RoundEffect> {
        let Some(count) = self.collect(RoundVoteKind::Precommit, &v, ctx) else {
            return Vec::new();
        };
        if count < ctx.quorum() || self.certified_sent {
            return Vec::new();
        }
        // The candidate as this member proposed it in that round: it names this member as
        // its proposer, who sends the welcome of the members it adds (a value proposed again
        // keeps its digest, not its first proposer).
        let Some(mut candidate) = self.candidates.get(&v.round).cloned() else {
            return Vec::new();
        };
        // The certificate carries them from here on.
        let Some(sigs) = self.precommits.remove(&(v.round, v.digest.clone())) else {
            return Vec::new();
        };
        let signatures = signatures(&sigs);
        self.certified_sent = true;
        candidate.pol = None;
        vec![RoundEffect::Certified(wire::CertifiedCommit {
            candidate: Some(candidate),
            round: v.round,
            signatures,
        })]
    }

    /// Verifies and stores a vote addressed to this member as leader of its round, for the
    /// value this member proposed there. Returns how many signatures it holds for that value
    /// (not the signatures: a copy per vote made collecting O(n²) for the leader).
    fn collect(
        &mut self,
        kind: RoundVoteKind,
        v: &wire::RoundVote,
        ctx: &RoundCtx<'_>,
    ) -> Option<usize> {
        if v.epoch != self.epoch || !ctx.leads(v.round) || v.digest.is_empty() {
            return None;
        }
        // Past its polka (or certificate) a vote adds nothing: neither checked nor kept.
        let formed = match kind {
            RoundVoteKind::Prevote => self.polka_sent.contains(&v.round),
            RoundVoteKind::Precommit => self.certified_sent,
        };
        if formed {
            return None;
        }
        let proposed = self.digest_at(v.round, ctx);
        if proposed.as_ref().map(|d| d.as_slice()) != Some(v.digest.as_slice()) {
            return None;
        }
        let key: [u8; 32] = v.voter_key.as_slice().try_into().ok()?;
        let table = match kind {
            RoundVoteKind::Prevote => &mut self.prevotes,
            RoundVoteKind::Precommit => &mut self.precommits,
        };
        let slot = (v.round, v.digest.clone());
        // A copy (round messages leave no seen mark): the same signature over the same
        // epoch, round and value, held already, needs no second check.
        if let Some(sigs) = table.get(&slot)
            && sigs.get(&key) == Some(&v.signature)
        {
            return Some(sigs.len());
        }
        verify_vote(kind, ctx.conversation, v, ctx.signers).ok()?;
        let sigs = table.entry(slot).or_default();
        sigs.insert(key, v.signature.clone());
        Some(sigs.len())
    }

    /// A NewRound from `from` (its lock, if any, verified here).
    pub fn on_new_round(
        &mut self,
        from: MemberId,
        m: wire::NewRound,
        ctx: &RoundCtx<'_>,
    ) -> Vec<RoundEffect> {
        if m.epoch != self.epoch || !ctx.leaders.contains(&from) {
            return Vec::new();
        }
        let lock = self.verified_lock(&m, ctx);
        let mut out = Vec::new();
        // The leader of this round passing its turn, or members ahead of this one.
        let passing =
            m.round == self.round.saturating_add(1) && ctx.leader(self.round) == Some(from);
        if m.round > self.round && m.round <= self.round.saturating_add(MAX_ROUNDS_AHEAD) {
            // Only the round's leader needs the locks; others count the members ahead.
            let kept = if ctx.leads(m.round) {
                lock.clone()
            } else {
                None
            };
            // One lock kept over all rounds ahead (the newest), as within one round.
            let newest = self
                .ahead
                .values()
                .flat_map(|h| h.values().flatten())
                .map(Lock::round)
                .max();
            let kept = kept.filter(|l| newest.is_none_or(|r| l.round() > r));
            if kept.is_some() {
                for held in self.ahead.values_mut() {
                    held.values_mut().for_each(|l| *l = None);
                }
            }
            let ahead = self.ahead.entry(m.round).or_default();
            note_new_round(ahead, from, kept);
            if passing || ahead.len() > max_faulty(ctx.n()) {
                out.extend(self.advance_to(m.round, ctx));
            }
        }
        if m.round == self.round && ctx.leads(m.round) {
            note_new_round(&mut self.new_rounds, from, lock);
            out.extend(self.maybe_propose(ctx, false));
        }
        out
    }

    fn verified_lock(&self, m: &wire::NewRound, ctx: &RoundCtx<'_>) -> Option<Lock> {
        let (polka, candidate) = (m.lock.clone()?, m.locked.clone()?);
        if prost::Message::encoded_len(&candidate) > MAX_CANDIDATE_BYTES {
            return None;
        }
        let digest = digest_of(ctx, &candidate);
        let ok = polka.epoch == self.epoch
            && candidate.epoch == self.epoch
            && polka.digest.as_slice() == digest.as_slice()
            && verify_quorum(
                RoundVoteKind::Prevote,
                ctx.conversation,
                (self.epoch, polka.round, &digest),
                &polka.signatures,
                ctx.signers,
            )
            .is_ok();
        ok.then_some(Lock { polka, candidate })
    }
}

/// Notes `from`'s NewRound, keeping its lock only if it is newer than every lock held: the
/// leader proposes the newest lock's value and no other, and a packet-sized candidate kept
/// once per member would not fit the state budget (`protocol::STATE_BUDGET_BYTES`).
pub(super) fn note_new_round(
    held: &mut BTreeMap<MemberId, Option<Lock>>,
    from: MemberId,
    lock: Option<Lock>,
) {
    let newest = held.values().flatten().map(Lock::round).max();
    let lock = lock.filter(|l| newest.is_none_or(|r| l.round() > r));
    if lock.is_some() {
        held.values_mut().for_each(|l| *l = None);
    }
    held.insert(from, lock);
}

fn signatures(sigs: &Collected) -> Vec<wire::RoundSignature> {
    sigs.iter()
        .map(|(k, s)| wire::RoundSignature {
            voter_key: k.to_vec(),
            signature: s.clone(),
        })
        .collect()
}
