//! The `conversations` table: each conversation's serialized engine state and
//! its next absolute deadline, indexed so that waking up finds due work
//! without loading every conversation.

use rusqlite::OptionalExtension;

use super::error::{StoreError, from_u64, to_u64};
use super::step::Step;

impl Step<'_> {
    /// The serialized engine state of one conversation.
    pub fn load_conversation(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT state FROM conversations WHERE id = ?1")?;
        Ok(stmt.query_row([id], |r| r.get(0)).optional()?)
    }

    /// Saves (or replaces) a conversation's state and its next deadline
    /// (`None`: nothing scheduled).
    pub fn save_conversation(
        &self,
        id: &str,
        state: &[u8],
        next_deadline_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO conversations (id, state, next_deadline_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET
                 state = excluded.state, next_deadline_ms = excluded.next_deadline_ms",
        )?;
        stmt.execute(rusqlite::params![id, state, next_deadline_ms.map(from_u64)])?;
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
    fn save_load_and_replace() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        assert_eq!(step.load_conversation("a").unwrap(), None);
        step.save_conversation("a", b"s1", None).unwrap();
        step.save_conversation("a", b"s2", Some(5)).unwrap();
        assert_eq!(step.load_conversation("a").unwrap(), Some(b"s2".to_vec()));
        assert_eq!(step.conversation_ids().unwrap(), vec!["a".to_string()]);
    }

    #[test]
    fn due_conversations_are_ordered_by_deadline() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        assert_eq!(step.next_deadline().unwrap(), None);
        step.save_conversation("late", b"", Some(300)).unwrap();
        step.save_conversation("none", b"", None).unwrap();
        step.save_conversation("b-early", b"", Some(100)).unwrap();
        step.save_conversation("a-early", b"", Some(100)).unwrap();
        step.save_conversation("mid", b"", Some(200)).unwrap();
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
        step.save_conversation("a-early", b"", None).unwrap();
        step.save_conversation("b-early", b"", Some(400)).unwrap();
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
                "INSERT INTO conversations (id, state, next_deadline_ms) VALUES ('x', x'', -5)",
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
