//! `Database`: opening the SQLite file (pragmas, migrations) and starting the
//! transactions that every protocol step runs in.
//!
//! The environment shapes every choice here: the host app can be killed at
//! any instant, the app and its notification extension may open the same file
//! at the same time, and an iOS notification extension has about 24 MiB of
//! memory in total.

use std::cell::Cell;
use std::time::Duration;

use rusqlite::Connection;
use witan_engine::mls::{GroupCache, Layer};

use super::cipher::{self, DatabaseKey, Probe};
use super::durability;
use super::error::StoreError;
use super::schema;
use super::step::{self, Step};
use super::tx::{self, Begin, StepTx};

/// Capacity of the per-connection prepared statement cache. Every statement
/// the store runs repeatedly goes through `prepare_cached`; there are fewer
/// distinct statements than this, so none is ever re-parsed.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// Options for [`Database::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a step waits for another connection's write lock before it
    /// fails with [`StoreError::Busy`].
    pub busy_timeout_ms: u64,
    /// Encrypts the file at rest (SQLCipher). A plain database opened with a key is
    /// encrypted in place first (see [`cipher::encrypt_plaintext`]).
    pub key: Option<DatabaseKey>,
    /// The connection's page cache, in KiB (SQLite's `cache_size`).
    pub cache_kib: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        // Long enough to wait out another process's step, short enough to fit
        // in a notification extension's ~30 s budget.
        StoreOptions {
            busy_timeout_ms: 5_000,
            key: None,
            cache_kib: 1024,
        }
    }
}

/// One connection to the witan database. A client owns one; a second process
/// (the notification extension) opens its own on the same file.
///
/// It also keeps the MLS group its last write step left decoded ([`Step::groups`]), for the
/// next step, while that group is exactly its rows: the step that left it committed with
/// the cache settled, and no other connection committed since (SQLite's `data_version`,
/// read by the next step under its write lock, says so). Anything else — a rollback, a
/// commit by the other process, a reopened connection — starts the next step empty.
pub struct Database {
    conn: Connection,
    groups: GroupCache,
    /// `data_version` when `groups` last matched the rows (`None`: it may not).
    groups_version: Cell<Option<i64>>,
    /// `synchronous` is currently NORMAL (set by [`Database::relaxed_step`]); the next
    /// [`Database::step`] puts it back to FULL first.
    relaxed: bool,
    /// A relaxed step queued packets to publish and the log has not been synced since
    /// ([`Database::sync_queued_outbox`] failed); [`Database::sync_if_needed`] syncs it.
    unsynced_outbox: bool,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.conn.path())
            .finish()
    }
}

