//! Per-conversation settings: timing windows, steward-list bounds and the peer-score table's
//! parameters. The creator chooses them; they travel to joiners in the conversation sync, so
//! every member runs the same timers and scoring rules.

use serde::{Deserialize, Serialize};

use super::ProtocolError;
use witan_wire as wire;

/// Settings of one conversation. See `default()` for the production values.
/// The settings' fields, listed once: every copy between the engine's [`Settings`], the wire's
/// `SyncSettings` (what joiners receive) and the client's record is generated from this list
/// with [`copy_settings!`], so a field added to one struct and not to the others, or to the
/// list, does not compile.
#[macro_export]
macro_rules! settings_fields {
    ($($callback:ident)::+ ! ( $($args:tt)* )) => {
        $($callback)::+!($($args)* ; steward_list_min, steward_list_max, pending_join_timeout_ms, commit_inactivity_ms, recovery_inactivity_ms, freeze_window_ms, vote_timeout_ms, auto_vote_delay_ms, default_peer_score, removal_threshold, score_commit_reward, score_missed_commit_penalty, score_invalid_candidate_penalty, score_rejected_emergency_penalty, score_emergency_reward, max_commit_proposals, commit_delay_ms, liveness_criteria_yes, max_clock_skew_ms)
    };
}

/// `copy_settings!(value, Target)`: a `Target` (a struct name in scope) whose every settings
/// field (see [`settings_fields!`]) is copied from `value`.
#[macro_export]
macro_rules! copy_settings {
    ($from:expr, $to:ident) => {
        $crate::settings_fields!($crate::copy_settings!(@copy $from, $to))
    };
    (@copy $from:expr, $to:ident ; $($field:ident),*) => {
        $to { $($field: $from.$field),* }
    };
}

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
        use wire::SyncSettings;
        copy_settings!(self, SyncSettings)
    }

    pub fn from_wire(w: &wire::SyncSettings) -> Result<Self, ProtocolError> {
        let s: Settings = copy_settings!(w, Settings);
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
