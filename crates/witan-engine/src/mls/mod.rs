//! `mls`: a policy-fixing wrapper over OpenMLS, with the storage and caches it runs on.
//!
//! - [`member_id`]: the 20-byte [`MemberId`] = `SHA256(public key)[..20]`, which is also
//!   every leaf's basic credential.
//! - [`identity`]: the Ed25519 [`Identity`] (MLS signatures and votes).
//! - [`kv`]: [`KvSource`], the read side of the key-value rows, and [`MemoryKv`].
//! - [`storage`]: [`MlsStorage`], OpenMLS persistence over key-value rows; it collects each
//!   run's writes, which the caller writes to its own transaction ([`MemoryKv`] for tests).
//! - [`provider`]: [`MlsProvider`], the OpenMLS provider (RustCrypto + [`MlsStorage`]).
//! - [`key_package`]: creating and validating key packages.
//! - [`group`]: [`Group`], one conversation's MLS group: create, join, encrypt/decrypt,
//!   create/stage/merge commits.
//! - [`cache`]: [`GroupCache`], a decoded group kept between engine runs.
//! - [`loans`]: [`GroupLoans`], what the provider and storage need of that cache.
//! - [`switches`]: [`Layer`], the switches that turn every cache of witan off.
//! - [`crypto`]: signature checks with decoded public keys kept.
//! - [`memo`]: [`SignatureMemo`], the signatures one client found valid.
//! - [`seal`]: the epoch's sealing key and the AEAD of sealed packets (votes outside MLS).
//! - [`batch`]: many signatures of one message checked together (the commit round's quorum
//!   lists).
//!
//! Nothing here panics on data from the network or the database; every failure is an
//! [`MlsError`].

pub mod batch;
pub mod cache;
pub mod checked;
pub mod crypto;
pub mod error;
pub mod group;
pub mod identity;
pub mod key_package;
mod keys;
pub mod kv;
pub mod loans;
pub mod member_id;
pub mod memo;
pub mod provider;
pub mod seal;
pub mod storage;
pub mod switches;

#[cfg(test)]
mod tests;

pub use cache::{CARRY_BOUND, CachedGroup, CarryBound, Carrying, GroupCache};
pub use checked::{CheckedSignatures, verify_vote_signature};
pub use error::MlsError;
pub use group::{
    CommitOutput, Decrypted, Group, MAX_PAST_EPOCHS, MAXIMUM_FORWARD_DISTANCE,
    OUT_OF_ORDER_TOLERANCE, StagedCommitInfo,
};
pub use identity::{Identity, verify_signature};
pub use key_package::{
    KeyPackageInfo, MAX_MLS_MESSAGE_BYTES, new_key_package, validate_key_package,
};
pub use kv::{KvSource, MemoryKv};
pub use loans::GroupLoans;
pub use member_id::{BadMemberId, MEMBER_ID_LEN, MemberId};
pub use memo::SignatureMemo;
pub use provider::{CIPHERSUITE, MlsProvider};
pub use seal::SealKey;
pub use storage::{MlsStorage, MlsStorageError};
pub use switches::Layer;