impl Database {
    /// Opens (creating if needed) the database at `path` and migrates its
    /// schema to the current version. `":memory:"` opens a private in-memory
    /// database (tests, simulators).
    pub fn open(path: &str, opts: &StoreOptions) -> Result<Database, StoreError> {
        let mut conn = Self::connect(path, opts)?;
        let in_memory = path == ":memory:" || path.is_empty();
        if !in_memory
            && let Probe::Plaintext = cipher::probe(&conn, path, opts.key.as_ref())?
            && let Some(key) = &opts.key
        {
            // A plain database opened with a key (only then is it `Plaintext`).
            drop(conn);
            cipher::encrypt_plaintext(path, key)?;
            conn = Self::connect(path, opts)?;
            cipher::probe(&conn, path, Some(key))?;
        }

        if !in_memory {
            // WAL: a commit appends to the log, so a kill at any instant
            // leaves either the old or the new state, never a torn one;
            // readers in one process do not block the writer in the other.
            // (An in-memory database has no file to log to.)
            let mode = Self::enable_wal(&conn, opts.busy_timeout_ms)?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode = %mode, "SQLite refused WAL journal mode");
            }
            // Bound the WAL file left on disk after a checkpoint (phones have
            // small storage quotas for extensions and app groups).
            conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
        }

        // FULL by default: with WAL, NORMAL already survives an app kill, but a
        // power loss or OS crash may roll back the last commits. Packets leave the
        // device only after their step commits, and MLS secrets (ratchet
        // generations, epoch secrets) are consumed by that step; rolling it back
        // could make witan reuse a key/nonce or fork from what peers already saw.
        // Steps that only take in packets are relaxed (`relaxed_step`) and sync
        // the log (`sync_log`) before anything they queued is published.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // On Apple platforms a plain fsync leaves the data in the drive's cache, so a power
        // cut could still lose a "synced" commit: ask for F_FULLFSYNC there.
        durability::flush_drive_caches(&conn)?;

        // SQLite leaves foreign key enforcement off per connection; turn it
        // on so that every REFERENCES clause a migration declares is enforced
        // on every connection (it cannot be changed inside a transaction).
        conn.pragma_update(None, "foreign_keys", true)?;

        // Page cache per connection, in KiB when negative: 1 MiB by default; the
        // notification extension asks for less (its whole process has 16 MiB).
        conn.pragma_update(None, "cache_size", -i64::from(opts.cache_kib))?;

        // Overwrite deleted content with zeros: OpenMLS deletes consumed
        // secrets for forward secrecy, and they must not linger in free pages.
        conn.pragma_update(None, "secure_delete", true)?;

        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        schema::migrate(&mut conn)?;
        Ok(Database {
            conn,
            groups: GroupCache::new(),
            groups_version: Cell::new(None),
            relaxed: false,
            unsynced_outbox: false,
        })
    }

    /// Opens a connection with the busy timeout and the key set: both must come before
    /// anything reads the file.
    pub(super) fn connect(path: &str, opts: &StoreOptions) -> Result<Connection, StoreError> {
        let conn = Connection::open(path)?;
        // Set first, so that every later statement (including the pragmas and
        // the migration below) waits for another process's lock instead of
        // failing at once: the app and its notification extension may open
        // and write the same file concurrently.
        conn.busy_timeout(Duration::from_millis(opts.busy_timeout_ms))?;
        if let Some(key) = &opts.key {
            cipher::apply_key(&conn, key)?;
        }
        cipher::quiet_logs(&conn)?;
        Ok(conn)
    }

    /// Switches a file to WAL. Two processes creating the same file at the same instant can
    /// see `SQLITE_BUSY` here without the busy handler being consulted (the journal mode
    /// change needs an exclusive lock that SQLite does not wait for), so it is retried, within
    /// the busy timeout.
    fn enable_wal(conn: &Connection, busy_timeout_ms: u64) -> Result<String, StoreError> {
        let deadline = std::time::Instant::now() + Duration::from_millis(busy_timeout_ms);
        loop {
            match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
                Ok(mode) => return Ok(mode),
                Err(e) => match StoreError::from(e) {
                    StoreError::Busy if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    other => return Err(other),
                },
            }
        }
    }

    /// Starts a read-write step: `BEGIN IMMEDIATE` takes the write lock now
    /// (waiting up to the busy timeout), so the step can never fail later
    /// with a lock upgrade conflict. Dropping the step rolls it back.
    pub fn step(&mut self) -> Result<Step<'_>, StoreError> {
        self.set_relaxed(false)?;
        self.write_step()
    }

    /// `BEGIN IMMEDIATE`, with the group cache vouched for or emptied (see [`Database`]).
    fn write_step(&mut self) -> Result<Step<'_>, StoreError> {
        let tx = StepTx::begin(&self.conn, Begin::Immediate)?;
        // Read under the write lock: no other connection can commit until this step ends, so
        // this is the version of the rows the step sees.
        let version = step::data_version(&tx)?;
        if self.groups_version.get() != Some(version) || !Layer::Kept.enabled() {
            self.groups.reset();
        }
        self.groups_version.set(None);
        Ok(Step::write(tx, &self.groups, version, &self.groups_version))
    }

    /// Starts a read-write step that commits with `synchronous = NORMAL`, i.e. without
    /// waiting for an fsync: an app kill still cannot lose it (WAL), only a power loss can,
    /// and then also everything committed after it up to the next sync — a FULL commit or
    /// [`Database::sync_log`], which cover the whole log, so the log is never reordered.
    /// For work whose loss to a power cut is harmless or repaired: forgetting that an outbox
    /// packet was delivered (it is published again and receivers drop the duplicate), pruning
    /// old de-duplication hashes, and taking in packets (a rolled-back receive is redelivered
    /// or caught up like any missed packet), provided what such a step queued to publish
    /// waits for [`Database::sync_log`].
    pub fn relaxed_step(&mut self) -> Result<Step<'_>, StoreError> {
        self.set_relaxed(true)?;
        self.write_step()
    }

    /// Syncs the log after a relaxed step committed packets to the outbox: they must not be
    /// published before it is on disk. If the sync fails they stay marked, and
    /// [`Database::sync_if_needed`] syncs before anything is published.
    pub fn sync_queued_outbox(&mut self) -> Result<(), StoreError> {
        self.unsynced_outbox = true;
        self.sync_if_needed()
    }

    /// Syncs the log if a relaxed step queued packets since the last sync. Called before
    /// anything is handed to the transport, so that no packet leaves the device while the
    /// state that produced it could still be rolled back by a power cut.
    pub fn sync_if_needed(&mut self) -> Result<(), StoreError> {
        if self.unsynced_outbox {
            self.sync_log()?;
        }
        Ok(())
    }

    /// Waits until everything committed on this connection is on disk: the same fsync of the
    /// write-ahead log that a `synchronous = FULL` commit makes, done after a relaxed commit.
    /// A relaxed step cannot simply switch to FULL once it knows it will publish: SQLite
    /// refuses to change `synchronous` inside a transaction.
    pub fn sync_log(&mut self) -> Result<(), StoreError> {
        durability::sync_journal(&self.conn)?;
        self.unsynced_outbox = false;
        Ok(())
    }

    /// Switches `synchronous` between FULL (durable steps) and NORMAL (relaxed steps). Only
    /// possible outside a transaction, which is where every step starts.
    fn set_relaxed(&mut self, relaxed: bool) -> Result<(), StoreError> {
        if self.relaxed != relaxed {
            tx::roll_back_stray(&self.conn)?;
            let value = if relaxed { "NORMAL" } else { "FULL" };
            self.conn.pragma_update(None, "synchronous", value)?;
            self.relaxed = relaxed;
        }
        Ok(())
    }

    /// Whether the group this connection keeps carries MLS secrets newer than its rows past
    /// the commits of chat reads (`mls::GroupCache::carry`): a write step with nothing else
    /// to do writes them.
    pub fn carries_secrets(&self) -> bool {
        self.groups.is_carried()
    }

    /// Starts a read step (`BEGIN DEFERRED`): a consistent snapshot that does
    /// not block the writer. Use it only to read.
    pub fn read(&mut self) -> Result<Step<'_>, StoreError> {
        let tx = StepTx::begin(&self.conn, Begin::Deferred)?;
        Ok(Step::read(tx))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::super::test_support::{db_path, file_db, memory_db};
    use super::*;

    #[test]
    fn open_twice_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut db = file_db(&dir);
            let step = db.step().unwrap();
            step.meta_set("k", b"v").unwrap();
            step.commit().unwrap();
        }
        let mut db = file_db(&dir);
        let _second = file_db(&dir);
        let step = db.read().unwrap();
        assert_eq!(step.meta_get("k").unwrap(), Some(b"v".to_vec()));
        let version: i64 = step
            .tx
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::latest_version());
    }

    #[test]
    fn concurrent_first_opens_migrate_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut db = Database::open(&path, &StoreOptions::default()).unwrap();
                    let step = db.step().unwrap();
                    step.outbox_push(&format!("{:?}", std::thread::current().id()), "t", b"", 0)
                        .unwrap();
                    step.commit().unwrap();
                })
            })
            .collect();
        for opener in openers {
            opener.join().unwrap();
        }
        let mut db = file_db(&dir);
        assert_eq!(db.read().unwrap().outbox_len().unwrap(), 4);
    }

    #[test]
    fn pragmas_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir);
        let get = |name: &str| -> String {
            db.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert!(get("journal_mode").contains("wal"));
        assert!(get("foreign_keys").contains("Integer(1)"));
        assert!(get("synchronous").contains("Integer(2)")); // FULL
        assert!(get("cache_size").contains("Integer(-1024)"));
        assert!(get("secure_delete").contains("Integer(1)"));
        assert!(get("busy_timeout").contains("Integer(5000)"));
        let opts = StoreOptions {
            cache_kib: 512,
            ..StoreOptions::default()
        };
        let small = Database::open(&db_path(&dir), &opts).unwrap();
        let cache: i64 = small
            .conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(cache, -512);
        // Apple's fsync leaves data in the drive's cache; witan asks for F_FULLFSYNC there.
        let full = if cfg!(target_vendor = "apple") {
            "Integer(1)"
        } else {
            "Integer(0)"
        };
        assert!(get("fullfsync").contains(full));
        assert!(get("checkpoint_fullfsync").contains(full));
        // In-memory databases open too (no WAL).
        let _ = memory_db();
    }

    #[test]
    fn relaxed_steps_commit_and_the_next_step_is_full_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = file_db(&dir);
        let synchronous = |db: &Database| -> i64 {
            db.conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        let step = db.relaxed_step().unwrap();
        step.outbox_push("p", "t", b"x", 0).unwrap();
        step.commit().unwrap();
        assert_eq!(synchronous(&db), 1); // NORMAL
        let step = db.step().unwrap();
        assert_eq!(step.outbox_len().unwrap(), 1);
        drop(step);
        assert_eq!(synchronous(&db), 2); // FULL
        let mut other = file_db(&dir);
        assert_eq!(other.read().unwrap().outbox_len().unwrap(), 1);
    }

    #[test]
    fn a_transaction_left_open_does_not_stop_the_next_relaxed_or_full_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = file_db(&dir);
        // As if a step's rollback had failed: its transaction and its write are still there.
        db.conn
            .execute_batch("BEGIN; INSERT INTO meta (key, value) VALUES ('stray', x'01');")
            .unwrap();
        // A relaxed step first changes `synchronous`, which SQLite refuses in a transaction.
        let step = db.relaxed_step().unwrap();
        assert_eq!(step.meta_get("stray").unwrap(), None);
        step.outbox_push("p", "t", b"x", 0).unwrap();
        step.commit().unwrap();
        db.conn.execute_batch("BEGIN").unwrap();
        let step = db.step().unwrap();
        assert_eq!(step.outbox_len().unwrap(), 1);
    }

    #[test]
    fn an_outbox_queued_by_a_relaxed_step_is_synced_once_before_publishing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = file_db(&dir);
        db.sync_if_needed().unwrap();
        assert!(!db.unsynced_outbox);
        let step = db.relaxed_step().unwrap();
        step.outbox_push("p", "t", b"x", 0).unwrap();
        step.commit().unwrap();
        db.sync_queued_outbox().unwrap();
        assert!(!db.unsynced_outbox);
        // As after a failed sync: the next check before publishing syncs.
        db.unsynced_outbox = true;
        db.sync_if_needed().unwrap();
        assert!(!db.unsynced_outbox);
        // The sync neither changed the mode nor the data.
        assert!(db.relaxed);
        assert_eq!(db.read().unwrap().outbox_len().unwrap(), 1);
    }

    #[test]
    fn garbage_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = Database::open(&path, &StoreOptions::default()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn second_connection_times_out_while_first_holds_a_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = file_db(&dir);
        let short = StoreOptions {
            busy_timeout_ms: 100,
            ..StoreOptions::default()
        };
        let mut b = Database::open(&db_path(&dir), &short).unwrap();
        let step = a.step().unwrap();
        step.meta_set("k", b"a").unwrap();
        let started = Instant::now();
        let err = b.step().unwrap_err();
        assert!(matches!(err, StoreError::Busy), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(90));
        // Readers are not blocked by the writer and see only committed data.
        {
            let read = b.read().unwrap();
            assert_eq!(read.meta_get("k").unwrap(), None);
        }
        step.commit().unwrap();
        let read = b.read().unwrap();
        assert_eq!(read.meta_get("k").unwrap(), Some(b"a".to_vec()));
    }

    #[test]
    fn steps_on_two_connections_serialise() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        let mut a = file_db(&dir);
        let (locked_tx, locked_rx) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            let step = a.step().unwrap();
            step.meta_set("order", b"a").unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            step.commit().unwrap();
        });
        locked_rx.recv().unwrap();
        let mut b = Database::open(
            &path,
            &StoreOptions {
                busy_timeout_ms: 10_000,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let started = Instant::now();
        let step = b.step().unwrap(); // waits for `a` to commit
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(step.meta_get("order").unwrap(), Some(b"a".to_vec()));
        step.meta_set("order", b"b").unwrap();
        step.commit().unwrap();
        holder.join().unwrap();
        let read = b.read().unwrap();
        assert_eq!(read.meta_get("order").unwrap(), Some(b"b".to_vec()));
    }

    #[test]
    fn data_version_changes_after_another_connection_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = file_db(&dir);
        let mut b = file_db(&dir);
        // Read as the client does: in a read-write step, under the write lock.
        let version = |db: &mut Database| db.step().unwrap().data_version().unwrap();
        let before = version(&mut b);

        // Own commits and rolled-back steps elsewhere do not change it.
        let step = b.step().unwrap();
        step.meta_set("own", b"1").unwrap();
        step.commit().unwrap();
        assert_eq!(version(&mut b), before);
        drop(a.step().unwrap());
        assert_eq!(version(&mut b), before);

        let step = a.step().unwrap();
        step.meta_set("other", b"1").unwrap();
        step.commit().unwrap();
        assert_ne!(version(&mut b), before);
        // A write step's version, read when it began, is the PRAGMA's still.
        let step = b.step().unwrap();
        let pragma = crate::step::data_version(&step.tx).unwrap();
        assert_eq!(step.data_version().unwrap(), pragma);
    }
}
