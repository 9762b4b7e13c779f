//! Peer scores (spec "Peer Scoring"): the group's table, changed only by certified commits,
//! and this member's own suspicion, kept apart.
//!
//! Every change to the group's table comes from a certified commit, so all members of an
//! epoch hold the same table: the author of the certified commit is rewarded, the leaders of
//! the rounds that failed before it are penalised once each (a missed commit), members
//! proven to have voted both ways are penalised, and resolved emergencies reward or penalise
//! as the spec says. Rewards never lift a score above the default, so good behaviour heals
//! past faults but banks no credit. What a member finds wrong with a candidate on its own
//! (unauthorized, forged evidence, a broken commit) is its *suspicion*: counted with the
//! group's score when it raises and votes on emergency removals, which turns local evidence
//! into a group decision.

use std::collections::{BTreeMap, BTreeSet};

use crate::mls::MemberId;
use crate::protocol::settings::Settings;

/// Why a score changes (logs and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreEvent {
    CommitCertified,
    MissedCommit,
    Equivocation,
    EmergencyUpheld,
    EmergencyRewarded,
    EmergencyRejected,
    InvalidCandidate,
    UnauthorizedLeader,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreBook {
    scores: BTreeMap<MemberId, i64>,
    suspicion: BTreeMap<MemberId, i64>,
    /// The lowest local score (`i64::MAX` for an empty table): a function of the two tables,
    /// kept so that the check after every packet is one comparison while nobody is low.
    lowest: i64,
}

impl Default for ScoreBook {
    fn default() -> Self {
        ScoreBook {
            scores: BTreeMap::new(),
            suspicion: BTreeMap::new(),
            lowest: i64::MAX,
        }
    }
}

impl ScoreBook {
    /// A table as stored: the group's scores and this member's suspicion.
    pub fn from_tables(
        scores: BTreeMap<MemberId, i64>,
        suspicion: BTreeMap<MemberId, i64>,
    ) -> Self {
        let mut book = ScoreBook {
            scores,
            suspicion,
            lowest: i64::MAX,
        };
        book.refresh_lowest();
        book
    }

    /// The group's scores, by member.
    pub fn table(&self) -> &BTreeMap<MemberId, i64> {
        &self.scores
    }

    /// This member's suspicion, by member.
    pub fn suspicion_table(&self) -> &BTreeMap<MemberId, i64> {
        &self.suspicion
    }

    fn refresh_lowest(&mut self) {
        let suspected = |m: &MemberId| self.suspicion.get(m).copied().unwrap_or(0);
        self.lowest = self
            .scores
            .iter()
            .map(|(m, agreed)| agreed.saturating_add(suspected(m)))
            .min()
            .unwrap_or(i64::MAX);
    }

    /// The group's score of `member`, if it is a member.
    pub fn get(&self, member: &MemberId) -> Option<i64> {
        self.scores.get(member).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&MemberId, &i64)> {
        self.scores.iter()
    }

    /// Keeps exactly `members` in the table, newcomers at the default score.
    pub fn set_members(&mut self, members: &[MemberId], default: i64) {
        // A set: a search of the list for each entry costs a large group n².
        let set: BTreeSet<&MemberId> = members.iter().collect();
        self.scores.retain(|m, _| set.contains(m));
        self.suspicion.retain(|m, _| set.contains(m));
        for m in members {
            self.scores.entry(*m).or_insert(default);
        }
        self.refresh_lowest();
    }

    /// A joiner's table, as the sync gives it: members only, the rest at the default.
    pub fn from_sync(entries: &[(MemberId, i64)], members: &[MemberId], default: i64) -> Self {
        let mut book = ScoreBook::default();
        let set: BTreeSet<&MemberId> = members.iter().collect();
        for (m, s) in entries {
            if set.contains(m) {
                book.scores.insert(*m, *s);
            }
        }
        book.set_members(members, default);
        book
    }

    /// A certified change. Rewards are capped at the default score. Returns true when the
    /// score crossed below the removal threshold with it.
    pub fn adjust(&mut self, member: &MemberId, delta: i64, why: ScoreEvent, s: &Settings) -> bool {
        let Some(score) = self.scores.get_mut(member) else {
            return false;
        };
        let before = *score;
        *score = if delta > 0 {
            before
                .saturating_add(delta)
                .min(s.default_peer_score.max(before))
        } else {
            before.saturating_add(delta)
        };
        let after = *score;
        tracing::debug!(member = %member.short(), delta, ?why, "score changed");
        self.refresh_lowest();
        before >= s.removal_threshold && after < s.removal_threshold
    }

