//! [`Group`]: one MLS group (a conversation) on top of OpenMLS' `MlsGroup`.
//!
//! Policy fixed here for every witan group:
//! - ciphersuite [`CIPHERSUITE`], basic credentials whose identity is the member id;
//! - the ratchet tree travels in the Welcome (`use_ratchet_tree_extension`), so a Welcome alone
//!   is enough to join;
//! - handshake messages (commits) are `PublicMessage`s. OpenMLS' incoming wire-format policy only
//!   applies to handshake messages (application messages must always be `PrivateMessage`), so
//!   the pure-plaintext policy keeps chat encrypted while letting a member stage a commit
//!   candidate and discard it without consuming any secret-tree key;
//! - secrets of the last [`MAX_PAST_EPOCHS`] epochs are kept so late application messages still
//!   decrypt, and the sender ratchets tolerate reordering.
//!
//! Commits are created by the leader of a commit round; the protocol layer decides which one
//! is applied (the certified one). A candidate is verified with [`Group::stage_commit`] (no
//! state change) and applied with [`Group::merge_staged`]; a leader's own candidate stays
//! pending until merged or cleared, and the one candidate a member found valid is kept staged
//! for its certificate (`group/commit.rs`).

use std::cell::OnceCell;

use openmls::framing::errors::{MessageDecryptionError, SecretTreeError};
use openmls::group::{
    MlsGroup, MlsGroupCreateConfig, MlsGroupJoinConfig, PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
    StagedCommit, StagedWelcome,
};
use openmls::prelude::{
    ContentType, GroupId, LeafNodeIndex, MlsMessageBodyIn, ProcessMessageError,
    ProcessedMessageContent, Proposal, ProtocolMessage, Sender, SenderRatchetConfiguration,
    ValidationError,
};
use openmls_traits::OpenMlsProvider as _;

use super::error::MlsError;
use super::identity::Identity;
use super::key_package::{
    check_key_package, credential_member_id, leaf_member_id, message_head, parse_message,
};
use super::member_id::MemberId;
use super::provider::{CIPHERSUITE, MlsProvider};
use super::storage::{MlsStorage, SecretRows};

mod commit;

pub use commit::{CommitOutput, StagedCommitInfo};

/// Number of past epochs whose application messages can still be decrypted.
pub const MAX_PAST_EPOCHS: usize = 3;
/// Messages of one sender that may arrive out of order within an epoch.
pub const OUT_OF_ORDER_TOLERANCE: u32 = 100;
/// Maximum number of messages of one sender that may be skipped within an epoch.
pub const MAXIMUM_FORWARD_DISTANCE: u32 = 5000;
/// Most senders whose advanced ratchets a group tracks between two writes of its message
/// secrets; past that they are encoded afresh (copying saves little when most changed).
const MAX_ADVANCED: usize = 32;

fn ratchet_config() -> SenderRatchetConfiguration {
    SenderRatchetConfiguration::new(OUT_OF_ORDER_TOLERANCE, MAXIMUM_FORWARD_DISTANCE)
}

fn create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(ratchet_config())
        .build()
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(ratchet_config())
        .build()
}

/// A decrypted application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The authenticated sender.
    pub sender: MemberId,
    /// The application payload.
    pub plaintext: Vec<u8>,
    /// The epoch the message was sent in.
    pub epoch: u64,
}

/// One MLS group. All state lives in the provider's storage; a `Group` can be dropped and
/// reloaded with [`Group::load`] at any time once the provider's changes are persisted.
#[derive(Debug)]
pub struct Group {
    inner: MlsGroup,
    /// An OpenMLS operation on this group failed: it may have changed the group in memory
    /// without writing its rows, so the group must not be kept in place of the rows.
    failed: bool,
    /// The message secrets as this group last wrote them, to write only the pieces that change.
    written_secrets: Option<SecretRows>,
    /// The leaves whose application ratchets alone changed since `written_secrets` (of that
    /// version) were written — all their next write has to encode afresh; `None` when
    /// anything may have changed.
    advanced: Option<(u64, Vec<usize>)>,
    /// The row key of this group's message secrets, built once (a kept group is lent to
    /// every packet's run, and the key is JSON).
    secrets_row: OnceCell<Vec<u8>>,
    /// A commit of another member staged when it was judged, kept for its merge
    /// ([`Group::keep_staged`]).
    kept: Option<Box<commit::KeptStage>>,
}

