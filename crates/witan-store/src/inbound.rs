//! Inbound bookkeeping: `seen_packets` (de-duplication of packets already
//! handled) and `pending_inbound` (packets for a future epoch, buffered until
//! the conversation reaches it).
//!
//! Both fill up from traffic anyone can send, so both are bounded. `seen_packets` keeps the
//! last [`SEEN_PACKETS_KEPT`] hashes (and none older than the caller's retention): a packet
//! forgotten that way is applied again if it comes back, which the engine and MLS refuse or
//! absorb (a consumed message key, a past epoch, a known proposal). A packet kept for a
//! future epoch is de-duplicated in the buffer, by its hash, and marked seen only once
//! applied.
//!
//! The epoch a packet claims is read from its unauthenticated framing, so anyone who knows a
//! conversation's id can fill its buffer. The buffer is therefore bounded per conversation in
//! packets and in bytes ([`BufferBounds`]), and a full buffer makes room by evicting the
//! packets that claim the farthest epochs (the oldest first among equals): a genuine packet
//! of the next epoch displaces forgeries that claim epochs far ahead, and only packets that
//! claim an epoch farther than everything buffered are refused. Buffered packets are handed
//! back one at a time ([`Step::take_next_buffered`]), so replaying them never holds more than
//! one in memory.

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
    /// time, so a packet that keeps being replayed stays de-duplicated. Beyond
    /// [`SEEN_PACKETS_KEPT`] hashes the oldest are forgotten (checked every
    /// [`SEEN_PRUNE_EVERY`] marks, so the table exceeds the bound by less than that).
    pub fn mark_seen(&self, hash: &[u8], now_ms: u64) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO seen_packets (hash, seen_ms) VALUES (?1, ?2)
             ON CONFLICT (hash) DO UPDATE SET seen_ms = max(seen_ms, excluded.seen_ms)
             RETURNING seq",
        )?;
        let seq: i64 = stmt.query_row(rusqlite::params![hash, from_u64(now_ms)], |r| r.get(0))?;
        if seq % SEEN_PRUNE_EVERY == 0 {
            let mut prune = self
                .tx
                .prepare_cached("DELETE FROM seen_packets WHERE seq <= ?1")?;
            prune.execute([seq.saturating_sub(SEEN_PACKETS_KEPT)])?;
        }
        Ok(())
    }

    /// Forgets the seen hashes last marked before `older_than_ms`, walking them in the order
    /// they were first marked and stopping at the first one marked since; returns how many
    /// were removed. Hashes are marked in time order, so this is every old one, read without
    /// a time index (one less page written per received packet); a hash refreshed by a replay,
    /// or a clock set back, keeps the ones after it a while longer, within the row bound
    /// ([`SEEN_PACKETS_KEPT`]).
    pub fn prune_seen(&self, older_than_ms: u64) -> Result<usize, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "DELETE FROM seen_packets WHERE seq < ifnull(
                 (SELECT seq FROM seen_packets WHERE seen_ms >= ?1 ORDER BY seq LIMIT 1),
                 9223372036854775807)",
        )?;
        Ok(stmt.execute([from_u64(older_than_ms)])?)
    }

    /// Buffers a packet for epoch `epoch` of conversation `conv`, within `bounds`: packets
    /// claiming epochs at least as far are evicted to make room (see the module doc).
    /// `packet` is the payload with its seen key (`wire::seen_key`), by which the buffer
    /// de-duplicates. [`Buffered::Refused`] (and nothing changed) when the packet cannot fit:
    /// it is larger than the byte bound, or every buffered packet claims a nearer epoch.
    pub fn buffer_inbound(
        &self,
        conv: &str,
        epoch: u64,
        packet: (&[u8; 32], &[u8]),
        now_ms: u64,
        bounds: BufferBounds,
    ) -> Result<Buffered, StoreError> {
        let (hash, payload) = packet;
        let mut known = self.tx.prepare_cached(
            "SELECT 1 FROM pending_inbound WHERE conversation_id = ?1 AND hash = ?2",
        )?;
        if known
            .query_row(rusqlite::params![conv, &hash[..]], |_| Ok(()))
            .optional()?
            .is_some()
        {
            return Ok(Buffered::Already);
        }
        let size = u64::try_from(payload.len()).unwrap_or(u64::MAX);
        if size > bounds.bytes || bounds.packets == 0 {
            return Ok(Buffered::Refused);
        }
        let mut totals = self.tx.prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM pending_inbound
             WHERE conversation_id = ?1",
        )?;
        let (count, bytes): (i64, i64) =
            totals.query_row([conv], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let excess_packets =
            (to_u64(count, "pending_inbound count")? + 1).saturating_sub(u64::from(bounds.packets));
        let excess_bytes = to_u64(bytes, "pending_inbound bytes")?
            .saturating_add(size)
            .saturating_sub(bounds.bytes);
        if excess_packets > 0 || excess_bytes > 0 {
            let Some(victims) = self.eviction(conv, epoch, excess_packets, excess_bytes)? else {
                return Ok(Buffered::Refused);
            };
            let mut delete = self
                .tx
                .prepare_cached("DELETE FROM pending_inbound WHERE id = ?1")?;
            for id in &victims {
                delete.execute([id])?;
            }
            tracing::debug!(
                conversation = conv,
                evicted = victims.len(),
                "future-epoch buffer full: farthest epochs evicted"
            );
        }
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO pending_inbound (conversation_id, epoch, payload, received_ms, hash)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        insert.execute(rusqlite::params![
            conv,
            from_u64(epoch),
            payload,
            from_u64(now_ms),
            &hash[..]
        ])?;
        Ok(Buffered::Stored)
    }

    /// The buffered packets of `conv` to evict so that `packets` more rows and `bytes` more
    /// bytes are free, worst first: those claiming epochs at or beyond `epoch`, farthest first,
    /// oldest first among equals. `None` when those are not enough.
    fn eviction(
        &self,
        conv: &str,
        epoch: u64,
        packets: u64,
        bytes: u64,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let mut worst = self.tx.prepare_cached(
            "SELECT id, length(payload) FROM pending_inbound
             WHERE conversation_id = ?1 AND epoch >= ?2
             ORDER BY epoch DESC, id ASC",
        )?;
        let mut rows = worst.query(rusqlite::params![conv, from_u64(epoch)])?;
        let (mut freed_packets, mut freed_bytes) = (0u64, 0u64);
        let mut victims = Vec::new();
        while freed_packets < packets || freed_bytes < bytes {
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            victims.push(row.get::<_, i64>(0)?);
            freed_packets += 1;
            freed_bytes = freed_bytes.saturating_add(to_u64(row.get(1)?, "pending_inbound size")?);
        }
        Ok(Some(victims))
    }

    /// Deletes the packets buffered for `conv` with an epoch below `epoch`; returns how
    /// many there were.
    pub fn drop_buffered_below(&self, conv: &str, epoch: u64) -> Result<usize, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "DELETE FROM pending_inbound WHERE conversation_id = ?1 AND epoch < ?2",
        )?;
        Ok(stmt.execute(rusqlite::params![conv, from_u64(epoch)])?)
    }

    /// Removes and returns the first packet buffered for `conv` with an epoch at or below
    /// `up_to_epoch`, in epoch order and, within an epoch, arrival order.
    pub fn take_next_buffered(
        &self,
        conv: &str,
        up_to_epoch: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut select = self.tx.prepare_cached(
            "SELECT id, payload FROM pending_inbound
             WHERE conversation_id = ?1 AND epoch <= ?2
             ORDER BY epoch, id LIMIT 1",
        )?;
        let next: Option<(i64, Vec<u8>)> = select
            .query_row(rusqlite::params![conv, from_u64(up_to_epoch)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((id, payload)) = next else {
            return Ok(None);
        };
        self.tx
            .prepare_cached("DELETE FROM pending_inbound WHERE id = ?1")?
            .execute([id])?;
        Ok(Some(payload))
    }
}

/// Hashes of seen packets kept at most (about 9 MB of rows and index on disk).
pub const SEEN_PACKETS_KEPT: i64 = 100_000;

/// The seen-packet bound is enforced once per this many marks.
pub const SEEN_PRUNE_EVERY: i64 = 256;

/// What [`Step::buffer_inbound`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffered {
    /// Kept, evicting packets of farther epochs if the buffer was full.
    Stored,
    /// The same packet is buffered already.
    Already,
    /// Nothing was evicted for it: it is too large or claims the farthest epoch.
    Refused,
}

