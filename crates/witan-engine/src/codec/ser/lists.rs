//! The encoder's record of its outermost lists (`codec::pieces`): where each element starts,
//! and copying an element from the last encoding instead of writing it again.

use super::super::{self as codec, CodecError};
use super::Encoder;

/// A list at the top of a value's structure (inside no other sequence): the struct field that
/// holds it and where each element starts, then where the last one ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::codec) struct List {
    /// `""` when the list is not directly a struct field's value (a map's value): such a list
    /// is never copied, as nothing names it.
    pub(in crate::codec) field: &'static str,
    /// One offset per element, then the end; empty when the list could not be followed (a
    /// byte string, or elements of mixed kinds).
    pub(in crate::codec) offsets: Vec<u32>,
}

/// An encoding with its cuts and the places of its outermost lists' elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    /// The value, magic byte first.
    pub bytes: Vec<u8>,
    /// Where the bytes may be cut into pieces (see [`crate::codec::to_vec_with_cuts`]).
    pub cuts: Vec<usize>,
    /// The outermost lists, in the order they were written (by-position encodings only).
    pub(in crate::codec) lists: Vec<List>,
    /// The table of names written ahead of the value, by id (by-position encodings only).
    pub(in crate::codec) names: Vec<&'static str>,
}

impl Encoded {
    /// The bytes of element `i` of the outermost list that is the value of struct field
    /// `field` (the first such list): `None` if there is none, or it has no element `i`.
    pub fn element(&self, field: &str, i: usize) -> Option<&[u8]> {
        let list = self.lists.iter().find(|l| l.field == field)?;
        let start = *list.offsets.get(i)? as usize;
        let end = *list.offsets.get(i + 1)? as usize;
        self.bytes.get(start..end)
    }
}

/// An encoder's state while it copies from the last encoding.
#[derive(Debug)]
pub(in crate::codec) struct Reusing {
    pub(in crate::codec) previous: Encoded,
    pub(in crate::codec) field: &'static str,
    /// Sorted, without repeats.
    pub(in crate::codec) changed: Vec<usize>,
    /// Which of `changed` were met (and written afresh).
    pub(in crate::codec) claimed: Vec<bool>,
}

impl Reusing {
    /// Where element `i` of the outermost list at `place` (field `field`, `len` elements)
    /// lies in the last encoding, if it may be copied; notes a changed element as met.
    pub(in crate::codec) fn copyable(
        &mut self,
        place: usize,
        field: &'static str,
        len: usize,
        i: usize,
    ) -> Option<(usize, usize)> {
        if field == self.field
            && let Ok(at) = self.changed.binary_search(&i)
        {
            if let Some(c) = self.claimed.get_mut(at) {
                *c = true;
            }
            return None;
        }
        let list = self.previous.lists.get(place)?;
        if field.is_empty() || list.field != field || list.offsets.len() != len + 1 {
            return None;
        }
        let start = *list.offsets.get(i)? as usize;
        let end = *list.offsets.get(i + 1)? as usize;
        (start <= end && end <= self.previous.bytes.len()).then_some((start, end))
    }
}

/// An outermost list being written: its place among the outermost lists and its length, when
/// the serializer said it.
#[derive(Debug, Clone, Copy)]
pub(super) struct ListAt {
    place: usize,
    len: Option<usize>,
}

impl Encoder {
    /// Starts copying from the last encoding (`codec::to_vec_reusing`).
    pub(in super::super) fn reuse(&mut self, reusing: Reusing) {
        self.seed_names(&reusing.previous.names);
        self.reusing = Some(reusing);
    }

