//! Persistence in parts: each part of a conversation encodes to its own value (`schema`), the
//! engine reports which parts a step changed ([`Conversation::dirty_parts`]), and a store may
//! keep them under separate keys or, with [`Conversation::to_bytes`], in one value. Reading
//! checks every field: a damaged value is refused with a [`StateError`], never misread.
//! Values stored by versions before the parts existed are migrated (`legacy`).

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;

use super::part_codec::*;
use super::schema::*;
use super::stored::{PartKey, StateError, check_version, err, member};
use super::vote_rows::{StoredVote, add_stored_votes};
use super::{Conversation, State};
use crate::mls::{MAX_PAST_EPOCHS, MemberId, SealKey};
use crate::protocol::ballot_box::BallotBox;
use crate::protocol::commit_round::CommitRound;
use crate::protocol::settings::Settings;
use witan_wire as wire;

/// The first byte of a conversation stored in one value (never the first byte of the
/// row codec or of JSON, which earlier versions wrote).
pub const STORED_MAGIC: u8 = 0xC2;

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, StateError> {
    M::decode(bytes).map_err(|e| err(format!("{what}: {e}")))
}

pub(super) fn state_code(s: State) -> i32 {
    match s {
        State::PendingJoin => 1,
        State::Working => 2,
        State::Freezing => 3,
        State::Selection => 4,
        State::Reelection => 5,
        State::Left => 6,
    }
}

fn state_from(code: i32) -> Result<State, StateError> {
    Ok(match code {
        1 => State::PendingJoin,
        2 => State::Working,
        3 => State::Freezing,
        4 => State::Selection,
        5 => State::Reelection,
        6 => State::Left,
        other => return Err(err(format!("unknown state {other}"))),
    })
}

/// The member list: each member's id and 32-byte public key.
fn members_from(stored: &[MemberKey]) -> Result<Vec<(MemberId, [u8; 32])>, StateError> {
    stored
        .iter()
        .map(|m| {
            let key: [u8; 32] = m
                .key
                .as_slice()
                .try_into()
                .map_err(|_| err("a member key is not 32 bytes"))?;
            Ok((member(&m.member)?, key))
        })
        .collect()
}

fn seal_keys_from(stored: &[StoredSealKey]) -> Result<Vec<SealKey>, StateError> {
    if stored.len() > MAX_PAST_EPOCHS + 1 {
        return Err(err("more sealing keys than epochs kept"));
    }
    stored
        .iter()
        .map(|k| {
            let key = k
                .key
                .as_slice()
                .try_into()
                .map_err(|_| err("a sealing key has the wrong length"))?;
            Ok(SealKey {
                epoch: k.epoch,
                key,
            })
        })
        .collect()
}

impl Conversation {
    /// The parts changed since the state was loaded or the dirty marks were cleared (the
    /// round's candidates keep their own mark).
    pub fn dirty_parts(&self) -> Vec<PartKey> {
        let mut dirty = self.dirty.clone();
        if self.round.candidates.changed() {
            dirty.insert(PartKey::Candidates);
        }
        dirty.into_iter().collect()
    }

    /// Forgets the change marks, the votes' and the candidates' included (`vote_rows`): what
    /// changed is saved (votes not placed in rows are inline).
    pub fn clear_dirty(&mut self) {
        self.dirty.clear();
        self.ballots.rows_saved();
        self.round.candidates.saved();
    }

    /// One part, encoded whole (the ballots with their votes).
    pub fn encode_part(&self, key: PartKey) -> Vec<u8> {
        self.encode_part_as(key, true)
    }

