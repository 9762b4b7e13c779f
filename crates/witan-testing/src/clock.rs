//! Virtual time: one shared clock the harness moves by hand, and each member's view of it
//! (the shared time plus a skew of its own, for members whose clock runs ahead or behind).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use witan::client::Clock;

/// Virtual time starts here (2023-11-14T22:13:20Z).
pub const START_MS: u64 = 1_700_000_000_000;

/// The clock every member of a world shares; it only moves when the harness sets it.
#[derive(Debug)]
pub struct VirtualClock(pub AtomicU64);

impl VirtualClock {
    pub fn new(at: u64) -> VirtualClock {
        VirtualClock(AtomicU64::new(at))
    }

    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn set(&self, at: u64) {
        self.0.store(at, Ordering::SeqCst);
    }
}

impl Default for VirtualClock {
    fn default() -> VirtualClock {
        VirtualClock::new(START_MS)
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.now()
    }
}

/// A member's view of the shared clock: `base + offset` (never below zero). The offset is
/// shared so that the harness can change it while the member's client holds the clock.
#[derive(Debug)]
pub struct SkewedClock {
    pub base: Arc<VirtualClock>,
    pub offset_ms: Arc<AtomicI64>,
}

impl SkewedClock {
    pub fn new(base: Arc<VirtualClock>, offset_ms: i64) -> SkewedClock {
        SkewedClock {
            base,
            offset_ms: Arc::new(AtomicI64::new(offset_ms)),
        }
    }

    pub fn offset(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::SeqCst);
    }

    /// The shared clock's time when this member's clock reads `local`.
    pub fn to_global(&self, local: u64) -> u64 {
        local.saturating_add_signed(-self.offset())
    }
}

impl Clock for SkewedClock {
    fn now_ms(&self) -> u64 {
        self.base.now().saturating_add_signed(self.offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_clock_moves_only_when_set() {
        let clock = VirtualClock::default();
        assert_eq!(clock.now_ms(), START_MS);
        assert_eq!(clock.now_ms(), START_MS);
        clock.set(START_MS + 5);
        assert_eq!(clock.now_ms(), START_MS + 5);
    }

    #[test]
    fn a_skewed_clock_follows_the_shared_one_with_its_offset() {
        let base = Arc::new(VirtualClock::new(1_000));
        let ahead = SkewedClock::new(base.clone(), 250);
        let behind = SkewedClock::new(base.clone(), -400);
        assert_eq!(ahead.now_ms(), 1_250);
        assert_eq!(behind.now_ms(), 600);
        base.set(2_000);
        assert_eq!(ahead.now_ms(), 2_250);
        assert_eq!(ahead.to_global(2_250), 2_000);
        assert_eq!(behind.to_global(1_600), 2_000);
        behind.set_offset(-5_000);
        assert_eq!(behind.now_ms(), 0, "a clock far behind stops at zero");
    }
}
