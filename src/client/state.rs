//! A conversation's engine state in the store, and the copy a step works on.
//!
//! The engine keeps a conversation's state in parts (`protocol::PartKey`: core, ballots,
//! round, the round's candidates, stewards, scores, joins, archive), each encoded on its
//! own, and reports which parts a run changed ([`Conversation::dirty_parts`]). The store
//! keeps each part as one row of its engine state table (`witan_store::Step::engine_parts`),
//! under the part's name, so a step writes only the parts that changed: a chat received
//! rewrites nothing. The ballots' votes a step brings few of are rows of their own
//! (`witan_store::Step::engine_votes`), each written once ([`Conversation::place_votes`]): a
//! vote received alone writes one row, not every vote its proposal holds; the round's
//! candidates are written when one comes, not at each prevote, polka or precommit. States
//! stored before the parts existed (one part named `conversation`) were split by the store's
//! schema version 6, through the engine's own migration; a round part stored before the
//! candidates had a part of their own still reads, and is written anew in two parts.
//!
//! A step decodes a conversation's state the first time it needs it and keeps it
//! ([`States`]); the engine runs of the step work on that copy, and [`States::flush`] writes
//! back what they changed before the step commits. A committed step's states, exactly as it
//! stored them, are handed to the next step of the same connection ([`KeptStates`]) unless
//! another connection committed in between (`data_version`) or the connection was reopened,
//! so a step per packet does not decode the state again each time. Memory holds the states
//! of the last step's conversations only. Nothing here is undone: only a successful
//! engine run replaces a state, and a step that fails is rolled back by the store, this copy
//! with it. With the `state` cache layer off, every run reads its state from the store and
//! writes it back at once.
//!
//! An engine run consumes the state it is given, so a run that fails must not have been given
//! the step's only copy. By default a run gets a clone — a cost that grows with the state
//! (every vote of an open proposal, every candidate held), paid on every packet. A step may
//! instead *lend* its states ([`States::lend`]): a run takes the copy itself, and one that
//! fails is undone from the stored bytes when the state had no change of this step yet (a
//! decode, only on failure); when it had, the step is lost ([`States::is_lost`]) and must be
//! dropped — `receive` then applies the batch again with clones, so the outcome is the same.
//! Which packet fails does not depend on how the state is held.
//!
//! What a step holds of the stored parts is their SHA-256, not their bytes: the bytes are
//! only compared with a new encoding (a part marked changed whose encoding is the same is
//! not rewritten) and decoded again when a lent state must be undone, which reads them from
//! the step (its rows are what the digests describe). The archive part alone may be 2 MiB,
//! and a notification extension holding it as stored, decoded and newly encoded at once
//! went past its 16 MiB.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::mls::Layer;
use crate::protocol::{Conversation, PartKey, StoredVote};
use crate::store::Step;

use super::error::WitanError;

/// The parts of a state as stored, by key (empty: not stored).
type Parts = BTreeMap<PartKey, Vec<u8>>;

/// A state as stored: its parts and the votes kept as rows (`protocol::VoteChanges`).
struct Stored {
    parts: Parts,
    votes: Vec<StoredVote>,
}

/// The SHA-256 of each part as stored, by key (empty: not stored).
type Digests = BTreeMap<PartKey, [u8; 32]>;

/// A conversation state as the step holds it.
enum Held {
    /// As stored (`None`: not stored), with the digests of its parts as stored.
    Stored(Option<Conversation>, Digests),
    /// Replaced by an engine run of this step and not written yet, with the digests of its
    /// parts as stored.
    Changed(Conversation, Digests),
    /// Lent to an engine run (see the module doc); `changed`: it had changes not written yet.
    Lent { parts: Digests, changed: bool },
}

/// The states a committed step left, exactly as stored then, for the next step of the same
/// connection (see `WitanClient::run_step`: only while no other connection committed).
pub(crate) struct KeptStates {
    /// `PRAGMA data_version` of the step that left them.
    pub version: i64,
    held: BTreeMap<String, Held>,
}

/// The conversation states of one step (see the module doc).
#[derive(Default)]
pub(crate) struct States {
    held: BTreeMap<String, Held>,
    /// Runs take the held state instead of a clone.
    lend: bool,
    /// A run that failed consumed a state with unwritten changes: the step must be dropped.
    lost: bool,
}

impl States {
    /// A step's states, starting from what the previous committed step left.
    pub fn from_kept(kept: KeptStates) -> States {
        States {
            held: kept.held,
            ..States::default()
        }
    }

    /// What a flushed step leaves for the next one (`None` if it holds anything unwritten).
    pub fn into_kept(self, version: i64) -> Option<KeptStates> {
        if self.lost || !Layer::State.enabled() {
            return None;
        }
        let all_stored = self.held.values().all(|h| matches!(h, Held::Stored(..)));
        all_stored.then_some(KeptStates {
            version,
            held: self.held,
        })
    }

