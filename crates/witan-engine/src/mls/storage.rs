//! OpenMLS persistence over plain key-value rows.
//!
//! [`MlsStorage`] implements OpenMLS' `StorageProvider<CURRENT_VERSION>` on top of a read-only
//! [`KvSource`] (the database rows of the caller's transaction) for one engine run: OpenMLS
//! writes and deletes collect in the storage, and reads see them first. They are an output of
//! the run like its others: the caller writes them to its transaction with
//! [`MlsStorage::take_changes`] when the run succeeded, and drops them with the storage when
//! it failed. Nothing is undone here; rolling back is the transaction's job.
//!
//! Row layout: key = `"mls1/" + label + "/" + serde_json(key)`, value = the entity in the
//! binary row codec (`crate::codec`: serde's JSON data model, byte strings raw — about a
//! third of the JSON size and several times faster to read and write; OpenMLS supports only
//! self-describing formats for its storage). Rows written as JSON by earlier versions are
//! transcoded once, when the store opens the database. Lists (own leaf nodes, proposal queue
//! references) are one row holding an array, so that appends and removals are writes like
//! any other.
//!
//! Deferred message secrets: OpenMLS rewrites a group's whole message secrets (a row that
//! grows with the group) after every message it processes. A storage told to
//! ([`MlsStorage::defer_message_secrets`]) skips those writes for the one group that the
//! [`GroupCache`] lent out, which the cache then holds ahead of its rows until its owner
//! writes them (see the module doc of `cache`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use openmls::prelude::GroupId;
use openmls_traits::storage::{CURRENT_VERSION, StorageProvider, traits};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;

use super::cache::GroupCache;
use super::error::MlsError;
use super::kv::KvSource;

/// Errors of [`MlsStorage`].
#[derive(Debug, thiserror::Error)]
pub enum MlsStorageError {
    /// The underlying [`KvSource`] failed.
    #[error("key-value source: {0}")]
    Source(String),
    /// A key or value could not be (de)serialized.
    #[error("serialization: {0}")]
    Serde(String),
}

impl From<serde_json::Error> for MlsStorageError {
    fn from(e: serde_json::Error) -> Self {
        MlsStorageError::Serde(e.to_string())
    }
}

impl From<codec::CodecError> for MlsStorageError {
    fn from(e: codec::CodecError) -> Self {
        MlsStorageError::Serde(e.to_string())
    }
}

/// Decodes a stored value (rows written as JSON by earlier versions were migrated once:
/// `codec::transcode_json`).
fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, MlsStorageError> {
    Ok(codec::from_slice(bytes)?)
}

type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// OpenMLS `StorageProvider<CURRENT_VERSION>` over a [`KvSource`] with the writes of one run.
pub struct MlsStorage<'a> {
    source: &'a dyn KvSource,
    /// The run's writes so far (`None`: delete).
    writes: RefCell<Changes>,
    /// The cache told about deferred writes, when this storage may defer them.
    deferral: Option<&'a GroupCache>,
    /// The message-secrets row whose writes are deferred (that of the group lent out).
    deferred_row: RefCell<Option<Vec<u8>>>,
}

impl<'a> MlsStorage<'a> {
    /// A storage reading from `source`, with no writes yet.
    pub fn new(source: &'a dyn KvSource) -> Self {
        MlsStorage {
            source,
            writes: RefCell::new(BTreeMap::new()),
            deferral: None,
            deferred_row: RefCell::new(None),
        }
    }

    /// Lets this storage defer the message-secrets writes of groups lent by `cache` (see the
    /// module doc).
    pub(crate) fn defer_message_secrets(&mut self, cache: &'a GroupCache) {
        self.deferral = Some(cache);
    }

