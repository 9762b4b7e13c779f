//! [`SignatureMemo`]: the MLS signatures one client has already found valid, so that checking
//! one again costs a hash instead of an Ed25519 verification (switched off with
//! [`Layer::Signatures`]).
//!
//! A client checks some signatures several times: a joiner's key package is validated when
//! its request arrives, when it is proposed, when a candidate adds it, and again inside
//! every staging of the commit that carries it (the leader's own candidate, the judging,
//! the certified apply) — two signatures each time. A verdict is a function of the key, the
//! signature and the message, and only the strict check's `true` is remembered, so a memo
//! hit gives what the check would give; a miss checks as before. A chat's signature is
//! checked once ever, so chats are left out (`WitanCrypto::read_once`): they would only push
//! out the signatures that do come again.
//!
//! The memo belongs to one client (it lives in that client's `KeptCrypto`, in its
//! [`super::GroupCache`]): a process running many clients — the bench, the simulator — must
//! not let one client skip a check because another made it. It is bounded: the oldest entry
//! goes when it is full, and messages longer than [`MAX_REMEMBERED_MESSAGE`] are neither
//! looked up nor remembered (their hash would cost more than the check it might save).

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use super::switches::Layer;

/// Signatures a client's memo remembers at most (32 bytes each, about 100 KiB with the
/// set's overhead); a memo can be made smaller ([`SignatureMemo::with_capacity`]).
pub const MAX_REMEMBERED: usize = 2048;

/// Longest signed message the memo takes (key packages, leaves and votes are far shorter; a
/// welcome's sync, tens of kilobytes, is checked once).
pub const MAX_REMEMBERED_MESSAGE: usize = 16 * 1024;

/// The digest a remembered signature is kept under ([`signature_digest`]).
pub type MemoKey = [u8; 32];

/// The digest a checked signature is remembered under, here and in the vote checks' memory
/// (`super::checked`): SHA-256 over a label and the key, the message and the signature,
/// each with its length.
pub fn signature_digest(key: &[u8], message: &[u8], signature: &[u8]) -> MemoKey {
    let mut h = Sha256::new();
    h.update(b"witan checked signature");
    for part in [key, message, signature] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// Valid signatures one client has checked (see the module doc).
#[derive(Debug)]
pub struct SignatureMemo {
    // A mutex, not a cell: OpenMLS wants its crypto `Sync`, and the crypto holds the memo.
    inner: Mutex<Remembered>,
    capacity: usize,
}

impl Default for SignatureMemo {
    fn default() -> Self {
        SignatureMemo::with_capacity(MAX_REMEMBERED)
    }
}

#[derive(Debug, Default)]
struct Remembered {
    known: HashSet<MemoKey>,
    /// The entries in the order they came, for eviction.
    order: VecDeque<MemoKey>,
    hits: u64,
}

impl SignatureMemo {
    /// A memo of at most `capacity` signatures (at most [`MAX_REMEMBERED`]).
    pub fn with_capacity(capacity: usize) -> Self {
        SignatureMemo {
            inner: Mutex::default(),
            capacity: capacity.min(MAX_REMEMBERED),
        }
    }

    /// The key `(public_key, signature, message)` is remembered under, or `None` when the memo
    /// does not take it (too long a message, or [`Layer::Signatures`] off).
    pub fn key(public_key: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> Option<MemoKey> {
        if message.len() > MAX_REMEMBERED_MESSAGE || !Layer::Signatures.enabled() {
            return None;
        }
        Some(signature_digest(public_key, message, signature))
    }

    fn lock(&self) -> MutexGuard<'_, Remembered> {
        // Whatever a panic left behind is a set of valid signatures: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the signature under `key` was found valid before.
    pub fn knows(&self, key: &MemoKey) -> bool {
        let mut r = self.lock();
        let known = r.known.contains(key);
        if known {
            r.hits = r.hits.saturating_add(1);
        }
        known
    }

    /// Remembers that the signature under `key` is valid (the strict check said so).
    pub fn remember(&self, key: MemoKey) {
        let mut r = self.lock();
        if !r.known.insert(key) {
            return;
        }
        r.order.push_back(key);
        if r.order.len() > self.capacity
            && let Some(oldest) = r.order.pop_front()
        {
            r.known.remove(&oldest);
        }
    }

    /// Signatures remembered now.
    pub fn len(&self) -> usize {
        self.lock().known.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the memo spared since it was made.
    pub fn hits(&self) -> u64 {
        self.lock().hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> MemoKey {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k
    }

    #[test]
    fn a_remembered_signature_is_known_and_counted_as_a_hit() {
        let memo = SignatureMemo::default();
        assert!(!memo.knows(&key(1)));
        memo.remember(key(1));
        memo.remember(key(1));
        assert!(memo.knows(&key(1)));
        assert!(!memo.knows(&key(2)));
        assert_eq!((memo.len(), memo.hits()), (1, 1));
    }

    #[test]
    fn a_full_memo_forgets_its_oldest_entry_first() {
        let memo = SignatureMemo::default();
        for i in 0..=MAX_REMEMBERED as u32 {
            memo.remember(key(i));
        }
        assert_eq!(memo.len(), MAX_REMEMBERED);
        assert!(!memo.knows(&key(0)));
        assert!(memo.knows(&key(1)));
        assert!(memo.knows(&key(MAX_REMEMBERED as u32)));
        let small = SignatureMemo::with_capacity(2);
        for i in 0..3 {
            small.remember(key(i));
        }
        assert_eq!(small.len(), 2);
        assert!(!small.knows(&key(0)));
    }

    #[test]
    fn keys_bind_key_signature_and_message_and_skip_long_messages() {
        let (pk, sig) = ([1u8; 32], [2u8; 64]);
        if !Layer::Signatures.enabled() {
            assert_eq!(SignatureMemo::key(&pk, &sig, b"m"), None);
            return;
        }
        let k = SignatureMemo::key(&pk, &sig, b"m");
        assert!(k.is_some());
        assert_ne!(k, SignatureMemo::key(&[3u8; 32], &sig, b"m"));
        assert_ne!(k, SignatureMemo::key(&pk, &[3u8; 64], b"m"));
        assert_ne!(k, SignatureMemo::key(&pk, &sig, b"n"));
        let long = vec![0u8; MAX_REMEMBERED_MESSAGE + 1];
        assert_eq!(SignatureMemo::key(&pk, &sig, &long), None);
    }
}
