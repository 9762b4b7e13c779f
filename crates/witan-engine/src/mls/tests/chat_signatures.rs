//! A chat's signature is checked once ever, so the client's memo of valid signatures
//! neither looks it up nor keeps it (`WitanCrypto::read_once`; that the check itself still
//! runs inside is the crypto's own test).

use super::*;

#[test]
fn a_chat_read_through_the_kept_crypto_leaves_the_memo_of_signatures_as_it_was() {
    let mut members = group_of(3);
    let mut b = members.remove(1);
    let a = &mut members[0];
    let chats: Vec<Vec<u8>> = (0..5u8).map(|i| a.encrypt(&[i])).collect();
    let cache = GroupCache::keeping(true);
    let memo = crate::mls::GroupLoans::kept_crypto(&cache)
        .unwrap()
        .signatures();
    let before = (memo.len(), memo.hits());
    for chat in &chats {
        assert!(!b.decrypt_deferred(&cache, chat).is_empty());
    }
    assert_eq!((memo.len(), memo.hits()), before, "the memo is as it was");
    // The scope closed: a key package's signatures are remembered again.
    let p = MlsProvider::with_group_cache(&b.kv, &cache);
    let kp = crate::mls::new_key_package(&p, &Identity::from_secret(&[40; 32]).unwrap()).unwrap();
    crate::mls::validate_key_package(&p, &kp).unwrap();
    if crate::mls::Layer::Signatures.enabled() {
        assert_eq!(memo.len(), before.0 + 2);
    }
}
