//! Attacks on what a member stores from the traffic it receives: the buffer for packets of a
//! future epoch, the table of packets already seen, and the message history. Outsiders can put
//! any bytes on a conversation's topics; a member may run a modified client. Each test is
//! named for the attack and drives honest members through the public `WitanClient`; the
//! attacker's packets are crafted with the crate's public `wire`, `mls` and `store` modules.

#[path = "support/clients.rs"]
mod clients;

use clients::{CONV, World};
use witan::client::InboundPacket;
use witan::mls::{Group, Identity, MlsProvider};
use witan::store::{Database, StoreOptions};
use witan::wire::{self, group_payload::Content};

/// The packets in flight, taken off the router (nobody receives them).
fn take_in_flight(w: &World) -> Vec<Vec<u8>> {
    w.router
        .queue
        .lock()
        .unwrap()
        .drain(..)
        .map(|(_, payload)| payload)
        .collect()
}

fn receive(w: &World, i: usize, payloads: &[Vec<u8>]) -> witan::client::ReceiveReport {
    let packets = payloads
        .iter()
        .map(|payload| InboundPacket {
            topic: String::new(),
            payload: payload.clone(),
        })
        .collect();
    w.c(i).receive(packets).unwrap()
}

/// A chat packet of member `i` carrying `message_id` and `body`, encrypted with the member's
/// own MLS state through a second connection to its database (as a modified client would).
fn craft_chat(w: &World, i: usize, message_id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut db = Database::open(&w.path(i), &StoreOptions::default()).unwrap();
    let step = db.step().unwrap();
    let identity = Identity::from_secret(&step.identity_secret().unwrap().unwrap()).unwrap();
    let provider = MlsProvider::new(&step);
    let mut group = Group::load(&provider, CONV.as_bytes()).unwrap().unwrap();
    let plaintext =
        prost::Message::encode_to_vec(&wire::GroupPayload::new(Content::Chat(wire::Chat {
            message_id: message_id.to_vec(),
            body: body.to_vec(),
            sent_at_ms: w.now(),
        })));
    let ciphertext = group.encrypt(&provider, &identity, &plaintext).unwrap();
    let changes = provider.storage().take_changes();
    drop(provider);
    step.apply_mls_changes(&changes).unwrap();
    step.commit().unwrap();
    wire::encode(&wire::Envelope::new(
        CONV,
        identity.member_id().as_bytes(),
        wire::PacketKind::Group,
        ciphertext,
    ))
}

#[test]
fn a_member_reusing_another_members_message_id_does_not_shadow_it() {
    let (alice, mallory, carol) = (0, 1, 2);
    let mut w = World::new(&["alice", "mallory", "carol"]);
    w.form(alice, &[mallory, carol]);
    w.run_for(10_000);
    w.assert_agree(&[alice, mallory, carol]);

    // Alice's message reaches mallory first; mallory races a message of her own with the
    // same id to carol.
    w.send(alice, "meet at noon");
    let from_alice = take_in_flight(&w);
    assert_eq!(from_alice.len(), 1);
    receive(&w, mallory, &from_alice);
    let seen = w.history(mallory);
    let id = hex::decode(&seen.last().unwrap().message_id).unwrap();
    let forged = craft_chat(&w, mallory, &id, b"meet at midnight");
    assert_eq!(receive(&w, carol, &[forged]).accepted, 1);
    assert_eq!(receive(&w, carol, &from_alice).accepted, 1);

    let mut bodies = w.bodies(carol);
    bodies.sort();
    assert_eq!(bodies, ["meet at midnight", "meet at noon"]);
    let alice_id = w.c(alice).member_id();
    assert!(
        w.history(carol)
            .iter()
            .any(|m| m.sender == alice_id && m.body == b"meet at noon"),
        "alice's message is in carol's history under alice's name"
    );
}
