//! Attacks on what a member stores from the traffic it receives: the buffer for packets of a
//! future epoch, the table of packets already seen, and the message history. Outsiders can put
//! any bytes on a conversation's topics; a member may run a modified client. Each test is
//! named for the attack and drives honest members through the public `WitanClient`; the
//! attacker's packets are crafted with the crate's public `wire`, `mls` and `store` modules.

#[path = "support/clients.rs"]
mod clients;

use clients::{CONV, World};
use witan::mls::{Group, Identity, MlsProvider};
use witan::store::{Database, StoreOptions};
use witan::wire::{self, group_payload::Content};

/// The packets in flight, taken off the router (nobody receives them).
fn take_in_flight(w: &World) -> Vec<Vec<u8>> {
    w.net.take_all().into_iter().map(|p| p.payload).collect()
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

/// `genuine` (a group packet of the current epoch) with its unauthenticated MLS epoch set to
/// `epoch`, re-wrapped so that its packet id is valid: what anyone who knows the
/// conversation id can make.
fn with_claimed_epoch(genuine: &[u8], epoch: u64) -> Vec<u8> {
    let env = wire::decode_envelope(genuine).unwrap();
    let mut body = env.body.to_vec();
    // MlsMessage: version (2) and wire format (2), then the group id (one length byte and the
    // conversation id), then the 8-byte big-endian epoch.
    let at = 4 + 1 + CONV.len();
    body[at..at + 8].copy_from_slice(&epoch.to_be_bytes());
    wire::encode(&wire::Envelope::new(
        CONV,
        env.sender.clone(),
        wire::PacketKind::Group,
        body,
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
    w.receive_payloads(mallory, &from_alice).unwrap();
    let seen = w.history(mallory);
    let id = hex::decode(&seen.last().unwrap().message_id).unwrap();
    let forged = craft_chat(&w, mallory, &id, b"meet at midnight");
    assert_eq!(w.receive_payloads(carol, &[forged]).unwrap().accepted, 1);
    assert_eq!(w.receive_payloads(carol, &from_alice).unwrap().accepted, 1);

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

/// Members of a formed group of four, the two that are not its epoch steward first.
fn quiet_group_of_four(w: &mut World) -> (usize, usize, usize) {
    w.form(0, &[1, 2, 3]);
    w.run_for(10_000);
    w.assert_agree(&[0, 1, 2, 3]);
    let info = w.info(0);
    let steward = w
        .index_of_member(info.epoch_steward.as_deref().unwrap())
        .unwrap();
    let others: Vec<usize> = (0..4).filter(|i| *i != steward).collect();
    (others[0], others[1], steward)
}

/// Forges `count` packets from a genuine chat of `sender`'s (never delivered), claiming the
/// epochs `first_epoch..`, and feeds them to `victim`; returns them.
fn flood(w: &World, sender: usize, victim: usize, first_epoch: u64, count: u64) -> Vec<Vec<u8>> {
    w.send(sender, "a genuine chat to copy");
    let genuine = take_in_flight(w);
    let forged: Vec<Vec<u8>> = (0..count)
        .map(|k| with_claimed_epoch(&genuine[0], first_epoch + k))
        .collect();
    for chunk in forged.chunks(256) {
        w.receive_payloads(victim, chunk).unwrap();
    }
    forged
}

#[test]
fn forged_future_epoch_packets_do_not_crowd_out_genuine_traffic() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]);
    let (victim, target, steward) = quiet_group_of_four(&mut w);
    let epoch = w.info(victim).epoch;
    // An outsider who knows the conversation id floods the victim with packets claiming far
    // epochs, enough to fill any buffer bounded by a count.
    flood(&w, steward, victim, epoch + 1000, 1100);

    // A real epoch change happens while the victim is away; the first chat of the new epoch
    // reaches it before the commit candidate.
    w.close(victim);
    let target_id = w.c(target).member_id();
    w.c(steward)
        .propose_removal(CONV.into(), target_id)
        .unwrap();
    for _ in 0..200 {
        if w.info(steward).epoch > epoch {
            break;
        }
        w.run_for(100);
    }
    assert_eq!(w.info(steward).epoch, epoch + 1);
    w.send(steward, "first words of the new epoch");
    let chat = take_in_flight(&w);
    assert_eq!(chat.len(), 1);
    let backlog: Vec<Vec<u8>> = std::mem::take(&mut w.mailbox[victim])
        .into_iter()
        .map(|p| p.payload)
        .collect();
    assert!(
        !backlog.is_empty(),
        "the victim's mailbox kept what it missed"
    );
    w.reopen_quietly(victim);
    w.receive_payloads(victim, &chat).unwrap();
    w.receive_payloads(victim, &backlog).unwrap();

    assert_eq!(w.info(victim).epoch, epoch + 1);
    assert!(
        w.bodies(victim)
            .contains(&"first words of the new epoch".to_string()),
        "{:?}",
        w.bodies(victim)
    );
}

#[test]
fn forged_future_epoch_packets_do_not_grow_the_seen_packet_table() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]);
    let (victim, _, steward) = quiet_group_of_four(&mut w);
    let epoch = w.info(victim).epoch;
    let seen_before = w.table_rows(victim, "seen_packets").unwrap();
    let forged = flood(&w, steward, victim, epoch + 1, 600);
    // The same forgeries again are duplicates, whatever became of them.
    let again = w.receive_payloads(victim, &forged[..100]).unwrap();
    assert_eq!(again.accepted, 0, "{again:?}");

    assert_eq!(w.table_rows(victim, "seen_packets").unwrap(), seen_before);
}

#[test]
fn forged_future_epoch_packets_do_not_lead_to_rejoin_required() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]);
    let (victim, other, steward) = quiet_group_of_four(&mut w);
    let epoch = w.info(victim).epoch;
    // Packets claiming the next epoch and epochs far ahead: a member that believed them would
    // think it missed commits and, once nobody could give them to it, that it must re-join.
    flood(&w, steward, victim, epoch + 1, 3);
    flood(&w, other, victim, epoch + 1000, 3);
    // Many catch-up windows of a quiet group (fast settings: 2 × (3 + 1 + 5) s each).
    w.run_for(20 * 18_000);

    let rejoin = w
        .events(victim)
        .iter()
        .filter(|e| matches!(e, witan::client::WitanEvent::RejoinRequired { .. }))
        .count();
    assert_eq!(rejoin, 0);
    let info = w.info(victim);
    assert_eq!(info.state, witan::client::ConversationState::Working);
    assert_eq!(info.epoch, epoch);
    w.send(other, "still here");
    w.run_for(1_000);
    assert!(w.bodies(victim).contains(&"still here".to_string()));
}
