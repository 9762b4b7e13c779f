use super::*;

const RELAY: &str = "/waku/2/rs/66/1";
const APP: &str = "/witan/1/aa/app";
const WELCOME: &str = "/witan/1/aa/welcome";

fn message(topic: &str, n: u8, timestamp: i64) -> WakuMessage {
    WakuMessage::new(topic, vec![n; 4], timestamp)
}

fn filled(n: u8) -> Archive {
    let a = Archive::open(None).unwrap();
    for i in 0..n {
        let topic = if i % 2 == 0 { APP } else { WELCOME };
        assert!(
            a.insert(RELAY, &message(topic, i, 1_000 + i64::from(i)), 10)
                .unwrap()
        );
    }
    a
}

fn request(cursor: Option<Vec<u8>>, limit: u64) -> StoreQueryRequest {
    StoreQueryRequest {
        request_id: "q".into(),
        include_data: true,
        pubsub_topic: Some(RELAY.into()),
        content_topics: vec![APP.into(), WELCOME.into()],
        pagination_cursor: cursor,
        pagination_forward: true,
        pagination_limit: Some(limit),
        ..StoreQueryRequest::default()
    }
}

fn payload_bytes(r: &StoreQueryResponse) -> Vec<u8> {
    r.messages
        .iter()
        .map(|m| m.message.as_ref().unwrap().payload[0])
        .collect()
}

#[test]
fn forward_pages_follow_arrival_order_and_end_without_a_cursor() {
    let a = filled(7);
    let first = a.query(&request(None, 3));
    assert!(first.is_ok());
    assert_eq!(payload_bytes(&first), vec![0, 1, 2]);
    let second = a.query(&request(first.pagination_cursor.clone(), 3));
    assert_eq!(payload_bytes(&second), vec![3, 4, 5]);
    let last = a.query(&request(second.pagination_cursor.clone(), 3));
    assert_eq!(payload_bytes(&last), vec![6]);
    assert_eq!(last.pagination_cursor, None);
    // The cursor is the hash of the last message included.
    assert_eq!(
        first.pagination_cursor,
        first.messages.last().unwrap().message_hash
    );
    assert_eq!(first.messages[0].pubsub_topic.as_deref(), Some(RELAY));
}

#[test]
fn a_late_message_with_an_earlier_timestamp_comes_after_a_cursor_handed_out_before_it() {
    let a = Archive::open(None).unwrap();
    a.insert(RELAY, &message(APP, 1, 5_000), 10).unwrap();
    let page = a.query(&request(None, 10));
    let cursor = page.messages.last().unwrap().message_hash.clone();
    // Published earlier (by its sender's clock), received later.
    a.insert(RELAY, &message(APP, 2, 4_000), 11).unwrap();
    assert_eq!(payload_bytes(&a.query(&request(cursor, 10))), vec![2]);
}

#[test]
fn content_and_time_filters_select_the_matching_messages() {
    let a = filled(6);
    a.insert("/waku/2/rs/66/2", &message(APP, 50, 1_001), 10)
        .unwrap();
    let mut only_app = request(None, 100);
    only_app.content_topics = vec![APP.into()];
    assert_eq!(payload_bytes(&a.query(&only_app)), vec![0, 2, 4]);
    let mut window = request(None, 100);
    window.time_start = Some(1_002);
    window.time_end = Some(1_004);
    assert_eq!(payload_bytes(&a.query(&window)), vec![2, 3]);
    let everything = StoreQueryRequest {
        include_data: true,
        pagination_forward: true,
        ..StoreQueryRequest::default()
    };
    assert_eq!(a.query(&everything).messages.len(), 7);
}

#[test]
fn backward_pages_are_returned_oldest_first_with_the_cursor_at_their_start() {
    let a = filled(5);
    let mut back = request(None, 2);
    back.pagination_forward = false;
    let first = a.query(&back);
    assert_eq!(payload_bytes(&first), vec![3, 4]);
    assert_eq!(first.pagination_cursor, first.messages[0].message_hash);
    back.pagination_cursor = first.pagination_cursor.clone();
    assert_eq!(payload_bytes(&a.query(&back)), vec![1, 2]);
}

