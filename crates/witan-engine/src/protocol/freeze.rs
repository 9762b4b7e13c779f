//! Freeze rounds and the commit validation service (spec "Commit validation service",
//! "Timer-Based Anti-Deadlock Mechanism").
//!
//! A member that has seen approved work and no commit for the commit-inactivity window enters
//! `Freezing`; every steward then sends a commit candidate. When every expected candidate is
//! in, or the freeze window ends, the member selects one: candidates from non-stewards, for
//! another epoch or retry round, or referencing proposals the member cannot verify as decided
//! were already dropped on receipt. Among the rest the longest proposal sequence wins; on a
//! tie the epoch steward's candidate, then the backup's (the backup takes the epoch steward's
//! place when the epoch steward fails, spec "Multi steward"), then the lexicographically
//! smallest committer. Candidates with the same sequence as the chosen one are honest
//! competitors and are not penalised.
//!
//! The selection is pure, so every member holding the same candidate set picks the same one.

use serde::{Deserialize, Serialize};

use crate::mls::MemberId;

/// A candidate that passed the receipt checks, waiting for selection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub committer: MemberId,
    pub epoch: u64,
    pub retry_round: u32,
    /// The MLS commit (PublicMessage bytes).
    pub commit: Vec<u8>,
    /// Ballot ids in ascending proposal-digest order.
    pub ballots: Vec<u64>,
    pub digests: Vec<[u8; 32]>,
    pub received_at_ms: u64,
}

/// The order in which candidates are tried: best first. The first one that also applies
/// cleanly in MLS wins.
pub fn preference_order(
    candidates: &[Candidate],
    epoch_steward: Option<MemberId>,
    backup: Option<MemberId>,
) -> Vec<usize> {
    let rank = |c: &Candidate| {
        let role = if Some(c.committer) == epoch_steward {
            0
        } else if Some(c.committer) == backup {
            1
        } else {
            2
        };
        (std::cmp::Reverse(c.ballots.len()), role, c.committer)
    };
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|i| rank(&candidates[*i]));
    order
}

/// Whether `other` carries the same deterministic proposal sequence as `chosen`.
pub fn same_sequence(chosen: &Candidate, other: &Candidate) -> bool {
    chosen.digests == other.digests
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(committer: u8, n: usize) -> Candidate {
        Candidate {
            committer: MemberId([committer; 20]),
            epoch: 1,
            retry_round: 0,
            commit: vec![committer],
            ballots: (0..n as u64).collect(),
            digests: (0..n).map(|i| [i as u8; 32]).collect(),
            received_at_ms: 0,
        }
    }

    #[test]
    fn longest_sequence_wins() {
        let c = vec![cand(1, 2), cand(2, 3), cand(3, 1)];
        assert_eq!(preference_order(&c, Some(MemberId([1; 20])), None)[0], 1);
    }

    #[test]
    fn tie_prefers_epoch_steward_then_backup_then_smallest_id() {
        let c = vec![cand(5, 2), cand(3, 2), cand(9, 2)];
        assert_eq!(
            preference_order(&c, Some(MemberId([9; 20])), Some(MemberId([5; 20])))[0],
            2
        );
        assert_eq!(
            preference_order(&c, Some(MemberId([7; 20])), Some(MemberId([5; 20])))[0],
            0
        );
        assert_eq!(preference_order(&c, None, None), vec![1, 0, 2]);
    }

    #[test]
    fn selection_is_independent_of_arrival_order() {
        let mut c = vec![cand(5, 2), cand(3, 2), cand(9, 2)];
        let first = c[preference_order(&c, None, None)[0]].committer;
        c.reverse();
        assert_eq!(c[preference_order(&c, None, None)[0]].committer, first);
    }
}
