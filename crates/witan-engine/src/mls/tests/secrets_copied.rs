//! A write of message secrets deferred to the end of a step (a client's receive step; a send
//! so deferred here too) copies the last encoding and encodes afresh only the ratchets that
//! advanced (`codec::pieces`): every kind of message ends in the secrets a fresh encoding
//! writes. (In a debug build every copy is also
//! checked against a fresh encoding as it is made: `storage::secret_rows::check_copy`.)

use super::*;
use crate::mls::storage::secret_rows::{tests_hook, without_versions};

/// Encrypts with the group kept in `cache`, its secrets deferred and then written back, as a
/// client's send step does.
fn encrypt_deferred(m: &mut Member, cache: &GroupCache, text: &[u8]) -> Vec<u8> {
    let p = MlsProvider::deferring_message_secrets(&m.kv, cache);
    let out = CachedGroup::load(&p, GID)
        .unwrap()
        .unwrap()
        .encrypt(&p, &m.id, text)
        .unwrap();
    let changes = p.storage().take_changes();
    drop(p);
    m.kv.apply(changes);
    write_deferred_into(cache, &mut m.kv);
    out
}

#[test]
fn every_kind_of_message_read_one_per_step_ends_in_the_rows_a_fresh_encoding_writes() {
    let mut members = group_of(12);
    let mut rest = members.split_off(1);
    let mut a = members.remove(0);
    let c = &mut rest[1];
    let from_a: Vec<Vec<u8>> = (0..4u8).map(|i| a.encrypt(&[i])).collect();
    let from_c: Vec<Vec<u8>> = (0..2u8).map(|i| c.encrypt(&[10 + i])).collect();
    let b = &mut rest[0];
    // A twin of bob reads the same messages from the rows alone: every write fresh.
    let mut twin = Member {
        id: Identity::from_secret(&[2; 32]).unwrap(),
        kv: b.kv.clone(),
    };
    let copied_before = tests_hook::COPIED.get();
    let cache = GroupCache::keeping(true);
    // a's first (its ratchet is derived), second, fourth before third (a late key is kept),
    // c's first and second, interleaved with bob's own sends.
    let order = [
        &from_a[0], &from_a[1], &from_c[0], &from_a[3], &from_c[1], &from_a[2],
    ];
    for (i, m) in order.iter().enumerate() {
        let copy = b.decrypt_deferred(&cache, m);
        assert!(!copy.is_empty());
        twin.decrypt(m).unwrap();
        if i % 2 == 1 {
            encrypt_deferred(b, &cache, b"from bob");
            twin.encrypt(b"from bob");
        }
        // The same secrets (the rows' tables of names may number them in another order).
        assert!(
            without_versions(&written_afresh(&b.kv)) == without_versions(&written_afresh(&twin.kv)),
            "rows differ after message {i}"
        );
    }
    let copied = tests_hook::COPIED.get() - copied_before;
    // Fresh: a's first, c's first, bob's first send; copied: the rest.
    assert!(copied >= 5, "{copied} encodings copied");
    // A commit: then a message of the epoch before (a past epoch's ratchet: fresh) and of
    // the new one. (The twin no longer serves: OpenMLS stamps a past epoch with the clock.)
    let late = a.encrypt(b"late");
    let out = a.commit(&[], &[rest[5].mid()]);
    a.merge_pending();
    let b = &mut rest[0];
    b.apply(&out.commit);
    let now: Vec<Vec<u8>> = (0..3u8).map(|i| a.encrypt(&[20 + i])).collect();
    let copied_before = tests_hook::COPIED.get();
    let cache = GroupCache::keeping(true);
    for m in [&late, &now[0], &now[1], &now[2]] {
        b.decrypt_deferred(&cache, m);
        assert!(without_versions(&b.kv) == without_versions(&written_afresh(&b.kv)));
    }
    assert!(tests_hook::COPIED.get() - copied_before >= 2);
    // And the rows alone read on: the next message opens, a read one does not.
    let next = a.encrypt(b"next");
    assert_eq!(b.decrypt(&next).unwrap().plaintext, b"next".to_vec());
    assert!(b.decrypt(&now[1]).is_err());
}

/// `kv` with the group's message secrets read and written again afresh (no memory to copy).
fn written_afresh(kv: &MemoryKv) -> MemoryKv {
    let mut out = kv.clone();
    let p = MlsProvider::new(&out);
    Group::load(&p, GID)
        .unwrap()
        .unwrap()
        .rewrite_message_secrets(&p)
        .unwrap();
    let changes = p.storage().take_changes();
    drop(p);
    out.apply(changes);
    out
}