    /// Lets engine runs take the held states instead of clones (see the module doc).
    pub fn lend(&mut self) {
        self.lend = true;
    }

    /// A failed run consumed changes of this step: the step must be dropped.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Conversation `id`'s state as this step sees it (a copy for the engine to change, or
    /// the held state itself when lending).
    pub fn get(&mut self, step: &Step<'_>, id: &str) -> Result<Option<Conversation>, WitanError> {
        if !Layer::State.enabled() {
            return load(step, id);
        }
        let held = match self.held.remove(id) {
            Some(held) => held,
            None => {
                let stored = stored_state(step, id)?;
                let parts = digests(&stored.parts);
                Held::Stored(decode(id, stored)?, parts)
            }
        };
        let (conv, kept) = match held {
            Held::Stored(Some(conv), parts) if self.lend => (
                Some(conv),
                Held::Lent {
                    parts,
                    changed: false,
                },
            ),
            Held::Changed(conv, parts) if self.lend => (
                Some(conv),
                Held::Lent {
                    parts,
                    changed: true,
                },
            ),
            Held::Stored(conv, parts) => (conv.clone(), Held::Stored(conv, parts)),
            Held::Changed(conv, parts) => (Some(conv.clone()), Held::Changed(conv, parts)),
            Held::Lent { .. } => {
                return Err(WitanError::internal(
                    "a conversation state was lent twice at once",
                ));
            }
        };
        self.held.insert(id.to_string(), kept);
        Ok(conv)
    }

    /// A run on conversation `id` failed: a state it was lent is restored from the stored
    /// bytes (read again from `step`), or, if it had changes of this step, the step is lost.
    pub fn run_failed(&mut self, step: &Step<'_>, id: &str) {
        if !matches!(self.held.get(id), Some(Held::Lent { .. })) {
            return;
        }
        let Some(Held::Lent { parts, changed }) = self.held.remove(id) else {
            return;
        };
        if changed {
            self.lost = true;
            return;
        }
        // The rows are what `parts` describes: only this module writes them, and it keeps
        // the digests of what it wrote.
        let stored = stored_state(step, id);
        match stored.and_then(|stored| decode(id, stored)) {
            Ok(conv) => {
                self.held.insert(id.to_string(), Held::Stored(conv, parts));
            }
            Err(_) => self.lost = true,
        }
    }

    /// Replaces conversation `id`'s state with what a successful engine run returned.
    pub fn replace(
        &mut self,
        step: &Step<'_>,
        id: &str,
        mut conv: Conversation,
    ) -> Result<(), WitanError> {
        if !Layer::State.enabled() {
            let stored = digests(&stored_state(step, id)?.parts);
            return save(step, id, &mut conv, stored).map(drop);
        }
        let stored = match self.held.remove(id) {
            Some(Held::Stored(_, parts) | Held::Changed(_, parts) | Held::Lent { parts, .. }) => {
                parts
            }
            None => digests(&stored_state(step, id)?.parts),
        };
        self.held
            .insert(id.to_string(), Held::Changed(conv, stored));
        Ok(())
    }

    /// Writes every changed state to the step; they stay readable.
    pub fn flush(&mut self, step: &Step<'_>) -> Result<(), WitanError> {
        if self.lost || self.held.values().any(|h| matches!(h, Held::Lent { .. })) {
            return Err(WitanError::internal(
                "a conversation state lent to a failed run was lost",
            ));
        }
        for (id, held) in &mut self.held {
            if !matches!(held, Held::Changed(..)) {
                continue;
            }
            let Held::Changed(mut conv, stored) =
                std::mem::replace(held, Held::Stored(None, Digests::new()))
            else {
                continue;
            };
            let parts = save(step, id, &mut conv, stored)?;
            *held = Held::Stored(Some(conv), parts);
        }
        Ok(())
    }
}

/// The stored state of conversation `id`, if any.
pub(crate) fn load(step: &Step<'_>, id: &str) -> Result<Option<Conversation>, WitanError> {
    decode(id, stored_state(step, id)?)
}

/// Conversation `id`'s state as stored (no parts: no such conversation).
fn stored_state(step: &Step<'_>, id: &str) -> Result<Stored, WitanError> {
    let parts = stored_parts(step, id)?;
    let votes = if parts.is_empty() {
        Vec::new()
    } else {
        step.engine_votes(id)?
    };
    Ok(Stored { parts, votes })
}

