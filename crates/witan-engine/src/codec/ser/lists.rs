//! The encoder's record of its outermost lists (`codec::pieces`): where each element starts,
//! and copying an element from the last encoding instead of writing it again.

use super::super::pieces::{Encoded, List, Reusing};
use super::Encoder;

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
        self.reusing = Some(reusing);
    }

    /// The encoding, and the copying state if there was one.
    pub(in super::super) fn into_encoded(self) -> (Encoded, Option<Reusing>) {
        let encoded = Encoded {
            bytes: self.out,
            cuts: self.cuts.unwrap_or_default(),
            lists: self.lists.unwrap_or_default(),
        };
        (encoded, self.reusing)
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