    /// This member's own observation against `member`.
    pub fn suspect(&mut self, member: &MemberId, delta: i64, why: ScoreEvent) {
        if !self.scores.contains_key(member) {
            return;
        }
        let entry = self.suspicion.entry(*member).or_insert(0);
        *entry = entry.saturating_add(delta);
        tracing::debug!(member = %member.short(), delta, ?why, "local penalty");
        self.refresh_lowest();
    }

    /// The group's score with this member's suspicion counted: what it acts on when it
    /// raises and votes on emergency removals.
    pub fn local_score(&self, member: &MemberId) -> Option<i64> {
        let agreed = self.get(member)?;
        Some(agreed.saturating_add(self.suspicion.get(member).copied().unwrap_or(0)))
    }

    /// The group judged `member` in an emergency vote: local evidence against it is spent.
    pub fn clear_suspicion(&mut self, member: &MemberId) {
        if self.suspicion.remove(member).is_some() {
            self.refresh_lowest();
        }
    }

    /// Members whose local score is below the removal threshold. Asked for after every
    /// packet: while nobody is that low it is one comparison, and otherwise it walks the
    /// table once, looking suspicion up only when there is some.
    pub fn below_threshold(&self, s: &Settings) -> Vec<MemberId> {
        if self.lowest >= s.removal_threshold {
            return Vec::new();
        }
        let suspected = |m: &MemberId| self.suspicion.get(m).copied().unwrap_or(0);
        self.scores
            .iter()
            .filter(|(m, agreed)| {
                let local = if self.suspicion.is_empty() {
                    **agreed
                } else {
                    agreed.saturating_add(suspected(m))
                };
                local < s.removal_threshold
            })
            .map(|(m, _)| *m)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties_cross_the_threshold_once_and_rewards_are_capped() {
        let s = Settings::default();
        let m = MemberId([1; 20]);
        let mut book = ScoreBook::default();
        book.set_members(&[m], s.default_peer_score);
        assert!(!book.adjust(&m, -60, ScoreEvent::MissedCommit, &s));
        assert_eq!(book.get(&m), Some(40));
        assert!(book.below_threshold(&s).is_empty());
        assert!(book.adjust(&m, -60, ScoreEvent::MissedCommit, &s));
        assert_eq!(book.below_threshold(&s), vec![m], "the agreed score alone");
        assert!(!book.adjust(&m, -60, ScoreEvent::MissedCommit, &s));
        book.adjust(&m, 500, ScoreEvent::CommitCertified, &s);
        assert_eq!(book.get(&m), Some(100));
    }

    #[test]
    fn suspicion_is_local_and_counted_only_for_members() {
        let s = Settings::default();
        let (a, b) = (MemberId([1; 20]), MemberId([2; 20]));
        let mut book = ScoreBook::default();
        book.set_members(&[a], s.default_peer_score);
        book.suspect(&a, -150, ScoreEvent::InvalidCandidate);
        book.suspect(&b, -150, ScoreEvent::InvalidCandidate);
        assert_eq!(book.get(&a), Some(100));
        assert_eq!(book.local_score(&a), Some(-50));
        assert_eq!(book.local_score(&b), None);
        assert_eq!(book.below_threshold(&s), vec![a]);
        book.clear_suspicion(&a);
        assert!(book.below_threshold(&s).is_empty());
    }

    #[test]
    fn the_lowest_score_follows_every_change() {
        let s = Settings::default();
        let (a, b) = (MemberId([1; 20]), MemberId([2; 20]));
        let mut book = ScoreBook::default();
        assert!(book.below_threshold(&s).is_empty(), "an empty table");
        book.set_members(&[a, b], s.default_peer_score);
        book.adjust(&b, -200, ScoreEvent::MissedCommit, &s);
        assert_eq!(book.below_threshold(&s), vec![b]);
        book.set_members(&[a], s.default_peer_score);
        assert!(book.below_threshold(&s).is_empty(), "the low member left");
        book.suspect(&a, -200, ScoreEvent::InvalidCandidate);
        let stored = ScoreBook::from_tables(book.table().clone(), book.suspicion_table().clone());
        assert_eq!(stored, book);
        assert_eq!(
            stored.below_threshold(&s),
            vec![a],
            "read back from its tables"
        );
        book.clear_suspicion(&a);
        assert!(book.below_threshold(&s).is_empty());
    }

    #[test]
    fn a_synced_table_keeps_members_only() {
        let (a, b, c) = (MemberId([1; 20]), MemberId([2; 20]), MemberId([3; 20]));
        let book = ScoreBook::from_sync(&[(a, 40), (c, -5)], &[a, b], 100);
        assert_eq!(book.get(&a), Some(40));
        assert_eq!(book.get(&b), Some(100));
        assert_eq!(book.get(&c), None);
    }
}
