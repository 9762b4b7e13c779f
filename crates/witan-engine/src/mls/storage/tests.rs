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
