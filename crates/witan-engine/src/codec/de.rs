//! The decoding half of the row codec (format: `codec.rs`): a serde `Deserializer` over a
//! byte slice. It is self-describing (`deserialize_any` works, as untagged enums and
//! `serde_json::Value` need) and presents values the way `serde_json` does: a byte string is
//! a sequence of `u8`, an enum is a variant name or a one-entry map, a newtype is its
//! content. Every length is checked against the input left before anything is allocated.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, Visitor};

use super::{self as codec, CodecError, MAX_DEPTH};
use access::{Bytes, Map, Seq, Variant};

mod access;

pub(super) struct Decoder<'de> {
    input: &'de [u8],
    depth: usize,
    /// The names defined so far (`NAME`), by id.
    names: Vec<&'de str>,
}

fn err(msg: &str) -> CodecError {
    CodecError::new(msg.to_string())
}

impl<'de> Decoder<'de> {
    pub(super) fn new(input: &'de [u8]) -> Self {
        Decoder {
            input,
            depth: 0,
            names: Vec::new(),
        }
    }

    /// Fails if input is left over.
    pub(super) fn finish(&self) -> Result<(), CodecError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(err("trailing bytes"))
        }
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8], CodecError> {
        if n > self.input.len() {
            return Err(err("unexpected end of value"));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let bytes = self.take(N)?;
        bytes.try_into().map_err(|_| err("unexpected end of value"))
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn peek(&self) -> Result<u8, CodecError> {
        self.input
            .first()
            .copied()
            .ok_or_else(|| err("unexpected end of value"))
    }

    /// A count of items, each taking at least `min_item_bytes` of the input left.
    fn count(&mut self, min_item_bytes: usize) -> Result<usize, CodecError> {
        let n = u32::from_le_bytes(self.array::<4>()?) as usize;
        if n.saturating_mul(min_item_bytes) > self.input.len() {
            return Err(err("length exceeds the value"));
        }
        Ok(n)
    }

    fn enter(&mut self) -> Result<(), CodecError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err("nested too deeply"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn str(&mut self) -> Result<&'de str, CodecError> {
        let n = self.count(1)?;
        std::str::from_utf8(self.take(n)?).map_err(|_| err("string is not UTF-8"))
    }

    /// Reads the table of names a value may start with (`NAMES`): they get ids from 0.
    pub(super) fn names_table(&mut self) -> Result<(), CodecError> {
        if self.input.first() != Some(&codec::NAMES) {
            return Ok(());
        }
        self.take(1)?;
        let count = u16::from_le_bytes(self.array()?);
        for _ in 0..count {
            let name = self.str()?;
            self.names.push(name);
        }
        Ok(())
    }

    /// The name after a `NAME` or `NAME_REF` tag.
    fn name(&mut self, tag: u8) -> Result<&'de str, CodecError> {
        if tag == codec::NAME {
            let name = self.str()?;
            if self.names.len() <= usize::from(u16::MAX) {
                self.names.push(name);
            }
            Ok(name)
        } else {
            let id = u16::from_le_bytes(self.array()?);
            self.names
                .get(usize::from(id))
                .copied()
                .ok_or_else(|| err("unknown name id"))
        }
    }

    fn seq<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, CodecError> {
        let remaining = self.count(1)?;
        self.elements(remaining, visitor)
    }

    /// A struct written by position (after its `FIELDS` tag): its values as a sequence.
    fn fields<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, CodecError> {
        let remaining = usize::from(self.byte()?);
        if remaining > self.input.len() {
            return Err(err("length exceeds the value"));
        }
        self.elements(remaining, visitor)
    }

    /// The `remaining` values next, as a sequence.
    fn elements<V: Visitor<'de>>(
        &mut self,
        remaining: usize,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        self.enter()?;
        let mut access = Seq {
            de: &mut *self,
            remaining,
        };
        let value = visitor.visit_seq(&mut access)?;
        let left = access.remaining;
        self.leave();
        if left > 0 {
            return Err(err("sequence has unread elements"));
        }
        Ok(value)
    }

    fn bytes<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, CodecError> {
        let n = self.count(1)?;
        let mut access = Bytes {
            bytes: self.take(n)?,
        };
        let value = visitor.visit_seq(&mut access)?;
        if !access.bytes.is_empty() {
            return Err(err("byte string has unread bytes"));
        }
        Ok(value)
    }

    fn map<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, CodecError> {
        let remaining = self.count(2)?;
        self.enter()?;
        let mut access = Map {
            de: &mut *self,
            remaining,
        };
        let value = visitor.visit_map(&mut access)?;
        let left = access.remaining;
        self.leave();
        if left > 0 {
            return Err(err("map has unread entries"));
        }
        Ok(value)
    }

    /// Skips one value.
    fn skip(&mut self) -> Result<(), CodecError> {
        de::Deserializer::deserialize_any(&mut *self, de::IgnoredAny).map(|_| ())
    }
}

