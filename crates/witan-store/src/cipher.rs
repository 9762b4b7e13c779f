//! Encryption at rest: keying a connection with SQLCipher, telling a wrong key from a damaged
//! file, and encrypting a database that was written without a key.
//!
//! The key is 32 random bytes the host keeps in the Android Keystore or the iOS Keychain. It
//! is handed to SQLCipher as a raw key (no passphrase derivation: it is already uniformly
//! random), so opening costs no PBKDF2 rounds — the notification extension wakes in
//! milliseconds. Every page is encrypted and authenticated (AES-256 + HMAC-SHA512), including
//! the OpenMLS rows, the identity, the history and the WAL.
//!
//! The first 32 bytes of the file stay in plain text (`cipher_plaintext_header_size`): iOS
//! looks at the SQLite header to recognise a WAL database in a shared app-group container
//! and then lets a suspended app keep it open instead of killing it (`0xdead10cc`). Those
//! bytes normally hold SQLCipher's per-file salt, so the salt is supplied with the key:
//! derived from the key itself, which keeps the host's job to one secret. With a random
//! 256-bit raw key the salt only separates the HMAC key from the encryption key; it does not
//! need to be secret or random.

use std::path::Path;

use rusqlite::Connection;
use rusqlite::ffi::ErrorCode;
use sha2::{Digest, Sha256};

use super::error::StoreError;

/// Length of a database key in bytes.
pub const KEY_LEN: usize = 32;

/// Bytes at the start of the file that stay unencrypted (the SQLite header up to the fields
/// iOS inspects).
const PLAINTEXT_HEADER: u32 = 32;

/// What every SQLite file (plain, or SQLCipher with a plaintext header) starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// A 32-byte database key. Its `Debug` form never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseKey([u8; KEY_LEN]);

impl DatabaseKey {
    /// Checks the length of a key handed over by the host.
    pub fn new(bytes: &[u8]) -> Result<DatabaseKey, StoreError> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            StoreError::Key(format!(
                "a database key is {KEY_LEN} bytes, not {}",
                bytes.len()
            ))
        })?;
        Ok(DatabaseKey(key))
    }

    /// The raw key and its salt in the form SQLCipher reads as a raw key: `x'` + 64 hex
    /// digits of key + 32 hex digits of salt + `'`.
    fn raw(&self) -> String {
        let salt = Sha256::new()
            .chain_update(b"witan database salt v1")
            .chain_update(self.0)
            .finalize();
        format!("x'{}{}'", hex::encode(self.0), hex::encode(&salt[..16]))
    }
}

impl std::fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseKey(..)")
    }
}

/// Keys a freshly opened connection. Must run before anything reads the file.
pub fn apply_key(conn: &Connection, key: &DatabaseKey) -> Result<(), StoreError> {
    // PRAGMA arguments cannot be bound parameters; the raw key is hex digits only.
    conn.execute_batch(&format!(
        "PRAGMA key = \"{}\"; PRAGMA cipher_plaintext_header_size = {PLAINTEXT_HEADER};",
        key.raw()
    ))?;
    Ok(())
}

/// Silences SQLCipher's own logging (process-wide): it writes to stderr — the device log on
/// a phone — on every failed page check, and a wrong key is already reported as a typed
/// error. SQLCipher resets the level when its first key is set in a process, so this runs
/// after keying.
pub fn quiet_logs(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()))?;
    Ok(())
}

/// How the first read of a file went.
pub enum Probe {
    /// The connection reads the file (or the file is new and empty).
    Readable,
    /// A key was given, but the file is an unencrypted database: it can be migrated.
    Plaintext,
}

/// Reads the schema once to find out whether the connection's key (or lack of one) fits the
/// file. A mismatch is a [`StoreError::Key`] with a reason the host can act on; a file that is
/// no database at all stays [`StoreError::Corrupt`].
pub fn probe(
    conn: &Connection,
    path: &str,
    key: Option<&DatabaseKey>,
) -> Result<Probe, StoreError> {
    // A key that does not fit shows up as the first read failing: SQLITE_NOTADB, plain
    // SQLITE_ERROR ("unsupported file format"), or — when the random bytes of an encrypted
    // first page happen to parse as a b-tree page — SQLITE_CORRUPT. Which one depends on those
    // bytes, so a "malformed" answer is only a corrupt database when the header says the
    // file is not encrypted (see `reserves_cipher_space`).
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => return Ok(Probe::Readable),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, ErrorCode::NotADatabase | ErrorCode::Unknown) => {}
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.code == ErrorCode::DatabaseCorrupt && reserves_cipher_space(path) => {}
        Err(e) => return Err(e.into()),
    }
    if !starts_like_sqlite(path) {
        return Err(StoreError::Corrupt(format!(
            "{path:?} is not a database file"
        )));
    }
    match key {
        None => Err(StoreError::Key(
            "the database is encrypted: open it with its database key".into(),
        )),
        Some(_) if opens_without_key(path) => Ok(Probe::Plaintext),
        Some(_) => Err(StoreError::Key(
            "the database key does not open this database (wrong key)".into(),
        )),
    }
}

