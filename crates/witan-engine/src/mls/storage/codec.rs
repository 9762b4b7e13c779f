//! The binary encoding of OpenMLS storage values ("row codec").
//!
//! OpenMLS hands its storage provider serde values. JSON spells a byte string (keys, secrets,
//! signatures — most of a ratchet tree) as an array of decimal numbers: about 3.6 characters
//! per byte, parsed one number at a time. This codec keeps serde's JSON data model — structs
//! and maps with their keys, enums by variant name (a unit variant as its name, the others as
//! a one-entry map), `Option` and newtypes as JSON has them — so every type that round-trips
//! through JSON round-trips here, and a field added to an OpenMLS type later is read the same
//! way. It differs where it matters: a sequence of `u8` is stored as raw bytes, numbers in
//! fixed width, strings with a length prefix.
//!
//! A value starts with [`MAGIC`], a byte that never starts a JSON text, so rows written as
//! JSON by earlier versions are still read (see `MlsStorage::get`).
//!
//! Encoding, after the magic byte, one tag per value:
//! `NONE` | `SOME` v | `UNIT` | `FALSE` | `TRUE` | `U8` b | `U16`/`U32`/`U64`/`U128` le |
//! `I8`..`I128` le | `F32`/`F64` le | `CHAR` u32 le | `STR` len utf8 | `BYTES` len raw |
//! `SEQ` n v* | `MAP` n (k v)* | `NAME` len utf8 | `NAME_REF` id, where len and n are u32 le
//! and id is u16 le. A struct field or enum variant name is a `NAME` the first time it occurs
//! in a value — it gets the next id, from 0 — and a `NAME_REF` to that id after, so repeated
//! structs (the leaves of a tree) do not repeat their field names. A name reads as a string.
//! The elements of a list row ([`join_list`]) are written without names ids, so that each
//! element stands alone.
//!
//! Decoding never panics and never allocates more than the input can fill; nesting is bounded
//! by [`MAX_DEPTH`].

use super::de::Decoder;
use super::ser::Encoder;

/// First byte of every value in this encoding (not a valid first byte of JSON).
pub const MAGIC: u8 = 0xB1;
/// Deepest nesting accepted when decoding.
pub const MAX_DEPTH: usize = 128;

pub(super) const NONE: u8 = 0x00;
pub(super) const SOME: u8 = 0x01;
pub(super) const UNIT: u8 = 0x02;
pub(super) const FALSE: u8 = 0x03;
pub(super) const TRUE: u8 = 0x04;
pub(super) const U8: u8 = 0x05;
pub(super) const U16: u8 = 0x06;
pub(super) const U32: u8 = 0x07;
pub(super) const U64: u8 = 0x08;
pub(super) const U128: u8 = 0x09;
pub(super) const I8: u8 = 0x0A;
pub(super) const I16: u8 = 0x0B;
pub(super) const I32: u8 = 0x0C;
pub(super) const I64: u8 = 0x0D;
pub(super) const I128: u8 = 0x0E;
pub(super) const F32: u8 = 0x0F;
pub(super) const F64: u8 = 0x10;
pub(super) const CHAR: u8 = 0x11;
pub(super) const STR: u8 = 0x12;
pub(super) const BYTES: u8 = 0x13;
pub(super) const SEQ: u8 = 0x14;
pub(super) const MAP: u8 = 0x15;
pub(super) const NAME: u8 = 0x16;
pub(super) const NAME_REF: u8 = 0x17;

/// Errors of the codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row codec: {0}")]
pub struct CodecError(pub String);

impl serde::ser::Error for CodecError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CodecError(msg.to_string())
    }
}

impl serde::de::Error for CodecError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CodecError(msg.to_string())
    }
}

/// Encodes `value`, magic byte first.
pub fn to_vec<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut encoder = Encoder::with_magic();
    value.serialize(&mut encoder)?;
    Ok(encoder.into_bytes())
}

/// Decodes a value written by [`to_vec`]; the whole input must be used.
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let rest = match bytes.split_first() {
        Some((&MAGIC, rest)) => rest,
        _ => return Err(CodecError("not a row-codec value".into())),
    };
    let mut decoder = Decoder::new(rest);
    let value = T::deserialize(&mut decoder)?;
    decoder.finish()?;
    Ok(value)
}

/// Decodes a value stored as JSON by versions before this codec. The JSON is transcoded
/// (through `serde_json::Value`) rather than decoded straight into `T`, so that the JSON
/// decoder is not compiled once more for every stored type; integers written as strings —
/// JSON map keys — read as integers.
pub fn from_legacy_json<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, CodecError> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| CodecError(format!("legacy JSON: {e}")))?;
    from_slice(&to_vec(&value)?)
}

/// Encodes one element of a list row (no magic byte): see [`join_list`].
pub fn to_item<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut encoder = Encoder::bare();
    value.serialize(&mut encoder)?;
    Ok(encoder.into_bytes())
}

/// A list row: a sequence of elements encoded by [`to_item`]; it decodes as a `Vec` of them.
pub fn join_list(items: &[&[u8]]) -> Result<Vec<u8>, CodecError> {
    let count = u32::try_from(items.len()).map_err(|_| CodecError("list too long".into()))?;
    let mut out = vec![MAGIC, SEQ];
    out.extend_from_slice(&count.to_le_bytes());
    for item in items {
        out.extend_from_slice(item);
    }
    Ok(out)
}

/// The encoded elements of a list row (a value that is a sequence).
pub fn split_list(bytes: &[u8]) -> Result<Vec<&[u8]>, CodecError> {
    match bytes.split_first() {
        Some((&MAGIC, rest)) => super::de::split_seq(rest),
        _ => Err(CodecError("not a row-codec value".into())),
    }
}

/// Whether `bytes` is a value of this codec (rather than legacy JSON).
pub fn is_encoded(bytes: &[u8]) -> bool {
    bytes.first() == Some(&MAGIC)
}

#[cfg(test)]
mod tests {
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
    fn legacy_json_reads_like_json() {
        let mut value = sample();
        value.numbers.3 = 5; // JSON has no numbers beyond 64 bits,
        value.tuple_key.clear(); // no keys but strings,
        value.maybe = Some(Some(true)); // and no Some(None).
        let json = serde_json::to_vec(&value).unwrap();
        assert_eq!(from_legacy_json::<Everything>(&json).unwrap(), value);
        assert!(from_legacy_json::<Everything>(b"{").is_err());
        assert!(from_legacy_json::<BTreeMap<u8, ()>>(br#"{"x": null}"#).is_err());
        assert!(from_legacy_json::<BTreeMap<u8, ()>>(br#"{"300": null}"#).is_err());
        assert_eq!(
            from_legacy_json::<BTreeMap<i16, ()>>(br#"{"-3": null}"#).unwrap(),
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
}
