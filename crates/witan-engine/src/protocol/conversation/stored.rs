//! The vocabulary of a conversation's stored state: which parts there are ([`PartKey`]), the
//! error a damaged value is refused with ([`StateError`]), and the field readers every part's
//! decoder uses. It sits below `persist`, `part_codec` and `legacy`, which all speak it.

use crate::mls::MemberId;
use crate::protocol::ballot_box::Digest;

use super::schema::PART_VERSION;

/// The parts of a conversation's state, each stored under its own key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartKey {
    Core,
    Ballots,
    Round,
    Candidates,
    Stewards,
    Scores,
    Joins,
    Archive,
}

impl PartKey {
    pub const ALL: &'static [PartKey] = &[
        PartKey::Core,
        PartKey::Ballots,
        PartKey::Round,
        PartKey::Candidates,
        PartKey::Stewards,
        PartKey::Scores,
        PartKey::Joins,
        PartKey::Archive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PartKey::Core => "core",
            PartKey::Ballots => "ballots",
            PartKey::Round => "round",
            PartKey::Candidates => "candidates",
            PartKey::Stewards => "stewards",
            PartKey::Scores => "scores",
            PartKey::Joins => "joins",
            PartKey::Archive => "archive",
        }
    }

    pub fn parse(key: &str) -> Option<PartKey> {
        PartKey::ALL.iter().copied().find(|k| k.as_str() == key)
    }
}

/// A stored state that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored conversation state: {0}")]
pub struct StateError(pub String);

pub(super) fn err(what: impl Into<String>) -> StateError {
    StateError(what.into())
}

pub(super) fn member(bytes: &[u8]) -> Result<MemberId, StateError> {
    MemberId::from_slice(bytes).map_err(|e| err(e.to_string()))
}

pub(super) fn digest(bytes: &[u8]) -> Result<Digest, StateError> {
    bytes
        .try_into()
        .map_err(|_| err("a digest is not 32 bytes"))
}

pub(super) fn check_version(version: u32, what: &str) -> Result<(), StateError> {
    if version != PART_VERSION {
        return Err(err(format!(
            "{what} has version {version}, {PART_VERSION} is read"
        )));
    }
    Ok(())
}
