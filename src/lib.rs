//! witan — decentralized, end-to-end encrypted group chat (de-MLS) for mobile apps.
//!
//! This crate is the top of the workspace: the client and the FFI surface. The layers below
//! are crates of their own, re-exported here under their layer names, and each imports only
//! the ones before it in this list:
//!
//! 1. [`wire`] (`witan-wire`) — protobuf messages on the wire, versioned envelope, size limits.
//! 2. [`mls`], [`protocol`] and [`codec`] (`witan-engine`) — the OpenMLS wrapper, the sans-IO
//!    de-MLS engine for one conversation, and the encoding of what they store.
//! 3. [`store`] (`witan-store`) — SQLite: schema, OpenMLS key-value rows, engine state,
//!    outbox, history.
//! 4. [`client`] — `WitanClient`: one durable transaction per step, outbox delivery, events.
//! 5. [`ffi`] — the UniFFI surface exported to Kotlin and Swift.
//! 6. [`logging`] — `tracing` routed to os_log, logcat or a host `Logger`.

uniffi::setup_scaffolding!();

pub mod client;
pub mod ffi;
pub mod logging;

pub use witan_engine::{codec, mls, protocol};
pub use witan_store as store;
pub use witan_wire as wire;
