//! Large parts in chunks: what is written, what is kept apart, and damage refused.

use super::*;
use crate::test_support::memory_db;

fn noisy(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn chunk_rows(step: &Step<'_>) -> i64 {
    step.tx
        .query_row("SELECT COUNT(*) FROM engine_chunks", [], |r| r.get(0))
        .unwrap()
}

fn parts(step: &Step<'_>, id: &str) -> Vec<(String, Vec<u8>)> {
    step.load_parts(id).unwrap()
}

#[test]
fn chunks_fit_a_page_and_join_to_the_value() {
    let value = noisy(100_000, 3);
    let pieces: Vec<&[u8]> = split(&value).collect();
    assert!(pieces.len() > 20, "{} chunks", pieces.len());
    assert!(pieces.iter().all(|c| c.len() <= MAX_CHUNK));
    assert_eq!(pieces.concat(), value);
}

#[test]
fn a_part_moves_between_whole_and_chunks_without_leaving_rows_behind() {
    let mut db = memory_db();
    let step = db.step().unwrap();
    step.save_conversation("a", None).unwrap();
    let large = noisy(60_000, 1);
    step.save_part("a", "round", &large).unwrap();
    let stored = chunk_rows(&step);
    assert!(stored > 10);
    assert_eq!(parts(&step, "a"), [("round".to_string(), large.clone())]);
    // The same value again writes nothing new.
    step.save_part("a", "round", &large).unwrap();
    assert_eq!(chunk_rows(&step), stored);
    // A small value is stored whole and its chunks go.
    step.save_part("a", "round", b"small").unwrap();
    assert_eq!(chunk_rows(&step), 0);
    assert_eq!(
        parts(&step, "a"),
        [("round".to_string(), b"small".to_vec())]
    );
    step.save_part("a", "round", &large).unwrap();
    step.delete_part("a", "round").unwrap();
    assert_eq!(chunk_rows(&step), 0);
    assert!(parts(&step, "a").is_empty());
}

#[test]
fn one_change_rewrites_the_chunks_around_it_and_drops_those_it_replaced() {
    let mut db = memory_db();
    let step = db.step().unwrap();
    step.save_conversation("a", None).unwrap();
    let mut value = noisy(200_000, 2);
    step.save_part("a", "ballots", &value).unwrap();
    let before: BTreeSet<i64> = step
        .stored_chunks("a", "ballots")
        .unwrap()
        .into_iter()
        .collect();
    value.splice(90_000..90_010, noisy(300, 7));
    step.save_part("a", "ballots", &value).unwrap();
    let after: BTreeSet<i64> = step
        .stored_chunks("a", "ballots")
        .unwrap()
        .into_iter()
        .collect();
    let new = after.difference(&before).count();
    assert!((1..=3).contains(&new), "{new} new chunks");
    assert_eq!(chunk_rows(&step), after.len() as i64);
    assert_eq!(parts(&step, "a"), [("ballots".to_string(), value)]);
}

#[test]
fn equal_parts_of_two_conversations_keep_their_own_chunks() {
    let mut db = memory_db();
    let step = db.step().unwrap();
    let value = noisy(30_000, 4);
    for id in ["a", "b"] {
        step.save_conversation(id, None).unwrap();
        step.save_part(id, "core", &value).unwrap();
    }
    let each = step.stored_chunks("a", "core").unwrap().len() as i64;
    assert_eq!(chunk_rows(&step), 2 * each);
    step.delete_part("a", "core").unwrap();
    assert_eq!(parts(&step, "b"), [("core".to_string(), value.clone())]);
    // Deleting a conversation takes its chunks with it.
    step.tx
        .execute("DELETE FROM conversations WHERE id = 'b'", [])
        .unwrap();
    assert_eq!(chunk_rows(&step), 0);
}

#[test]
fn a_chunk_id_taken_by_other_bytes_stores_the_part_whole() {
    let mut db = memory_db();
    let step = db.step().unwrap();
    step.save_conversation("a", None).unwrap();
    let value = noisy(40_000, 5);
    let third = split(&value).nth(2).unwrap();
    step.tx
        .execute(
            "INSERT INTO engine_chunks (id, conversation_id, value) VALUES (?1, 'a', x'00')",
            [Owner::Part {
                conversation: "a",
                part: "round",
            }
            .chunk_id(third)],
        )
        .unwrap();
    step.save_part("a", "round", &value).unwrap();
    // Only the row that was there before remains: the part is whole in its own row.
    assert_eq!(chunk_rows(&step), 1);
    assert!(step.stored_chunks("a", "round").unwrap().is_empty());
    assert_eq!(parts(&step, "a"), [("round".to_string(), value)]);
}

#[test]
fn a_damaged_list_or_a_missing_chunk_is_corrupt() {
    let mut db = memory_db();
    let step = db.step().unwrap();
    step.save_conversation("a", None).unwrap();
    step.save_part("a", "round", &noisy(40_000, 6)).unwrap();
    step.tx
        .execute(
            "DELETE FROM engine_chunks WHERE rowid IN (SELECT rowid FROM engine_chunks LIMIT 1)",
            [],
        )
        .unwrap();
    assert!(matches!(step.load_parts("a"), Err(StoreError::Corrupt(_))));
    step.tx
        .execute(
            "UPDATE engine_state SET value = x'010203' WHERE part = 'round'",
            [],
        )
        .unwrap();
    assert!(matches!(step.load_parts("a"), Err(StoreError::Corrupt(_))));
    assert!(matches!(
        step.save_part("a", "round", b"x"),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn one_change_in_a_large_tree_row_logs_a_few_pages_not_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let wal = format!("{}-wal", crate::test_support::db_path(&dir));
    let mut db = crate::test_support::file_db(&dir);
    let key = b"mls1/tree/{\"value\":{\"vec\":[1]}}".to_vec();
    let mut tree = noisy(200_000, 8);
    let step = db.step().unwrap();
    step.apply_mls_changes(&[(key.clone(), Some(tree.clone()))])
        .unwrap();
    step.commit().unwrap();
    let step = db.read().unwrap();
    step.tx
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(step);
    // A commit blanks a leaf (the row gets shorter) and renews one direct path: a few
    // places of the tree. (A change that keeps the row's length SQLite writes in place.)
    for at in [20_000, 110_000, 180_000] {
        tree[at..at + 64].copy_from_slice(&noisy(64, at as u32));
    }
    tree.drain(150_000..150_300);
    let step = db.step().unwrap();
    step.apply_mls_changes(&[(key.clone(), Some(tree.clone()))])
        .unwrap();
    step.commit().unwrap();
    let logged = std::fs::metadata(&wal).unwrap().len();
    assert!(
        logged < 32 * 4096,
        "four changes in a 200 KB tree logged {logged} bytes"
    );
    let step = db.read().unwrap();
    assert_eq!(step.mls_get(&key).unwrap(), Some(tree));
}

#[test]
fn a_tree_row_is_chunked_when_large_and_other_rows_never_are() {
    let mut db = memory_db();
    let step = db.step().unwrap();
    let rows = |step: &Step<'_>| -> i64 {
        step.tx
            .query_row("SELECT COUNT(*) FROM mls_chunks", [], |r| r.get(0))
            .unwrap()
    };
    let tree = b"mls1/tree/\"g\"".to_vec();
    let secrets = b"mls1/message_secrets/\"g\"".to_vec();
    let large = noisy(50_000, 10);
    step.apply_mls_changes(&[
        (tree.clone(), Some(large.clone())),
        (secrets.clone(), Some(large.clone())),
    ])
    .unwrap();
    let chunks = rows(&step);
    assert!(chunks > 10);
    let whole: i64 = step
        .tx
        .query_row(
            "SELECT chunked FROM mls_kv WHERE key = ?1",
            [&secrets],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(whole, 0);
    assert_eq!(step.mls_get(&tree).unwrap(), Some(large.clone()));
    assert_eq!(step.mls_get(&secrets).unwrap(), Some(large.clone()));
    // Small again: stored whole, chunks gone; large, then deleted: chunks gone.
    step.apply_mls_changes(&[(tree.clone(), Some(b"small".to_vec()))])
        .unwrap();
    assert_eq!(rows(&step), 0);
    assert_eq!(step.mls_get(&tree).unwrap(), Some(b"small".to_vec()));
    step.apply_mls_changes(&[(tree.clone(), Some(large)), (tree.clone(), None)])
        .unwrap();
    assert_eq!(rows(&step), 0);
    assert_eq!(step.mls_get(&tree).unwrap(), None);
}
