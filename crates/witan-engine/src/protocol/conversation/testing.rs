//! A read-only look inside a conversation's parts, for tests and simulators (the `testing`
//! feature): nothing here can change the state, and none of it is part of the host's API.

use std::collections::BTreeSet;

use super::Conversation;
use crate::mls::MemberId;
use crate::protocol::ballot_box::{Ballot, BallotBox, Scope, Tentative};
use crate::protocol::commit_round::CommitRound;
use crate::protocol::join_queue::JoinQueue;
use crate::protocol::score_book::ScoreBook;
use crate::protocol::steward_schedule::StewardSchedule;

impl Conversation {
    pub fn me(&self) -> MemberId {
        self.me
    }
    pub fn ballots(&self) -> &BallotBox {
        &self.ballots
    }
    pub fn commit_round(&self) -> &CommitRound {
        &self.round
    }
    pub fn stewards(&self) -> &StewardSchedule {
        &self.stewards
    }
    pub fn scores(&self) -> &ScoreBook {
        &self.scores
    }
    pub fn joins(&self) -> &JoinQueue {
        &self.joins
    }
    /// The epoch's leader order.
    /// The epochs whose sealing keys are kept, oldest first.
    pub fn sealing_epochs(&self) -> Vec<u64> {
        self.seal_keys.iter().map(|k| k.epoch).collect()
    }

    pub fn leaders(&self) -> &[MemberId] {
        &self.leaders
    }
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }
    /// The certified commits kept for members behind, oldest first: (epoch, packet bytes,
    /// whether the packet is in the state part rather than a row of its own).
    pub fn archived(&self) -> Vec<(u64, usize, bool)> {
        self.archive
            .entries
            .iter()
            .map(|e| (e.epoch, e.len, e.inline.is_some()))
            .collect()
    }
    /// When this member next asks to catch up.
    pub fn catch_up_at(&self) -> Option<u64> {
        self.catch_up_at
    }

    /// The same state under another conversation id (benches fill a database with copies).
    pub fn renamed(&self, id: &str) -> Conversation {
        let mut c = self.clone();
        c.id = id.to_string();
        c
    }

    /// The resolutions this member would put in a candidate at `now_ms`: its tentative
    /// decisions with the evidence it holds (byzantine scenarios forge candidates from them).
    pub fn resolutions_at(&self, now_ms: u64) -> Vec<witan_wire::Resolution> {
        self.read_ballots(now_ms, |b, scope| {
            b.decided(scope)
                .into_iter()
                .filter_map(|(d, t)| b.resolution(&d, t, false, scope))
                .collect()
        })
    }

    /// How many vote signatures the last batch check proved (see `sealed.rs`).
    pub fn proved_votes(&self) -> usize {
        self.checked.signatures.len()
    }

    /// How many votes of the last passing batch are kept opened, waiting for their packets
    /// (see `sealed.rs`).
    pub fn opened_votes(&self) -> usize {
        self.checked.opened_len()
    }

    /// This member's tentative result of an open proposal at `now_ms`.
    pub fn tentative(&self, b: &Ballot, now_ms: u64) -> Option<Tentative> {
        let members: BTreeSet<MemberId> = self.members().into_iter().collect();
        let scope = Scope {
            conversation: &self.id,
            members: &members,
            roster: 0,
            now_ms,
            settings: &self.settings,
            checked: &self.checked.signatures,
        };
        b.tentative(&scope)
    }
}
