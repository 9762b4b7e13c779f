//! Key packages (a joiner's signed offer of keys) and the checks applied to any leaf that enters
//! a group: basic credential whose identity is the [`MemberId`] of the leaf's signature key.
//!
//! Also holds the panic-free parser for serialized MLS messages shared by the whole layer.

use openmls::prelude::tls_codec::{self, Deserialize as TlsDeserialize};
use openmls::prelude::{
    BasicCredential, Credential, CredentialType, GroupEpoch, GroupId, KeyPackage, MlsMessageBodyIn,
    MlsMessageIn, MlsMessageOut, ProtocolVersion, WireFormat,
};
use openmls_traits::OpenMlsProvider as _;

use super::error::MlsError;
use super::identity::Identity;
use super::member_id::MemberId;
use super::provider::{CIPHERSUITE, MlsProvider};

/// Upper bound on the size of any MLS message accepted by this layer.
pub const MAX_MLS_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// A validated key package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPackageInfo {
    /// Member id of the key package owner (its credential identity).
    pub member_id: MemberId,
    /// The owner's Ed25519 public key (the leaf signature key).
    pub public_key: [u8; 32],
    /// The serialized key package as received (an `MlsMessage` carrying a `KeyPackage`).
    pub bytes: Vec<u8>,
    /// The MLS `KeyPackageRef` (RFC 9420 §5.2, SHA-256 based, 32 bytes).
    pub hash: [u8; 32],
    /// The end of the key package's lifetime (ms since the epoch).
    pub not_after_ms: u64,
}

/// Creates a fresh key package for `id` and stores its private keys in the provider's storage
/// (persist the changes, the Welcome will need them). Returns the serialized `MlsMessage`.
pub fn new_key_package(p: &MlsProvider, id: &Identity) -> Result<Vec<u8>, MlsError> {
    let bundle = KeyPackage::builder()
        .build(CIPHERSUITE, p, &id.signer(), id.credential_with_key())
        .map_err(MlsError::internal)?;
    MlsMessageOut::from(bundle.key_package().clone())
        .to_bytes()
        .map_err(MlsError::internal)
}

/// Parses and validates a serialized key package: signatures, lifetime, protocol version,
/// ciphersuite, and that the basic credential identity equals
/// `MemberId::from_public_key(leaf signature key)`.
pub fn validate_key_package(p: &MlsProvider, bytes: &[u8]) -> Result<KeyPackageInfo, MlsError> {
    let (kp, info) = check_key_package(p, bytes)?;
    drop(kp);
    Ok(info)
}

/// Like [`validate_key_package`], also returning the OpenMLS key package.
pub(crate) fn check_key_package(
    p: &MlsProvider,
    bytes: &[u8],
) -> Result<(KeyPackage, KeyPackageInfo), MlsError> {
    let bad = |m: String| MlsError::InvalidKeyPackage(m);
    let msg = parse_message(bytes).map_err(|e| bad(e.to_string()))?;
    let MlsMessageBodyIn::KeyPackage(kp_in) = msg.extract() else {
        return Err(bad("not a key package message".into()));
    };
    let kp = kp_in
        .validate(p.crypto(), ProtocolVersion::Mls10)
        .map_err(|e| bad(e.to_string()))?;
    if kp.ciphersuite() != CIPHERSUITE {
        return Err(bad(format!(
            "unsupported ciphersuite {:?}",
            kp.ciphersuite()
        )));
    }
    let leaf = kp.leaf_node();
    let sig_key = leaf.signature_key().as_slice();
    let member_id = leaf_member_id(leaf.credential(), sig_key).map_err(|e| bad(e.to_string()))?;
    let public_key: [u8; 32] = sig_key
        .try_into()
        .map_err(|_| bad("signature key is not 32 bytes".into()))?;
    let hash_ref = kp.hash_ref(p.crypto()).map_err(MlsError::internal)?;
    let hash: [u8; 32] = hash_ref
        .as_slice()
        .try_into()
        .map_err(|_| MlsError::Internal("key package ref is not 32 bytes".into()))?;
    let info = KeyPackageInfo {
        member_id,
        public_key,
        bytes: bytes.to_vec(),
        hash,
        not_after_ms: kp.life_time().not_after().saturating_mul(1000),
    };
    Ok((kp, info))
}

