//! Ed25519 public keys decoded once: a bounded, process-wide map from a key's 32 bytes to
//! its decoded point, shared by the single checks (`super::crypto`) and the batches
//! (`super::batch`). Decoding is a function of the bytes, so the map only saves work.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ed25519_dalek::VerifyingKey;

use super::switches::Layer;

/// Keys kept at most; a full map starts over (a client meets few distinct peers).
const MAX_KEYS: usize = 4096;

/// `bytes` decoded as an Ed25519 public key (`None`: not a valid key), through the map of
/// keys decoded so far unless [`Layer::Keys`] is off.
pub(super) fn verifying_key(bytes: &[u8]) -> Option<VerifyingKey> {
    static KEYS: OnceLock<Mutex<HashMap<[u8; 32], VerifyingKey>>> = OnceLock::new();
    let bytes: &[u8; 32] = bytes.try_into().ok()?;
    if !Layer::Keys.enabled() {
        return VerifyingKey::from_bytes(bytes).ok();
    }
    let keys = KEYS.get_or_init(Mutex::default);
    // A panic elsewhere while holding the lock leaves a map of valid keys: keep using it.
    let mut keys = keys.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(key) = keys.get(bytes) {
        return Some(*key);
    }
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    if keys.len() >= MAX_KEYS {
        keys.clear();
    }
    keys.insert(*bytes, key);
    Some(key)
}
