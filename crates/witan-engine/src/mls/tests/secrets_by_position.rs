//! A group's message secrets are stored with struct fields by position (`codec::FIELDS`):
//! every part of them — ratchets, keys kept for late messages, past epochs — reads back, and
//! rows written with names by an earlier version still do.

use super::*;
use crate::mls::storage::secret_rows::tests_hook;

/// The bytes of `member`'s message-secrets rows (head and pieces), joined.
fn secret_bytes(member: &Member) -> Vec<u8> {
    member
        .kv
        .0
        .iter()
        .filter(|(k, _)| k.starts_with(b"mls1/message_secrets/"))
        .flat_map(|(_, v)| v.clone())
        .collect()
}

fn contains(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

#[test]
fn secrets_stored_by_position_keep_late_keys_and_past_epochs_across_reloads() {
    let (mut a, mut b, mut c) = three_members();
    let from_a: Vec<Vec<u8>> = (0..3u8).map(|i| a.encrypt(&[i])).collect();
    let from_c = c.encrypt(b"c0");
    // b reads a's first message, then the third: the key of the second stays kept for it.
    assert_eq!(b.decrypt(&from_a[0]).unwrap().plaintext, vec![0]);
    assert_eq!(b.decrypt(&from_a[2]).unwrap().plaintext, vec![2]);
    assert_eq!(b.decrypt(&from_c).unwrap().plaintext, b"c0".to_vec());
    // A commit moves the group on; b keeps the epoch before it.
    let mut d = Member::new(4);
    let out = a.commit(&[d.key_package()], &[]);
    a.merge_pending();
    b.apply(&out.commit);
    assert_eq!(b.epoch(), 2);
    let stored = secret_bytes(&b);
    for field in [
        "ratchet_head",
        "past_secrets",
        "past_epoch_trees",
        "secret_tree",
    ] {
        assert!(!contains(&stored, field), "{field} written in the rows");
    }
    assert!(
        contains(&stored, "DecryptionRatchet"),
        "variants keep their names"
    );
    // Every operation below reloads the group from the rows alone.
    assert_eq!(b.decrypt(&from_a[1]).unwrap().plaintext, vec![1]);
    assert!(b.decrypt(&from_a[1]).is_err(), "a late key is used once");
    assert!(
        b.decrypt(&from_a[0]).is_err(),
        "a read message's key is gone"
    );
    let now = a.encrypt(b"epoch 2");
    assert_eq!(b.decrypt(&now).unwrap().plaintext, b"epoch 2".to_vec());
    d.join(&out.welcome.expect("welcome")).unwrap();
    assert_eq!(
        d.decrypt(&b.encrypt(b"hi d")).unwrap().plaintext,
        b"hi d".to_vec()
    );
}

#[test]
fn secrets_written_with_names_before_are_read_and_rewritten_by_position() {
    tests_hook::NAMED.set(true);
    let (mut a, mut b, _c) = three_members();
    let first = a.encrypt(b"one");
    assert_eq!(b.decrypt(&first).unwrap().plaintext, b"one".to_vec());
    let late = a.encrypt(b"late");
    let next = a.encrypt(b"next");
    assert_eq!(b.decrypt(&next).unwrap().plaintext, b"next".to_vec());
    let named = secret_bytes(&b);
    assert!(contains(&named, "ratchet_head"));
    tests_hook::NAMED.set(false);
    assert_eq!(b.decrypt(&late).unwrap().plaintext, b"late".to_vec());
    let rewritten = secret_bytes(&b);
    assert!(!contains(&rewritten, "ratchet_head"));
    assert!(rewritten.len() < named.len());
    assert!(
        b.decrypt(&next).is_err(),
        "the read message's key stayed gone"
    );
    assert_eq!(
        b.decrypt(&a.encrypt(b"more")).unwrap().plaintext,
        b"more".to_vec()
    );
}
