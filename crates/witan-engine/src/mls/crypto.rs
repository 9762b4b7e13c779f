//! Signature verification: a strict Ed25519 check, with decoded public keys kept.
//!
//! Checking an Ed25519 signature starts by decoding the signer's public key (a point
//! decompression: a field exponentiation, about a tenth of the check). A member checks the
//! signatures of the same few peers over and over (every MLS message, every vote), so the
//! keys decoded are kept, process-wide, in a bounded map ([`verifying_key`]); it only saves
//! work, since a key decodes to the same point every time. Both the MLS signatures (through
//! [`WitanCrypto`], the provider's crypto) and the vote signatures
//! ([`super::verify_signature`]) go through it.
//!
//! The check is ed25519-dalek's `verify_strict` — a canonical `s`, neither `A` nor `R` of
//! small order, `R == [s]B - [k]A` compared as encodings — done in [`verify_strict`] without
//! decoding `R`, another square root: dalek decodes `R` only to test its order, and when the
//! encodings are equal `R` is the recomputed point, whose order can be tested directly.
//! Calling dalek's own `verify_strict` costs 6–14 % more CPU on the bench's formation, chat
//! and removal rows (docs/bench.md), so the check stays here, with a differential test
//! against dalek over 10,000 random keys, messages and signatures (genuine and damaged).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use curve25519_dalek::{EdwardsPoint, Scalar};
use ed25519_dalek::{SIGNATURE_LENGTH, VerifyingKey};
use openmls::prelude::tls_codec::SecretVLBytes;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeCiphertext, HpkeConfig,
    HpkeKeyPair, KemOutput, SignatureScheme,
};
use sha2::{Digest, Sha512};

use super::switches::Layer;

/// Keys kept at most; a full map starts over (a client meets few distinct peers).
const MAX_KEYS: usize = 4096;

/// `bytes` decoded as an Ed25519 public key (`None`: not a valid key), through the map of
/// keys decoded so far unless [`Layer::Keys`] is off.
fn verifying_key(bytes: &[u8]) -> Option<VerifyingKey> {
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

/// Whether `key` is not a usable Ed25519 key: not a point, or of small order.
pub(crate) fn is_weak_key(key: &[u8; 32]) -> bool {
    verifying_key(key).is_none_or(|k| k.is_weak())
}

/// Checks an Ed25519 signature (strict: small-order keys and points and non-canonical
/// encodings are refused).
pub(crate) fn verify_ed25519(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = <[u8; SIGNATURE_LENGTH]>::try_from(sig) else {
        return false;
    };
    let Some(key) = verifying_key(public_key) else {
        return false;
    };
    crate::metrics::signature_checked();
    verify_strict(&key, msg, &sig)
}

/// `VerifyingKey::verify_strict` of ed25519-dalek, with the same outcome on every input (see
/// the module doc).
#[allow(non_snake_case)]
fn verify_strict(key: &VerifyingKey, msg: &[u8], sig: &[u8; SIGNATURE_LENGTH]) -> bool {
    let (R, s) = sig.split_at(32);
    let Ok(s) = <[u8; 32]>::try_from(s) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
        return false;
    };
    if key.is_weak() {
        return false;
    }
    let mut h = Sha512::new();
    h.update(R);
    h.update(key.as_bytes());
    h.update(msg);
    let k = Scalar::from_hash(h);
    let expected = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-key.to_edwards(), &s);
    // Equal encodings: `R` decodes to `expected`, so its order is that of `expected`.
    expected.compress().as_bytes() == R && !expected.is_small_order()
}

/// The provider's crypto: RustCrypto, with Ed25519 signatures checked by [`verify_strict`]
/// (the keys decoded kept). Everything else is RustCrypto's.
#[derive(Debug, Default)]
pub struct WitanCrypto(pub RustCrypto);

impl OpenMlsCrypto for WitanCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        self.0.supports(ciphersuite)
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        self.0.supported_ciphersuites()
    }

    fn hkdf_extract(
        &self,
        hash_type: HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.0.hkdf_extract(hash_type, salt, ikm)
    }

    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.0.hmac(hash_type, key, message)
    }

    fn hkdf_expand(
        &self,
        hash_type: HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<SecretVLBytes, CryptoError> {
        self.0.hkdf_expand(hash_type, prk, info, okm_len)
    }

    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.hash(hash_type, data)
    }

    fn aead_encrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.0.aead_encrypt(alg, key, data, nonce, aad)
    }

    fn aead_decrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.0.aead_decrypt(alg, key, ct_tag, nonce, aad)
    }

    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        self.0.signature_key_gen(alg)
    }

    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        if alg != SignatureScheme::ED25519 {
            return self.0.verify_signature(alg, data, pk, signature);
        }
        // RustCrypto's checks and errors, with the key decoded through the map of keys.
        let key = verifying_key(pk).ok_or(CryptoError::CryptoLibraryError)?;
        let sig = <[u8; SIGNATURE_LENGTH]>::try_from(signature)
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        crate::metrics::signature_checked();
        if verify_strict(&key, data, &sig) {
            Ok(())
        } else {
            Err(CryptoError::InvalidSignature)
        }
    }

    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.sign(alg, data, key)
    }

    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        self.0.hpke_seal(config, pk_r, info, aad, ptxt)
    }

    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.0.hpke_open(config, input, sk_r, info, aad)
    }

    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        self.0
            .hpke_setup_sender_and_export(config, pk_r, info, exporter_context, exporter_length)
    }

    fn hpke_setup_receiver_and_export(
        &self,
        config: HpkeConfig,
        enc: &[u8],
        sk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        self.0.hpke_setup_receiver_and_export(
            config,
            enc,
            sk_r,
            info,
            exporter_context,
            exporter_length,
        )
    }

    fn derive_hpke_keypair(
        &self,
        config: HpkeConfig,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError> {
        self.0.derive_hpke_keypair(config, ikm)
    }
}

#[cfg(test)]
mod tests;
