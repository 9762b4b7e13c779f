//! The decision rule (hashgraph-like consensus §3–§4), a pure function of the counts.
//!
//! For n ≤ 2 every voter must say YES, at expiry too: a silent member never approves alone in
//! a group of two (so neither member can remove the other while it is offline). For n > 2 a
//! result is final early only when at least ⌈2n/3⌉ distinct members voted and no completion of
//! the missing votes could change it; at expiry silent voters count as the group's
//! `liveness_criteria_yes` says and a tie is rejected (the REJECT tie policy). Products are
//! computed in `u128` and sums saturate, so no count from the network can overflow it or
//! shrink the quorum.
//!
//! A proposal may also need a *backing*: a number of YES votes below which it is never
//! approved, whatever silence counts for ([`decide_backed`]). A removal of another member
//! needs its proposer's vote and one more, so no member is removed on one member's word.

/// The result, if final: `Some(true)` approved, `Some(false)` rejected.
pub fn decide(n: u64, yes: u64, no: u64, expired: bool, liveness_yes: bool) -> Option<bool> {
    let n = n.max(1);
    let voted = yes.saturating_add(no);
    let missing = n.saturating_sub(voted);
    if n <= 2 {
        if no > 0 {
            return Some(false);
        }
        if yes >= n {
            return Some(true);
        }
        return expired.then_some(false);
    }
    if expired {
        let (y, nn) = if liveness_yes {
            (yes.saturating_add(missing), no)
        } else {
            (yes, no.saturating_add(missing))
        };
        return Some(y > nn);
    }
    let quorum = (u128::from(n) * 2).div_ceil(3);
    if u128::from(voted) < quorum {
        return None;
    }
    if u128::from(yes) * 2 > u128::from(n) {
        return Some(true);
    }
    if yes.saturating_add(missing) <= no {
        return Some(false);
    }
    None
}

/// [`decide`], except that an approval needs at least `backing` YES votes: short of them a
/// proposal is rejected at expiry and undecided before. An early approval already has more
/// than n/2 YES votes, so for `backing` ≤ 2 early results never change.
pub fn decide_backed(
    n: u64,
    yes: u64,
    no: u64,
    expired: bool,
    liveness_yes: bool,
    backing: u64,
) -> Option<bool> {
    match decide(n, yes, no, expired, liveness_yes) {
        Some(true) if yes < backing => expired.then_some(false),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backed_proposal_is_never_approved_by_silence_alone() {
        // Four members, only the proposer voted: silence would approve, the backing does not.
        assert_eq!(decide(4, 1, 0, true, true), Some(true));
        assert_eq!(decide_backed(4, 1, 0, true, true, 2), Some(false));
        assert_eq!(decide_backed(4, 1, 0, false, true, 2), None);
        // One more YES is enough at expiry; early results are unchanged.
        assert_eq!(decide_backed(4, 2, 0, true, true, 2), Some(true));
        assert_eq!(decide_backed(4, 3, 0, false, true, 2), Some(true));
        assert_eq!(decide_backed(4, 1, 2, false, true, 2), Some(false));
        // A removal of another member exists only in groups of two or more.
        for n in 2..=12u64 {
            for yes in 0..=n {
                for no in 0..=(n - yes) {
                    for liveness in [true, false] {
                        let early = decide(n, yes, no, false, liveness);
                        assert_eq!(decide_backed(n, yes, no, false, liveness, 2), early);
                    }
                }
            }
        }
    }

    #[test]
    fn groups_of_one_and_two_need_unanimity_even_at_expiry() {
        assert_eq!(decide(1, 1, 0, false, true), Some(true));
        assert_eq!(decide(1, 0, 1, false, true), Some(false));
        assert_eq!(decide(2, 1, 0, false, true), None);
        assert_eq!(decide(2, 2, 0, false, true), Some(true));
        assert_eq!(decide(2, 1, 1, false, true), Some(false));
        // A silent second member does not approve, whatever the liveness rule.
        assert_eq!(decide(2, 1, 0, true, true), Some(false));
        assert_eq!(decide(2, 1, 0, true, false), Some(false));
    }

    #[test]
    fn three_members_need_a_quorum_and_a_majority() {
        assert_eq!(decide(3, 1, 0, false, true), None);
        assert_eq!(decide(3, 2, 0, false, true), Some(true));
        assert_eq!(decide(3, 1, 1, false, true), None);
        assert_eq!(decide(3, 1, 2, false, true), Some(false));
        assert_eq!(decide(3, 1, 1, true, true), Some(true));
        assert_eq!(decide(3, 1, 1, true, false), Some(false));
    }

    #[test]
    fn ties_are_rejected() {
        assert_eq!(decide(4, 2, 1, false, true), None);
        assert_eq!(decide(4, 3, 0, false, true), Some(true));
        assert_eq!(decide(4, 2, 2, false, true), Some(false));
        assert_eq!(decide(4, 2, 2, true, true), Some(false));
        assert_eq!(decide(4, 1, 1, true, true), Some(true));
        assert_eq!(decide(4, 1, 1, true, false), Some(false));
    }

    #[test]
    fn early_only_when_missing_votes_cannot_change_it() {
        assert_eq!(decide(7, 4, 0, false, true), None);
        assert_eq!(decide(7, 4, 1, false, true), Some(true));
        assert_eq!(decide(7, 3, 2, false, true), None);
        assert_eq!(decide(7, 1, 4, false, true), Some(false));
        assert_eq!(decide(7, 2, 3, false, true), None);
        assert_eq!(decide(7, 2, 3, true, true), Some(true));
        assert_eq!(decide(7, 2, 3, true, false), Some(false));
        assert_eq!(decide(7, 0, 0, true, true), Some(true));
        assert_eq!(decide(7, 0, 0, true, false), Some(false));
    }

    #[test]
    fn early_and_expiry_results_never_disagree() {
        for n in 1..=12u64 {
            for yes in 0..=n {
                for no in 0..=(n - yes) {
                    for liveness in [true, false] {
                        let Some(early) = decide(n, yes, no, false, liveness) else {
                            continue;
                        };
                        let missing = n - yes - no;
                        for extra_yes in 0..=missing {
                            let y = yes + extra_yes;
                            let nn = no + (missing - extra_yes);
                            assert_eq!(decide(n, y, nn, true, liveness), Some(early));
                            assert_eq!(decide(n, y, nn, false, liveness), Some(early));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let big = 1u64 << 62;
        assert_eq!(decide(big, big, 0, false, true), Some(true));
        assert_eq!(decide(big, 0, big, true, true), Some(false));
        assert_eq!(
            decide(u64::MAX, u64::MAX, u64::MAX, true, true),
            Some(false)
        );
        assert_eq!(decide(u64::MAX, 0, 0, false, true), None);
    }
}