/// The member id of a leaf: the basic credential identity, which must be exactly
/// `MemberId::from_public_key(signature_key)`.
pub(crate) fn leaf_member_id(
    credential: &Credential,
    signature_key: &[u8],
) -> Result<MemberId, MlsError> {
    if credential.credential_type() != CredentialType::Basic {
        return Err(MlsError::InvalidIdentity("not a basic credential".into()));
    }
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|e| MlsError::InvalidIdentity(e.to_string()))?;
    let id = MemberId::from_slice(basic.identity())?;
    if id != MemberId::from_public_key(signature_key) {
        return Err(MlsError::InvalidIdentity(
            "credential identity does not match the signature key".into(),
        ));
    }
    Ok(id)
}

/// The member id named by a credential that was checked with [`leaf_member_id`] when its leaf
/// entered the group.
pub(crate) fn credential_member_id(credential: &Credential) -> Result<MemberId, MlsError> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|e| MlsError::InvalidIdentity(e.to_string()))?;
    Ok(MemberId::from_slice(basic.identity())?)
}

/// Parses a serialized `MlsMessage` without ever panicking: size-bounded, exact (no trailing
/// bytes), and with any decoder panic turned into [`MlsError::Malformed`].
pub(crate) fn parse_message(bytes: &[u8]) -> Result<MlsMessageIn, MlsError> {
    if bytes.is_empty() {
        return Err(MlsError::Malformed("empty message".into()));
    }
    if bytes.len() > MAX_MLS_MESSAGE_BYTES {
        return Err(MlsError::Malformed(format!(
            "message of {} bytes exceeds {MAX_MLS_MESSAGE_BYTES}",
            bytes.len()
        )));
    }
    // The TLS decoder is pure; a panic inside it leaves no state behind.
    std::panic::catch_unwind(|| <MlsMessageIn as TlsDeserialize>::tls_deserialize_exact(bytes))
        .map_err(|_| MlsError::Malformed("decoder panicked".into()))?
        .map_err(|e| MlsError::Malformed(e.to_string()))
}

