//! A modified client for the scenario tests: packets forged from a member's own database (a
//! second connection beside its client, as another process would open it) with the crate's
//! public `wire`, `mls`, `protocol` and `store` modules, then injected into the router
//! addressed to chosen members.
#![allow(dead_code)]

use witan::mls::{Group, Identity, MemberId};
use witan::protocol::consensus::Action;
use witan::store::{Database, StoreOptions};
use witan::wire::{self, group_payload::Content};

use super::clients::{CONV, World};

/// Two different, individually valid commit candidates of member `i` (the epoch steward with
/// approved work) for the current epoch, as encoded group packets.
pub fn two_commits(w: &World, i: usize) -> (Vec<u8>, Vec<u8>) {
    let conv = w
        .c(i)
        .engine_state(CONV.into())
        .unwrap()
        .expect("the steward holds the conversation");
    let mut db = Database::open(&w.path(i), &StoreOptions::default()).unwrap();
    let step = db.step().unwrap();
    let secret = step.identity_secret().unwrap().expect("an identity");
    let identity = Identity::from_secret(&secret).unwrap();
    let provider = witan::mls::MlsProvider::new(&step);
    let mut group = Group::load(&provider, CONV.as_bytes()).unwrap().unwrap();
    let me = identity.member_id();
    let mut seq: Vec<_> = conv
        .ballots
        .values()
        .filter(|b| {
            b.decision == Some(true) && b.action.needs_commit() && b.action.removes() != Some(me)
        })
        .collect();
    assert!(!seq.is_empty(), "the steward has approved work");
    seq.sort_by_key(|b| b.digest);
    let mut adds = Vec::new();
    let mut removes: Vec<MemberId> = Vec::new();
    for b in &seq {
        match &b.action {
            Action::Add { key_package, .. } => adds.push(key_package.clone()),
            other => removes.extend(other.removes()),
        }
    }
    let proposals: Vec<wire::Proposal> = seq.iter().map(|b| b.evidence().unwrap()).collect();
    let mut packets = Vec::new();
    for _ in 0..2 {
        let commit = group
            .create_commit(&provider, &identity, &adds, &removes)
            .unwrap();
        group.clear_pending_commit(&provider).unwrap();
        let content = Content::Candidate(wire::CommitCandidate {
            epoch: conv.epoch,
            retry_round: conv.retry_round,
            committer: me.as_bytes().to_vec(),
            commit: commit.commit,
            proposals: proposals.clone(),
        });
        packets.push(seal(&mut group, &provider, &identity, content));
    }
    let changes = provider.storage().take_changes();
    step.apply_mls_changes(&changes).unwrap();
    step.commit().unwrap();
    let b = packets.pop().unwrap();
    let a = packets.pop().unwrap();
    (a, b)
}

/// Encrypts `content` as the group's member and wraps it in an envelope.
fn seal(
    group: &mut Group,
    provider: &witan::mls::MlsProvider,
    identity: &Identity,
    content: Content,
) -> Vec<u8> {
    let plaintext = prost::Message::encode_to_vec(&wire::GroupPayload {
        content: Some(content),
    });
    let ct = group.encrypt(provider, identity, &plaintext).unwrap();
    let env = wire::Envelope::new(
        CONV,
        identity.member_id().as_bytes(),
        wire::PacketKind::Group,
        ct,
    );
    wire::encode(&env)
}

/// Hands `packet` to the given members only (on the group's application topic).
pub fn inject(w: &mut World, packet: &[u8], to: &[usize]) {
    let topic = witan::protocol::topics::app(CONV);
    for &i in to {
        w.c(i)
            .receive(vec![witan::client::InboundPacket {
                topic: topic.clone(),
                payload: packet.to_vec(),
            }])
            .unwrap();
    }
    w.deliver();
}
