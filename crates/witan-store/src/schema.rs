//! The database schema and its forward migrations.
//!
//! The schema version lives in the one-row table `schema_version`. On open,
//! [`migrate`] applies every migration newer than the stored version, in
//! order, inside one `BEGIN IMMEDIATE` transaction, and records the new
//! version in that same transaction: a kill mid-migration leaves the old
//! schema intact, and two processes opening the file at once serialise on the
//! write lock (the second one finds the work done). Migrations are append-only:
//! never edit a released entry of [`MIGRATIONS`], add a new one.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::error::StoreError;
use super::legacy;

/// Forward migrations; entry `i` moves the schema from version `i` to `i + 1`.
///
/// Tables are `STRICT` so that a value of the wrong type can never be stored.
/// Small key-value tables are `WITHOUT ROWID`; tables whose rows can be large
/// (OpenMLS group state, message bodies, packets) keep a rowid, as SQLite
/// recommends.
pub(crate) const MIGRATIONS: &[Migration] = &[
    // Version 1: the initial schema.
    Migration::Sql(
        r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE identity (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        secret BLOB NOT NULL
    ) STRICT;

    CREATE TABLE mls_kv (
        key   BLOB PRIMARY KEY NOT NULL,
        value BLOB NOT NULL
    ) STRICT;

    CREATE TABLE conversations (
        id               TEXT PRIMARY KEY NOT NULL,
        state            BLOB NOT NULL,
        next_deadline_ms INTEGER
    ) STRICT;
    -- Serves next_deadline() (first entry) and due_conversations() (a prefix).
    CREATE INDEX conversations_by_deadline
        ON conversations (next_deadline_ms) WHERE next_deadline_ms IS NOT NULL;

    CREATE TABLE seen_packets (
        hash    BLOB PRIMARY KEY NOT NULL,
        seen_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    -- Serves prune_seen().
    CREATE INDEX seen_packets_by_time ON seen_packets (seen_ms);

    CREATE TABLE pending_inbound (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL,
        epoch           INTEGER NOT NULL,
        payload         BLOB NOT NULL,
        received_ms     INTEGER NOT NULL
    ) STRICT;
    -- Serves the per-conversation totals and take_next_buffered() in (epoch, arrival) order.
    CREATE INDEX pending_inbound_by_conversation
        ON pending_inbound (conversation_id, epoch, id);

    -- AUTOINCREMENT: a seq is never reused, so seq order is insertion order (FIFO).
    CREATE TABLE outbox (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        packet_id       TEXT NOT NULL UNIQUE,
        topic           TEXT NOT NULL,
        payload         BLOB NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL
    ) STRICT;
    -- Serves outbox_next_attempt() and the due filter of outbox_due().
    CREATE INDEX outbox_by_next_attempt ON outbox (next_attempt_ms, seq);

    CREATE TABLE messages (
        conversation_id TEXT NOT NULL,
        seq             INTEGER NOT NULL CHECK (seq >= 1),
        message_id      TEXT NOT NULL,
        sender          TEXT NOT NULL,
        body            BLOB NOT NULL,
        sent_at_ms      INTEGER NOT NULL,
        own             INTEGER NOT NULL CHECK (own IN (0, 1)),
        PRIMARY KEY (conversation_id, seq),
        UNIQUE (conversation_id, message_id)
    ) STRICT;
    "#,
    ),
    // Version 2: a message is one sender's: history de-duplicates on the sender and the id, so
    // that a member cannot shadow another member's message by sending its id first.
    Migration::Sql(
        r#"
    ALTER TABLE messages RENAME TO messages_v1;
    CREATE TABLE messages (
        conversation_id TEXT NOT NULL,
        seq             INTEGER NOT NULL CHECK (seq >= 1),
        message_id      TEXT NOT NULL,
        sender          TEXT NOT NULL,
        body            BLOB NOT NULL,
        sent_at_ms      INTEGER NOT NULL,
        own             INTEGER NOT NULL CHECK (own IN (0, 1)),
        PRIMARY KEY (conversation_id, seq),
        UNIQUE (conversation_id, sender, message_id)
    ) STRICT;
    INSERT INTO messages
        SELECT conversation_id, seq, message_id, sender, body, sent_at_ms, own FROM messages_v1;
    DROP TABLE messages_v1;
    "#,
    ),
    // Version 3: bounded de-duplication. `seen_packets` gets an insertion sequence so that
    // the oldest hashes beyond a row bound can be dropped in one range delete; buffered
    // packets are de-duplicated in the buffer by their hash (they are marked seen only once
    // applied).
    Migration::Sql(
        r#"
    ALTER TABLE seen_packets RENAME TO seen_packets_v2;
    DROP INDEX seen_packets_by_time;
    CREATE TABLE seen_packets (
        seq     INTEGER PRIMARY KEY,
        hash    BLOB NOT NULL UNIQUE,
        seen_ms INTEGER NOT NULL
    ) STRICT;
    INSERT INTO seen_packets (hash, seen_ms)
        SELECT hash, seen_ms FROM seen_packets_v2 ORDER BY seen_ms;
    DROP TABLE seen_packets_v2;
    -- Serves prune_seen().
    CREATE INDEX seen_packets_by_time ON seen_packets (seen_ms);

    ALTER TABLE pending_inbound ADD COLUMN hash BLOB;
    CREATE UNIQUE INDEX pending_inbound_by_hash ON pending_inbound (conversation_id, hash);
    "#,
    ),
    // Version 4: the engine's state in parts. The engine may keep a conversation's state in
    // several named parts, so that a step rewrites only the parts it changed; the state
    // stored so far becomes the part `conversation`. `conversations` keeps the row that
    // names a conversation and its next deadline.
    Migration::Sql(
        r#"
    CREATE TABLE engine_state (
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        part            TEXT NOT NULL,
        value           BLOB NOT NULL,
        PRIMARY KEY (conversation_id, part)
    ) STRICT;
    INSERT INTO engine_state (conversation_id, part, value)
        SELECT id, 'conversation', state FROM conversations;
    ALTER TABLE conversations DROP COLUMN state;
    "#,
    ),
    // Version 5: OpenMLS rows and engine states written as JSON by versions before the row
    // codec are transcoded to it, once (see `legacy.rs`), so that nothing reads JSON after.
    Migration::Code(legacy::transcode_json_rows),
    // Version 6: engine states stored whole (the part `conversation`) are split into the
    // engine's parts by the engine's own migration (see `legacy.rs`), so that a step rewrites
    // only the parts it changed.
    Migration::Code(legacy::split_engine_states),
    // Version 7: fewer pages written per received message (each page is a frame in the log).
    // The history is kept in its primary key's order (no separate index for it), and the seen
    // hashes lose their time index: pruning by age walks them in the order they were marked
    // (`Step::prune_seen`).
    Migration::Sql(
        r#"
    ALTER TABLE messages RENAME TO messages_v2;
    CREATE TABLE messages (
        conversation_id TEXT NOT NULL,
        seq             INTEGER NOT NULL CHECK (seq >= 1),
        message_id      TEXT NOT NULL,
        sender          TEXT NOT NULL,
        body            BLOB NOT NULL,
        sent_at_ms      INTEGER NOT NULL,
        own             INTEGER NOT NULL CHECK (own IN (0, 1)),
        PRIMARY KEY (conversation_id, seq),
        UNIQUE (conversation_id, sender, message_id)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO messages
        SELECT conversation_id, seq, message_id, sender, body, sent_at_ms, own FROM messages_v2;
    DROP TABLE messages_v2;
    DROP INDEX seen_packets_by_time;
    "#,
    ),
    // Version 8: the ballots' votes as rows of their own, written once each, instead of inside
    // the engine's ballots part, which a step rewrites whole (a live removal in a group of n
    // wrote n² votes per member). Rows are numbered per proposal in the order the votes came,
    // so a step's new votes are appended. Votes still inline in a stored part are moved by
    // the engine at its next save of that part.
    Migration::Sql(
        r#"
    CREATE TABLE engine_votes (
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        ballot          BLOB NOT NULL,
        seq             INTEGER NOT NULL CHECK (seq >= 0),
        vote            BLOB NOT NULL,
        PRIMARY KEY (conversation_id, ballot, seq)
    ) STRICT, WITHOUT ROWID;
    "#,
    ),
    // Version 9: the history's tail. A chat read in a step of its own (a live socket) is
    // appended here, a rowid table without an index, so that its step writes one page instead
    // of two (the history's row and its uniqueness index); the next step that writes the
    // group's message secrets moves the tail into `messages` (`history.rs`).
    Migration::Sql(
        r#"
    CREATE TABLE messages_tail (
        id              INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        seq             INTEGER NOT NULL CHECK (seq >= 1),
        message_id      TEXT NOT NULL,
        sender          TEXT NOT NULL,
        body            BLOB NOT NULL,
        sent_at_ms      INTEGER NOT NULL,
        own             INTEGER NOT NULL CHECK (own IN (0, 1))
    ) STRICT;
    "#,
    ),
];

/// One forward migration.
pub(crate) enum Migration {
    /// Statements run as one batch.
    Sql(&'static str),
    /// Code run in the migration's transaction, for data SQL cannot transform.
    Code(fn(&Connection) -> Result<(), StoreError>),
}

impl Migration {
    fn apply(&self, conn: &Connection) -> Result<(), StoreError> {
        match self {
            Migration::Sql(sql) => Ok(conn.execute_batch(sql)?),
            Migration::Code(f) => f(conn),
        }
    }
}

/// The schema version this build writes and understands.
pub(crate) fn latest_version() -> i64 {
    // MIGRATIONS is a short constant list; its length always fits.
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    ) STRICT";

/// Reads the stored schema version; 0 for a fresh database.
fn stored_version(conn: &Connection) -> Result<i64, StoreError> {
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version')",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    let version: Option<i64> = conn
        .query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(version.unwrap_or(0))
}

/// Brings the schema to [`latest_version`]; a no-op when it is already there.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // Fast path without the write lock: opening an up-to-date database must
    // not wait for another process that is in the middle of a long step.
    if stored_version(conn)? == latest_version() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(CREATE_VERSION_TABLE)?;
    // Re-read under the write lock: another connection may have migrated
    // between the check above and BEGIN IMMEDIATE.
    let current = stored_version(&tx)?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::Migration(format!(
            "database schema version {current} is newer than this build supports ({latest})"
        )));
    }
    let applied = usize::try_from(current)
        .map_err(|_| StoreError::Corrupt(format!("negative schema version {current}")))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        migration.apply(&tx).map_err(|e| {
            StoreError::Migration(format!("migration to version {}: {e}", index + 1))
        })?;
    }
    tx.execute(
        "INSERT INTO schema_version (id, version) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        [latest],
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn migrate_is_idempotent_on_one_connection() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(stored_version(&conn).unwrap(), latest_version());
        migrate(&mut conn).unwrap();
        assert_eq!(stored_version(&conn).unwrap(), latest_version());
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'messages'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
    }

    /// Every row `sql` selects, each read by `row`.
    fn rows<T>(
        conn: &Connection,
        sql: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Vec<T> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], row)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A database left at `version` by an earlier build.
    pub(crate) fn database_at(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..version] {
            migration.apply(&conn).unwrap();
        }
        conn.execute_batch(CREATE_VERSION_TABLE).unwrap();
        conn.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, ?1)",
            [version as i64],
        )
        .unwrap();
        conn
    }

    #[test]
    fn version_2_keeps_the_history_and_tells_senders_apart() {
        let mut conn = database_at(1);
        conn.execute_batch(
            "INSERT INTO messages VALUES ('c', 1, 'm1', 'alice', x'01', 5, 0);
             INSERT INTO messages VALUES ('c', 2, 'm2', 'bob', x'02', 6, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let kept: Vec<(i64, String, String)> = rows(
            &conn,
            "SELECT seq, message_id, sender FROM messages ORDER BY seq",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        );
        assert_eq!(
            kept,
            [
                (1, "m1".into(), "alice".into()),
                (2, "m2".into(), "bob".into())
            ]
        );
        // The same id from another sender is another message; from the same sender it is not.
        conn.execute(
            "INSERT INTO messages VALUES ('c', 3, 'm1', 'mallory', x'03', 7, 0)",
            [],
        )
        .unwrap();
        assert!(
            conn.execute(
                "INSERT INTO messages VALUES ('c', 4, 'm1', 'alice', x'04', 8, 0)",
                []
            )
            .is_err()
        );
    }

    #[test]
    fn version_3_keeps_the_seen_hashes_in_time_order() {
        let mut conn = database_at(2);
        conn.execute_batch(
            "INSERT INTO seen_packets VALUES (x'02', 20);
             INSERT INTO seen_packets VALUES (x'01', 10);
             INSERT INTO pending_inbound (conversation_id, epoch, payload, received_ms)
                 VALUES ('c', 3, x'33', 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let seen: Vec<(i64, Vec<u8>)> = rows(
            &conn,
            "SELECT seq, hash FROM seen_packets ORDER BY seq",
            |r| Ok((r.get(0)?, r.get(1)?)),
        );
        assert_eq!(seen, [(1, vec![1]), (2, vec![2])]);
        let buffered: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pending_inbound WHERE hash IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(buffered, 1);
    }

    #[test]
    fn version_4_moves_each_state_into_its_first_part() {
        let mut conn = database_at(3);
        conn.execute_batch(
            "INSERT INTO conversations VALUES ('a', x'0a0b', 77);
             INSERT INTO conversations VALUES ('b', x'', NULL);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let parts: Vec<(String, String, Vec<u8>)> = rows(
            &conn,
            "SELECT conversation_id, part, value FROM engine_state ORDER BY 1",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        );
        assert_eq!(
            parts,
            [
                ("a".into(), "conversation".into(), vec![0x0a, 0x0b]),
                ("b".into(), "conversation".into(), vec![])
            ]
        );
        let deadline: Option<i64> = conn
            .query_row(
                "SELECT next_deadline_ms FROM conversations WHERE id = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(deadline, Some(77));
    }

    #[test]
    fn version_7_keeps_the_history_and_the_seen_hashes() {
        let mut conn = database_at(6);
        conn.execute_batch(
            "INSERT INTO messages VALUES ('c', 2, 'm2', 'bob', x'02', 6, 1);
             INSERT INTO messages VALUES ('c', 1, 'm1', 'alice', x'01', 5, 0);
             INSERT INTO seen_packets (hash, seen_ms) VALUES (x'01', 10);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let kept: Vec<(i64, String, Vec<u8>)> = rows(
            &conn,
            "SELECT seq, sender, body FROM messages WHERE conversation_id = 'c'",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        );
        assert_eq!(
            kept,
            [(1, "alice".into(), vec![1]), (2, "bob".into(), vec![2])]
        );
        // Still one message per sender and id, and one per place in the conversation.
        for dup in [
            "INSERT INTO messages VALUES ('c', 3, 'm1', 'alice', x'03', 7, 0)",
            "INSERT INTO messages VALUES ('c', 2, 'm9', 'carol', x'03', 7, 0)",
        ] {
            assert!(conn.execute(dup, []).is_err(), "{dup}");
        }
        let seen: i64 = conn
            .query_row("SELECT seq FROM seen_packets WHERE hash = x'01'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(seen, 1);
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute("UPDATE schema_version SET version = version + 1", [])
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(StoreError::Migration(_))));
    }
}
