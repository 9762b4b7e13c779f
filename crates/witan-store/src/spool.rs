//! The spool: packets that a notification extension could not apply because the app held
//! the database lock past the extension's bound. They wait, unread, in a small file of their
//! own beside the database (`<database>-spool`, encrypted with the same key) until a run that
//! gets the lock applies them, oldest first.
//!
//! The spool is opened only for the moment it is used and closed again, so neither process
//! keeps a lock on it while suspended. Its file is never deleted: the other process may have
//! it open, and rows written into a deleted file would be lost.

use rusqlite::{Connection, TransactionBehavior, params};

use super::cipher;
use super::db::{Database, StoreOptions};
use super::error::{StoreError, to_u64};

/// At most this many packets wait in the spool; beyond it a push fails (the host keeps
/// the packets, or the transport delivers them again later).
pub const MAX_SPOOLED: u64 = 4_096;

/// A packet waiting in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledPacket {
    pub id: i64,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// An open spool file.
pub struct Spool {
    conn: Connection,
}

impl Spool {
    /// The spool file that belongs to the database at `db_path`.
    pub fn path_for(db_path: &str) -> String {
        format!("{db_path}-spool")
    }

    /// Whether the database at `db_path` has a spool file (cheap: no open).
    pub fn exists(db_path: &str) -> bool {
        std::path::Path::new(&Self::path_for(db_path)).exists()
    }

    /// Opens (creating if needed) the spool of the database at `db_path`.
    pub fn open(db_path: &str, opts: &StoreOptions) -> Result<Spool, StoreError> {
        let path = Self::path_for(db_path);
        let conn = Database::connect(&path, opts)?;
        cipher::probe(&conn, &path, opts.key.as_ref())?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spool (
                id      INTEGER PRIMARY KEY AUTOINCREMENT,
                topic   TEXT NOT NULL,
                payload BLOB NOT NULL
            ) STRICT;",
        )?;
        Ok(Spool { conn })
    }

    /// Appends packets, all or none. Fails without change if the spool would hold more than
    /// [`MAX_SPOOLED`].
    pub fn push<'a>(
        &mut self,
        packets: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held: i64 = tx.query_row("SELECT count(*) FROM spool", [], |r| r.get(0))?;
        let held = to_u64(held, "spool size")?;
        if held.saturating_add(packets.len() as u64) > MAX_SPOOLED {
            return Err(StoreError::Io(format!(
                "the spool is full ({held} packets wait for the app)"
            )));
        }
        {
            let mut insert = tx.prepare("INSERT INTO spool (topic, payload) VALUES (?1, ?2)")?;
            for (topic, payload) in packets {
                insert.execute(params![topic, payload])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The oldest `limit` packets, without removing them.
    pub fn peek(&mut self, limit: u32) -> Result<Vec<SpooledPacket>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, topic, payload FROM spool ORDER BY id LIMIT ?1")?;
        let rows = stmt.query_map([limit], |r| {
            Ok(SpooledPacket {
                id: r.get(0)?,
                topic: r.get(1)?,
                payload: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes every packet up to and including `id` (once they were applied).
    pub fn remove_through(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM spool WHERE id <= ?1", [id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::cipher::DatabaseKey;
    use super::super::test_support::db_path;
    use super::*;

    #[test]
    fn packets_come_back_in_order_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_path(&dir);
        assert!(!Spool::exists(&db));
        let opts = StoreOptions::default();
        let mut spool = Spool::open(&db, &opts).unwrap();
        assert!(Spool::exists(&db));
        let packets = [("a", &b"1"[..]), ("b", &b"22"[..]), ("c", &b"333"[..])];
        spool.push(packets.iter().copied()).unwrap();
        drop(spool);
        let mut spool = Spool::open(&db, &opts).unwrap();
        let first_two = spool.peek(2).unwrap();
        assert_eq!(
            first_two
                .iter()
                .map(|p| p.topic.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        spool.remove_through(first_two[1].id).unwrap();
        let rest = spool.peek(10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(
            (rest[0].topic.as_str(), rest[0].payload.as_slice()),
            ("c", &b"333"[..])
        );
    }

    #[test]
    fn a_full_spool_refuses_the_whole_push() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_path(&dir);
        let mut spool = Spool::open(&db, &StoreOptions::default()).unwrap();
        let payload = [0u8; 1];
        let many: Vec<(&str, &[u8])> = (0..MAX_SPOOLED).map(|_| ("t", &payload[..])).collect();
        spool.push(many.iter().copied()).unwrap();
        let err = spool.push([("t", &payload[..])].into_iter()).unwrap_err();
        assert!(matches!(err, StoreError::Io(_)), "{err:?}");
        assert_eq!(spool.peek(u32::MAX).unwrap().len() as u64, MAX_SPOOLED);
    }

    #[test]
    fn the_spool_is_encrypted_with_the_database_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_path(&dir);
        let opts = StoreOptions {
            key: Some(DatabaseKey::new(&[5; 32]).unwrap()),
            ..StoreOptions::default()
        };
        let mut spool = Spool::open(&db, &opts).unwrap();
        spool
            .push([("topic-in-clear?", &b"payload-in-clear?"[..])].into_iter())
            .unwrap();
        drop(spool);
        let bytes = std::fs::read(Spool::path_for(&db)).unwrap();
        assert!(!bytes.windows(17).any(|w| w == b"payload-in-clear?"));
        assert!(Spool::open(&db, &StoreOptions::default()).is_err());
        assert_eq!(Spool::open(&db, &opts).unwrap().peek(9).unwrap().len(), 1);
    }
}
