//! OpenMLS's rows in `mls_kv`; those the engine lets grow into chunks (the group trees,
//! `witan_engine::mls::may_chunk`) are kept in `mls_chunks` when large (see `chunked.rs`).

use std::collections::BTreeSet;

use rusqlite::OptionalExtension;
use witan_engine::mls::may_chunk;

use super::{Owner, Row};
use crate::error::StoreError;
use crate::step::Step;

impl Step<'_> {
    fn mls_row(&self, key: &[u8]) -> Result<Option<Row>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT value, chunked FROM mls_kv WHERE key = ?1")?;
        let row = stmt
            .query_row([key], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?;
        row.map(|(value, chunked)| Row::read(value, chunked, "mls_kv.chunked"))
            .transpose()
    }

    /// Reads one OpenMLS storage row (its chunks joined).
    pub(crate) fn mls_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.mls_row(key)?
            .map(|row| self.join_chunks(Owner::MlsRow(key), row))
            .transpose()
    }

    /// The chunks the stored row `key` lists; only rows that may be chunked are looked at
    /// (the others never are, and a write of one reads nothing first).
    fn mls_chunks_of(&self, key: &[u8]) -> Result<BTreeSet<i64>, StoreError> {
        if !may_chunk(key) {
            return Ok(BTreeSet::new());
        }
        match self.mls_row(key)? {
            Some(row) => row.chunks(),
            None => Ok(BTreeSet::new()),
        }
    }

    /// Persists the writes collected by `mls::MlsStorage::take_changes`:
    /// `Some(value)` upserts the key, `None` deletes it. Applied in order, so
    /// a later change to the same key wins.
    pub fn apply_mls_changes(
        &self,
        changes: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        let mut upsert = self.tx.prepare_cached(
            "INSERT INTO mls_kv (key, value, chunked) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, chunked = excluded.chunked",
        )?;
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM mls_kv WHERE key = ?1")?;
        for (key, value) in changes {
            let stored = self.mls_chunks_of(key)?;
            let owner = Owner::MlsRow(key);
            match value {
                Some(value) if may_chunk(key) => {
                    let row = self.store_chunks(owner, value, &stored)?;
                    upsert.execute(rusqlite::params![key, row.value, row.chunked])?;
                }
                Some(value) => {
                    upsert.execute(rusqlite::params![key, value, false])?;
                }
                None => {
                    self.delete_chunks(owner, stored)?;
                    delete.execute([key])?;
                }
            }
        }
        Ok(())
    }
}
