//! The durable catch-up cursors of a member: for each relay topic, the last stored message
//! that witan has taken in (its hash, the store's cursor, and its timestamp, for when the
//! store no longer knows that hash). Kept in the transport's own SQLite file, not witan's.
//!
//! A cursor is written only after `handle_wakeup` returned Ok for the page that ends with
//! it; a crash before the write makes the next catch-up deliver that page again, which witan
//! counts as duplicates. So the write needs no fsync of its own: a lost write only repeats
//! work.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::NetError;

/// Where a relay topic's catch-up resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub message_hash: Vec<u8>,
    pub timestamp_ns: i64,
}

pub struct CursorStore {
    conn: Connection,
}

impl CursorStore {
    /// Opens (or creates) the file; `None` keeps the cursors in memory (catch-up then starts
    /// from the store's oldest message after every start).
    pub fn open(path: Option<&Path>) -> Result<CursorStore, NetError> {
        let conn = crate::sqlite::open(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS cursor (
                 pubsub_topic TEXT PRIMARY KEY,
                 message_hash BLOB NOT NULL,
                 timestamp_ns INTEGER NOT NULL
             )",
        )?;
        Ok(CursorStore { conn })
    }

    pub fn get(&self, pubsub_topic: &str) -> Result<Option<Cursor>, NetError> {
        Ok(self
            .conn
            .query_row(
                "SELECT message_hash, timestamp_ns FROM cursor WHERE pubsub_topic = ?1",
                params![pubsub_topic],
                |r| {
                    Ok(Cursor {
                        message_hash: r.get(0)?,
                        timestamp_ns: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn set(&self, pubsub_topic: &str, cursor: &Cursor) -> Result<(), NetError> {
        self.conn.execute(
            "INSERT INTO cursor (pubsub_topic, message_hash, timestamp_ns) VALUES (?1, ?2, ?3)
             ON CONFLICT (pubsub_topic) DO UPDATE SET message_hash = ?2, timestamp_ns = ?3",
            params![pubsub_topic, cursor.message_hash, cursor.timestamp_ns],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_a_reopen_and_are_per_relay_topic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursors.db");
        let a = Cursor {
            message_hash: vec![1; 32],
            timestamp_ns: 5,
        };
        {
            let store = CursorStore::open(Some(&path)).unwrap();
            assert_eq!(store.get("/waku/2/rs/66/1").unwrap(), None);
            store.set("/waku/2/rs/66/1", &a).unwrap();
            store
                .set(
                    "/waku/2/rs/66/1",
                    &Cursor {
                        message_hash: vec![2; 32],
                        timestamp_ns: 6,
                    },
                )
                .unwrap();
            store.set("/waku/2/rs/66/2", &a).unwrap();
        }
        let store = CursorStore::open(Some(&path)).unwrap();
        assert_eq!(
            store.get("/waku/2/rs/66/1").unwrap().unwrap().timestamp_ns,
            6
        );
        assert_eq!(store.get("/waku/2/rs/66/2").unwrap(), Some(a));
        let memory = CursorStore::open(None).unwrap();
        assert_eq!(memory.get("/waku/2/rs/66/1").unwrap(), None);
    }
}
