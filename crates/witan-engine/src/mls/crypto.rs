//! Signature verification: a strict Ed25519 check, with decoded public keys kept.
//!
//! Checking an Ed25519 signature starts by decoding the signer's public key (a point
//! decompression: a field exponentiation, about a tenth of the check). A member checks the
//! signatures of the same few peers over and over (every MLS message, every vote), so the
//! keys decoded are kept, process-wide, in a bounded map (`super::keys`); it only saves
//! work, since a key decodes to the same point every time. The MLS signatures go through it
//! (through [`WitanCrypto`], the provider's crypto); vote signatures have a rule of their own,
//! the one of their batches (`super::checked`).
//!
//! The check is ed25519-dalek's `verify_strict` — a canonical `s`, neither `A` nor `R` of
//! small order, `R == [s]B - [k]A` compared as encodings — done in [`verify_strict`] without
//! decoding `R`, another square root: dalek decodes `R` only to test its order, and when the
//! encodings are equal `R` is the recomputed point, of small order exactly when its encoding
//! is one of the eight of the 8-torsion. Calling dalek's own `verify_strict` costs 6–14 %
//! more CPU on the bench's formation, chat and removal rows (docs/bench.md), so the check
//! stays here, with a differential test against dalek over 10,000 random keys, messages and
//! signatures (genuine and damaged) and one forgery for each small-order `R`.
//!
//! A client's providers share what it keeps between steps ([`KeptCrypto`], in its group cache):
//! one random generator, seeded from the system when the client opens rather than for every
//! engine run (a system call per packet on the live path), and the signatures it found valid
//! (`super::memo`).
//!
//! While a joiner processes a welcome, OpenMLS checks the signature of every leaf of the
//! tree, one call at a time. [`WitanCrypto::batching`] collects those checks into one batch
//! (`super::batch`, the cofactored rule of the quorum lists) that is checked when OpenMLS is
//! done; the welcome is refused unless the whole batch verifies. Why the other rule is safe
//! there: docs/safety.md, "Checking a quorum list".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use curve25519_dalek::constants::EIGHT_TORSION;
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

use super::batch::Batch;
use super::keys::verifying_key;
use super::memo::SignatureMemo;

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
    // Equal encodings: `R` decodes to `expected`, and a point has small order exactly when
    // its (canonical) encoding is one of the eight of the 8-torsion — a comparison instead
    // of three doublings and a projective test.
    expected.compress().as_bytes() == R && !SMALL_ORDER.iter().any(|t| t[..] == *R)
}

/// The canonical encodings of the eight points of small order (the 8-torsion subgroup).
static SMALL_ORDER: LazyLock<[[u8; 32]; 8]> =
    LazyLock::new(|| EIGHT_TORSION.map(|t| t.compress().to_bytes()));

/// Signatures a batching scope takes at most; later ones are checked one by one at once.
const MAX_BATCHED: usize = 8192;

/// What a client's crypto keeps from one step to the next (in its [`super::GroupCache`]):
/// its random generator, seeded from the system once instead of once per engine run, and
/// the signatures it found valid ([`SignatureMemo`]).
#[derive(Debug, Default)]
pub struct KeptCrypto {
    rust: RustCrypto,
    signatures: SignatureMemo,
}

impl KeptCrypto {
    /// The signatures remembered.
    pub fn signatures(&self) -> &SignatureMemo {
        &self.signatures
    }
}

/// RustCrypto of a provider: its own (seeded when made), or the client's kept one.
enum Base<'a> {
    Own(Box<RustCrypto>),
    Kept(&'a KeptCrypto),
}

/// The provider's crypto: RustCrypto, with Ed25519 signatures checked by [`verify_strict`]
/// (the keys decoded kept, the client's valid signatures remembered), or collected into a
/// batch inside [`WitanCrypto::batching`]. Everything else is RustCrypto's.
pub struct WitanCrypto<'a> {
    base: Base<'a>,
    /// The open batching scope's signatures, if one is open.
    batch: Mutex<Option<Batch<'static>>>,
    /// Inside [`WitanCrypto::read_once`]: signatures are neither looked up nor remembered.
    once: AtomicBool,
}

impl Default for WitanCrypto<'_> {
    fn default() -> Self {
        WitanCrypto {
            base: Base::Own(Box::default()),
            batch: Mutex::default(),
            once: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for WitanCrypto<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitanCrypto").finish_non_exhaustive()
    }
}

impl<'a> WitanCrypto<'a> {
    /// A crypto over what the client keeps (`None`: a fresh generator, nothing remembered).
    pub fn kept(kept: Option<&'a KeptCrypto>) -> Self {
        match kept {
            Some(k) => WitanCrypto {
                base: Base::Kept(k),
                batch: Mutex::default(),
                once: AtomicBool::new(false),
            },
            None => WitanCrypto::default(),
        }
    }

