//! Opening the crate's own SQLite files (a member's cursors, a node's archive): WAL, no fsync
//! per commit (a lost write only repeats work: a cursor moves back, an archived message is
//! relayed again), and a busy timeout.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::NetError;

/// Opens `path`, or an in-memory database for `None`.
pub fn open(path: Option<&Path>) -> Result<Connection, NetError> {
    let conn = match path {
        Some(p) => Connection::open(p)?,
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(Duration::from_secs(5))?;
    if path.is_some() {
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
    }
    Ok(conn)
}
