//! Tests of the row codec: the data model, names, raw bytes, lists, JSON, bad input.
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bytes {
    vec: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Unit,
    Newtype(u32),
    Tuple(u8, String),
    Struct { a: i64, b: Option<Bytes> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Newtype(Vec<u16>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UnitStruct;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    flag: bool,
    small: u8,
    numbers: (u16, u32, u64, u128, i8, i16, i32, i64, i128),
    floats: (f32, f64),
    letter: char,
    text: String,
    empty: Vec<u8>,
    bytes: Bytes,
    nested: Vec<Vec<u8>>,
    kinds: Vec<Kind>,
    by_id: BTreeMap<u32, Kind>,
    by_name: HashMap<String, Option<Newtype>>,
    tuple_key: BTreeMap<(u8, u8), ()>,
    unit: UnitStruct,
    maybe: Option<Option<bool>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    skipped: Option<u8>,
    mixed: Vec<serde_json::Value>,
}

fn sample() -> Everything {
    Everything {
        flag: true,
        small: 200,
        numbers: (
            65_535,
            4_000_000_000,
            u64::MAX,
            u128::MAX,
            -128,
            -3,
            i32::MIN,
            i64::MIN,
            -1,
        ),
        floats: (1.5, -2.25e300),
        letter: 'é',
        text: "gärten".into(),
        empty: Vec::new(),
        bytes: Bytes {
            vec: (0..=255).collect(),
        },
        nested: vec![vec![1, 2], vec![], vec![255]],
        kinds: vec![
            Kind::Unit,
            Kind::Newtype(7),
            Kind::Tuple(1, "x".into()),
            Kind::Struct {
                a: -9,
                b: Some(Bytes { vec: vec![9; 40] }),
            },
            Kind::Struct { a: 0, b: None },
        ],
        by_id: [(1, Kind::Unit), (2, Kind::Newtype(3))].into(),
        by_name: [
            ("a".to_string(), Some(Newtype(vec![1, 300]))),
            ("b".to_string(), None),
        ]
        .into(),
        tuple_key: [((1, 2), ())].into(),
        unit: UnitStruct,
        maybe: Some(None),
        skipped: None,
        mixed: vec![
            serde_json::json!(1),
            serde_json::json!("two"),
            serde_json::json!([3, 300, -4]),
            serde_json::json!({"k": null}),
        ],
    }
}

#[test]
fn round_trips_the_whole_data_model() {
    let value = sample();
    let bytes = to_vec(&value).unwrap();
    assert!(is_encoded(&bytes));
    assert_eq!(from_slice::<Everything>(&bytes).unwrap(), value);
    let mut with_skipped = value.clone();
    with_skipped.skipped = Some(4);
    let bytes = to_vec(&with_skipped).unwrap();
    assert_eq!(from_slice::<Everything>(&bytes).unwrap(), with_skipped);
}

#[test]
fn decodes_into_a_self_describing_value_like_json() {
    // JSON has no numbers beyond 64 bits.
    let mut value = sample();
    value.numbers.3 = 5;
    // JSON turns map keys into strings; the codec keeps them as they are, so a map with
    // other keys is no JSON object.
    value.by_id.clear();
    value.tuple_key.clear();
    let from_codec: serde_json::Value = from_slice(&to_vec(&value).unwrap()).unwrap();
    assert_eq!(from_codec, serde_json::to_value(&value).unwrap());
    value.by_id.insert(1, Kind::Unit);
    assert!(from_slice::<serde_json::Value>(&to_vec(&value).unwrap()).is_err());
}

#[test]
fn repeated_names_are_written_once() {
    let many: Vec<Kind> = (0..100).map(|a| Kind::Struct { a, b: None }).collect();
    let bytes = to_vec(&many).unwrap();
    let occurrences = bytes.windows(6).filter(|w| w == b"Struct").count();
    assert_eq!(occurrences, 1);
    assert_eq!(from_slice::<Vec<Kind>>(&bytes).unwrap(), many);
    // A reference to a name never defined is an error.
    assert!(from_slice::<String>(&[MAGIC, NAME_REF, 3, 0]).is_err());
}

#[test]
fn byte_strings_are_stored_raw() {
    let value = Bytes { vec: vec![7; 1000] };
    let bytes = to_vec(&value).unwrap();
    assert!(bytes.len() < 1020, "{}", bytes.len());
    assert!(serde_json::to_vec(&value).unwrap().len() > 2000);
}

#[test]
fn a_sequence_that_starts_with_bytes_and_goes_on_otherwise_still_round_trips() {
    let value = vec![
        serde_json::json!(1),
        serde_json::json!(2),
        serde_json::json!("three"),
    ];
    // `Value` numbers are u64, not u8: build a sequence whose first elements are u8.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum E {
        Byte(u8),
        Text(String),
    }
    let mixed = vec![E::Byte(1), E::Byte(2), E::Text("three".into())];
    let decoded: Vec<serde_json::Value> = from_slice(&to_vec(&mixed).unwrap()).unwrap();
    assert_eq!(decoded, value);
    let back: Vec<E> = from_slice(&to_vec(&mixed).unwrap()).unwrap();
    assert_eq!(back, mixed);
}

#[test]
fn json_transcodes_to_the_value_json_decodes_to() {
    let mut value = sample();
    value.numbers.3 = 5; // JSON has no numbers beyond 64 bits,
    value.tuple_key.clear(); // no keys but strings,
    value.maybe = Some(Some(true)); // and no Some(None).
    let json = serde_json::to_vec(&value).unwrap();
    assert_eq!(
        from_slice::<Everything>(&transcode_json(&json).unwrap()).unwrap(),
        value
    );
    assert!(transcode_json(b"{").is_err());
    let transcoded = |json: &[u8]| transcode_json(json).unwrap();
    assert!(from_slice::<BTreeMap<u8, ()>>(&transcoded(br#"{"x": null}"#)).is_err());
    assert!(from_slice::<BTreeMap<u8, ()>>(&transcoded(br#"{"300": null}"#)).is_err());
    assert_eq!(
        from_slice::<BTreeMap<i16, ()>>(&transcoded(br#"{"-3": null}"#)).unwrap(),
        [(-3, ())].into()
    );
}

#[test]
fn list_rows_split_and_join() {
    let items = vec![Bytes { vec: vec![1, 2] }, Bytes { vec: vec![] }];
    let encoded: Vec<Vec<u8>> = items.iter().map(|i| to_item(i).unwrap()).collect();
    let refs: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    let row = join_list(&refs).unwrap();
    assert_eq!(from_slice::<Vec<Bytes>>(&row).unwrap(), items);
    assert_eq!(split_list(&row).unwrap(), refs);
    // Elements stand alone: no name ids across them.
    assert!(!encoded[1].contains(&NAME_REF));
    assert!(split_list(&to_vec(&5u32).unwrap()).is_err());
    assert!(split_list(b"[1]").is_err());
    // A byte string is a list too.
    assert_eq!(
        split_list(&to_vec(&vec![7u8, 8]).unwrap()).unwrap().len(),
        2
    );
}

#[test]
fn bad_input_is_an_error_never_a_panic() {
    let good = to_vec(&sample()).unwrap();
    assert!(from_slice::<Everything>(&[]).is_err());
    assert!(from_slice::<Everything>(b"{\"json\":1}").is_err());
    for cut in 0..good.len() {
        assert!(
            from_slice::<Everything>(&good[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut flipped = good.clone();
    for i in 1..flipped.len() {
        flipped[i] ^= 0xFF;
        let _ = from_slice::<Everything>(&flipped);
        let _ = from_slice::<serde_json::Value>(&flipped);
        flipped[i] ^= 0xFF;
    }
    let mut trailing = good;
    trailing.push(0);
    assert!(from_slice::<Everything>(&trailing).is_err());
    // Huge claimed lengths do not allocate.
    let huge = [MAGIC, SEQ, 0xFF, 0xFF, 0xFF, 0xFF];
    assert!(from_slice::<Vec<u64>>(&huge).is_err());
    // Deep nesting is refused.
    let mut deep = vec![MAGIC];
    for _ in 0..10_000 {
        deep.extend_from_slice(&[SEQ, 1, 0, 0, 0]);
    }
    deep.push(UNIT);
    assert!(from_slice::<serde_json::Value>(&deep).is_err());
}

#[test]
fn cuts_fall_between_elements_of_long_sequences_and_the_pieces_join_to_the_value() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Leaf {
        secret: Vec<u8>,
        generation: u32,
    }
    let leaves: Vec<Option<Leaf>> = (0..80u32)
        .map(|i| {
            (i % 3 != 0).then(|| Leaf {
                secret: vec![i as u8; 32],
                generation: i,
            })
        })
        .collect();
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Tree {
        bytes: Vec<u8>,
        nested: Vec<Vec<u32>>,
        leaves: Vec<Option<Leaf>>,
        short: Vec<u16>,
    }
    // A long list inside a list is not cut: only outermost sequences are.
    let value = Tree {
        bytes: vec![7u8; 100],
        nested: vec![vec![0u32; 40]; 2],
        leaves,
        short: vec![1, 2, 3],
    };
    let super::Encoded { bytes, cuts, .. } =
        super::to_vec_with_cuts(&value, Fields::Named, 0).unwrap();
    assert_eq!(bytes, super::to_vec(&value).unwrap());
    // 80 leaves, a cut before every 8th: 9 cuts; the bytes, the nested and short lists: none.
    assert_eq!(cuts.len(), 9);
    assert!(cuts.windows(2).all(|w| w[0] < w[1]));
    assert!(
        cuts[0] > 100 + 2 * 40 * 5,
        "no cut inside the byte string or the nested lists"
    );
    // An element that grows moves the later cuts but leaves the later pieces as they were.
    let mut grown = value;
    if let Some(Some(leaf)) = grown.leaves.get_mut(2) {
        leaf.secret.extend_from_slice(&[9; 10]);
    }
    let super::Encoded {
        bytes: bytes2,
        cuts: cuts2,
        ..
    } = super::to_vec_with_cuts(&grown, Fields::Named, 0).unwrap();
    assert_eq!(cuts2.len(), 9);
    assert_eq!(bytes[..cuts[0]].len() + 10, bytes2[..cuts2[0]].len());
    for i in 0..9 {
        let end = |c: &[usize], b: &[u8]| c.get(i + 1).copied().unwrap_or(b.len());
        assert_eq!(
            &bytes[cuts[i]..end(&cuts, &bytes)],
            &bytes2[cuts2[i]..end(&cuts2, &bytes2)]
        );
    }
    let back: Tree = super::from_slice(&bytes2).unwrap();
    assert_eq!(back, grown);
}

#[test]
fn a_sequence_is_cut_into_at_most_16_pieces_of_at_least_8_elements() {
    assert_eq!(super::cut_every(8), 0);
    assert_eq!(super::cut_every(9), 8);
    assert_eq!(super::cut_every(16), 8);
    assert_eq!(super::cut_every(128), 8);
    assert_eq!(super::cut_every(129), 9);
    assert_eq!(super::cut_every(1000), 63);
    for len in [9usize, 16, 100, 128, 1000, 5000] {
        assert!(len.div_ceil(super::cut_every(len)) <= 16);
    }
}

fn contains(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

#[test]
fn structs_by_position_round_trip_without_their_field_names() {
    let mut value = sample();
    value.skipped = Some(4);
    let bytes = to_vec_with_cuts(&value, Fields::ByPosition, 0)
        .unwrap()
        .bytes;
    assert_eq!(from_slice::<Everything>(&bytes).unwrap(), value);
    let named = to_vec(&value).unwrap();
    assert!(bytes.len() < named.len());
    for field in ["flag", "small", "numbers", "tuple_key", "vec"] {
        assert!(
            contains(&named, field) && !contains(&bytes, field),
            "{field}"
        );
    }
    // Enum variants keep their names: they say which variant a value is.
    assert!(contains(&bytes, "Struct") && contains(&bytes, "Newtype"));
    // Read as a self-describing value, a struct by position is the list of its values.
    let leaf = Kind::Struct { a: 5, b: None };
    let bytes = to_vec_with_cuts(&leaf, Fields::ByPosition, 0)
        .unwrap()
        .bytes;
    let read: serde_json::Value = from_slice(&bytes).unwrap();
    assert_eq!(read, serde_json::json!({"Struct": [5, null]}));
    assert_eq!(from_slice::<Kind>(&bytes).unwrap(), leaf);
}

#[test]
fn a_struct_that_leaves_a_field_out_is_not_written_by_position() {
    // `skipped` is None: its field is left out, and the ones after it would shift.
    assert!(to_vec_with_cuts(&sample(), Fields::ByPosition, 0).is_err());
    assert!(to_vec_with_cuts(&sample(), Fields::Named, 0).is_ok());
}

#[test]
fn a_struct_by_position_with_fields_missing_extra_or_cut_short_is_an_error() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pair {
        a: u8,
        b: Option<u32>,
    }
    let pair = Pair { a: 1, b: Some(2) };
    let bytes = to_vec_with_cuts(&pair, Fields::ByPosition, 0)
        .unwrap()
        .bytes;
    assert_eq!(bytes[..4], [MAGIC, FIELDS, 2, U8]);
    assert_eq!(from_slice::<Pair>(&bytes).unwrap(), pair);
    for cut in 0..bytes.len() {
        assert!(from_slice::<Pair>(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    // One field short, one too many, a count beyond the input.
    assert!(from_slice::<Pair>(&[MAGIC, FIELDS, 1, U8, 1]).is_err());
    let mut three = bytes.clone();
    three[2] = 3;
    three.extend_from_slice(&[U8, 9]);
    assert!(from_slice::<Pair>(&three).is_err());
    assert!(from_slice::<Pair>(&[MAGIC, FIELDS, 200, U8, 1]).is_err());
    assert!(from_slice::<serde_json::Value>(&[MAGIC, FIELDS, 200, U8, 1]).is_err());
    // A map is not a struct by position, nor the other way round.
    assert!(from_slice::<BTreeMap<String, u8>>(&bytes).is_err());
}
