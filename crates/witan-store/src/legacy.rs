//! One-time migrations of rows written by earlier versions.
//!
//! - Schema version 5: rows written as JSON by versions before the row codec, OpenMLS rows
//!   (`mls_kv`) and engine states (`engine_state`), are transcoded to the codec
//!   (`witan_engine::codec::transcode_json`), which keeps JSON's data model, so each reads
//!   back as the value JSON would have given; afterwards nothing reads JSON.
//! - Schema version 6: an engine state stored whole (the part `conversation`, the engine's
//!   `Conversation` before it was split) is split into the engine's parts by the engine's own
//!   migration (`Conversation::from_bytes`, which also says what carries over), one row per
//!   part, and the whole state is deleted.
//!
//! A row that cannot be migrated is left as it is: it is as damaged as before, and reading it
//! reports that, whereas failing here would keep the whole database from opening.

use rusqlite::Connection;
use witan_engine::codec;
use witan_engine::protocol::{Conversation, PartKey};

use super::error::StoreError;

/// Transcodes every JSON row of `mls_kv` and `engine_state` (see the module doc).
pub(crate) fn transcode_json_rows(conn: &Connection) -> Result<(), StoreError> {
    for table in ["mls_kv", "engine_state"] {
        transcode_table(conn, table)?;
    }
    Ok(())
}

