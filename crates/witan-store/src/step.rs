//! `Step`: one database transaction, the unit of durability and the one undo mechanism of
//! witan: whatever a step wrote is kept by [`Step::commit`] and rolled back otherwise. A
//! write step also lends out the decoded MLS group its connection keeps
//! ([`Step::groups`]), and drops that group whenever the transaction does not commit, so
//! that memory never holds what the rows no longer say.
//!
//! It also owns the small singleton data (identity secret, meta values) and the OpenMLS
//! key-value rows, and implements [`witan_engine::mls::KvSource`] over them. The other
//! tables' accessors live next to their tables (`conversations.rs`, `inbound.rs`,
//! `outbox.rs`, `history.rs`) as further `impl Step` blocks.

use std::cell::Cell;

use rusqlite::{Connection, OptionalExtension};
use witan_engine::mls::GroupCache;

use super::error::StoreError;
use super::tx::StepTx;

/// One transaction. [`Step::commit`] makes every write durable at once;
/// dropping the step without committing rolls all of them back.
pub struct Step<'c> {
    pub(super) tx: StepTx<'c>,
    /// The connection's group cache, for a write step.
    groups: Option<KeptGroups<'c>>,
}

/// The group cache a write step lends out, and what becomes of it when the step ends.
struct KeptGroups<'c> {
    cache: &'c GroupCache,
    /// `data_version` of the rows this step started from.
    version: i64,
    /// Where the connection records the version its cache matches.
    kept_at: &'c Cell<Option<i64>>,
    committed: bool,
}

impl Drop for KeptGroups<'_> {
    fn drop(&mut self) {
        // Not committed, or committed with a group newer than its rows: start over.
        if self.committed && self.cache.is_settled() {
            // This connection's own commits do not change `data_version`.
            self.kept_at.set(Some(self.version));
        } else {
            self.cache.reset();
            self.kept_at.set(None);
        }
    }
}

impl std::fmt::Debug for Step<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step").finish_non_exhaustive()
    }
}

/// `PRAGMA data_version` as `tx` sees it: it changes whenever another connection commits,
/// never with this connection's own commits.
pub(super) fn data_version(tx: &Connection) -> Result<i64, StoreError> {
    let mut stmt = tx.prepare_cached("PRAGMA data_version")?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

impl<'c> Step<'c> {
    pub(super) fn read(tx: StepTx<'c>) -> Self {
        Step { tx, groups: None }
    }

    pub(super) fn write(
        tx: StepTx<'c>,
        cache: &'c GroupCache,
        version: i64,
        kept_at: &'c Cell<Option<i64>>,
    ) -> Self {
        let groups = KeptGroups {
            cache,
            version,
            kept_at,
            committed: false,
        };
        Step {
            tx,
            groups: Some(groups),
        }
    }

    /// The decoded MLS group the connection keeps between steps (see `mls::GroupCache`), for
    /// the engine runs of a write step (`None` for a read step). It is emptied when the step
    /// ends without committing.
    pub fn groups(&self) -> Option<&'c GroupCache> {
        self.groups.as_ref().map(|g| g.cache)
    }

    /// Commits the transaction (durably: `synchronous = FULL`).
    pub fn commit(self) -> Result<(), StoreError> {
        let Step { tx, mut groups } = self;
        tx.commit()?;
        if let Some(groups) = &mut groups {
            groups.committed = true;
        }
        Ok(())
    }

    /// `PRAGMA data_version` as this step sees it: it changes whenever another connection
    /// commits, never with this connection's own commits. Read under the write lock (a
    /// read-write step), it names exactly the rows the step works on.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        match &self.groups {
            // Read when the step began: under its write lock no other connection commits.
            Some(groups) => Ok(groups.version),
            None => data_version(&self.tx),
        }
    }

    /// The stored identity secret, if one was ever saved.
    pub fn identity_secret(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT secret FROM identity WHERE id = 1")?;
        Ok(stmt.query_row([], |r| r.get(0)).optional()?)
    }

    /// Saves (or replaces) the identity secret.
    pub fn set_identity_secret(&self, secret: &[u8]) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO identity (id, secret) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET secret = excluded.secret",
        )?;
        stmt.execute([secret])?;
        Ok(())
    }

    /// A small named value (client bookkeeping), if set.
    pub fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?;
        Ok(stmt.query_row([key], |r| r.get(0)).optional()?)
    }

    /// Sets (or replaces) a small named value.
    pub fn meta_set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?;
        stmt.execute(rusqlite::params![key, value])?;
        Ok(())
    }

    /// Reads one OpenMLS storage row.
    pub(super) fn mls_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT value FROM mls_kv WHERE key = ?1")?;
        Ok(stmt.query_row([key], |r| r.get(0)).optional()?)
    }

    /// Persists the writes collected by `mls::MlsStorage::take_changes`:
    /// `Some(value)` upserts the key, `None` deletes it. Applied in order, so
    /// a later change to the same key wins.
    pub fn apply_mls_changes(
        &self,
        changes: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        let mut upsert = self.tx.prepare_cached(
            "INSERT INTO mls_kv (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?;
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM mls_kv WHERE key = ?1")?;
        for (key, value) in changes {
            match value {
                Some(value) => upsert.execute(rusqlite::params![key, value])?,
                None => delete.execute([key])?,
            };
        }
        Ok(())
    }
}

