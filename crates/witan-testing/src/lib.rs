//! witan-testing — the one harness every test, the simulator, the bench, the demo and the
//! fuzz targets use to run members of a conversation in one process.
//!
//! - [`clock`]: the shared [`VirtualClock`] and each member's [`SkewedClock`].
//! - [`net`]: the fake [`Network`] members publish into, their [`MemberTransport`]s (with a
//!   [`Mode`] for members whose packets are lost or refused) and a [`Tap`] to observe
//!   publications.
//! - [`links`]: hostile links for in-order delivery (cut, partitioned, delayed).
//! - [`listener`]: event listeners ([`Recorder`], [`Ignore`]).
//! - [`world`]: the [`World`] of members (`WitanClient`s over their own files or in memory,
//!   or [`Remote`]s), its delivery and run loop (`run.rs`) and the conversation helpers
//!   (`story.rs`).
//! - [`engine`]: the same story one layer down — members running the sans-IO engine over
//!   in-memory MLS storage, for tests of the protocol itself; [`joining`]: a join made while
//!   offline, and the welcome it missed.
//!
//! Everything here panics on failure where a test wants it to (the `try_` variants return
//! the client's error instead, for the bench).

pub mod clock;
pub mod engine;
pub mod joining;
pub mod links;
pub mod listener;
pub mod net;
mod run;
mod story;
pub mod world;

pub use clock::{START_MS, SkewedClock, VirtualClock};
pub use links::{DelayFn, InFlight, Links};
pub use listener::{Ignore, Recorder};
pub use net::{
    MODE_NORMAL, MODE_REFUSE, MODE_SWALLOW, MemberTransport, Mode, Network, Packet, Tap,
};
pub use run::min_opt;
pub use story::{fast_settings, member_set};
pub use world::{Dir, ListenerFn, MemberSpec, ReceiveStats, Remote, Slot, World};

/// The conversation a world's story helpers act on unless told otherwise.
pub const CONV: &str = "garden-club";

/// A fixed identity secret for member `i` (so member ids are the same on every run).
pub fn secret_of(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    s[8..16].copy_from_slice(b"witansim");
    s
}

#[cfg(test)]
mod tests;