    /// One part, encoded; `all_votes` false leaves out the ballots' votes stored as rows
    /// ([`Conversation::place_votes`]).
    pub(super) fn encode_part_as(&self, key: PartKey, all_votes: bool) -> Vec<u8> {
        match key {
            PartKey::Core => self.core_part().encode_to_vec(),
            PartKey::Ballots => ballots_part(&self.ballots, all_votes).encode_to_vec(),
            PartKey::Round => round_part(&self.round).encode_to_vec(),
            PartKey::Candidates => candidates_part(&self.round).encode_to_vec(),
            PartKey::Stewards => StewardsPart {
                version: PART_VERSION,
                slots: self
                    .stewards
                    .slots
                    .iter()
                    .map(|s| s.map(|m| m.as_bytes().to_vec()).unwrap_or_default())
                    .collect(),
                base_epoch: self.stewards.base_epoch,
            }
            .encode_to_vec(),
            PartKey::Scores => {
                let entries = |t: &BTreeMap<MemberId, i64>| {
                    t.iter()
                        .map(|(m, s)| wire::PeerScore {
                            member_id: m.as_bytes().to_vec(),
                            score: *s,
                        })
                        .collect()
                };
                ScoresPart {
                    version: PART_VERSION,
                    scores: entries(self.scores.table()),
                    suspicion: entries(self.scores.suspicion_table()),
                }
                .encode_to_vec()
            }
            PartKey::Joins => JoinsPart {
                version: PART_VERSION,
                requests: self
                    .joins
                    .requests
                    .iter()
                    .map(|(m, r)| StoredJoin {
                        member: m.as_bytes().to_vec(),
                        key_package: r.key_package.clone(),
                        seen_at_ms: r.seen_at_ms,
                    })
                    .collect(),
                spent: self.joins.spent.iter().map(|h| h.to_vec()).collect(),
                member_since_ms: self.joins.member_since_ms,
                admitted: self
                    .joins
                    .admitted
                    .iter()
                    .map(|(m, at)| StoredJoin {
                        member: m.as_bytes().to_vec(),
                        key_package: Vec::new(),
                        seen_at_ms: *at,
                    })
                    .collect(),
            }
            .encode_to_vec(),
            PartKey::Archive => self.archive.encode(PART_VERSION),
        }
    }

    fn core_part(&self) -> CorePart {
        CorePart {
            version: PART_VERSION,
            id: self.id.clone(),
            me: self.me.as_bytes().to_vec(),
            state: state_code(self.state),
            settings: Some(self.settings.to_wire()),
            epoch: self.epoch,
            members: self
                .members
                .iter()
                .map(|(m, k)| MemberKey {
                    member: m.as_bytes().to_vec(),
                    key: k.to_vec(),
                })
                .collect(),
            leaders: self.leaders.iter().map(|m| m.as_bytes().to_vec()).collect(),
            tag: self.tag.clone(),
            pending_join_until: self.pending_join_until,
            join_renewals: self.join_renewals,
            join_expired: self.join_expired,
            leaving: self.leaving,
            sent_count: self.sent_count,
            rejoin_required: self.rejoin_required,
            since_epoch: self.since_epoch,
            catch_up_at: self.catch_up_at,
            catch_up_tries: self.catch_up_tries,
            gone: self.gone.iter().map(|m| m.as_bytes().to_vec()).collect(),
            join_anchor: self.join_anchor.map(|m| m.as_bytes().to_vec()),
            epoch_seed: self.epoch_seed.clone(),
            seal_keys: self
                .seal_keys
                .iter()
                .map(|k| StoredSealKey {
                    epoch: k.epoch,
                    key: k.key.to_vec(),
                })
                .collect(),
        }
    }

