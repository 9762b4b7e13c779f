//! Sealing keys: an AES-128-GCM key per epoch, taken from the epoch's MLS exporter secret, that
//! encrypts the governance messages which carry their own signature (`wire::Sealed`).
//!
//! Only the epoch's members can derive the key, so a sealed packet is as private to the group
//! as an MLS application message. It is not authenticated to a sender: anyone holding the key
//! could seal bytes, so what a sealed packet carries must prove its author by its own
//! signature (the engine checks it). Unlike MLS application messages, sealed packets of one
//! epoch share one key, kept until the epoch is [`crate::mls::MAX_PAST_EPOCHS`] behind: what
//! they give up is forward secrecy within that window, for votes only — never for chat.
//!
//! The nonce is derived from the key and the plaintext (a keyed hash), so sealing needs no
//! randomness and keeps the engine deterministic; two different plaintexts get the same
//! nonce only on a SHA-256 collision, and the same plaintext sealed twice is the same packet.

use openmls::prelude::{AeadType, OpenMlsCrypto, OpenMlsProvider};
use sha2::{Digest as _, Sha256};
use witan_wire::{self as wire, limits::SEALED_NONCE_BYTES};

use super::error::MlsError;
use super::group::Group;
use super::provider::MlsProvider;

/// Exporter label of the sealing key.
const SEAL_LABEL: &str = "witan sealed";
/// Domain of the nonce derivation and of the associated data.
const SEAL_DOMAIN: &[u8] = b"witan sealed v1";
/// Bytes of an AES-128-GCM key.
pub const SEAL_KEY_BYTES: usize = 16;

/// The sealing key of one epoch.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey {
    pub epoch: u64,
    pub key: [u8; SEAL_KEY_BYTES],
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Group {
    /// The sealing key of the group's current epoch.
    pub fn seal_key(&self, p: &MlsProvider) -> Result<SealKey, MlsError> {
        let bytes = self.export(p, SEAL_LABEL, &[], SEAL_KEY_BYTES)?;
        let key = bytes
            .as_slice()
            .try_into()
            .map_err(|_| MlsError::internal("exporter returned a key of another length"))?;
        Ok(SealKey {
            epoch: self.epoch(),
            key,
        })
    }
}

/// Associated data: the conversation and the epoch, so a packet counts only where it was
/// sealed.
fn aad(conversation: &str, epoch: u64) -> Vec<u8> {
    let mut a = Vec::with_capacity(SEAL_DOMAIN.len() + 12 + conversation.len());
    a.extend_from_slice(SEAL_DOMAIN);
    a.extend_from_slice(&(conversation.len() as u32).to_be_bytes());
    a.extend_from_slice(conversation.as_bytes());
    a.extend_from_slice(&epoch.to_be_bytes());
    a
}

/// Seals `plaintext` (an encoded `wire::SealedPayload`) for `conversation`.
pub fn seal(
    p: &MlsProvider,
    key: &SealKey,
    conversation: &str,
    plaintext: &[u8],
) -> Result<wire::Sealed, MlsError> {
    let mut h = Sha256::new();
    h.update(SEAL_DOMAIN);
    h.update(key.key);
    h.update(plaintext);
    let nonce = h.finalize()[..SEALED_NONCE_BYTES].to_vec();
    let ciphertext = p
        .crypto()
        .aead_encrypt(
            AeadType::Aes128Gcm,
            &key.key,
            plaintext,
            &nonce,
            &aad(conversation, key.epoch),
        )
        .map_err(MlsError::internal)?;
    Ok(wire::Sealed {
        epoch: key.epoch,
        nonce,
        ciphertext,
    })
}

/// Opens a sealed packet of `key`'s epoch; [`MlsError::Decrypt`] if it was not sealed with
/// that key for `conversation`, or was changed on the way.
pub fn open(
    p: &MlsProvider,
    key: &SealKey,
    conversation: &str,
    sealed: &wire::Sealed,
) -> Result<Vec<u8>, MlsError> {
    if sealed.epoch != key.epoch {
        return Err(MlsError::internal(
            "sealed packet opened with another epoch's key",
        ));
    }
    p.crypto()
        .aead_decrypt(
            AeadType::Aes128Gcm,
            &key.key,
            &sealed.ciphertext,
            &sealed.nonce,
            &aad(conversation, sealed.epoch),
        )
        .map_err(|_| MlsError::Decrypt("sealed packet does not open with the epoch's key".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mls::MemoryKv;

    fn key(epoch: u64, byte: u8) -> SealKey {
        SealKey {
            epoch,
            key: [byte; SEAL_KEY_BYTES],
        }
    }

    #[test]
    fn a_sealed_packet_opens_only_with_its_key_conversation_and_epoch() {
        let kv = MemoryKv::new();
        let p = MlsProvider::new(&kv);
        let k = key(4, 1);
        let sealed = seal(&p, &k, "conv", b"a vote").unwrap();
        assert_eq!(open(&p, &k, "conv", &sealed).unwrap(), b"a vote");
        assert!(matches!(
            open(&p, &key(4, 2), "conv", &sealed),
            Err(MlsError::Decrypt(_))
        ));
        assert!(matches!(
            open(&p, &k, "other", &sealed),
            Err(MlsError::Decrypt(_))
        ));
        let mut moved = sealed.clone();
        moved.epoch = 5;
        assert!(open(&p, &key(5, 1), "conv", &moved).is_err());
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(matches!(
            open(&p, &k, "conv", &flipped),
            Err(MlsError::Decrypt(_))
        ));
    }

    #[test]
    fn sealing_is_deterministic_and_nonces_differ_by_plaintext() {
        let kv = MemoryKv::new();
        let p = MlsProvider::new(&kv);
        let k = key(1, 7);
        let a = seal(&p, &k, "conv", b"one").unwrap();
        assert_eq!(a, seal(&p, &k, "conv", b"one").unwrap());
        let b = seal(&p, &k, "conv", b"two").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.nonce, seal(&p, &key(1, 8), "conv", b"one").unwrap().nonce);
    }
}
