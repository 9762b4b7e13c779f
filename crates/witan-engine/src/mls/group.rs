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
//! Commits are only created by elected stewards; the protocol layer decides which candidate
//! wins. A candidate is verified with [`Group::stage_commit`] (no state change) and applied with
//! [`Group::merge_staged`]; a steward's own candidate stays pending until merged or cleared.

use openmls::framing::errors::MessageDecryptionError;
use openmls::group::{
    MlsGroup, MlsGroupCreateConfig, MlsGroupJoinConfig, PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
    StagedCommit, StagedWelcome,
};
use openmls::prelude::{
    ContentType, GroupId, LeafNodeIndex, MlsMessageBodyIn, ProcessMessageError,
    ProcessedMessageContent, Proposal, ProtocolMessage, SenderRatchetConfiguration,
    ValidationError,
};
use openmls_traits::OpenMlsProvider as _;

use super::error::MlsError;
use super::identity::{Identity, MemberId};
use super::key_package::{check_key_package, credential_member_id, leaf_member_id, parse_message};
use super::provider::{CIPHERSUITE, MlsProvider};

/// Number of past epochs whose application messages can still be decrypted.
pub const MAX_PAST_EPOCHS: usize = 3;
/// Messages of one sender that may arrive out of order within an epoch.
pub const OUT_OF_ORDER_TOLERANCE: u32 = 100;
/// Maximum number of messages of one sender that may be skipped within an epoch.
pub const MAXIMUM_FORWARD_DISTANCE: u32 = 5000;

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

/// Result of [`Group::create_commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutput {
    /// The commit, a serialized `MlsMessage` (`PublicMessage`).
    pub commit: Vec<u8>,
    /// The Welcome for the added members, a serialized `MlsMessage`, if members were added.
    pub welcome: Option<Vec<u8>>,
}

/// A verified commit that has not been merged yet. Dropping it discards the candidate.
pub struct StagedCommitInfo {
    /// The member that created the commit.
    pub committer: MemberId,
    /// The epoch the commit applies to (the group advances to `epoch + 1` when merging).
    pub epoch: u64,
    /// Members added by the commit, in proposal order.
    pub added: Vec<MemberId>,
    /// Members removed by the commit, in proposal order.
    pub removed: Vec<MemberId>,
    /// Whether the local member is removed by the commit.
    pub self_removed: bool,
    staged: Staged,
}

enum Staged {
    /// A commit of another member.
    Remote(Box<StagedCommit>),
    /// Our own pending commit, identified by the confirmed transcript hash it produces.
    OwnPending(Vec<u8>),
}

impl std::fmt::Debug for StagedCommitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedCommitInfo")
            .field("committer", &self.committer)
            .field("epoch", &self.epoch)
            .field("added", &self.added)
            .field("removed", &self.removed)
            .field("self_removed", &self.self_removed)
            .field("own", &matches!(self.staged, Staged::OwnPending(_)))
            .finish()
    }
}

