//! Many signatures of one message checked together: the quorum lists of the commit round
//! (a polka's prevotes, a certificate's precommits), where every member checks up to q(n)
//! signatures of one hash.
//!
//! The check is ed25519-zebra's batch verification, which follows ZIP-215: `s` canonical,
//! and the cofactored equation `[8][s]B = [8]R + [8][k]A`. That is not the strict single
//! check of [`super::crypto`] (it accepts a signature whose `R` carries a small-order
//! component, which only the key's holder can make), and it need not be: what a quorum list
//! needs is that every member judges it alike. Under the cofactored equation a signature's
//! validity is a property of that signature alone, so a list passes exactly when each of its
//! signatures is valid — whatever the list's order, or the subset a joiner can check — except
//! with a probability of about 2⁻¹²⁸. The cofactorless batch of ed25519-dalek does not have
//! that property (its verdict on such a signature depends on the random coefficients), so it
//! is not used. Keys of small order are refused as in the single check.
//!
//! The batch's coefficients come from a generator seeded with a hash of everything checked,
//! so the engine stays a function of its inputs; a forger would have to find a batch whose
//! own hash cancels its error, which costs about 2¹²⁸ tries.
//!
//! Checking q signatures as one batch costs about two thirds of q single checks (docs/bench.md).
//!
//! A batch can also hold signatures of different messages ([`Batch::push_for`]): the
//! signatures a joiner checks in a welcome (every leaf of the tree, the group info), which
//! the provider's crypto collects while OpenMLS processes the welcome
//! (`WitanCrypto::batching`).

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

/// Signatures of one message, checked together by [`Batch::verify`].
pub struct Batch<'m> {
    message: &'m [u8],
    verifier: ed25519_zebra::batch::Verifier,
    seed: Sha256,
    /// A key or a signature that can never verify was queued.
    refused: bool,
    queued: usize,
}

impl<'m> Batch<'m> {
    pub fn new(message: &'m [u8]) -> Self {
        let mut seed = Sha256::new();
        seed.update(b"witan quorum batch");
        seed.update((message.len() as u64).to_le_bytes());
        seed.update(message);
        Self {
            message,
            verifier: ed25519_zebra::batch::Verifier::new(),
            seed,
            refused: false,
            queued: 0,
        }
    }

    /// Queues `signature` by `key` over the batch's message.
    pub fn push(&mut self, key: &[u8; 32], signature: &[u8]) {
        self.queue(key, self.message, signature);
    }

    /// Queues `signature` by `key` over `message`, which need not be the batch's. `false`:
    /// the key or the signature can never verify, and the batch is refused already.
    pub fn push_for(&mut self, key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
        self.seed.update((message.len() as u64).to_le_bytes());
        self.seed.update(message);
        self.queue(key, message, signature)
    }

    /// How many signatures were queued (refused ones included).
    pub fn queued(&self) -> usize {
        self.queued
    }

    fn queue(&mut self, key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
        crate::metrics::signature_checked();
        self.queued += 1;
        let Ok(sig) = <[u8; 64]>::try_from(signature) else {
            self.refused = true;
            return false;
        };
        if super::keys::is_weak_key(key) {
            self.refused = true;
            return false;
        }
        self.seed.update(key);
        self.seed.update(sig);
        let sig = ed25519_zebra::Signature::from_bytes(&sig);
        let key = ed25519_zebra::VerificationKeyBytes::from(*key);
        self.verifier.queue((key, sig, message));
        true
    }

