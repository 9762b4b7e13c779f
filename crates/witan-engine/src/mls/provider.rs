//! The OpenMLS provider used by every `mls` operation: RustCrypto for cryptography and
//! randomness, [`MlsStorage`] for persistence.
//!
//! A provider lives for one protocol step: build it over the current database transaction,
//! run the group operations, then persist `provider.storage().take_changes()` (or drop it to
//! discard all OpenMLS writes of the step).

use openmls::prelude::Ciphersuite;
use openmls_rust_crypto::RustCrypto;

use super::crypto::{KeptCrypto, WitanCrypto};

use super::kv::KvSource;
use super::loans::GroupLoans;
use super::storage::MlsStorage;

/// The only ciphersuite witan uses.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// OpenMLS provider over a [`KvSource`] collecting the writes of one run.
pub struct MlsProvider<'a> {
    crypto: WitanCrypto<'a>,
    storage: MlsStorage<'a>,
    group_cache: Option<&'a dyn GroupLoans>,
}

impl<'a> MlsProvider<'a> {
    /// A provider reading OpenMLS state from `source`.
    pub fn new(source: &'a dyn KvSource) -> Self {
        MlsProvider::with_kept_crypto(source, None)
    }

    /// A provider reading OpenMLS state from `source` on what a client keeps of its crypto
    /// (its generator and the signatures it found valid), without a group cache.
    pub fn with_kept_crypto(source: &'a dyn KvSource, kept: Option<&'a KeptCrypto>) -> Self {
        // Field by field: `..` from another constructor would seed a generator from the
        // system only to drop it (a system call per write-back of deferred secrets).
        MlsProvider {
            crypto: WitanCrypto::kept(kept),
            storage: MlsStorage::new(source),
            group_cache: None,
        }
    }

    /// A provider reading OpenMLS state from `source` whose groups stay decoded in `cache`
    /// between providers (see [`GroupCache`]: its owner clears it when `source`'s rows are
    /// rolled back).
    pub fn with_group_cache(source: &'a dyn KvSource, cache: &'a dyn GroupLoans) -> Self {
        MlsProvider {
            crypto: WitanCrypto::kept(cache.kept_crypto()),
            storage: MlsStorage::new(source),
            group_cache: Some(cache),
        }
    }

    /// A provider like [`MlsProvider::with_group_cache`] whose storage defers the
    /// message-secrets writes of the groups `cache` lends out: the cache then holds secrets
    /// newer than the rows, which its owner must write back (`GroupCache::write_deferred`)
    /// before the rows are read without it or committed (see `GroupCache`).
    pub fn deferring_message_secrets(source: &'a dyn KvSource, cache: &'a dyn GroupLoans) -> Self {
        let mut p = MlsProvider::with_group_cache(source, cache);
        p.storage.defer_message_secrets(cache);
        p
    }

    /// The cache of decoded groups, if this provider has one.
    pub fn group_cache(&self) -> Option<&'a dyn GroupLoans> {
        self.group_cache
    }

    /// Forgets cached groups: their rows are about to change outside of them.
    pub(crate) fn forget_cached_groups(&self) {
        self.storage.stop_deferring();
        if let Some(cache) = self.group_cache {
            cache.forget();
        }
    }

    /// The storage, to take the changes of the step.
    pub fn storage(&self) -> &MlsStorage<'a> {
        &self.storage
    }
}

impl<'a> openmls_traits::OpenMlsProvider for MlsProvider<'a> {
    type CryptoProvider = WitanCrypto<'a>;
    type RandProvider = RustCrypto;
    type StorageProvider = MlsStorage<'a>;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        self.crypto.rust()
    }
}