/// One MLS group. All state lives in the provider's storage; a `Group` can be dropped and
/// reloaded with [`Group::load`] at any time once the provider's changes are persisted.
#[derive(Debug)]
pub struct Group {
    inner: MlsGroup,
    /// An OpenMLS operation on this group failed: it may have changed the group in memory
    /// without writing its rows, so the group must not be kept in place of the rows.
    failed: bool,
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
        }
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
    /// (which is consumed). Every leaf of the received tree must carry a valid member-id
    /// credential. Leaf lifetimes are not re-checked: they were checked when each member was
    /// added, and members that never commit would otherwise make the group unjoinable after the
    /// key-package lifetime.
    pub fn join(p: &MlsProvider, welcome: &[u8]) -> Result<Group, MlsError> {
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
        clear_inactive(p, &gid)?;
        let staged = builder
            .skip_lifetime_validation()
            .build()
            .map_err(|e| bad(e.to_string()))?;
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
    /// the group's own).
    pub(crate) fn rewrite_message_secrets(&mut self, p: &MlsProvider) -> Result<(), MlsError> {
        let policy = self.inner.past_epoch_deletion_policy().clone();
        let written = self.inner.set_past_epoch_deletion_policy(p, policy);
        self.note(&written);
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
        let msg = self.inner.create_message(p, &id.signer(), plaintext);
        self.note(&msg);
        let msg = msg.map_err(MlsError::internal)?;
        msg.to_bytes().map_err(MlsError::internal)
    }

    /// Decrypts an application message of the current or a recent epoch.
    ///
    /// Returns [`MlsError::WrongEpoch`] for a future epoch or a past epoch whose secrets are
    /// gone, [`MlsError::OwnMessage`] for our own messages, [`MlsError::NotApplication`] for
    /// anything but an application `PrivateMessage`.
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
        let processed = self.inner.process_message(p, pm);
        self.note(&processed);
        let processed = processed.map_err(|e| match e {
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

    /// The epoch of a serialized `PublicMessage` or `PrivateMessage`, without decrypting it.
    pub fn message_epoch(bytes: &[u8]) -> Result<u64, MlsError> {
        match parse_message(bytes)?.extract() {
            MlsMessageBodyIn::PublicMessage(m) => Ok(ProtocolMessage::from(m).epoch().as_u64()),
            MlsMessageBodyIn::PrivateMessage(m) => Ok(ProtocolMessage::from(m).epoch().as_u64()),
            _ => Err(MlsError::Malformed("not a protocol message".into())),
        }
    }

    /// Creates a commit adding the members of the given serialized key packages (validated
    /// with [`super::validate_key_package`]) and removing the given members. The commit stays
    /// pending until [`Group::merge_pending_commit`] or [`Group::clear_pending_commit`]; an
    /// earlier pending commit is cleared first.
    pub fn create_commit(
        &mut self,
        p: &MlsProvider,
        id: &Identity,
        adds: &[Vec<u8>],
        removes: &[MemberId],
    ) -> Result<CommitOutput, MlsError> {
        self.ensure_active()?;
        let mut key_packages = Vec::with_capacity(adds.len());
        let mut added: Vec<MemberId> = Vec::with_capacity(adds.len());
        for bytes in adds {
            let (kp, info) = check_key_package(p, bytes)?;
            if self.contains(&info.member_id) || added.contains(&info.member_id) {
                return Err(MlsError::InvalidKeyPackage(format!(
                    "{:?} is already a member or added twice",
                    info.member_id
                )));
            }
            added.push(info.member_id);
            key_packages.push(kp);
        }
        let own = self.inner.own_leaf_index();
        let mut leaves: Vec<LeafNodeIndex> = Vec::with_capacity(removes.len());
        for member in removes {
            let leaf = self
                .leaf_index(member)
                .ok_or(MlsError::UnknownMember(*member))?;
            if leaf == own {
                return Err(MlsError::InvalidCommit(
                    "a committer cannot remove itself".into(),
                ));
            }
            if !leaves.contains(&leaf) {
                leaves.push(leaf);
            }
        }
        self.clear_pending_commit(p)?;
        let bundle = (|| {
            self.inner
                .commit_builder()
                .propose_adds(key_packages)
                .propose_removals(leaves)
                .load_psks(p.storage())
                .map_err(|e| MlsError::Storage(e.to_string()))?
                .build(p.rand(), p.crypto(), &id.signer(), |_| true)
                .map_err(|e| MlsError::InvalidCommit(e.to_string()))?
                .stage_commit(p)
                .map_err(|e| MlsError::InvalidCommit(e.to_string()))
        })();
        self.note(&bundle);
        let (commit, welcome, _group_info) = bundle?.into_messages();
        Ok(CommitOutput {
            commit: commit.to_bytes().map_err(MlsError::internal)?,
            welcome: welcome
                .map(|w| w.to_bytes())
                .transpose()
                .map_err(MlsError::internal)?,
        })
    }

    /// Merges our pending commit, advancing the epoch.
    pub fn merge_pending_commit(&mut self, p: &MlsProvider) -> Result<(), MlsError> {
        if !self.has_pending_commit() {
            return Err(MlsError::NoPendingCommit);
        }
        let merged = self.inner.merge_pending_commit(p);
        self.note(&merged);
        merged.map_err(|e| MlsError::InvalidCommit(e.to_string()))
    }

    /// Drops our pending commit (another candidate won). No-op without a pending commit.
    pub fn clear_pending_commit(&mut self, p: &MlsProvider) -> Result<(), MlsError> {
        let cleared = self.inner.clear_pending_commit(p.storage());
        self.note(&cleared);
        cleared.map_err(|e| MlsError::Storage(e.to_string()))
    }

    /// Verifies a serialized commit of the current epoch without changing the group.
    ///
    /// Only Add and Remove proposals are accepted, every added leaf must carry a valid
    /// member-id credential, and the committer may not change its own identity. Our own pending
    /// commit, received back from the network, is recognised and merged as such.
    pub fn stage_commit(
        &mut self,
        p: &MlsProvider,
        commit: &[u8],
    ) -> Result<StagedCommitInfo, MlsError> {
        self.ensure_active()?;
        let bad = |m: String| MlsError::InvalidCommit(m);
        let msg = parse_message(commit)?;
        let pm = match msg.extract() {
            MlsMessageBodyIn::PublicMessage(m) => ProtocolMessage::from(m),
            _ => return Err(MlsError::NotACommit),
        };
        if pm.content_type() != ContentType::Commit {
            return Err(MlsError::NotACommit);
        }
        if pm.group_id() != self.inner.group_id() {
            return Err(MlsError::WrongGroup);
        }
        let epoch = self.epoch();
        if pm.epoch().as_u64() != epoch {
            return Err(MlsError::WrongEpoch {
                message_epoch: pm.epoch().as_u64(),
                group_epoch: epoch,
            });
        }
        let processed = self.inner.process_message(p, pm);
        self.note(&processed);
        let processed = processed.map_err(|e| match e {
            ProcessMessageError::StorageError(e) => MlsError::Storage(e.to_string()),
            e => bad(e.to_string()),
        })?;
        let committer = credential_member_id(processed.credential())?;
        let (sc, staged) = match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(sc) => {
                if let Some(leaf) = sc.update_path_leaf_node() {
                    let id = leaf_member_id(leaf.credential(), leaf.signature_key().as_slice())
                        .map_err(|e| bad(e.to_string()))?;
                    if id != committer {
                        return Err(bad("committer changed its identity".into()));
                    }
                }
                for add in sc.add_proposals() {
                    let leaf = add.add_proposal().key_package().leaf_node();
                    leaf_member_id(leaf.credential(), leaf.signature_key().as_slice())
                        .map_err(|e| bad(format!("added member: {e}")))?;
                }
                let (added, removed) = self.describe(&sc)?;
                (sc, (added, removed))
            }
            ProcessedMessageContent::OwnPendingCommit => {
                let sc = self
                    .inner
                    .pending_commit()
                    .ok_or(MlsError::NoPendingCommit)?;
                let (added, removed) = self.describe(sc)?;
                let fingerprint = sc.group_context().confirmed_transcript_hash().to_vec();
                return Ok(StagedCommitInfo {
                    committer,
                    epoch,
                    added,
                    removed,
                    self_removed: sc.self_removed(),
                    staged: Staged::OwnPending(fingerprint),
                });
            }
            _ => return Err(MlsError::NotACommit),
        };
        let (added, removed) = staged;
        Ok(StagedCommitInfo {
            committer,
            epoch,
            added,
            removed,
            self_removed: sc.self_removed(),
            staged: Staged::Remote(sc),
        })
    }

    /// Merges a commit staged by [`Group::stage_commit`] in the current epoch.
    pub fn merge_staged(
        &mut self,
        p: &MlsProvider,
        staged: StagedCommitInfo,
    ) -> Result<(), MlsError> {
        if staged.epoch != self.epoch() {
            return Err(MlsError::WrongEpoch {
                message_epoch: staged.epoch,
                group_epoch: self.epoch(),
            });
        }
        match staged.staged {
            Staged::Remote(sc) => {
                let merged = self.inner.merge_staged_commit(p, *sc);
                self.note(&merged);
                merged.map_err(|e| MlsError::InvalidCommit(e.to_string()))
            }
            Staged::OwnPending(fingerprint) => {
                let current = self
                    .inner
                    .pending_commit()
                    .map(|sc| sc.group_context().confirmed_transcript_hash().to_vec());
                if current.as_deref() != Some(fingerprint.as_slice()) {
                    return Err(MlsError::NoPendingCommit);
                }
                self.merge_pending_commit(p)
            }
        }
    }

    /// Checks the proposal types of a commit and names the added and removed members.
    fn describe(&self, sc: &StagedCommit) -> Result<(Vec<MemberId>, Vec<MemberId>), MlsError> {
        let bad = |m: String| MlsError::InvalidCommit(m);
        for qp in sc.queued_proposals() {
            if !matches!(qp.proposal(), Proposal::Add(_) | Proposal::Remove(_)) {
                return Err(bad(format!(
                    "unsupported proposal {:?}",
                    qp.proposal().proposal_type()
                )));
            }
        }
        let mut added = Vec::new();
        for add in sc.add_proposals() {
            added.push(credential_member_id(
                add.add_proposal().key_package().leaf_node().credential(),
            )?);
        }
        let mut removed = Vec::new();
        for rm in sc.remove_proposals() {
            let leaf = rm.remove_proposal().removed();
            let member = self
                .inner
                .member_at(leaf)
                .ok_or_else(|| bad(format!("removes empty leaf {}", leaf.u32())))?;
            removed.push(credential_member_id(&member.credential)?);
        }
        Ok((added, removed))
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
