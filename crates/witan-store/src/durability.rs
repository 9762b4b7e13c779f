//! Syncing the write-ahead log on demand: the one place the store calls SQLite's C API
//! directly.
//!
//! Steps that only receive commit with `synchronous = NORMAL`, which survives an app kill
//! but not a power cut. When such a step turns out to have queued packets to publish, the
//! log must reach the disk before they leave the device, and SQLite offers no statement for
//! that outside a commit. The connection's own handle on the log file does:
//! `SQLITE_FCNTL_JOURNAL_POINTER` yields it, and its `xSync` is the same call a FULL commit
//! makes on it.
//!
//! On Apple platforms `fsync(2)` hands the data to the drive but does not make the drive
//! write its cache out; only `fcntl(F_FULLFSYNC)` does, and SQLite uses it when
//! `PRAGMA fullfsync` (commits) and `PRAGMA checkpoint_fullfsync` (checkpoints) are on.
//! [`flush_drive_caches`] turns both on there, and [`sync_journal`] asks the VFS for the same
//! full sync, so that "synced" means on the medium on iOS too.

use rusqlite::Connection;
use rusqlite::ffi;

use super::error::StoreError;

/// The sync a commit makes on this platform: a full sync (`F_FULLFSYNC`) on Apple platforms,
/// where a plain `fsync` leaves the data in the drive's cache (see the module doc).
const JOURNAL_SYNC: std::ffi::c_int = if cfg!(target_vendor = "apple") {
    ffi::SQLITE_SYNC_FULL
} else {
    ffi::SQLITE_SYNC_NORMAL
};

/// Makes commits and checkpoints flush the drive's cache on Apple platforms (see the module
/// doc); elsewhere SQLite's default `fsync` already does. A no-op off Apple platforms.
pub(super) fn flush_drive_caches(conn: &Connection) -> Result<(), StoreError> {
    if cfg!(target_vendor = "apple") {
        conn.pragma_update(None, "fullfsync", true)?;
        conn.pragma_update(None, "checkpoint_fullfsync", true)?;
    }
    Ok(())
}

/// Syncs the journal (in WAL mode, the write-ahead log) of `conn`'s main database. A
/// database without a journal file open (in memory, or nothing written yet) has nothing to
/// sync.
pub(super) fn sync_journal(conn: &Connection) -> Result<(), StoreError> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn` is a live connection and, being borrowed, is not used concurrently
    // (rusqlite connections are not `Sync`). For JOURNAL_POINTER, SQLite writes one
    // `sqlite3_file*` through the argument, which points at `file`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_JOURNAL_POINTER,
            (&raw mut file).cast(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(failure(rc, "cannot reach the database log"));
    }
    if file.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null pointer from JOURNAL_POINTER is the pager's journal file object,
    // owned by the connection we hold; an unopened file has null `pMethods`.
    let x_sync = unsafe { (*file).pMethods.as_ref() }.and_then(|methods| methods.xSync);
    let Some(x_sync) = x_sync else {
        return Ok(());
    };
    // SAFETY: `file` is open (its methods are set) and only this connection uses it; the
    // flag is the one SQLite passes for a WAL commit with this platform's `fullfsync`.
    let rc = unsafe { x_sync(file, JOURNAL_SYNC) };
    if rc != ffi::SQLITE_OK {
        return Err(failure(rc, "cannot sync the database log"));
    }
    Ok(())
}

fn failure(rc: i32, what: &str) -> StoreError {
    StoreError::from(rusqlite::Error::SqliteFailure(
        ffi::Error::new(rc),
        Some(what.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{file_db, memory_db};

    #[test]
    fn the_log_syncs_before_and_after_relaxed_commits_and_a_memory_database_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = file_db(&dir);
        // Nothing written yet: the log may not be open; syncing is still fine.
        db.sync_log().unwrap();
        let step = db.relaxed_step().unwrap();
        step.meta_set("k", b"v").unwrap();
        step.commit().unwrap();
        db.sync_log().unwrap();
        assert_eq!(
            db.read().unwrap().meta_get("k").unwrap(),
            Some(b"v".to_vec())
        );
        memory_db().sync_log().unwrap();
    }
}
