//! witan-engine — the de-MLS engine: the MLS wrapper and the sans-IO protocol.
//!
//! - [`mls`] wraps OpenMLS: identity, key packages, groups, and OpenMLS storage over
//!   key-value rows that the caller persists (this crate has no database).
//! - [`codec`] is the binary encoding of stored values (OpenMLS rows, the engine's state).
//! - [`metrics`] counts the costly checks (signatures, certificate bytes) for the bench.
//! - [`protocol`] is the de-MLS state machine for one conversation; time and randomness come
//!   in from the caller, and its outputs are values the caller publishes and stores.
//!
//! The crate sits above `witan-wire` and below `witan-store`; it builds and tests without
//! SQLite, SQLCipher or OpenSSL.

pub mod codec;
pub mod metrics;
pub mod mls;
pub mod protocol;
