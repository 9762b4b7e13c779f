//! The service node's message archive: every relayed message, in SQLite, in the order the
//! node received it, answering store queries and pruned by a retention.
//!
//! Pages follow the arrival order (the row sequence), not the senders' timestamps: a message
//! that arrives late with an earlier timestamp still comes after every cursor handed out
//! before it arrived, so a member catching up from its cursor never skips it. (Waku's store
//! sorts by timestamp; a cursor from this node is exact instead.) Time ranges filter on the
//! messages' timestamps, as in Waku.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::error::NetError;
use crate::limits::{MAX_LOOKUP_HASHES, MAX_PAGE_SIZE, MAX_QUERY_TOPICS, RESPONSE_BUDGET_BYTES};
use crate::waku::WakuMessage;
use crate::waku::store_query::{
    StoreQueryRequest, StoreQueryResponse, WakuMessageKeyValue, status,
};

/// How long and how much the archive keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Messages received longer ago than this are deleted.
    pub max_age_ms: u64,
    /// Beyond this many messages the oldest are deleted.
    pub max_messages: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age_ms: 14 * 24 * 3_600_000,
            max_messages: 10_000_000,
        }
    }
}

pub struct Archive {
    conn: Connection,
}

impl Archive {
    /// Opens (or creates) the archive; `None` keeps it in memory.
    pub fn open(path: Option<&Path>) -> Result<Archive, NetError> {
        let conn = crate::sqlite::open(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS message (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 hash BLOB NOT NULL UNIQUE,
                 pubsub_topic TEXT NOT NULL,
                 content_topic TEXT NOT NULL,
                 timestamp_ns INTEGER NOT NULL,
                 received_at_ms INTEGER NOT NULL,
                 message BLOB NOT NULL
             );
             CREATE INDEX IF NOT EXISTS message_by_topic
                 ON message (pubsub_topic, content_topic, seq);
             CREATE INDEX IF NOT EXISTS message_by_age ON message (received_at_ms);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
        )?;
        Ok(Archive { conn })
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, NetError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn meta_set(&self, key: &str, value: &[u8]) -> Result<(), NetError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }

    /// Keeps a relayed message; returns false if it was already kept. Ephemeral messages are
    /// not kept.
    pub fn insert(
        &self,
        pubsub_topic: &str,
        message: &WakuMessage,
        received_at_ms: u64,
    ) -> Result<bool, NetError> {
        if message.ephemeral == Some(true) {
            return Ok(false);
        }
        let hash = message.hash(pubsub_topic);
        let changed = self.conn.execute(
            "INSERT OR IGNORE INTO message
                 (hash, pubsub_topic, content_topic, timestamp_ns, received_at_ms, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                hash.as_slice(),
                pubsub_topic,
                message.content_topic,
                message.timestamp.unwrap_or(0),
                i64::try_from(received_at_ms).unwrap_or(i64::MAX),
                message.to_bytes(),
            ],
        )?;
        Ok(changed == 1)
    }

    /// Deletes what the retention no longer covers; returns how many messages went.
    pub fn prune(&self, retention: &Retention, now_ms: u64) -> Result<usize, NetError> {
        let oldest = now_ms.saturating_sub(retention.max_age_ms);
        let by_age = self.conn.execute(
            "DELETE FROM message WHERE received_at_ms < ?1",
            params![i64::try_from(oldest).unwrap_or(i64::MAX)],
        )?;
        let by_count = self.conn.execute(
            "DELETE FROM message WHERE seq <= (SELECT MAX(seq) FROM message) - ?1",
            params![i64::try_from(retention.max_messages).unwrap_or(i64::MAX)],
        )?;
        Ok(by_age + by_count)
    }

