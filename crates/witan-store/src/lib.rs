//! The store layer: one SQLite database per client (rusqlite, bundled SQLite).
//!
//! It owns the schema and its forward migrations, the OpenMLS key-value rows,
//! each conversation's engine state (in named parts) and next deadline, inbound
//! de-duplication and future-epoch buffering, the outbox, and the message
//! history. Every protocol step runs in one [`Step`] (`BEGIN IMMEDIATE`), so
//! MLS state, protocol state, outbox and history move together or not at all;
//! a kill at any instant loses nothing and forks nothing.
//!
//! Files: `db.rs` (open, pragmas, transactions), `cipher.rs` (encryption at
//! rest: keys, wrong-key detection, encrypting a plain file), `schema.rs` (migrations),
//! `legacy.rs` (the one-time migration of rows written as JSON), `spool.rs` (packets an
//! extension kept aside for the app),
//! `step.rs` (the step: identity, meta, OpenMLS rows), `tx.rs` (the transaction under a
//! step, begun and ended by prepared statements), and one file per
//! table group: `conversations.rs`, `engine_votes.rs`, `inbound.rs`, `outbox.rs`,
//! `history.rs`.

mod cipher;
mod conversations;
mod db;
mod durability;
mod engine_votes;
mod error;
mod history;
mod inbound;
mod legacy;
mod outbox;
mod schema;
mod spool;
mod step;
mod tx;

pub use cipher::{DatabaseKey, KEY_LEN};
pub use db::{Database, StoreOptions};
pub use error::StoreError;
pub use history::{HistoryPart, MessageRow, NewMessage};
pub use inbound::{BufferBounds, Buffered, SEEN_PACKETS_KEPT};
pub use outbox::OutboxRow;
pub use spool::{MAX_SPOOLED, Spool, SpooledPacket};
pub use step::Step;

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the store's unit tests.

    use super::{Database, Step, StoreOptions};

    pub fn memory_db() -> Database {
        Database::open(":memory:", &StoreOptions::default()).unwrap()
    }

    pub fn db_path(dir: &tempfile::TempDir) -> String {
        dir.path().join("witan.db").to_str().unwrap().to_string()
    }

    pub fn file_db(dir: &tempfile::TempDir) -> Database {
        Database::open(&db_path(dir), &StoreOptions::default()).unwrap()
    }

    /// The `EXPLAIN QUERY PLAN` details of `sql`, joined by newlines.
    pub fn query_plan(step: &Step<'_>, sql: &str) -> String {
        let mut stmt = step
            .tx
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join("\n")
    }
}
