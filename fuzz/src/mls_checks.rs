//! The MLS entry points that parse inbound bytes, run on the fixed fixture group, with their
//! properties: no panic, never `MlsError::Internal`, and nothing forged gets through (what
//! succeeds is attributed to the fixture's real sender).
//!
//! Inputs start with a mode byte: even = the rest is the message; odd = the next byte picks
//! one of the fixture's valid messages and the rest patches it ([`crate::mutate::patch`]).

use witan::mls::{Group, Identity, MemberId, MlsError, validate_key_package};

use crate::mls_fixture::{self, MlsFixture};
use crate::mutate::{patch, pick};

fn identity(seed: u8) -> MemberId {
    Identity::from_secret(&[seed; 32])
        .expect("fixture identity")
        .member_id()
}

/// The bytes an input stands for, given the valid messages to patch.
pub fn input(data: &[u8], valid: &[Vec<u8>]) -> Vec<u8> {
    match data {
        [mode, selector, rest @ ..] if mode % 2 == 1 => match pick(valid, *selector) {
            Some(base) => patch(base, rest),
            None => rest.to_vec(),
        },
        [_, rest @ ..] => rest.to_vec(),
        [] => Vec::new(),
    }
}

fn no_internal<T>(r: &Result<T, MlsError>) {
    if let Err(MlsError::Internal(e)) = r {
        panic!("internal MLS error on inbound bytes: {e}");
    }
}

/// Seeds: each valid message raw (mode 0) and unpatched (mode 1, selector i).
pub fn seeds(valid: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = valid.iter().map(|m| [&[0u8][..], m].concat()).collect();
    v.extend((0..valid.len()).map(|i| vec![1, i as u8]));
    v
}

/// `validate_key_package` with an empty store.
pub fn key_package(data: &[u8]) {
    let fx = mls_fixture::get();
    let bytes = input(data, std::slice::from_ref(&fx.key_package));
    let kv = witan::mls::MemoryKv::new();
    let p = witan::mls::MlsProvider::new(&kv);
    let r = validate_key_package(&p, &bytes);
    crate::debug(|| {
        format!(
            "validate_key_package: {:?}",
            r.as_ref().map(|i| i.member_id)
        )
    });
    no_internal(&r);
    if let Ok(info) = r {
        assert_eq!(info.member_id, MemberId::from_public_key(&info.public_key));
    }
}

/// `Group::message_header` (group id and epoch of an MLS message, unauthenticated).
pub fn message_epoch(data: &[u8]) {
    let fx = mls_fixture::get();
    let r = Group::message_header(&input(data, &fx.messages()));
    crate::debug(|| format!("message_header: {r:?}"));
    no_internal(&r);
}

/// `Group::decrypt` as bob.
pub fn decrypt(data: &[u8]) {
    let fx: &MlsFixture = mls_fixture::get();
    let bytes = input(data, &fx.messages());
    let r = mls_fixture::with_bob(|p, g| g.decrypt(p, &bytes));
    crate::debug(|| format!("decrypt: {:?}", r.as_ref().map(|d| d.sender)));
    no_internal(&r);
    if let Ok(d) = r {
        assert_eq!(d.sender, identity(1), "decrypted a message not from alice");
        assert_eq!(d.plaintext, b"hello from alice", "forged plaintext");
    }
}

/// `Group::stage_commit` as bob, then `merge_staged` of what staged.
pub fn stage_commit(data: &[u8]) {
    let fx = mls_fixture::get();
    let bytes = input(data, &fx.messages());
    mls_fixture::with_bob(|p, g| {
        let r = g.stage_commit(p, &bytes);
        crate::debug(|| format!("stage_commit: {:?}", r.as_ref().map(|s| s.committer)));
        no_internal(&r);
        if let Ok(staged) = r {
            assert_eq!(staged.committer, identity(1), "commit not from alice");
            let merged = g.merge_staged(p, staged);
            no_internal(&merged);
        }
    });
}

/// `Group::join` as carol.
pub fn join(data: &[u8]) {
    let fx = mls_fixture::get();
    let bytes = input(data, &fx.messages());
    let r =
        mls_fixture::with_carol(|p| Group::join(p, &bytes, mls_fixture::GID).map(|g| g.members()));
    crate::debug(|| format!("join: {r:?}"));
    no_internal(&r);
    if let Ok(members) = r {
        assert!(members.contains(&identity(3)), "joined without carol");
        assert!(members.contains(&identity(1)), "joined without alice");
    }
}
