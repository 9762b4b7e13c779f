//! The attacker's toolkit for the malicious-member scenarios (`tests/malicious_member.rs`,
//! `tests/malicious_state.rs`): proposals with a context the attacker chooses, real MLS
//! commits of a member's own, join requests of fresh identities built with OpenMLS, and the
//! observations the tests make of the honest members.
#![allow(dead_code)]

use crate::support::{CONV, Net, fast_settings};
use witan::mls::Group;
use witan::protocol::ballot_box::{ProposalContext, new_proposal};
use witan::protocol::{Action, Event, Output, Settings};
use witan::wire::{self, group_payload::Content};

/// Settings of a group that votes by hand, silent voters counting as the group says.
pub fn manual(liveness_yes: bool) -> Settings {
    Settings {
        auto_vote_delay_ms: None,
        liveness_criteria_yes: liveness_yes,
        ..fast_settings()
    }
}

pub fn index_of(net: &Net, member: witan::mls::MemberId) -> usize {
    (0..net.nodes.len())
        .find(|i| net.nodes[*i].id() == member)
        .expect("a node")
}

pub fn resolved(net: &Net, i: usize, pid: u64) -> Option<bool> {
    net.nodes[i].events.iter().find_map(|e| match e {
        Event::ProposalResolved {
            proposal_id,
            approved,
        } if *proposal_id == pid => Some(*approved),
        _ => None,
    })
}

pub fn is_member(net: &Net, observer: usize, who: usize) -> bool {
    net.nodes[observer]
        .conv()
        .members()
        .contains(&net.nodes[who].id())
}

/// A proposal of member `i` with a context the attacker chooses.
pub fn crafted(
    net: &Net,
    i: usize,
    action: &Action,
    epoch: u64,
    members: usize,
    now_ms: u64,
    settings: &Settings,
) -> wire::Proposal {
    let cx = ProposalContext {
        conversation: CONV,
        epoch,
        members,
        now_ms,
        settings,
    };
    new_proposal(&net.nodes[i].identity, action, &cx)
}

/// A real MLS commit of member `i` removing `victim`, not merged (the pending commit is
/// cleared, as a modified client would after sending it).
pub fn removal_commit(net: &mut Net, i: usize, victim: witan::mls::MemberId) -> Vec<u8> {
    let mut commit = Vec::new();
    net.step(i, |_, ctx| {
        let mut group = Group::load(ctx.provider, CONV.as_bytes())?.expect("group");
        commit = group
            .create_commit(ctx.provider, ctx.identity, &[], &[victim])?
            .commit;
        group.clear_pending_commit(ctx.provider)?;
        Ok(Output::default())
    })
    .unwrap();
    commit
}

pub fn prevoted(net: &Net, from: usize, leader: usize) -> bool {
    net.in_flight_from(from, leader)
        .iter()
        .any(|c| matches!(c, Content::Prevote(_)))
}

/// A join request of the identity with `secret`, its key package built with OpenMLS (the
/// default lifetime unless `not_after_s` is given).
pub fn join_request_of(secret: &[u8; 32], now_ms: u64, not_after_s: Option<u64>) -> Vec<u8> {
    padded_join_request_of(secret, now_ms, not_after_s, 0)
}

/// A join request like [`join_request_of`] whose key package carries `padding` bytes in an
/// unknown extension (valid: its leaf lists the extension type), as an outsider filling a
/// member's state with large key packages would send.
pub fn padded_join_request_of(
    secret: &[u8; 32],
    now_ms: u64,
    not_after_s: Option<u64>,
    padding: usize,
) -> Vec<u8> {
    use openmls::prelude::{
        BasicCredential, Capabilities, CredentialWithKey, Extension, ExtensionType, Extensions,
        KeyPackage, Lifetime, MlsMessageOut, SignatureScheme, UnknownExtension,
        tls_codec::Serialize as _,
    };
    let identity = witan::mls::Identity::from_secret(secret).unwrap();
    let signer = openmls_basic_credential::SignatureKeyPair::from_raw(
        SignatureScheme::ED25519,
        identity.secret().to_vec(),
        identity.public_key().to_vec(),
    );
    let credential = CredentialWithKey {
        credential: BasicCredential::new(identity.member_id().as_bytes().to_vec()).into(),
        signature_key: identity.public_key().to_vec().into(),
    };
    let provider = openmls_rust_crypto::OpenMlsRustCrypto::default();
    let mut builder = KeyPackage::builder();
    if padding > 0 {
        const PADDING: u16 = 0xff0a;
        builder = builder
            .leaf_node_capabilities(Capabilities::new(
                None,
                None,
                Some(&[ExtensionType::Unknown(PADDING)]),
                None,
                None,
            ))
            .key_package_extensions(
                Extensions::single(Extension::Unknown(
                    PADDING,
                    UnknownExtension(vec![0x5a; padding]),
                ))
                .unwrap(),
            );
    }
    if let Some(not_after_s) = not_after_s {
        builder = builder.key_package_lifetime(Lifetime::init(now_ms / 1000 - 3_600, not_after_s));
    }
    let bundle = builder
        .build(witan::mls::CIPHERSUITE, &provider, &signer, credential)
        .unwrap();
    let key_package = MlsMessageOut::from(bundle.key_package().clone())
        .tls_serialize_detached()
        .unwrap();
    wire::encode(&wire::Envelope::new(
        CONV,
        identity.member_id().as_bytes(),
        wire::PacketKind::JoinRequest,
        wire::encode(&wire::JoinRequest {
            key_package,
            requested_at_ms: now_ms,
        }),
    ))
}
