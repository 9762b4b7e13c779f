//! Stored state read back: a row of the database is input too (a damaged disk, a file
//! tampered with). Decoding never panics, and what decodes is stable.
//!
//! Inputs start with a mode byte (`mode % 4`):
//! - 0: the rest is a value in the row codec, decoded as any value; what decodes encodes to
//!   bytes that decode to the same value;
//! - 1: the rest patches ([`crate::mutate::patch`]) the stored state of a real conversation
//!   (its parts in one value, `Conversation::to_bytes`), decoded as the engine reads its
//!   parts; what decodes re-encodes to bytes that decode to the same encoding;
//! - 2: the next byte picks one of bob's MLS rows in the fixture group, and the rest patches
//!   it; the group is then loaded over the damaged rows (never `Internal`, never a panic) and,
//!   if it loads, made to decrypt alice's message;
//! - 3: as 2, but the rest replaces the row outright.

use std::sync::OnceLock;

use witan::codec;
use witan::mls::{Group, Identity, MemoryKv, MlsError, MlsProvider};
use witan::protocol::{Conversation, Ctx, Settings};

use crate::mls_fixture::{self, GID};
use crate::mutate::{patch, pick};

/// The encoded state of a freshly created conversation.
fn conversation_state() -> &'static [u8] {
    static STATE: OnceLock<Vec<u8>> = OnceLock::new();
    STATE.get_or_init(|| {
        let kv = MemoryKv::new();
        let provider = MlsProvider::new(&kv);
        let identity = Identity::from_secret(&[9; 32]).expect("fixture identity");
        let ctx = Ctx {
            provider: &provider,
            identity: &identity,
            now_ms: 1_700_000_000_000,
            defer_governance: false,
        };
        let (conv, _) =
            Conversation::create(&ctx, "fuzz-conversation", Settings::default()).expect("create");
        conv.to_bytes()
    })
}

/// Seeds: the conversation state unpatched (mode 1) and each MLS row unpatched (mode 2).
pub fn seeds() -> Vec<Vec<u8>> {
    let rows = mls_fixture::get().bob.0.len();
    let mut v = vec![[&[0u8][..], conversation_state()].concat(), vec![1]];
    v.extend((0..rows).map(|i| vec![2, i as u8]));
    v
}

pub fn check(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => any_value(rest),
        1 => conversation(&patch(conversation_state(), rest)),
        m => mls_row(m == 3, rest),
    }
}

fn any_value(bytes: &[u8]) {
    let decoded = codec::from_slice::<serde_json::Value>(bytes);
    crate::debug(|| format!("any value: {decoded:?}"));
    if let Ok(value) = decoded {
        let again = codec::to_vec(&value).expect("a decoded value encodes");
        let back: serde_json::Value = codec::from_slice(&again).expect("its encoding decodes");
        assert_eq!(back, value);
    }
}

fn conversation(bytes: &[u8]) {
    let decoded = Conversation::from_bytes(bytes);
    crate::debug(|| format!("conversation: {:?}", decoded.as_ref().map(|c| c.id())));
    if let Ok(conv) = decoded {
        let encoded = conv.to_bytes();
        let back = Conversation::from_bytes(&encoded).expect("its encoding decodes");
        assert_eq!(back.to_bytes(), encoded);
    }
}

fn mls_row(replace: bool, data: &[u8]) {
    let fx = mls_fixture::get();
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let keys: Vec<&Vec<u8>> = fx.bob.0.keys().collect();
    let Some(key) = pick(&keys, *selector) else {
        return;
    };
    let mut rows = fx.bob.clone();
    let damaged = if replace {
        rest.to_vec()
    } else {
        patch(&rows.0[*key], rest)
    };
    rows.0.insert((*key).clone(), damaged);
    let p = MlsProvider::new(&rows);
    let loaded = Group::load(&p, GID);
    crate::debug(|| {
        format!(
            "load over a damaged row: {:?}",
            loaded.as_ref().map(|g| g.is_some())
        )
    });
    if let Err(MlsError::Internal(e)) = &loaded {
        panic!("internal MLS error on a stored row: {e}");
    }
    if let Ok(Some(mut group)) = loaded {
        let r = group.decrypt(&p, &fx.application);
        if let Err(MlsError::Internal(e)) = &r {
            panic!("internal MLS error after loading a stored row: {e}");
        }
    }
}
