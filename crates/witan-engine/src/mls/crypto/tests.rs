//! Tests of the signature checks: the same outcome as ed25519-dalek's `verify_strict` on
//! 10,000 random cases, strictness, and the kept keys changing nothing.
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use rand::{Rng, SeedableRng};

use super::*;
use crate::mls::Identity;

/// `sig` with `s` replaced by `s + l` (l = 2^252 + 27742317777372353535851937790883648493,
/// the group order): the same point equation holds, but the encoding is not canonical.
fn non_canonical_s(sig: &[u8; 64]) -> [u8; 64] {
    let mut l = [0u8; 32];
    l[..16].copy_from_slice(&[
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14,
    ]);
    l[31] = 0x10;
    let mut big = *sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
        big[32 + i] = v as u8;
        carry = v >> 8;
    }
    big
}

/// A signature of `msg` under `sk` whose R is the identity (a point of small order), with an
/// `s` that satisfies the cofactorless equation: plain verification accepts it.
fn small_order_r_forgery(sk: &SigningKey, msg: &[u8]) -> [u8; 64] {
    let a = sk.to_scalar();
    let pk = sk.verifying_key().to_bytes();
    assert_eq!((a * ED25519_BASEPOINT_POINT).compress().to_bytes(), pk);
    let r = EdwardsPoint::default().compress().to_bytes();
    let mut h = Sha512::new();
    h.update(r);
    h.update(pk);
    h.update(msg);
    let s = Scalar::from_hash(h) * a;
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&r);
    forged[32..].copy_from_slice(s.as_bytes());
    forged
}

