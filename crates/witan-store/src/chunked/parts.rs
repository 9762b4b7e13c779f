//! The engine's parts in `engine_state`, large ones in chunks (see `chunked.rs`).

use rusqlite::OptionalExtension;

use super::{Owner, Row};
use crate::error::StoreError;
use crate::step::Step;

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
        row.map(|(value, chunked)| Row::read(value, chunked, "engine_state.chunked"))
            .transpose()
    }

    /// The chunk ids the stored part `part` of `id` lists (none for a part stored whole).
    #[cfg(test)]
    pub(crate) fn stored_chunks(&self, id: &str, part: &str) -> Result<Vec<i64>, StoreError> {
        Ok(match self.part_row(id, part)? {
            Some(row) => row.chunks()?.into_iter().collect(),
            None => Vec::new(),
        })
    }

    /// Saves (or replaces) part `part` of conversation `id`: whole up to
    /// [`super::INLINE_MAX`] bytes, in chunks above.
    pub(crate) fn save_part(&self, id: &str, part: &str, value: &[u8]) -> Result<(), StoreError> {
        let stored = match self.part_row(id, part)? {
            Some(row) => row.chunks()?,
            None => Default::default(),
        };
        let owner = Owner::Part {
            conversation: id,
            part,
        };
        let row = self.store_chunks(owner, value, &stored)?;
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO engine_state (conversation_id, part, value, chunked)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (conversation_id, part)
             DO UPDATE SET value = excluded.value, chunked = excluded.chunked",
        )?;
        stmt.execute(rusqlite::params![id, part, row.value, row.chunked])?;
        Ok(())
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
                let row = Row::read(value, chunked, "engine_state.chunked")?;
                let owner = Owner::Part {
                    conversation: id,
                    part: &part,
                };
                let value = self.join_chunks(owner, row)?;
                Ok((part, value))
            })
            .collect()
    }

    /// Deletes part `part` of conversation `id` with its chunks.
    pub(crate) fn delete_part(&self, id: &str, part: &str) -> Result<(), StoreError> {
        if let Some(row) = self.part_row(id, part)? {
            let owner = Owner::Part {
                conversation: id,
                part,
            };
            self.delete_chunks(owner, row.chunks()?)?;
        }
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM engine_state WHERE conversation_id = ?1 AND part = ?2")?;
        stmt.execute(rusqlite::params![id, part])?;
        Ok(())
    }
}
