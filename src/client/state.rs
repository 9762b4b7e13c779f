//! A conversation's engine state in the store, and the copy a step works on.
//!
//! The store keeps the engine's state as named parts (`witan_store::Step::engine_parts`). The
//! engine's `Conversation` is one part today, [`CONVERSATION_PART`], in the row codec of
//! `witan_engine::codec` (states stored as JSON by earlier versions were migrated once, by the
//! store); a part is rewritten only when its bytes changed.
//!
//! A step decodes a conversation's state the first time it needs it and keeps it
//! ([`States`]); the engine runs of the step work on that copy, and [`States::flush`] writes
//! back what they changed before the step commits. Nothing here is undone: only a successful
//! engine run replaces a state, and a step that fails is rolled back by the store, this copy
//! with it. With the `state` cache layer off, every run reads its state from the store and
//! writes it back at once.

use std::collections::BTreeMap;

use crate::codec;
use crate::mls::Layer;
use crate::protocol::Conversation;
use crate::store::Step;

use super::error::WitanError;

/// The part of the engine state that holds today's whole `Conversation`.
pub(crate) const CONVERSATION_PART: &str = "conversation";

/// A conversation state as the step holds it.
enum Held {
    /// As stored (`None`: not stored), with the bytes of its part.
    Stored(Option<Conversation>, Option<Vec<u8>>),
    /// Replaced by an engine run of this step and not written yet, with the bytes of the part
    /// as stored.
    Changed(Conversation, Option<Vec<u8>>),
}

/// The conversation states of one step (see the module doc).
#[derive(Default)]
pub(crate) struct States {
    held: BTreeMap<String, Held>,
}

impl States {
    /// Conversation `id`'s state as this step sees it (a copy for the engine to change).
    pub fn get(&mut self, step: &Step<'_>, id: &str) -> Result<Option<Conversation>, WitanError> {
        if !Layer::State.enabled() {
            return load(step, id);
        }
        if let Some(held) = self.held.get(id) {
            return Ok(match held {
                Held::Stored(conv, _) => conv.clone(),
                Held::Changed(conv, _) => Some(conv.clone()),
            });
        }
        let part = stored_part(step, id)?;
        let conv = part.as_deref().map(|bytes| decode(id, bytes)).transpose()?;
        self.held
            .insert(id.to_string(), Held::Stored(conv.clone(), part));
        Ok(conv)
    }

    /// Replaces conversation `id`'s state with what a successful engine run returned.
    pub fn replace(
        &mut self,
        step: &Step<'_>,
        id: &str,
        conv: Conversation,
    ) -> Result<(), WitanError> {
        if !Layer::State.enabled() {
            let stored = stored_part(step, id)?;
            return save(step, id, &conv, stored.as_deref()).map(drop);
        }
        let stored = match self.held.remove(id) {
            Some(Held::Stored(_, part) | Held::Changed(_, part)) => part,
            None => stored_part(step, id)?,
        };
        self.held
            .insert(id.to_string(), Held::Changed(conv, stored));
        Ok(())
    }

    /// Writes every changed state to the step; they stay readable.
    pub fn flush(&mut self, step: &Step<'_>) -> Result<(), WitanError> {
        for (id, held) in &mut self.held {
            let Held::Changed(conv, stored) = std::mem::replace(held, Held::Stored(None, None))
            else {
                continue;
            };
            let part = save(step, id, &conv, stored.as_deref())?;
            *held = Held::Stored(Some(conv), Some(part));
        }
        Ok(())
    }
}

/// The stored state of conversation `id`, if any.
pub(crate) fn load(step: &Step<'_>, id: &str) -> Result<Option<Conversation>, WitanError> {
    stored_part(step, id)?
        .map(|bytes| decode(id, &bytes))
        .transpose()
}

/// The bytes of conversation `id`'s state part (`None`: no such conversation).
fn stored_part(step: &Step<'_>, id: &str) -> Result<Option<Vec<u8>>, WitanError> {
    let parts = step.engine_parts(id)?;
    match parts
        .into_iter()
        .find(|(part, _)| part == CONVERSATION_PART)
    {
        Some((_, bytes)) => Ok(Some(bytes)),
        None if step.has_conversation(id)? => Err(unreadable(id, &"its state is missing")),
        None => Ok(None),
    }
}

/// Stores conversation `id`'s state unless `stored` (its part as stored) already says it, and
/// its next deadline with it; returns the part.
fn save(
    step: &Step<'_>,
    id: &str,
    conv: &Conversation,
    stored: Option<&[u8]>,
) -> Result<Vec<u8>, WitanError> {
    let part =
        codec::to_vec(conv).map_err(|e| WitanError::internal(format!("state encoding: {e}")))?;
    if stored != Some(part.as_slice()) {
        step.save_conversation(id, conv.next_deadline())?;
        step.save_engine_part(id, CONVERSATION_PART, &part)?;
    }
    Ok(part)
}

fn decode(id: &str, bytes: &[u8]) -> Result<Conversation, WitanError> {
    codec::from_slice(bytes).map_err(|e| unreadable(id, &e))
}

fn unreadable(id: &str, e: &dyn std::fmt::Display) -> WitanError {
    WitanError::Storage {
        reason: format!("stored state of {id:?} is unreadable: {e}"),
    }
}
