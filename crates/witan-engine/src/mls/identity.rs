//! Member identities: the Ed25519 key of a member ([`Identity`]), the 20-byte [`MemberId`]
//! derived from its public key, and detached signature verification.
//!
//! The same Ed25519 key signs MLS handshake messages (OpenMLS prefixes every signed structure
//! with an `"MLS 1.0 "` label, so MLS signatures cannot be confused with other uses) and the
//! de-MLS votes and proposals.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};
use openmls::prelude::{BasicCredential, CredentialWithKey, SignatureScheme};
use openmls_basic_credential::SignatureKeyPair;
use sha2::{Digest, Sha256};

use super::error::MlsError;

/// Length of a [`MemberId`] in bytes.
pub const MEMBER_ID_LEN: usize = 20;

/// A member of a conversation: `SHA256(ed25519 public key)[..20]`.
///
/// Serialized with serde as a lowercase hex string; `Debug` shows the first 8 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub [u8; MEMBER_ID_LEN]);

impl MemberId {
    /// Derives the member id of an Ed25519 public key (any byte string is hashed as is).
    pub fn from_public_key(pk: &[u8]) -> MemberId {
        let digest = Sha256::digest(pk);
        let mut id = [0u8; MEMBER_ID_LEN];
        id.copy_from_slice(&digest[..MEMBER_ID_LEN]);
        MemberId(id)
    }

    /// Parses exactly 20 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<MemberId, MlsError> {
        let id: [u8; MEMBER_ID_LEN] = bytes.try_into().map_err(|_| {
            MlsError::InvalidIdentity(format!(
                "member id must be {MEMBER_ID_LEN} bytes, got {}",
                bytes.len()
            ))
        })?;
        Ok(MemberId(id))
    }

    /// Lowercase hex of the 20 bytes (40 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 40 hex characters.
    pub fn from_hex(s: &str) -> Result<MemberId, MlsError> {
        let bytes =
            hex::decode(s).map_err(|e| MlsError::InvalidIdentity(format!("bad hex: {e}")))?;
        MemberId::from_slice(&bytes)
    }

    /// The first 8 hex characters, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; MEMBER_ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({})", self.short())
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for MemberId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for MemberId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MemberId, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        MemberId::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

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

    #[test]
    fn member_id_encodings() {
        let id = MemberId::from_public_key(b"key");
        assert_eq!(MemberId::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(MemberId::from_slice(id.as_bytes()).unwrap(), id);
        assert!(MemberId::from_slice(&[0u8; 19]).is_err());
        assert!(MemberId::from_hex("zz").is_err());
        assert_eq!(id.short().len(), 8);
        assert_eq!(format!("{id:?}"), format!("MemberId({})", id.short()));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.to_hex()));
        assert_eq!(serde_json::from_str::<MemberId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<MemberId>("\"abcd\"").is_err());
    }
}
