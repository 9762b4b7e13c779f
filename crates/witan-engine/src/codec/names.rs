//! The field and variant names an encoder has written, and the ids it gives them (the
//! `NAME`/`NAME_REF` scheme of the row codec, `codec.rs`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Name ids by the address and length of the name.
pub(super) struct Names {
    pub(super) ids: HashMap<(usize, usize), u16, BuildHasherDefault<PtrHasher>>,
    /// A direct-mapped front of `ids` (a value repeats a few names many times: the fields of
    /// the nodes of a tree); `(0, 0, _)` is empty (no name lives at address 0).
    front: [(usize, usize, u16); FRONT_SLOTS],
}

const FRONT_BITS: u32 = 8;
const FRONT_SLOTS: usize = 1 << FRONT_BITS;

impl Names {
    pub(super) fn new() -> Names {
        Names {
            ids: HashMap::default(),
            front: [(0, 0, 0); FRONT_SLOTS],
        }
    }

    pub(super) fn get(&mut self, key: (usize, usize)) -> Option<u16> {
        let mixed =
            (key.0 ^ key.1.rotate_left(40)).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize);
        let slot = mixed >> (usize::BITS - FRONT_BITS);
        let (ptr, len, id) = self.front[slot];
        if (ptr, len) == key {
            return Some(id);
        }
        let id = *self.ids.get(&key)?;
        self.front[slot] = (key.0, key.1, id);
        Some(id)
    }
}

/// Hashes the address and length of a `&'static str` (names are compile-time constants).
#[derive(Default)]
pub(super) struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
