//! The chat history: each conversation's messages with sequence numbers 1, 2, 3, ... per
//! conversation, assigned inside the step that stores the message, and de-duplicated by
//! sender and message id (a message id is chosen by its sender, so another member could
//! otherwise take it first and shadow the message).
//!
//! It lives in two tables. `messages` holds it in its primary key's order, with a unique
//! index for the de-duplication. `messages_tail` holds the chats read in steps of their own
//! (a live socket hands them over one by one): a rowid table without an index, so that such a
//! step writes one page of history instead of two. The tail stays small — the client moves
//! it into `messages` ([`Step::fold_history_tail`]) with the next write of the group's
//! message secrets, which comes within a bound of chats (`mls::CARRY_BOUND`) — so that
//! scanning it to de-duplicate and to read is cheap. Every append and read covers both
//! tables.

use super::error::{StoreError, from_u64, to_bool, to_u64};
use super::step::Step;

/// A chat message to append to the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewMessage<'a> {
    pub conversation_id: &'a str,
    pub message_id: &'a str,
    pub sender: &'a str,
    pub body: &'a [u8],
    pub sent_at_ms: u64,
    /// Sent by this client.
    pub own: bool,
}

/// A stored chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub conversation_id: String,
    /// Position in the conversation's history, starting at 1.
    pub seq: u64,
    pub message_id: String,
    pub sender: String,
    pub body: Vec<u8>,
    pub sent_at_ms: u64,
    pub own: bool,
}

/// Where [`Step::append_message`] puts a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryPart {
    /// `messages`: the indexed history.
    Indexed,
    /// `messages_tail`: a chat read in a step of its own (see the module doc).
    Tail,
}

/// The next seq of ?1 over both tables, and whether the message (?2 id, ?3 sender) is in
/// either. The tail has no index, so it is read the cheap way: its last row of the
/// conversation holds its highest seq (a conversation's rows are appended in seq order), and
/// its scan compares the (random) message id first. A read of its own, then a plain insert:
/// one `INSERT … SELECT … RETURNING` reading the table it writes made SQLite copy the row
/// through a temporary table and a statement journal.
const NEXT_SQL: &str = "SELECT MAX(
        COALESCE((SELECT MAX(seq) FROM messages WHERE conversation_id = ?1), 0),
        COALESCE((SELECT seq FROM messages_tail WHERE conversation_id = ?1
            ORDER BY id DESC LIMIT 1), 0)
    ) + 1,
    EXISTS (SELECT 1 FROM messages
            WHERE conversation_id = ?1 AND sender = ?3 AND message_id = ?2)
        OR EXISTS (SELECT 1 FROM messages_tail
            WHERE message_id = ?2 AND sender = ?3 AND conversation_id = ?1)";

/// Inserts a row into the table named.
macro_rules! insert_sql {
    ($table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (conversation_id, seq, message_id, sender, body, sent_at_ms, own)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        )
    };
}

const COLUMNS: &str = "conversation_id, seq, message_id, sender, body, sent_at_ms, own";

