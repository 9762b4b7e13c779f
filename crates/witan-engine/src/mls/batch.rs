//! Many signatures of one message checked together: the quorum lists of the commit round
//! (a polka's prevotes, a certificate's precommits), where every member checks up to q(n)
//! signatures of one hash; and the single check of a vote by the same rule ([`verify_one`]).
//!
//! The rule is ZIP-215's: `s` canonical, and the cofactored equation
//! `[8][s]B = [8]R + [8][k]A`. That is not the strict single check of [`super::crypto`] (it
//! accepts a signature whose `R` carries a small-order component, which only the key's
//! holder can make), and it need not be: what a quorum list needs is that every member
//! judges it alike. Under the cofactored equation a signature's validity is a property of
//! that signature alone, so a list passes exactly when each of its signatures is valid —
//! whatever the list's order, or the subset a joiner can check — except with a probability
//! of about 2⁻¹²⁸. The cofactorless batch of ed25519-dalek does not have that property (its
//! verdict on such a signature depends on the random coefficients), so it is not used. Keys
//! of small order are refused as in the single check.
//!
//! The equations are ed25519-zebra's (its batch: one multiscalar multiplication of
//! `-Σzᵢsᵢ·B + Σzᵢ·Rᵢ + Σzᵢkᵢ·Aᵢ`, times the cofactor, is the identity), computed here on
//! keys decoded once (`super::keys`): ed25519-zebra decodes every key again in every batch
//! and every single check — a square root per signature, 7 % of what a member's removal
//! costs at n = 1,000 (docs/bench.md). A differential test holds them to ed25519-zebra's
//! verdicts on genuine, damaged, torsion-carrying and non-canonical signatures.
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

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use curve25519_dalek::{EdwardsPoint, Scalar};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256, Sha512};

/// One queued signature: its key decoded, its `R` still encoded, `s`, and the challenge `k`.
struct Item {
    key: EdwardsPoint,
    r: [u8; 32],
    s: Scalar,
    k: Scalar,
}

/// Signatures of one message, checked together by [`Batch::verify`].
pub struct Batch<'m> {
    message: &'m [u8],
    items: Vec<Item>,
    seed: Sha256,
    /// A key or a signature that can never verify was queued.
    refused: bool,
    queued: usize,
}

/// `signature` by `key` over `message` parsed for the equations: `None` when it can never
/// verify (a weak or undecodable key, a non-canonical `s`).
fn parse(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Option<Item> {
    let decoded = super::keys::verifying_key(key).filter(|k| !k.is_weak())?;
    let (r, s) = signature.split_at(32);
    let r: [u8; 32] = r.try_into().ok()?;
    let s: [u8; 32] = s.try_into().ok()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s))?;
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(r)
            .chain_update(key)
            .chain_update(message),
    );
    Some(Item {
        key: decoded.to_edwards(),
        r,
        s,
        k,
    })
}

/// Whether `signature` by `key` over `message` is valid by the cofactored rule, alone:
/// `[8]([s]B - [k]A - R)` is the identity.
pub fn verify_one(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Some(item) = parse(key, message, signature) else {
        return false;
    };
    let Some(r) = CompressedEdwardsY(item.r).decompress() else {
        return false;
    };
    let recomputed =
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&item.k, &-item.key, &item.s);
    (recomputed - r).mul_by_cofactor().is_identity()
}

