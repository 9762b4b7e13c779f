//! Votes, prevotes and precommits sent sealed (`wire::Sealed`) instead of as MLS messages.
//!
//! Each of them is signed by its author's identity key, and that signature is what every
//! member checks (and what evidence and certificates carry). As an MLS message a vote cost
//! every receiver a second signature check (the MLS framing) and a step of the sender's
//! ratchet, written to the store; sealed, it costs one AEAD and its own check. Why this is
//! safe — the author is proven by the signature, a replay changes nothing, a vote counts only
//! for members — is in docs/safety.md ("Votes outside MLS").
//!
//! The keys of the current epoch and the last `MAX_PAST_EPOCHS` are kept, like MLS keeps
//! those epochs' secrets, so a vote sealed just before a commit still counts after it.
//!
//! Votes that arrive together (a push backlog, a large group's voting window) are checked as
//! one batch before they are applied ([`Conversation::check_sealed_votes`]); what the batch
//! proves spares each packet its own check, and changes no outcome (`mls::checked`). The
//! votes the batch opened are kept by their packet's sealed bytes until the next batch, so
//! applying such a packet neither decodes nor opens it again: the same bytes under the same
//! epoch's key open to the same vote.

use std::collections::HashMap;

use prost::Message;

use super::{Conversation, PartKey};
use crate::mls::checked::MAX_CHECKED;
use crate::mls::{self, CheckedSignatures, Group, Layer, MAX_PAST_EPOCHS, MemberId, SealKey};
use crate::protocol::ballot_box::{Digest, check_vote_hash, verify_signed_vote};
use crate::protocol::{Ctx, Output, ProtocolError};
use witan_wire::{self as wire, sealed_payload::Content};

/// Vote signatures a batch proved for the packets being applied, and the votes it opened: a
/// memory of a verdict that every member reaches alike, so it is never stored, and two
/// conversations compare equal whatever it holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProvedVotes {
    pub(crate) signatures: CheckedSignatures,
    /// The votes of the last passing batch, by the sealed body that carried them (at most
    /// `MAX_CHECKED`; each taken when its packet is applied).
    opened: HashMap<wire::Bytes, OpenedVote>,
}

/// A vote a batch opened: the epoch it was sealed in and what it sealed.
#[derive(Clone, Debug)]
struct OpenedVote {
    epoch: u64,
    signed: wire::SignedVote,
}

/// A sealed packet as it reaches its handler: opened by the last batch, or still sealed.
enum Arrived {
    Opened(OpenedVote),
    Sealed(wire::Sealed),
}

impl Arrived {
    fn epoch(&self) -> u64 {
        match self {
            Arrived::Opened(o) => o.epoch,
            Arrived::Sealed(s) => s.epoch,
        }
    }
}

impl ProvedVotes {
    /// Forgets the last batch.
    fn clear(&mut self) {
        self.signatures.clear();
        self.opened.clear();
    }

    /// How many opened votes wait for their packets.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn opened_len(&self) -> usize {
        self.opened.len()
    }

    /// The vote a batch opened from `body`, taken out of the memory.
    fn take_opened(&mut self, body: &[u8]) -> Option<OpenedVote> {
        self.opened.remove(body)
    }
}

impl PartialEq for ProvedVotes {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A vote's signature, as a batch takes it: key, signed hash, signature.
type SignatureItem = ([u8; 32], Vec<u8>, Vec<u8>);

impl Conversation {
    /// Checks the member votes sealed in `packets` (about to be applied one by one; those of
    /// other kinds or conversations are passed over) as one batch, and remembers them if it
    /// passes, until the next call. Only votes under a key this member keeps are looked at;
    /// anything else is left to the packet's own handling. Returns how many signatures the
    /// batch proved.
    pub fn check_sealed_votes(&mut self, ctx: &Ctx, packets: &[&wire::Envelope]) -> usize {
        self.checked.clear();
        if !Layer::Votes.enabled() || !self.is_member_state() {
            return 0;
        }
        let mut items: Vec<SignatureItem> = Vec::new();
        let mut opened = HashMap::new();
        let sealed = packets
            .iter()
            .filter(|p| p.kind == wire::PacketKind::Sealed as i32 && p.conversation_id == self.id)
            .take(MAX_CHECKED);
        for p in sealed {
            if let Some((item, vote)) = self.open_sealed_vote(ctx, &p.body) {
                items.push(item);
                opened.insert(p.body.clone(), vote);
            }
        }
        if self.checked.signatures.check_batch(&items) {
            self.checked.opened = opened;
            items.len()
        } else {
            0
        }
    }

