//! Inbound packets: routing by kind, the checks every group packet passes before it is
//! decrypted (its MLS group, its epoch, its recipient), and the dispatch of what it carries
//! to the part it concerns.
//!
//! A packet's MLS framing (group id, epoch), like a sealed packet's epoch, is not
//! authenticated, so it is only used to route: a packet claiming a later epoch is handed
//! back to be buffered (bounded by the client) and starts no clock — only a certified commit
//! moves a member on. A packet addressed to another member (its blinded recipient tag is not
//! this member's) is dropped without being decrypted.

use super::{Conversation, State};
use crate::mls::{Group, MemberId, MlsError};
use crate::protocol::{ChatRecord, Ctx, Event, Output, ProtocolError};
use witan_wire::{self as wire, group_payload::Content};

impl Conversation {
    /// Handles one inbound envelope.
    pub fn handle_packet(
        &mut self,
        ctx: &Ctx,
        env: &wire::Envelope,
    ) -> Result<Output, ProtocolError> {
        if env.conversation_id != self.id {
            return Err(ProtocolError::WrongConversation);
        }
        self.refresh_epoch_facts(ctx)?;
        let mut out = Output::default();
        match wire::PacketKind::try_from(env.kind).unwrap_or(wire::PacketKind::Unspecified) {
            wire::PacketKind::JoinRequest => {
                let req = wire::decode_join_request(&env.body)?;
                if self.is_member_state() {
                    self.on_join_request(ctx, req, &mut out)?;
                }
            }
            wire::PacketKind::Welcome => {
                let packet = wire::decode_welcome_packet_shared(env.body.clone())?;
                if self.is_waiting_to_join() {
                    self.on_welcome(ctx, packet, &mut out)?;
                }
            }
            wire::PacketKind::Group => self.on_group_packet(ctx, env, &mut out)?,
            wire::PacketKind::Sealed => self.on_sealed_packet(ctx, env, &mut out)?,
            wire::PacketKind::CatchUp => {
                let c = wire::decode_catch_up(&env.body)?;
                if self.is_member_state() {
                    self.on_catch_up(ctx, c, &mut out)?;
                }
            }
            wire::PacketKind::Unspecified => {
                return Err(ProtocolError::InvalidInput("unknown packet kind".into()));
            }
        }
        self.fire_due(ctx, &mut out)?;
        self.settle_state(&mut out);
        Ok(out)
    }

    fn on_group_packet(
        &mut self,
        ctx: &Ctx,
        env: &wire::Envelope,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let (group_id, message_epoch) = Group::message_header(&env.body)?;
        if group_id != self.id.as_bytes() {
            return Err(ProtocolError::InvalidInput(
                "the packet is for another MLS group".into(),
            ));
        }
        if !self.admit(ctx, message_epoch, &env.recipient, out)? {
            return Ok(());
        }
        let mut group = self.load_group(ctx)?;
        let decrypted = match group.decrypt(ctx.provider, &env.body) {
            Ok(d) => d,
            Err(MlsError::WrongEpoch { .. }) => return Err(ProtocolError::Stale),
            // Our own packet echoed back by the transport: already applied when it was sent.
            Err(MlsError::OwnMessage) => return Ok(()),
            Err(MlsError::Replayed) => {
                out.duplicate = true;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if env.sender.as_slice() != decrypted.sender.as_bytes() {
            return Err(ProtocolError::SenderMismatch);
        }
        let sender = decrypted.sender;
        let payload = wire::decode_group_payload(&decrypted.plaintext)?;
        let content = payload
            .content
            .ok_or_else(|| ProtocolError::InvalidInput("empty payload".into()))?;
        if let Content::Chat(chat) = content {
            // Chat of an earlier epoch is read as long as MLS keeps its keys, even from a
            // member that has left since.
            let record = ChatRecord {
                message_id: hex::encode(&chat.message_id),
                sender,
                body: chat.body,
                sent_at_ms: chat.sent_at_ms,
                own: false,
            };
            out.messages.push(record.clone());
            out.events.push(Event::MessageReceived(record));
            return Ok(());
        }
        if !self.is_member(&sender) {
            return Err(ProtocolError::NotMember);
        }
        let current = decrypted.epoch == self.epoch;
        if let Content::Certified(c) = content {
            if !current {
                return Ok(());
            }
            return self.on_certified(ctx, &mut group, c, Some(wire::encode(env)), out);
        }
        self.on_content(ctx, &mut group, sender, content, current, out)
    }

    /// Whether a packet of the group's traffic (MLS or sealed) of `epoch`, addressed to
    /// `recipient` (empty for everyone), is for this member now. A joiner's and a later
    /// epoch's packets are handed back to be buffered; another member's are dropped.
    pub(super) fn admit(
        &mut self,
        ctx: &Ctx,
        epoch: u64,
        recipient: &[u8],
        out: &mut Output,
    ) -> Result<bool, ProtocolError> {
        match self.state {
            State::PendingJoin | State::Left if self.is_waiting_to_join() => {
                // Traffic of the group this node is about to join: kept for after the welcome.
                out.buffer_for_epoch = Some(epoch);
                return Ok(false);
            }
            State::Left => {
                return Err(ProtocolError::WrongState {
                    state: self.state,
                    reason: "left the conversation".into(),
                });
            }
            _ => {}
        }
        if epoch > self.epoch {
            out.buffer_for_epoch = Some(epoch);
            self.note_behind(ctx);
            return Ok(false);
        }
        // Addressed to another member (or to this one in an epoch it has left).
        Ok(recipient.is_empty() || recipient == self.tag.as_slice())
    }

    /// What a member's governance packet carries. Round messages count only in the epoch
    /// they were sent in (`current`); proposals and votes in any epoch still readable.
    fn on_content(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        sender: MemberId,
        content: Content,
        current: bool,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        match content {
            Content::Chat(_) | Content::Sync(_) => Ok(()),
            Content::Proposal(p) => self.on_proposal(ctx, group, sender, p, out),
            Content::Vote(v) => self.on_vote(ctx, group, Some(sender), v, out),
            Content::Votes(bundle) => {
                for v in bundle.votes {
                    self.on_vote(ctx, group, None, v, out)?;
                }
                Ok(())
            }
            Content::Proof(p) => self.on_proof(ctx, group, p, out),
            _ if !current => Ok(()),
            Content::Candidate(c) => self.on_candidate(ctx, group, sender, c, out),
            Content::Prevote(v) => {
                let effects = self.with_round(ctx, |r, rcx| r.on_prevote(v, rcx));
                self.drive(ctx, group, effects, out)
            }
            Content::Precommit(v) => {
                let effects = self.with_round(ctx, |r, rcx| r.on_precommit(v, rcx));
                self.drive(ctx, group, effects, out)
            }
            Content::Polka(p) => self.on_polka(ctx, group, p, out),
            Content::Certified(c) => self.on_certified(ctx, group, c, None, out),
            Content::NewRound(m) => {
                let effects = self.with_round(ctx, |r, rcx| r.on_new_round(sender, m, rcx));
                self.drive(ctx, group, effects, out)
            }
        }
    }
}
