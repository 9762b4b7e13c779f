//! Tests of [`super`]: round trips of every message, input and envelope limits, join and
//! welcome rules, and the pre-scan against memory amplification.

use super::*;
use crate::decode_proposal_payload;
use crate::encode;
use crate::envelope::*;
use crate::messages::*;
use crate::proposal_payload::Action;
use crate::samples;
use crate::testutil::*;

type Decoder = fn(&[u8]) -> Result<(), WireError>;
type Refuses = fn(&[u8]) -> bool;

#[test]
fn every_message_round_trips() {
    let e = samples::envelope();
    assert_eq!(decode_envelope(&encode(&e)).unwrap(), e);
    assert_eq!(decode_envelope(&e.to_bytes()).unwrap(), e);
    for p in samples::group_payloads() {
        assert_eq!(decode_group_payload(&encode(&p)).unwrap(), p);
    }
    let j = samples::join_request();
    assert_eq!(decode_join_request(&encode(&j)).unwrap(), j);
    let w = samples::welcome();
    assert_eq!(decode_welcome_packet(&encode(&w)).unwrap(), w);
    let s = decode_conversation_sync(&w.sync).unwrap();
    assert_eq!(s, samples::sync());
    for i in 0..4 {
        let p = ProposalPayload::new(u64::from(i), samples::action(i));
        assert_eq!(decode_proposal_payload(&encode(&p)).unwrap(), p);
    }
    for kind in [
        PacketKind::JoinRequest,
        PacketKind::Welcome,
        PacketKind::Group,
        PacketKind::CatchUp,
        PacketKind::Sealed,
    ] {
        let e = Envelope::new("c", vec![1; 20], kind, vec![]);
        assert_eq!(decode_envelope(&encode(&e)).unwrap().kind(), kind);
    }
    let mut settings = samples::settings();
    settings.auto_vote_delay_ms = None;
    let s = ConversationSync {
        settings: Some(settings),
        ..samples::sync()
    };
    assert_eq!(decode_conversation_sync(&encode(&s)).unwrap(), s);
}

#[test]
fn smallest_valid_encodings_match_the_scan_minimums() {
    let vote = Vote {
        vote_owner: vec![1; 32],
        vote_hash: vec![2; 32],
        signature: vec![3; 64],
        ..Default::default()
    };
    validate_vote(&vote).unwrap();
    assert_eq!(encode(&vote).len(), MIN_VOTE_BYTES);
    let payload = encode(&ProposalPayload::new(
        0,
        Action::Leave(SelfLeave {
            member_id: vec![1; 20],
        }),
    ));
    assert_eq!(payload.len(), MIN_PROPOSAL_PAYLOAD_BYTES);
    let proposal = Proposal {
        payload,
        proposal_owner: vec![1; 32],
        expected_voters_count: 1,
        ..Default::default()
    };
    validate_proposal(&proposal).unwrap();
    assert_eq!(encode(&proposal).len(), MIN_PROPOSAL_BYTES);
    let score = PeerScore {
        member_id: vec![1; 20],
        score: 0,
    };
    assert_eq!(encode(&score).len(), MIN_PEER_SCORE_BYTES);
    // The smallest ones decode inside their containers.
    let bundle = GroupPayload::new(Content::Votes(VoteBundle {
        votes: vec![vote.clone()],
    }));
    decode_group_payload(&encode(&bundle)).unwrap();
    let resolution = Resolution {
        proposal: Some(proposal),
        ..Default::default()
    };
    assert_eq!(encode(&resolution).len(), MIN_RESOLUTION_BYTES);
    let candidate = Candidate {
        resolutions: vec![resolution],
        ..samples::candidate()
    };
    decode_group_payload(&encode(&GroupPayload::new(Content::Candidate(candidate)))).unwrap();
    let proof = EquivocationProof {
        first: Some(vote.clone()),
        second: Some(vote.clone()),
    };
    assert!(encode(&proof).len() >= MIN_PROOF_BYTES);
    let signature = RoundSignature {
        voter_key: vec![1; 32],
        signature: vec![2; 64],
    };
    assert_eq!(encode(&signature).len(), MIN_ROUND_SIGNATURE_BYTES);
}

#[test]
fn oversized_inputs_are_refused_before_decoding() {
    let cases: [(Decoder, usize); 6] = [
        (|b| decode_envelope(b).map(drop), MAX_ENVELOPE_BYTES),
        (
            |b| decode_group_payload(b).map(drop),
            MAX_GROUP_PAYLOAD_BYTES,
        ),
        (|b| decode_join_request(b).map(drop), MAX_JOIN_REQUEST_BYTES),
        (
            |b| decode_welcome_packet(b).map(drop),
            MAX_WELCOME_PACKET_BYTES,
        ),
        (
            |b| decode_proposal_payload(b).map(drop),
            MAX_PROPOSAL_PAYLOAD_BYTES,
        ),
        (|b| decode_conversation_sync(b).map(drop), MAX_SYNC_BYTES),
    ];
    for (decode, max) in cases {
        let err = decode(&vec![0u8; max + 1]).unwrap_err();
        assert!(
            matches!(err, WireError::TooLarge { len, max: m, .. } if len == max + 1 && m == max),
            "{err:?}"
        );
    }
}

