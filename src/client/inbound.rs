//! `receive`: packets from subscribed topics, one step each.
//!
//! A packet is identified by `SHA256(payload)`. Bytes that do not decode as an envelope, a
//! packet for a conversation this client does not have, and a packet the engine refuses are
//! counted as rejected and change nothing (the step is rolled back). A packet seen before —
//! including this client's own packets echoed by the transport — is a duplicate and changes
//! nothing. An accepted packet is marked seen in the step that applied it; one for a future
//! epoch is buffered (bounded) in that step and replayed once the epoch is reached.

use sha2::{Digest, Sha256};

use crate::wire;

use super::WitanClient;
use super::error::WitanError;
use super::step::{Finish, MAX_BUFFERED_PER_CONVERSATION};
use super::types::{InboundPacket, ReceiveReport, WitanEvent};

/// What became of one packet.
enum Fate {
    Accepted,
    Duplicate,
    Rejected(String),
}

impl WitanClient {
    /// Feeds packets that arrived on subscribed topics. Idempotent: a packet seen before is
    /// counted as a duplicate and changes nothing. Only a database failure is an error; the
    /// packets before it stay applied (feeding them again counts them as duplicates).
    pub fn receive(&self, packets: Vec<InboundPacket>) -> Result<ReceiveReport, WitanError> {
        let mut delivered = Vec::new();
        self.receive_collecting(packets, &mut delivered)
    }

    pub(crate) fn receive_collecting(
        &self,
        packets: Vec<InboundPacket>,
        delivered: &mut Vec<WitanEvent>,
    ) -> Result<ReceiveReport, WitanError> {
        let mut report = ReceiveReport::default();
        for packet in packets {
            let counter = match self.receive_one(&packet.payload, delivered)? {
                Fate::Accepted => &mut report.accepted,
                Fate::Duplicate => &mut report.duplicates,
                Fate::Rejected(reason) => {
                    tracing::debug!(topic = %packet.topic, %reason, "packet rejected");
                    &mut report.rejected
                }
            };
            *counter = counter.saturating_add(1);
        }
        Ok(report)
    }

    fn receive_one(
        &self,
        payload: &[u8],
        delivered: &mut Vec<WitanEvent>,
    ) -> Result<Fate, WitanError> {
        let envelope = match wire::decode_envelope(payload) {
            Ok(envelope) => envelope,
            Err(e) => return Ok(Fate::Rejected(e.to_string())),
        };
        let hash = Sha256::digest(payload);
        let now = self.clock.now_ms();
        let id = envelope.conversation_id.as_str();
        // A refused packet or a duplicate must leave no trace: its step is rolled back.
        let (fate, effects) = self.in_step_then(now, |env| {
            if env.step.is_seen(&hash)? {
                return Ok(Finish::Rollback(Fate::Duplicate));
            }
            let ((), applied) = match env.handle_packet(&envelope)? {
                Ok(done) => done,
                Err(e) => return Ok(Finish::Rollback(Fate::Rejected(e.to_string()))),
            };
            let mut fate = Fate::Accepted;
            if let Some(epoch) = applied.buffer_for_epoch {
                let stored = env.step.buffer_inbound(
                    id,
                    epoch,
                    payload,
                    now,
                    MAX_BUFFERED_PER_CONVERSATION,
                )?;
                if !stored {
                    fate = Fate::Rejected(format!("buffer for future epochs of {id:?} is full"));
                }
            }
            if matches!(fate, Fate::Accepted) {
                env.step.mark_seen(&hash, now)?;
            }
            if applied.epoch_advanced {
                env.refeed(id, applied)?;
            }
            Ok(Finish::Commit(fate))
        })?;
        if let Some(effects) = effects {
            delivered.extend(self.after_commit(effects));
        }
        Ok(fate)
    }
}
