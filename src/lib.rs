//! witan — decentralized, end-to-end encrypted group chat (de-MLS) for mobile apps.
//!
//! The crate is layered; a layer only imports the layers above it in this list:
//!
//! 1. [`wire`] — protobuf messages on the wire, versioned envelope, size limits.
//! 2. [`mls`] — a thin wrapper over OpenMLS (identity, key packages, groups, storage).
//! 3. [`protocol`] — the sans-IO de-MLS engine for one conversation.
//! 4. [`store`] — SQLite: schema, OpenMLS key-value rows, engine state, outbox, history.
//! 5. [`client`] — `WitanClient`: one durable transaction per step, outbox delivery, events.
//! 6. [`ffi`] — the UniFFI surface exported to Kotlin and Swift.
//! 7. [`logging`] — `tracing` routed to os_log, logcat or a host `Logger`.

uniffi::setup_scaffolding!();

pub mod client;
pub mod ffi;
pub mod logging;
pub mod mls;
pub mod protocol;
pub mod store;
pub mod wire;
