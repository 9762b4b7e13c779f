//! Checks that the hand-written prost types encode exactly what `proto/witan_wire.proto`
//! declares: every message of the file has a Rust type, every field of the file survives a
//! trip through that type byte for byte, and the Rust samples of every message carry no field
//! the file does not declare. Types with one encoding (`int64` and `uint64` holding the same
//! 64 bits) cannot be told apart by bytes; every other difference of tag or type shows.

use std::collections::BTreeSet;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

use super::envelope::*;
use super::messages::*;
use super::samples;

const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
const PROTO_FILE: &str = "witan_wire.proto";
const PACKAGE: &str = "witan.wire";

/// Decodes `bytes` as the Rust type `M` and encodes it again.
fn through<M: Message + Default>(bytes: &[u8]) -> Vec<u8> {
    match M::decode(bytes) {
        Ok(m) => m.encode_to_vec(),
        Err(e) => panic!("the Rust type refused bytes the .proto allows: {e}"),
    }
}

type Through = fn(&[u8]) -> Vec<u8>;

/// The Rust type of each message of the file, by its name there.
fn rust_types() -> Vec<(&'static str, Through)> {
    vec![
        ("Envelope", through::<Envelope>),
        ("CatchUp", through::<CatchUp>),
        ("JoinRequest", through::<JoinRequest>),
        ("WelcomePacket", through::<WelcomePacket>),
        ("GroupPayload", through::<GroupPayload>),
        ("Chat", through::<Chat>),
        ("Proposal", through::<Proposal>),
        ("Vote", through::<Vote>),
        ("ProposalPayload", through::<ProposalPayload>),
        ("AddMember", through::<AddMember>),
        ("RemoveMember", through::<RemoveMember>),
        ("SelfLeave", through::<SelfLeave>),
        ("EmergencyRemoval", through::<EmergencyRemoval>),
        ("EmergencyEvidence", through::<EmergencyEvidence>),
        ("ConversationSync", through::<ConversationSync>),
        ("PeerScore", through::<PeerScore>),
        ("SyncSettings", through::<SyncSettings>),
        ("VoteBundle", through::<VoteBundle>),
        ("Candidate", through::<Candidate>),
        ("Resolution", through::<Resolution>),
        ("EquivocationProof", through::<EquivocationProof>),
        ("RoundVote", through::<RoundVote>),
        ("RoundSignature", through::<RoundSignature>),
        ("Polka", through::<Polka>),
        ("CertifiedCommit", through::<CertifiedCommit>),
        ("NewRound", through::<NewRound>),
        ("Sealed", through::<crate::Sealed>),
        ("SealedPayload", through::<crate::SealedPayload>),
        ("SignedVote", through::<crate::SignedVote>),
    ]
}

fn pool() -> DescriptorPool {
    let files = match protox::compile([PROTO_FILE], [PROTO_DIR]) {
        Ok(files) => files,
        Err(e) => panic!("{PROTO_FILE} does not compile: {e}"),
    };
    match DescriptorPool::from_file_descriptor_set(files) {
        Ok(pool) => pool,
        Err(e) => panic!("{PROTO_FILE} gives no descriptor pool: {e}"),
    }
}

fn message(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    match pool.get_message_by_name(&format!("{PACKAGE}.{name}")) {
        Some(m) => m,
        None => panic!("{PROTO_FILE} has no message {name}"),
    }
}

/// A value for `field` whose encoding tells the field's type apart from its neighbours':
/// signed integers are negative, unsigned ones use their top bit, enums a non-zero value.
fn sample_value(field: &FieldDescriptor, depth: usize, variant: usize) -> Option<Value> {
    let n = field.number();
    Some(match field.kind() {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(-(n as i32) - 1),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(-i64::from(n) - 1_000_000_007),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(0x8000_0000 | n),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(0x8000_0000_0000_0000 | u64::from(n)),
        Kind::Bool => Value::Bool(true),
        Kind::String => Value::String(format!("field {n}")),
        Kind::Bytes => Value::Bytes(vec![n as u8; 3].into()),
        Kind::Float => Value::F32(n as f32),
        Kind::Double => Value::F64(f64::from(n)),
        Kind::Enum(e) => Value::EnumNumber(e.values().map(|v| v.number()).max().unwrap_or(0)),
        Kind::Message(m) => {
            if depth == 0 {
                return None;
            }
            Value::Message(full_message(&m, depth - 1, variant))
        }
    })
}

/// `desc` with every field set; of each oneof, the member `variant` picks.
fn full_message(desc: &MessageDescriptor, depth: usize, variant: usize) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        if let Some(oneof) = field.containing_oneof() {
            let members: Vec<u32> = oneof.fields().map(|f| f.number()).collect();
            if members[variant % members.len()] != field.number() {
                continue;
            }
        }
        let Some(value) = sample_value(&field, depth, variant) else {
            continue;
        };
        let value = if field.is_list() {
            Value::List(vec![value.clone(), value])
        } else {
            value
        };
        msg.set_field(&field, value);
    }
    msg
}

