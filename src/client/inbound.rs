//! `receive`: packets from subscribed topics, applied in batches.
//!
//! A packet is identified by its seen key (`wire::seen_key`: SHA-256 over its header fields
//! and its body's digest, which the packet id is checked against too). The host's bytes are
//! taken over, not copied ([`Incoming`]), and the decoded envelope's body is a view of them:
//! a large packet (a commit or welcome of a big group) is not held twice. Bytes that do not
//! decode as an envelope, a packet for a conversation this client does not have, and a packet
//! the engine refuses are counted as rejected and change nothing. A packet seen before —
//! including this client's own packets echoed by the transport — is a duplicate and changes
//! nothing. An accepted packet is marked seen together with what it changed; one for a future
//! epoch is buffered (bounded, de-duplicated there) and replayed once the epoch is reached,
//! and only then marked seen.
//!
//! Up to [`MAX_PACKETS_PER_STEP`] packets share one step (one transaction, one commit), in
//! order; a packet the engine refuses writes nothing, so the outcome is the same as one step
//! per packet. The sealed votes among them not seen before are first checked as one batch
//! per conversation (`StepEnv::check_sealed_votes`), which spares each its own signature
//! check and changes no outcome. The host hears about the batch once it is committed. A
//! database failure drops the whole batch's step (nothing of it is applied, and feeding it
//! again applies it).
//!
//! A batch first runs with MLS message secrets deferred (written once per step rather than
//! once per packet; see `client::step`) and the conversation states lent to the engine runs
//! rather than cloned for each (see `client::state`). If that step is lost (a packet failed
//! after others had changed the group or the state), it is dropped and the batch runs again
//! with neither: the outcome is the same, only slower.

use crate::protocol::State;
use crate::store::Buffered;
use crate::wire;

use super::WitanClient;
use super::error::WitanError;
use super::step::{Durability, Effects, FUTURE_EPOCH_BUFFER, StepEnv};
use super::types::{InboundPacket, ReceiveReport, WitanEvent};

/// Packets applied in one transaction at most: bounds how long the write lock is held (the
/// app and its notification extension share the file) and the memory of one step.
const MAX_PACKETS_PER_STEP: usize = 256;

/// A packet as `receive` keeps it: its bytes taken over from the host's [`InboundPacket`]
/// without a copy, so that the envelope decoded from them views its body in them too.
pub(crate) struct Incoming {
    pub topic: String,
    pub payload: wire::Bytes,
}

impl From<InboundPacket> for Incoming {
    fn from(p: InboundPacket) -> Incoming {
        Incoming {
            topic: p.topic,
            payload: wire::Bytes::from(p.payload),
        }
    }
}

/// The host's packets as [`Incoming`] ones.
pub(crate) fn incoming(packets: Vec<InboundPacket>) -> Vec<Incoming> {
    packets.into_iter().map(Incoming::from).collect()
}

/// What became of one packet.
enum Fate {
    Accepted,
    Duplicate,
    Rejected(String),
}

/// What one batch did: the fate of each packet, and the effects if the step committed.
struct Batch {
    fates: Vec<Fate>,
    effects: Option<Effects>,
}

/// A packet ready for the database: decoded, with its seen key (`wire::seen_key`).
struct Decoded<'p> {
    envelope: wire::Envelope,
    hash: [u8; 32],
    payload: &'p [u8],
}

impl WitanClient {
    /// Feeds packets that arrived on subscribed topics. Idempotent: a packet seen before is
    /// counted as a duplicate and changes nothing. Only a database failure is an error; the
    /// batches of packets before it stay applied (feeding them again counts them as
    /// duplicates), the batch it happened in is not.
    ///
    /// On return the packets are stored: an app kill cannot lose them. Their commit does not
    /// wait for an fsync, so a power cut in the next moments may roll it back (the packets
    /// are then applied when delivered again); anything they made witan queue for publishing
    /// is synced to disk before it is published.
    pub fn receive(&self, packets: Vec<InboundPacket>) -> Result<ReceiveReport, WitanError> {
        let mut delivered = Vec::new();
        self.receive_collecting(&incoming(packets), &mut delivered)
    }

    pub(crate) fn receive_collecting(
        &self,
        packets: &[Incoming],
        delivered: &mut Vec<WitanEvent>,
    ) -> Result<ReceiveReport, WitanError> {
        let mut report = ReceiveReport::default();
        for batch in packets.chunks(MAX_PACKETS_PER_STEP) {
            let Batch { fates, effects } = self.receive_batch(batch)?;
            for (fate, packet) in fates.into_iter().zip(batch) {
                let counter = match fate {
                    Fate::Accepted => &mut report.accepted,
                    Fate::Duplicate => &mut report.duplicates,
                    Fate::Rejected(reason) => {
                        tracing::debug!(topic = %packet.topic, %reason, "packet rejected");
                        &mut report.rejected
                    }
                };
                *counter = counter.saturating_add(1);
            }
            if let Some(effects) = effects {
                delivered.extend(self.after_commit(effects));
            }
        }
        Ok(report)
    }

