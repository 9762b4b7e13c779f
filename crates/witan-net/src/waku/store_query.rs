//! The history query in the shape of Waku's store query protocol (WAKU2-STORE, version 3):
//! the request and response messages, their protocol id, and the status codes used.
//!
//! A query filters by pubsub topic and content topics (both set or both unset), by a time
//! range on the messages' timestamps, or looks up message hashes; it pages with a cursor
//! (the hash of the last message received, exclusive) and a page size.

/// The protocol id of the query.
pub const STORE_QUERY_PROTOCOL: &str = "/vac/waku/store-query/3.0.0";

/// Status codes of a response (HTTP-like, as the specification suggests).
pub mod status {
    pub const OK: u32 = 200;
    pub const BAD_REQUEST: u32 = 400;
    /// The cursor names a message this node does not hold (never seen, or pruned).
    pub const CURSOR_NOT_FOUND: u32 = 404;
    pub const TOO_MANY_REQUESTS: u32 = 429;
    pub const INTERNAL: u32 = 500;
}

/// One stored message: its hash, and (when the query asked for data) the message and the
/// pubsub topic it was relayed on.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WakuMessageKeyValue {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub message_hash: Option<Vec<u8>>,
    #[prost(message, optional, tag = "2")]
    pub message: Option<super::WakuMessage>,
    #[prost(string, optional, tag = "3")]
    pub pubsub_topic: Option<String>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StoreQueryRequest {
    #[prost(string, tag = "1")]
    pub request_id: String,
    #[prost(bool, tag = "2")]
    pub include_data: bool,
    #[prost(string, optional, tag = "10")]
    pub pubsub_topic: Option<String>,
    #[prost(string, repeated, tag = "11")]
    pub content_topics: Vec<String>,
    /// Inclusive, nanoseconds.
    #[prost(sint64, optional, tag = "12")]
    pub time_start: Option<i64>,
    /// Exclusive, nanoseconds.
    #[prost(sint64, optional, tag = "13")]
    pub time_end: Option<i64>,
    #[prost(bytes = "vec", repeated, tag = "20")]
    pub message_hashes: Vec<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "51")]
    pub pagination_cursor: Option<Vec<u8>>,
    #[prost(bool, tag = "52")]
    pub pagination_forward: bool,
    #[prost(uint64, optional, tag = "53")]
    pub pagination_limit: Option<u64>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StoreQueryResponse {
    #[prost(string, tag = "1")]
    pub request_id: String,
    #[prost(uint32, optional, tag = "10")]
    pub status_code: Option<u32>,
    #[prost(string, optional, tag = "11")]
    pub status_desc: Option<String>,
    #[prost(message, repeated, tag = "20")]
    pub messages: Vec<WakuMessageKeyValue>,
    /// Set when more messages match: the hash of the last one included (forward).
    #[prost(bytes = "vec", optional, tag = "51")]
    pub pagination_cursor: Option<Vec<u8>>,
}

impl StoreQueryResponse {
    /// A response with no messages and the given status.
    pub fn failed(request_id: &str, code: u32, desc: impl Into<String>) -> StoreQueryResponse {
        StoreQueryResponse {
            request_id: request_id.to_string(),
            status_code: Some(code),
            status_desc: Some(desc.into()),
            messages: Vec::new(),
            pagination_cursor: None,
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self.status_code, Some(code) if (200..300).contains(&code))
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::waku::WakuMessage;

    #[test]
    fn messages_round_trip_with_the_specified_field_numbers() {
        let request = StoreQueryRequest {
            request_id: "r1".into(),
            include_data: true,
            pubsub_topic: Some("/waku/2/rs/66/3".into()),
            content_topics: vec!["/witan/1/ab/app".into()],
            time_start: Some(-5),
            time_end: None,
            message_hashes: vec![],
            pagination_cursor: Some(vec![1; 32]),
            pagination_forward: true,
            pagination_limit: Some(20),
        };
        let bytes = request.encode_to_vec();
        // Field 51 (cursor) is a two-byte tag: (51 << 3 | 2) as a varint is 0x9a 0x03.
        assert!(bytes.windows(3).any(|w| w == [0x9a, 0x03, 32]));
        assert_eq!(
            StoreQueryRequest::decode(bytes.as_slice()).unwrap(),
            request
        );

        let response = StoreQueryResponse {
            request_id: "r1".into(),
            status_code: Some(status::OK),
            status_desc: None,
            messages: vec![WakuMessageKeyValue {
                message_hash: Some(vec![2; 32]),
                message: Some(WakuMessage::new("/witan/1/ab/app", vec![9], 7)),
                pubsub_topic: Some("/waku/2/rs/66/3".into()),
            }],
            pagination_cursor: None,
        };
        let bytes = response.encode_to_vec();
        assert_eq!(
            StoreQueryResponse::decode(bytes.as_slice()).unwrap(),
            response
        );
        assert!(response.is_ok());
        assert!(!StoreQueryResponse::failed("r", status::BAD_REQUEST, "no").is_ok());
    }
}
