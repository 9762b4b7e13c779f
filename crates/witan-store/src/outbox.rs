//! The `outbox` table: packets waiting to be handed to the host transport,
//! delivered first-in first-out, with a per-packet retry time.
//!
//! A packet enters the outbox in the same step that produced it, so it is sent
//! if and only if that step committed; it leaves when the transport accepted
//! it ([`Step::outbox_delete`]) and otherwise waits for its next attempt.

use super::error::{StoreError, from_u64, to_u32, to_u64};
use super::step::Step;

/// One packet waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub packet_id: String,
    pub topic: String,
    pub payload: Vec<u8>,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// Earliest time (ms since the Unix epoch) of the next attempt.
    pub next_attempt_ms: u64,
}

impl Step<'_> {
    /// Queues a packet, due at once (`next_attempt_ms = now_ms`). Pushing a
    /// `packet_id` that is already queued changes nothing (packet ids are
    /// content hashes, so it is the same packet).
    pub fn outbox_push(
        &self,
        packet_id: &str,
        topic: &str,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO outbox (packet_id, topic, payload, attempts, next_attempt_ms)
             VALUES (?1, ?2, ?3, 0, ?4)
             ON CONFLICT (packet_id) DO NOTHING",
        )?;
        stmt.execute(rusqlite::params![
            packet_id,
            topic,
            payload,
            from_u64(now_ms)
        ])?;
        Ok(())
    }

    /// Up to `limit` packets whose next attempt is at or before `now_ms`, in
    /// the order they were pushed.
    pub fn outbox_due(&self, now_ms: u64, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT packet_id, topic, payload, attempts, next_attempt_ms FROM outbox
             WHERE next_attempt_ms <= ?1
             ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = stmt.query(rusqlite::params![from_u64(now_ms), i64::from(limit)])?;
        let mut due = Vec::new();
        while let Some(row) = rows.next()? {
            due.push(OutboxRow {
                packet_id: row.get(0)?,
                topic: row.get(1)?,
                payload: row.get(2)?,
                attempts: to_u32(row.get(3)?, "outbox.attempts")?,
                next_attempt_ms: to_u64(row.get(4)?, "outbox.next_attempt_ms")?,
            });
        }
        Ok(due)
    }

    /// Removes a delivered packet (no-op if it is not queued).
    pub fn outbox_delete(&self, packet_id: &str) -> Result<(), StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM outbox WHERE packet_id = ?1")?;
        stmt.execute([packet_id])?;
        Ok(())
    }

    /// Records a failed attempt: `attempts += 1` and the packet waits until
    /// `next_attempt_ms`. It keeps its place in the FIFO order.
    pub fn outbox_retry_later(
        &self,
        packet_id: &str,
        next_attempt_ms: u64,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2
             WHERE packet_id = ?1",
        )?;
        stmt.execute(rusqlite::params![packet_id, from_u64(next_attempt_ms)])?;
        Ok(())
    }

    /// Number of queued packets, due or not.
    pub fn outbox_len(&self) -> Result<u32, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT COUNT(*) FROM outbox")?;
        to_u32(stmt.query_row([], |r| r.get(0))?, "outbox count")
    }

    /// The earliest next attempt over all queued packets (`None`: empty).
    pub fn outbox_next_attempt(&self) -> Result<Option<u64>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT MIN(next_attempt_ms) FROM outbox")?;
        let next: Option<i64> = stmt.query_row([], |r| r.get(0))?;
        next.map(|n| to_u64(n, "outbox.next_attempt_ms"))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{memory_db, query_plan};
    use crate::StoreError;

    fn ids(rows: &[super::OutboxRow]) -> Vec<&str> {
        rows.iter().map(|r| r.packet_id.as_str()).collect()
    }

    #[test]
    fn fifo_retry_and_due_filter() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        assert_eq!(step.outbox_len().unwrap(), 0);
        assert_eq!(step.outbox_next_attempt().unwrap(), None);
        step.outbox_push("p1", "t", b"one", 10).unwrap();
        step.outbox_push("p2", "t", b"two", 20).unwrap();
        step.outbox_push("p3", "u", b"three", 5).unwrap();
        step.outbox_push("p1", "t", b"dup", 0).unwrap(); // ignored
        assert_eq!(step.outbox_len().unwrap(), 3);
        assert_eq!(step.outbox_next_attempt().unwrap(), Some(5));

        // FIFO by push order, not by time; only due ones.
        assert_eq!(ids(&step.outbox_due(10, 10).unwrap()), vec!["p1", "p3"]);
        assert_eq!(
            ids(&step.outbox_due(100, 10).unwrap()),
            vec!["p1", "p2", "p3"]
        );
        assert_eq!(ids(&step.outbox_due(100, 2).unwrap()), vec!["p1", "p2"]);
        assert!(step.outbox_due(100, 0).unwrap().is_empty());
        let first = &step.outbox_due(100, 1).unwrap()[0];
        assert_eq!(first.payload, b"one");
        assert_eq!(first.topic, "t");
        assert_eq!(first.attempts, 0);
        assert_eq!(first.next_attempt_ms, 10);

        step.outbox_retry_later("p1", 500).unwrap();
        step.outbox_retry_later("p1", 1000).unwrap();
        step.outbox_retry_later("missing", 1000).unwrap();
        assert_eq!(ids(&step.outbox_due(100, 10).unwrap()), vec!["p2", "p3"]);
        let all = step.outbox_due(1000, 10).unwrap();
        assert_eq!(ids(&all), vec!["p1", "p2", "p3"]); // keeps its place
        assert_eq!(all[0].attempts, 2);
        assert_eq!(all[0].next_attempt_ms, 1000);

        step.outbox_delete("p3").unwrap();
        step.outbox_delete("missing").unwrap();
        assert_eq!(step.outbox_len().unwrap(), 2);
        assert_eq!(step.outbox_next_attempt().unwrap(), Some(20));
        step.outbox_delete("p2").unwrap();
        assert_eq!(step.outbox_next_attempt().unwrap(), Some(1000));
    }

    #[test]
    fn seq_is_not_reused_after_delete() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        step.outbox_push("a", "t", b"", 0).unwrap();
        step.outbox_push("b", "t", b"", 0).unwrap();
        step.outbox_delete("b").unwrap();
        step.outbox_push("c", "t", b"", 0).unwrap();
        step.outbox_delete("a").unwrap();
        step.outbox_push("d", "t", b"", 0).unwrap();
        assert_eq!(ids(&step.outbox_due(0, 10).unwrap()), vec!["c", "d"]);
    }

    #[test]
    fn next_attempt_uses_the_index() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let plan = query_plan(&step, "SELECT MIN(next_attempt_ms) FROM outbox");
        assert!(plan.contains("outbox_by_next_attempt"), "{plan}");
    }

    #[test]
    fn corrupt_attempts_is_reported() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        step.tx
            .execute(
                "INSERT INTO outbox (packet_id, topic, payload, attempts, next_attempt_ms)
                 VALUES ('x', 't', x'', -1, 0)",
                [],
            )
            .unwrap();
        assert!(matches!(
            step.outbox_due(0, 10),
            Err(StoreError::Corrupt(_))
        ));
    }
}