/// How much one conversation may buffer for future epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferBounds {
    /// Packets at most.
    pub packets: u32,
    /// Bytes of payload at most.
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::super::test_support::{memory_db, query_plan};
    use super::*;

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
        step.mark_seen(b"h3", 400).unwrap();
        assert_eq!(step.prune_seen(u64::MAX).unwrap(), 2);
        assert!(!step.is_seen(b"h3").unwrap());
    }

    #[test]
    fn pruning_by_age_reads_the_old_hashes_alone() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let plan = query_plan(
            &step,
            "SELECT seq FROM seen_packets WHERE seen_ms >= 1 ORDER BY seq LIMIT 1",
        );
        // A walk in insertion order (stopping at the first recent hash), not a sort.
        assert!(
            plan.starts_with("SCAN seen_packets") && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
    }

    fn bounds(packets: u32, bytes: u64) -> BufferBounds {
        BufferBounds { packets, bytes }
    }

    /// Buffers `payload` (its hash computed here); whether it was stored.
    fn put(step: &Step<'_>, conv: &str, epoch: u64, payload: &[u8], bounds: BufferBounds) -> bool {
        let hash: [u8; 32] = sha2::Sha256::digest(payload).into();
        step.buffer_inbound(conv, epoch, (&hash, payload), 1, bounds)
            .unwrap()
            == Buffered::Stored
    }

    /// Every packet of `conv` up to `epoch`, taken one at a time.
    fn take_all(step: &Step<'_>, conv: &str, epoch: u64) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| step.take_next_buffered(conv, epoch).unwrap()).collect()
    }

    #[test]
    fn the_seen_table_keeps_the_newest_hashes_within_its_bound() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let marks = SEEN_PACKETS_KEPT + 2 * SEEN_PRUNE_EVERY;
        for i in 0..marks {
            step.mark_seen(&i.to_le_bytes(), 1).unwrap();
        }
        let rows: i64 = step
            .tx
            .query_row("SELECT COUNT(*) FROM seen_packets", [], |r| r.get(0))
            .unwrap();
        assert!(rows <= SEEN_PACKETS_KEPT + SEEN_PRUNE_EVERY, "{rows}");
        assert!(rows >= SEEN_PACKETS_KEPT, "{rows}");
        assert!(!step.is_seen(&0i64.to_le_bytes()).unwrap());
        assert!(step.is_seen(&(marks - 1).to_le_bytes()).unwrap());
    }

    #[test]
    fn a_packet_is_buffered_once() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let roomy = bounds(9, 1 << 20);
        let hash = [7; 32];
        let first = step
            .buffer_inbound("a", 3, (&hash, b"p"), 1, roomy)
            .unwrap();
        let again = step
            .buffer_inbound("a", 3, (&hash, b"p"), 2, roomy)
            .unwrap();
        let elsewhere = step
            .buffer_inbound("b", 3, (&hash, b"p"), 2, roomy)
            .unwrap();
        assert_eq!(
            (first, again, elsewhere),
            (Buffered::Stored, Buffered::Already, Buffered::Stored)
        );
        assert_eq!(take_all(&step, "a", 3), [b"p".to_vec()]);
        // Once taken it may be buffered again.
        assert_eq!(
            step.buffer_inbound("a", 3, (&hash, b"p"), 3, roomy)
                .unwrap(),
            Buffered::Stored
        );
    }

    #[test]
    fn buffered_packets_are_taken_in_epoch_then_arrival_order() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let roomy = bounds(9, 1 << 20);
        for (conv, epoch, payload) in [
            ("a", 5, "a5-first"),
            ("a", 4, "a4"),
            ("a", 5, "a5-second"),
            ("b", 5, "b5"),
            ("a", 7, "a7"),
        ] {
            assert!(put(&step, conv, epoch, payload.as_bytes(), roomy));
        }
        assert_eq!(take_all(&step, "a", 3), Vec::<Vec<u8>>::new());
        assert_eq!(take_all(&step, "a", 4), [b"a4".to_vec()]);
        assert_eq!(
            take_all(&step, "a", 10),
            [b"a5-first".to_vec(), b"a5-second".to_vec(), b"a7".to_vec()]
        );
        assert_eq!(take_all(&step, "b", u64::MAX), [b"b5".to_vec()]);

        assert!(put(&step, "c", 2, b"c2", roomy));
        assert!(put(&step, "c", 3, b"c3", roomy));
        assert_eq!(step.drop_buffered_below("c", 3).unwrap(), 1);
        assert_eq!(take_all(&step, "c", u64::MAX), [b"c3".to_vec()]);
    }

    #[test]
    fn a_full_buffer_evicts_the_farthest_epochs_and_refuses_what_is_farther() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let three = bounds(3, 1 << 20);
        assert!(put(&step, "a", 1000, b"far-old", three));
        assert!(put(&step, "a", 1000, b"far-new", three));
        assert!(put(&step, "a", 5, b"near", three));
        // Full: a packet farther than everything buffered is refused...
        assert!(!put(&step, "a", 2000, b"farther", three));
        // ...a nearer one displaces the farthest, the oldest of them first.
        assert!(put(&step, "a", 6, b"next", three));
        // Another conversation has its own room.
        assert!(put(&step, "b", 9, b"b", three));
        assert_eq!(
            take_all(&step, "a", u64::MAX),
            [b"near".to_vec(), b"next".to_vec(), b"far-new".to_vec()]
        );
        assert!(!put(&step, "c", 1, b"c", bounds(0, 1 << 20)));
    }

    #[test]
    fn the_buffer_is_bounded_in_bytes() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let small = bounds(100, 10);
        assert!(!put(&step, "a", 1, &[0; 11], small));
        assert!(put(&step, "a", 9, &[9; 4], small));
        assert!(put(&step, "a", 8, &[8; 4], small));
        // Four bytes must go: the packet of the farthest epoch is enough.
        assert!(put(&step, "a", 2, &[2; 6], small));
        assert_eq!(take_all(&step, "a", u64::MAX), [vec![2; 6], vec![8; 4]]);
        // Nothing nearer can be evicted for a farther packet.
        assert!(put(&step, "a", 2, &[2; 8], small));
        assert!(!put(&step, "a", 3, &[3; 4], small));
        assert_eq!(take_all(&step, "a", u64::MAX), [vec![2; 8]]);
    }
}
