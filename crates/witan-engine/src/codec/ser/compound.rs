//! serde's compound-serializer traits for the encoder's sequences and maps: each forwards to
//! `Seq::element` / `Seq::close` or to the struct and map writing in `ser.rs`.

use serde::ser::{self, Serialize};

use super::{CodecError, Map, Seq};

/// The four sequence-like traits: one element writer, one close, under each trait's names.
macro_rules! seq_like {
    ($($trait:ident :: $write:ident),*) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = CodecError;
            #[inline]
            fn $write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
                self.element(value)
            }
            #[inline]
            fn end(self) -> Result<(), CodecError> {
                self.close()
            }
        }
    )*};
}

seq_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

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
    #[inline]
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = ();
    type Error = CodecError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        self.count += 1;
        if !self.by_position {
            self.enc.name(key)?;
        }
        self.enc.field = key;
        value.serialize(&mut *self.enc)
    }
    fn skip_field(&mut self, _key: &'static str) -> Result<(), CodecError> {
        // By position, a field left out would shift the ones after it.
        match self.by_position {
            true => Err(CodecError::new(
                "a field left out cannot be written by position",
            )),
            false => Ok(()),
        }
    }
    #[inline]
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Map<'_> {
    type Ok = ();
    type Error = CodecError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), CodecError> {
        ser::SerializeStruct::skip_field(self, key)
    }
    #[inline]
    fn end(self) -> Result<(), CodecError> {
        self.close()
    }
}
