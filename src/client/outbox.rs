//! Publishing the outbox through the host's [`Transport`](super::Transport).
//!
//! Packets enter the outbox in the step that produced them and leave only once the
//! transport accepted them, so a kill at any point at worst publishes a packet twice (the
//! receivers de-duplicate on its hash) and never loses one. For the same reason their removal
//! is a relaxed step (no fsync): a power cut can only bring them back. Due packets are read in FIFO
//! order, published with no database lock held, and then deleted. When the transport fails,
//! the failed packet and the rest of its batch wait for a backoff of 1 s doubling up to
//! 5 min, keeping their order; the next `poll` after that retries them.

use std::sync::TryLockError;

use super::WitanClient;
use super::error::WitanError;
use super::types::OutboundPacket;

/// Packets read per round (bounds memory: payloads may be large).
const BATCH: u32 = 32;
/// Rounds per flush (bounds the time one call spends publishing).
const MAX_ROUNDS: usize = 64;
const FIRST_BACKOFF_MS: u64 = 1_000;
const MAX_BACKOFF_MS: u64 = 5 * 60_000;

/// The wait before the next attempt after `failed_attempts` earlier failures.
pub(crate) fn backoff_ms(failed_attempts: u32) -> u64 {
    let factor = 1u64
        .checked_shl(failed_attempts.min(32))
        .unwrap_or(u64::MAX);
    FIRST_BACKOFF_MS.saturating_mul(factor).min(MAX_BACKOFF_MS)
}

impl WitanClient {
    /// Publishes every due packet; returns how many the transport accepted. A flush already
    /// running in this process (for example a host callback re-entering the client) makes
    /// this a no-op.
    pub(crate) fn flush_outbox(&self) -> Result<u32, WitanError> {
        let _guard = match self.flushing.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(0),
        };
        let mut sent = 0u32;
        for _ in 0..MAX_ROUNDS {
            let now = self.clock.now_ms();
            let rows = self.with_db(|db| {
                // A relaxed step whose sync failed: its packets wait for the log to be on disk.
                db.sync_if_needed()?;
                let step = db.read()?;
                Ok(step.outbox_due(now, BATCH)?)
            })?;
            if rows.is_empty() {
                break;
            }
            let mut delivered = Vec::new();
            let mut failed = None;
            for (i, row) in rows.iter().enumerate() {
                let packet = OutboundPacket {
                    topic: row.topic.clone(),
                    payload: row.payload.clone(),
                    packet_id: row.packet_id.clone(),
                };
                match self.transport.publish(packet) {
                    Ok(()) => delivered.push(row.packet_id.as_str()),
                    Err(e) => {
                        tracing::info!(packet = %row.packet_id, error = %e, "publish failed");
                        failed = Some(i);
                        break;
                    }
                }
            }
            let next_attempt = failed
                .and_then(|i| rows.get(i))
                .map(|row| now.saturating_add(backoff_ms(row.attempts)));
            self.with_db(|db| {
                // Losing this to a power cut only publishes the packets again.
                let step = db.relaxed_step()?;
                for id in &delivered {
                    step.outbox_delete(id)?;
                }
                if let (Some(i), Some(at)) = (failed, next_attempt) {
                    for row in rows.iter().skip(i) {
                        step.outbox_retry_later(&row.packet_id, at)?;
                    }
                }
                step.commit()?;
                Ok(())
            })?;
            sent = sent.saturating_add(u32::try_from(delivered.len()).unwrap_or(u32::MAX));
            if failed.is_some() || rows.len() < BATCH as usize {
                break;
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_from_one_second_up_to_five_minutes() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(9), 300_000);
        assert_eq!(backoff_ms(u32::MAX), 300_000);
    }
}
