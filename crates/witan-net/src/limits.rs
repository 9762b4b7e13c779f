//! The size limits of the relay and the store, derived from one setting: the largest witan
//! packet the network carries.

/// Waku's default largest message (150 KiB), the default here.
pub const DEFAULT_MAX_PACKET_BYTES: usize = 150 * 1024;
/// Largest packet limit that may be configured: witan's own envelope limit (8 MiB).
pub const MAX_PACKET_BYTES_CEILING: usize = 8 * 1024 * 1024;
/// What a Waku message and a gossipsub frame add around a packet: the content topic (at most
/// 256 bytes), timestamp, `meta` (at most 64 bytes), the relay topic and protobuf tags.
pub const ENVELOPE_OVERHEAD_BYTES: usize = 4 * 1024;
/// A store response holds messages up to about this many bytes (always at least one).
pub const RESPONSE_BUDGET_BYTES: usize = 4 * 1024 * 1024;
/// Largest page a store node returns, whatever the query asks.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Most content topics one query may name.
pub const MAX_QUERY_TOPICS: usize = 512;
/// Most message hashes one lookup query may name.
pub const MAX_LOOKUP_HASHES: usize = 256;

/// The limits for a given largest packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest witan packet (the Waku message payload). A larger one is refused by `publish`.
    pub max_packet_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
        }
    }
}

impl Limits {
    /// Refuses 0 and values over [`MAX_PACKET_BYTES_CEILING`].
    pub fn new(max_packet_bytes: usize) -> Result<Limits, String> {
        if max_packet_bytes == 0 || max_packet_bytes > MAX_PACKET_BYTES_CEILING {
            return Err(format!(
                "the packet limit must be 1..={MAX_PACKET_BYTES_CEILING} bytes, not {max_packet_bytes}"
            ));
        }
        Ok(Limits { max_packet_bytes })
    }

    /// gossipsub's frame limit.
    pub fn max_transmit_bytes(&self) -> usize {
        self.max_packet_bytes + ENVELOPE_OVERHEAD_BYTES
    }

    /// Largest store response a member accepts.
    pub fn max_response_bytes(&self) -> usize {
        RESPONSE_BUDGET_BYTES.max(self.max_transmit_bytes()) + 64 * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_always_fits_one_largest_message() {
        for max in [1, 1024, DEFAULT_MAX_PACKET_BYTES, MAX_PACKET_BYTES_CEILING] {
            let l = Limits::new(max).unwrap();
            assert!(l.max_response_bytes() > l.max_transmit_bytes());
            assert!(l.max_transmit_bytes() > max);
        }
        assert!(Limits::new(0).is_err());
        assert!(Limits::new(MAX_PACKET_BYTES_CEILING + 1).is_err());
    }
}
