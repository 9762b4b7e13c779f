//! Vote signatures: one rule for every check, and a memory of the ones a batch proved.
//!
//! A vote counts only through its own Ed25519 signature, and the same vote is judged by every
//! member — when it arrives sealed, inside a candidate's evidence, in a proof of
//! equivocation. So every member must reach the same verdict on it, whether it checked the
//! vote alone or with others. [`verify_vote_signature`] is that verdict: ZIP-215, the
//! cofactored rule of `super::batch`, under which a signature's validity is a
//! property of the signature alone, so a batch of valid signatures verifies and a batch with
//! an invalid one fails (but for a probability of about 2⁻¹²⁸). Keys of small order are
//! refused, as in the batches.
//!
//! A member that receives many sealed votes at once (a push backlog, a large group's voting
//! window) checks them as one batch first ([`CheckedSignatures::check_batch`]); the ones a
//! passing batch proved are remembered for the packets that carry them, which then cost no
//! second check. A failing batch proves nothing, and each vote is then checked alone — with
//! the same rule, so the outcome is the one the single checks give.
//!
//! A vote checked alone that passes is remembered too (a [`SignatureMemo`] of its own, shared
//! by the copies of one conversation's state): the owner's vote of a proposal is checked when
//! the proposal arrives, again in the candidate that resolves it and again when the certified
//! commit is applied — the creator of a 64-member formation made 190 such checks for its 63
//! proposals.

use std::collections::HashSet;
use std::sync::Arc;

use super::batch::Batch;
use super::memo::{SignatureMemo, signature_digest};
use super::switches::Layer;

/// Signatures remembered at most (a step applies at most a few hundred packets).
pub const MAX_CHECKED: usize = 1024;

/// Whether `signature` by `key` over `message` is valid by the rule every vote check uses
/// (see the module doc).
pub fn verify_vote_signature(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(signature)) = (<&[u8; 32]>::try_from(key), <&[u8; 64]>::try_from(signature))
    else {
        return false;
    };
    crate::metrics::signature_checked();
    super::batch::verify_one(key, message, signature)
}

/// Signatures a batch proved valid, and those checked alone that passed, by a digest of key,
/// message and signature.
#[derive(Clone, Debug)]
pub struct CheckedSignatures {
    proved: HashSet<[u8; 32]>,
    /// Passed single checks: facts about bytes, so every copy may share them. One per
    /// conversation, so smaller than a client's MLS memo.
    remembered: Arc<SignatureMemo>,
}

impl Default for CheckedSignatures {
    fn default() -> Self {
        CheckedSignatures {
            proved: HashSet::new(),
            remembered: Arc::new(SignatureMemo::with_capacity(MAX_CHECKED)),
        }
    }
}

impl CheckedSignatures {
    /// Checks `items` (key, message, signature) as one batch and remembers them if it passes,
    /// in place of what was remembered before. Returns whether the batch passed (a batch of
    /// fewer than two proves nothing worth remembering, and is not checked).
    pub fn check_batch(&mut self, items: &[([u8; 32], Vec<u8>, Vec<u8>)]) -> bool {
        self.proved.clear();
        if items.len() < 2 || items.len() > MAX_CHECKED {
            return false;
        }
        let mut batch = Batch::new(b"witan vote batch");
        for (key, message, signature) in items {
            if !batch.push_for(key, message, signature) {
                return false;
            }
        }
        if !batch.verify() {
            return false;
        }
        self.proved = items
            .iter()
            .map(|(k, m, s)| signature_digest(k, m, s))
            .collect();
        true
    }

    /// Whether a passing batch proved this signature.
    pub fn proved(&self, key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        !self.proved.is_empty()
            && self
                .proved
                .contains(&signature_digest(key, message, signature))
    }

    /// How many signatures are remembered.
    pub fn len(&self) -> usize {
        self.proved.len()
    }

    pub fn is_empty(&self) -> bool {
        self.proved.is_empty()
    }

    /// Forgets everything remembered.
    pub fn clear(&mut self) {
        self.proved.clear();
    }

    /// `verify_vote_signature`, answered from memory for a signature a batch proved or a
    /// single check passed before (unless [`Layer::Signatures`] is off).
    pub fn verify(&self, key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let digest = signature_digest(key, message, signature);
        if !self.proved.is_empty() && self.proved.contains(&digest) {
            return true;
        }
        let remembers = Layer::Signatures.enabled();
        if remembers && self.remembered.knows(&digest) {
            return true;
        }
        let valid = verify_vote_signature(key, message, signature);
        if valid && remembers {
            self.remembered.remember(digest);
        }
        valid
    }