    /// Applies one batch in one step: deferring message secrets and lending states, and again
    /// with neither if that step was lost.
    fn receive_batch(&self, batch: &[Incoming]) -> Result<Batch, WitanError> {
        let lost = std::cell::Cell::new(false);
        match self.receive_batch_once(batch, Some(&lost)) {
            Err(e) if lost.get() => {
                tracing::debug!(error = %e, "batch redone without deferred secrets");
                self.receive_batch_once(batch, None)
            }
            done => done,
        }
    }

    /// Applies one batch in one step; with `lost`, message secrets are deferred, states lent,
    /// and `lost` tells whether the step was dropped for it.
    fn receive_batch_once(
        &self,
        batch: &[Incoming],
        lost: Option<&std::cell::Cell<bool>>,
    ) -> Result<Batch, WitanError> {
        // Decoding needs no database: garbage never takes the lock.
        let decoded: Vec<Result<Decoded<'_>, String>> = batch
            .iter()
            .map(|p| {
                wire::decode_envelope_keyed_shared(p.payload.clone())
                    .map(|(envelope, hash)| Decoded {
                        envelope,
                        hash,
                        payload: &p.payload,
                    })
                    .map_err(|e| e.to_string())
            })
            .collect();
        if decoded.iter().all(Result::is_err) {
            let fates = decoded
                .into_iter()
                .map(|d| Fate::Rejected(d.err().unwrap_or_default()))
                .collect();
            return Ok(Batch {
                fates,
                effects: None,
            });
        }
        let now = self.clock.now_ms();
        let (fates, effects) =
            self.in_step_then(now, Durability::SyncedBeforePublishing, |env| {
                if lost.is_some() {
                    env.defer_message_secrets();
                    env.lend_states();
                    if batch.len() == 1 {
                        env.append_chats_to_tail();
                    }
                }
                let packets: Vec<(&[u8; 32], &wire::Envelope)> = decoded
                    .iter()
                    .flatten()
                    .map(|d| (&d.hash, &d.envelope))
                    .collect();
                env.check_sealed_votes(&packets)?;
                let mut fates = Vec::with_capacity(decoded.len());
                for d in decoded {
                    if env.is_lost() {
                        break;
                    }
                    fates.push(match d {
                        Ok(d) => apply_packet(env, &d, now)?,
                        Err(reason) => Fate::Rejected(reason),
                    });
                }
                if env.is_lost() {
                    if let Some(lost) = lost {
                        lost.set(true);
                    }
                    return Err(WitanError::internal(
                        "deferred MLS secrets or a lent state were lost",
                    ));
                }
                Ok(fates)
            })?;
        Ok(Batch {
            fates,
            effects: Some(effects),
        })
    }
}

/// One packet of the step. A duplicate or a packet the engine refuses writes nothing.
fn apply_packet(env: &mut StepEnv<'_, '_>, d: &Decoded<'_>, now: u64) -> Result<Fate, WitanError> {
    if env.step.is_seen(&d.hash)? {
        return Ok(Fate::Duplicate);
    }
    let ((), applied) = match env.handle_packet(&d.envelope)? {
        Ok(done) => done,
        Err(e) => return Ok(Fate::Rejected(e.to_string())),
    };
    let id = d.envelope.conversation_id.as_str();
    // A welcome comes with the commit that adds its joiners, so a joiner joins at epoch 1 at
    // the earliest, and what it kept from below its epoch is dropped unread then (see
    // `StepEnv::refeed`): traffic of epoch 0 is not worth storing.
    let useless = applied.state == State::PendingJoin && applied.buffer_for_epoch == Some(0);
    // A packet kept for a future epoch is unauthenticated: the buffer de-duplicates it, and it
    // is marked seen only once applied, so forgeries cannot grow the seen table.
    let fate = match applied.buffer_for_epoch {
        _ if applied.duplicate => Fate::Duplicate,
        Some(_) if useless => Fate::Accepted,
        Some(epoch) => {
            let packet = (&d.hash, d.payload);
            match env
                .step
                .buffer_inbound(id, epoch, packet, now, FUTURE_EPOCH_BUFFER)?
            {
                Buffered::Stored => Fate::Accepted,
                Buffered::Already => Fate::Duplicate,
                Buffered::Refused => Fate::Rejected(format!(
                    "buffer for future epochs of {id:?} is full of nearer epochs"
                )),
            }
        }
        None => {
            if applied.needs_seen_mark() {
                env.step.mark_seen(&d.hash, now)?;
            }
            Fate::Accepted
        }
    };
    if applied.epoch_advanced {
        env.refeed(id, applied)?;
    }
    Ok(fate)
}