/// Integers of any width and sign read as a `u64` or an `i64` (the visitor checks the range),
/// also from a decimal string, which is how JSON writes map keys (values transcoded from
/// legacy JSON rows). Only these two visitor methods are compiled per integer type.
macro_rules! integer {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
            match self.integer()? {
                Integer::Unsigned(n) => visitor.visit_u64(n),
                Integer::Signed(n) => visitor.visit_i64(n),
            }
        })*
    };
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.byte()? {
            codec::NONE => visitor.visit_none(),
            codec::SOME => {
                self.enter()?;
                let value = visitor.visit_some(&mut *self);
                self.leave();
                value
            }
            codec::UNIT => visitor.visit_unit(),
            codec::FALSE => visitor.visit_bool(false),
            codec::TRUE => visitor.visit_bool(true),
            codec::U8 => visitor.visit_u8(self.byte()?),
            codec::U16 => visitor.visit_u16(u16::from_le_bytes(self.array()?)),
            codec::U32 => visitor.visit_u32(u32::from_le_bytes(self.array()?)),
            codec::U64 => visitor.visit_u64(u64::from_le_bytes(self.array()?)),
            codec::U128 => visitor.visit_u128(u128::from_le_bytes(self.array()?)),
            codec::I8 => visitor.visit_i8(i8::from_le_bytes(self.array()?)),
            codec::I16 => visitor.visit_i16(i16::from_le_bytes(self.array()?)),
            codec::I32 => visitor.visit_i32(i32::from_le_bytes(self.array()?)),
            codec::I64 => visitor.visit_i64(i64::from_le_bytes(self.array()?)),
            codec::I128 => visitor.visit_i128(i128::from_le_bytes(self.array()?)),
            codec::F32 => visitor.visit_f32(f32::from_le_bytes(self.array()?)),
            codec::F64 => visitor.visit_f64(f64::from_le_bytes(self.array()?)),
            codec::CHAR => {
                let c = char::from_u32(u32::from_le_bytes(self.array()?))
                    .ok_or_else(|| err("invalid char"))?;
                visitor.visit_char(c)
            }
            codec::STR => visitor.visit_borrowed_str(self.str()?),
            tag @ (codec::NAME | codec::NAME_REF) => visitor.visit_borrowed_str(self.name(tag)?),
            codec::BYTES => self.bytes(visitor),
            codec::SEQ => self.seq(visitor),
            codec::MAP => self.map(visitor),
            codec::FIELDS => self.fields(visitor),
            _ => Err(err("unknown tag")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.peek()? {
            // A unit stands for JSON's null too (values that went through serde_json::Value).
            codec::NONE | codec::UNIT => {
                self.byte()?;
                visitor.visit_none()
            }
            codec::SOME => {
                self.byte()?;
                self.enter()?;
                let value = visitor.visit_some(&mut *self);
                self.leave();
                value
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.peek()? {
            codec::NONE | codec::UNIT => {
                self.byte()?;
                visitor.visit_unit()
            }
            _ => Err(err("expected a unit")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        match self.peek()? {
            codec::STR => {
                self.byte()?;
                let variant = self.str()?;
                visitor.visit_enum(BorrowedStrDeserializer::new(variant))
            }
            tag @ (codec::NAME | codec::NAME_REF) => {
                self.byte()?;
                let variant = self.name(tag)?;
                visitor.visit_enum(BorrowedStrDeserializer::new(variant))
            }
            codec::MAP => {
                self.byte()?;
                if self.count(2)? != 1 {
                    return Err(err("an enum variant is a one-entry map"));
                }
                self.enter()?;
                let value = visitor.visit_enum(Variant { de: &mut *self });
                self.leave();
                value
            }
            _ => Err(err("expected an enum variant")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_any(de::IgnoredAny)?;
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        true
    }

    integer!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64);
    integer!(deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64);

    // The methods below accept only what the encoder writes for the type asked for and
    // never hand the visitor anything else, so each type compiles a few visitor calls, not
    // the whole of `deserialize_any`.

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.byte()? {
            codec::FALSE => visitor.visit_bool(false),
            codec::TRUE => visitor.visit_bool(true),
            _ => Err(err("expected a bool")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.byte()? {
            codec::STR => visitor.visit_borrowed_str(self.str()?),
            tag @ (codec::NAME | codec::NAME_REF) => visitor.visit_borrowed_str(self.name(tag)?),
            _ => Err(err("expected a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.byte()? {
            codec::SEQ => self.seq(visitor),
            codec::BYTES => self.bytes(visitor),
            _ => Err(err("expected a sequence")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        self.deserialize_seq(visitor)
    }

    /// As JSON has it: byte strings are sequences of numbers.
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.byte()? {
            codec::MAP => self.map(visitor),
            _ => Err(err("expected a map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        match self.byte()? {
            codec::MAP => self.map(visitor),
            codec::FIELDS => self.fields(visitor),
            _ => Err(err("expected a struct")),
        }
    }

    serde::forward_to_deserialize_any! {
        i128 u128 f32 f64 char
    }
}

/// An integer as read by `Decoder::integer`.
enum Integer {
    Unsigned(u64),
    Signed(i64),
}

impl Decoder<'_> {
    /// An integer of any width, or a decimal string.
    fn integer(&mut self) -> Result<Integer, CodecError> {
        Ok(match self.byte()? {
            codec::U8 => Integer::Unsigned(u64::from(self.byte()?)),
            codec::U16 => Integer::Unsigned(u64::from(u16::from_le_bytes(self.array()?))),
            codec::U32 => Integer::Unsigned(u64::from(u32::from_le_bytes(self.array()?))),
            codec::U64 => Integer::Unsigned(u64::from_le_bytes(self.array()?)),
            codec::I8 => Integer::Signed(i64::from(i8::from_le_bytes(self.array()?))),
            codec::I16 => Integer::Signed(i64::from(i16::from_le_bytes(self.array()?))),
            codec::I32 => Integer::Signed(i64::from(i32::from_le_bytes(self.array()?))),
            codec::I64 => Integer::Signed(i64::from_le_bytes(self.array()?)),
            codec::STR => {
                let text = self.str()?;
                if let Ok(n) = text.parse::<u64>() {
                    Integer::Unsigned(n)
                } else {
                    Integer::Signed(
                        text.parse::<i64>()
                            .map_err(|_| err("expected an integer"))?,
                    )
                }
            }
            _ => return Err(err("expected an integer")),
        })
    }
}

/// The encoded elements of a sequence value (`SEQ` or `BYTES`), each as its own slice
/// (a byte of a `BYTES` string becomes a `U8` element).
pub(super) fn split_seq(input: &[u8]) -> Result<Vec<&[u8]>, CodecError> {
    const U8_ITEMS: [[u8; 2]; 256] = {
        let mut all = [[codec::U8, 0]; 256];
        let mut i = 0;
        while i < 256 {
            all[i][1] = i as u8;
            i += 1;
        }
        all
    };
    let mut de = Decoder::new(input);
    let mut items = Vec::new();
    match de.byte()? {
        codec::SEQ => {
            let n = de.count(1)?;
            for _ in 0..n {
                let before = de.input;
                de.skip()?;
                let used = before.len() - de.input.len();
                items.push(&before[..used]);
            }
        }
        codec::BYTES => {
            let n = de.count(1)?;
            for &b in de.take(n)? {
                items.push(&U8_ITEMS[usize::from(b)][..]);
            }
        }
        _ => return Err(err("not a sequence")),
    }
    de.finish()?;
    Ok(items)
}