impl Step<'_> {
    /// Appends a message to `part` of the history and returns its sequence number, or `None`
    /// when the same sender's message with that id is already stored in that conversation.
    ///
    /// The step holds the write lock, so the next seq (read from the primary key and the
    /// small tail) cannot race with another writer.
    pub fn append_message(
        &self,
        m: &NewMessage<'_>,
        part: HistoryPart,
    ) -> Result<Option<u64>, StoreError> {
        let (next, stored): (i64, bool) = self.tx.prepare_cached(NEXT_SQL)?.query_row(
            rusqlite::params![m.conversation_id, m.message_id, m.sender],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if stored {
            return Ok(None);
        }
        let sql = match part {
            HistoryPart::Indexed => insert_sql!("messages"),
            HistoryPart::Tail => insert_sql!("messages_tail"),
        };
        self.tx.prepare_cached(sql)?.execute(rusqlite::params![
            m.conversation_id,
            next,
            m.message_id,
            m.sender,
            m.body,
            from_u64(m.sent_at_ms),
            m.own,
        ])?;
        to_u64(next, "messages.seq").map(Some)
    }

    /// Moves the history's tail into `messages` (see the module doc); returns how many
    /// messages moved. Writes nothing when the tail is empty.
    pub fn fold_history_tail(&self) -> Result<usize, StoreError> {
        let mut any = self
            .tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM messages_tail)")?;
        if !any.query_row([], |r| r.get::<_, bool>(0))? {
            return Ok(0);
        }
        let moved = self
            .tx
            .prepare_cached(
                "INSERT INTO messages (conversation_id, seq, message_id, sender, body, sent_at_ms, own)
                 SELECT conversation_id, seq, message_id, sender, body, sent_at_ms, own
                 FROM messages_tail ORDER BY id",
            )?
            .execute([])?;
        self.tx
            .prepare_cached("DELETE FROM messages_tail")?
            .execute([])?;
        Ok(moved)
    }

    /// How many messages the history's tail holds (of every conversation).
    pub fn history_tail_len(&self) -> Result<u64, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT COUNT(*) FROM messages_tail")?;
        let len: i64 = stmt.query_row([], |r| r.get(0))?;
        to_u64(len, "messages_tail count")
    }

    /// Up to `limit` messages of `conv` with `seq > after_seq` (all when
    /// `None`), oldest first.
    pub fn messages(
        &self,
        conv: &str,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let mut out = self.history_part(conv, after_seq, limit, "messages")?;
        let tail = self.history_part(conv, after_seq, limit, "messages_tail")?;
        if !tail.is_empty() {
            out.extend(tail);
            out.sort_by_key(|m| m.seq);
            out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        Ok(out)
    }

    /// [`Step::messages`] of one of the history's tables.
    fn history_part(
        &self,
        conv: &str,
        after_seq: Option<u64>,
        limit: u32,
        table: &str,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM {table} WHERE conversation_id = ?1 AND seq > ?2
             ORDER BY seq LIMIT ?3"
        ))?;
        let after = after_seq.map_or(0, from_u64);
        let mut rows = stmt.query(rusqlite::params![conv, after, i64::from(limit)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(MessageRow {
                conversation_id: row.get(0)?,
                seq: to_u64(row.get(1)?, "messages.seq")?,
                message_id: row.get(2)?,
                sender: row.get(3)?,
                body: row.get(4)?,
                sent_at_ms: to_u64(row.get(5)?, "messages.sent_at_ms")?,
                own: to_bool(row.get(6)?, "messages.own")?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{memory_db, query_plan};
    use super::HistoryPart::{Indexed, Tail};
    use super::NewMessage;
    use crate::StoreError;

    fn msg<'a>(conv: &'a str, id: &'a str, body: &'a [u8]) -> NewMessage<'a> {
        NewMessage {
            conversation_id: conv,
            message_id: id,
            sender: "alice",
            body,
            sent_at_ms: 42,
            own: id.starts_with("own"),
        }
    }

    #[test]
    fn seq_is_per_conversation_and_duplicates_are_ignored() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        assert_eq!(
            step.append_message(&msg("a", "m1", b"1"), Indexed).unwrap(),
            Some(1)
        );
        assert_eq!(
            step.append_message(&msg("a", "own2", b"2"), Indexed)
                .unwrap(),
            Some(2)
        );
        assert_eq!(
            step.append_message(&msg("b", "m1", b"b1"), Indexed)
                .unwrap(),
            Some(1)
        );
        assert_eq!(
            step.append_message(&msg("a", "m1", b"again"), Indexed)
                .unwrap(),
            None
        );
        // Another sender's message with the same id is a message of its own.
        let shadow = NewMessage {
            sender: "mallory",
            ..msg("a", "m1", b"shadow")
        };
        assert_eq!(step.append_message(&shadow, Indexed).unwrap(), Some(3));
        assert_eq!(
            step.append_message(&msg("a", "m3", b"3"), Indexed).unwrap(),
            Some(4)
        );
        assert_eq!(
            step.append_message(&msg("b", "m2", b"b2"), Indexed)
                .unwrap(),
            Some(2)
        );

        let a = step.messages("a", None, 100).unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].body, b"1"); // the duplicate did not overwrite it
        assert_eq!(a[0].sender, "alice");
        assert_eq!(a[0].sent_at_ms, 42);
        assert!(!a[0].own);
        assert!(a[1].own);
        assert_eq!(a[1].conversation_id, "a");
        assert_eq!(a[1].message_id, "own2");
        assert_eq!(
            a.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn paging_with_after_seq_and_limit() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        for i in 0..5 {
            let id = format!("m{i}");
            step.append_message(&msg("c", &id, b"x"), Indexed).unwrap();
        }
        let seqs = |after, limit| {
            step.messages("c", after, limit)
                .unwrap()
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(seqs(None, 2), vec![1, 2]);
        assert_eq!(seqs(Some(2), 2), vec![3, 4]);
        assert_eq!(seqs(Some(4), 2), vec![5]);
        assert_eq!(seqs(Some(5), 2), Vec::<u64>::new());
        assert_eq!(seqs(None, 0), Vec::<u64>::new());
        assert_eq!(seqs(Some(u64::MAX), 10), Vec::<u64>::new());
        assert!(step.messages("other", None, 10).unwrap().is_empty());
    }

    #[test]
    fn history_queries_use_the_primary_key() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let plan = query_plan(
            &step,
            "SELECT MAX(seq) FROM messages WHERE conversation_id = 'c'",
        );
        assert!(
            plan.contains("USING PRIMARY KEY (conversation_id=?)"),
            "{plan}"
        );
    }

    #[test]
    fn an_append_reads_the_history_by_its_keys_and_scans_only_the_tail() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        // The plan of the statement as run (`query_plan` binds no parameters: literals stand in).
        let sql = super::NEXT_SQL
            .replace("?1", "'c'")
            .replace("?2", "'m'")
            .replace("?3", "'s'");
        let plan = query_plan(&step, &sql);
        assert!(
            plan.contains("USING PRIMARY KEY (conversation_id=?)"),
            "{plan}"
        );
        assert!(
            plan.contains("COVERING INDEX sqlite_autoindex_messages_2 (conversation_id=? AND sender=? AND message_id=?)"),
            "{plan}"
        );
        let scans: Vec<&str> = plan
            .lines()
            .filter(|l| l.starts_with("SCAN") && *l != "SCAN CONSTANT ROW")
            .collect();
        assert_eq!(scans, ["SCAN messages_tail"; 2], "{plan}");
    }

    #[test]
    fn corrupt_sent_at_is_reported() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        step.tx
            .execute(
                "INSERT INTO messages VALUES ('c', 1, 'm', 's', x'', -1, 0)",
                [],
            )
            .unwrap();
        assert!(matches!(
            step.messages("c", None, 10),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn the_tail_shares_the_seqs_and_the_duplicates_of_the_history_and_folds_into_it() {
        let mut db = memory_db();
        let step = db.step().unwrap();
        let add =
            |conv, id, body: &[u8], part| step.append_message(&msg(conv, id, body), part).unwrap();
        assert_eq!(add("a", "m1", b"1", Indexed), Some(1));
        assert_eq!(add("a", "m2", b"2", Tail), Some(2));
        assert_eq!(add("b", "m1", b"b", Tail), Some(1));
        // A copy is known in either table, whichever table it is appended to.
        assert_eq!(add("a", "m1", b"x", Tail), None);
        assert_eq!(add("a", "m2", b"x", Indexed), None);
        assert_eq!(add("a", "m2", b"x", Tail), None);
        assert_eq!(add("a", "m3", b"3", Indexed), Some(3));
        assert_eq!(add("a", "m4", b"4", Tail), Some(4));
        let read = |after, limit| {
            step.messages("a", after, limit)
                .unwrap()
                .iter()
                .map(|m| (m.seq, m.body.clone()))
                .collect::<Vec<_>>()
        };
        let all: Vec<(u64, Vec<u8>)> = (1..=4).map(|i| (i, i.to_string().into_bytes())).collect();
        assert_eq!(read(None, 10), all);
        assert_eq!(read(Some(1), 2), all[1..3]);
        assert_eq!(read(None, 0), vec![]);
        assert_eq!(step.history_tail_len().unwrap(), 3);
        assert_eq!(step.fold_history_tail().unwrap(), 3);
        assert_eq!(step.history_tail_len().unwrap(), 0);
        assert_eq!(step.fold_history_tail().unwrap(), 0);
        assert_eq!(read(None, 10), all);
        assert_eq!(step.messages("b", None, 10).unwrap().len(), 1);
        // Folded: still known, still numbered after it.
        assert_eq!(add("a", "m2", b"x", Tail), None);
        assert_eq!(add("a", "m5", b"5", Tail), Some(5));
    }
}