    /// RustCrypto: the cryptography and the random generator.
    pub(super) fn rust(&self) -> &RustCrypto {
        match &self.base {
            Base::Own(r) => r,
            Base::Kept(k) => &k.rust,
        }
    }

    fn memo(&self) -> Option<&SignatureMemo> {
        match &self.base {
            Base::Kept(k) if !self.once.load(Ordering::Relaxed) => Some(&k.signatures),
            _ => None,
        }
    }

    /// Runs `f` with the memo of valid signatures left out: for checks of signatures that
    /// can come only once, such as an application message's (its generation's key is gone
    /// once read, so a copy fails to decrypt before its signature is looked at). Remembering
    /// them would only cost a hash each and push out the signatures that do come again.
    pub fn read_once<T>(&self, f: impl FnOnce() -> T) -> T {
        let was = self.once.swap(true, Ordering::Relaxed);
        // Restored even if `f` unwinds.
        struct Restore<'a>(&'a AtomicBool, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.store(self.1, Ordering::Relaxed);
            }
        }
        let _restore = Restore(&self.once, was);
        f()
    }

    /// Runs `f` with the Ed25519 checks it makes through this crypto collected instead of
    /// done: each returns success (unless its key or length can never verify), and the
    /// batch of all of them is checked when `f` returns. The second value says whether it
    /// verified; when it did not, what `f` produced must be thrown away. A scope inside
    /// another is the outer one's.
    pub fn batching<T>(&self, f: impl FnOnce() -> T) -> (T, bool) {
        let mut slot = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            drop(slot);
            return (f(), true);
        }
        *slot = Some(Batch::new(&[]));
        drop(slot);
        // Closed even if `f` unwinds: a scope left open would accept every later signature.
        struct Close<'a>(&'a Mutex<Option<Batch<'static>>>);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
            }
        }
        let close = Close(&self.batch);
        let out = f();
        let batch = close.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(close);
        (out, batch.is_none_or(Batch::verify))
    }

    /// Defers the check to the open batching scope: `None` when none is open or it is full
    /// (check it now), else whether it could be queued (`false`: it can never verify).
    fn defer(&self, key: &[u8; 32], data: &[u8], signature: &[u8]) -> Option<bool> {
        let mut slot = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some(batch) if batch.queued() < MAX_BATCHED => {
                Some(batch.push_for(key, data, signature))
            }
            _ => None,
        }
    }
}

impl OpenMlsCrypto for WitanCrypto<'_> {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        self.rust().supports(ciphersuite)
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        self.rust().supported_ciphersuites()
    }

    fn hkdf_extract(
        &self,
        hash_type: HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.rust().hkdf_extract(hash_type, salt, ikm)
    }

    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.rust().hmac(hash_type, key, message)
    }

    fn hkdf_expand(
        &self,
        hash_type: HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<SecretVLBytes, CryptoError> {
        self.rust().hkdf_expand(hash_type, prk, info, okm_len)
    }

    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rust().hash(hash_type, data)
    }

    fn aead_encrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.rust().aead_encrypt(alg, key, data, nonce, aad)
    }

    fn aead_decrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.rust().aead_decrypt(alg, key, ct_tag, nonce, aad)
    }

    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        self.rust().signature_key_gen(alg)
    }

    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        if alg != SignatureScheme::ED25519 {
            return self.rust().verify_signature(alg, data, pk, signature);
        }
        // RustCrypto's checks and errors, with the key decoded through the map of keys.
        let key = verifying_key(pk).ok_or(CryptoError::CryptoLibraryError)?;
        let sig = <[u8; SIGNATURE_LENGTH]>::try_from(signature)
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        // A signature the strict check passed before passes again, batched or not.
        let memo = self
            .memo()
            .and_then(|m| Some((m, SignatureMemo::key(key.as_bytes(), &sig, data)?)));
        if memo.is_some_and(|(m, k)| m.knows(&k)) {
            return Ok(());
        }
        match self.defer(key.as_bytes(), data, &sig) {
            Some(true) => return Ok(()),
            Some(false) => return Err(CryptoError::InvalidSignature),
            None => {}
        }
        crate::metrics::signature_checked();
        if verify_strict(&key, data, &sig) {
            if let Some((m, k)) = memo {
                m.remember(k);
            }
            Ok(())
        } else {
            Err(CryptoError::InvalidSignature)
        }
    }

    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rust().sign(alg, data, key)
    }

    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        self.rust().hpke_seal(config, pk_r, info, aad, ptxt)
    }

    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.rust().hpke_open(config, input, sk_r, info, aad)
    }

    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        self.rust().hpke_setup_sender_and_export(
            config,
            pk_r,
            info,
            exporter_context,
            exporter_length,
        )
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
        self.rust().hpke_setup_receiver_and_export(
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
        self.rust().derive_hpke_keypair(config, ikm)
    }
}

#[cfg(test)]
mod tests;