    /// Whether every queued signature is valid (an empty batch is).
    pub fn verify(self) -> bool {
        if self.refused {
            return false;
        }
        let rng = StdRng::from_seed(self.seed.finalize().into());
        self.verifier.verify(rng).is_ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mls::{Identity, verify_signature};

    fn signed(n: u8, msg: &[u8]) -> Vec<([u8; 32], Vec<u8>)> {
        (1..=n)
            .map(|i| {
                let id = Identity::from_secret(&[i; 32]).unwrap();
                (id.public_key(), id.sign(msg))
            })
            .collect()
    }

    fn check(msg: &[u8], items: &[([u8; 32], Vec<u8>)]) -> bool {
        let mut b = Batch::new(msg);
        for (k, s) in items {
            b.push(k, s);
        }
        b.verify()
    }

    #[test]
    fn a_batch_of_genuine_signatures_verifies_in_any_order_and_subset() {
        let mut items = signed(12, b"hash");
        assert!(check(b"hash", &items));
        items.reverse();
        assert!(check(b"hash", &items));
        assert!(check(b"hash", &items[3..7]));
        assert!(check(b"hash", &[]));
    }

    #[test]
    fn a_batch_of_different_messages_verifies_and_fails_on_any_swap() {
        let items: Vec<([u8; 32], Vec<u8>, Vec<u8>)> = (1..=6u8)
            .map(|i| {
                let id = Identity::from_secret(&[i; 32]).unwrap();
                let msg = vec![i; usize::from(i) * 7];
                (id.public_key(), msg.clone(), id.sign(&msg))
            })
            .collect();
        let check = |items: &[([u8; 32], Vec<u8>, Vec<u8>)]| {
            let mut b = Batch::new(&[]);
            for (k, m, s) in items {
                b.push_for(k, m, s);
            }
            assert_eq!(b.queued(), items.len());
            b.verify()
        };
        assert!(check(&items));
        for i in 0..items.len() {
            let mut swapped = items.clone();
            let j = (i + 1) % items.len();
            swapped[i].1 = items[j].1.clone();
            assert!(!check(&swapped), "message of {j} under signature {i}");
        }
    }

    #[test]
    fn one_bad_signature_fails_the_batch_wherever_it_stands() {
        let items = signed(9, b"hash");
        for bad in 0..items.len() {
            let mut damaged = items.clone();
            damaged[bad].1[5] ^= 1;
            assert!(!check(b"hash", &damaged), "flipped bit in signature {bad}");
            let mut swapped = items.clone();
            swapped[bad].0 = items[(bad + 1) % items.len()].0;
            assert!(!check(b"hash", &swapped), "wrong key for signature {bad}");
            let mut short = items.clone();
            short[bad].1.pop();
            assert!(!check(b"hash", &short), "short signature {bad}");
        }
        assert!(!check(b"other", &items));
    }

    #[test]
    fn a_small_order_key_is_refused_as_in_the_single_check() {
        // The identity point: every `[8]R = [8][s]B` "signature" would pass the cofactored
        // equation under it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        assert!(!verify_signature(&identity, b"hash", &sig));
        assert!(!check(b"hash", &[(identity, sig.to_vec())]));
    }

    /// A signature by `seed`'s key over `msg` whose `R` carries the torsion point `t`: valid
    /// under the cofactored equation only.
    pub(crate) fn with_torsion(seed: u8, msg: &[u8], t: usize) -> ([u8; 32], Vec<u8>) {
        use curve25519_dalek::{Scalar, constants};
        use sha2::Sha512;
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let a = key.to_scalar();
        let public = key.verifying_key().to_bytes();
        let r = Scalar::from(1_000_003u64 * u64::from(seed));
        let big_r = (constants::ED25519_BASEPOINT_TABLE * &r + constants::EIGHT_TORSION[t])
            .compress()
            .to_bytes();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(big_r)
                .chain_update(public)
                .chain_update(msg),
        );
        let s = r + k * a;
        let mut sig = big_r.to_vec();
        sig.extend_from_slice(s.as_bytes());
        (public, sig)
    }

    #[test]
    fn a_signature_valid_only_under_the_cofactored_equation_counts_alike_in_every_batch() {
        let mut items = signed(6, b"hash");
        let odd = with_torsion(9, b"hash", 1);
        assert!(
            !verify_signature(&odd.0, b"hash", &odd.1),
            "the single check refuses it"
        );
        items.insert(2, odd.clone());
        assert!(check(b"hash", &items));
        items.reverse();
        assert!(check(b"hash", &items));
        assert!(check(b"hash", std::slice::from_ref(&odd)));
        assert!(check(b"hash", &items[..3]));
        // It is still bound to its message and key.
        assert!(!check(b"other", std::slice::from_ref(&odd)));
        let mut damaged = odd;
        damaged.1[40] ^= 1;
        assert!(!check(b"hash", &[damaged]));
    }

    #[test]
    fn the_batch_agrees_with_the_single_check_on_genuine_and_damaged_signatures() {
        let items = signed(40, b"m");
        for (i, (k, s)) in items.iter().enumerate() {
            let mut s = s.clone();
            if i % 3 == 0 {
                s[i % 64] ^= 0x10;
            }
            assert_eq!(
                check(b"m", &[(*k, s.clone())]),
                verify_signature(k, b"m", &s),
                "signature {i}"
            );
        }
    }
}
