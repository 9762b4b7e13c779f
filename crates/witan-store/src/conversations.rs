//! The `conversations` table (one row per conversation: its id and its next absolute
//! deadline, indexed so that waking up finds due work without loading every conversation)
//! and `engine_state`, the engine's state of each conversation as named parts: the engine
//! may split its state so that a step rewrites only the parts it changed. The store keeps
//! the parts as opaque bytes.

use rusqlite::OptionalExtension;

use super::error::{StoreError, from_u64, to_u64};
use super::step::Step;

impl Step<'_> {
    /// Whether conversation `id` is stored.
    pub fn has_conversation(&self, id: &str) -> Result<bool, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?;
        Ok(stmt.query_row([id], |_| Ok(())).optional()?.is_some())
    }

    /// Stores conversation `id` (if new) with its next deadline (`None`: nothing scheduled).
    pub fn save_conversation(
        &self,
        id: &str,
        next_deadline_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO conversations (id, next_deadline_ms) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET next_deadline_ms = excluded.next_deadline_ms",
        )?;
        stmt.execute(rusqlite::params![id, next_deadline_ms.map(from_u64)])?;
        Ok(())
    }

    /// Every stored part of conversation `id`'s engine state, by part name.
    pub fn engine_parts(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT part, value FROM engine_state WHERE conversation_id = ?1 ORDER BY part",
        )?;
        let parts = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<(String, Vec<u8>)>, _>>()?;
        Ok(parts)
    }

    /// Saves (or replaces) one part of conversation `id`'s engine state; the conversation
    /// must be stored ([`Step::save_conversation`]).
    pub fn save_engine_part(&self, id: &str, part: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO engine_state (conversation_id, part, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (conversation_id, part) DO UPDATE SET value = excluded.value",
        )?;
        stmt.execute(rusqlite::params![id, part, value])?;
        Ok(())
    }

    /// Deletes one part of conversation `id`'s engine state (a no-op if there is none).
    pub fn delete_engine_part(&self, id: &str, part: &str) -> Result<(), StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM engine_state WHERE conversation_id = ?1 AND part = ?2")?;
        stmt.execute(rusqlite::params![id, part])?;
        Ok(())
    }

    /// Every stored conversation id, sorted.
    pub fn conversation_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT id FROM conversations ORDER BY id")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    /// Conversations whose deadline is at or before `now_ms`, earliest
    /// deadline first (ties by id), with their deadlines.
    pub fn due_conversations(&self, now_ms: u64) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, next_deadline_ms FROM conversations
             WHERE next_deadline_ms IS NOT NULL AND next_deadline_ms <= ?1
             ORDER BY next_deadline_ms, id",
        )?;
        let mut rows = stmt.query([from_u64(now_ms)])?;
        let mut due = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let deadline = to_u64(row.get(1)?, "conversations.next_deadline_ms")?;
            due.push((id, deadline));
        }
        Ok(due)
    }

    /// The earliest deadline over all conversations (from the index).
    pub fn next_deadline(&self) -> Result<Option<u64>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT next_deadline_ms FROM conversations
             WHERE next_deadline_ms IS NOT NULL
             ORDER BY next_deadline_ms LIMIT 1",
        )?;
        let deadline: Option<i64> = stmt.query_row([], |r| r.get(0)).optional()?;
        deadline
            .map(|d| to_u64(d, "conversations.next_deadline_ms"))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{memory_db, query_plan};
    use crate::StoreError;

    #[test]
    fn engine_parts_are_saved_replaced_listed_and_deleted() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        assert!(!step.has_conversation("a").unwrap());
        assert!(step.engine_parts("a").unwrap().is_empty());
        // A part needs its conversation.
        assert!(step.save_engine_part("a", "p", b"x").is_err());
        step.save_conversation("a", None).unwrap();
        step.save_engine_part("a", "roster", b"r1").unwrap();
        step.save_engine_part("a", "ballots", b"b1").unwrap();
        step.save_engine_part("a", "roster", b"r2").unwrap();
        step.save_conversation("b", Some(5)).unwrap();
        step.save_engine_part("b", "roster", b"other").unwrap();
        let part = |name: &str, value: &[u8]| (name.to_string(), value.to_vec());
        assert_eq!(
            step.engine_parts("a").unwrap(),
            [part("ballots", b"b1"), part("roster", b"r2")]
        );
        step.delete_engine_part("a", "ballots").unwrap();
        step.delete_engine_part("a", "missing").unwrap();
        assert_eq!(step.engine_parts("a").unwrap(), [part("roster", b"r2")]);
        assert!(step.has_conversation("a").unwrap());
        assert_eq!(step.conversation_ids().unwrap(), ["a", "b"]);
    }

    #[test]
    fn due_conversations_are_ordered_by_deadline() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        assert_eq!(step.next_deadline().unwrap(), None);
        step.save_conversation("late", Some(300)).unwrap();
        step.save_conversation("none", None).unwrap();
        step.save_conversation("b-early", Some(100)).unwrap();
        step.save_conversation("a-early", Some(100)).unwrap();
        step.save_conversation("mid", Some(200)).unwrap();
        assert_eq!(step.next_deadline().unwrap(), Some(100));
        assert_eq!(step.due_conversations(99).unwrap(), vec![]);
        assert_eq!(
            step.due_conversations(200).unwrap(),
            vec![
                ("a-early".to_string(), 100),
                ("b-early".to_string(), 100),
                ("mid".to_string(), 200),
            ]
        );
        // Clearing deadlines moves next_deadline on.
        step.save_conversation("a-early", None).unwrap();
        step.save_conversation("b-early", Some(400)).unwrap();
        assert_eq!(step.next_deadline().unwrap(), Some(200));
        assert_eq!(
            step.conversation_ids().unwrap(),
            vec!["a-early", "b-early", "late", "mid", "none"]
        );
    }

    #[test]
    fn deadline_queries_use_the_index() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let plan = query_plan(
            &step,
            "SELECT next_deadline_ms FROM conversations WHERE next_deadline_ms IS NOT NULL \
             ORDER BY next_deadline_ms LIMIT 1",
        );
        assert!(plan.contains("conversations_by_deadline"), "{plan}");
        let plan = query_plan(
            &step,
            "SELECT id, next_deadline_ms FROM conversations WHERE next_deadline_ms IS NOT NULL \
             AND next_deadline_ms <= 5 ORDER BY next_deadline_ms, id",
        );
        assert!(plan.contains("conversations_by_deadline"), "{plan}");
    }

    #[test]
    fn negative_deadline_is_corrupt() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        step.tx
            .execute(
                "INSERT INTO conversations (id, next_deadline_ms) VALUES ('x', -5)",
                [],
            )
            .unwrap();
        assert!(matches!(step.next_deadline(), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            step.due_conversations(10),
            Err(StoreError::Corrupt(_))
        ));
    }
}