/// The stored parts of conversation `id`'s state (empty: no such conversation).
fn stored_parts(step: &Step<'_>, id: &str) -> Result<Parts, WitanError> {
    let mut parts = Parts::new();
    for (name, bytes) in step.engine_parts(id)? {
        let key = PartKey::parse(&name)
            .ok_or_else(|| unreadable(id, &format!("unknown part {name:?}")))?;
        parts.insert(key, bytes);
    }
    if parts.is_empty() && step.has_conversation(id)? {
        return Err(unreadable(id, &"its state is missing"));
    }
    Ok(parts)
}

/// Writes the parts of `conv` the engine changed (every part of a new conversation) whose
/// bytes differ from those `stored` describes, the vote rows that changed, and the
/// conversation's next deadline with them; returns the digests of the parts as stored now.
fn save(
    step: &Step<'_>,
    id: &str,
    conv: &mut Conversation,
    mut stored: Digests,
) -> Result<Digests, WitanError> {
    let new = stored.is_empty();
    // Votes are placed (inline or in rows) before the ballots part is encoded.
    let votes = conv.place_votes();
    let changed: Vec<PartKey> = if new {
        PartKey::ALL.to_vec()
    } else {
        conv.dirty_parts()
    };
    if cfg!(debug_assertions) && !new {
        check_unchanged(conv, stored_state(step, id)?, &changed)?;
    }
    // One part encoded at a time: a large part is held twice (decoded and encoded), not more.
    let mut saved_row = false;
    for key in changed {
        let bytes = conv.encode_part_without_rows(key);
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if stored.get(&key) == Some(&digest) {
            continue;
        }
        if !saved_row {
            // The conversation's row first: its parts refer to it.
            step.save_conversation(id, conv.next_deadline())?;
            saved_row = true;
        }
        step.save_engine_part(id, key.as_str(), &bytes)?;
        stored.insert(key, digest);
    }
    if (new || !votes.is_empty()) && !saved_row {
        step.save_conversation(id, conv.next_deadline())?;
    }
    if votes.all_dropped {
        step.delete_engine_votes(id)?;
    }
    for ballot in &votes.dropped {
        step.delete_engine_ballot(id, ballot)?;
    }
    for (ballot, row) in &votes.taken {
        step.delete_engine_vote(id, ballot, *row)?;
    }
    for vote in &votes.put {
        step.save_engine_vote(id, vote)?;
    }
    if cfg!(debug_assertions) && !votes.is_empty() {
        check_votes_stored(step, id, conv)?;
    }
    conv.clear_dirty();
    Ok(stored)
}

/// Debug builds check the engine's change marks: a part it did not mark is as loaded (a
/// missed mark would lose that part's change). Stored bytes are compared as the engine
/// encodes them, so bytes another version wrote differently do not count as a change.
fn check_unchanged(
    conv: &Conversation,
    stored: Stored,
    changed: &[PartKey],
) -> Result<(), WitanError> {
    let unchanged: Vec<PartKey> = PartKey::ALL
        .iter()
        .copied()
        .filter(|k| !changed.contains(k))
        .collect();
    if unchanged.is_empty() {
        return Ok(());
    }
    let loaded = Conversation::from_stored(&stored.parts, stored.votes)
        .map_err(|e| WitanError::internal(format!("stored parts: {e}")))?;
    for key in unchanged {
        if loaded.encode_part(key) != conv.encode_part(key) {
            return Err(WitanError::internal(format!(
                "the engine changed its {} part without marking it",
                key.as_str()
            )));
        }
    }
    Ok(())
}

/// Debug builds check that the votes as stored (the ballots part and the vote rows) read
/// back as the engine holds them: a missed row change would lose or resurrect a vote.
fn check_votes_stored(step: &Step<'_>, id: &str, conv: &Conversation) -> Result<(), WitanError> {
    let stored = stored_state(step, id)?;
    let loaded = Conversation::from_stored(&stored.parts, stored.votes)
        .map_err(|e| WitanError::internal(format!("stored votes: {e}")))?;
    if loaded.encode_part(PartKey::Ballots) != conv.encode_part(PartKey::Ballots) {
        return Err(WitanError::internal(
            "the votes stored as rows differ from the engine's",
        ));
    }
    Ok(())
}

fn digests(parts: &Parts) -> Digests {
    parts
        .iter()
        .map(|(key, bytes)| (*key, Sha256::digest(bytes).into()))
        .collect()
}

fn decode(id: &str, stored: Stored) -> Result<Option<Conversation>, WitanError> {
    if stored.parts.is_empty() {
        return Ok(None);
    }
    Conversation::from_stored(&stored.parts, stored.votes)
        .map(Some)
        .map_err(|e| unreadable(id, &e))
}

fn unreadable(id: &str, e: &dyn std::fmt::Display) -> WitanError {
    WitanError::Storage {
        reason: format!("stored state of {id:?} is unreadable: {e}"),
    }
}