/// ed25519-dalek's own strict check, the reference (`None`: the key does not decode).
fn dalek_strict(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Option<bool> {
    let key = VerifyingKey::from_bytes(pk).ok()?;
    Some(key.verify_strict(msg, &Signature::from_bytes(sig)).is_ok())
}

fn ours(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Option<bool> {
    let key = VerifyingKey::from_bytes(pk).ok()?;
    Some(verify_strict(&key, msg, sig))
}

/// One random case: a fresh key signs a random message, and the signature, key or message
/// is then left alone or damaged in one of the ways a strict check must see through.
fn random_case(rng: &mut rand::rngs::StdRng) -> ([u8; 32], Vec<u8>, [u8; 64]) {
    let sk = SigningKey::from_bytes(&rng.r#gen());
    let mut pk = sk.verifying_key().to_bytes();
    let mut msg: Vec<u8> = (0..rng.gen_range(0..80)).map(|_| rng.r#gen()).collect();
    let mut sig = sk.sign(&msg).to_bytes();
    match rng.gen_range(0..9) {
        0 | 1 => {}
        2 => sig[rng.gen_range(0..64)] ^= 1 << rng.gen_range(0..8),
        3 => pk[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8),
        4 => msg.push(rng.r#gen()),
        5 => sig = non_canonical_s(&sig),
        6 => sig = small_order_r_forgery(&sk, &msg),
        7 => rng.fill(&mut sig[..]),
        _ => rng.fill(&mut pk[..]),
    }
    (pk, msg, sig)
}

#[test]
fn the_strict_check_agrees_with_ed25519_dalek_on_10000_random_cases() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5717);
    let mut accepted = 0;
    for i in 0..10_000 {
        let (pk, msg, sig) = random_case(&mut rng);
        let want = dalek_strict(&pk, &msg, &sig);
        assert_eq!(
            ours(&pk, &msg, &sig),
            want,
            "case {i}: pk {pk:?} sig {sig:?}"
        );
        accepted += usize::from(want == Some(true));
    }
    // Genuine cases are two in nine; every damage is refused (a flipped message bit or key
    // bit could in principle still verify, with negligible probability).
    assert!((2000..2500).contains(&accepted), "{accepted} accepted");
}

#[test]
fn only_genuine_canonical_signatures_by_sound_keys_pass() {
    for seed in 0..8u8 {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let pk = sk.verifying_key().to_bytes();
        let msg = vec![seed; seed as usize * 7];
        let sig = sk.sign(&msg).to_bytes();
        assert!(verify_ed25519(&pk, &msg, &sig));
        let mut other = msg.clone();
        other.push(1);
        assert!(!verify_ed25519(&pk, &other, &sig));
        for bit in 0..512 {
            let mut bad = sig;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!verify_ed25519(&pk, &msg, &bad), "bit {bit}");
        }
        assert!(!verify_ed25519(&pk, &msg, &non_canonical_s(&sig)));
        let forged = small_order_r_forgery(&sk, &msg);
        let key = VerifyingKey::from_bytes(&pk).unwrap();
        assert!(
            key.verify(&msg, &Signature::from_bytes(&forged)).is_ok(),
            "the cofactorless check accepts the small-order R"
        );
        assert!(!verify_ed25519(&pk, &msg, &forged));
    }
    // Small-order keys: the identity, a point of order 2, and the all-zero encoding.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut order2 = [0u8; 32];
    order2[0] = 0xEC;
    order2[1..31].fill(0xFF);
    order2[31] = 0x7F;
    for pk in [identity, order2, [0u8; 32]] {
        let mut sig = [0u8; 64];
        assert!(!verify_ed25519(&pk, b"m", &sig));
        sig[..32].copy_from_slice(&identity);
        assert!(!verify_ed25519(&pk, b"m", &sig));
    }
}

/// A key `[a]B + T` (T of order 8: not itself of small order) and, for `r` a point of small
/// order, a message and an `s` with `[s]B - [k]A == r`: the cofactorless equation holds with
/// `R = r`. `s = k·a` leaves `-[k]T`, which is `r` for about one message in eight.
fn small_order_r_forgery_under_mixed_key(r: &EdwardsPoint) -> ([u8; 32], Vec<u8>, [u8; 64]) {
    let a = Scalar::from(0x5eed_u64);
    let torsion = EIGHT_TORSION[1];
    let pk = (a * ED25519_BASEPOINT_POINT + torsion)
        .compress()
        .to_bytes();
    let r_bytes = r.compress().to_bytes();
    for i in 0..10_000u32 {
        let msg = i.to_le_bytes().to_vec();
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(pk);
        h.update(&msg);
        let k = Scalar::from_hash(h);
        if -(k * torsion) == *r {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_bytes);
            sig[32..].copy_from_slice((k * a).as_bytes());
            return (pk, msg, sig);
        }
    }
    unreachable!("no message in 10,000 gives the torsion point")
}

#[test]
fn a_signature_whose_r_has_small_order_is_refused_for_each_of_the_eight_points() {
    assert_eq!(SMALL_ORDER.len(), 8);
    for (i, r) in EIGHT_TORSION.iter().enumerate() {
        assert!(r.is_small_order());
        assert_eq!(
            SMALL_ORDER
                .iter()
                .filter(|t| **t == r.compress().to_bytes())
                .count(),
            1
        );
        let (pk, msg, sig) = small_order_r_forgery_under_mixed_key(r);
        let key = VerifyingKey::from_bytes(&pk).unwrap();
        assert!(
            !key.is_weak(),
            "point {i}: the key is of mixed order, not small"
        );
        let expected = EdwardsPoint::vartime_double_scalar_mul_basepoint(
            &Scalar::from_hash(
                Sha512::new()
                    .chain_update(&sig[..32])
                    .chain_update(pk)
                    .chain_update(&msg),
            ),
            &-key.to_edwards(),
            &Scalar::from_canonical_bytes(sig[32..].try_into().unwrap()).unwrap(),
        );
        assert_eq!(expected, *r, "point {i}: the cofactorless equation holds");
        assert_eq!(
            dalek_strict(&pk, &msg, &sig),
            Some(false),
            "point {i}: dalek refuses"
        );
        assert_eq!(
            ours(&pk, &msg, &sig),
            Some(false),
            "point {i}: ours refuses"
        );
    }
    // A genuine signature's R is never one of them.
    let sk = SigningKey::from_bytes(&[9; 32]);
    let sig = sk.sign(b"m").to_bytes();
    assert!(!SMALL_ORDER.iter().any(|t| t[..] == sig[..32]));
    assert!(verify_ed25519(&sk.verifying_key().to_bytes(), b"m", &sig));
}

#[test]
fn the_provider_and_rust_crypto_agree_and_kept_keys_and_signatures_change_nothing() {
    let id = Identity::from_secret(&[5; 32]).unwrap();
    let other = Identity::from_secret(&[6; 32]).unwrap();
    let sig = id.sign(b"message");
    let pk = id.public_key();
    let kept = KeptCrypto::default();
    let cases: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = vec![
        (pk.to_vec(), b"message".to_vec(), sig.clone()),
        (pk.to_vec(), b"other".to_vec(), sig.clone()),
        (
            other.public_key().to_vec(),
            b"message".to_vec(),
            sig.clone(),
        ),
        (pk.to_vec(), b"message".to_vec(), sig[..63].to_vec()),
        (vec![0xFF; 32], b"message".to_vec(), sig.clone()),
        (pk[..31].to_vec(), b"message".to_vec(), sig.clone()),
    ];
    // A crypto of its own and one over kept signatures, three rounds each: the later rounds
    // read every valid key from the kept ones, and the second crypto's its valid signature.
    for crypto in [WitanCrypto::default(), WitanCrypto::kept(Some(&kept))] {
        let check = |pk: &[u8], msg: &[u8], sig: &[u8]| {
            (
                verify_ed25519(pk, msg, sig),
                crypto
                    .verify_signature(SignatureScheme::ED25519, msg, pk, sig)
                    .map_err(|e| format!("{e:?}")),
                crypto
                    .rust()
                    .verify_signature(SignatureScheme::ED25519, msg, pk, sig)
                    .map_err(|e| format!("{e:?}")),
            )
        };
        let rounds: Vec<Vec<_>> = (0..3)
            .map(|_| cases.iter().map(|(p, m, s)| check(p, m, s)).collect())
            .collect();
        assert!(rounds.windows(2).all(|w| w[0] == w[1]));
        for (verified, via_openmls, rust_crypto) in &rounds[0] {
            assert_eq!(via_openmls, rust_crypto);
            assert_eq!(*verified, rust_crypto.is_ok());
        }
        assert!(rounds[0][0].0);
        assert_eq!(
            rounds[0].iter().filter(|c| c.0).count(),
            1,
            "only the genuine case passes"
        );
    }
    if crate::mls::Layer::Signatures.enabled() {
        assert_eq!((kept.signatures().len(), kept.signatures().hits()), (1, 2));
    }
}

#[test]
fn a_read_once_scope_still_checks_but_neither_remembers_nor_looks_up() {
    let id = Identity::from_secret(&[7; 32]).unwrap();
    let (pk, sig) = (id.public_key(), id.sign(b"chat"));
    let kept = KeptCrypto::default();
    let crypto = WitanCrypto::kept(Some(&kept));
    let check = |msg: &[u8]| {
        crypto
            .verify_signature(SignatureScheme::ED25519, msg, &pk, &sig)
            .is_ok()
    };
    assert!(crypto.read_once(|| check(b"chat")));
    assert!(!crypto.read_once(|| check(b"other")));
    assert_eq!(kept.signatures().len(), 0, "nothing remembered inside");
    // Outside the scope (closed even when its body unwinds) the memo is back in use.
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crypto.read_once(|| panic!("inside"))
    }));
    assert!(unwound.is_err());
    assert!(check(b"chat"));
    assert!(check(b"chat"));
    if crate::mls::Layer::Signatures.enabled() {
        assert_eq!((kept.signatures().len(), kept.signatures().hits()), (1, 1));
        // A remembered signature is not taken on trust inside the scope: it is checked.
        assert!(crypto.read_once(|| check(b"chat")));
        assert_eq!(kept.signatures().hits(), 1);
    }
}

