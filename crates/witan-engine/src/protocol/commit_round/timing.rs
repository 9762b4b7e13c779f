//! How long the rounds of an epoch last: round 0 the commit inactivity window from when a
//! member sees work, round r the freeze window times r, capped.

/// Round timeouts grow linearly (as Tendermint's do: every delay is eventually exceeded,
/// and a few failed rounds — a silent or byzantine leader each — cost little) up to this
/// many windows.
const MAX_WINDOWS: u32 = 32;

/// The timing of the rounds, from the group's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long round 0 lasts from when a member sees work (`commit_inactivity_ms`).
    pub first_round_ms: u64,
    /// Round r > 0 lasts `round_ms × r` (`freeze_window_ms`), capped.
    pub round_ms: u64,
    /// How long the round-0 leader lets work accumulate (`commit_delay_ms`).
    pub commit_delay_ms: u64,
    /// How long a later round's leader collects NewRound messages beyond a quorum.
    pub collect_ms: u64,
}

impl Timing {
    pub fn timeout(&self, round: u32) -> u64 {
        if round == 0 {
            return self.first_round_ms;
        }
        self.round_ms
            .saturating_mul(u64::from(round.min(MAX_WINDOWS)))
    }
}