    /// Every part in one value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let stored = StoredConversation {
            version: PART_VERSION,
            parts: PartKey::ALL
                .iter()
                .map(|k| StoredPart {
                    key: k.as_str().to_string(),
                    bytes: self.encode_part(*k),
                })
                .collect(),
        };
        let mut out = vec![STORED_MAGIC];
        stored.encode(&mut out).unwrap_or_default();
        out
    }

    /// A conversation stored in one value: by [`Conversation::to_bytes`], or by an earlier
    /// version (migrated).
    pub fn from_bytes(bytes: &[u8]) -> Result<Conversation, StateError> {
        match bytes.split_first() {
            Some((&STORED_MAGIC, rest)) => {
                let stored: StoredConversation = decode(rest, "stored conversation")?;
                check_version(stored.version, "the stored conversation")?;
                let mut parts = BTreeMap::new();
                for p in stored.parts {
                    let key = PartKey::parse(&p.key)
                        .ok_or_else(|| err(format!("unknown part {:?}", p.key)))?;
                    parts.insert(key, p.bytes);
                }
                Conversation::from_parts(&parts)
            }
            _ => super::legacy::migrate(bytes),
        }
    }

    /// A conversation from its parts (every part is needed), its votes inline.
    pub fn from_parts(parts: &BTreeMap<PartKey, Vec<u8>>) -> Result<Conversation, StateError> {
        Conversation::from_stored(parts, Vec::new())
    }

    /// A conversation from its parts and the votes stored as rows (see `vote_rows`).
    pub fn from_stored(
        parts: &BTreeMap<PartKey, Vec<u8>>,
        votes: Vec<StoredVote>,
    ) -> Result<Conversation, StateError> {
        let get = |k: PartKey| {
            parts
                .get(&k)
                .ok_or_else(|| err(format!("the {} part is missing", k.as_str())))
        };
        let core: CorePart = decode(get(PartKey::Core)?, "core")?;
        check_version(core.version, "core")?;
        let settings = core
            .settings
            .as_ref()
            .ok_or_else(|| err("no settings"))
            .and_then(|s| Settings::from_wire(s).map_err(|e| err(e.to_string())))?;
        let members = members_from(&core.members)?;
        let mut conv = Conversation {
            me: member(&core.me)?,
            state: state_from(core.state)?,
            epoch: core.epoch,
            members,
            leaders: core
                .leaders
                .iter()
                .map(|m| member(m))
                .collect::<Result<_, _>>()?,
            tag: core.tag,
            pending_join_until: core.pending_join_until,
            join_renewals: core.join_renewals,
            join_expired: core.join_expired,
            leaving: core.leaving,
            sent_count: core.sent_count,
            rejoin_required: core.rejoin_required,
            since_epoch: core.since_epoch,
            catch_up_at: core.catch_up_at,
            catch_up_tries: core.catch_up_tries,
            gone: core
                .gone
                .iter()
                .map(|m| member(m))
                .collect::<Result<_, _>>()?,
            join_anchor: core.join_anchor.as_deref().map(member).transpose()?,
            epoch_seed: core.epoch_seed,
            seal_keys: seal_keys_from(&core.seal_keys)?,
            ballots: BallotBox::default(),
            round: CommitRound::default(),
            stewards: stewards_from(decode(get(PartKey::Stewards)?, "stewards")?)?,
            scores: scores_from(decode(get(PartKey::Scores)?, "scores")?)?,
            joins: joins_from(decode(get(PartKey::Joins)?, "joins")?)?,
            archive: archive_from(decode(get(PartKey::Archive)?, "archive")?)?,
            dirty: BTreeSet::new(),
            roster: super::roster::RosterCache::default(),
            checked: Default::default(),
            settings,
            id: core.id,
        };
        // The owners' signatures checked here are remembered for the candidate and the commit
        // that will check them again.
        conv.ballots = ballots_from(
            &conv.id,
            decode(get(PartKey::Ballots)?, "ballots")?,
            &conv.checked.signatures,
        )?;
        add_stored_votes(&mut conv.ballots, votes)?;
        let round: RoundPart = decode(get(PartKey::Round)?, "round")?;
        if !round.candidates_apart {
            // Stored before the candidates had a part of their own: both are written anew.
            conv.dirty.extend([PartKey::Round, PartKey::Candidates]);
        }
        let apart = match parts.get(&PartKey::Candidates) {
            Some(bytes) if round.candidates_apart => Some(decode(bytes, "candidates")?),
            _ => None,
        };
        conv.round = round_from(round, apart)?;
        Ok(conv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::conversation::part_codec::round_part;

    #[test]
    fn a_state_stored_before_the_candidates_were_apart_reads_and_is_written_anew() {
        let mut conv = Conversation::from_bytes(include_bytes!("fixtures/before_parts.bin"))
            .expect("the fixture reads");
        let candidate = wire::Candidate {
            epoch: conv.epoch,
            round: 1,
            commit: vec![7; 64],
            ..wire::Candidate::default()
        };
        conv.round.candidates.insert(1, candidate);
        let mut parts: BTreeMap<PartKey, Vec<u8>> = PartKey::ALL
            .iter()
            .map(|k| (*k, conv.encode_part(*k)))
            .collect();
        // As stored before: the candidates inline in the round part, no part of their own.
        let mut round = round_part(&conv.round);
        (round.candidates, round.candidates_apart) =
            (conv.round.candidates.values().cloned().collect(), false);
        parts.insert(PartKey::Round, round.encode_to_vec());
        parts.remove(&PartKey::Candidates);
        let read = Conversation::from_parts(&parts).expect("an earlier round part reads");
        assert_eq!(read.to_bytes(), conv.to_bytes());
        let dirty = read.dirty_parts();
        assert!(dirty.contains(&PartKey::Round) && dirty.contains(&PartKey::Candidates));
        // Stored as now, nothing is to be written again, and the missing part is an error.
        let mut now: BTreeMap<PartKey, Vec<u8>> = PartKey::ALL
            .iter()
            .map(|k| (*k, read.encode_part(*k)))
            .collect();
        let again = Conversation::from_parts(&now).expect("reads");
        assert!(again.dirty_parts().is_empty());
        now.remove(&PartKey::Candidates);
        assert!(Conversation::from_parts(&now).is_err());
    }
}