#[test]
fn lookups_and_key_only_answers() {
    let a = filled(4);
    let hash = message(WELCOME, 1, 1_001).hash(RELAY).to_vec();
    let lookup = StoreQueryRequest {
        message_hashes: vec![hash.clone(), vec![9; 32]],
        pagination_forward: true,
        ..StoreQueryRequest::default()
    };
    let found = a.query(&lookup);
    assert_eq!(found.messages.len(), 1);
    assert_eq!(found.messages[0].message_hash.as_ref(), Some(&hash));
    // include_data is false: keys only, and then no pubsub topic either.
    assert!(found.messages[0].message.is_none());
    assert!(found.messages[0].pubsub_topic.is_none());
}

#[test]
fn bad_requests_and_unknown_cursors_get_error_statuses_and_change_nothing() {
    let a = filled(3);
    let mut half = request(None, 10);
    half.content_topics.clear();
    assert_eq!(a.query(&half).status_code, Some(status::BAD_REQUEST));
    let mut mixed = request(None, 10);
    mixed.message_hashes = vec![vec![1; 32]];
    assert_eq!(a.query(&mixed).status_code, Some(status::BAD_REQUEST));
    let mut many = request(None, 10);
    many.content_topics = (0..=MAX_QUERY_TOPICS).map(|i| format!("/t/{i}")).collect();
    assert_eq!(a.query(&many).status_code, Some(status::BAD_REQUEST));
    let unknown = a.query(&request(Some(vec![7; 32]), 10));
    assert_eq!(unknown.status_code, Some(status::CURSOR_NOT_FOUND));
    assert!(unknown.messages.is_empty());
    assert_eq!(a.len().unwrap(), 3);
}

#[test]
fn page_size_is_capped_and_duplicates_and_ephemeral_messages_are_not_kept() {
    let a = filled(0);
    for i in 0..=MAX_PAGE_SIZE {
        a.insert(RELAY, &message(APP, (i % 250) as u8, i64::from(i)), 1)
            .unwrap();
    }
    assert_eq!(
        a.query(&request(None, 10_000)).messages.len(),
        MAX_PAGE_SIZE as usize
    );
    assert!(!a.insert(RELAY, &message(APP, 0, 0), 2).unwrap());
    let mut ephemeral = message(APP, 1, 77);
    ephemeral.ephemeral = Some(true);
    assert!(!a.insert(RELAY, &ephemeral, 2).unwrap());
    assert_eq!(a.len().unwrap(), u64::from(MAX_PAGE_SIZE) + 1);
}

#[test]
fn retention_prunes_by_age_and_count_and_a_pruned_cursor_is_reported() {
    let a = Archive::open(None).unwrap();
    for i in 0..10u8 {
        a.insert(RELAY, &message(APP, i, i64::from(i)), u64::from(i) * 1_000)
            .unwrap();
    }
    let cursor = a.query(&request(None, 1)).pagination_cursor;
    let retention = Retention {
        max_age_ms: 5_500,
        max_messages: 3,
    };
    // Received before 9_000 - 5_500 = 3_500: messages 0..=3; then only the newest 3 stay.
    assert_eq!(a.prune(&retention, 9_000).unwrap(), 7);
    assert_eq!(payload_bytes(&a.query(&request(None, 10))), vec![7, 8, 9]);
    assert_eq!(
        a.query(&request(cursor, 10)).status_code,
        Some(status::CURSOR_NOT_FOUND)
    );
}

#[test]
fn the_archive_and_its_meta_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.db");
    {
        let a = Archive::open(Some(&path)).unwrap();
        a.insert(RELAY, &message(APP, 1, 1), 1).unwrap();
        a.meta_set("k", b"v").unwrap();
    }
    let a = Archive::open(Some(&path)).unwrap();
    assert_eq!(a.len().unwrap(), 1);
    assert_eq!(a.meta_get("k").unwrap().as_deref(), Some(&b"v"[..]));
}
