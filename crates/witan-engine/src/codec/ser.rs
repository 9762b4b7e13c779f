//! The encoding half of the row codec (format: `codec.rs`): a serde `Serializer` writing into
//! a `Vec<u8>`. Counts of sequences and maps are patched in when they end, so serializers
//! that do not know their length up front work too. A sequence whose elements are all `u8`
//! is written as one `BYTES` string. An encoder may also note where its output can be cut
//! into rows (`codec::to_vec_with_cuts`).

use serde::ser::{self, Serialize};

use super::names::Names;
use super::{self as codec, CodecError};
use byte_catcher::ByteCatcher;
pub use lists::Encoded;
pub(super) use lists::Reusing;
use lists::{List, ListAt};

mod byte_catcher;
mod compound;
mod lists;

pub(super) struct Encoder {
    out: Vec<u8>,
    /// Field and variant names written so far and their ids (`None`: names are always
    /// written out, as list elements need).
    names: Option<Names>,
    /// Where the output may be cut (offsets of elements of long sequences), when asked for.
    cuts: Option<Vec<usize>>,
    /// Sequences open around the value being written (only outermost ones are cut).
    open_seqs: usize,
    /// Struct fields are written by position, without their names (`codec::FIELDS`).
    by_position: bool,
    /// The struct field whose value is being written (`""` inside a map).
    field: &'static str,
    /// The outermost lists written so far, when recorded (`codec::pieces`).
    lists: Option<Vec<List>>,
    /// The last encoding, when its unchanged list elements are copied (`codec::pieces`).
    reusing: Option<Reusing>,
    /// Names by id, when they are written as a table ahead of the value (`NAMES`) rather
    /// than where they first occur: then every element stands alone (`codec::pieces`).
    table: Option<Vec<&'static str>>,
}

impl Encoder {
    pub(super) fn with_magic() -> Encoder {
        Encoder::with_room(0)
    }

    /// An encoder with the magic byte written and room for `capacity` more bytes.
    fn with_room(capacity: usize) -> Encoder {
        let mut out = Vec::with_capacity(capacity.saturating_add(1));
        out.push(codec::MAGIC);
        Encoder {
            out,
            names: Some(Names::new()),
            cuts: None,
            open_seqs: 0,
            by_position: false,
            field: "",
            lists: None,
            reusing: None,
            table: None,
        }
    }

    /// An encoder noting where its output may be cut. By position, it also records its
    /// outermost lists and writes its names as a table ahead of the value: then every
    /// element stands alone and may be copied into a later encoding (`codec::pieces`).
    pub(super) fn with_cuts(fields: codec::Fields, capacity: usize) -> Encoder {
        let by_position = fields == codec::Fields::ByPosition;
        Encoder {
            cuts: Some(Vec::new()),
            by_position,
            lists: by_position.then(Vec::new),
            table: by_position.then(Vec::new),
            ..Encoder::with_room(capacity)
        }
    }

    pub(super) fn bare() -> Encoder {
        Encoder {
            out: Vec::new(),
            names: None,
            cuts: None,
            open_seqs: 0,
            by_position: false,
            field: "",
            lists: None,
            reusing: None,
            table: None,
        }
    }