impl Group {
    /// Creates a group with `id` as its only member, at epoch 0.
    ///
    /// An inactive group (this member was removed) with the same id is replaced; an active one
    /// is an error.
    pub fn create(p: &MlsProvider, id: &Identity, group_id: &[u8]) -> Result<Group, MlsError> {
        let gid = GroupId::from_slice(group_id);
        clear_inactive(p, &gid)?;
        let inner = MlsGroup::new_with_group_id(
            p,
            &id.signer(),
            &create_config(),
            gid,
            id.credential_with_key(),
        )
        .map_err(MlsError::internal)?;
        Ok(Group::new(inner))
    }

    fn new(inner: MlsGroup) -> Group {
        Group {
            inner,
            failed: false,
            written_secrets: None,
            advanced: None,
            secrets_row: OnceCell::new(),
            kept: None,
        }
    }

    /// The row key of this group's message secrets (`MlsStorage::message_secrets_row`).
    pub(crate) fn secrets_row(&self) -> Result<&[u8], MlsError> {
        if let Some(row) = self.secrets_row.get() {
            return Ok(row);
        }
        let row = MlsStorage::message_secrets_row(self.group_id())
            .map_err(|e| MlsError::Storage(e.to_string()))?;
        Ok(self.secrets_row.get_or_init(|| row))
    }

    /// The OpenMLS group, to change it in a way that is not tracked (see `advanced`).
    fn inner_mut(&mut self) -> &mut MlsGroup {
        self.advanced = None;
        &mut self.inner
    }

    fn written_version(&self) -> Option<u64> {
        self.written_secrets.as_ref().map(SecretRows::version)
    }

    /// After an operation that advanced `leaf`'s application ratchet and nothing else
    /// (`written_before`: the version of the secrets written before it).
    fn note_advanced(&mut self, written_before: Option<u64>, leaf: usize) {
        let now = self.written_version();
        self.advanced = match (now, self.advanced.take()) {
            (None, _) => None,
            // The operation wrote the secrets after advancing the ratchet.
            (Some(v), _) if now != written_before => Some((v, Vec::new())),
            (Some(v), Some((w, mut leaves))) if v == w => {
                if !leaves.contains(&leaf) {
                    leaves.push(leaf);
                }
                (leaves.len() <= MAX_ADVANCED).then_some((v, leaves))
            }
            _ => None,
        };
    }

    /// Runs `op` on the OpenMLS group with the message-secret pieces this group last wrote
    /// lent to the storage, so that it writes only the pieces that changed
    /// (`storage::secret_rows`); `drop_join_config` as there.
    /// `advanced`: the ratchets advanced since that write (`None` for an operation that
    /// changes the secrets itself).
    fn with_secret_memory<T>(
        &mut self,
        p: &MlsProvider,
        advanced: Option<Vec<usize>>,
        drop_join_config: bool,
        op: impl FnOnce(&mut MlsGroup) -> T,
    ) -> T {
        let memory = self.written_secrets.take();
        let inner = &mut self.inner;
        let (out, memory) =
            p.storage()
                .with_secret_memory(memory, advanced, drop_join_config, || op(inner));
        self.written_secrets = memory;
        out
    }

    /// Records a failed OpenMLS operation (see `failed`).
    fn note<T, E>(&mut self, result: &Result<T, E>) {
        self.failed |= result.is_err();
    }

