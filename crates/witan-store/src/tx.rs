//! `StepTx`: the SQLite transaction under a [`super::Step`], begun and ended by statements
//! the connection keeps prepared.
//!
//! rusqlite's `Transaction` runs `BEGIN …` and `COMMIT` through `execute_batch`, which parses
//! them again every time; on the live path (one step per received packet) that parsing was
//! 1.7 % of a live receive's perf samples. Here they go through the connection's statement
//! cache like every other statement of a step. The rules are rusqlite's: a transaction that
//! was not committed is rolled back when dropped, also after a failed `COMMIT` (SQLite leaves
//! the transaction open then). One more: should that rollback fail too, the next step rolls
//! the transaction back before it begins, rather than fail (and every step after it) on
//! `BEGIN`.

use std::ops::Deref;

use rusqlite::Connection;

use super::error::StoreError;

/// How a transaction takes its locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Begin {
    /// The write lock at once (`BEGIN IMMEDIATE`): a step that writes never fails later on
    /// a lock upgrade.
    Immediate,
    /// Locks when first needed (`BEGIN DEFERRED`): a read step.
    Deferred,
}

/// An open transaction on `conn`; derefs to the connection for the step's statements. It
/// is open exactly while the connection is out of autocommit mode: a `COMMIT` that succeeded
/// ended it, one that failed left it open.
pub(super) struct StepTx<'c> {
    conn: &'c Connection,
}

impl<'c> StepTx<'c> {
    /// Begins a transaction. Every step ends its own; one still open here was left by a
    /// rollback that failed, and holds only the writes of a step that did not commit — it
    /// is rolled back first, or the connection could never begin a step again.
    pub(super) fn begin(conn: &'c Connection, begin: Begin) -> Result<Self, StoreError> {
        roll_back_stray(conn)?;
        let sql = match begin {
            Begin::Immediate => "BEGIN IMMEDIATE",
            Begin::Deferred => "BEGIN DEFERRED",
        };
        conn.prepare_cached(sql)?.execute([])?;
        Ok(StepTx { conn })
    }

    /// Commits. On an error the transaction is still open, and rolled back when dropped.
    pub(super) fn commit(self) -> Result<(), StoreError> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}

/// Rolls back a transaction left open on `conn` by a rollback that failed (see
/// [`StepTx::begin`]); nothing when there is none. Also called before a step changes a
/// pragma that SQLite refuses to change inside a transaction.
pub(super) fn roll_back_stray(conn: &Connection) -> Result<(), StoreError> {
    if !conn.is_autocommit() {
        tracing::warn!("a transaction left open is rolled back before the next step");
        rollback(conn)?;
    }
    Ok(())
}

/// Rolls back the open transaction through the statement cache.
fn rollback(conn: &Connection) -> rusqlite::Result<usize> {
    conn.prepare_cached("ROLLBACK")?.execute([])
}

impl Deref for StepTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for StepTx<'_> {
    fn drop(&mut self) {
        // SQLite may have ended the transaction itself (some errors roll it back): then
        // there is nothing to roll back, and ROLLBACK would fail.
        if !self.conn.is_autocommit()
            && let Err(e) = rollback(self.conn)
        {
            tracing::warn!(error = %e, "rolling back a step failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (parent INTEGER NOT NULL REFERENCES parent (id));
             PRAGMA foreign_keys = ON;",
        )
        .unwrap();
        conn
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_committed_transaction_keeps_its_rows_and_a_dropped_one_keeps_none() {
        let conn = conn();
        let tx = StepTx::begin(&conn, Begin::Immediate).unwrap();
        tx.execute("INSERT INTO parent (id) VALUES (1)", [])
            .unwrap();
        tx.commit().unwrap();
        let tx = StepTx::begin(&conn, Begin::Deferred).unwrap();
        tx.execute("INSERT INTO parent (id) VALUES (2)", [])
            .unwrap();
        drop(tx);
        assert!(conn.is_autocommit());
        assert_eq!(count(&conn, "parent"), 1);
    }

    #[test]
    fn a_commit_that_fails_is_rolled_back_when_dropped_and_the_next_transaction_begins() {
        let conn = conn();
        let tx = StepTx::begin(&conn, Begin::Immediate).unwrap();
        // A foreign key checked only at COMMIT: the commit fails and leaves the transaction open.
        tx.execute_batch("PRAGMA defer_foreign_keys = ON").unwrap();
        tx.execute("INSERT INTO child (parent) VALUES (7)", [])
            .unwrap();
        assert!(tx.commit().is_err());
        assert!(
            conn.is_autocommit(),
            "the dropped transaction was rolled back"
        );
        assert_eq!(count(&conn, "child"), 0);
        let tx = StepTx::begin(&conn, Begin::Immediate).unwrap();
        tx.execute("INSERT INTO parent (id) VALUES (7)", [])
            .unwrap();
        tx.execute("INSERT INTO child (parent) VALUES (7)", [])
            .unwrap();
        tx.commit().unwrap();
        assert_eq!(count(&conn, "child"), 1);
    }

    #[test]
    fn a_transaction_left_open_is_rolled_back_before_the_next_one_begins() {
        let conn = conn();
        // As if a step's rollback had failed: its transaction and its write are still there.
        conn.execute_batch("BEGIN; INSERT INTO parent (id) VALUES (1);")
            .unwrap();
        let tx = StepTx::begin(&conn, Begin::Immediate).unwrap();
        assert_eq!(count(&tx, "parent"), 0);
        tx.execute("INSERT INTO parent (id) VALUES (2)", [])
            .unwrap();
        tx.commit().unwrap();
        assert!(conn.is_autocommit());
        assert_eq!(count(&conn, "parent"), 1);
    }

    #[test]
    fn an_immediate_transaction_holds_the_write_lock_from_its_begin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let a = Connection::open(&path).unwrap();
        a.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        let b = Connection::open(&path).unwrap();
        b.busy_timeout(std::time::Duration::ZERO).unwrap();
        let tx = StepTx::begin(&a, Begin::Immediate).unwrap();
        let err = StepTx::begin(&b, Begin::Immediate).err();
        assert!(matches!(err, Some(StoreError::Busy)), "{err:?}");
        // A deferred one still reads beside it.
        let read = StepTx::begin(&b, Begin::Deferred).unwrap();
        assert_eq!(count(&read, "t"), 0);
        drop(read);
        tx.commit().unwrap();
        StepTx::begin(&b, Begin::Immediate)
            .unwrap()
            .commit()
            .unwrap();
    }
}