fn starts_like_sqlite(path: &str) -> bool {
    use std::io::Read;
    let mut header = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| &header == SQLITE_MAGIC)
}

/// Whether the plain header reserves space at the end of every page (byte 20 of the SQLite
/// header), as SQLCipher does for its IV and MAC; witan's plain databases reserve none.
fn reserves_cipher_space(path: &str) -> bool {
    use std::io::Read;
    let mut header = [0u8; 21];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| &header[..16] == SQLITE_MAGIC && header[20] > 0)
}

fn opens_without_key(path: &str) -> bool {
    Connection::open(path)
        .map_err(StoreError::from)
        .and_then(|c| quiet_logs(&c).map(|()| c))
        .and_then(|c| {
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(StoreError::from)
        })
        .is_ok()
}

/// Encrypts the unencrypted database at `path` with `key`, in place.
///
/// The copy is written next to the file and renamed over it, so a kill at any instant leaves
/// either the old plain file or the new encrypted one, never a mix: the plain file's WAL is
/// checkpointed into it first and the copy has no WAL of its own. The other process (app or
/// extension) must not have the file open meanwhile; it is done once, on the first open with
/// a key, which an app does at start-up before its extension can run.
pub fn encrypt_plaintext(path: &str, key: &DatabaseKey) -> Result<(), StoreError> {
    let copy = format!("{path}.encrypting");
    remove_if_present(&copy)?;
    remove_if_present(&format!("{copy}-journal"))?;
    {
        let plain = Connection::open(path)?;
        quiet_logs(&plain)?;
        // Everything committed into the main file, and the log emptied, so that no stale
        // plain-text WAL is left to be replayed onto the encrypted file.
        plain.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let user_version: i64 = plain.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        plain.execute(
            "ATTACH DATABASE ?1 AS encrypted KEY ?2",
            [&copy, &key.raw()],
        )?;
        plain.execute_batch(&format!(
            "PRAGMA encrypted.cipher_plaintext_header_size = {PLAINTEXT_HEADER};"
        ))?;
        // No WAL for the copy: nothing of it may live outside the file that is renamed.
        plain.query_row("PRAGMA encrypted.journal_mode = DELETE", [], |_| Ok(()))?;
        plain.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
        plain.execute_batch(&format!(
            "PRAGMA encrypted.user_version = {user_version}; DETACH DATABASE encrypted;"
        ))?;
    }
    // The copy must be on disk before it replaces the original.
    std::fs::File::open(&copy)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error("sync the encrypted copy", &e))?;
    for suffix in ["-wal", "-shm"] {
        remove_if_present(&format!("{path}{suffix}"))?;
    }
    std::fs::rename(&copy, path).map_err(|e| io_error("replace the database", &e))?;
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        // Make the rename itself durable (best effort: not every platform can open a
        // directory for syncing).
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    tracing::info!("encrypted an unencrypted database in place");
    Ok(())
}

fn remove_if_present(path: &str) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove a stale file", &e)),
    }
}

