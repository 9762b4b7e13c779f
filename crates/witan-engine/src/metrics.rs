//! Process-wide counters of the engine's costly checks, for the bench and for tests that
//! count work (how many signatures a member checks per commit, how many bytes of
//! certificates it reads). Relaxed atomics: a count costs about a nanosecond and orders
//! nothing. They only ever grow; a reader takes the difference between two readings.

use std::sync::atomic::{AtomicU64, Ordering};

static SIGNATURES: AtomicU64 = AtomicU64::new(0);
static ROUND_SIGNATURES: AtomicU64 = AtomicU64::new(0);
static CERTIFICATE_BYTES: AtomicU64 = AtomicU64::new(0);
static COMMITS_STAGED: AtomicU64 = AtomicU64::new(0);

/// A snapshot of the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Ed25519 signatures checked (MLS messages, votes, prevotes and precommits).
    pub signatures: u64,
    /// Of those, prevote and precommit signatures (single votes, polkas, certificates).
    pub round_signatures: u64,
    /// Encoded bytes of the signature lists of the polkas and certified commits received.
    pub certificate_bytes: u64,
    /// MLS commits staged by OpenMLS (not those handed back kept, `mls::group::commit`).
    pub commits_staged: u64,
}

impl Counters {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            signatures: self.signatures.saturating_sub(earlier.signatures),
            round_signatures: self
                .round_signatures
                .saturating_sub(earlier.round_signatures),
            certificate_bytes: self
                .certificate_bytes
                .saturating_sub(earlier.certificate_bytes),
            commits_staged: self.commits_staged.saturating_sub(earlier.commits_staged),
        }
    }
}

/// The counters now.
pub fn counters() -> Counters {
    Counters {
        signatures: SIGNATURES.load(Ordering::Relaxed),
        round_signatures: ROUND_SIGNATURES.load(Ordering::Relaxed),
        certificate_bytes: CERTIFICATE_BYTES.load(Ordering::Relaxed),
        commits_staged: COMMITS_STAGED.load(Ordering::Relaxed),
    }
}

pub(crate) fn signature_checked() {
    SIGNATURES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn round_signature_checked() {
    ROUND_SIGNATURES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn certificate_received(bytes: usize) {
    CERTIFICATE_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

pub(crate) fn commit_staged() {
    COMMITS_STAGED.fetch_add(1, Ordering::Relaxed);
}