    /// Signatures checked alone and remembered.
    pub fn remembered(&self) -> &SignatureMemo {
        &self.remembered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mls::Identity;

    fn items(n: u8) -> Vec<([u8; 32], Vec<u8>, Vec<u8>)> {
        (1..=n)
            .map(|i| {
                let id = Identity::from_secret(&[i; 32]).unwrap();
                let msg = vec![i; 32];
                let sig = id.sign(&msg);
                (id.public_key(), msg, sig)
            })
            .collect()
    }

    #[test]
    fn a_passing_batch_is_remembered_and_each_signature_verifies_alone_too() {
        let items = items(5);
        let mut checked = CheckedSignatures::default();
        assert!(checked.check_batch(&items));
        assert_eq!(checked.len(), 5);
        for (k, m, s) in &items {
            assert!(checked.proved(k, m, s));
            assert!(verify_vote_signature(k, m, s), "the single rule agrees");
        }
        let (k, m, _) = &items[0];
        let (_, _, other) = &items[1];
        assert!(!checked.proved(k, m, other), "a signature of another voter");
        assert!(!checked.verify(k, m, other));
    }

    #[test]
    fn a_single_check_that_passes_is_remembered_by_every_copy_and_a_forgery_never_is() {
        let items = items(2);
        let (k, m, s) = &items[0];
        let mut forged = s.clone();
        forged[7] ^= 1;
        let mut checked = CheckedSignatures::default();
        let copy = checked.clone();
        assert!(checked.verify(k, m, s));
        assert!(!checked.verify(k, m, &forged));
        assert!(
            !checked.verify(k, m, &forged),
            "a forgery is checked, and refused, again"
        );
        if !Layer::Signatures.enabled() {
            assert!(copy.remembered().is_empty());
            return;
        }
        assert_eq!(copy.remembered().len(), 1, "the valid one, in every copy");
        assert!(copy.verify(k, m, s));
        assert_eq!(copy.remembered().hits(), 1);
        // A batch replaces what batches proved, not what single checks remembered.
        assert!(checked.check_batch(&items));
        assert!(!checked.check_batch(&items[..1]));
        assert!(checked.verify(k, m, s));
        assert_eq!(checked.remembered().hits(), 2);
    }

    #[test]
    fn a_batch_with_one_bad_signature_proves_nothing_and_the_single_checks_find_it() {
        let mut items = items(6);
        items[3].2[5] ^= 1;
        let mut checked = CheckedSignatures::default();
        assert!(checked.check_batch(&items[..2]), "a good batch first");
        assert!(!checked.check_batch(&items));
        assert!(checked.is_empty(), "the earlier batch is forgotten too");
        let verdicts: Vec<bool> = items
            .iter()
            .map(|(k, m, s)| checked.verify(k, m, s))
            .collect();
        assert_eq!(verdicts, [true, true, true, false, true, true]);
    }

    #[test]
    fn a_signature_only_the_cofactored_rule_accepts_is_judged_alike_alone_and_in_a_batch() {
        let msg = b"vote hash".to_vec();
        let (key, sig) = crate::mls::batch::tests::with_torsion(9, &msg, 3);
        assert!(
            !crate::mls::verify_signature(&key, &msg, &sig),
            "the strict check of MLS signatures refuses it"
        );
        assert!(verify_vote_signature(&key, &msg, &sig), "alone");
        let mut batch = items(3);
        batch.push((key, msg.clone(), sig.clone()));
        let mut checked = CheckedSignatures::default();
        assert!(checked.check_batch(&batch), "in a batch");
        assert!(checked.proved(&key, &msg, &sig));
        let mut damaged = sig;
        damaged[40] ^= 1;
        assert!(!verify_vote_signature(&key, &msg, &damaged));
        batch.push((key, msg, damaged));
        assert!(!checked.check_batch(&batch));
    }

    #[test]
    fn weak_keys_short_inputs_and_oversized_batches_are_refused() {
        let items = items(2);
        let (_, m, s) = &items[0];
        let identity_point = {
            let mut k = [0u8; 32];
            k[0] = 1;
            k
        };
        assert!(!verify_vote_signature(&identity_point, m, s));
        assert!(!verify_vote_signature(&[1; 31], m, s));
        assert!(!verify_vote_signature(&items[0].0, m, &s[..63]));
        let mut checked = CheckedSignatures::default();
        assert!(
            !checked.check_batch(&items[..1]),
            "one alone is not batched"
        );
        let many: Vec<_> = items
            .iter()
            .cycle()
            .take(MAX_CHECKED + 1)
            .cloned()
            .collect();
        assert!(!checked.check_batch(&many));
        assert!(checked.is_empty());
    }
}
