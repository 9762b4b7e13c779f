//! [`MemberId`]: who a member is on the wire and in the database, `SHA256(public key)[..20]`
//! of its Ed25519 key. A plain value with its own parse error, so that every other module of
//! `mls` (errors included) can name members without importing the identity code.

use std::fmt;

use sha2::{Digest, Sha256};

/// Bytes or text that are not a member id; reported as `MlsError::InvalidIdentity`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadMemberId(pub String);

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
    pub fn from_slice(bytes: &[u8]) -> Result<MemberId, BadMemberId> {
        let id: [u8; MEMBER_ID_LEN] = bytes.try_into().map_err(|_| {
            BadMemberId(format!(
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
    pub fn from_hex(s: &str) -> Result<MemberId, BadMemberId> {
        let bytes = hex::decode(s).map_err(|e| BadMemberId(format!("bad hex: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
