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
//! batch opens each packet once more than applying it does: an AES-GCM of a few hundred
//! bytes, against the signature check it spares.

use prost::Message;

use super::{Conversation, PartKey};
use crate::mls::checked::MAX_CHECKED;
use crate::mls::{self, CheckedSignatures, Group, Layer, MAX_PAST_EPOCHS, MemberId, SealKey};
use crate::protocol::ballot_box::{Digest, verify_signed_vote};
use crate::protocol::{Ctx, Output, ProtocolError};
use witan_wire::{self as wire, sealed_payload::Content};

/// Vote signatures a batch proved for the packets being applied: a memory of a verdict that
/// every member reaches alike, so it is never stored, and two conversations compare equal
/// whatever it holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProvedVotes(pub(crate) CheckedSignatures);

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
        self.checked.0.clear();
        if !Layer::Votes.enabled() || !self.is_member_state() {
            return 0;
        }
        let items: Vec<SignatureItem> = packets
            .iter()
            .filter(|p| p.kind == wire::PacketKind::Sealed as i32 && p.conversation_id == self.id)
            .take(MAX_CHECKED)
            .filter_map(|p| wire::decode_sealed(&p.body).ok())
            .filter_map(|body| self.sealed_vote_signature(ctx, &body))
            .collect();
        if self.checked.0.check_batch(&items) {
            items.len()
        } else {
            0
        }
    }

    /// The signature of the member vote `body` seals, if it seals one under a kept key whose
    /// hash matches its fields (the rest of the vote's checks come when it is applied).
    fn sealed_vote_signature(&self, ctx: &Ctx, body: &wire::Sealed) -> Option<SignatureItem> {
        let key = self.seal_keys.iter().find(|k| k.epoch == body.epoch)?;
        let plaintext = mls::seal::open(ctx.provider, key, &self.id, body).ok()?;
        let Some(Content::Vote(signed)) = wire::decode_sealed_payload(&plaintext).ok()?.content
        else {
            return None;
        };
        let vote = signed.vote?;
        let digest: Digest = signed.proposal_digest.as_slice().try_into().ok()?;
        let owner: [u8; 32] = vote.vote_owner.as_slice().try_into().ok()?;
        let voter = MemberId::from_public_key(&owner);
        if voter == self.me || !self.is_member(&voter) {
            return None;
        }
        let hash = wire::vote_hash(&self.id, &digest, &vote);
        (hash.as_slice() == vote.vote_hash.as_slice()).then_some((
            owner,
            vote.vote_hash,
            vote.signature,
        ))
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

    /// Handles a sealed packet that passed the routing checks (`inbound.rs`).
    pub(super) fn on_sealed(
        &mut self,
        ctx: &Ctx,
        body: &wire::Sealed,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let group = self.load_group(ctx)?;
        let key = if body.epoch == self.epoch {
            self.current_seal_key(ctx, &group)?
        } else {
            match self.seal_keys.iter().find(|k| k.epoch == body.epoch) {
                Some(k) => k.clone(),
                None => return Err(ProtocolError::Stale),
            }
        };
        let plaintext = mls::seal::open(ctx.provider, &key, &self.id, body)?;
        let payload = wire::decode_sealed_payload(&plaintext)?;
        let content = payload
            .content
            .ok_or_else(|| ProtocolError::InvalidInput("empty sealed payload".into()))?;
        let mut group = group;
        let current = body.epoch == self.epoch;
        match content {
            Content::Vote(signed) => self.on_sealed_vote(ctx, &mut group, signed, out),
            // Round messages count only in the epoch they were sent in.
            _ if !current => Ok(()),
            Content::Prevote(v) => {
                let effects = self.with_round(ctx, |r, rcx| r.on_prevote(v, rcx));
                self.drive(ctx, &mut group, effects, out)
            }
            Content::Precommit(v) => {
                let effects = self.with_round(ctx, |r, rcx| r.on_precommit(v, rcx));
                self.drive(ctx, &mut group, effects, out)
            }
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
            None => {
                verify_signed_vote(&self.id, &digest, &vote, &self.checked.0)?;
            }
        }
        self.on_vote(ctx, group, Some(voter), vote, out)
    }
}
