//! Member identities: the Ed25519 key of a member ([`Identity`]), with the [`MemberId`]
//! derived from its public key, and detached signature verification.
//!
//! The same Ed25519 key signs MLS handshake messages (OpenMLS prefixes every signed structure
//! with an `"MLS 1.0 "` label, so MLS signatures cannot be confused with other uses) and the
//! de-MLS votes and proposals.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};
use openmls::prelude::{BasicCredential, CredentialWithKey, SignatureScheme};
use openmls_basic_credential::SignatureKeyPair;

use super::error::MlsError;
use super::member_id::MemberId;

/// The Ed25519 key of the local member, used for MLS signatures and for votes.
///
/// `Debug` never prints the secret.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Builds the identity from a 32-byte Ed25519 seed.
    pub fn from_secret(secret: &[u8]) -> Result<Identity, MlsError> {
        let seed: [u8; 32] = secret.try_into().map_err(|_| {
            MlsError::InvalidIdentity(format!("secret must be 32 bytes, got {}", secret.len()))
        })?;
        Ok(Identity {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Generates a fresh random identity.
    pub fn generate() -> Identity {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        Identity {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The 32-byte seed (store it encrypted at rest).
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// `SHA256(public key)[..20]`.
    pub fn member_id(&self) -> MemberId {
        MemberId::from_public_key(&self.public_key())
    }

    /// Signs `msg`; returns the 64-byte Ed25519 signature.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.key.sign(msg).to_bytes().to_vec()
    }

    /// The OpenMLS signer for this key (the same Ed25519 key pair).
    pub(crate) fn signer(&self) -> SignatureKeyPair {
        SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            self.key.to_bytes().to_vec(),
            self.public_key().to_vec(),
        )
    }

    /// The MLS basic credential (identity = member id) together with the signature key.
    pub(crate) fn credential_with_key(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(self.member_id().0.to_vec()).into(),
            signature_key: self.public_key().to_vec().into(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.member_id().short())
    }
}

/// Verifies an Ed25519 signature (strict verification: rejects malleable and small-order
/// encodings). Returns `false` for keys or signatures of the wrong length.
pub fn verify_signature(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    // Keys are decoded through the current client's key cache, if any.
    super::crypto::verify_ed25519(public_key, msg, sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_from_seed_is_deterministic() {
        let a = Identity::from_secret(&[7u8; 32]).unwrap();
        let b = Identity::from_secret(&[7u8; 32]).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.member_id(), b.member_id());
        assert_eq!(a.secret(), [7u8; 32]);
        assert_eq!(a.member_id(), MemberId::from_public_key(&a.public_key()));
        let c = Identity::from_secret(&[8u8; 32]).unwrap();
        assert_ne!(a.member_id(), c.member_id());
        assert!(Identity::from_secret(&[1u8; 31]).is_err());
        assert!(Identity::from_secret(&[]).is_err());
        assert!(!format!("{a:?}").contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn signatures_verify_and_fail() {
        let id = Identity::from_secret(&[1u8; 32]).unwrap();
        let sig = id.sign(b"hello");
        assert_eq!(sig.len(), 64);
        assert!(verify_signature(&id.public_key(), b"hello", &sig));
        assert!(!verify_signature(&id.public_key(), b"hellO", &sig));
        let other = Identity::from_secret(&[2u8; 32]).unwrap();
        assert!(!verify_signature(&other.public_key(), b"hello", &sig));
        let mut bad = sig.clone();
        bad[3] ^= 1;
        assert!(!verify_signature(&id.public_key(), b"hello", &bad));
        assert!(!verify_signature(&id.public_key(), b"hello", &sig[..63]));
        assert!(!verify_signature(&id.public_key()[..31], b"hello", &sig));
        assert!(!verify_signature(&[0u8; 32], b"hello", &sig));
    }
}
