//! Deadlines of one conversation. Every deadline is an absolute wall-clock time in
//! milliseconds stored in the engine state, so a member that slept past several of them fires
//! them on its next poll, earliest first.

/// The kinds of deadline the engine keeps, in the order they fire when due at the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    PendingJoin,
    Ballot(u64),
    AutoVote(u64),
    Relay(u64),
    StewardCommit,
    Freeze,
    Inactivity,
    Election,
    Behind,
    /// The end of a returning member's wait for its backlog.
    CatchUp,
}

/// The earliest of `deadlines`, ties broken by the timer order above.
pub fn earliest(deadlines: impl IntoIterator<Item = (u64, Timer)>) -> Option<(u64, Timer)> {
    deadlines.into_iter().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_deadline_fires_first_and_ties_follow_timer_order() {
        let d = vec![
            (50, Timer::Freeze),
            (10, Timer::Inactivity),
            (10, Timer::Ballot(3)),
        ];
        assert_eq!(earliest(d), Some((10, Timer::Ballot(3))));
        assert_eq!(earliest(Vec::new()), None);
    }
}
