//! [`GroupLoans`]: what the OpenMLS provider and its storage need of a cache that lends
//! decoded groups — to defer a lent group's message-secrets write, to forget the groups held
//! when their rows change outside of them, and the client's [`KeptCrypto`] (its random
//! generator, the signatures it found valid), which lives beside the groups. A trait of its
//! own, below the provider, so the provider can carry the cache (`cache::GroupCache`)
//! without importing it: the cache holds groups, and groups run on the provider.

use std::any::Any;

use super::crypto::KeptCrypto;

/// A lender of decoded groups, as the provider and its storage see it.
pub trait GroupLoans: Any {
    /// Whether the storage may skip writing the lent group's message secrets now (the
    /// lender then holds the group ahead of its rows, and writes them back itself).
    fn defer_write(&self) -> bool;
    /// The groups' rows are about to change outside of the groups held: drop them.
    fn forget(&self);
    /// What the lender's client keeps of its crypto between steps (`None`: nothing).
    fn kept_crypto(&self) -> Option<&KeptCrypto> {
        None
    }
}