fn io_error(what: &str, e: &std::io::Error) -> StoreError {
    StoreError::Io(format!("encrypting the database: cannot {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::db_path;
    use super::super::{Database, StoreOptions};
    use super::*;

    const MARKER: &[u8] = b"a-very-recognisable-secret-value";

    fn keyed(byte: u8) -> StoreOptions {
        StoreOptions {
            key: Some(DatabaseKey::new(&[byte; KEY_LEN]).unwrap()),
            ..StoreOptions::default()
        }
    }

    /// Every byte witan wrote for `path`: the file, its WAL and any copy.
    fn on_disk(path: &str) -> Vec<u8> {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-journal", ".encrypting"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                all.extend(bytes);
            }
        }
        all
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn write_marker(db: &mut Database) {
        let step = db.step().unwrap();
        step.meta_set("secret", MARKER).unwrap();
        step.commit().unwrap();
    }

    fn read_marker(db: &mut Database) -> Option<Vec<u8>> {
        db.read().unwrap().meta_get("secret").unwrap()
    }

    #[test]
    fn an_encrypted_database_shows_only_its_plain_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        let mut db = Database::open(&path, &keyed(7)).unwrap();
        write_marker(&mut db);
        let bytes = on_disk(&path);
        assert!(bytes.len() > 4096);
        assert!(!contains(&bytes, MARKER), "the value is readable on disk");
        assert!(
            !contains(&bytes, b"CREATE TABLE"),
            "the schema is readable on disk"
        );
        // iOS recognises the file as SQLite from its header.
        assert_eq!(&std::fs::read(&path).unwrap()[..16], SQLITE_MAGIC);
        drop(db);
        let mut again = Database::open(&path, &keyed(7)).unwrap();
        assert_eq!(read_marker(&mut again).as_deref(), Some(MARKER));
    }

    #[test]
    fn a_wrong_or_missing_key_is_a_key_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        write_marker(&mut Database::open(&path, &keyed(7)).unwrap());
        let before = std::fs::read(&path).unwrap();
        let wrong = Database::open(&path, &keyed(8)).unwrap_err();
        assert!(
            matches!(&wrong, StoreError::Key(r) if r.contains("wrong key")),
            "{wrong:?}"
        );
        let missing = Database::open(&path, &StoreOptions::default()).unwrap_err();
        assert!(
            matches!(&missing, StoreError::Key(r) if r.contains("encrypted")),
            "{missing:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let mut db = Database::open(&path, &keyed(7)).unwrap();
        assert_eq!(read_marker(&mut db).as_deref(), Some(MARKER));
    }

    /// Read without its key, an encrypted file's first page is random bytes behind a plain
    /// SQLite header; SQLite then reports "not a database", "unsupported file format" or —
    /// for some of those random pages — "malformed". Every one of them must come out as a
    /// key error, so the test opens many freshly encrypted files.
    #[test]
    fn an_encrypted_file_read_without_or_with_a_wrong_key_is_always_a_key_error() {
        for round in 0..64u8 {
            let dir = tempfile::tempdir().unwrap();
            let path = db_path(&dir);
            write_marker(&mut Database::open(&path, &keyed(7)).unwrap());
            let missing = Database::open(&path, &StoreOptions::default()).unwrap_err();
            assert!(
                matches!(&missing, StoreError::Key(_)),
                "round {round}: {missing:?}"
            );
            let wrong = Database::open(&path, &keyed(8)).unwrap_err();
            assert!(
                matches!(&wrong, StoreError::Key(_)),
                "round {round}: {wrong:?}"
            );
        }
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused() {
        for len in [0, 16, 31, 33, 64] {
            assert!(matches!(
                DatabaseKey::new(&vec![1; len]),
                Err(StoreError::Key(_))
            ));
        }
        assert_eq!(
            format!("{:?}", DatabaseKey::new(&[9; 32]).unwrap()),
            "DatabaseKey(..)"
        );
    }

    #[test]
    fn a_garbage_file_is_corrupt_with_or_without_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        for opts in [StoreOptions::default(), keyed(1)] {
            let err = Database::open(&path, &opts).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 8192]);
    }

    #[test]
    fn a_plain_database_opened_with_a_key_is_encrypted_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        {
            let mut plain = Database::open(&path, &StoreOptions::default()).unwrap();
            write_marker(&mut plain);
            // Leave rows in the WAL too, as a killed app would.
            let step = plain.step().unwrap();
            step.outbox_push("p1", "topic", b"packet", 0).unwrap();
            step.commit().unwrap();
        }
        assert!(contains(&on_disk(&path), MARKER));

        let mut db = Database::open(&path, &keyed(3)).unwrap();
        assert_eq!(read_marker(&mut db).as_deref(), Some(MARKER));
        assert_eq!(db.read().unwrap().outbox_len().unwrap(), 1);
        write_marker(&mut db);
        drop(db);
        assert!(
            !contains(&on_disk(&path), MARKER),
            "plain text left on disk"
        );
        assert!(!std::path::Path::new(&format!("{path}.encrypting")).exists());
        let err = Database::open(&path, &StoreOptions::default()).unwrap_err();
        assert!(matches!(err, StoreError::Key(_)), "{err:?}");
        let mut again = Database::open(&path, &keyed(3)).unwrap();
        assert_eq!(read_marker(&mut again).as_deref(), Some(MARKER));
    }

    #[test]
    fn a_copy_left_by_a_killed_migration_is_redone() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        write_marker(&mut Database::open(&path, &StoreOptions::default()).unwrap());
        // A kill before the rename leaves a partial copy beside the plain original.
        std::fs::write(format!("{path}.encrypting"), b"half a file").unwrap();
        let mut db = Database::open(&path, &keyed(4)).unwrap();
        assert_eq!(read_marker(&mut db).as_deref(), Some(MARKER));
        assert!(!std::path::Path::new(&format!("{path}.encrypting")).exists());
    }
}
