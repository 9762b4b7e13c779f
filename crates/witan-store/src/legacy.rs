//! The one-time migration of rows written as JSON by versions before the row codec (schema
//! version 5): OpenMLS rows (`mls_kv`) and engine states (`engine_state`). Each such row is
//! transcoded to the codec (`witan_engine::codec::transcode_json`), which keeps JSON's data
//! model, so it reads back as the value JSON would have given; afterwards nothing reads JSON.
//!
//! A row that is neither codec nor JSON is left as it is: it is as damaged as before, and
//! reading it reports that, whereas failing here would keep the whole database from opening.

use rusqlite::Connection;
use witan_engine::codec;

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

    /// What the JSON storage of earlier versions wrote for `rows` (in the codec).
    fn as_json(rows: &MemoryKv) -> Vec<(Vec<u8>, Vec<u8>)> {
        rows.0
            .iter()
            .map(|(k, v)| {
                let value: serde_json::Value = codec::from_slice(v).unwrap();
                (k.clone(), serde_json::to_vec(&value).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_group_stored_as_json_loads_after_the_migration() {
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
}