    /// Defers the message-secrets writes of `group_id` from now on, if this storage may.
    pub(crate) fn defer_secrets_of(&self, group_id: &[u8]) -> Result<(), MlsStorageError> {
        if self.deferral.is_some() {
            let row = Self::row_key(MESSAGE_SECRETS, &GroupId::from_slice(group_id))?;
            *self.deferred_row.borrow_mut() = Some(row);
        }
        Ok(())
    }

    /// Writes every message secrets again (a group is about to be created, joined or deleted
    /// over the rows).
    pub(crate) fn stop_deferring(&self) {
        self.deferred_row.borrow_mut().take();
    }

    /// Drains the writes of the run: the rows to write (`Some`) or delete (`None`), ordered by key.
    pub fn take_changes(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        std::mem::take(&mut *self.writes.borrow_mut())
            .into_iter()
            .collect()
    }

    /// Whether the run wrote `group_id`'s message secrets (to check that
    /// rewriting deferred secrets wrote them).
    pub(crate) fn holds_message_secrets_of(&self, group_id: &[u8]) -> Result<bool, MlsError> {
        let row = Self::row_key(MESSAGE_SECRETS, &GroupId::from_slice(group_id))
            .map_err(|e| MlsError::Storage(e.to_string()))?;
        Ok(matches!(self.writes.borrow().get(&row), Some(Some(_))))
    }

    /// Whether the run wrote anything not yet taken.
    pub fn has_changes(&self) -> bool {
        !self.writes.borrow().is_empty()
    }

    fn row_key<K: Serialize + ?Sized>(label: &str, key: &K) -> Result<Vec<u8>, MlsStorageError> {
        let mut out = format!("mls{CURRENT_VERSION}/{label}/").into_bytes();
        serde_json::to_writer(&mut out, key)?;
        Ok(out)
    }

    fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MlsStorageError> {
        if let Some(v) = self.writes.borrow().get(key) {
            return Ok(v.clone());
        }
        self.source.get(key).map_err(MlsStorageError::Source)
    }

    fn raw_set(&self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes.borrow_mut().insert(key, value);
    }

    fn put<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &self,
        label: &str,
        key: &K,
        value: &V,
    ) -> Result<(), MlsStorageError> {
        let key = Self::row_key(label, key)?;
        self.raw_set(key, Some(codec::to_vec(value)?));
        Ok(())
    }

    /// [`MlsStorage::put`] for message secrets: skipped for the group whose writes are
    /// deferred (see the module doc).
    fn put_message_secrets<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &self,
        label: &str,
        key: &K,
        value: &V,
    ) -> Result<(), MlsStorageError> {
        if let Some(cache) = self.deferral {
            let row = Self::row_key(label, key)?;
            if self.deferred_row.borrow().as_ref() == Some(&row) && cache.defer_write() {
                // The lent group holds these secrets; an earlier write of this run is older.
                self.writes.borrow_mut().remove(&row);
                return Ok(());
            }
        }
        self.put(label, key, value)
    }

    fn get<K: Serialize + ?Sized, V: DeserializeOwned>(
        &self,
        label: &str,
        key: &K,
    ) -> Result<Option<V>, MlsStorageError> {
        let key = Self::row_key(label, key)?;
        if let Some(row) = self.writes.borrow().get(&key) {
            return row.as_deref().map(decode).transpose();
        }
        // Decode straight from the source's copy of the row.
        let mut decoded = None;
        self.source
            .read(&key, &mut |row| decoded = row.map(decode))
            .map_err(MlsStorageError::Source)?;
        decoded.transpose()
    }

    fn del<K: Serialize + ?Sized>(&self, label: &str, key: &K) -> Result<(), MlsStorageError> {
        let key = Self::row_key(label, key)?;
        self.raw_set(key, None);
        Ok(())
    }

    fn get_list<K: Serialize + ?Sized, V: DeserializeOwned>(
        &self,
        label: &str,
        key: &K,
    ) -> Result<Vec<V>, MlsStorageError> {
        Ok(self.get(label, key)?.unwrap_or_default())
    }

    /// Appends `item` to the list row (a codec sequence).
    fn list_push<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &self,
        label: &str,
        key: &K,
        item: &V,
    ) -> Result<(), MlsStorageError> {
        let row = Self::row_key(label, key)?;
        let stored = self.raw_get(&row)?;
        let mut items = match &stored {
            Some(bytes) => codec::split_list(bytes)?,
            None => Vec::new(),
        };
        let item = codec::to_item(item)?;
        items.push(&item);
        self.raw_set(row, Some(codec::join_list(&items)?));
        Ok(())
    }

    /// Removes the first element equal to `item` from the list row; an empty list is deleted.
    fn list_remove<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &self,
        label: &str,
        key: &K,
        item: &V,
    ) -> Result<(), MlsStorageError> {
        let row = Self::row_key(label, key)?;
        let Some(stored) = self.raw_get(&row)? else {
            return Ok(());
        };
        let mut items = codec::split_list(&stored)?;
        let item = codec::to_item(item)?;
        if let Some(pos) = items.iter().position(|v| *v == item.as_slice()) {
            items.remove(pos);
        }
        let remaining = (!items.is_empty())
            .then(|| codec::join_list(&items))
            .transpose()?;
        self.raw_set(row, remaining);
        Ok(())
    }
}

