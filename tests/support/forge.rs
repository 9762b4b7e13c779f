//! A modified client for the scenario tests: packets forged from a member's own database (a
//! second connection beside its client, as another process would open it) with the crate's
//! public `wire`, `mls`, `protocol` and `store` modules, then injected into the router
//! addressed to chosen members.
#![allow(dead_code)]

use witan::mls::{Group, Identity, MlsProvider};
use witan::protocol::Conversation;
use witan::protocol::ballot_box::Action;
use witan::store::{Database, StoreOptions};
use witan::wire::{self, group_payload::Content};

use super::clients::{CONV, World};

/// Opens member `i`'s database beside its client and runs `build` with its engine state,
/// group and identity; the MLS writes are kept (encrypting advances the sender ratchet), the
/// engine state is not touched.
pub fn with_member<T>(
    w: &World,
    i: usize,
    build: impl FnOnce(&Conversation, &mut Group, &MlsProvider, &Identity) -> T,
) -> T {
    let conv = w
        .c(i)
        .engine_state(CONV.into())
        .unwrap()
        .expect("the member holds the conversation");
    let mut db = Database::open(&w.path(i), &StoreOptions::default()).unwrap();
    let step = db.step().unwrap();
    let secret = step.identity_secret().unwrap().expect("an identity");
    let identity = Identity::from_secret(&secret).unwrap();
    let provider = MlsProvider::new(&step);
    let mut group = Group::load(&provider, CONV.as_bytes()).unwrap().unwrap();
    let value = build(&conv, &mut group, &provider, &identity);
    let changes = provider.storage().take_changes();
    drop(provider);
    step.apply_mls_changes(&changes).unwrap();
    step.commit().unwrap();
    value
}

/// Encrypts `content` as the group's member and wraps it in an envelope.
pub fn seal(
    group: &mut Group,
    provider: &MlsProvider,
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

/// Two different, individually valid candidates of member `i` (the leader of round 0, with
/// work decided) for the current epoch, as encoded group packets.
pub fn two_commits(w: &World, i: usize) -> (Vec<u8>, Vec<u8>) {
    let now = w.now();
    let mut packets = with_member(w, i, |conv, group, provider, identity| {
        let resolutions = conv.resolutions_at(now);
        assert!(!resolutions.is_empty(), "the steward has work decided");
        let mut removes = Vec::new();
        for r in &resolutions {
            let p = r.proposal.as_ref().unwrap();
            let (action, _) = witan::protocol::ballot_box::parse_payload(p).unwrap();
            if let (true, Some(m)) = (r.approved, action.removes()) {
                removes.push(m);
            }
            assert!(!matches!(action, Action::Add { .. }), "removals only");
        }
        let mut out = Vec::new();
        for _ in 0..2 {
            let commit = group
                .create_commit(provider, identity, &[], &removes)
                .unwrap();
            group.clear_pending_commit(provider).unwrap();
            let candidate = wire::Candidate {
                epoch: conv.epoch(),
                round: 0,
                proposer: identity.member_id().as_bytes().to_vec(),
                commit: commit.commit,
                welcome: Default::default(),
                resolutions: resolutions.clone(),
                pol: None,
            };
            out.push(seal(
                group,
                provider,
                identity,
                Content::Candidate(candidate),
            ));
        }
        out
    });
    let b = packets.pop().unwrap();
    let a = packets.pop().unwrap();
    (a, b)
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
