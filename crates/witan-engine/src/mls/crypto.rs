//! Signature verification with a per-client cache of decoded public keys.
//!
//! Checking an Ed25519 signature starts by decoding the signer's public key (a point
//! decompression: a field exponentiation, a tenth of the check). A member checks the
//! signatures of the same few peers over and over (every MLS message, every vote), so each
//! client keeps the keys it decoded in a [`KeyCache`] (owned by its [`super::Identity`]) and
//! makes it current for the engine runs of its steps ([`with_key_cache`]). Both the MLS
//! signatures (through [`WitanCrypto`], the provider's crypto) and the vote signatures
//! ([`super::verify_signature`]) go through it. The cache only saves work: a key decodes to
//! the same point every time.
//!
//! The check is ed25519-dalek's `verify_strict` (a canonical `s`, neither `A` nor `R` of small
//! order, `R == [s]B - [k]A` compared as encodings), done in [`verify_strict`] without
//! decoding `R` — a square root, another tenth of the check: `R` is only decoded there to
//! test its order, and when the encodings are equal `R` is the recomputed point, whose order
//! can be tested directly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// Keys kept at most; a full cache starts over (a client meets few distinct peers).
const MAX_KEYS: usize = 2048;

/// Decoded Ed25519 public keys by their encoding (see the module doc).
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<[u8; 32], VerifyingKey>>,
}

impl KeyCache {
    /// An empty cache.
    pub fn new() -> KeyCache {
        KeyCache::default()
    }

    /// `bytes` decoded (`None`: not a valid key; not cached).
    fn get(&self, bytes: &[u8; 32]) -> Option<VerifyingKey> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<KeyCache>>> = const { RefCell::new(None) };
}

/// Runs `f` with `cache` as the key cache of this thread's signature checks.
pub fn with_key_cache<R>(cache: &Arc<KeyCache>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<KeyCache>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(cache.clone()));
    let _restore = Restore(previous);
    f()
}

/// `bytes` decoded as an Ed25519 public key, through the current cache if there is one.
fn verifying_key(bytes: &[u8]) -> Option<VerifyingKey> {
    let bytes: &[u8; 32] = bytes.try_into().ok()?;
    let cache = CURRENT.with(|c| c.borrow().clone());
    match cache {
        Some(cache) => cache.get(bytes),
        None => VerifyingKey::from_bytes(bytes).ok(),
    }
}