fn transcode_table(conn: &Connection, table: &str) -> Result<(), StoreError> {
    // Row ids first (rows can be large; they are read one at a time below).
    let ids = conn
        .prepare(&format!(
            "SELECT rowid FROM {table} WHERE substr(value, 1, 1) <> ?1"
        ))?
        .query_map([[codec::MAGIC]], |r| r.get::<_, i64>(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    let mut read = conn.prepare(&format!("SELECT value FROM {table} WHERE rowid = ?1"))?;
    let mut write = conn.prepare(&format!("UPDATE {table} SET value = ?2 WHERE rowid = ?1"))?;
    let mut left = 0usize;
    for id in &ids {
        let json: Vec<u8> = read.query_row([id], |r| r.get(0))?;
        match codec::transcode_json(&json) {
            Ok(value) => {
                write.execute(rusqlite::params![id, value])?;
            }
            Err(_) => left += 1,
        }
    }
    if left > 0 {
        tracing::warn!(
            table,
            rows = left,
            "rows neither in the codec nor JSON left as they are"
        );
    }
    Ok(())
}

/// The name of the part that held an engine state stored whole (schema version 4).
const WHOLE_STATE: &str = "conversation";

/// Splits every engine state stored whole into the engine's parts (see the module doc).
pub(crate) fn split_engine_states(conn: &Connection) -> Result<(), StoreError> {
    let ids = conn
        .prepare("SELECT conversation_id FROM engine_state WHERE part = ?1")?
        .query_map([WHOLE_STATE], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<String>, _>>()?;
    let mut read =
        conn.prepare("SELECT value FROM engine_state WHERE conversation_id = ?1 AND part = ?2")?;
    let mut write = conn.prepare(
        "INSERT INTO engine_state (conversation_id, part, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (conversation_id, part) DO UPDATE SET value = excluded.value",
    )?;
    let mut delete =
        conn.prepare("DELETE FROM engine_state WHERE conversation_id = ?1 AND part = ?2")?;
    let mut left = 0usize;
    for id in &ids {
        let whole: Vec<u8> = read.query_row(rusqlite::params![id, WHOLE_STATE], |r| r.get(0))?;
        let Ok(conv) = Conversation::from_bytes(&whole) else {
            left += 1;
            continue;
        };
        for part in PartKey::ALL {
            write.execute(rusqlite::params![
                id,
                part.as_str(),
                conv.encode_part(*part)
            ])?;
        }
        delete.execute(rusqlite::params![id, WHOLE_STATE])?;
    }
    if left > 0 {
        tracing::warn!(
            states = left,
            "engine states that cannot be migrated left as they are"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use witan_engine::mls::{Group, Identity, KvSource, MemoryKv, MlsProvider};

    use super::super::schema::{migrate, tests::database_at};
    use super::*;

    /// The OpenMLS rows as the source of a provider.
    struct Rows<'c>(&'c Connection);

    impl KvSource for Rows<'_> {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
            use rusqlite::OptionalExtension;
            self.0
                .query_row("SELECT value FROM mls_kv WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| e.to_string())
        }
    }

    /// `rows` with each group's message secrets in one row, as versions before the pieces
    /// wrote them: a head (first byte 0xB3, see `witan_engine::mls::storage`) is replaced by
    /// its pieces (the keys that follow it and extend its key by five bytes) joined in order.
    fn whole_secrets(rows: &MemoryKv) -> MemoryKv {
        let mut out = MemoryKv::new();
        let mut iter = rows.0.iter().peekable();
        while let Some((key, value)) = iter.next() {
            let mut whole = value.clone();
            if value.first() == Some(&0xB3) {
                whole.clear();
                while let Some((_, piece)) =
                    iter.next_if(|(k, _)| k.starts_with(key) && k.len() == key.len() + 5)
                {
                    whole.extend_from_slice(piece);
                }
            }
            out.0.insert(key.clone(), whole);
        }
        out
    }

    /// What the JSON storage of earlier versions wrote for `rows` (in the codec).
    fn as_json(rows: &MemoryKv) -> Vec<(Vec<u8>, Vec<u8>)> {
        whole_secrets(rows)
            .0
            .iter()
            .map(|(k, v)| {
                let value: serde_json::Value = codec::from_slice(v).unwrap();
                (k.clone(), serde_json::to_vec(&value).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_group_stored_as_json_loads_after_the_migration() {
        // JSON rows name every field: the rows they are made from here must too.
        witan_engine::mls::storage::tests_hook::NAMED.set(true);
        let id = Identity::from_secret(&[3; 32]).unwrap();
        let mut kv = MemoryKv::new();
        let p = MlsProvider::new(&kv);
        let mut group = Group::create(&p, &id, b"legacy").unwrap();
        let authenticator = group.epoch_authenticator();
        group.encrypt(&p, &id, b"hello").unwrap();
        let changes = p.storage().take_changes();
        drop(p);
        kv.apply(changes);

        let mut conn = database_at(4);
        for (key, json) in as_json(&kv) {
            conn.execute(
                "INSERT INTO mls_kv (key, value) VALUES (?1, ?2)",
                rusqlite::params![key, json],
            )
            .unwrap();
        }
        // Before the migration the JSON rows are no codec values: the group cannot load.
        assert!(Group::load(&MlsProvider::new(&Rows(&conn)), b"legacy").is_err());
        migrate(&mut conn).unwrap();
        let rows = Rows(&conn);
        let p = MlsProvider::new(&rows);
        let loaded = Group::load(&p, b"legacy").unwrap().unwrap();
        assert_eq!(loaded.epoch_authenticator(), authenticator);
        assert_eq!(loaded.members(), vec![id.member_id()]);
    }

    #[test]
    fn json_parts_become_codec_and_other_rows_stay() {
        let mut conn = database_at(4);
        let state = serde_json::json!({"id": "c", "epoch": 3, "members": [[1, 2], [3]]});
        let codec_row = codec::to_vec(&serde_json::json!({"kept": true})).unwrap();
        conn.execute_batch("INSERT INTO conversations (id, next_deadline_ms) VALUES ('c', NULL)")
            .unwrap();
        let insert = |part: &str, value: &[u8]| {
            conn.execute(
                "INSERT INTO engine_state (conversation_id, part, value) VALUES ('c', ?1, ?2)",
                rusqlite::params![part, value],
            )
            .unwrap();
        };
        insert("json", &serde_json::to_vec(&state).unwrap());
        insert("codec", &codec_row);
        insert("damaged", b"{not json");
        migrate(&mut conn).unwrap();
        let part = |name: &str| -> Vec<u8> {
            conn.query_row(
                "SELECT value FROM engine_state WHERE part = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap()
        };
        let migrated = part("json");
        assert!(codec::is_encoded(&migrated));
        assert_eq!(
            codec::from_slice::<serde_json::Value>(&migrated).unwrap(),
            state
        );
        assert_eq!(part("codec"), codec_row);
        assert_eq!(part("damaged"), b"{not json");
    }
    /// States as the engine before its parts stored them (its own fixtures: a member of a
    /// group of three, in the row codec and as JSON).
    const WHOLE_CODEC: &[u8] =
        include_bytes!("../../witan-engine/src/protocol/conversation/fixtures/before_parts.bin");
    const WHOLE_JSON: &[u8] =
        include_bytes!("../../witan-engine/src/protocol/conversation/fixtures/before_parts.json");

    #[test]
    fn a_state_stored_whole_is_split_into_the_engines_parts() {
        let mut conn = database_at(4);
        for (id, whole) in [
            ("codec", WHOLE_CODEC),
            ("json", WHOLE_JSON),
            ("damaged", &b"\x01\x02"[..]),
        ] {
            conn.execute(
                "INSERT INTO conversations (id, next_deadline_ms) VALUES (?1, 5)",
                [id],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO engine_state (conversation_id, part, value) VALUES (?1, ?2, ?3)",
                rusqlite::params![id, WHOLE_STATE, whole],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let parts = |id: &str| -> std::collections::BTreeMap<String, Vec<u8>> {
            conn.prepare("SELECT part, value FROM engine_state WHERE conversation_id = ?1")
                .unwrap()
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let expected = Conversation::from_bytes(WHOLE_CODEC).unwrap();
        for id in ["codec", "json"] {
            let stored = parts(id);
            let names: Vec<&str> = stored.keys().map(String::as_str).collect();
            let mut all: Vec<&str> = PartKey::ALL.iter().map(|k| k.as_str()).collect();
            all.sort();
            assert_eq!(names, all, "{id}");
            let by_key = stored
                .iter()
                .map(|(n, v)| (PartKey::parse(n).unwrap(), v.clone()))
                .collect();
            let conv = Conversation::from_parts(&by_key).unwrap();
            assert_eq!(conv.to_bytes(), expected.to_bytes(), "{id}");
        }
        // What the engine cannot read stays as it was.
        assert_eq!(
            parts("damaged").into_iter().collect::<Vec<_>>(),
            [(WHOLE_STATE.to_string(), vec![1, 2])]
        );
    }
}
