//! [`WireError`]: why bytes from the network were refused.

use thiserror::Error;

/// Why a message could not be decoded. Decoding never panics; every refusal is one of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// An input or a field is longer (or has more elements) than its limit.
    #[error("{what} too large: {len} > {max}")]
    TooLarge {
        /// The message or field, as `message.field`.
        what: &'static str,
        /// Its length in bytes, or its number of elements.
        len: usize,
        /// The limit from [`super::limits`].
        max: usize,
    },
    /// The bytes are not a valid protobuf encoding of the message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A field decoded but has an invalid value (wrong length, missing, unknown).
    #[error("invalid {field}: {reason}")]
    BadField {
        /// The field, as `message.field`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The envelope's version is not [`super::WIRE_VERSION`].
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u32),
}
