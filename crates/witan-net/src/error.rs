//! `NetError`: what the network layer reports to its host.

use witan::client::WitanError;

/// Kotlin and Swift see one exception class per variant, carrying this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "ffi", derive(uniffi::Error), uniffi(flat_error))]
pub enum NetError {
    /// A setting or address that cannot be used.
    #[error("configuration: {0}")]
    Config(String),
    /// The network task is not running, or did not answer in time.
    #[error("network unavailable: {0}")]
    Unavailable(String),
    /// A store query failed (no store configured, not reachable, or an error status).
    #[error("store query: {0}")]
    Store(String),
    /// The cursor file or the node's archive failed.
    #[error("database: {0}")]
    Database(String),
    /// No `WitanClient` is attached yet, or it was dropped.
    #[error("no client attached")]
    NotAttached,
    /// The client refused what was delivered (a database failure): nothing was advanced.
    #[error("client: {0}")]
    Client(#[from] WitanError),
}

impl From<rusqlite::Error> for NetError {
    fn from(e: rusqlite::Error) -> Self {
        NetError::Database(e.to_string())
    }
}
