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
//! The engine keeps rows of its own beside OpenMLS's, under other prefixes (the packets of
//! archived certified commits: `protocol::conversation::catch_up`), written and read through
//! the same run ([`MlsStorage::put_row`], [`MlsStorage::get_row`]).
//!
//! Message secrets are the exception to one row per entity: they are stored in pieces
//! (`secret_rows`), so that a received message rewrites the piece holding its sender's
//! ratchet, not a value that grows with the group.
//!
//! Deferred message secrets: OpenMLS rewrites a group's whole message secrets after every
//! message it processes. A storage told to ([`MlsStorage::defer_message_secrets`]) skips
//! those writes for the one group that the group cache (`cache::GroupCache`) lent out, which
//! the cache then holds ahead of its rows until its owner writes them (see the module doc of
//! `cache`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use openmls::prelude::GroupId;
use openmls_traits::storage::{CURRENT_VERSION, StorageProvider, traits};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;

use super::error::MlsError;
use super::kv::KvSource;
use super::loans::GroupLoans;

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

/// What every OpenMLS row key starts with: `mls` and the storage version, then `/`.
static ROW_PREFIX: LazyLock<String> = LazyLock::new(|| format!("mls{CURRENT_VERSION}/"));

/// Room reserved for a serialized key: a group id of 32 bytes is about 150 bytes of JSON.
const KEY_ROOM: usize = 160;

type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// OpenMLS `StorageProvider<CURRENT_VERSION>` over a [`KvSource`] with the writes of one run.
pub struct MlsStorage<'a> {
    source: &'a dyn KvSource,
    /// The run's writes so far (`None`: delete).
    writes: RefCell<Changes>,
    /// The cache told about deferred writes, when this storage may defer them.
    deferral: Option<&'a dyn GroupLoans>,
    /// The message-secrets row whose writes are deferred (that of the group lent out).
    deferred_row: RefCell<Option<Vec<u8>>>,
    /// Inside [`MlsStorage::with_secret_memory`] (`secret_rows`).
    scope: RefCell<Option<secret_rows::Scope>>,
}

impl<'a> MlsStorage<'a> {
    /// A storage reading from `source`, with no writes yet.
    pub fn new(source: &'a dyn KvSource) -> Self {
        MlsStorage {
            source,
            writes: RefCell::new(BTreeMap::new()),
            deferral: None,
            deferred_row: RefCell::new(None),
            scope: RefCell::new(None),
        }
    }

    /// Lets this storage defer the message-secrets writes of groups lent by `cache` (see the
    /// module doc).
    pub(crate) fn defer_message_secrets(&mut self, cache: &'a dyn GroupLoans) {
        self.deferral = Some(cache);
    }

    /// Defers the message-secrets writes under `row` (a group's
    /// [`MlsStorage::message_secrets_row`]) from now on, if this storage may.
    pub(crate) fn defer_secrets_under(&self, row: &[u8]) {
        if self.deferral.is_some() {
            *self.deferred_row.borrow_mut() = Some(row.to_vec());
        }
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
        let row =
            Self::message_secrets_row(group_id).map_err(|e| MlsError::Storage(e.to_string()))?;
        Ok(matches!(self.writes.borrow().get(&row), Some(Some(_))))
    }

    /// Whether the run wrote anything not yet taken.
    pub fn has_changes(&self) -> bool {
        !self.writes.borrow().is_empty()
    }

    /// Writes a row of the engine's own (a key outside OpenMLS's `mls1/` prefix) with the
    /// run's other writes.
    pub(crate) fn put_row(&self, key: Vec<u8>, value: Vec<u8>) {
        debug_assert!(!key.starts_with(b"mls"));
        self.raw_set(key, Some(value));
    }

    /// Deletes a row of the engine's own with the run's other writes.
    pub(crate) fn delete_row(&self, key: Vec<u8>) {
        debug_assert!(!key.starts_with(b"mls"));
        self.raw_set(key, None);
    }

    /// A row of the engine's own, as this run sees it.
    pub(crate) fn get_row(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MlsStorageError> {
        self.raw_get(key)
    }

    /// The row of `key` under `label` (see the module doc for the layout). Every OpenMLS
    /// read and write goes through here, so the key is built in one allocation.
    fn row_key<K: Serialize + ?Sized>(label: &str, key: &K) -> Result<Vec<u8>, MlsStorageError> {
        let prefix = ROW_PREFIX.as_bytes();
        let mut out = Vec::with_capacity(prefix.len() + label.len() + 1 + KEY_ROOM);
        out.extend_from_slice(prefix);
        out.extend_from_slice(label.as_bytes());
        out.push(b'/');
        serde_json::to_writer(&mut out, key)?;
        Ok(out)
    }

    /// The row holding `group_id`'s message secrets (their head, when stored in pieces).
    pub(crate) fn message_secrets_row(group_id: &[u8]) -> Result<Vec<u8>, MlsStorageError> {
        Self::row_key(MESSAGE_SECRETS, &GroupId::from_slice(group_id))
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

    /// [`MlsStorage::put`] for a join configuration: dropped while rewriting secrets.
    fn put_join_config<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &self,
        label: &str,
        key: &K,
        value: &V,
    ) -> Result<(), MlsStorageError> {
        if self.drops_join_config() {
            return Ok(());
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

mod provider_impl;
pub(crate) mod secret_rows;

pub use secret_rows::SecretRows;
#[cfg(any(test, feature = "testing"))]
pub use secret_rows::tests_hook;

#[cfg(test)]
mod tests;