    /// Gives `names` the ids they have in `names` (a copied element refers to them so); the
    /// names met later get the next ids.
    pub(in super::super) fn seed_names(&mut self, names: &[&'static str]) {
        let (Some(ids), Some(table)) = (self.names.as_mut(), self.table.as_mut()) else {
            return;
        };
        for (id, name) in names.iter().enumerate() {
            let Ok(id) = u16::try_from(id) else {
                return;
            };
            ids.ids.insert((name.as_ptr() as usize, name.len()), id);
            table.push(name);
        }
    }

    /// The encoding, and the copying state if there was one.
    pub(in super::super) fn into_encoded(self) -> (Result<Encoded, CodecError>, Option<Reusing>) {
        let encoded = Encoded {
            bytes: self.out,
            cuts: self.cuts.unwrap_or_default(),
            lists: self.lists.unwrap_or_default(),
            names: self.table.unwrap_or_default(),
        };
        (with_names_table(encoded), self.reusing)
    }

    /// Opens the record of a sequence that is inside no other one (`None`: nothing recorded).
    pub(super) fn open_list(&mut self, len: Option<usize>) -> Option<ListAt> {
        let lists = self.lists.as_mut()?;
        lists.push(List {
            field: self.field,
            offsets: Vec::with_capacity(len.map_or(0, |n| n + 1)),
        });
        Some(ListAt {
            place: lists.len() - 1,
            len,
        })
    }

    /// Before element `i` of the list at `at`: notes where it starts, and copies it from the
    /// last encoding when it may be (then it is written, and `true` is returned).
    pub(super) fn list_element(&mut self, at: ListAt, i: usize) -> bool {
        self.note_offset(at.place);
        let Some(reusing) = self.reusing.as_mut() else {
            return false;
        };
        let (Some(len), Some(list)) = (at.len, self.lists.as_ref().and_then(|l| l.get(at.place)))
        else {
            return false;
        };
        match reusing.copyable(at.place, list.field, len, i) {
            Some((start, end)) => match reusing.previous.bytes.get(start..end) {
                Some(bytes) => {
                    self.out.extend_from_slice(bytes);
                    true
                }
                None => false,
            },
            None => false,
        }
    }

    /// Ends the record of the list at `at`, `count` elements long; a list whose elements were
    /// not all noted (a byte string, or one that stopped being one) keeps no offsets.
    pub(super) fn close_list(&mut self, at: ListAt, count: usize, raw: bool) {
        let followed = !(raw && count > 0)
            && self
                .lists
                .as_ref()
                .and_then(|l| l.get(at.place))
                .is_some_and(|l| l.offsets.len() == count);
        if followed {
            self.note_offset(at.place);
        } else if let Some(list) = self.lists.as_mut().and_then(|l| l.get_mut(at.place)) {
            list.offsets.clear();
        }
    }

    fn note_offset(&mut self, place: usize) {
        let at = u32::try_from(self.out.len());
        if let Some(list) = self.lists.as_mut().and_then(|l| l.get_mut(place)) {
            match at {
                Ok(at) => list.offsets.push(at),
                // Past 4 GiB nothing is copied: the list is just not followed.
                Err(_) => list.offsets.clear(),
            }
        }
    }
}

/// `encoded` with its table of names put after the magic byte (every offset noted moves by
/// its length).
fn with_names_table(mut encoded: Encoded) -> Result<Encoded, CodecError> {
    if encoded.bytes.is_empty() {
        return Err(CodecError::new("internal: no magic byte"));
    }
    if !encoded.names.is_empty() {
        let table = names_table(&encoded.names)?;
        let shift = table.len();
        encoded.bytes.splice(1..1, table);
        for cut in &mut encoded.cuts {
            *cut += shift;
        }
        let shift = u32::try_from(shift).map_err(|_| CodecError::new("value too large"))?;
        for list in &mut encoded.lists {
            for offset in &mut list.offsets {
                *offset = offset
                    .checked_add(shift)
                    .ok_or_else(|| CodecError::new("value too large"))?;
            }
        }
    }
    Ok(encoded)
}

/// `NAMES`, the count (u16 le), then each name's length (u32 le) and bytes.
fn names_table(names: &[&'static str]) -> Result<Vec<u8>, CodecError> {
    let count = u16::try_from(names.len()).map_err(|_| CodecError::new("too many names"))?;
    let mut out = Vec::with_capacity(3 + names.iter().map(|n| 4 + n.len()).sum::<usize>());
    out.push(codec::NAMES);
    out.extend_from_slice(&count.to_le_bytes());
    for name in names {
        let len = u32::try_from(name.len()).map_err(|_| CodecError::new("name too long"))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    Ok(out)
}