#[test]
fn truncated_bytes_are_refused() {
    let inputs: Vec<(Vec<u8>, Refuses)> = vec![
        (encode(&samples::envelope()), |b| {
            decode_envelope(b).is_err()
        }),
        (encode(&samples::join_request()), |b| {
            decode_join_request(b).is_err()
        }),
        (encode(&samples::welcome()), |b| {
            decode_welcome_packet(b).is_err()
        }),
        (encode(&samples::group_payloads()[3]), |b| {
            decode_group_payload(b).is_err()
        }),
    ];
    for (bytes, refused) in inputs {
        for cut in [1, 2, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(refused(&bytes[..cut]), "cut at {cut} of {}", bytes.len());
        }
        assert!(refused(&[]), "empty input must be refused");
    }
}

/// Why `e`, encoded, does not decode.
fn envelope_err(e: &Envelope) -> WireError {
    decode_envelope(&encode(e)).unwrap_err()
}

#[test]
fn an_envelope_of_another_version_or_an_unknown_kind_is_refused() {
    let base = samples::envelope();
    for version in [0, 1] {
        let e = Envelope {
            version,
            ..base.clone()
        };
        assert_eq!(envelope_err(&e), WireError::UnsupportedVersion(version));
    }
    for kind in [0, 6, -1, 1000] {
        let e = Envelope {
            kind,
            ..base.clone()
        };
        assert_eq!(field_of(envelope_err(&e)), "envelope.kind");
    }
}

#[test]
fn an_envelope_whose_packet_id_is_not_its_bodys_is_refused() {
    let base = samples::envelope();
    let mut e = base.clone();
    e.packet_id[0] ^= 1;
    assert_eq!(field_of(envelope_err(&e)), "envelope.packet_id");
    let mut e = base.clone();
    e.body = [&e.body[..], &[0]].concat().into();
    assert_eq!(field_of(envelope_err(&e)), "envelope.packet_id");
    let e = Envelope {
        packet_id: crate::packet_id(&base.body)[..15].to_vec(),
        ..base.clone()
    };
    assert_eq!(field_of(envelope_err(&e)), "envelope.packet_id");
}

