//! States stored before the engine was split into parts: the whole `Conversation` in the row
//! row codec (`crate::codec`), read once and migrated. States stored as JSON before the codec
//! are transcoded to it first, by the store (its schema version 5).
//!
//! What carries over: the conversation's identity, its settings, state, epoch and members,
//! the steward list, the scores and this member's suspicion, the join requests, and the
//! small flags (leaving, the chat counter, a pending join's deadline, rejoin required).
//! What does not: open proposals and their votes (wire version 2 binds votes to the
//! conversation and the proposal digest, so votes signed before cannot count; members propose
//! again), and the old freeze round's candidates (a round starts over in the parts). The
//! members' keys, the leader order and the recipient tag are taken from the MLS group on the
//! first step after the migration (`Conversation::refresh_epoch_facts`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::stored::StateError;
use super::{Conversation, PartKey, State};
use crate::codec;
use crate::mls::MemberId;
use crate::protocol::commit_round::CommitRound;
use crate::protocol::score_book::ScoreBook;
use crate::protocol::settings::Settings;
use crate::protocol::steward_schedule::StewardSchedule;

#[derive(Deserialize)]
struct LegacyConversation {
    id: String,
    me: MemberId,
    state: LegacyState,
    settings: Settings,
    epoch: u64,
    members: Vec<MemberId>,
    stewards: LegacyStewards,
    scores: LegacyScores,
    #[serde(default)]
    suspicion: BTreeMap<MemberId, i64>,
    #[serde(default)]
    join_requests: BTreeMap<MemberId, LegacyJoinRequest>,
    pending_join_until: Option<u64>,
    leaving: bool,
    sent_count: u64,
    #[serde(default)]
    rejoin_required: bool,
}

#[derive(Deserialize)]
enum LegacyState {
    PendingJoin,
    Working,
    Freezing,
    Selection,
    Reelection,
    Left,
}

#[derive(Deserialize)]
struct LegacyStewards {
    stewards: Vec<MemberId>,
    base_epoch: u64,
}

#[derive(Deserialize)]
struct LegacyScores {
    table: BTreeMap<MemberId, i64>,
}

#[derive(Deserialize)]
struct LegacyJoinRequest {
    key_package: Vec<u8>,
    seen_at_ms: u64,
}

/// Reads a state of an earlier version (row codec) and migrates it.
pub(super) fn migrate(bytes: &[u8]) -> Result<Conversation, StateError> {
    let legacy: LegacyConversation = codec::from_slice(bytes)
        .map_err(|e| StateError(format!("an earlier version's state: {e}")))?;
    legacy
        .settings
        .validate()
        .map_err(|e| StateError(e.to_string()))?;
    let state = match legacy.state {
        LegacyState::PendingJoin => State::PendingJoin,
        LegacyState::Left => State::Left,
        // Whatever round was running starts over in the parts.
        LegacyState::Working
        | LegacyState::Freezing
        | LegacyState::Selection
        | LegacyState::Reelection => State::Working,
    };
    let mut conv = Conversation::blank(&legacy.id, legacy.me, legacy.settings, state);
    conv.epoch = legacy.epoch;
    conv.since_epoch = legacy.epoch;
    // Keys are read from the MLS group on the first step (an all-zero key marks them).
    conv.set_members(legacy.members.iter().map(|m| (*m, [0u8; 32])).collect());
    let zero = MemberId([0; 20]);
    conv.stewards = StewardSchedule {
        slots: legacy
            .stewards
            .stewards
            .iter()
            .map(|s| (*s != zero).then_some(*s))
            .collect(),
        base_epoch: legacy.stewards.base_epoch,
    };
    conv.scores = ScoreBook::from_tables(legacy.scores.table, legacy.suspicion);
    for (m, r) in legacy.join_requests {
        conv.joins.add(m, r.key_package, r.seen_at_ms);
    }
    conv.pending_join_until = legacy.pending_join_until;
    conv.leaving = legacy.leaving;
    conv.sent_count = legacy.sent_count;
    conv.rejoin_required = legacy.rejoin_required;
    conv.round = CommitRound::new(conv.epoch);
    for part in PartKey::ALL {
        conv.dirty.insert(*part);
    }
    Ok(conv)
}

impl Conversation {
    /// Whether the epoch's facts (keys, leader order, tag) still have to be read from the
    /// MLS group (after a migration).
    pub(super) fn needs_epoch_facts(&self) -> bool {
        self.is_member_state() && self.tag.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::conversation::stored::PartKey;

    /// A member's state as the engine before the parts stored it (row codec, and the JSON of
    /// versions before the codec): the second member of a formed group of three, with a
    /// removal proposed and voted on. Written by that engine's own code (`codec::to_vec` and
    /// `serde_json::to_vec` of its `Conversation`).
    const CODEC: &[u8] = include_bytes!("fixtures/before_parts.bin");
    const JSON: &[u8] = include_bytes!("fixtures/before_parts.json");

    fn id(hex: &str) -> MemberId {
        MemberId::from_hex(hex).unwrap()
    }

    #[test]
    fn a_state_stored_before_the_parts_migrates() {
        // JSON reaches the engine transcoded to the codec (the store's schema version 5).
        let json = codec::transcode_json(JSON).unwrap();
        for bytes in [CODEC, &json[..]] {
            let conv = Conversation::from_bytes(bytes).unwrap();
            assert_eq!(conv.id(), "test-conversation");
            assert_eq!(conv.me, id("3afdf80f64c06a6421807221d2d4ad47c0c2e7ab"));
            assert_eq!(conv.state(), State::Working);
            assert_eq!(conv.epoch(), 1);
            assert_eq!(conv.members().len(), 3);
            assert!(
                conv.members()
                    .contains(&id("466b05a17d57d21717a720eca415d00545b6d2fb"))
            );
            assert_eq!(conv.stewards.base_epoch(), 1);
            assert_eq!(conv.stewards.active().len(), 3);
            assert_eq!(conv.stewards.active()[0], conv.me);
            assert_eq!(conv.scores.get(&conv.me), Some(100));
            assert_eq!(conv.settings().vote_timeout_ms, 5_000);
            // Votes of wire version 1 cannot count: open proposals start over.
            assert_eq!(conv.ballots.open().count(), 0);
            // Keys, leaders and tag come from the MLS group at the first step.
            assert!(conv.needs_epoch_facts());
            // Stored again, it is in parts and reads back the same.
            let again = Conversation::from_bytes(&conv.to_bytes()).unwrap();
            assert_eq!(again.members(), conv.members());
            assert_eq!(again.stewards, conv.stewards);
            assert_eq!(conv.dirty_parts(), PartKey::ALL.to_vec());
        }
    }

    #[test]
    fn damaged_states_are_refused_not_misread() {
        assert!(Conversation::from_bytes(&CODEC[..CODEC.len() / 2]).is_err());
        assert!(Conversation::from_bytes(b"{}").is_err());
        assert!(Conversation::from_bytes(&[]).is_err());
        let mut flipped = CODEC.to_vec();
        flipped[40] ^= 0xff;
        let _ = Conversation::from_bytes(&flipped);
    }
}
