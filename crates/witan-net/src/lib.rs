//! witan-net — a reference network for witan, on rust-libp2p, shaped after Waku.
//!
//! - [`waku`]: the wire — Waku messages (content topic = witan's topic, id = Waku's
//!   deterministic message hash), the store-v3-shaped history query, and the relay topic of
//!   each group shard.
//! - [`behaviour`]: the libp2p behaviour (gossipsub under Waku's relay protocol id,
//!   request-response for the history query, identify) over TCP + Noise + Yamux.
//! - [`member`]: [`NetTransport`], witan's `Transport` with catch-up from a store node under
//!   durable cursors — what an app or the `witan-member` binary runs.
//! - [`node`]: the service node (`witan-node`): relays every shard of its cluster and keeps
//!   what it relays in SQLite, with a retention, to answer history queries.
//! - [`cli`]: the `witan-member` and `witan-node` programs; [`story`]: the group story run
//!   as separate processes (the `witan-story` binary and the multi-process test).
//!
//! - `ffi` (cargo feature `ffi`): the UniFFI export of the transport for Kotlin and Swift.
//!
//! The `witan` crate knows nothing of this one: apps that bring their own network do not pay
//! for it.

#[cfg(feature = "ffi")]
uniffi::setup_scaffolding!();

pub mod behaviour;
pub mod cli;
pub mod codec;
pub mod error;
#[cfg(feature = "ffi")]
pub mod ffi;
pub mod limits;
pub mod member;
pub mod node;
mod sqlite;
pub mod story;
pub mod waku;

pub use error::NetError;
pub use limits::Limits;
pub use member::{CatchUpReport, NetConfig, NetEvent, NetTransport};
pub use waku::sharding::Sharding;
