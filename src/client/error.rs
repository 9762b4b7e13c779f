//! `WitanError` (every failure a host sees) and `TransportError` (a host transport's
//! failure), with the mappings from the lower layers' errors. A failed call leaves the stored
//! state as it was: the step that failed is rolled back before the error is returned.

use crate::mls::MlsError;
use crate::protocol::{self, ProtocolError};
use crate::store::StoreError;

use super::types::ConversationState;

/// Errors returned by `WitanClient`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum WitanError {
    /// Bad arguments or a malformed or refused packet.
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// Not possible in the conversation's current state (for example sending before the
    /// join completed).
    #[error("not possible in state {state:?}: {reason}")]
    WrongState {
        state: ConversationState,
        reason: String,
    },
    /// The database failed (busy past its timeout, full disk, corrupt file, ...).
    #[error("storage: {reason}")]
    Storage { reason: String },
    /// An MLS or signature operation failed.
    #[error("crypto: {reason}")]
    Crypto { reason: String },
    /// A bug; never a crash of the host.
    #[error("internal: {reason}")]
    Internal { reason: String },
}

impl WitanError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        WitanError::InvalidInput {
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        WitanError::NotFound { what: what.into() }
    }

    /// Whether this is the store's "busy past the timeout" failure (another process held the
    /// write lock): the call had no effect and may be retried.
    pub(crate) fn is_busy(&self) -> bool {
        matches!(self, WitanError::Storage { reason } if *reason == StoreError::Busy.to_string())
    }

    pub(crate) fn internal(reason: impl Into<String>) -> Self {
        WitanError::Internal {
            reason: reason.into(),
        }
    }

    /// Maps an engine error; `state` is the conversation's state before the failed step (used
    /// for errors that say "not now" without carrying a state).
    pub(crate) fn from_protocol(e: ProtocolError, state: protocol::State) -> Self {
        let reason = e.to_string();
        match e {
            ProtocolError::Wire(_)
            | ProtocolError::Vote(_)
            | ProtocolError::WrongConversation
            | ProtocolError::NotMember
            | ProtocolError::SenderMismatch
            | ProtocolError::InvalidInput(_)
            | ProtocolError::InvalidSettings(_)
            | ProtocolError::Stale
            | ProtocolError::UntrustedWelcome(_) => WitanError::InvalidInput { reason },
            ProtocolError::Mls(m) => m.into(),
            ProtocolError::WrongState { state, reason } => WitanError::WrongState {
                state: state.into(),
                reason,
            },
            ProtocolError::HeldBack => WitanError::WrongState {
                state: state.into(),
                reason,
            },
            ProtocolError::NotFound(what) => WitanError::NotFound { what },
            ProtocolError::Internal(_) => WitanError::Internal { reason },
        }
    }
}

impl From<StoreError> for WitanError {
    fn from(e: StoreError) -> Self {
        WitanError::Storage {
            reason: e.to_string(),
        }
    }
}

impl From<MlsError> for WitanError {
    fn from(e: MlsError) -> Self {
        let reason = e.to_string();
        match e {
            MlsError::Storage(_) => WitanError::Storage { reason },
            MlsError::Internal(_) => WitanError::Internal { reason },
            MlsError::InvalidIdentity(_) | MlsError::Malformed(_) => {
                WitanError::InvalidInput { reason }
            }
            _ => WitanError::Crypto { reason },
        }
    }
}

impl From<serde_json::Error> for WitanError {
    fn from(e: serde_json::Error) -> Self {
        WitanError::Storage {
            reason: format!("stored conversation state is unreadable: {e}"),
        }
    }
}

/// The failure of a host transport. The packet stays in the outbox and is retried later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TransportError {
    #[error("transport unavailable: {reason}")]
    Unavailable { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TransportError::Unavailable {
            reason: format!("transport callback failed: {}", e.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_the_api_kinds() {
        let s = protocol::State::Working;
        assert!(matches!(
            WitanError::from_protocol(ProtocolError::InvalidInput("x".into()), s),
            WitanError::InvalidInput { .. }
        ));
        assert_eq!(
            WitanError::from_protocol(ProtocolError::NotFound("proposal 7".into()), s),
            WitanError::NotFound {
                what: "proposal 7".into()
            }
        );
        assert!(matches!(
            WitanError::from_protocol(
                ProtocolError::WrongState {
                    state: protocol::State::PendingJoin,
                    reason: "r".into()
                },
                s
            ),
            WitanError::WrongState {
                state: ConversationState::PendingJoin,
                ..
            }
        ));
        assert!(matches!(
            WitanError::from_protocol(ProtocolError::HeldBack, protocol::State::Freezing),
            WitanError::WrongState {
                state: ConversationState::Freezing,
                ..
            }
        ));
        assert!(matches!(
            WitanError::from_protocol(ProtocolError::Mls(MlsError::Decrypt("d".into())), s),
            WitanError::Crypto { .. }
        ));
        assert!(matches!(
            WitanError::from_protocol(ProtocolError::Internal("bug".into()), s),
            WitanError::Internal { .. }
        ));
        assert!(matches!(
            WitanError::from(StoreError::Busy),
            WitanError::Storage { .. }
        ));
    }
}