#[test]
fn an_envelope_with_a_malformed_recipient_sender_or_conversation_id_is_refused() {
    let base = samples::envelope();
    for recipient in [vec![1; 15], vec![1; 17], vec![1; 32]] {
        let e = Envelope {
            recipient,
            ..base.clone()
        };
        assert_eq!(field_of(envelope_err(&e)), "envelope.recipient");
    }
    let addressed = base.clone().addressed(vec![9; 16]);
    assert_eq!(decode_envelope(&encode(&addressed)).unwrap(), addressed);
    for sender in [vec![], vec![1; 19], vec![1; 21], vec![1; 32]] {
        let e = Envelope {
            sender,
            ..base.clone()
        };
        assert_eq!(field_of(envelope_err(&e)), "envelope.sender");
    }
    for conversation_id in [String::new(), "c".repeat(129)] {
        let e = Envelope {
            conversation_id,
            ..base.clone()
        };
        assert_eq!(field_of(envelope_err(&e)), "envelope.conversation_id");
    }
    let e = Envelope {
        conversation_id: "c".repeat(128),
        ..base.clone()
    };
    decode_envelope(&encode(&e)).unwrap();
    // Invalid UTF-8 in the conversation id is malformed.
    let mut bytes = encode(&Envelope {
        conversation_id: "abc".into(),
        ..base.clone()
    });
    let at = bytes.windows(3).position(|w| w == b"abc").unwrap();
    bytes[at] = 0xff;
    assert!(matches!(
        decode_envelope(&bytes),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn an_envelope_body_past_its_bound_is_too_large() {
    let e = Envelope::new(
        "c",
        [1u8; 20],
        PacketKind::Group,
        vec![0u8; MAX_BODY_BYTES + 1],
    );
    assert!(matches!(
        envelope_err(&e),
        WireError::TooLarge {
            what: "envelope.body",
            ..
        }
    ));
}

#[test]
fn join_request_and_welcome_rules_are_enforced() {
    let j = |key_package| {
        decode_join_request(&encode(&JoinRequest {
            key_package,
            requested_at_ms: 1,
        }))
    };
    assert_eq!(field_of(j(vec![]).unwrap_err()), "join_request.key_package");
    assert_eq!(
        field_of(j(vec![1; MAX_KEY_PACKAGE_BYTES + 1]).unwrap_err()),
        "join_request.key_package"
    );
    j(vec![1; MAX_KEY_PACKAGE_BYTES]).unwrap();

    let w = |f: fn(&mut WelcomePacket)| {
        let mut w = samples::welcome();
        f(&mut w);
        field_of(decode_welcome_packet(&encode(&w)).unwrap_err())
    };
    assert_eq!(w(|w| w.welcome.clear()), "welcome_packet.welcome");
    assert_eq!(
        w(|w| w.sync = vec![0; MAX_SYNC_BYTES + 1].into()),
        "welcome_packet.sync"
    );
    // The sync of a thousand-member formation (999 resolved adds with their key packages,
    // carried again in the certified candidate) is over a mebibyte.
    let mut big = samples::welcome();
    big.sync = vec![0; 2 * 1024 * 1024].into();
    assert!(decode_welcome_packet(&encode(&big)).is_ok());
    let mut without_commit = samples::welcome();
    without_commit.commit = Bytes::new();
    assert!(decode_welcome_packet(&encode(&without_commit)).is_ok());
    assert_eq!(w(|w| w.joiners.push(vec![1; 19])), "welcome_packet.joiners");
    assert_eq!(
        w(|w| w.joiners = vec![vec![1; 20]; MAX_JOINERS_PER_WELCOME + 1]),
        "welcome_packet.joiners"
    );
}

#[test]
fn empty_repeated_elements_cannot_inflate_memory() {
    // 3 MiB of empty votes would be ~1.5 million structs; the pre-scan refuses it.
    let mut bundle = Vec::new();
    for _ in 0..(3 * 1024 * 1024 / 2) {
        bundle.extend_from_slice(&[0x0a, 0x00]);
    }
    let mut payload = vec![0x32];
    let mut len = bundle.len();
    while len >= 0x80 {
        payload.push((len as u8) | 0x80);
        len >>= 7;
    }
    payload.push(len as u8);
    payload.extend_from_slice(&bundle);
    let err = decode_group_payload(&payload).unwrap_err();
    assert_eq!(field_of(err), "vote_bundle.votes");
    // Same for empty joiner ids in a welcome packet.
    let mut welcome = encode(&samples::welcome());
    for _ in 0..1000 {
        welcome.extend_from_slice(&[0x1a, 0x00]);
    }
    assert_eq!(
        field_of(decode_welcome_packet(&welcome).unwrap_err()),
        "welcome_packet.joiners"
    );
}

#[test]
fn an_envelope_decoded_from_a_shared_buffer_views_its_body_and_checks_alike() {
    let e = samples::envelope();
    let wire = Bytes::from(encode(&e));
    let (shared, key) = decode_envelope_keyed_shared(wire.clone()).unwrap();
    assert_eq!((shared.clone(), key), decode_envelope_keyed(&wire).unwrap());
    assert_eq!(shared, e);
    // The body is a view of the buffer it was decoded from, not a copy of it.
    let start = wire.as_ptr() as usize;
    let body = shared.body.as_ptr() as usize;
    assert!(body >= start && body + shared.body.len() <= start + wire.len());

    // What the copying decoder refuses, the shared one refuses with the same error.
    let mut tampered = e.clone();
    tampered.packet_id[0] ^= 1;
    let tampered = encode(&tampered);
    assert_eq!(
        decode_envelope_keyed_shared(Bytes::from(tampered.clone())),
        decode_envelope_keyed(&tampered)
    );
    let long = Bytes::from(vec![0u8; MAX_ENVELOPE_BYTES + 1]);
    assert!(matches!(
        decode_envelope_keyed_shared(long),
        Err(WireError::TooLarge { .. })
    ));
    assert!(decode_envelope_keyed_shared(Bytes::from_static(&[0xff, 0xff])).is_err());
}

#[test]
fn a_welcome_packet_decoded_from_a_shared_buffer_views_its_welcome_and_sync_and_checks_alike() {
    let w = samples::welcome();
    let wire = Bytes::from(encode(&w));
    let shared = decode_welcome_packet_shared(wire.clone()).unwrap();
    assert_eq!(shared, decode_welcome_packet(&wire).unwrap());
    assert_eq!(shared, w);
    // The welcome, the sync and the commit are views of the buffer, not copies of it.
    let (start, end) = (wire.as_ptr() as usize, wire.as_ptr() as usize + wire.len());
    assert!(!shared.commit.is_empty());
    for field in [&shared.welcome, &shared.sync, &shared.commit] {
        let at = field.as_ptr() as usize;
        assert!(at >= start && at + field.len() <= end);
    }
    // What the copying decoder refuses, the shared one refuses with the same error.
    let mut empty = w.clone();
    empty.welcome = Bytes::new();
    let empty = encode(&empty);
    assert_eq!(
        decode_welcome_packet_shared(Bytes::from(empty.clone())),
        decode_welcome_packet(&empty)
    );
    assert!(decode_welcome_packet_shared(Bytes::from(empty)).is_err());
    let long = Bytes::from(vec![0u8; MAX_WELCOME_PACKET_BYTES + 1]);
    assert!(matches!(
        decode_welcome_packet_shared(long),
        Err(WireError::TooLarge { .. })
    ));
}
