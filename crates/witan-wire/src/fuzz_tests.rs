//! Robustness tests: random garbage and mutated valid encodings must decode to `Ok` or a
//! `WireError`, never panic, and anything that decodes must re-validate.

use super::samples;
use super::testutil::*;
use super::*;

type Decoder = fn(&[u8]) -> Result<(), WireError>;

const DECODERS: [Decoder; 9] = [
    |b| decode_envelope(b).and_then(|e| validate_envelope(&e)),
    |b| decode_group_payload(b).and_then(|p| validate_group_payload(&p)),
    |b| decode_join_request(b).and_then(|r| validate_join_request(&r)),
    |b| decode_welcome_packet(b).and_then(|w| validate_welcome_packet(&w)),
    |b| decode_proposal_payload(b).and_then(|p| validate_proposal_payload(&p)),
    |b| decode_conversation_sync(b).and_then(|s| validate_conversation_sync(&s)),
    |b| decode_emergency_evidence(b).map(|_| ()),
    |b| decode_sealed(b).and_then(|s| validate_sealed(&s)),
    |b| decode_sealed_payload(b).and_then(|p| validate_sealed_payload(&p)),
];

fn decode_all(bytes: &[u8]) {
    for decode in DECODERS {
        // Either outcome is fine; a panic fails the test.
        let _ = decode(bytes);
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..4000 {
        let len = rng.below(600);
        let bytes = rng.bytes(len);
        decode_all(&bytes);
    }
}

#[test]
fn garbage_built_from_protobuf_keys_never_panics() {
    // Random sequences of plausible keys and lengths reach deeper than uniform bytes.
    let keys: [u8; 12] = [
        0x08, 0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32, 0x52, 0x5a, 0x72, 0xaa, 0xe2,
    ];
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for _ in 0..3000 {
        let mut bytes = Vec::new();
        for _ in 0..rng.below(40) {
            bytes.push(keys[rng.below(keys.len())]);
            if rng.below(4) == 0 {
                bytes.push(0x01);
            }
            let len = rng.below(40);
            bytes.push(len as u8);
            let body_len = rng.below(len + 2);
            let body = rng.bytes(body_len);
            bytes.extend_from_slice(&body);
        }
        decode_all(&bytes);
    }
}

#[test]
fn mutated_valid_messages_never_panic() {
    let mut seeds: Vec<Vec<u8>> = vec![
        encode(&samples::envelope()),
        encode(&samples::join_request()),
        encode(&samples::welcome()),
        encode(&samples::sync()),
    ];
    seeds.extend(samples::group_payloads().iter().map(encode));
    seeds.extend(samples::sealed_payloads().iter().map(encode));
    seeds.push(encode(&samples::sealed()));
    seeds.extend((0..5).map(|i| encode(&ProposalPayload::new(1, samples::action(i)))));
    let mut rng = XorShift(0xdead_beef_cafe_f00d);
    for round in 0..3000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next_u64() as u8,
                2 => bytes.truncate(at),
                _ => {
                    let extra_len = 1 + rng.below(8);
                    let extra = rng.bytes(extra_len);
                    bytes.splice(at..at, extra);
                }
            }
        }
        decode_all(&bytes);
    }
}

#[test]
fn huge_declared_lengths_are_refused_cheaply() {
    // A length varint claiming ~2^63 bytes, and one claiming u64::MAX.
    for bytes in [
        vec![0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        vec![
            0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ] {
        for decode in DECODERS {
            assert!(decode(&bytes).is_err());
        }
    }
}