    pub fn len(&self) -> Result<u64, NetError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM message", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    pub fn is_empty(&self) -> Result<bool, NetError> {
        Ok(self.len()? == 0)
    }

    /// Answers a store query. Bad requests get a 400 response, an unknown cursor a 404,
    /// a database failure a 500; nothing here fails otherwise.
    pub fn query(&self, request: &StoreQueryRequest) -> StoreQueryResponse {
        let id = request.request_id.as_str();
        if let Err(reason) = check_request(request) {
            return StoreQueryResponse::failed(id, status::BAD_REQUEST, reason);
        }
        match self.run_query(request) {
            Ok(Some(response)) => response,
            Ok(None) => StoreQueryResponse::failed(
                id,
                status::CURSOR_NOT_FOUND,
                "the cursor names no stored message",
            ),
            Err(e) => StoreQueryResponse::failed(id, status::INTERNAL, e.to_string()),
        }
    }

    /// `None` when the cursor is unknown.
    fn run_query(
        &self,
        request: &StoreQueryRequest,
    ) -> Result<Option<StoreQueryResponse>, NetError> {
        let cursor_seq = match &request.pagination_cursor {
            Some(hash) => match self
                .conn
                .query_row(
                    "SELECT seq FROM message WHERE hash = ?1",
                    params![hash],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
            {
                Some(seq) => Some(seq),
                None => return Ok(None),
            },
            None => None,
        };
        let limit = request.pagination_limit.map_or(MAX_PAGE_SIZE, |l| {
            l.clamp(1, u64::from(MAX_PAGE_SIZE)) as u32
        });
        let (sql, values) = select_sql(request, cursor_seq, limit);
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query(params_from_iter(values))?;
        let mut messages = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        while let Some(row) = rows.next()? {
            let hash: Vec<u8> = row.get(0)?;
            let pubsub_topic: String = row.get(1)?;
            let encoded: Vec<u8> = row.get(2)?;
            if messages.len() as u32 == limit
                || (bytes > 0 && bytes + encoded.len() > RESPONSE_BUDGET_BYTES)
            {
                more = true;
                break;
            }
            bytes += encoded.len();
            // Stored bytes were validated on the way in; a row that no longer decodes is
            // returned as a key only.
            let message = if request.include_data {
                <WakuMessage as prost::Message>::decode(encoded.as_slice()).ok()
            } else {
                None
            };
            let pubsub_topic = message.as_ref().map(|_| pubsub_topic);
            messages.push(WakuMessageKeyValue {
                message_hash: Some(hash),
                message,
                pubsub_topic,
            });
        }
        if !request.pagination_forward {
            // Backward pages are read newest first but returned oldest first.
            messages.reverse();
        }
        let pagination_cursor = if more {
            let edge = if request.pagination_forward {
                messages.last()
            } else {
                messages.first()
            };
            edge.and_then(|m| m.message_hash.clone())
        } else {
            None
        };
        Ok(Some(StoreQueryResponse {
            request_id: request.request_id.clone(),
            status_code: Some(status::OK),
            status_desc: None,
            messages,
            pagination_cursor,
        }))
    }
}

fn check_request(request: &StoreQueryRequest) -> Result<(), String> {
    let content_filter = request.pubsub_topic.is_some() || !request.content_topics.is_empty();
    if request.pubsub_topic.is_some() == request.content_topics.is_empty() {
        return Err("pubsub_topic and content_topics must be set together".into());
    }
    let filtered = content_filter || request.time_start.is_some() || request.time_end.is_some();
    if filtered && !request.message_hashes.is_empty() {
        return Err("a lookup by message hash takes no content filter".into());
    }
    if request.content_topics.len() > MAX_QUERY_TOPICS {
        return Err(format!("at most {MAX_QUERY_TOPICS} content topics"));
    }
    if request.message_hashes.len() > MAX_LOOKUP_HASHES {
        return Err(format!("at most {MAX_LOOKUP_HASHES} message hashes"));
    }
    Ok(())
}

/// The SELECT of one page and its parameters: one row more than the limit tells whether
/// more match.
fn select_sql(
    request: &StoreQueryRequest,
    cursor_seq: Option<i64>,
    limit: u32,
) -> (String, Vec<Value>) {
    let mut sql = String::from("SELECT hash, pubsub_topic, message FROM message WHERE 1 = 1");
    let mut values = Vec::new();
    if let Some(topic) = &request.pubsub_topic {
        sql.push_str(" AND pubsub_topic = ?");
        values.push(Value::Text(topic.clone()));
        sql.push_str(" AND content_topic IN (");
        sql.push_str(&vec!["?"; request.content_topics.len()].join(", "));
        sql.push(')');
        values.extend(request.content_topics.iter().cloned().map(Value::Text));
    }
    if let Some(start) = request.time_start {
        sql.push_str(" AND timestamp_ns >= ?");
        values.push(Value::Integer(start));
    }
    if let Some(end) = request.time_end {
        sql.push_str(" AND timestamp_ns < ?");
        values.push(Value::Integer(end));
    }
    if !request.message_hashes.is_empty() {
        sql.push_str(" AND hash IN (");
        sql.push_str(&vec!["?"; request.message_hashes.len()].join(", "));
        sql.push(')');
        values.extend(request.message_hashes.iter().cloned().map(Value::Blob));
    }
    let forward = request.pagination_forward;
    if let Some(seq) = cursor_seq {
        sql.push_str(if forward {
            " AND seq > ?"
        } else {
            " AND seq < ?"
        });
        values.push(Value::Integer(seq));
    }
    sql.push_str(if forward {
        " ORDER BY seq ASC"
    } else {
        " ORDER BY seq DESC"
    });
    sql.push_str(" LIMIT ?");
    values.push(Value::Integer(i64::from(limit) + 1));
    (sql, values)
}

#[cfg(test)]
mod tests;
