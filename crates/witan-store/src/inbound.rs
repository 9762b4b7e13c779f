//! Inbound bookkeeping: `seen_packets` (de-duplication of packets already
//! handled) and `pending_inbound` (packets for a future epoch, buffered until
//! the conversation reaches it, with a bound per conversation).

use rusqlite::OptionalExtension;

use super::error::{StoreError, from_u64, to_u64};
use super::step::Step;

impl Step<'_> {
    /// Whether a packet with this hash was marked seen (and not yet pruned).
    pub fn is_seen(&self, hash: &[u8]) -> Result<bool, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT 1 FROM seen_packets WHERE hash = ?1")?;
        Ok(stmt.query_row([hash], |_| Ok(())).optional()?.is_some())
    }

    /// Marks a packet hash as seen at `now_ms`. Marking it again refreshes the
    /// time, so a packet that keeps being replayed stays de-duplicated.
    pub fn mark_seen(&self, hash: &[u8], now_ms: u64) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO seen_packets (hash, seen_ms) VALUES (?1, ?2)
             ON CONFLICT (hash) DO UPDATE SET seen_ms = max(seen_ms, excluded.seen_ms)",
        )?;
        stmt.execute(rusqlite::params![hash, from_u64(now_ms)])?;
        Ok(())
    }

    /// Forgets seen hashes last marked before `older_than_ms`; returns how
    /// many were removed.
    pub fn prune_seen(&self, older_than_ms: u64) -> Result<usize, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM seen_packets WHERE seen_ms < ?1")?;
        Ok(stmt.execute([from_u64(older_than_ms)])?)
    }

    /// Buffers a packet for epoch `epoch` of conversation `conv`. Returns
    /// `false` (and stores nothing) when the conversation already has
    /// `max_per_conversation` buffered packets.
    pub fn buffer_inbound(
        &self,
        conv: &str,
        epoch: u64,
        payload: &[u8],
        now_ms: u64,
        max_per_conversation: u32,
    ) -> Result<bool, StoreError> {
        let mut count = self
            .tx
            .prepare_cached("SELECT COUNT(*) FROM pending_inbound WHERE conversation_id = ?1")?;
        let buffered: i64 = count.query_row([conv], |r| r.get(0))?;
        if buffered >= i64::from(max_per_conversation) {
            return Ok(false);
        }
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO pending_inbound (conversation_id, epoch, payload, received_ms)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        insert.execute(rusqlite::params![
            conv,
            from_u64(epoch),
            payload,
            from_u64(now_ms)
        ])?;
        Ok(true)
    }

    /// Deletes the packets buffered for `conv` with an epoch below `epoch`; returns how
    /// many there were.
    pub fn drop_buffered_below(&self, conv: &str, epoch: u64) -> Result<usize, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "DELETE FROM pending_inbound WHERE conversation_id = ?1 AND epoch < ?2",
        )?;
        Ok(stmt.execute(rusqlite::params![conv, from_u64(epoch)])?)
    }

    /// Removes and returns the packets buffered for `conv` with an epoch at or
    /// below `up_to_epoch`, in epoch order and, within an epoch, arrival order.
    pub fn take_buffered(&self, conv: &str, up_to_epoch: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let up_to = from_u64(up_to_epoch);
        let mut select = self.tx.prepare_cached(
            "SELECT epoch, payload FROM pending_inbound
             WHERE conversation_id = ?1 AND epoch <= ?2
             ORDER BY epoch, id",
        )?;
        let mut rows = select.query(rusqlite::params![conv, up_to])?;
        let mut payloads = Vec::new();
        while let Some(row) = rows.next()? {
            to_u64(row.get(0)?, "pending_inbound.epoch")?;
            payloads.push(row.get(1)?);
        }
        drop(rows);
        let mut delete = self.tx.prepare_cached(
            "DELETE FROM pending_inbound WHERE conversation_id = ?1 AND epoch <= ?2",
        )?;
        delete.execute(rusqlite::params![conv, up_to])?;
        Ok(payloads)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::memory_db;

    #[test]
    fn seen_and_prune() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        assert!(!step.is_seen(b"h1").unwrap());
        step.mark_seen(b"h1", 100).unwrap();
        step.mark_seen(b"h2", 200).unwrap();
        step.mark_seen(b"h1", 50).unwrap(); // an older time does not move it back
        assert!(step.is_seen(b"h1").unwrap());
        assert_eq!(step.prune_seen(150).unwrap(), 1);
        assert!(!step.is_seen(b"h1").unwrap());
        assert!(step.is_seen(b"h2").unwrap());
        step.mark_seen(b"h2", 300).unwrap(); // a replay refreshes it
        assert_eq!(step.prune_seen(250).unwrap(), 0);
        assert!(step.is_seen(b"h2").unwrap());
    }

    #[test]
    fn buffer_is_bounded_per_conversation_and_taken_in_order() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        assert!(step.buffer_inbound("a", 5, b"a5-first", 1, 3).unwrap());
        assert!(step.buffer_inbound("a", 4, b"a4", 2, 3).unwrap());
        assert!(step.buffer_inbound("a", 5, b"a5-second", 3, 3).unwrap());
        assert!(!step.buffer_inbound("a", 6, b"a6", 4, 3).unwrap());
        assert!(step.buffer_inbound("b", 5, b"b5", 5, 3).unwrap());
        assert!(!step.buffer_inbound("c", 1, b"c1", 5, 0).unwrap());

        assert_eq!(step.take_buffered("a", 3).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(step.take_buffered("a", 4).unwrap(), vec![b"a4".to_vec()]);
        // Room again after taking.
        assert!(step.buffer_inbound("a", 7, b"a7", 6, 3).unwrap());
        assert_eq!(
            step.take_buffered("a", 10).unwrap(),
            vec![b"a5-first".to_vec(), b"a5-second".to_vec(), b"a7".to_vec()]
        );
        assert_eq!(step.take_buffered("a", 10).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(
            step.take_buffered("b", u64::MAX).unwrap(),
            vec![b"b5".to_vec()]
        );

        assert!(step.buffer_inbound("c", 2, b"c2", 7, 9).unwrap());
        assert!(step.buffer_inbound("c", 3, b"c3", 7, 9).unwrap());
        assert!(step.buffer_inbound("d", 1, b"d1", 7, 9).unwrap());
        assert_eq!(step.drop_buffered_below("c", 3).unwrap(), 1);
        assert_eq!(
            step.take_buffered("c", u64::MAX).unwrap(),
            vec![b"c3".to_vec()]
        );
        assert_eq!(step.take_buffered("d", 1).unwrap(), vec![b"d1".to_vec()]);
    }
}
