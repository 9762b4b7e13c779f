//! The `receive` targets' inputs. `raw`: the input is the packet. `structured`: the first
//! byte picks a mode (mod 5):
//!
//! 0. an envelope of the current version with a correct packet id around the rest as body;
//!    bytes 1–3 pick the sender (member 0, member 1 itself, a stranger, a malformed id), the
//!    conversation (ours or another) and the kind (0–5, including unknown);
//! 1. the rest as the plaintext of a real MLS application message from member 0 in the
//!    current epoch (so it reaches the `GroupPayload` decoder and the engine);
//! 2. a valid packet (byte 1 picks it) patched by the rest ([`crate::mutate::patch`]);
//! 3. the body of a valid packet patched by the rest, re-wrapped in a correct envelope;
//! 4. the rest as the plaintext of a packet sealed with the current epoch's key (so it
//!    reaches the `SealedPayload` decoder and the engine's sealed votes).

use witan::wire::{self, Chat, Envelope, GroupPayload, group_payload::Content};

use crate::client_fixture::{self, CONV, ClientFixture};
use crate::mutate::{patch, pick};

/// Feeds the input as one packet.
pub fn raw(data: &[u8]) {
    client_fixture::get().receive(data.to_vec());
}

fn sender(fx: &ClientFixture, selector: u8) -> Vec<u8> {
    match selector % 4 {
        0 => fx.ids[0].to_vec(),
        1 => fx.ids[1].to_vec(),
        2 => vec![9; 20],
        _ => vec![1; 19],
    }
}

fn rewrap(conversation_id: &str, sender: Vec<u8>, kind: i32, body: Vec<u8>) -> Vec<u8> {
    let mut env = Envelope::new(conversation_id, sender, wire::PacketKind::Group, body);
    env.kind = kind;
    wire::encode(&env)
}

/// Feeds a structure-aware input (see the module doc).
pub fn structured(data: &[u8]) {
    let fx = client_fixture::get();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match (mode % 5, rest) {
        (0, [s, c, k, body @ ..]) => {
            let conv = if c % 2 == 0 { CONV } else { "another-conv" };
            let packet = rewrap(conv, sender(fx, *s), i32::from(k % 6), body.to_vec());
            fx.receive(packet);
        }
        (1, plaintext) => {
            fx.receive_from_sender(plaintext);
        }
        (2, [i, ops @ ..]) => {
            if let Some(base) = pick(&fx.valid_packets(), *i) {
                fx.receive(patch(base, ops));
            }
        }
        (3, [i, ops @ ..]) => {
            let valid = fx.valid_packets();
            let Some(base) = pick(&valid, *i) else { return };
            let Ok(env) = wire::decode_envelope(base) else {
                return;
            };
            let body = patch(&env.body, ops);
            fx.receive(rewrap(&env.conversation_id, env.sender, env.kind, body));
        }
        (4, plaintext) => {
            fx.receive_sealed_from_sender(plaintext);
        }
        _ => {}
    }
}

/// Seeds of the raw target: every valid packet.
pub fn raw_seeds() -> Vec<Vec<u8>> {
    client_fixture::get().valid_packets()
}

/// Seeds of the structured target: every mode on every valid packet, and plaintexts of each
/// group payload kind.
pub fn structured_seeds() -> Vec<Vec<u8>> {
    let fx = client_fixture::get();
    let valid = fx.valid_packets();
    let mut v = Vec::new();
    for (i, packet) in valid.iter().enumerate() {
        let i = i as u8;
        v.push(vec![2, i]);
        v.push(vec![3, i]);
        if let Ok(env) = wire::decode_envelope(packet) {
            let s = if env.sender == fx.ids[1] { 1 } else { 0 };
            let k = u8::try_from(env.kind).unwrap_or(0);
            v.push([&[0, s, 0, k][..], &env.body[..]].concat());
        }
    }
    let chat = GroupPayload::new(Content::Chat(Chat {
        message_id: vec![0x5a; 16],
        body: b"seed chat".to_vec(),
        sent_at_ms: fx.now_ms,
    }));
    v.push([&[1u8][..], &wire::encode(&chat)].concat());
    for p in witan_wire::samples::group_payloads() {
        v.push([&[1u8][..], &wire::encode(&p)].concat());
    }
    for p in witan_wire::samples::sealed_payloads() {
        v.push([&[4u8][..], &wire::encode(&p)].concat());
    }
    v
}
