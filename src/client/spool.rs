//! Packets kept aside by the extension role: when the app holds the database lock past
//! [`EXTENSION_LOCK_WAIT_MS`](super::EXTENSION_LOCK_WAIT_MS), `handle_wakeup` writes its
//! packets to the spool (`store::Spool`) instead of failing, and the next `poll` or
//! `handle_wakeup` that gets the lock — in either process — applies them first, oldest first.
//! Applying is idempotent (packets are de-duplicated by hash), so a kill between applying and
//! removing them from the spool only makes them duplicates.

use crate::store::Spool;

use super::WitanClient;
use super::error::WitanError;
use super::inbound::Incoming;
use super::types::WitanEvent;

/// Packets taken from the spool per receive call.
const DRAIN_BATCH: u32 = 256;

impl WitanClient {
    /// Keeps `packets` in the spool; returns how many.
    pub(crate) fn spool(&self, packets: &[Incoming]) -> Result<u32, WitanError> {
        let mut spool = Spool::open(&self.database_path, &self.store_options)?;
        spool.push(packets.iter().map(|p| (p.topic.as_str(), &p.payload[..])))?;
        tracing::info!(
            packets = packets.len(),
            "database busy: packets kept for the next run"
        );
        Ok(u32::try_from(packets.len()).unwrap_or(u32::MAX))
    }

    /// Applies what the spool holds, if anything. Leaves the packets there when the database
    /// is busy (returned: an extension that cannot get the lock spools behind them). Any other
    /// failure is reported to the listener and does not stop the caller: a damaged spool
    /// must not stop the conversations.
    pub(crate) fn drain_spool(&self, delivered: &mut Vec<WitanEvent>) -> Result<(), WitanError> {
        if super::is_in_memory(&self.database_path) || !Spool::exists(&self.database_path) {
            return Ok(());
        }
        match self.drain_spool_inner(delivered) {
            Err(e) if !e.is_busy() => {
                tracing::warn!(error = %e, "cannot apply the spooled packets");
                let warning = WitanEvent::Warning {
                    conversation_id: None,
                    message: format!("packets kept for later cannot be applied: {e}"),
                };
                self.listener.on_event(warning.clone());
                delivered.push(warning);
                Ok(())
            }
            other => other,
        }
    }

    fn drain_spool_inner(&self, delivered: &mut Vec<WitanEvent>) -> Result<(), WitanError> {
        // Bounded: every round removes at least one packet or returns.
        loop {
            let waiting =
                Spool::open(&self.database_path, &self.store_options)?.peek(DRAIN_BATCH)?;
            let Some(last) = waiting.last().map(|p| p.id) else {
                return Ok(());
            };
            let packets: Vec<Incoming> = waiting
                .into_iter()
                .map(|p| Incoming {
                    topic: p.topic,
                    payload: p.payload.into(),
                })
                .collect();
            self.receive_collecting(&packets, delivered)?;
            Spool::open(&self.database_path, &self.store_options)?.remove_through(last)?;
        }
    }
}