impl witan_engine::mls::KvSource for Step<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.mls_get(key).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{file_db, memory_db};
    use witan_engine::mls::{CachedGroup, Group, Identity, KvSource, MlsProvider};

    #[test]
    fn identity_and_meta_round_trip() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        assert_eq!(step.identity_secret().unwrap(), None);
        step.set_identity_secret(&[1; 32]).unwrap();
        step.set_identity_secret(&[2; 32]).unwrap();
        assert_eq!(step.identity_secret().unwrap(), Some(vec![2; 32]));
        assert_eq!(step.meta_get("k").unwrap(), None);
        step.meta_set("k", b"v1").unwrap();
        step.meta_set("k", b"v2").unwrap();
        assert_eq!(step.meta_get("k").unwrap(), Some(b"v2".to_vec()));
        step.commit().unwrap();
    }

    #[test]
    fn mls_changes_upsert_and_delete_in_order() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        step.apply_mls_changes(&[
            (b"a".to_vec(), Some(b"1".to_vec())),
            (b"b".to_vec(), Some(b"2".to_vec())),
            (b"a".to_vec(), Some(b"3".to_vec())),
            (b"b".to_vec(), None),
            (b"missing".to_vec(), None),
        ])
        .unwrap();
        assert_eq!(step.get(b"a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(step.get(b"b").unwrap(), None);
        step.commit().unwrap();
    }

    /// A write step on `db` that loads group `gid` through the step's cache and commits.
    fn load_group_and_commit(db: &mut super::super::Database, gid: &[u8]) {
        let step = db.step().unwrap();
        let p = MlsProvider::with_group_cache(&step, step.groups().unwrap());
        CachedGroup::load(&p, gid).unwrap().unwrap();
        drop(p);
        step.commit().unwrap();
    }

    #[test]
    fn the_group_cache_outlives_only_committed_steps_no_other_connection_followed() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = file_db(&dir);
        let gid = b"g";
        let step = db.step().unwrap();
        let identity = Identity::from_secret(&[1; 32]).unwrap();
        let p = MlsProvider::new(&step);
        Group::create(&p, &identity, gid).unwrap();
        let changes = p.storage().take_changes();
        drop(p);
        step.apply_mls_changes(&changes).unwrap();
        step.commit().unwrap();
        let held =
            |db: &mut super::super::Database| db.step().unwrap().groups().unwrap().holds(gid);

        // Kept after a commit (unless the `kept` cache layer is switched off).
        let kept = witan_engine::mls::Layer::Kept.enabled();
        load_group_and_commit(&mut db, gid);
        assert_eq!(held(&mut db), kept);
        // `held` itself rolled its step back: that empties the cache.
        assert!(!held(&mut db));
        load_group_and_commit(&mut db, gid);
        // Another connection commits: this one cannot vouch for its group any more.
        let mut other = file_db(&dir);
        let step = other.step().unwrap();
        step.meta_set("other", b"1").unwrap();
        step.commit().unwrap();
        assert!(!held(&mut db));
        // A read step leaves it alone.
        load_group_and_commit(&mut db, gid);
        assert!(db.read().unwrap().groups().is_none());
        assert_eq!(held(&mut db), kept);
    }

    #[test]
    fn committed_step_survives_reopen_and_dropped_step_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut db = file_db(&dir);
            let step = db.step().unwrap();
            step.set_identity_secret(&[7; 32]).unwrap();
            step.apply_mls_changes(&[(b"k".to_vec(), Some(b"v".to_vec()))])
                .unwrap();
            step.save_conversation("c", Some(10)).unwrap();
            step.save_engine_part("c", "state", b"state").unwrap();
            step.commit().unwrap();

            let step = db.step().unwrap();
            step.meta_set("dropped", b"x").unwrap();
            step.apply_mls_changes(&[(b"k".to_vec(), None)]).unwrap();
            step.outbox_push("p", "t", b"x", 0).unwrap();
            step.save_conversation("c2", Some(1)).unwrap();
            step.save_engine_part("c2", "state", b"s").unwrap();
            drop(step);
        }
        let mut db = file_db(&dir);
        let step = db.read().unwrap();
        assert_eq!(step.identity_secret().unwrap(), Some(vec![7; 32]));
        assert_eq!(step.get(b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(
            step.engine_parts("c").unwrap(),
            [("state".to_string(), b"state".to_vec())]
        );
        assert_eq!(step.meta_get("dropped").unwrap(), None);
        assert_eq!(step.outbox_len().unwrap(), 0);
        assert_eq!(step.conversation_ids().unwrap(), vec!["c".to_string()]);
    }
}
