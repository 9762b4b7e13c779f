//! The error type of the `mls` layer: every failure of identity handling, key packages, OpenMLS
//! storage and group operations is reported as one [`MlsError`] variant.
//!
//! OpenMLS errors are generic over the storage error type and carry internal details; they are
//! flattened into a readable `String` here so that higher layers can match on the variant and
//! log the message without depending on OpenMLS types.

use super::member_id::{BadMemberId, MemberId};

/// Errors of the `mls` layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MlsError {
    /// A secret key, public key or member id had the wrong shape.
    #[error("invalid identity: {0}")]
    InvalidIdentity(String),
    /// A key package failed to parse or to validate (signature, lifetime, ciphersuite,
    /// credential identity not derived from the signature key, ...).
    #[error("invalid key package: {0}")]
    InvalidKeyPackage(String),
    /// A Welcome failed to parse or to validate, or no stored key package matches it.
    #[error("invalid welcome: {0}")]
    InvalidWelcome(String),
    /// An active group with this id is already stored.
    #[error("an active group with this id already exists")]
    GroupExists,
    /// The member is not (or no longer) part of the group.
    #[error("unknown member {0:?}")]
    UnknownMember(MemberId),
    /// The message belongs to an epoch this group cannot process now: a future epoch (buffer it
    /// until the group catches up) or a past epoch whose secrets are gone (drop it).
    #[error("message of epoch {message_epoch} cannot be processed at group epoch {group_epoch}")]
    WrongEpoch {
        /// Epoch found in the message header.
        message_epoch: u64,
        /// Current epoch of the local group.
        group_epoch: u64,
    },
    /// The message belongs to another MLS group.
    #[error("message belongs to another group")]
    WrongGroup,
    /// An application message could not be decrypted or authenticated.
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
    /// The message is an application message sent by this member itself (an echo).
    #[error("message was sent by this member")]
    OwnMessage,
    /// The key of this application message was used already: a copy of a message this member
    /// has read (or a forgery reusing its generation). Nothing was changed.
    #[error("message was read already (its key is used up)")]
    Replayed,
    /// A commit failed validation, or could not be created.
    #[error("invalid commit: {0}")]
    InvalidCommit(String),
    /// A commit was expected but the message is something else.
    #[error("message is not a commit")]
    NotACommit,
    /// An application message was expected but the message is something else.
    #[error("message is not an application message")]
    NotApplication,
    /// No pending commit exists although the operation needs one.
    #[error("no pending commit")]
    NoPendingCommit,
    /// The local member was removed from the group; the group can no longer be used.
    #[error("group is inactive (this member was removed)")]
    Inactive,
    /// Reading or writing the OpenMLS key-value rows failed.
    #[error("mls storage: {0}")]
    Storage(String),
    /// The bytes are not a well-formed MLS message of the expected kind.
    #[error("malformed mls message: {0}")]
    Malformed(String),
    /// An unexpected OpenMLS failure (a bug or a corrupted state).
    #[error("internal mls error: {0}")]
    Internal(String),
}

impl MlsError {
    /// Wraps any displayable error as [`MlsError::Internal`].
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        MlsError::Internal(e.to_string())
    }
}

impl From<BadMemberId> for MlsError {
    fn from(e: BadMemberId) -> Self {
        MlsError::InvalidIdentity(e.0)
    }
}
