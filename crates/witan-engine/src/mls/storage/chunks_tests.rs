//! Tests of the chunked rows: boundaries that survive edits, headers, and checks on reading.
use super::*;

/// Pseudo-random bytes (secrets look like this).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn chunks_join_back_to_the_value_within_their_bounds() {
    let value = noise(60_000, 1);
    let pieces = split(&value);
    assert_eq!(pieces.concat(), value);
    assert!(pieces.len() > 10, "{} chunks", pieces.len());
    let (last, body) = pieces.split_last().unwrap();
    assert!(
        body.iter()
            .all(|c| (MIN_CHUNK..=MAX_CHUNK).contains(&c.len()))
    );
    assert!(last.len() <= MAX_CHUNK);
    assert!(split(&[]).is_empty());
}

#[test]
fn an_edit_changes_only_the_chunks_around_it() {
    let value = noise(30_000, 2);
    let mut edited = value.clone();
    // A sender's ratchet moves: a few bytes change and one is inserted.
    edited[15_000..15_040].copy_from_slice(&noise(40, 3));
    edited.insert(15_041, 0);
    let before = Header::of(&split(&value));
    let after = Header::of(&split(&edited));
    let new = after.chunks.iter().filter(|h| !before.chunks.contains(h));
    assert!(new.count() <= 2, "{before:?} → {after:?}");
    assert_eq!(after.len, edited.len());
}

#[test]
fn headers_round_trip_and_name_their_value() {
    let value = noise(20_000, 4);
    let pieces = split(&value);
    let header = Header::of(&pieces);
    let row = header.encode().unwrap();
    assert_eq!(row[0], HEADER);
    assert_eq!(Header::decode(&row).unwrap(), Some(header.clone()));
    // A row stored whole (a codec value) is not a header.
    assert_eq!(Header::decode(&[crate::codec::MAGIC, 1, 2]).unwrap(), None);
    assert_eq!(Header::decode(&[]).unwrap(), None);
    let fetch = |h: &ChunkHash| -> Result<Option<Vec<u8>>, String> {
        Ok(pieces.iter().find(|p| hash(p) == *h).map(|p| p.to_vec()))
    };
    assert_eq!(header.assemble(fetch).unwrap(), value);
}

#[test]
fn damaged_headers_and_chunks_are_errors() {
    let value = noise(10_000, 5);
    let pieces = split(&value);
    let header = Header::of(&pieces);
    let row = header.encode().unwrap();
    assert!(Header::decode(&row[..row.len() - 1]).is_err());
    assert!(Header::decode(&row[..5]).is_err());
    let mut huge = row.clone();
    huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(Header::decode(&huge).is_err());
    // A missing chunk, a chunk that is not its hash's, a wrong length.
    assert!(header.assemble(|_| Ok(None)).is_err());
    assert!(header.assemble(|_| Ok(Some(vec![0; 10]))).is_err());
    let short = Header {
        len: header.len + 1,
        ..header.clone()
    };
    let fetch = |h: &ChunkHash| -> Result<Option<Vec<u8>>, String> {
        Ok(pieces.iter().find(|p| hash(p) == *h).map(|p| p.to_vec()))
    };
    assert!(short.assemble(fetch).is_err());
}
