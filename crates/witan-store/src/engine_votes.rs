//! `engine_votes`: the ballots' votes of each conversation's engine state as rows of their
//! own (schema version 8), numbered per proposal in the order they came. The engine says
//! which rows a step changed (`protocol::VoteChanges`); the store keeps each vote as opaque
//! bytes under its proposal's digest and row number.

use witan_engine::protocol::StoredVote;

use super::error::{StoreError, from_u64, to_u64};
use super::step::Step;

impl Step<'_> {
    /// Every stored vote of conversation `id`, by proposal and row.
    pub fn engine_votes(&self, id: &str) -> Result<Vec<StoredVote>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT ballot, seq, vote FROM engine_votes WHERE conversation_id = ?1
             ORDER BY ballot, seq",
        )?;
        let mut rows = stmt.query([id])?;
        let mut votes = Vec::new();
        while let Some(r) = rows.next()? {
            let ballot: Vec<u8> = r.get(0)?;
            let ballot = ballot
                .try_into()
                .map_err(|_| StoreError::Corrupt("engine_votes.ballot is not 32 bytes".into()))?;
            let row = u32::try_from(to_u64(r.get(1)?, "engine_votes.seq")?)
                .map_err(|_| StoreError::Corrupt("engine_votes.seq is out of range".into()))?;
            votes.push(StoredVote {
                ballot,
                row,
                vote: r.get(2)?,
            });
        }
        Ok(votes)
    }

    /// Saves (or replaces) one vote of conversation `id`; the conversation must be stored.
    pub fn save_engine_vote(&self, id: &str, vote: &StoredVote) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO engine_votes (conversation_id, ballot, seq, vote) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (conversation_id, ballot, seq) DO UPDATE SET vote = excluded.vote",
        )?;
        let row = from_u64(u64::from(vote.row));
        stmt.execute(rusqlite::params![id, vote.ballot, row, vote.vote])?;
        Ok(())
    }

    /// Deletes one vote row of conversation `id` (a no-op if there is none).
    pub fn delete_engine_vote(
        &self,
        id: &str,
        ballot: &[u8; 32],
        row: u32,
    ) -> Result<(), StoreError> {
        let row = from_u64(u64::from(row));
        self.delete_votes(
            "DELETE FROM engine_votes WHERE conversation_id = ?1 AND ballot = ?2 AND seq = ?3",
            rusqlite::params![id, ballot, row],
        )
    }

    /// Deletes every vote of conversation `id`.
    pub fn delete_engine_votes(&self, id: &str) -> Result<(), StoreError> {
        self.delete_votes(
            "DELETE FROM engine_votes WHERE conversation_id = ?1",
            rusqlite::params![id],
        )
    }

    /// Deletes every vote of one proposal of conversation `id`.
    pub fn delete_engine_ballot(&self, id: &str, ballot: &[u8; 32]) -> Result<(), StoreError> {
        self.delete_votes(
            "DELETE FROM engine_votes WHERE conversation_id = ?1 AND ballot = ?2",
            rusqlite::params![id, ballot],
        )
    }

    fn delete_votes(&self, sql: &str, params: impl rusqlite::Params) -> Result<(), StoreError> {
        self.tx.prepare_cached(sql)?.execute(params)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::memory_db;
    use super::*;

    fn vote(ballot: u8, row: u32, value: &[u8]) -> StoredVote {
        StoredVote {
            ballot: [ballot; 32],
            row,
            vote: value.to_vec(),
        }
    }

    #[test]
    fn votes_are_saved_replaced_listed_in_order_deleted_and_go_with_their_conversation() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        // A vote needs its conversation.
        assert!(step.save_engine_vote("a", &vote(1, 0, b"x")).is_err());
        step.save_conversation("a", None).unwrap();
        step.save_conversation("b", None).unwrap();
        for v in [
            vote(2, 0, b"p"),
            vote(1, 3, b"y"),
            vote(1, 1, b"x"),
            vote(1, 2, b"z"),
        ] {
            step.save_engine_vote("a", &v).unwrap();
        }
        step.save_engine_vote("a", &vote(1, 3, b"y2")).unwrap();
        step.save_engine_vote("b", &vote(1, 0, b"other")).unwrap();
        assert_eq!(
            step.engine_votes("a").unwrap(),
            [
                vote(1, 1, b"x"),
                vote(1, 2, b"z"),
                vote(1, 3, b"y2"),
                vote(2, 0, b"p")
            ]
        );
        step.delete_engine_vote("a", &[1; 32], 2).unwrap();
        step.delete_engine_vote("a", &[1; 32], 9).unwrap();
        step.delete_engine_ballot("a", &[2; 32]).unwrap();
        assert_eq!(
            step.engine_votes("a").unwrap(),
            [vote(1, 1, b"x"), vote(1, 3, b"y2")]
        );
        step.save_conversation("c", None).unwrap();
        step.save_engine_vote("c", &vote(1, 0, b"c")).unwrap();
        step.delete_engine_votes("c").unwrap();
        assert!(step.engine_votes("c").unwrap().is_empty());
        step.tx
            .execute("DELETE FROM conversations WHERE id = 'a'", [])
            .unwrap();
        assert!(step.engine_votes("a").unwrap().is_empty());
        assert_eq!(step.engine_votes("b").unwrap(), [vote(1, 0, b"other")]);
    }

    #[test]
    fn a_damaged_vote_row_is_corrupt() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        step.save_conversation("a", None).unwrap();
        step.tx
            .execute(
                "INSERT INTO engine_votes VALUES ('a', x'0102', 0, x'00')",
                [],
            )
            .unwrap();
        assert!(matches!(
            step.engine_votes("a"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
