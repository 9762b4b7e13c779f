//! The Waku message (14/WAKU2-MESSAGE): the envelope a witan packet travels in on the relay
//! and in the store, and its deterministic message hash, which is both the relay's message id
//! and the store's key.
//!
//! witan's packet is the `payload` and witan's topic the `content_topic`; the timestamp is
//! the publisher's clock in nanoseconds. `meta` and `ephemeral` are never set by witan-net but
//! are decoded and hashed as the specification says, so a message from another Waku
//! implementation gets the same id here as there.

use prost::Message as _;
use sha2::{Digest, Sha256};

/// Longest content topic accepted (witan's topics are about 60 bytes).
pub const MAX_CONTENT_TOPIC_BYTES: usize = 256;
/// The specification's limit on `meta`.
pub const MAX_META_BYTES: usize = 64;

/// The `WakuMessage` protobuf.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WakuMessage {
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
    #[prost(string, tag = "2")]
    pub content_topic: String,
    #[prost(uint32, optional, tag = "3")]
    pub version: Option<u32>,
    /// Unix time in nanoseconds, set by the sender.
    #[prost(sint64, optional, tag = "10")]
    pub timestamp: Option<i64>,
    #[prost(bytes = "vec", optional, tag = "11")]
    pub meta: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "31")]
    pub ephemeral: Option<bool>,
}

/// Why bytes are not an acceptable Waku message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("not a Waku message: {0}")]
    Decode(String),
    #[error("content topic of {0} bytes (at most {MAX_CONTENT_TOPIC_BYTES})")]
    ContentTopicTooLong(usize),
    #[error("meta of {0} bytes (at most {MAX_META_BYTES})")]
    MetaTooLong(usize),
    #[error("payload of {size} bytes is over the limit of {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
}

impl WakuMessage {
    /// A message carrying one witan packet, stamped with the sender's clock.
    pub fn new(content_topic: &str, payload: Vec<u8>, timestamp_ns: i64) -> WakuMessage {
        WakuMessage {
            payload,
            content_topic: content_topic.to_string(),
            version: None,
            timestamp: Some(timestamp_ns),
            meta: None,
            ephemeral: None,
        }
    }

    /// Decodes and checks the bounds that do not depend on configuration.
    pub fn decode_checked(bytes: &[u8], max_payload: usize) -> Result<WakuMessage, MessageError> {
        let message =
            WakuMessage::decode(bytes).map_err(|e| MessageError::Decode(e.to_string()))?;
        message.check(max_payload)?;
        Ok(message)
    }

    /// The bounds every message must keep: topic, meta and payload sizes.
    pub fn check(&self, max_payload: usize) -> Result<(), MessageError> {
        if self.content_topic.len() > MAX_CONTENT_TOPIC_BYTES {
            return Err(MessageError::ContentTopicTooLong(self.content_topic.len()));
        }
        if let Some(meta) = &self.meta
            && meta.len() > MAX_META_BYTES
        {
            return Err(MessageError::MetaTooLong(meta.len()));
        }
        if self.payload.len() > max_payload {
            return Err(MessageError::PayloadTooLarge {
                size: self.payload.len(),
                limit: max_payload,
            });
        }
        Ok(())
    }

    /// The deterministic message hash: SHA-256 over the pubsub topic, the payload, the
    /// content topic, `meta` when present and the timestamp as 8 big-endian bytes (an absent
    /// timestamp counts as 0).
    pub fn hash(&self, pubsub_topic: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(pubsub_topic.as_bytes());
        h.update(&self.payload);
        h.update(self.content_topic.as_bytes());
        if let Some(meta) = &self.meta {
            h.update(meta);
        }
        h.update(self.timestamp.unwrap_or(0).to_be_bytes());
        h.finalize().into()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBSUB: &str = "/waku/2/default-waku/proto";
    const CONTENT: &str = "/waku/2/default-content/proto";
    const TIMESTAMP: i64 = 0x1757_89bf_a23f_8400;

    fn vector(payload: &str, meta: Option<&str>) -> WakuMessage {
        WakuMessage {
            payload: hex::decode(payload).unwrap(),
            content_topic: CONTENT.into(),
            version: None,
            timestamp: Some(TIMESTAMP),
            meta: meta.map(|m| hex::decode(m).unwrap()),
            ephemeral: None,
        }
    }

    // The four test vectors of the 14/WAKU2-MESSAGE specification.
    #[test]
    fn hashes_match_the_specification_vectors() {
        let cases = [
            (
                vector("010203045445535405060708", Some("73757065722d736563726574")),
                "64cce733fed134e83da02b02c6f689814872b1a0ac97ea56b76095c3c72bfe05",
            ),
            (
                vector(
                    "010203045445535405060708",
                    Some(
                        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                         202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
                    ),
                ),
                "7158b6498753313368b9af8f6e0a0a05104f68f972981da42a43bc53fb0c1b27",
            ),
            (
                vector("010203045445535405060708", None),
                "a2554498b31f5bcdfcbf7fa58ad1c2d45f0254f3f8110a85588ec3cf10720fd8",
            ),
            (
                vector("", Some("73757065722d736563726574")),
                "483ea950cb63f9b9d6926b262bb36194d3f40a0463ce8446228350bd44e96de4",
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(hex::encode(message.hash(PUBSUB)), expected);
        }
    }

    #[test]
    fn the_hash_covers_every_hashed_field() {
        let base = vector("0102", None);
        let h = base.hash(PUBSUB);
        assert_ne!(base.hash("/waku/2/rs/1/0"), h);
        let mut m = base.clone();
        m.timestamp = Some(TIMESTAMP + 1);
        assert_ne!(m.hash(PUBSUB), h);
        let mut m = base.clone();
        m.content_topic.push('x');
        assert_ne!(m.hash(PUBSUB), h);
        let mut m = base.clone();
        m.meta = Some(vec![]);
        // An empty meta adds no bytes: only its content is hashed.
        assert_eq!(m.hash(PUBSUB), h);
        // Version and ephemeral are not part of the hash.
        let mut m = base.clone();
        m.version = Some(1);
        m.ephemeral = Some(true);
        assert_eq!(m.hash(PUBSUB), h);
    }

    #[test]
    fn decoding_round_trips_and_refuses_what_is_out_of_bounds() {
        let m = WakuMessage::new("/witan/1/ab/app", vec![7; 10], 42);
        assert_eq!(WakuMessage::decode_checked(&m.to_bytes(), 10).unwrap(), m);
        assert_eq!(
            WakuMessage::decode_checked(&m.to_bytes(), 9),
            Err(MessageError::PayloadTooLarge { size: 10, limit: 9 })
        );
        let long = WakuMessage::new(&"t".repeat(257), vec![], 0);
        assert_eq!(
            WakuMessage::decode_checked(&long.to_bytes(), 10),
            Err(MessageError::ContentTopicTooLong(257))
        );
        let mut meta = m.clone();
        meta.meta = Some(vec![0; 65]);
        assert_eq!(
            WakuMessage::decode_checked(&meta.to_bytes(), 10),
            Err(MessageError::MetaTooLong(65))
        );
        assert!(matches!(
            WakuMessage::decode_checked(&[0xff, 0xff, 0xff], 10),
            Err(MessageError::Decode(_))
        ));
    }
}
