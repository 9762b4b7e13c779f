//! `StoreError`: the typed error of the store layer, and the conversions that
//! turn rusqlite errors and out-of-range column values into it.
//!
//! Every value read from the database goes through a checked conversion: a row
//! that does not fit the schema (a negative sequence number, a TEXT where a
//! BLOB belongs, bad UTF-8, ...) becomes [`StoreError::Corrupt`], never a panic.

use rusqlite::ffi::ErrorCode;

/// Errors returned by the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Any other SQLite failure (I/O, full disk, constraint violation, ...).
    #[error("sqlite error: {0}")]
    Sqlite(rusqlite::Error),
    /// Another connection (perhaps another process: the app or its
    /// notification extension) held the write lock for longer than the
    /// configured busy timeout. The step had no effect; retry later.
    #[error("database is busy: another connection held the lock past the busy timeout")]
    Busy,
    /// The file is not a database, is damaged, or a row does not match the
    /// schema.
    #[error("database is corrupt: {0}")]
    Corrupt(String),
    /// The database key does not fit the file: a key is missing for an encrypted database, or
    /// the key is wrong. Nothing was read or changed.
    #[error("database key: {0}")]
    Key(String),
    /// A file operation outside SQLite failed (while encrypting a plain database in place).
    #[error("file: {0}")]
    Io(String),
    /// The schema could not be brought to the current version (for example
    /// the file was written by a newer witan).
    #[error("schema migration failed: {0}")]
    Migration(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy,
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                    StoreError::Corrupt(e.to_string())
                }
                _ => StoreError::Sqlite(e),
            },
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Converts a stored INTEGER into a `u64`, or reports the row as corrupt.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {value}")))
}

/// Converts a stored INTEGER into a `u32`, or reports the row as corrupt.
pub(crate) fn to_u32(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {value}")))
}

/// Converts a stored 0/1 INTEGER into a `bool`, or reports the row as corrupt.
pub(crate) fn to_bool(value: i64, what: &str) -> Result<bool, StoreError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(StoreError::Corrupt(format!(
            "{what} is not 0 or 1: {other}"
        ))),
    }
}

/// Converts a `u64` (a time in ms, an epoch) into SQLite's signed INTEGER.
///
/// Values above `i64::MAX` (about 292 million years of milliseconds) cannot
/// occur for real times or epochs; they saturate rather than wrap so that a
/// far-future deadline stays far in the future.
pub(crate) fn from_u64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_corrupt_codes_are_mapped() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(StoreError::from(busy), StoreError::Busy));
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            None,
        );
        assert!(matches!(StoreError::from(corrupt), StoreError::Corrupt(_)));
        let other = rusqlite::Error::QueryReturnedNoRows;
        assert!(matches!(StoreError::from(other), StoreError::Sqlite(_)));
    }

    #[test]
    fn checked_conversions() {
        assert_eq!(to_u64(7, "x").unwrap(), 7);
        assert!(matches!(to_u64(-1, "x"), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            to_u32(i64::from(u32::MAX) + 1, "x"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(to_bool(1, "own").unwrap());
        assert!(matches!(to_bool(2, "own"), Err(StoreError::Corrupt(_))));
        assert_eq!(from_u64(u64::MAX), i64::MAX);
        assert_eq!(from_u64(5), 5);
    }
}