const JOIN_CONFIG: &str = "join_config";
const OWN_LEAF_NODES: &str = "own_leaf_nodes";
const PROPOSAL: &str = "proposal";
const PROPOSAL_REFS: &str = "proposal_refs";
const TREE: &str = "tree";
const TRANSCRIPT_HASH: &str = "interim_transcript_hash";
const CONTEXT: &str = "context";
const CONFIRMATION_TAG: &str = "confirmation_tag";
const GROUP_STATE: &str = "group_state";
const MESSAGE_SECRETS: &str = "message_secrets";
const RESUMPTION_PSK: &str = "resumption_psk_store";
const OWN_LEAF_INDEX: &str = "own_leaf_index";
const EPOCH_SECRETS: &str = "group_epoch_secrets";
const SIGNATURE_KEY: &str = "signature_key_pair";
const ENCRYPTION_KEY: &str = "encryption_key_pair";
const EPOCH_KEY_PAIRS: &str = "epoch_key_pairs";
const KEY_PACKAGE: &str = "key_package";
const PSK: &str = "psk";

/// Write/read/delete of one value keyed by the group id, with the trait's generic order
/// `<GroupId, Value>`.
macro_rules! group_value {
    ($write:ident, $read:ident, $delete:ident, $bound:ident, $label:expr) => {
        group_value!($write, $read, $delete, $bound, $label, put);
    };
    // `$put` writes the row: `put`, or a writer with its own rule for that value.
    ($write:ident, $read:ident, $delete:ident, $bound:ident, $label:expr, $put:ident) => {
        fn $write<G: traits::GroupId<CURRENT_VERSION>, T: traits::$bound<CURRENT_VERSION>>(
            &self,
            group_id: &G,
            value: &T,
        ) -> Result<(), Self::Error> {
            self.$put($label, group_id, value)
        }

        fn $read<G: traits::GroupId<CURRENT_VERSION>, T: traits::$bound<CURRENT_VERSION>>(
            &self,
            group_id: &G,
        ) -> Result<Option<T>, Self::Error> {
            self.get($label, group_id)
        }

        fn $delete<G: traits::GroupId<CURRENT_VERSION>>(
            &self,
            group_id: &G,
        ) -> Result<(), Self::Error> {
            self.del($label, group_id)
        }
    };
}

