//! `poll` and `handle_wakeup`: firing stored deadlines and telling the host when to run next.
//!
//! Deadlines are absolute times stored with each conversation (indexed), so a client that
//! slept past them fires them on its next `poll`, earliest first, one conversation per step,
//! loading only the conversations that are due. A conversation whose poll the engine refuses
//! keeps its state; its deadline is pushed back by [`FAILED_POLL_RETRY_MS`] so the host does
//! not spin on it, and the listener hears a warning.

use super::WitanClient;
use super::error::WitanError;
use super::step::Durability;
use super::types::{ClientRole, InboundPacket, Notification, PollReport, WakeupReport, WitanEvent};

/// How long a conversation whose poll failed waits before it is fired again.
const FAILED_POLL_RETRY_MS: u64 = 60_000;
/// Seen-packet hashes older than this are forgotten (replays that old are refused by the
/// engine anyway: their epoch is long gone).
const SEEN_RETENTION_MS: u64 = 30 * 24 * 3_600_000;

impl WitanClient {
    /// Fires every deadline that is due, retries the outbox, and says when it next needs to
    /// run.
    pub fn poll(&self) -> Result<PollReport, WitanError> {
        let mut delivered = Vec::new();
        self.drain_spool(&mut delivered)?;
        self.poll_collecting(&mut delivered)
    }

    /// The push-notification path: receive + poll + outbox in one call, returning what the
    /// notification should show (the chat messages this call stored).
    ///
    /// In the extension role, a database held by the app past the extension's bound is not
    /// an error: the packets are kept for the next run (`spooled_packets`), and protocol work
    /// left for the app is reported (`deferred_work`).
    pub fn handle_wakeup(&self, packets: Vec<InboundPacket>) -> Result<WakeupReport, WitanError> {
        let extension = self.role == ClientRole::NotificationExtension;
        let mut delivered = Vec::new();
        let mut spooled_packets = 0;
        let packets = super::inbound::incoming(packets);
        match self
            .drain_spool(&mut delivered)
            .and_then(|()| self.receive_collecting(&packets, &mut delivered))
        {
            Ok(_) => {}
            // Packets a partly applied call already stored come back as duplicates.
            Err(e) if extension && e.is_busy() => spooled_packets = self.spool(&packets)?,
            Err(e) => return Err(e),
        }
        let (next_wakeup_at_ms, deferred_work) = if spooled_packets > 0 {
            (None, true)
        } else {
            match self.poll_collecting(&mut delivered) {
                Ok(poll) => {
                    let now = self.clock.now_ms();
                    // What the extension left undone stays due in the stored deadlines.
                    let due = poll.next_wakeup_at_ms.is_some_and(|at| at <= now);
                    (poll.next_wakeup_at_ms, extension && due)
                }
                Err(e) if extension && e.is_busy() => (None, true),
                Err(e) => return Err(e),
            }
        };
        let notifications = delivered
            .into_iter()
            .filter_map(|e| match e {
                WitanEvent::MessageReceived {
                    conversation_id,
                    message,
                } => Some(Notification {
                    conversation_id,
                    sender: message.sender,
                    message_id: message.message_id,
                    body: message.body,
                }),
                _ => None,
            })
            .collect();
        Ok(WakeupReport {
            notifications,
            next_wakeup_at_ms,
            deferred_work,
            spooled_packets,
        })
    }

    pub(crate) fn poll_collecting(
        &self,
        delivered: &mut Vec<WitanEvent>,
    ) -> Result<PollReport, WitanError> {
        self.write_carried_secrets()?;
        let now = self.clock.now_ms();
        let due = self.with_db(|db| {
            let step = db.read()?;
            Ok(step.due_conversations(now)?)
        })?;
        for (id, _) in due {
            self.fire(&id, now, delivered)?;
        }
        let sent = self.flush_outbox()?;
        let (next_deadline, next_attempt, outbox_pending) = self.with_db(|db| {
            // Pruning may be lost to a power cut: it is done again next time.
            let step = db.relaxed_step()?;
            step.prune_seen(now.saturating_sub(SEEN_RETENTION_MS))?;
            let found = (
                step.next_deadline()?,
                step.outbox_next_attempt()?,
                step.outbox_len()?,
            );
            step.commit()?;
            Ok(found)
        })?;
        let next_wakeup_at_ms = match (next_deadline, next_attempt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(PollReport {
            next_wakeup_at_ms,
            sent,
            outbox_pending,
        })
    }

    /// Fires the due deadlines of one conversation in one step.
    fn fire(&self, id: &str, now: u64, delivered: &mut Vec<WitanEvent>) -> Result<(), WitanError> {
        let (failure, mut effects) =
            self.in_step_then(now, Durability::SyncedBeforePublishing, |env| {
                let result = env.run_engine(id, |conv, ctx| {
                    let mut conv =
                        conv.ok_or_else(|| WitanError::not_found(format!("conversation {id:?}")))?;
                    let state = conv.state();
                    let out = conv
                        .poll(ctx)
                        .map_err(|e| WitanError::from_protocol(e, state))?;
                    Ok((conv, (), out))
                })?;
                match result {
                    Ok(((), applied)) => {
                        if applied.epoch_advanced {
                            env.refeed(id, applied)?;
                        }
                        Ok(None)
                    }
                    Err(e) => {
                        // Keep the state as it was; only move its deadline back.
                        if env.step.has_conversation(id)? {
                            let retry = now.saturating_add(FAILED_POLL_RETRY_MS);
                            env.step.save_conversation(id, Some(retry))?;
                        }
                        Ok(Some(e))
                    }
                }
            })?;

        if let Some(e) = failure {
            tracing::warn!(conversation = id, error = %e, "deadline failed; retried later");
            effects.events.push(WitanEvent::Warning {
                conversation_id: Some(id.to_string()),
                message: format!("a scheduled step failed and will be retried: {e}"),
            });
        }
        delivered.extend(self.after_commit(effects));
        Ok(())
    }
}