    /// Whether the group is still what its rows say: no OpenMLS operation on it failed (a
    /// cache keeps only such groups; see `mls::cache`).
    pub(crate) fn is_current(&self) -> bool {
        !self.failed
    }

    /// Loads a group persisted in the provider's storage.
    pub fn load(p: &MlsProvider, group_id: &[u8]) -> Result<Option<Group>, MlsError> {
        let inner = MlsGroup::load(p.storage(), &GroupId::from_slice(group_id))
            .map_err(|e| MlsError::Storage(e.to_string()))?;
        Ok(inner.map(Group::new))
    }

    /// Joins a group from a serialized Welcome addressed to one of our stored key packages
    /// (which is consumed). The group's id must be `expected_group_id` (a welcome for another
    /// group is refused before anything is stored), and every leaf of the received tree must
    /// carry a valid member-id credential. Leaf lifetimes are not re-checked: they were
    /// checked when each member was added, and members that never commit would otherwise make
    /// the group unjoinable after the key-package lifetime.
    pub fn join(
        p: &MlsProvider,
        welcome: &[u8],
        expected_group_id: &[u8],
    ) -> Result<Group, MlsError> {
        let bad = |m: String| MlsError::InvalidWelcome(m);
        let msg = parse_message(welcome).map_err(|e| bad(e.to_string()))?;
        let MlsMessageBodyIn::Welcome(welcome) = msg.extract() else {
            return Err(bad("not a welcome message".into()));
        };
        let builder = StagedWelcome::build_from_welcome(p, &join_config(), welcome)
            .map_err(|e| bad(e.to_string()))?;
        let gid = builder
            .processed_welcome()
            .unverified_group_info()
            .group_id()
            .clone();
        if gid.as_slice() != expected_group_id {
            return Err(MlsError::WrongGroup);
        }
        clear_inactive(p, &gid)?;
        // The tree's leaf signatures and the group info's are checked as one batch.
        let (staged, signatures_valid) = p
            .crypto()
            .batching(|| builder.skip_lifetime_validation().build());
        let staged = staged.map_err(|e| bad(e.to_string()))?;
        if !signatures_valid {
            return Err(bad(
                "a signature in the welcome's tree or group info is not valid".into(),
            ));
        }
        if staged.group_context().ciphersuite() != CIPHERSUITE {
            return Err(bad("unsupported ciphersuite".into()));
        }
        for m in staged.members() {
            leaf_member_id(&m.credential, &m.signature_key).map_err(|e| bad(e.to_string()))?;
        }
        let inner = staged.into_group(p).map_err(|e| bad(e.to_string()))?;
        Ok(Group::new(inner))
    }

    /// Removes all state of this group from the provider's storage.
    pub fn delete(mut self, p: &MlsProvider) -> Result<(), MlsError> {
        p.forget_cached_groups();
        self.inner
            .delete(p.storage())
            .map_err(|e| MlsError::Storage(e.to_string()))
    }

    /// Writes the group's message secrets to the provider's storage again, as they are in
    /// memory (the write a deferring storage skipped; nothing else changes: the policy set is
    /// the group's own, and the storage drops the join configuration's write). Only the pieces
    /// that changed since this group last wrote them are written (`storage::secret_rows`).
    pub(crate) fn rewrite_message_secrets(&mut self, p: &MlsProvider) -> Result<(), MlsError> {
        let policy = self.inner.past_epoch_deletion_policy().clone();
        let before = self.written_version();
        let advanced = match &self.advanced {
            Some((v, leaves)) if Some(*v) == before => Some(leaves.clone()),
            _ => None,
        };
        let written = self.with_secret_memory(p, advanced, true, |g| {
            g.set_past_epoch_deletion_policy(p, policy)
        });
        self.note(&written);
        self.advanced = match (&written, self.written_version()) {
            (Ok(()), Some(v)) if Some(v) != before => Some((v, Vec::new())),
            _ => None,
        };
        written.map_err(|e| MlsError::Storage(e.to_string()))
    }

