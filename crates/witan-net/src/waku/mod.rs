//! The wire of witan-net, shaped after Waku so that the path to a Waku network stays open:
//! the message envelope and its hash (`message`), the history query (`store_query`), and how
//! witan's topics map onto relay topics (`sharding`). Nothing here talks to a real Waku node;
//! the message hash is checked against the specification's test vectors.

pub mod message;
pub mod sharding;
pub mod store_query;

pub use message::{MessageError, WakuMessage};

/// The relay's protocol id (11/WAKU2-RELAY): gossipsub v1.1 under Waku's name.
pub const RELAY_PROTOCOL: &str = "/vac/waku/relay/2.0.0";