    /// The member vote `body` seals, with its signature, if it seals one under a kept key
    /// whose hash matches its fields (the rest of the vote's checks come when it is applied).
    fn open_sealed_vote(&self, ctx: &Ctx, body: &[u8]) -> Option<(SignatureItem, OpenedVote)> {
        let sealed = wire::decode_sealed(body).ok()?;
        let key = self.seal_keys.iter().find(|k| k.epoch == sealed.epoch)?;
        let plaintext = mls::seal::open(ctx.provider, key, &self.id, &sealed).ok()?;
        let Some(Content::Vote(signed)) = wire::decode_sealed_payload(&plaintext).ok()?.content
        else {
            return None;
        };
        let vote = signed.vote.as_ref()?;
        let digest: Digest = signed.proposal_digest.as_slice().try_into().ok()?;
        let owner: [u8; 32] = vote.vote_owner.as_slice().try_into().ok()?;
        let voter = MemberId::from_public_key(&owner);
        if voter == self.me || !self.is_member(&voter) {
            return None;
        }
        // A copy of a vote counted before, or one on a decided proposal, counts for nothing:
        // no signature of the batch is spent on it.
        if self.ballots.is_resolved(&digest) || self.ballots.holds(&digest, vote) {
            return None;
        }
        let hash = wire::vote_hash(&self.id, &digest, vote);
        if hash.as_slice() != vote.vote_hash.as_slice() {
            return None;
        }
        let item = (owner, vote.vote_hash.clone(), vote.signature.clone());
        let epoch = sealed.epoch;
        Some((item, OpenedVote { epoch, signed }))
    }

    /// Casts this member's vote and sends it sealed.
    pub(super) fn cast(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        digest: &Digest,
        approve: bool,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let vote = self.with_ballots(ctx.now_ms, |b, scope| {
            b.cast(ctx.identity, digest, approve, scope)
        })?;
        let signed = wire::SignedVote {
            proposal_digest: digest.to_vec(),
            vote: Some(vote),
        };
        self.send_sealed(
            ctx,
            group,
            wire::sealed_payload::Content::Vote(signed),
            None,
            out,
        )
    }

    /// Seals `content` with the current epoch's key and queues it (to `to`'s recipient tag,
    /// if given).
    pub(super) fn send_sealed(
        &mut self,
        ctx: &Ctx,
        group: &Group,
        content: Content,
        to: Option<MemberId>,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let key = self.current_seal_key(ctx, group)?;
        let plaintext = wire::SealedPayload::new(content).encode_to_vec();
        let sealed = mls::seal::seal(ctx.provider, &key, &self.id, &plaintext)?;
        let body = sealed.encode_to_vec();
        self.publish(ctx, group, wire::PacketKind::Sealed, body, to, out)
    }

    /// The current epoch's sealing key, derived and kept if this state has none yet (a state
    /// stored before sealing existed, or a group just created or joined).
    fn current_seal_key(&mut self, ctx: &Ctx, group: &Group) -> Result<SealKey, ProtocolError> {
        if let Some(k) = self.seal_keys.iter().find(|k| k.epoch == self.epoch) {
            return Ok(k.clone());
        }
        let key = group.seal_key(ctx.provider)?;
        if key.epoch != self.epoch {
            return Err(ProtocolError::Internal(
                "the group and the conversation are in different epochs".into(),
            ));
        }
        self.keep_seal_key(key.clone());
        Ok(key)
    }

    /// Keeps `key` and forgets keys more than `MAX_PAST_EPOCHS` before it.
    pub(super) fn keep_seal_key(&mut self, key: SealKey) {
        let oldest = key.epoch.saturating_sub(MAX_PAST_EPOCHS as u64);
        self.seal_keys
            .retain(|k| k.epoch >= oldest && k.epoch != key.epoch);
        self.seal_keys.push(key);
        self.seal_keys.sort_by_key(|k| k.epoch);
        self.touch(PartKey::Core);
    }