impl<'m> Batch<'m> {
    pub fn new(message: &'m [u8]) -> Self {
        let mut seed = Sha256::new();
        seed.update(b"witan quorum batch");
        seed.update((message.len() as u64).to_le_bytes());
        seed.update(message);
        Self {
            message,
            items: Vec::new(),
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
        if self.refused {
            return false;
        }
        let item = <&[u8; 64]>::try_from(signature)
            .ok()
            .and_then(|sig| parse(key, message, sig));
        let Some(item) = item else {
            self.refused = true;
            self.items = Vec::new();
            return false;
        };
        self.seed.update(key);
        self.seed.update(signature);
        self.items.push(item);
        true
    }

    /// Whether every queued signature is valid (an empty batch is).
    #[allow(non_snake_case)]
    pub fn verify(self) -> bool {
        if self.refused {
            return false;
        }
        let mut rng = StdRng::from_seed(self.seed.finalize().into());
        let n = self.items.len();
        let mut B_coeff = Scalar::ZERO;
        let mut scalars = Vec::with_capacity(2 * n + 1);
        let mut points = Vec::with_capacity(2 * n + 1);
        scalars.push(Scalar::ZERO);
        points.push(ED25519_BASEPOINT_POINT);
        for item in &self.items {
            let Some(R) = CompressedEdwardsY(item.r).decompress() else {
                return false;
            };
            let mut z = [0u8; 16];
            rng.fill_bytes(&mut z);
            let z = Scalar::from(u128::from_le_bytes(z));
            B_coeff -= z * item.s;
            scalars.push(z);
            points.push(R);
            scalars.push(z * item.k);
            points.push(item.key);
        }
        scalars[0] = B_coeff;
        EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
            .mul_by_cofactor()
            .is_identity()
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

    /// ed25519-zebra's verdicts: one signature alone, and a batch of it among genuine ones.
    fn zebra(
        key: &[u8; 32],
        msg: &[u8],
        sig: &[u8; 64],
        genuine: &[([u8; 32], Vec<u8>)],
    ) -> (bool, bool) {
        let signature = ed25519_zebra::Signature::from_bytes(sig);
        let alone = ed25519_zebra::VerificationKey::try_from(*key)
            .is_ok_and(|k| k.verify(&signature, msg).is_ok());
        let mut batch = ed25519_zebra::batch::Verifier::new();
        batch.queue((
            ed25519_zebra::VerificationKeyBytes::from(*key),
            signature,
            msg,
        ));
        for (k, s) in genuine {
            let s = <[u8; 64]>::try_from(s.as_slice()).unwrap();
            batch.queue((
                ed25519_zebra::VerificationKeyBytes::from(*k),
                ed25519_zebra::Signature::from_bytes(&s),
                msg,
            ));
        }
        (alone, batch.verify(rand::thread_rng()).is_ok())
    }

    /// A signature by `seed`'s key whose `R` is the identity written with `y = 1 + p`, a
    /// non-canonical encoding ZIP-215 accepts (`r = 0`, so `s = k·a`).
    fn with_noncanonical_r(seed: u8, msg: &[u8]) -> ([u8; 32], [u8; 64]) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let public = key.verifying_key().to_bytes();
        // p + 1 = 2^255 - 18, little-endian.
        let mut r = [0xff; 32];
        r[0] = 0xee;
        r[31] = 0x7f;
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r)
                .chain_update(public)
                .chain_update(msg),
        );
        let s = k * key.to_scalar();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(s.as_bytes());
        (public, sig)
    }

    #[test]
    fn the_equations_agree_with_ed25519_zebra_alone_and_in_batches() {
        let msg = b"a quorum's hash";
        let genuine = signed(4, msg);
        let mut rng = StdRng::seed_from_u64(215);
        let mut cases: Vec<([u8; 32], [u8; 64], &str)> = Vec::new();
        for i in 0..48u8 {
            let id = Identity::from_secret(&[i.wrapping_add(40); 32]).unwrap();
            let sig = <[u8; 64]>::try_from(id.sign(msg).as_slice()).unwrap();
            cases.push((id.public_key(), sig, "genuine"));
            let mut flipped = sig;
            let bit = (rng.next_u32() % 512) as usize;
            flipped[bit / 8] ^= 1 << (bit % 8);
            cases.push((id.public_key(), flipped, "a bit flipped"));
            let (key, torsion) = with_torsion(i.wrapping_add(100), msg, usize::from(i % 8));
            cases.push((key, torsion.try_into().unwrap(), "R with torsion"));
            // s + l: the same scalar, not canonical.
            let mut s = [0u8; 32];
            s.copy_from_slice(&sig[32..]);
            let mut wide = [0u8; 64];
            wide[..32].copy_from_slice(&s);
            let mut unreduced = sig;
            // ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
            let l: [u8; 32] = [
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
                0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ];
            let mut carry = 0u16;
            for j in 0..32 {
                let v = u16::from(s[j]) + u16::from(l[j]) + carry;
                unreduced[32 + j] = v as u8;
                carry = v >> 8;
            }
            cases.push((id.public_key(), unreduced, "s not canonical"));
        }
        let (key, sig) = with_noncanonical_r(7, msg);
        cases.push((key, sig, "R not canonical"));
        let mut valid = 0;
        for (key, sig, what) in &cases {
            let (alone, batched) = zebra(key, msg, sig, &genuine);
            assert_eq!(verify_one(key, msg, sig), alone, "alone: {what}");
            let mut b = Batch::new(msg);
            b.push(key, sig);
            for (k, s) in &genuine {
                b.push(k, s);
            }
            assert_eq!(b.verify(), batched, "in a batch: {what}");
            valid += usize::from(alone);
        }
        assert!(
            valid > 2 * 48,
            "genuine, with torsion, R not canonical: {valid} valid"
        );
        // Unlike ed25519-zebra, both refuse a key of small order (its test above): zebra
        // accepts this signature under the identity key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(zebra(&identity, msg, &[0u8; 64], &genuine).0);
        assert!(!verify_one(&identity, msg, &[0u8; 64]));
    }
}