/// The group id and epoch at the head of a serialized `PublicMessage` or `PrivateMessage`,
/// read with OpenMLS's own field types without decoding the rest: both put `group_id` and
/// `epoch` first (RFC 9420, 6.2 and 6.3), and routing needs nothing else — a large commit's
/// content is not copied for it. What follows is decoded, and refused if malformed, when the
/// message is processed.
pub(crate) fn message_head(bytes: &[u8]) -> Result<(Vec<u8>, u64), MlsError> {
    if bytes.len() > MAX_MLS_MESSAGE_BYTES {
        return Err(MlsError::Malformed(format!(
            "message of {} bytes exceeds {MAX_MLS_MESSAGE_BYTES}",
            bytes.len()
        )));
    }
    let malformed = |e: tls_codec::Error| MlsError::Malformed(e.to_string());
    let mut rest = bytes;
    let version = ProtocolVersion::tls_deserialize(&mut rest).map_err(malformed)?;
    if version != ProtocolVersion::Mls10 {
        return Err(MlsError::Malformed(format!("protocol version {version:?}")));
    }
    match WireFormat::tls_deserialize(&mut rest).map_err(malformed)? {
        WireFormat::PublicMessage | WireFormat::PrivateMessage => {}
        _ => return Err(MlsError::Malformed("not a protocol message".into())),
    }
    let group_id = GroupId::tls_deserialize(&mut rest).map_err(malformed)?;
    let epoch = GroupEpoch::tls_deserialize(&mut rest).map_err(malformed)?;
    Ok((group_id.to_vec(), epoch.as_u64()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mls::kv::MemoryKv;

    #[test]
    fn key_package_validates() {
        let kv = MemoryKv::new();
        let p = MlsProvider::new(&kv);
        let id = Identity::from_secret(&[3u8; 32]).unwrap();
        let bytes = new_key_package(&p, &id).unwrap();
        // the private keys went to the storage's writes
        assert!(p.storage().has_changes());
        let info = validate_key_package(&p, &bytes).unwrap();
        assert_eq!(info.member_id, id.member_id());
        assert_eq!(info.public_key, id.public_key());
        assert_eq!(info.bytes, bytes);
        // a second key package of the same identity has another ref
        let bytes2 = new_key_package(&p, &id).unwrap();
        let info2 = validate_key_package(&p, &bytes2).unwrap();
        assert_ne!(info.hash, info2.hash);
    }

    #[test]
    fn tampered_key_package_is_rejected() {
        let kv = MemoryKv::new();
        let p = MlsProvider::new(&kv);
        let id = Identity::from_secret(&[4u8; 32]).unwrap();
        let bytes = new_key_package(&p, &id).unwrap();
        let mut rejected = 0;
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            if validate_key_package(&p, &t).is_err() {
                rejected += 1;
            }
        }
        // every single-bit flip breaks parsing or a signature
        assert_eq!(rejected, bytes.len());
        assert!(validate_key_package(&p, &bytes[..bytes.len() - 1]).is_err());
        let mut extended = bytes.clone();
        extended.push(0);
        assert!(validate_key_package(&p, &extended).is_err());
    }

    #[test]
    fn a_key_package_checked_again_costs_no_signature_check_and_a_forgery_is_still_refused() {
        let kv = MemoryKv::new();
        let cache = crate::mls::GroupCache::keeping(true);
        let p = MlsProvider::with_group_cache(&kv, &cache);
        let memo = crate::mls::GroupLoans::kept_crypto(&cache)
            .unwrap()
            .signatures();
        let id = Identity::from_secret(&[7u8; 32]).unwrap();
        let bytes = new_key_package(&p, &id).unwrap();
        let first = validate_key_package(&p, &bytes).unwrap();
        if !crate::mls::Layer::Signatures.enabled() {
            assert!(memo.is_empty());
            return;
        }
        // The leaf's signature and the key package's.
        assert_eq!((memo.len(), memo.hits()), (2, 0));
        assert_eq!(validate_key_package(&p, &bytes).unwrap(), first);
        assert_eq!(memo.hits(), 2);
        // The last 64 bytes are the key package's signature: one bit off, its leaf (intact) is
        // a hit, and the signature a miss, checked and refused, and not remembered.
        let mut forged = bytes.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(validate_key_package(&p, &forged).is_err());
        assert_eq!((memo.len(), memo.hits()), (2, 3));
        // Another provider over the same cache (the next step) still knows it.
        let next = MlsProvider::with_group_cache(&kv, &cache);
        assert!(validate_key_package(&next, &bytes).is_ok());
        assert_eq!(memo.hits(), 5);
    }

    #[test]
    fn mismatched_identity_is_rejected() {
        let kv = MemoryKv::new();
        let p = MlsProvider::new(&kv);
        let id = Identity::from_secret(&[5u8; 32]).unwrap();
        // a correctly signed key package claiming somebody else's member id
        let victim = Identity::from_secret(&[6u8; 32]).unwrap();
        let mut cred = id.credential_with_key();
        cred.credential = BasicCredential::new(victim.member_id().0.to_vec()).into();
        let bundle = KeyPackage::builder()
            .build(CIPHERSUITE, &p, &id.signer(), cred)
            .unwrap();
        let bytes = MlsMessageOut::from(bundle.key_package().clone())
            .to_bytes()
            .unwrap();
        assert!(matches!(
            validate_key_package(&p, &bytes),
            Err(MlsError::InvalidKeyPackage(_))
        ));
        // an identity of the wrong length
        let mut cred = id.credential_with_key();
        cred.credential = BasicCredential::new(b"alice".to_vec()).into();
        let bundle = KeyPackage::builder()
            .build(CIPHERSUITE, &p, &id.signer(), cred)
            .unwrap();
        let bytes = MlsMessageOut::from(bundle.key_package().clone())
            .to_bytes()
            .unwrap();
        assert!(validate_key_package(&p, &bytes).is_err());
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        let kv = MemoryKv::new();
        let p = MlsProvider::new(&kv);
        for g in garbage_inputs() {
            assert!(validate_key_package(&p, &g).is_err());
        }
    }

    /// Inputs used by the garbage tests of the whole module.
    pub(crate) fn garbage_inputs() -> Vec<Vec<u8>> {
        let mut out = vec![
            vec![],
            vec![0],
            vec![0, 1],
            vec![0, 1, 0, 1],
            vec![0, 1, 0, 2],
            vec![0, 1, 0, 3],
            vec![0, 1, 0, 5, 0xff, 0xff, 0xff, 0xff],
            vec![0xff; 64],
            b"definitely not mls".to_vec(),
        ];
        let mut x: u32 = 0x1234_5678;
        for len in [5usize, 17, 100, 1000] {
            let mut v = vec![0, 1, 0, (len % 5 + 1) as u8];
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(x as u8);
            }
            out.push(v);
        }
        out
    }
}