    /// The MLS group id.
    pub fn group_id(&self) -> &[u8] {
        self.inner.group_id().as_slice()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch().as_u64()
    }

    /// The members, in leaf order.
    pub fn members(&self) -> Vec<MemberId> {
        self.inner
            .members()
            .map(|m| {
                credential_member_id(&m.credential)
                    .unwrap_or_else(|_| MemberId::from_public_key(&m.signature_key))
            })
            .collect()
    }

    /// The members with their Ed25519 signature keys (the keys that sign their votes), in leaf
    /// order.
    pub fn member_keys(&self) -> Vec<(MemberId, [u8; 32])> {
        self.inner
            .members()
            .filter_map(|m| {
                let key: [u8; 32] = m.signature_key.as_slice().try_into().ok()?;
                let id = credential_member_id(&m.credential)
                    .unwrap_or_else(|_| MemberId::from_public_key(&key));
                Some((id, key))
            })
            .collect()
    }

    /// An exporter secret of the current epoch (RFC 9420 §8.5): only the epoch's members can
    /// compute it.
    pub fn export(
        &self,
        p: &MlsProvider,
        label: &str,
        context: &[u8],
        len: usize,
    ) -> Result<Vec<u8>, MlsError> {
        self.inner
            .export_secret(p.crypto(), label, context, len)
            .map_err(MlsError::internal)
    }

    /// Whether `member` is currently in the group.
    pub fn contains(&self, member: &MemberId) -> bool {
        self.leaf_index(member).is_some()
    }

    /// A secret that all members of the current epoch share (compare it to detect forks).
    pub fn epoch_authenticator(&self) -> Vec<u8> {
        self.inner.epoch_authenticator().as_slice().to_vec()
    }

    /// `false` once a merged commit removed the local member.
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// Whether one of our commits is waiting to be merged or cleared.
    pub fn has_pending_commit(&self) -> bool {
        self.inner.pending_commit().is_some()
    }

    /// Encrypts an application message for the current epoch (a `PrivateMessage`).
    pub fn encrypt(
        &mut self,
        p: &MlsProvider,
        id: &Identity,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, MlsError> {
        self.ensure_active()?;
        let before = self.written_version();
        let msg = self.with_secret_memory(p, None, false, |g| {
            g.create_message(p, &id.signer(), plaintext)
        });
        self.note(&msg);
        match &msg {
            Ok(_) => self.note_advanced(before, self.inner.own_leaf_index().u32() as usize),
            Err(_) => self.advanced = None,
        }
        let msg = msg.map_err(MlsError::internal)?;
        msg.to_bytes().map_err(MlsError::internal)
    }

    /// Decrypts an application message of the current or a recent epoch.
    ///
    /// Returns [`MlsError::WrongEpoch`] for a future epoch or a past epoch whose secrets are
    /// gone, [`MlsError::OwnMessage`] for our own messages, [`MlsError::Replayed`] for a copy
    /// of a message read before, [`MlsError::NotApplication`] for anything but an
    /// application `PrivateMessage`.
    pub fn decrypt(&mut self, p: &MlsProvider, bytes: &[u8]) -> Result<Decrypted, MlsError> {
        self.ensure_active()?;
        let msg = parse_message(bytes)?;
        let MlsMessageBodyIn::PrivateMessage(pm) = msg.extract() else {
            return Err(MlsError::NotApplication);
        };
        let pm = ProtocolMessage::from(pm);
        if pm.content_type() != ContentType::Application {
            return Err(MlsError::NotApplication);
        }
        if pm.group_id() != self.inner.group_id() {
            return Err(MlsError::WrongGroup);
        }
        let message_epoch = pm.epoch().as_u64();
        let group_epoch = self.epoch();
        let wrong_epoch = MlsError::WrongEpoch {
            message_epoch,
            group_epoch,
        };
        if message_epoch > group_epoch {
            return Err(wrong_epoch);
        }
        let before = self.written_version();
        // Only an application message gets here: its signature is checked once ever.
        let processed = self.with_secret_memory(p, None, false, |g| {
            p.crypto().read_once(|| g.process_message(p, pm))
        });
        self.note(&processed);
        match (&processed, message_epoch == group_epoch) {
            (Ok(m), true) => match m.sender() {
                Sender::Member(leaf) => self.note_advanced(before, leaf.u32() as usize),
                _ => self.advanced = None,
            },
            // A past epoch's ratchet, or a failure that may have changed anything.
            _ => self.advanced = None,
        }
        let processed = processed.map_err(|e| match e {
            // OpenMLS deletes a generation's key once a message of it is read: a copy (in
            // any epoch still kept) asks for a key that is gone.
            ProcessMessageError::ValidationError(ValidationError::UnableToDecrypt(
                MessageDecryptionError::SecretTreeError(SecretTreeError::SecretReuseError),
            )) => MlsError::Replayed,
            ProcessMessageError::ValidationError(
                ValidationError::WrongEpoch | ValidationError::NoPastEpochData,
            ) => wrong_epoch.clone(),
            ProcessMessageError::ValidationError(ValidationError::UnableToDecrypt(
                MessageDecryptionError::SecretTreeError(_),
            )) if message_epoch < group_epoch => wrong_epoch.clone(),
            ProcessMessageError::StorageError(e) => MlsError::Storage(e.to_string()),
            e => MlsError::Decrypt(e.to_string()),
        })?;
        let sender = credential_member_id(processed.credential())?;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => Ok(Decrypted {
                sender,
                plaintext: m.into_bytes(),
                epoch: message_epoch,
            }),
            ProcessedMessageContent::OwnPrivateMessage => Err(MlsError::OwnMessage),
            _ => Err(MlsError::NotApplication),
        }
    }

