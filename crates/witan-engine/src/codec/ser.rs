//! The encoding half of the row codec (format: `codec.rs`): a serde `Serializer` writing into
//! a `Vec<u8>`. Counts of sequences and maps are patched in when they end, so serializers
//! that do not know their length up front work too. A sequence whose elements are all `u8`
//! is written as one `BYTES` string. An encoder may also note where its output can be cut
//! into rows (`codec::to_vec_with_cuts`).

use serde::ser::{self, Serialize};

use super::names::Names;
use super::{self as codec, CodecError};

pub(super) struct Encoder {
    out: Vec<u8>,
    /// Field and variant names written so far and their ids (`None`: names are always
    /// written out, as list elements need).
    names: Option<Names>,
    /// Where the output may be cut (offsets of elements of long sequences), when asked for.
    cuts: Option<Vec<usize>>,
    /// Sequences open around the value being written (only outermost ones are cut).
    open_seqs: usize,
}

impl Encoder {
    pub(super) fn with_magic() -> Encoder {
        Encoder {
            out: vec![codec::MAGIC],
            names: Some(Names::new()),
            cuts: None,
            open_seqs: 0,
        }
    }

    pub(super) fn with_cuts() -> Encoder {
        Encoder {
            cuts: Some(Vec::new()),
            ..Encoder::with_magic()
        }
    }

    /// The output and the offsets where it may be cut (none unless made `with_cuts`).
    pub(super) fn into_parts(self) -> (Vec<u8>, Vec<usize>) {
        (self.out, self.cuts.unwrap_or_default())
    }

    pub(super) fn bare() -> Encoder {
        Encoder {
            out: Vec::new(),
            names: None,
            cuts: None,
            open_seqs: 0,
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

    fn tag(&mut self, tag: u8) {
        self.out.push(tag);
    }

    fn len(&mut self, len: usize) -> Result<(), CodecError> {
        let len = u32::try_from(len).map_err(|_| CodecError("value too large".into()))?;
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
    fn open(&mut self, tag: u8) -> usize {
        self.tag(tag);
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        at
    }

    fn patch(&mut self, at: usize, count: usize) -> Result<(), CodecError> {
        let count = u32::try_from(count).map_err(|_| CodecError("value too large".into()))?;
        match self.out.get_mut(at..at + 4) {
            Some(slot) => {
                slot.copy_from_slice(&count.to_le_bytes());
                Ok(())
            }
            None => Err(CodecError("internal: bad container offset".into())),
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
}

impl Seq<'_> {
    /// Rewrites the raw bytes written so far as tagged `U8` values.
    fn leave_raw(&mut self) {
        let start = self.at + 4;
        let raw: Vec<u8> = self.enc.out.split_off(start);
        for b in raw {
            self.enc.out.extend_from_slice(&[codec::U8, b]);
        }
        self.raw = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        if self.raw {
            if let Ok(b) = value.serialize(ByteCatcher) {
                self.enc.out.push(b);
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
        value.serialize(&mut *self.enc)?;
        self.count += 1;
        Ok(())
    }

    fn close(self) -> Result<(), CodecError> {
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
}

impl Map<'_> {
    fn close(self) -> Result<(), CodecError> {
        self.enc.patch(self.at, self.count)
    }
}

macro_rules! fixed {
    ($name:ident, $ty:ty, $tag:expr) => {
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

    fn serialize_none(self) -> Result<(), CodecError> {
        self.tag(codec::NONE);
        Ok(())
    }

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

    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'e>, CodecError> {
        let every = match (&self.cuts, len) {
            (Some(_), Some(len)) if self.open_seqs == 0 => codec::cut_every(len),
            _ => 0,
        };
        self.open_seqs += 1;
        let at = self.open(codec::SEQ);
        Ok(Seq {
            enc: self,
            at,
            count: 0,
            raw: true,
            every,
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
        Ok(Seq {
            enc: self,
            at,
            count: 0,
            raw: false,
            every: 0,
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Map<'e>, CodecError> {
        let at = self.open(codec::MAP);
        Ok(Map {
            enc: self,
            at,
            count: 0,
        })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Map<'e>, CodecError> {
        self.serialize_map(Some(len))
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
        let at = self.open(codec::MAP);
        Ok(Map {
            enc: self,
            at,
            count: 0,
        })
    }

    fn is_human_readable(&self) -> bool {
        // The same representation JSON gets, so every type behaves as it does with JSON.
        true
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        self.element(value)
    }
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        self.element(value)
    }
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        self.element(value)
    }
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Seq<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        self.element(value)
    }
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CodecError> {
        self.count += 1;
        key.serialize(&mut *self.enc)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        self.count += 1;
        self.enc.name(key)?;
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Map<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}

/// Accepts exactly one `u8` (how a sequence finds out that it is a byte string).
struct ByteCatcher;

/// Not a byte: any other value.
#[derive(Debug)]
struct NotAByte;

impl std::fmt::Display for NotAByte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a byte")
    }
}

impl std::error::Error for NotAByte {}

impl ser::Error for NotAByte {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        NotAByte
    }
}

macro_rules! not_a_byte {
    ($($name:ident($($arg:ty),*);)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<u8, NotAByte> { Err(NotAByte) })*
    };
}

impl ser::Serializer for ByteCatcher {
    type Ok = u8;
    type Error = NotAByte;
    type SerializeSeq = ser::Impossible<u8, NotAByte>;
    type SerializeTuple = ser::Impossible<u8, NotAByte>;
    type SerializeTupleStruct = ser::Impossible<u8, NotAByte>;
    type SerializeTupleVariant = ser::Impossible<u8, NotAByte>;
    type SerializeMap = ser::Impossible<u8, NotAByte>;
    type SerializeStruct = ser::Impossible<u8, NotAByte>;
    type SerializeStructVariant = ser::Impossible<u8, NotAByte>;

    fn serialize_u8(self, v: u8) -> Result<u8, NotAByte> {
        Ok(v)
    }

    not_a_byte! {
        serialize_bool(bool); serialize_u16(u16); serialize_u32(u32); serialize_u64(u64);
        serialize_i8(i8); serialize_i16(i16); serialize_i32(i32); serialize_i64(i64);
        serialize_f32(f32); serialize_f64(f64); serialize_char(char); serialize_str(&str);
        serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<u8, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<u8, NotAByte> {
        // A newtype around a u8 is written like the u8 itself (as JSON does), but keep it
        // simple: it is not a raw byte.
        Err(NotAByte)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<u8, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotAByte> {
        Err(NotAByte)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAByte> {
        Err(NotAByte)
    }
}