fn oneof_width(desc: &MessageDescriptor) -> usize {
    desc.oneofs().map(|o| o.fields().len()).max().unwrap_or(1)
}

#[test]
fn proto_file_declares_exactly_the_rust_messages() {
    let pool = pool();
    let declared: BTreeSet<String> = pool
        .all_messages()
        .filter(|m| m.package_name() == PACKAGE)
        .map(|m| m.name().to_string())
        .collect();
    let rust: BTreeSet<String> = rust_types().iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(declared, rust);
}

#[test]
fn proto_file_fields_survive_the_rust_types_byte_for_byte() {
    let pool = pool();
    for (name, through) in rust_types() {
        let desc = message(&pool, name);
        for variant in 0..oneof_width(&desc) {
            let declared = full_message(&desc, 3, variant).encode_to_vec();
            assert_eq!(
                through(&declared),
                declared,
                "{name} (oneof member {variant}) does not encode as {PROTO_FILE} declares"
            );
        }
    }
}

/// Every (message, field number) set anywhere in `msg`; panics on a field the file lacks.
fn collect_fields(msg: &DynamicMessage, seen: &mut BTreeSet<(String, u32)>) {
    let name = msg.descriptor().name().to_string();
    if let Some(unknown) = msg.unknown_fields().next() {
        panic!(
            "{name} carries field {} that {PROTO_FILE} does not declare",
            unknown.number()
        );
    }
    for (field, value) in msg.fields() {
        seen.insert((name.clone(), field.number()));
        let nested: Vec<&DynamicMessage> = match value {
            Value::Message(m) => vec![m],
            Value::List(items) => items.iter().filter_map(Value::as_message).collect(),
            _ => Vec::new(),
        };
        for m in nested {
            collect_fields(m, seen);
        }
    }
}

/// Samples of every message with every field set somewhere: the shared samples plus the
/// fields they leave at their defaults.
fn rust_samples() -> Vec<(&'static str, Vec<u8>)> {
    let mut vote = samples::vote(1);
    vote.parent_hash = vec![9; 32];
    vote.vote = true;
    let mut candidate = samples::candidate();
    candidate.pol = Some(Polka {
        round: 1,
        ..samples::polka()
    });
    let mut resolution = samples::resolution(6);
    resolution.dropped = true;
    candidate.resolutions.push(resolution);
    let catch_up = CatchUp {
        epoch: 3,
        gone: true,
        oldest: 2,
        key: vec![1; 32],
        signature: vec![2; 64],
    };
    let mut samples: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "Envelope",
            samples::envelope().addressed(vec![5; 16]).encode_to_vec(),
        ),
        ("CatchUp", catch_up.encode_to_vec()),
        ("JoinRequest", samples::join_request().encode_to_vec()),
        ("WelcomePacket", samples::welcome().encode_to_vec()),
        ("Vote", vote.encode_to_vec()),
        ("Candidate", candidate.encode_to_vec()),
        ("ConversationSync", samples::sync().encode_to_vec()),
        (
            "EmergencyEvidence",
            samples::emergency_evidence().encode_to_vec(),
        ),
    ];
    for p in samples::group_payloads() {
        samples.push(("GroupPayload", p.encode_to_vec()));
    }
    samples.push(("Sealed", samples::sealed().encode_to_vec()));
    for p in samples::sealed_payloads() {
        samples.push(("SealedPayload", p.encode_to_vec()));
    }
    for i in 0..4 {
        let payload = ProposalPayload::new(7, samples::action(i));
        samples.push(("ProposalPayload", payload.encode_to_vec()));
    }
    samples
}

#[test]
fn rust_samples_carry_only_fields_the_proto_file_declares() {
    let pool = pool();
    let mut seen = BTreeSet::new();
    for (name, bytes) in rust_samples() {
        let desc = message(&pool, name);
        let msg = match DynamicMessage::decode(desc, bytes.as_slice()) {
            Ok(m) => m,
            Err(e) => panic!("{PROTO_FILE} cannot read a Rust {name}: {e}"),
        };
        collect_fields(&msg, &mut seen);
        assert_eq!(msg.encode_to_vec(), bytes, "{name} re-encodes differently");
    }
    // The samples must reach every declared field, or the check above proves little.
    let mut missing = Vec::new();
    for desc in pool.all_messages().filter(|m| m.package_name() == PACKAGE) {
        for field in desc.fields() {
            if !seen.contains(&(desc.name().to_string(), field.number())) {
                missing.push(format!("{}.{}", desc.name(), field.name()));
            }
        }
    }
    assert!(missing.is_empty(), "no sample sets: {missing:?}");
}
