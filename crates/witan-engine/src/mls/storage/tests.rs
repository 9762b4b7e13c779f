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

/// A value shaped like a secret tree: a long list of optional secrets.
fn tree(tag: u8) -> Vec<Option<Vec<u8>>> {
    (0..40u8)
        .map(|i| (i % 5 != 0).then(|| vec![i ^ tag; 32]))
        .collect()
}

/// Runs `f` on a storage over `kv` and applies what it wrote; returns the keys written.
fn run(kv: &mut MemoryKv, f: impl FnOnce(&MlsStorage)) -> Vec<Vec<u8>> {
    let s = MlsStorage::new(kv);
    f(&s);
    let changes = s.take_changes();
    drop(s);
    let keys = changes.iter().map(|(k, _)| k.clone()).collect();
    kv.apply(changes);
    keys
}

#[test]
fn message_secrets_too_short_to_cut_stay_one_row_and_longer_ones_become_pieces() {
    let head = b"mls1/message_secrets/g".to_vec();
    let mut kv = MemoryKv::new();
    kv.apply(vec![(head.clone(), Some(codec::to_vec(&tree(0)).unwrap()))]);
    let read = |kv: &MemoryKv| {
        MlsStorage::new(kv)
            .read_secret_rows::<Vec<Option<Vec<u8>>>>(&head)
            .unwrap()
    };
    assert_eq!(read(&kv), Some(tree(0)));
    let written = run(&mut kv, |s| {
        s.write_secret_rows(head.clone(), &tree(1)).unwrap()
    });
    assert_eq!(
        written.len(),
        1 + 5,
        "a head and five pieces of up to eight elements"
    );
    assert_eq!(read(&kv), Some(tree(1)));
    assert_eq!(kv.0.len(), 6);
    // Fewer pieces than before: the surplus rows go.
    let short: Vec<Option<Vec<u8>>> = tree(2).into_iter().take(8).collect();
    run(&mut kv, |s| {
        s.write_secret_rows(head.clone(), &short).unwrap()
    });
    // Nothing to cut: one row again, whole, the way small groups always store it.
    assert_eq!(kv.0.len(), 1);
    assert_eq!(kv.0.get(&head).and_then(|v| v.first()), Some(&codec::MAGIC));
    assert_eq!(
        MlsStorage::new(&kv).read_secret_rows(&head).unwrap(),
        Some(short)
    );
}

#[test]
fn a_memory_the_rows_moved_past_costs_a_full_write_never_a_wrong_one() {
    let head = b"mls1/message_secrets/g".to_vec();
    let mut kv = MemoryKv::new();
    let mut memory = None;
    run(&mut kv, |s| {
        let ((), m) = s.with_secret_memory(None, None, false, || {
            s.write_secret_rows(head.clone(), &tree(0)).unwrap()
        });
        memory = m;
    });
    // One element changed: with the memory, the head and one piece.
    let mut next = tree(0);
    next[12] = Some(vec![7; 40]);
    let mut kept = kv.clone();
    let memory2 = memory.clone();
    let written = run(&mut kept, |s| {
        s.with_secret_memory(memory2, None, false, || {
            s.write_secret_rows(head.clone(), &next).unwrap()
        });
    });
    assert_eq!(written.len(), 2);
    // Someone else wrote the secrets meanwhile (no memory): the old memory is not trusted.
    run(&mut kv, |s| {
        s.write_secret_rows(head.clone(), &tree(3)).unwrap()
    });
    let written = run(&mut kv, |s| {
        s.with_secret_memory(memory, None, false, || {
            s.write_secret_rows(head.clone(), &next).unwrap()
        });
    });
    assert_eq!(written.len(), 6);
    assert_eq!(
        MlsStorage::new(&kv).read_secret_rows(&head).unwrap(),
        Some(next)
    );
}

#[test]
fn a_damaged_head_or_a_missing_piece_is_an_error_and_a_delete_takes_every_piece() {
    let head = b"mls1/message_secrets/g".to_vec();
    let mut kv = MemoryKv::new();
    run(&mut kv, |s| {
        s.write_secret_rows(head.clone(), &tree(0)).unwrap()
    });
    let read = |kv: &MemoryKv| MlsStorage::new(kv).read_secret_rows::<Vec<Option<Vec<u8>>>>(&head);
    let mut missing = kv.clone();
    let piece = missing.0.keys().nth(3).cloned().unwrap();
    missing.0.remove(&piece);
    assert!(matches!(read(&missing), Err(MlsStorageError::Serde(_))));
    for bad in [
        vec![0xB3],
        vec![0xB3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        vec![0xB3; 13],
    ] {
        let mut damaged = kv.clone();
        damaged.0.insert(head.clone(), bad);
        assert!(matches!(read(&damaged), Err(MlsStorageError::Serde(_))));
        let s = MlsStorage::new(&damaged);
        assert!(s.write_secret_rows(head.clone(), &tree(1)).is_err());
        assert!(!s.has_changes(), "a refused write changes nothing");
    }
    run(&mut kv, |s| s.delete_secret_rows(head.clone()).unwrap());
    assert!(kv.0.is_empty());
    assert_eq!(read(&kv).unwrap(), None);
}

#[test]
fn row_keys_keep_their_layout_and_a_groups_secrets_row_is_the_one_openmls_writes() {
    let id = [7u8; 32];
    let expected = format!(
        "mls1/message_secrets/{}",
        serde_json::to_string(&GroupId::from_slice(&id)).unwrap()
    );
    assert_eq!(
        MlsStorage::message_secrets_row(&id).unwrap(),
        expected.into_bytes()
    );
    // Through OpenMLS's own write: the row it lands in is the one deferral compares with.
    let kv = MemoryKv::new();
    let s = MlsStorage::new(&kv);
    s.put_message_secrets(MESSAGE_SECRETS, &GroupId::from_slice(&id), &vec![1u8; 8])
        .unwrap();
    let row = MlsStorage::message_secrets_row(&id).unwrap();
    assert!(s.raw_get(&row).unwrap().is_some());
    assert_eq!(
        MlsStorage::row_key("l", &1u8).unwrap(),
        b"mls1/l/1".to_vec()
    );
}