impl StorageProvider<CURRENT_VERSION> for MlsStorage<'_> {
    type Error = MlsStorageError;

    group_value!(
        write_mls_join_config,
        mls_group_join_config,
        delete_group_config,
        MlsGroupJoinConfig,
        JOIN_CONFIG
    );
    group_value!(write_tree, tree, delete_tree, TreeSync, TREE);
    group_value!(
        write_interim_transcript_hash,
        interim_transcript_hash,
        delete_interim_transcript_hash,
        InterimTranscriptHash,
        TRANSCRIPT_HASH
    );
    group_value!(
        write_context,
        group_context,
        delete_context,
        GroupContext,
        CONTEXT
    );
    group_value!(
        write_confirmation_tag,
        confirmation_tag,
        delete_confirmation_tag,
        ConfirmationTag,
        CONFIRMATION_TAG
    );
    group_value!(
        write_message_secrets,
        message_secrets,
        delete_message_secrets,
        MessageSecrets,
        MESSAGE_SECRETS,
        put_message_secrets
    );
    group_value!(
        write_resumption_psk_store,
        resumption_psk_store,
        delete_all_resumption_psk_secrets,
        ResumptionPskStore,
        RESUMPTION_PSK
    );
    group_value!(
        write_own_leaf_index,
        own_leaf_index,
        delete_own_leaf_index,
        LeafNodeIndex,
        OWN_LEAF_INDEX
    );
    group_value!(
        write_group_epoch_secrets,
        group_epoch_secrets,
        delete_group_epoch_secrets,
        GroupEpochSecrets,
        EPOCH_SECRETS
    );

    fn write_group_state<
        S: traits::GroupState<CURRENT_VERSION>,
        G: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        group_state: &S,
    ) -> Result<(), Self::Error> {
        self.put(GROUP_STATE, group_id, group_state)
    }

    fn group_state<S: traits::GroupState<CURRENT_VERSION>, G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<Option<S>, Self::Error> {
        self.get(GROUP_STATE, group_id)
    }

    fn delete_group_state<G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<(), Self::Error> {
        self.del(GROUP_STATE, group_id)
    }

    fn append_own_leaf_node<
        G: traits::GroupId<CURRENT_VERSION>,
        L: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        leaf_node: &L,
    ) -> Result<(), Self::Error> {
        self.list_push(OWN_LEAF_NODES, group_id, leaf_node)
    }

    fn own_leaf_nodes<G: traits::GroupId<CURRENT_VERSION>, L: traits::LeafNode<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<Vec<L>, Self::Error> {
        self.get_list(OWN_LEAF_NODES, group_id)
    }

    fn delete_own_leaf_nodes<G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<(), Self::Error> {
        self.del(OWN_LEAF_NODES, group_id)
    }

    fn queue_proposal<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
        P: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        proposal_ref: &R,
        proposal: &P,
    ) -> Result<(), Self::Error> {
        self.put(PROPOSAL, &(group_id, proposal_ref), proposal)?;
        self.list_push(PROPOSAL_REFS, group_id, proposal_ref)
    }

    fn queued_proposal_refs<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<Vec<R>, Self::Error> {
        self.get_list(PROPOSAL_REFS, group_id)
    }

    fn queued_proposals<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
        P: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<Vec<(R, P)>, Self::Error> {
        let refs: Vec<R> = self.get_list(PROPOSAL_REFS, group_id)?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            // A reference without its proposal row is skipped rather than failing the group.
            if let Some(p) = self.get(PROPOSAL, &(group_id, &r))? {
                out.push((r, p));
            }
        }
        Ok(out)
    }

    fn remove_proposal<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        proposal_ref: &R,
    ) -> Result<(), Self::Error> {
        self.list_remove(PROPOSAL_REFS, group_id, proposal_ref)?;
        self.del(PROPOSAL, &(group_id, proposal_ref))
    }

    fn clear_proposal_queue<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<(), Self::Error> {
        let refs: Vec<R> = self.get_list(PROPOSAL_REFS, group_id)?;
        for r in &refs {
            self.del(PROPOSAL, &(group_id, r))?;
        }
        self.del(PROPOSAL_REFS, group_id)
    }

    fn write_signature_key_pair<
        K: traits::SignaturePublicKey<CURRENT_VERSION>,
        P: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &K,
        signature_key_pair: &P,
    ) -> Result<(), Self::Error> {
        self.put(SIGNATURE_KEY, public_key, signature_key_pair)
    }

    fn signature_key_pair<
        K: traits::SignaturePublicKey<CURRENT_VERSION>,
        P: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &K,
    ) -> Result<Option<P>, Self::Error> {
        self.get(SIGNATURE_KEY, public_key)
    }

    fn delete_signature_key_pair<K: traits::SignaturePublicKey<CURRENT_VERSION>>(
        &self,
        public_key: &K,
    ) -> Result<(), Self::Error> {
        self.del(SIGNATURE_KEY, public_key)
    }

    fn write_encryption_key_pair<
        K: traits::EncryptionKey<CURRENT_VERSION>,
        P: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &K,
        key_pair: &P,
    ) -> Result<(), Self::Error> {
        self.put(ENCRYPTION_KEY, public_key, key_pair)
    }

    fn encryption_key_pair<
        P: traits::HpkeKeyPair<CURRENT_VERSION>,
        K: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &K,
    ) -> Result<Option<P>, Self::Error> {
        self.get(ENCRYPTION_KEY, public_key)
    }

    fn delete_encryption_key_pair<K: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &K,
    ) -> Result<(), Self::Error> {
        self.del(ENCRYPTION_KEY, public_key)
    }

    fn write_encryption_epoch_key_pairs<
        G: traits::GroupId<CURRENT_VERSION>,
        E: traits::EpochKey<CURRENT_VERSION>,
        P: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        epoch: &E,
        leaf_index: u32,
        key_pairs: &[P],
    ) -> Result<(), Self::Error> {
        self.put(EPOCH_KEY_PAIRS, &(group_id, epoch, leaf_index), key_pairs)
    }

    fn encryption_epoch_key_pairs<
        G: traits::GroupId<CURRENT_VERSION>,
        E: traits::EpochKey<CURRENT_VERSION>,
        P: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        epoch: &E,
        leaf_index: u32,
    ) -> Result<Vec<P>, Self::Error> {
        self.get_list(EPOCH_KEY_PAIRS, &(group_id, epoch, leaf_index))
    }

    fn delete_encryption_epoch_key_pairs<
        G: traits::GroupId<CURRENT_VERSION>,
        E: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        epoch: &E,
        leaf_index: u32,
    ) -> Result<(), Self::Error> {
        self.del(EPOCH_KEY_PAIRS, &(group_id, epoch, leaf_index))
    }

    fn write_key_package<
        R: traits::HashReference<CURRENT_VERSION>,
        P: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &R,
        key_package: &P,
    ) -> Result<(), Self::Error> {
        self.put(KEY_PACKAGE, hash_ref, key_package)
    }

    fn key_package<
        R: traits::HashReference<CURRENT_VERSION>,
        P: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &R,
    ) -> Result<Option<P>, Self::Error> {
        self.get(KEY_PACKAGE, hash_ref)
    }

    fn delete_key_package<R: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &R,
    ) -> Result<(), Self::Error> {
        self.del(KEY_PACKAGE, hash_ref)
    }

    fn write_psk<I: traits::PskId<CURRENT_VERSION>, B: traits::PskBundle<CURRENT_VERSION>>(
        &self,
        psk_id: &I,
        psk: &B,
    ) -> Result<(), Self::Error> {
        self.put(PSK, psk_id, psk)
    }

    fn psk<B: traits::PskBundle<CURRENT_VERSION>, I: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &I,
    ) -> Result<Option<B>, Self::Error> {
        self.get(PSK, psk_id)
    }

    fn delete_psk<I: traits::PskId<CURRENT_VERSION>>(&self, psk_id: &I) -> Result<(), Self::Error> {
        self.del(PSK, psk_id)
    }
}

#[cfg(test)]
mod tests;
