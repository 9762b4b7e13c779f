//! Evidence: the resolution a leader puts in a candidate for a proposal (its decision with
//! every vote and proof the leader holds), and the check a member makes before signing it.
//!
//! The check adds the votes the member holds itself to the carried ones (a vote one of them
//! lacks is a fact, whoever brings it) and recomputes the result with the member set of the
//! epoch. It refuses a resolution that result contradicts, a decision at expiry whose silence
//! deadline has not passed on its own clock, and a resolution of a proposal it did not know:
//! that one it registers, so it can vote on it, and it signs a later round's candidate that
//! carries its vote.

use super::{BallotBox, BallotError, Digest, Scope, Tentative, VoteOutcome, decide_backed};
use witan_wire as wire;

/// What a member makes of one resolution of a candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolutionCheck {
    /// It holds: the member may sign.
    Accept,
    /// The member's own votes or clock contradict it.
    Refuse(String),
    /// The proposal was unknown here and is now registered (the caller votes on it); the
    /// resolution counts this member as silent, so it is refused this round.
    Learned(Digest),
}

impl BallotBox {
    /// The resolution of an open proposal with every vote and proof held here.
    pub fn resolution(
        &self,
        digest: &Digest,
        t: Tentative,
        dropped: bool,
        scope: &Scope<'_>,
    ) -> Option<wire::Resolution> {
        let b = self.open.get(digest)?;
        let first = b.header.votes.first().map(|v| v.vote_hash.clone());
        let votes = b
            .votes
            .iter()
            .filter(|(m, v)| scope.members.contains(m) && Some(&v.vote_hash) != first.as_ref())
            .map(|(_, v)| v.clone())
            .collect();
        let proofs = b
            .proofs
            .iter()
            .filter(|(m, _)| scope.members.contains(m))
            .map(|(_, p)| p.clone())
            .collect();
        Some(wire::Resolution {
            proposal: Some(b.header.clone()),
            approved: t.approved,
            at_expiry: t.at_expiry,
            dropped,
            votes,
            proofs,
        })
    }

    /// Checks one resolution of a candidate (see the module doc). Verified votes and proofs
    /// it carries are kept. An error means the resolution is malformed or forged: the whole
    /// candidate is invalid.
    pub fn check(
        &mut self,
        res: &wire::Resolution,
        scope: &Scope<'_>,
    ) -> Result<ResolutionCheck, BallotError> {
        let p = res
            .proposal
            .as_ref()
            .ok_or_else(|| BallotError::Malformed("resolution without a proposal".into()))?;
        if res.dropped && !res.approved {
            return Err(BallotError::Malformed(
                "only an approval can be dropped".into(),
            ));
        }
        let (digest, new) = match self.learn(p, scope) {
            Ok(done) => done,
            Err(BallotError::Refused(why)) => return Ok(ResolutionCheck::Refuse(why)),
            Err(BallotError::Full(why)) => return Ok(ResolutionCheck::Refuse(why.into())),
            Err(e) => return Err(e),
        };
        for v in &res.votes {
            match self.count_vote(v, None, false, scope) {
                Ok(VoteOutcome::Orphan) => {
                    return Err(BallotError::Malformed(
                        "evidence vote of another proposal".into(),
                    ));
                }
                Ok(_) => {}
                // A vote of a former member is not counted (the tally's voters are the
                // members), whoever put it in.
                Err(BallotError::NotVoter) => {}
                Err(e) => return Err(e),
            }
        }
        for proof in &res.proofs {
            self.add_proof(proof, scope)?;
        }
        let is_add = matches!(
            self.open.get(&digest).map(|b| &b.action),
            Some(super::Action::Add { .. })
        );
        if res.dropped && !is_add {
            return Err(BallotError::Malformed("only an add can be dropped".into()));
        }
        if new && res.at_expiry {
            return Ok(ResolutionCheck::Learned(digest));
        }
        Ok(self.judge(&digest, res, scope))
    }

    fn judge(&self, digest: &Digest, res: &wire::Resolution, scope: &Scope<'_>) -> ResolutionCheck {
        let Some(b) = self.open.get(digest) else {
            return ResolutionCheck::Refuse("the proposal is not open here".into());
        };
        let (yes, no) = b.counts(scope);
        let n = scope.members.len() as u64;
        let liveness = scope.settings.liveness_criteria_yes;
        if res.at_expiry && scope.now_ms < b.silence_at(scope.settings) {
            return ResolutionCheck::Refuse("its voting window is still open here".into());
        }
        if res.at_expiry && b.action.class() < super::Class::Emergency && self.emergency_open() {
            return ResolutionCheck::Refuse("an emergency is open: silence does not count".into());
        }
        let backing = b.action.backing(&b.owner);
        let result = decide_backed(n, yes, no, res.at_expiry, liveness, backing);
        if result == Some(res.approved) {
            ResolutionCheck::Accept
        } else {
            ResolutionCheck::Refuse(format!(
                "the votes held here ({yes} yes, {no} no of {n}) do not decide it so"
            ))
        }
    }
}
