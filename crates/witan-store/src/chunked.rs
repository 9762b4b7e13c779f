//! Large values stored as content-defined chunks, so that a step that changes a large value
//! in a few places writes those places, not the whole value: the engine's parts
//! (`chunked/parts.rs`) and the OpenMLS rows that grow with the group (`chunked/mls_rows.rs`).
//!
//! At 1,000 members the engine's ballots and round hold 140–160 KB each and OpenMLS's tree
//! row 400 KB, and a step that counts one vote, sets one flag or blanks one leaf changes a few
//! bytes of them. Written as one value, such a row is a chain of overflow pages that SQLite
//! writes anew (and zeroes the old one: `secure_delete`) whenever its length changes — every
//! page a frame in the log. A value of up to [`INLINE_MAX`] bytes is still stored in its row;
//! a larger one is cut by FastCDC, whose cut points follow the content (an insertion moves
//! the cuts around itself only), into chunks of 1–3.5 KiB, each a row of a chunk table that
//! fits one page, and the value's row (`chunked = 1`) lists their ids. Saving deletes the
//! chunks the new list no longer names, then writes those the stored list did not name (they
//! reuse the pages just freed).
//!
//! A chunk's id is the first 8 bytes of SHA-256 over its owner (conversation and part, or
//! OpenMLS key) and its bytes: one value's list names each content by one id, and the chunks
//! of two values never share a row (rewriting or deleting one never touches another's). Two
//! different chunks meeting on one id (about 2⁻⁶⁴ for a pair) is noticed when the row is
//! written, and that value is then stored whole.

mod mls_rows;
mod parts;

use std::collections::BTreeSet;

use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};

use super::error::StoreError;
use super::step::Step;

/// Values up to this size are stored whole in their row.
pub(crate) const INLINE_MAX: usize = 8 * 1024;
/// FastCDC's bounds: chunks of 1 to 3.5 KiB (2 KiB on average), so that a chunk row (with
/// its id and conversation) stays inside one 4 KiB page.
const MIN_CHUNK: usize = 1024;
const AVG_CHUNK: usize = 2048;
const MAX_CHUNK: usize = 3584;
/// Ids a stored list may name: a list read from the database is input.
const MAX_CHUNKS: usize = 1 << 16;

/// Whose chunks: an engine part's (in `engine_chunks`, which go with their conversation) or
/// an OpenMLS row's (in `mls_chunks`).
#[derive(Clone, Copy)]
enum Owner<'a> {
    Part {
        conversation: &'a str,
        part: &'a str,
    },
    MlsRow(&'a [u8]),
}

impl Owner<'_> {
    fn chunk_id(&self, chunk: &[u8]) -> i64 {
        let mut h = Sha256::new();
        let fields: [&[u8]; 2] = match self {
            Owner::Part { conversation, part } => [conversation.as_bytes(), part.as_bytes()],
            Owner::MlsRow(key) => [b"mls", key],
        };
        for field in fields {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field);
        }
        h.update(chunk);
        let digest = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        i64::from_le_bytes(id)
    }

    /// The cut of `value` with each chunk's id; empty for a value stored whole.
    fn list<'v>(&self, value: &'v [u8]) -> Vec<(i64, &'v [u8])> {
        if value.len() <= INLINE_MAX {
            return Vec::new();
        }
        split(value).map(|c| (self.chunk_id(c), c)).collect()
    }

    fn table(&self) -> &'static str {
        match self {
            Owner::Part { .. } => "engine_chunks",
            Owner::MlsRow(_) => "mls_chunks",
        }
    }
}

