//! Property tests of the row codec, with serde_json as the reference for serde's data model:
//! every value round-trips (struct fields named or by position), JSON written by an earlier version reads back as the same value
//! once transcoded, and arbitrary bytes decode or fail without panicking, stably.
use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

/// Shapes OpenMLS stores: byte strings, nested structs, enums of every kind, options, maps
/// keyed by integers and strings, fixed arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    leaves: Vec<Leaf>,
    by_epoch: BTreeMap<u64, Vec<u8>>,
    names: BTreeMap<String, Option<i32>>,
    flag: bool,
    tail: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Leaf {
    index: u32,
    key: Vec<u8>,
    parent: Option<u64>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Blank,
    Key(Vec<u8>),
    Pair(u16, String),
    Node { hash: [u8; 4], weight: i64 },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Blank),
        vec(any::<u8>(), 0..40).prop_map(Kind::Key),
        (any::<u16>(), "[a-zé ]{0,6}").prop_map(|(n, s)| Kind::Pair(n, s)),
        (any::<[u8; 4]>(), any::<i64>()).prop_map(|(hash, weight)| Kind::Node { hash, weight }),
    ]
}

fn leaf() -> impl Strategy<Value = Leaf> {
    (
        any::<u32>(),
        vec(any::<u8>(), 0..48),
        any::<Option<u64>>(),
        kind(),
    )
        .prop_map(|(index, key, parent, kind)| Leaf {
            index,
            key,
            parent,
            kind,
        })
}

fn row() -> impl Strategy<Value = Row> {
    (
        vec(leaf(), 0..8),
        btree_map(any::<u64>(), vec(any::<u8>(), 0..16), 0..4),
        btree_map("[a-z]{0,4}", any::<Option<i32>>(), 0..4),
        any::<bool>(),
        vec(vec(any::<u8>(), 0..8), 0..4),
    )
        .prop_map(|(leaves, by_epoch, names, flag, tail)| Row {
            leaves,
            by_epoch,
            names,
            flag,
            tail,
        })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Quarters: exact in binary and in decimal, so JSON text keeps them exactly.
        (-4000i32..4000).prop_map(|n| Value::from(f64::from(n) / 4.0)),
        "[a-z0-9\"\\\\]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            btree_map("[a-z]{0,4}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn typed_values_round_trip_and_json_rows_migrate_to_them(row in row()) {
        let bytes = to_vec(&row).unwrap();
        prop_assert!(is_encoded(&bytes));
        prop_assert_eq!(from_slice::<Row>(&bytes).unwrap(), row.clone());
        // Written with struct fields by position, the same value reads back, in fewer bytes.
        let by_position = to_vec_with_cuts(&row, Fields::ByPosition, 0).unwrap().bytes;
        prop_assert_eq!(from_slice::<Row>(&by_position).unwrap(), row.clone());
        prop_assert!(by_position.len() < bytes.len());
        // A row written as JSON by an earlier version reads back the same once migrated.
        let json = serde_json::to_vec(&row).unwrap();
        prop_assert_eq!(from_slice::<Row>(&transcode_json(&json).unwrap()).unwrap(), row);
    }

    #[test]
    fn any_json_value_round_trips(value in json_value()) {
        prop_assert_eq!(from_slice::<Value>(&to_vec(&value).unwrap()).unwrap(), value.clone());
        let json = serde_json::to_vec(&value).unwrap();
        prop_assert_eq!(from_slice::<Value>(&transcode_json(&json).unwrap()).unwrap(), value);
    }

    #[test]
    fn arbitrary_bytes_decode_or_fail_and_what_decodes_is_stable(
        body in vec(any::<u8>(), 0..256),
    ) {
        let bytes = [&[MAGIC][..], &body].concat();
        if let Ok(value) = from_slice::<Value>(&bytes) {
            let again = to_vec(&value).unwrap();
            prop_assert_eq!(from_slice::<Value>(&again).unwrap(), value);
        }
        // Typed decoding of the same bytes may fail, never panic.
        let _ = from_slice::<Row>(&bytes);
        let _ = split_list(&bytes);
    }
}