/// Checks an Ed25519 signature (strict: small-order keys and non-canonical encodings are
/// refused).
pub(crate) fn verify_ed25519(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = <[u8; SIGNATURE_LENGTH]>::try_from(sig) else {
        return false;
    };
    let Some(key) = verifying_key(public_key) else {
        return false;
    };
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

/// The provider's crypto: RustCrypto, with Ed25519 public keys decoded through the current
/// [`KeyCache`]. Everything else is RustCrypto's.
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
        // RustCrypto's checks and errors, with the key decoded through the cache.
        let key = verifying_key(pk).ok_or(CryptoError::CryptoLibraryError)?;
        let sig = <[u8; SIGNATURE_LENGTH]>::try_from(signature)
            .map_err(|_| CryptoError::CryptoLibraryError)?;
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
mod tests {
    use super::*;
    use crate::mls::Identity;
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};

    /// ed25519-dalek's own strict check, the reference.
    fn dalek_strict(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Option<bool> {
        let key = VerifyingKey::from_bytes(pk).ok()?;
        Some(key.verify_strict(msg, &Signature::from_bytes(sig)).is_ok())
    }

    fn ours(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Option<bool> {
        let key = VerifyingKey::from_bytes(pk).ok()?;
        Some(verify_strict(&key, msg, sig))
    }

    #[test]
    fn the_strict_check_agrees_with_ed25519_dalek() {
        let mut cases: Vec<([u8; 32], Vec<u8>, [u8; 64])> = Vec::new();
        for seed in 0..8u8 {
            let sk = SigningKey::from_bytes(&[seed; 32]);
            let pk = sk.verifying_key().to_bytes();
            let msg = vec![seed; seed as usize * 7];
            let sig = sk.sign(&msg).to_bytes();
            cases.push((pk, msg.clone(), sig));
            let mut other = msg.clone();
            other.push(1);
            cases.push((pk, other, sig));
            // Every single-bit flip of the signature.
            for bit in 0..512 {
                let mut bad = sig;
                bad[bit / 8] ^= 1 << (bit % 8);
                cases.push((pk, msg.clone(), bad));
            }
            // A non-canonical s (s + l) that the unreduced equation would accept.
            // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
            let mut l = [0u8; 32];
            l[..16].copy_from_slice(&[
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
                0xde, 0x14,
            ]);
            l[31] = 0x10;
            let mut big = sig;
            let mut carry = 0u16;
            for i in 0..32 {
                let v = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
                big[32 + i] = v as u8;
                carry = v >> 8;
            }
            cases.push((pk, msg.clone(), big));
            // R of small order (the identity) with an s that satisfies the cofactorless
            // equation: plain verification accepts it, the strict check must not.
            let a = sk.to_scalar();
            assert_eq!(
                (a * ED25519_BASEPOINT_POINT).compress().to_bytes(),
                pk,
                "secret scalar"
            );
            let r = EdwardsPoint::default().compress().to_bytes();
            let mut h = Sha512::new();
            h.update(r);
            h.update(pk);
            h.update(&msg);
            let s = Scalar::from_hash(h) * a;
            let mut forged = [0u8; 64];
            forged[..32].copy_from_slice(&r);
            forged[32..].copy_from_slice(s.as_bytes());
            let key = VerifyingKey::from_bytes(&pk).unwrap();
            assert!(
                key.verify(&msg, &Signature::from_bytes(&forged)).is_ok(),
                "cofactorless check accepts the small-order R"
            );
            cases.push((pk, msg.clone(), forged));
        }
        // Small-order keys (the identity, a point of order 2 and one of order 4).
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let mut order2 = [0u8; 32];
        order2[0] = 0xEC;
        order2[1..31].fill(0xFF);
        order2[31] = 0x7F;
        for pk in [weak, order2, [0u8; 32]] {
            cases.push((pk, b"m".to_vec(), [0u8; 64]));
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&weak);
            cases.push((pk, b"m".to_vec(), sig));
        }
        let mut accepted = 0;
        for (pk, msg, sig) in &cases {
            let want = dalek_strict(pk, msg, sig);
            assert_eq!(ours(pk, msg, sig), want, "pk {pk:?} sig {sig:?}");
            accepted += usize::from(want == Some(true));
        }
        assert_eq!(accepted, 8, "only the genuine signatures pass");
    }

    #[test]
    fn cached_and_uncached_checks_agree() {
        let id = Identity::from_secret(&[5; 32]).unwrap();
        let other = Identity::from_secret(&[6; 32]).unwrap();
        let sig = id.sign(b"message");
        let pk = id.public_key();
        let crypto = WitanCrypto::default();
        let check = |pk: &[u8], msg: &[u8], sig: &[u8]| {
            (
                verify_ed25519(pk, msg, sig),
                crypto
                    .verify_signature(SignatureScheme::ED25519, msg, pk, sig)
                    .map_err(|e| format!("{e:?}")),
                crypto
                    .0
                    .verify_signature(SignatureScheme::ED25519, msg, pk, sig)
                    .map_err(|e| format!("{e:?}")),
            )
        };
        let cases: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = vec![
            (pk.to_vec(), b"message".to_vec(), sig.clone()),
            (pk.to_vec(), b"other".to_vec(), sig.clone()),
            (
                other.public_key().to_vec(),
                b"message".to_vec(),
                sig.clone(),
            ),
            (pk.to_vec(), b"message".to_vec(), sig[..63].to_vec()),
            (vec![0xFF; 32], b"message".to_vec(), sig.clone()),
            (pk[..31].to_vec(), b"message".to_vec(), sig.clone()),
        ];
        let cache = Arc::new(KeyCache::new());
        let uncached: Vec<_> = cases.iter().map(|(p, m, s)| check(p, m, s)).collect();
        // Twice with the cache: the second round reads every valid key from it.
        for _ in 0..2 {
            let cached: Vec<_> = with_key_cache(&cache, || {
                cases.iter().map(|(p, m, s)| check(p, m, s)).collect()
            });
            assert_eq!(cached, uncached);
        }
        let decodable: std::collections::BTreeSet<&[u8]> = cases
            .iter()
            .map(|(p, _, _)| p.as_slice())
            .filter(|p| {
                <[u8; 32]>::try_from(*p).is_ok_and(|b| VerifyingKey::from_bytes(&b).is_ok())
            })
            .collect();
        assert_eq!(
            cache.len(),
            decodable.len(),
            "only keys that decode are kept"
        );
        for (verified, via_openmls, rust_crypto) in &uncached {
            assert_eq!(via_openmls, rust_crypto);
            assert_eq!(*verified, rust_crypto.is_ok());
        }
        assert!(uncached[0].0);
        // The cache is current only inside `with_key_cache`.
        let fresh = Identity::from_secret(&[7; 32]).unwrap();
        let sig = fresh.sign(b"x");
        assert!(verify_ed25519(&fresh.public_key(), b"x", &sig));
        assert_eq!(cache.len(), decodable.len());
    }
}
