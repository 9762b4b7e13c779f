//! Tests of `MlsStorage`: a run's writes, list rows, errors.
use super::*;
use crate::mls::kv::MemoryKv;

#[test]
fn a_runs_writes_are_read_back_taken_or_dropped() {
    let mut kv = MemoryKv::new();
    kv.apply(vec![(b"a".to_vec(), Some(b"1".to_vec()))]);
    {
        let s = MlsStorage::new(&kv);
        assert_eq!(s.raw_get(b"a").unwrap(), Some(b"1".to_vec()));
        s.raw_set(b"a".to_vec(), None);
        s.raw_set(b"b".to_vec(), Some(b"2".to_vec()));
        assert_eq!(s.raw_get(b"a").unwrap(), None);
        assert_eq!(s.raw_get(b"b").unwrap(), Some(b"2".to_vec()));
        assert!(s.has_changes());
        // dropped without take_changes: nothing reaches the source
    }
    assert_eq!(kv.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(kv.get(b"b").unwrap(), None);

    let s = MlsStorage::new(&kv);
    s.raw_set(b"a".to_vec(), None);
    s.raw_set(b"b".to_vec(), Some(b"2".to_vec()));
    let changes = s.take_changes();
    assert!(!s.has_changes());
    drop(s);
    kv.apply(changes);
    assert_eq!(kv.get(b"a").unwrap(), None);
    assert_eq!(kv.get(b"b").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn lists_round_trip_through_the_rows() {
    let mut kv = MemoryKv::new();
    let s = MlsStorage::new(&kv);
    s.list_push("l", &1u8, &"x").unwrap();
    s.list_push("l", &1u8, &"y").unwrap();
    let changes = s.take_changes();
    drop(s);
    kv.apply(changes);
    let s = MlsStorage::new(&kv);
    assert_eq!(s.get_list::<_, String>("l", &1u8).unwrap(), vec!["x", "y"]);
    s.list_push("l", &1u8, &"z").unwrap();
    s.list_remove("l", &1u8, &"x").unwrap();
    assert_eq!(s.get_list::<_, String>("l", &1u8).unwrap(), vec!["y", "z"]);
    s.list_remove("l", &1u8, &"y").unwrap();
    s.list_remove("l", &1u8, &"z").unwrap();
    assert!(s.get_list::<_, String>("l", &1u8).unwrap().is_empty());
    let changes = s.take_changes();
    drop(s);
    kv.apply(changes);
    assert!(kv.is_empty());
}

#[test]
fn source_errors_and_corrupt_rows_are_errors() {
    struct Failing;
    impl KvSource for Failing {
        fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, String> {
            Err("disk on fire".into())
        }
    }
    let s = MlsStorage::new(&Failing);
    assert!(matches!(
        s.get::<_, u8>("x", &1u8),
        Err(MlsStorageError::Source(_))
    ));
    let mut kv = MemoryKv::new();
    kv.apply(vec![(
        MlsStorage::row_key("x", &1u8).unwrap(),
        Some(b"{not json".to_vec()),
    )]);
    let s = MlsStorage::new(&kv);
    assert!(matches!(
        s.get::<_, u8>("x", &1u8),
        Err(MlsStorageError::Serde(_))
    ));
}

#[test]
fn values_are_written_in_the_codec_and_json_rows_are_not_read() {
    let mut kv = MemoryKv::new();
    let json_key = MlsStorage::row_key("x", &1u8).unwrap();
    kv.apply(vec![(
        json_key,
        Some(serde_json::to_vec(&vec![1u8, 2, 3]).unwrap()),
    )]);
    let s = MlsStorage::new(&kv);
    // JSON rows of earlier versions are migrated by the store before anything reads them.
    assert!(matches!(
        s.get::<_, Vec<u8>>("x", &1u8),
        Err(MlsStorageError::Serde(_))
    ));
    s.put("x", &2u8, &vec![4u8, 5]).unwrap();
    let changes = s.take_changes();
    let written = changes[0].1.as_ref().unwrap();
    assert!(codec::is_encoded(written));
    assert_eq!(s.get::<_, Vec<u8>>("x", &2u8).unwrap(), None); // taken
    drop(s);
    kv.apply(changes);
    let s = MlsStorage::new(&kv);
    assert_eq!(s.get::<_, Vec<u8>>("x", &2u8).unwrap(), Some(vec![4, 5]));
}

#[test]
fn list_rows_push_and_remove_items() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Item {
        vec: Vec<u8>,
    }
    let item = |b: u8| Item { vec: vec![b; 3] };
    let kv = MemoryKv::new();
    let s = MlsStorage::new(&kv);
    s.list_push("l", &2u8, &item(7)).unwrap();
    s.list_push("l", &2u8, &item(8)).unwrap();
    s.list_push("l", &2u8, &item(7)).unwrap();
    let row = MlsStorage::row_key("l", &2u8).unwrap();
    assert!(codec::is_encoded(&s.raw_get(&row).unwrap().unwrap()));
    s.list_remove("l", &2u8, &item(7)).unwrap();
    s.list_remove("l", &2u8, &item(9)).unwrap(); // absent: no change
    assert_eq!(
        s.get_list::<_, Item>("l", &2u8).unwrap(),
        vec![item(8), item(7)]
    );
    s.list_remove("l", &2u8, &item(8)).unwrap();
    s.list_remove("l", &2u8, &item(7)).unwrap();
    assert_eq!(s.raw_get(&row).unwrap(), None);
    s.list_remove("l", &3u8, &item(1)).unwrap(); // no row at all
    assert!(s.get_list::<_, Item>("l", &3u8).unwrap().is_empty());
}

/// Stand-in message secrets: one ratchet secret per member (random, like real ones).
fn secrets(members: usize, seed: u8) -> Vec<Vec<u8>> {
    (0..members)
        .map(|i| {
            let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(seed);
            (0..48)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

/// The run's writes, its storage dropped.
fn take(s: MlsStorage<'_>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    s.take_changes()
}

#[test]
fn large_message_secrets_are_chunked_and_a_rewrite_writes_the_changed_chunks() {
    let mut kv = MemoryKv::new();
    let mut value = secrets(600, 1);
    let s = MlsStorage::new(&kv);
    s.put_message_secrets(MESSAGE_SECRETS, &7u8, &value)
        .unwrap();
    let first = take(s);
    kv.apply(first.clone());
    let row = MlsStorage::row_key(MESSAGE_SECRETS, &7u8).unwrap();
    let header = kv.get(&row).unwrap().unwrap();
    assert_eq!(header[0], chunks::HEADER);
    assert!(first.len() > 10, "{} rows", first.len());

    // One sender's ratchet moves: a few rows change, not the whole value.
    value[300] = secrets(1, 9).remove(0);
    let s = MlsStorage::new(&kv);
    s.put_message_secrets(MESSAGE_SECRETS, &7u8, &value)
        .unwrap();
    let second = take(s);
    kv.apply(second.clone());
    let bytes: usize = second
        .iter()
        .filter_map(|(_, v)| v.as_ref())
        .map(Vec::len)
        .sum();
    assert!(
        second.len() <= 6 && bytes < 10_000,
        "{} rows, {bytes} bytes",
        second.len()
    );
    let s = MlsStorage::new(&kv);
    assert_eq!(
        s.get::<_, Vec<Vec<u8>>>(MESSAGE_SECRETS, &7u8).unwrap(),
        Some(value.clone())
    );
    // Rows of earlier versions stay readable: nothing but the header and named chunks left.
    let chunk_rows =
        kv.0.keys()
            .filter(|k| k.starts_with(&row) && **k != row)
            .count();
    let named = chunks::Header::decode(&kv.get(&row).unwrap().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(chunk_rows, named.chunks.len());

    // Deleting removes every chunk; shrinking below the threshold stores the value whole.
    s.del(MESSAGE_SECRETS, &7u8).unwrap();
    let c = take(s);
    kv.apply(c);
    assert!(kv.is_empty());
    let s = MlsStorage::new(&kv);
    s.put_message_secrets(MESSAGE_SECRETS, &7u8, &value)
        .unwrap();
    let c = take(s);
    kv.apply(c);
    let s = MlsStorage::new(&kv);
    s.put_message_secrets(MESSAGE_SECRETS, &7u8, &secrets(2, 1))
        .unwrap();
    let c = take(s);
    kv.apply(c);
    assert_eq!(kv.0.len(), 1);
    assert!(codec::is_encoded(&kv.get(&row).unwrap().unwrap()));
}

#[test]
fn message_secrets_stored_whole_by_earlier_versions_are_read_and_rechunked() {
    let mut kv = MemoryKv::new();
    let value = secrets(600, 2);
    let row = MlsStorage::row_key(MESSAGE_SECRETS, &3u8).unwrap();
    // The layout every version before chunks wrote: the codec value in the row itself.
    kv.apply(vec![(row.clone(), Some(codec::to_vec(&value).unwrap()))]);
    let s = MlsStorage::new(&kv);
    assert_eq!(
        s.get::<_, Vec<Vec<u8>>>(MESSAGE_SECRETS, &3u8).unwrap(),
        Some(value.clone())
    );
    s.put_message_secrets(MESSAGE_SECRETS, &3u8, &value)
        .unwrap();
    // Read back within the run (from its writes), and after it.
    assert_eq!(
        s.get::<_, Vec<Vec<u8>>>(MESSAGE_SECRETS, &3u8).unwrap(),
        Some(value.clone())
    );
    let c = take(s);
    kv.apply(c);
    assert_eq!(kv.get(&row).unwrap().unwrap()[0], chunks::HEADER);
    let s = MlsStorage::new(&kv);
    assert_eq!(
        s.get::<_, Vec<Vec<u8>>>(MESSAGE_SECRETS, &3u8).unwrap(),
        Some(value)
    );
}

#[test]
fn a_missing_or_damaged_chunk_is_an_error() {
    let mut kv = MemoryKv::new();
    let s = MlsStorage::new(&kv);
    s.put_message_secrets(MESSAGE_SECRETS, &4u8, &secrets(600, 3))
        .unwrap();
    let c = take(s);
    kv.apply(c);
    let row = MlsStorage::row_key(MESSAGE_SECRETS, &4u8).unwrap();
    let chunk =
        kv.0.keys()
            .find(|k| k.starts_with(&row) && **k != row)
            .unwrap()
            .clone();
    let mut damaged = kv.clone();
    damaged.0.insert(chunk.clone(), vec![0; 600]);
    let s = MlsStorage::new(&damaged);
    assert!(matches!(
        s.get::<_, Vec<Vec<u8>>>(MESSAGE_SECRETS, &4u8),
        Err(MlsStorageError::Serde(_))
    ));
    kv.0.remove(&chunk);
    let s = MlsStorage::new(&kv);
    assert!(matches!(
        s.get::<_, Vec<Vec<u8>>>(MESSAGE_SECRETS, &4u8),
        Err(MlsStorageError::Serde(_))
    ));
}
