//! Large engine parts stored as content-defined chunks, so that a step that changes a large
//! part in a few places writes those places, not the whole part.
//!
//! The engine's parts grow with the group: at 1,000 members the ballots and the round hold
//! 140–160 KB each, and a step that counts one vote or sets one flag changes a few bytes of
//! them. Written as one value, such a part is a chain of overflow pages that SQLite writes
//! anew (and zeroes the old one: `secure_delete`) on every change — every page a frame in the
//! log. A part of up to [`INLINE_MAX`] bytes is still stored in its `engine_state` row; a
//! larger one is cut by FastCDC, whose cut points follow the content (an insertion moves the
//! cuts around itself only), into chunks of 1–3.5 KiB, each an `engine_chunks` row that fits
//! one page, and the `engine_state` row (`chunked = 1`) lists their ids. Saving writes the
//! chunks the stored list does not name and deletes those the new list no longer names.
//!
//! A chunk's id is the first 8 bytes of SHA-256 over the conversation, the part and the
//! chunk: one part's list names each content by one id, and the chunks of two parts never
//! share a row (deleting or rewriting one part never touches another's). Two different
//! chunks meeting on one id (about 2⁻⁶⁴ for a pair) is noticed when the row is written, and
//! that part is then stored whole.

use std::collections::BTreeSet;

use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};

use super::error::StoreError;
use super::step::Step;

/// Parts up to this size are stored whole in their row.
pub(crate) const INLINE_MAX: usize = 8 * 1024;
/// FastCDC's bounds: chunks of 1 to 3.5 KiB (2 KiB on average), so that a chunk row (with
/// its id and conversation) stays inside one 4 KiB page.
const MIN_CHUNK: usize = 1024;
const AVG_CHUNK: usize = 2048;
const MAX_CHUNK: usize = 3584;
/// Ids a stored list may name: a list read from the database is input.
const MAX_CHUNKS: usize = 1 << 16;

/// The cut of `value` into chunks.
fn split(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    fastcdc::v2020::FastCDC::new(value, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
        .filter_map(|c| value.get(c.offset..c.offset + c.length))
}

fn chunk_id(conversation: &str, part: &str, chunk: &[u8]) -> i64 {
    let mut h = Sha256::new();
    for field in [conversation.as_bytes(), part.as_bytes()] {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field);
    }
    h.update(chunk);
    let digest = h.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(id)
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

/// One stored part: its row's value, and whether that value lists chunks.
struct Row {
    value: Vec<u8>,
    chunked: bool,
}

impl Step<'_> {
    fn part_row(&self, id: &str, part: &str) -> Result<Option<Row>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT value, chunked FROM engine_state WHERE conversation_id = ?1 AND part = ?2",
        )?;
        let row = stmt
            .query_row(rusqlite::params![id, part], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?;
        row.map(|(value, chunked)| {
            let chunked = super::error::to_bool(chunked, "engine_state.chunked")?;
            Ok(Row { value, chunked })
        })
        .transpose()
    }

    /// The chunk ids the stored part `part` of `id` lists (none for a part stored whole).
    fn stored_chunks(&self, id: &str, part: &str) -> Result<Vec<i64>, StoreError> {
        match self.part_row(id, part)? {
            Some(Row {
                value,
                chunked: true,
            }) => decode_list(&value),
            _ => Ok(Vec::new()),
        }
    }

    /// Writes the chunks of `list` that `stored` does not name; `false` (and nothing
    /// written) when a chunk's id is taken by other bytes.
    fn write_chunks(
        &self,
        id: &str,
        list: &[(i64, &[u8])],
        stored: &BTreeSet<i64>,
    ) -> Result<bool, StoreError> {
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO engine_chunks (id, conversation_id, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO NOTHING",
        )?;
        let mut written = BTreeSet::new();
        for (chunk_id, chunk) in list {
            if stored.contains(chunk_id) || written.contains(chunk_id) {
                continue;
            }
            if insert.execute(rusqlite::params![chunk_id, id, chunk])? == 0 {
                self.delete_chunks(written.iter().copied())?;
                return Ok(false);
            }
            written.insert(*chunk_id);
        }
        Ok(true)
    }

    fn delete_chunks(&self, ids: impl IntoIterator<Item = i64>) -> Result<(), StoreError> {
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM engine_chunks WHERE id = ?1")?;
        for chunk_id in ids {
            delete.execute([chunk_id])?;
        }
        Ok(())
    }

    /// Saves (or replaces) part `part` of conversation `id`: whole up to [`INLINE_MAX`]
    /// bytes, in chunks above (see the module doc). Chunks no longer listed are deleted
    /// before new ones are written, so that these reuse the pages freed.
    pub(crate) fn save_part(&self, id: &str, part: &str, value: &[u8]) -> Result<(), StoreError> {
        let stored: BTreeSet<i64> = self.stored_chunks(id, part)?.into_iter().collect();
        let list: Vec<(i64, &[u8])> = if value.len() > INLINE_MAX {
            split(value).map(|c| (chunk_id(id, part, c), c)).collect()
        } else {
            Vec::new()
        };
        let listed: BTreeSet<i64> = list.iter().map(|(chunk_id, _)| *chunk_id).collect();
        self.delete_chunks(stored.difference(&listed).copied())?;
        let chunked = !list.is_empty() && self.write_chunks(id, &list, &stored)?;
        if !chunked {
            self.delete_chunks(stored.intersection(&listed).copied())?;
        }
        let row = if chunked {
            list.iter()
                .flat_map(|(chunk_id, _)| chunk_id.to_le_bytes())
                .collect()
        } else {
            value.to_vec()
        };
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO engine_state (conversation_id, part, value, chunked)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (conversation_id, part)
             DO UPDATE SET value = excluded.value, chunked = excluded.chunked",
        )?;
        stmt.execute(rusqlite::params![id, part, row, chunked])?;
        Ok(())
    }

    /// The value of a stored part: its row's, or its chunks' joined.
    fn part_value(&self, value: Vec<u8>, chunked: bool) -> Result<Vec<u8>, StoreError> {
        if !chunked {
            return Ok(value);
        }
        let mut get = self
            .tx
            .prepare_cached("SELECT value FROM engine_chunks WHERE id = ?1")?;
        let mut out = Vec::new();
        for chunk_id in decode_list(&value)? {
            let chunk: Option<Vec<u8>> = get.query_row([chunk_id], |r| r.get(0)).optional()?;
            match chunk {
                Some(chunk) => out.extend_from_slice(&chunk),
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "engine part chunk {chunk_id:#x} is missing"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Every stored part of conversation `id`, by part name, chunked ones joined.
    pub(crate) fn load_parts(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT part, value, chunked FROM engine_state WHERE conversation_id = ?1
             ORDER BY part",
        )?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(part, value, chunked)| {
                let chunked = super::error::to_bool(chunked, "engine_state.chunked")?;
                Ok((part, self.part_value(value, chunked)?))
            })
            .collect()
    }

    /// Deletes part `part` of conversation `id` with its chunks.
    pub(crate) fn delete_part(&self, id: &str, part: &str) -> Result<(), StoreError> {
        self.delete_chunks(self.stored_chunks(id, part)?)?;
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM engine_state WHERE conversation_id = ?1 AND part = ?2")?;
        stmt.execute(rusqlite::params![id, part])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
