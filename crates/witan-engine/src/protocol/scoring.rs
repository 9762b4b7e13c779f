//! Peer scoring (spec "Peer Scoring"): a per-conversation table from member to score.
//!
//! Scores start at `default_peer_score` and change only from what every member applying the
//! same commits and decisions sees alike — an applied commit (its author's reward, the
//! missed-commit penalty of the epoch steward it replaced), a freeze round with no valid
//! candidate, finalized emergency votes — so that all members of one epoch hold the same
//! table. A member's own observations of invalid candidates are kept apart by the
//! conversation (`suspicion`) and reach this table only through an emergency vote.
//! Rewards never lift a score above the default, so good behaviour heals past faults but
//! cannot bank credit for future ones. A downward crossing of
//! `removal_threshold` is reported so the engine raises an emergency removal proposal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mls::MemberId;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scores {
    table: BTreeMap<MemberId, i64>,
}

/// Why a score changed; carried into logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreEvent {
    CommitChosen,
    MissedCommit,
    InvalidCandidate,
    UnauthorizedCommitter,
    EmergencyUpheld,
    EmergencyRejected,
    EmergencyRewarded,
}

impl Scores {
    pub fn get(&self, member: &MemberId) -> Option<i64> {
        self.table.get(member).copied()
    }

    pub fn ensure(&mut self, member: MemberId, default: i64) {
        self.table.entry(member).or_insert(default);
    }

    pub fn remove(&mut self, member: &MemberId) {
        self.table.remove(member);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&MemberId, &i64)> {
        self.table.iter()
    }

    pub fn set(&mut self, member: MemberId, score: i64) {
        self.table.insert(member, score);
    }

    /// Applies `delta` (capped at `cap` upwards); returns true when the score crossed below
    /// `threshold` with this change.
    pub fn adjust(&mut self, member: &MemberId, delta: i64, cap: i64, threshold: i64) -> bool {
        let Some(score) = self.table.get_mut(member) else {
            return false;
        };
        let before = *score;
        let after = if delta > 0 {
            before.saturating_add(delta).min(cap.max(before))
        } else {
            before.saturating_add(delta)
        };
        *score = after;
        before >= threshold && after < threshold
    }

    /// Members currently below the threshold.
    pub fn below(&self, threshold: i64) -> Vec<MemberId> {
        self.table
            .iter()
            .filter(|(_, s)| **s < threshold)
            .map(|(m, _)| *m)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties_cross_the_threshold_once_and_rewards_are_capped() {
        let m = MemberId([1; 20]);
        let mut s = Scores::default();
        s.ensure(m, 100);
        assert!(!s.adjust(&m, -60, 100, 0));
        assert_eq!(s.get(&m), Some(40));
        assert!(s.adjust(&m, -60, 100, 0), "crossing downwards is reported");
        assert!(
            !s.adjust(&m, -60, 100, 0),
            "only the crossing itself is reported"
        );
        assert_eq!(s.below(0), vec![m]);
        s.adjust(&m, 500, 100, 0);
        assert_eq!(s.get(&m), Some(100));
    }

    #[test]
    fn unknown_members_are_not_scored() {
        let mut s = Scores::default();
        assert!(!s.adjust(&MemberId([2; 20]), -1000, 100, 0));
        assert_eq!(s.get(&MemberId([2; 20])), None);
    }
}
