//! The interfaces the host implements: [`Transport`] (publish packets, follow topics),
//! [`EventListener`] (hear what happened, after it is durable) and, for Rust callers only,
//! [`Clock`] (inject time; [`SystemClock`] reads the wall clock).
//!
//! The client never holds its database connection while it calls into the host, so a host
//! callback may call the client again.

use std::time::{SystemTime, UNIX_EPOCH};

use super::error::TransportError;
use super::types::{OutboundPacket, WitanEvent};

/// The host's network.
#[uniffi::export(rust, foreign)]
pub trait Transport: Send + Sync {
    /// Hand one packet to the network. An error keeps it in the outbox; it is retried by a
    /// later `poll` (after a backoff of 1 s doubling up to 5 min).
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError>;
    /// Start delivering `topic` to `receive`.
    fn subscribe(&self, topic: String);
    /// Stop delivering `topic`.
    fn unsubscribe(&self, topic: String);
}

/// The host's listener.
#[uniffi::export(rust, foreign)]
pub trait EventListener: Send + Sync {
    /// Called after the step that caused the event is durably stored.
    fn on_event(&self, event: WitanEvent);
}

/// Time source: milliseconds since the Unix epoch. Rust callers (tests, simulators) inject
/// one through `WitanClient::open_with_clock`.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.now_ms() > 1_704_067_200_000);
    }

    #[test]
    fn unexpected_callback_errors_become_transport_errors() {
        let e = TransportError::from(uniffi::UnexpectedUniFFICallbackError::new("boom"));
        assert!(matches!(e, TransportError::Unavailable { reason } if reason.contains("boom")));
    }
}