    /// The group id and epoch a serialized `PublicMessage` or `PrivateMessage` claims, without
    /// decrypting it (unauthenticated: only good for routing).
    pub fn message_header(bytes: &[u8]) -> Result<(Vec<u8>, u64), MlsError> {
        message_head(bytes)
    }

    /// The key-package refs a serialized Welcome is encrypted to (one per new member).
    pub fn welcome_recipients(welcome: &[u8]) -> Result<Vec<[u8; 32]>, MlsError> {
        let msg = parse_message(welcome)?;
        let MlsMessageBodyIn::Welcome(w) = msg.extract() else {
            return Err(MlsError::InvalidWelcome("not a welcome message".into()));
        };
        w.secrets()
            .iter()
            .map(|s| {
                s.new_member().as_slice().try_into().map_err(|_| {
                    MlsError::InvalidWelcome("a key package ref is not 32 bytes".into())
                })
            })
            .collect()
    }

    fn leaf_index(&self, member: &MemberId) -> Option<LeafNodeIndex> {
        self.inner
            .members()
            .find(|m| credential_member_id(&m.credential).ok().as_ref() == Some(member))
            .map(|m| m.index)
    }

    fn ensure_active(&self) -> Result<(), MlsError> {
        if self.inner.is_active() {
            Ok(())
        } else {
            Err(MlsError::Inactive)
        }
    }
}

/// Deletes the stored state of an inactive group with this id; errors if an active one exists.
fn clear_inactive(p: &MlsProvider, gid: &GroupId) -> Result<(), MlsError> {
    // A group is about to be created or joined over these rows.
    p.forget_cached_groups();
    let existing =
        MlsGroup::load(p.storage(), gid).map_err(|e| MlsError::Storage(e.to_string()))?;
    match existing {
        None => Ok(()),
        Some(g) if g.is_active() => Err(MlsError::GroupExists),
        Some(mut g) => g
            .delete(p.storage())
            .map_err(|e| MlsError::Storage(e.to_string())),
    }
}
