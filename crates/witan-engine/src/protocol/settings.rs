//! Per-conversation settings: timing windows, steward-list bounds and the peer-score table's
//! parameters. The creator chooses them; they travel to joiners in the conversation sync, so
//! every member runs the same timers and scoring rules.

use serde::{Deserialize, Serialize};

use super::ProtocolError;
use witan_wire as wire;

/// Settings of one conversation. See `default()` for the production values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub steward_list_min: u32,
    pub steward_list_max: u32,
    /// How long a node waits in `PendingJoin` for a welcome before giving up.
    pub pending_join_timeout_ms: u64,
    /// Approved work with no commit for this long makes a member freeze.
    pub commit_inactivity_ms: u64,
    /// The shorter inactivity window used while recovering from a failed round.
    pub recovery_inactivity_ms: u64,
    /// How long candidates are collected in `Freezing`.
    pub freeze_window_ms: u64,
    /// Lifetime of a voting proposal.
    pub vote_timeout_ms: u64,
    /// `None`: never vote automatically.
    pub auto_vote_delay_ms: Option<u64>,
    pub default_peer_score: i64,
    pub removal_threshold: i64,
    pub score_commit_reward: i64,
    pub score_missed_commit_penalty: i64,
    pub score_invalid_candidate_penalty: i64,
    pub score_rejected_emergency_penalty: i64,
    pub score_emergency_reward: i64,
    /// Deterministic batch cap: a commit carries the first K approved proposals in hash order.
    pub max_commit_proposals: u32,
    /// How long the epoch steward lets approvals accumulate before it commits.
    pub commit_delay_ms: u64,
    pub liveness_criteria_yes: bool,
    /// Timestamps from peers are accepted within this skew.
    pub max_clock_skew_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            steward_list_min: 3,
            steward_list_max: 5,
            pending_join_timeout_ms: 10 * 60_000,
            commit_inactivity_ms: 30_000,
            recovery_inactivity_ms: 10_000,
            freeze_window_ms: 10_000,
            vote_timeout_ms: 60_000,
            auto_vote_delay_ms: Some(5_000),
            default_peer_score: 100,
            removal_threshold: 0,
            score_commit_reward: 5,
            score_missed_commit_penalty: 40,
            score_invalid_candidate_penalty: 60,
            score_rejected_emergency_penalty: 20,
            score_emergency_reward: 5,
            max_commit_proposals: 1_000,
            commit_delay_ms: 500,
            liveness_criteria_yes: true,
            max_clock_skew_ms: 60_000,
        }
    }
}

impl Settings {
    /// Rejects settings that would stall or break a group.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let bad = |reason: &str| Err(ProtocolError::InvalidSettings(reason.to_string()));
        if self.steward_list_min == 0 || self.steward_list_min > self.steward_list_max {
            return bad("steward_list_min must be at least 1 and at most steward_list_max");
        }
        if self.steward_list_max as usize > wire::limits::MAX_STEWARDS {
            return bad("steward_list_max is too large");
        }
        if self.vote_timeout_ms == 0 || self.freeze_window_ms == 0 {
            return bad("vote_timeout_ms and freeze_window_ms must be positive");
        }
        if self.commit_inactivity_ms == 0 || self.recovery_inactivity_ms == 0 {
            return bad("inactivity windows must be positive");
        }
        if self.pending_join_timeout_ms == 0 {
            return bad("pending_join_timeout_ms must be positive");
        }
        if self.max_commit_proposals == 0 {
            return bad("max_commit_proposals must be positive");
        }
        if self.removal_threshold >= self.default_peer_score {
            return bad("removal_threshold must be below default_peer_score");
        }
        let penalties = [
            self.score_missed_commit_penalty,
            self.score_invalid_candidate_penalty,
            self.score_rejected_emergency_penalty,
            self.score_commit_reward,
            self.score_emergency_reward,
        ];
        if penalties.iter().any(|p| *p < 0) {
            return bad("score deltas are magnitudes and must not be negative");
        }
        Ok(())
    }

    pub fn to_wire(&self) -> wire::SyncSettings {
        wire::SyncSettings {
            steward_list_min: self.steward_list_min,
            steward_list_max: self.steward_list_max,
            pending_join_timeout_ms: self.pending_join_timeout_ms,
            commit_inactivity_ms: self.commit_inactivity_ms,
            recovery_inactivity_ms: self.recovery_inactivity_ms,
            freeze_window_ms: self.freeze_window_ms,
            vote_timeout_ms: self.vote_timeout_ms,
            auto_vote_delay_ms: self.auto_vote_delay_ms,
            default_peer_score: self.default_peer_score,
            removal_threshold: self.removal_threshold,
            score_commit_reward: self.score_commit_reward,
            score_missed_commit_penalty: self.score_missed_commit_penalty,
            score_invalid_candidate_penalty: self.score_invalid_candidate_penalty,
            score_rejected_emergency_penalty: self.score_rejected_emergency_penalty,
            score_emergency_reward: self.score_emergency_reward,
            max_commit_proposals: self.max_commit_proposals,
            commit_delay_ms: self.commit_delay_ms,
            liveness_criteria_yes: self.liveness_criteria_yes,
            max_clock_skew_ms: self.max_clock_skew_ms,
        }
    }

    pub fn from_wire(w: &wire::SyncSettings) -> Result<Self, ProtocolError> {
        let s = Settings {
            steward_list_min: w.steward_list_min,
            steward_list_max: w.steward_list_max,
            pending_join_timeout_ms: w.pending_join_timeout_ms,
            commit_inactivity_ms: w.commit_inactivity_ms,
            recovery_inactivity_ms: w.recovery_inactivity_ms,
            freeze_window_ms: w.freeze_window_ms,
            vote_timeout_ms: w.vote_timeout_ms,
            auto_vote_delay_ms: w.auto_vote_delay_ms,
            default_peer_score: w.default_peer_score,
            removal_threshold: w.removal_threshold,
            score_commit_reward: w.score_commit_reward,
            score_missed_commit_penalty: w.score_missed_commit_penalty,
            score_invalid_candidate_penalty: w.score_invalid_candidate_penalty,
            score_rejected_emergency_penalty: w.score_rejected_emergency_penalty,
            score_emergency_reward: w.score_emergency_reward,
            max_commit_proposals: w.max_commit_proposals,
            commit_delay_ms: w.commit_delay_ms,
            liveness_criteria_yes: w.liveness_criteria_yes,
            max_clock_skew_ms: w.max_clock_skew_ms,
        };
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_the_wire() {
        let s = Settings::default();
        s.validate().unwrap();
        assert_eq!(Settings::from_wire(&s.to_wire()).unwrap(), s);
    }

    #[test]
    fn nonsense_settings_are_rejected() {
        let s = Settings {
            steward_list_min: 0,
            ..Settings::default()
        };
        assert!(s.validate().is_err());
        let s = Settings {
            steward_list_min: 6,
            steward_list_max: 5,
            ..Settings::default()
        };
        assert!(s.validate().is_err());
        let s = Settings {
            removal_threshold: 100,
            ..Settings::default()
        };
        assert!(s.validate().is_err());
        let s = Settings {
            score_missed_commit_penalty: -1,
            ..Settings::default()
        };
        assert!(s.validate().is_err());
    }
}