    /// A field or variant name: `NAME` the first time (it gets the next id), `NAME_REF` id
    /// after that.
    fn name(&mut self, name: &'static str) -> Result<(), CodecError> {
        let Some(names) = &mut self.names else {
            return self.str(name);
        };
        let key = (name.as_ptr() as usize, name.len());
        if let Some(id) = names.get(key) {
            self.out.push(codec::NAME_REF);
            self.out.extend_from_slice(&id.to_le_bytes());
            return Ok(());
        }
        match u16::try_from(names.ids.len()) {
            Ok(id) => {
                names.ids.insert(key, id);
                if let Some(table) = &mut self.table {
                    table.push(name);
                    self.out.push(codec::NAME_REF);
                    self.out.extend_from_slice(&id.to_le_bytes());
                    return Ok(());
                }
                self.out.push(codec::NAME);
                self.len(name.len())?;
                self.out.extend_from_slice(name.as_bytes());
                Ok(())
            }
            Err(_) => self.str(name),
        }
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    #[inline]
    fn tag(&mut self, tag: u8) {
        self.out.push(tag);
    }

    fn len(&mut self, len: usize) -> Result<(), CodecError> {
        let len = u32::try_from(len).map_err(|_| CodecError::new("value too large"))?;
        self.out.extend_from_slice(&len.to_le_bytes());
        Ok(())
    }

    fn str(&mut self, s: &str) -> Result<(), CodecError> {
        self.tag(codec::STR);
        self.len(s.len())?;
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// Writes a container header with a count to patch; returns where the count is.
    #[inline]
    fn open(&mut self, tag: u8) -> usize {
        self.tag(tag);
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        at
    }

    #[inline]
    fn patch(&mut self, at: usize, count: usize) -> Result<(), CodecError> {
        let count = u32::try_from(count).map_err(|_| CodecError::new("value too large"))?;
        match self.out.get_mut(at..at + 4) {
            Some(slot) => {
                slot.copy_from_slice(&count.to_le_bytes());
                Ok(())
            }
            None => Err(CodecError::new("internal: bad container offset")),
        }
    }
}

/// A sequence being written: raw bytes while every element is a `u8`, tagged values after.
pub(super) struct Seq<'e> {
    enc: &'e mut Encoder,
    at: usize,
    count: usize,
    raw: bool,
    /// A cut may go before every `every`-th element (0: nowhere).
    every: usize,
    /// Raw bytes not yet in the output, and how many: a byte string reaches the encoder one
    /// byte at a time, and a store into the output vector per byte costs several times one
    /// into this run, written out whole.
    run: [u8; RUN],
    run_len: usize,
    /// The record of this sequence when it is an outermost list (`codec::pieces`).
    list: Option<ListAt>,
}

/// Bytes of a byte string gathered before they are written out.
const RUN: usize = 64;

impl<'e> Seq<'e> {
    #[inline]
    fn new(enc: &'e mut Encoder, at: usize, raw: bool, every: usize) -> Seq<'e> {
        Seq {
            enc,
            at,
            count: 0,
            raw,
            every,
            run: [0; RUN],
            run_len: 0,
            list: None,
        }
    }

    fn flush_run(&mut self) {
        let run = self.run.get(..self.run_len).unwrap_or_default();
        self.enc.out.extend_from_slice(run);
        self.run_len = 0;
    }

    /// Rewrites the raw bytes written so far as tagged `U8` values.
    fn leave_raw(&mut self) {
        self.raw = false;
        if self.count == 0 {
            return;
        }
        self.flush_run();
        let start = self.at + 4;
        let raw: Vec<u8> = self.enc.out.split_off(start);
        for b in raw {
            self.enc.out.extend_from_slice(&[codec::U8, b]);
        }
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        if self.raw {
            if let Ok(b) = value.serialize(ByteCatcher) {
                if self.run_len == RUN {
                    self.flush_run();
                }
                if let Some(slot) = self.run.get_mut(self.run_len) {
                    *slot = b;
                    self.run_len += 1;
                }
                self.count += 1;
                return Ok(());
            }
            self.leave_raw();
        }
        if self.every != 0
            && self.count != 0
            && self.count.is_multiple_of(self.every)
            && let Some(cuts) = &mut self.enc.cuts
        {
            cuts.push(self.enc.out.len());
        }
        if let Some(list) = self.list
            && self.enc.list_element(list, self.count)
        {
            self.count += 1;
            return Ok(());
        }
        value.serialize(&mut *self.enc)?;
        self.count += 1;
        Ok(())
    }

    #[inline]
    fn close(mut self) -> Result<(), CodecError> {
        self.flush_run();
        if let Some(list) = self.list {
            self.enc.close_list(list, self.count, self.raw);
        }
        if self.raw
            && self.count > 0
            && let Some(tag) = self.enc.out.get_mut(self.at - 1)
        {
            *tag = codec::BYTES;
        }
        self.enc.open_seqs = self.enc.open_seqs.saturating_sub(1);
        self.enc.patch(self.at, self.count)
    }
}

pub(super) struct Map<'e> {
    enc: &'e mut Encoder,
    at: usize,
    count: usize,
    /// A struct written by position: no field names, a one-byte count.
    by_position: bool,
}

impl<'e> Map<'e> {
    #[inline]
    fn new(enc: &'e mut Encoder, at: usize) -> Map<'e> {
        Map {
            enc,
            at,
            count: 0,
            by_position: false,
        }
    }

    /// A struct: by position if the encoder writes them so, else a map of names.
    #[inline]
    fn open_struct(enc: &'e mut Encoder) -> Map<'e> {
        if !enc.by_position {
            let at = enc.open(codec::MAP);
            return Map::new(enc, at);
        }
        enc.tag(codec::FIELDS);
        let at = enc.out.len();
        enc.out.push(0);
        Map {
            by_position: true,
            ..Map::new(enc, at)
        }
    }

    #[inline]
    fn close(self) -> Result<(), CodecError> {
        if !self.by_position {
            return self.enc.patch(self.at, self.count);
        }
        let count = u8::try_from(self.count)
            .map_err(|_| CodecError::new("a struct of more than 255 fields"))?;
        match self.enc.out.get_mut(self.at) {
            Some(slot) => {
                *slot = count;
                Ok(())
            }
            None => Err(CodecError::new("internal: bad struct offset")),
        }
    }
}

macro_rules! fixed {
    ($name:ident, $ty:ty, $tag:expr) => {
        #[inline]
        fn $name(self, v: $ty) -> Result<(), CodecError> {
            self.tag($tag);
            self.out.extend_from_slice(&v.to_le_bytes());
            Ok(())
        }
    };
}

impl<'e> ser::Serializer for &'e mut Encoder {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Seq<'e>;
    type SerializeTuple = Seq<'e>;
    type SerializeTupleStruct = Seq<'e>;
    type SerializeTupleVariant = Seq<'e>;
    type SerializeMap = Map<'e>;
    type SerializeStruct = Map<'e>;
    type SerializeStructVariant = Map<'e>;

    fn serialize_bool(self, v: bool) -> Result<(), CodecError> {
        self.tag(if v { codec::TRUE } else { codec::FALSE });
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), CodecError> {
        self.out.extend_from_slice(&[codec::U8, v]);
        Ok(())
    }

    fixed!(serialize_u16, u16, codec::U16);
    fixed!(serialize_u32, u32, codec::U32);
    fixed!(serialize_u64, u64, codec::U64);
    fixed!(serialize_u128, u128, codec::U128);
    fixed!(serialize_i8, i8, codec::I8);
    fixed!(serialize_i16, i16, codec::I16);
    fixed!(serialize_i32, i32, codec::I32);
    fixed!(serialize_i64, i64, codec::I64);
    fixed!(serialize_i128, i128, codec::I128);
    fixed!(serialize_f32, f32, codec::F32);
    fixed!(serialize_f64, f64, codec::F64);

    fn serialize_char(self, v: char) -> Result<(), CodecError> {
        self.tag(codec::CHAR);
        self.out.extend_from_slice(&u32::from(v).to_le_bytes());
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), CodecError> {
        self.str(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), CodecError> {
        self.tag(codec::BYTES);
        self.len(v.len())?;
        self.out.extend_from_slice(v);
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Result<(), CodecError> {
        self.tag(codec::NONE);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CodecError> {
        self.tag(codec::SOME);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), CodecError> {
        self.tag(codec::UNIT);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CodecError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CodecError> {
        self.name(variant)
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        let at = self.open(codec::MAP);
        self.name(variant)?;
        value.serialize(&mut *self)?;
        self.patch(at, 1)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'e>, CodecError> {
        let every = match (&self.cuts, len) {
            (Some(_), Some(len)) if self.open_seqs == 0 => codec::cut_every(len),
            _ => 0,
        };
        let list = match self.open_seqs {
            0 => self.open_list(len),
            _ => None,
        };
        self.open_seqs += 1;
        let at = self.open(codec::SEQ);
        // At least a byte per element (a byte string's are one each).
        self.out.reserve(len.unwrap_or(0));
        Ok(Seq {
            list,
            ..Seq::new(self, at, true, every)
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Seq<'e>, CodecError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Seq<'e>, CodecError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Seq<'e>, CodecError> {
        // A one-entry map {variant: [fields]}; only the inner count is left to patch.
        let outer = self.open(codec::MAP);
        self.patch(outer, 1)?;
        self.name(variant)?;
        self.open_seqs += 1;
        let at = self.open(codec::SEQ);
        Ok(Seq::new(self, at, false, 0))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Map<'e>, CodecError> {
        // A map's values are not named by a field (and a hash map's order is not fixed).
        self.field = "";
        let at = self.open(codec::MAP);
        Ok(Map::new(self, at))
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Map<'e>, CodecError> {
        Ok(Map::open_struct(self))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Map<'e>, CodecError> {
        let outer = self.open(codec::MAP);
        self.patch(outer, 1)?;
        self.name(variant)?;
        Ok(Map::open_struct(self))
    }

    fn is_human_readable(&self) -> bool {
        // The same representation JSON gets, so every type behaves as it does with JSON.
        true
    }
}