/// The cut of `value` into chunks.
fn split(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    fastcdc::v2020::FastCDC::new(value, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
        .filter_map(|c| value.get(c.offset..c.offset + c.length))
}

fn decode_list(bytes: &[u8]) -> Result<Vec<i64>, StoreError> {
    if !bytes.len().is_multiple_of(8) || bytes.len() / 8 > MAX_CHUNKS {
        return Err(StoreError::Corrupt(format!(
            "a chunk list of {} bytes",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|b| {
            let mut id = [0u8; 8];
            id.copy_from_slice(b);
            i64::from_le_bytes(id)
        })
        .collect())
}

/// A value's row as stored: the value, or the list of its chunks.
struct Row {
    value: Vec<u8>,
    chunked: bool,
}

impl Row {
    fn read(value: Vec<u8>, chunked: i64, what: &str) -> Result<Row, StoreError> {
        let chunked = super::error::to_bool(chunked, what)?;
        Ok(Row { value, chunked })
    }

    /// The chunk ids this row lists (none for a value stored whole).
    fn chunks(&self) -> Result<BTreeSet<i64>, StoreError> {
        match self.chunked {
            true => Ok(decode_list(&self.value)?.into_iter().collect()),
            false => Ok(BTreeSet::new()),
        }
    }
}

/// What a value's row holds after [`Step::store_chunks`]: its chunk list (`chunked`) or the
/// value itself.
struct Stored {
    value: Vec<u8>,
    chunked: bool,
}

impl Step<'_> {
    /// Makes the chunk table hold what `value`'s row will need, given the chunks the old row
    /// listed (`stored`), and returns what the row is to hold (see the module doc).
    fn store_chunks(
        &self,
        owner: Owner<'_>,
        value: &[u8],
        stored: &BTreeSet<i64>,
    ) -> Result<Stored, StoreError> {
        let list = owner.list(value);
        let listed: BTreeSet<i64> = list.iter().map(|(id, _)| *id).collect();
        self.delete_chunks(owner, stored.difference(&listed).copied())?;
        let chunked = !list.is_empty() && self.write_chunks(owner, &list, stored)?;
        if !chunked {
            self.delete_chunks(owner, stored.intersection(&listed).copied())?;
            return Ok(Stored {
                value: value.to_vec(),
                chunked: false,
            });
        }
        Ok(Stored {
            value: list.iter().flat_map(|(id, _)| id.to_le_bytes()).collect(),
            chunked: true,
        })
    }

    /// Writes the chunks of `list` that `stored` does not name; `false` (and nothing
    /// written) when a chunk's id is taken by other bytes.
    fn write_chunks(
        &self,
        owner: Owner<'_>,
        list: &[(i64, &[u8])],
        stored: &BTreeSet<i64>,
    ) -> Result<bool, StoreError> {
        let mut written = BTreeSet::new();
        for (id, chunk) in list {
            if stored.contains(id) || written.contains(id) {
                continue;
            }
            let inserted = match owner {
                Owner::Part { conversation, .. } => self
                    .tx
                    .prepare_cached(
                        "INSERT INTO engine_chunks (id, conversation_id, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (id) DO NOTHING",
                    )?
                    .execute(rusqlite::params![id, conversation, chunk])?,
                Owner::MlsRow(_) => self
                    .tx
                    .prepare_cached(
                        "INSERT INTO mls_chunks (id, value) VALUES (?1, ?2)
                         ON CONFLICT (id) DO NOTHING",
                    )?
                    .execute(rusqlite::params![id, chunk])?,
            };
            if inserted == 0 {
                self.delete_chunks(owner, written.iter().copied())?;
                return Ok(false);
            }
            written.insert(*id);
        }
        Ok(true)
    }

    fn delete_chunks(
        &self,
        owner: Owner<'_>,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = ?1", owner.table());
        let mut delete = self.tx.prepare_cached(&sql)?;
        for id in ids {
            delete.execute([id])?;
        }
        Ok(())
    }

    /// The value a stored row stands for: its own, or its chunks joined.
    fn join_chunks(&self, owner: Owner<'_>, row: Row) -> Result<Vec<u8>, StoreError> {
        if !row.chunked {
            return Ok(row.value);
        }
        let sql = format!("SELECT value FROM {} WHERE id = ?1", owner.table());
        let mut get = self.tx.prepare_cached(&sql)?;
        let mut out = Vec::new();
        for id in decode_list(&row.value)? {
            let chunk: Option<Vec<u8>> = get.query_row([id], |r| r.get(0)).optional()?;
            match chunk {
                Some(chunk) => out.extend_from_slice(&chunk),
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "chunk {id:#x} of a stored value is missing"
                    )));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
