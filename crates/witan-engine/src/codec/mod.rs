//! The binary encoding of stored values ("row codec"): OpenMLS storage values and, until the
//! engine has a versioned schema of its own, the engine's conversation state.
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
//! A value starts with [`MAGIC`], a byte that never starts a JSON text, which is how rows
//! written as JSON by earlier versions are told apart (and migrated once: [`transcode_json`]).
//! The format has no version of its own: the magic byte names it, and a different encoding
//! would need another. `FIELDS` and `NAMES` were added later; a reader from before them
//! refuses such a value as an unknown tag (it never misreads one).
//!
//! Encoding, after the magic byte (and an optional table of names, below), one tag per value:
//! `NONE` | `SOME` v | `UNIT` | `FALSE` | `TRUE` | `U8` b | `U16`/`U32`/`U64`/`U128` le |
//! `I8`..`I128` le | `F32`/`F64` le | `CHAR` u32 le | `STR` len utf8 | `BYTES` len raw |
//! `SEQ` n v* | `MAP` n (k v)* | `NAME` len utf8 | `NAME_REF` id | `FIELDS` c v*, where len
//! and n are u32 le, id is u16 le and c is one byte. A struct field or enum variant name is a
//! `NAME` the first time it occurs in a value — it gets the next id, from 0 — and a
//! `NAME_REF` to that id after, so repeated structs (the leaves of a tree) do not repeat
//! their field names. A name reads as a string. A struct is a `MAP` of its field names to
//! its values, or, where the writer asks for it ([`Fields::ByPosition`]), `FIELDS`: its c
//! values in declaration order, without names — read back as a sequence, which a derived
//! struct accepts in that order. A group's message secrets are written so (they are
//! encoded after every message, and the names were a fifth of their bytes); every other
//! value is written with names.
//! The elements of a list row ([`join_list`]) are written without names ids, so that each
//! element stands alone. A by-position encoding, whose list elements a later encoding may
//! copy (`pieces.rs`), writes no `NAME` inside the value: its names come first, as a table
//! (`NAMES` count, then each name's len and utf8, count u16 le), and the value refers to
//! them by id — a copy keeps the ids of the encoding it copies from.
//!
//! Decoding never panics and never allocates more than the input can fill; nesting is bounded
//! by [`MAX_DEPTH`]. A corrupted row is input too: `fuzz/stored_state` fuzzes decoding, and
//! `property_tests.rs` checks the codec against serde_json.
//!
//! Why not a standard format: OpenMLS supports only self-describing formats for its storage
//! (its join configuration is read through `#[serde(untagged)]`, which postcard and bincode
//! refuse), and the self-describing ones were measured in witan's bench in place of this
//! codec: CBOR (ciborium) writes byte strings as arrays of small integers (+49 % row bytes)
//! and costs 9–14 % on the push wake-up, JSON up to 21 % CPU (docs/bench.md).

mod de;
mod names;
mod pieces;
mod ser;

use de::Decoder;
pub use pieces::{to_vec_like, to_vec_reusing};
pub use ser::Encoded;
use ser::Encoder;

/// First byte of every value in this encoding (not a valid first byte of JSON).
pub const MAGIC: u8 = 0xB1;
/// Deepest nesting accepted when decoding.
pub const MAX_DEPTH: usize = 128;

pub(super) const NONE: u8 = 0x00;
/// `None` as the codec writes it: this one byte.
pub const NONE_TAG: u8 = NONE;
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
pub(super) const FIELDS: u8 = 0x18;
pub(super) const NAMES: u8 = 0x19;

/// Errors of the codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row codec: {0}")]
pub struct CodecError(String);

impl CodecError {
    /// An error saying `what`.
    pub fn new(what: impl Into<String>) -> Self {
        CodecError(what.into())
    }
}

impl serde::ser::Error for CodecError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CodecError::new(msg.to_string())
    }
}

impl serde::de::Error for CodecError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CodecError::new(msg.to_string())
    }
}

/// Encodes `value`, magic byte first.
pub fn to_vec<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut encoder = Encoder::with_magic();
    value.serialize(&mut encoder)?;
    Ok(encoder.into_bytes())
}

/// How an encoder writes a struct's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// As a map of field names to values, as JSON has them ([`to_vec`] always does).
    Named,
    /// By position, without names (`FIELDS`): smaller and faster, but read back only by the
    /// same struct with its fields in the same order, and refused (an error) for a struct
    /// that leaves a field out when it serializes.
    ByPosition,
}

/// Encodes `value` as [`to_vec`] does (struct fields as `fields` says), and says where the
/// bytes may be cut into pieces that change alone: before every [`cut_every`]-th element of
/// each long sequence that is not itself inside a sequence (not inside byte strings either).
/// The offsets ascend; the pieces joined are the value. The cuts follow the value's
/// structure, not its bytes, so an element that grows or shrinks changes its own piece and
/// moves the later ones without changing them. `capacity` is the length expected (room is
/// made for it at once), 0 if unknown.
pub fn to_vec_with_cuts<T: serde::Serialize + ?Sized>(
    value: &T,
    fields: Fields,
    capacity: usize,
) -> Result<Encoded, CodecError> {
    let mut encoder = Encoder::with_cuts(fields, capacity);
    value.serialize(&mut encoder)?;
    encoder.into_encoded().0
}

/// How many elements of a sequence of `len` go between cuts (0: it is not cut): a sequence
/// is cut into at most 16 pieces of at least 8 elements, so that rewriting or reading it
/// whole stays a few dozen rows, and a piece of a group of 16's secret tree (eight ratchets)
/// stays well inside a database page.
pub fn cut_every(len: usize) -> usize {
    if len <= 8 { 0 } else { len.div_ceil(16).max(8) }
}

/// Decodes a value written by [`to_vec`]; the whole input must be used.
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let rest = match bytes.split_first() {
        Some((&MAGIC, rest)) => rest,
        _ => return Err(CodecError::new("not a row-codec value")),
    };
    let mut decoder = Decoder::new(rest);
    decoder.names_table()?;
    let value = T::deserialize(&mut decoder)?;
    decoder.finish()?;
    Ok(value)
}

/// The value of a JSON text (a row written as JSON by versions before this codec) in this
/// codec: the one-time migration of such rows (`witan_store`'s schema version 5). It works
/// on any JSON, whatever type it was written from, because the codec keeps JSON's data
/// model; map keys that JSON wrote as strings of digits decode as integers (see
/// `de.rs`), as the JSON decoder reads them.
pub fn transcode_json(json: &[u8]) -> Result<Vec<u8>, CodecError> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| CodecError::new(format!("JSON: {e}")))?;
    to_vec(&value)
}

/// Encodes one element of a list row (no magic byte): see [`join_list`].
pub fn to_item<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut encoder = Encoder::bare();
    value.serialize(&mut encoder)?;
    Ok(encoder.into_bytes())
}

/// A list row: a sequence of elements encoded by [`to_item`]; it decodes as a `Vec` of them.
pub fn join_list(items: &[&[u8]]) -> Result<Vec<u8>, CodecError> {
    let count = u32::try_from(items.len()).map_err(|_| CodecError::new("list too long"))?;
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
        Some((&MAGIC, rest)) => de::split_seq(rest),
        _ => Err(CodecError::new("not a row-codec value")),
    }
}

/// Whether `bytes` is a value of this codec (rather than legacy JSON).
pub fn is_encoded(bytes: &[u8]) -> bool {
    bytes.first() == Some(&MAGIC)
}

#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod tests;
