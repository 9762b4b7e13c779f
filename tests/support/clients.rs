//! The client-level harness of the scenario tests: `witan_testing`'s [`World`] (members with
//! their own SQLite files on an in-process router, a manual clock, hostile links, remote
//! members), under the names the test files use. Included with
//! `#[path = "support/clients.rs"] mod clients;` by the client-level test files.
#![allow(unused_imports)]

pub use witan_testing::{
    CONV, DelayFn, InFlight, MemberTransport as NodeTransport, Recorder as Listener, Remote,
    START_MS, Slot, VirtualClock as ManualClock, World, fast_settings, member_set, min_opt,
};