#[test]
fn a_batching_scope_refuses_what_any_of_its_checks_would_refuse_and_closes_after_itself() {
    let ids: Vec<Identity> = (1..=5u8)
        .map(|i| Identity::from_secret(&[i; 32]).unwrap())
        .collect();
    let signed: Vec<([u8; 32], Vec<u8>, Vec<u8>)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let msg = format!("leaf {i}").into_bytes();
            (id.public_key(), msg.clone(), id.sign(&msg))
        })
        .collect();
    let crypto = WitanCrypto::default();
    let verify = |items: &[([u8; 32], Vec<u8>, Vec<u8>)]| {
        items
            .iter()
            .map(|(k, m, s)| crypto.verify_signature(SignatureScheme::ED25519, m, k, s))
            .collect::<Vec<_>>()
    };
    let (each, valid) = crypto.batching(|| verify(&signed));
    assert!(valid && each.iter().all(Result::is_ok));

    for bad in 0..signed.len() {
        let mut damaged = signed.clone();
        damaged[bad].2[40] ^= 1;
        // Inside the scope the damaged check is only queued; the scope's verdict refuses it.
        let (each, valid) = crypto.batching(|| verify(&damaged));
        assert!(each.iter().all(Result::is_ok));
        assert!(!valid, "damaged signature {bad} passed the batch");
        // Outside a scope it is refused at once again.
        assert!(verify(&damaged)[bad].is_err());
    }
    // A key that can never verify is refused at once, inside a scope too.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let (each, _) = crypto.batching(|| verify(&[(weak, b"m".to_vec(), vec![0; 64])]));
    assert!(each[0].is_err());

    // An inner scope is the outer one's: its bad signature fails the outer verdict.
    let mut damaged = signed.clone();
    damaged[0].2[40] ^= 1;
    let ((inner, inner_valid), outer_valid) =
        crypto.batching(|| crypto.batching(|| verify(&damaged)));
    assert!(inner.iter().all(Result::is_ok) && inner_valid);
    assert!(!outer_valid);

    // A scope that unwinds is closed all the same.
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crypto.batching(|| -> () { panic!("inside the scope") })
    }));
    assert!(unwound.is_err());
    assert!(verify(&damaged)[0].is_err());
}
