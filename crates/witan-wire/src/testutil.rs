//! Helpers for the wire tests: the field a check refused, and a tiny xorshift generator for
//! garbage inputs (no extra crates). The sample messages are in `samples`.

use super::WireError;

/// The field named by a `BadField` or `TooLarge` error (panics on other errors).
pub(crate) fn field_of(err: WireError) -> &'static str {
    match err {
        WireError::BadField { field, .. } => field,
        WireError::TooLarge { what, .. } => what,
        other => panic!("expected a field error, got {other:?}"),
    }
}

/// Deterministic xorshift64 generator for garbage inputs.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