    /// Handles a sealed packet (`envelope` its packet): routed by its epoch and recipient
    /// (`inbound.rs`), then opened — or taken from the last batch, which opened it already.
    pub(super) fn on_sealed_packet(
        &mut self,
        ctx: &Ctx,
        envelope: &wire::Envelope,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let arrived = match self.checked.take_opened(&envelope.body) {
            Some(opened) => Arrived::Opened(opened),
            None => Arrived::Sealed(wire::decode_sealed(&envelope.body)?),
        };
        let epoch = arrived.epoch();
        if !self.admit(ctx, epoch, &envelope.recipient, out)? {
            // Addressed to another member (a prevote or precommit for the round's leader): a
            // copy is passed over alike. (One kept for a later epoch comes back here then.)
            out.copy_known = out.buffer_for_epoch.is_none();
            return Ok(());
        }
        let mut group = self.load_group(ctx)?;
        // Looked up for a vote the batch opened too, so that one of an epoch whose key is
        // gone since the batch is refused alike.
        let key = self.seal_key_of(ctx, &group, epoch)?;
        let content = match arrived {
            Arrived::Opened(opened) => Content::Vote(opened.signed),
            Arrived::Sealed(body) => {
                let plaintext = mls::seal::open(ctx.provider, &key, &self.id, &body)?;
                wire::decode_sealed_payload(&plaintext)?
                    .content
                    .ok_or_else(|| ProtocolError::InvalidInput("empty sealed payload".into()))?
            }
        };
        match content {
            Content::Vote(signed) => self.on_sealed_vote(ctx, &mut group, signed, out)?,
            // Round messages count only in the epoch they were sent in.
            _ if epoch != self.epoch => {}
            Content::Prevote(v) => {
                let effects = self.with_round(ctx, |r, rcx| r.on_prevote(v, rcx));
                self.drive(ctx, &mut group, effects, out)?;
            }
            Content::Precommit(v) => {
                let effects = self.with_round(ctx, |r, rcx| r.on_precommit(v, rcx));
                self.drive(ctx, &mut group, effects, out)?;
            }
        }
        out.copy_known = true;
        Ok(())
    }

    /// The key of `epoch`: the current one (derived if this state has none yet) or a kept
    /// past one; a past epoch whose key is gone is stale.
    fn seal_key_of(
        &mut self,
        ctx: &Ctx,
        group: &Group,
        epoch: u64,
    ) -> Result<SealKey, ProtocolError> {
        if epoch == self.epoch {
            return self.current_seal_key(ctx, group);
        }
        match self.seal_keys.iter().find(|k| k.epoch == epoch) {
            Some(k) => Ok(k.clone()),
            None => Err(ProtocolError::Stale),
        }
    }

    /// A member's own vote, sealed with its proposal's digest. Its signature proves the voter
    /// (the packet's sender is not authenticated): against the proposal if this member has it,
    /// else against the digest it came with, so that only a vote its voter really signed waits
    /// for its proposal in the voter's share.
    fn on_sealed_vote(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        signed: wire::SignedVote,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let vote = signed
            .vote
            .ok_or_else(|| ProtocolError::InvalidInput("sealed vote without a vote".into()))?;
        let digest: Digest =
            signed.proposal_digest.as_slice().try_into().map_err(|_| {
                ProtocolError::InvalidInput("proposal digest is not 32 bytes".into())
            })?;
        let voter = MemberId::from_public_key(&vote.vote_owner);
        if voter == self.me {
            // Our own vote echoed back: counted when it was cast.
            out.duplicate = true;
            return Ok(());
        }
        if self.ballots.is_resolved(&digest) {
            // A vote on a decided proposal counts for nothing, so its signature is not
            // checked. A copy of a vote counted before comes here once a commit resolved its
            // proposal (sealed votes leave no seen mark) — its voter perhaps removed by it:
            // kept as an orphan, it would wait for a proposal that never comes back.
            check_vote_hash(&self.id, &digest, &vote)?;
            out.duplicate = true;
            return Ok(());
        }
        if !self.is_member(&voter) {
            return Err(ProtocolError::NotMember);
        }
        match self.ballots.digest_of(vote.proposal_id) {
            Some(known) if known == digest => {}
            Some(_) => {
                return Err(ProtocolError::InvalidInput(
                    "the vote names another proposal's digest".into(),
                ));
            }
            // A copy of a vote waiting for its proposal: checked when it first came.
            None if self.ballots.holds(&digest, &vote) => {}
            None => {
                verify_signed_vote(&self.id, &digest, &vote, &self.checked.signatures)?;
            }
        }
        self.on_vote(ctx, group, Some(voter), vote, out)
    }
}
