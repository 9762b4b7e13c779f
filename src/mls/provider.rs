//! The OpenMLS provider used by every `mls` operation: RustCrypto for cryptography and
//! randomness, [`MlsStorage`] for persistence.
//!
//! A provider lives for one protocol step: build it over the current database transaction,
//! run the group operations, then persist `provider.storage().take_changes()` (or drop it to
//! discard all OpenMLS writes of the step).

use openmls::prelude::Ciphersuite;
use openmls_rust_crypto::RustCrypto;

use super::kv::KvSource;
use super::storage::MlsStorage;

/// The only ciphersuite witan uses.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// OpenMLS provider over a [`KvSource`] with a write overlay.
pub struct MlsProvider<'a> {
    crypto: RustCrypto,
    storage: MlsStorage<'a>,
}

impl<'a> MlsProvider<'a> {
    /// A provider reading OpenMLS state from `source`.
    pub fn new(source: &'a dyn KvSource) -> Self {
        MlsProvider {
            crypto: RustCrypto::default(),
            storage: MlsStorage::new(source),
        }
    }

    /// The storage, to take the changes of the step.
    pub fn storage(&self) -> &MlsStorage<'a> {
        &self.storage
    }
}

impl<'a> openmls_traits::OpenMlsProvider for MlsProvider<'a> {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MlsStorage<'a>;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}
