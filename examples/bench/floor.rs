//! (e) The floor: the chat of workload (b) with plain OpenMLS on its own in-memory provider
//! (`OpenMlsRustCrypto`, whose `MemoryStorage` keeps rows in a `HashMap`). N members in one
//! group with witan's group configuration, each holding its `MlsGroup` in memory; every round
//! each member encrypts a 64-byte message and every other member decrypts it with
//! `process_message`. Only the decrypts are timed.

use std::time::{Duration, Instant};

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{
    BasicCredential, CredentialWithKey, KeyPackage, MlsGroup, MlsGroupCreateConfig,
    MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent,
    SenderRatchetConfiguration, StagedWelcome,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;
use witan::mls::{CIPHERSUITE, MAX_PAST_EPOCHS, MAXIMUM_FORWARD_DISTANCE, OUT_OF_ORDER_TOLERANCE};

use super::workloads::{CHAT_BODY, CHAT_ROUNDS};
use super::world::BenchResult;

#[derive(Debug, Clone)]
pub struct Floor {
    pub n: usize,
    pub decrypts: u64,
    pub us_per_decrypt: f64,
}

struct Member {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    group: Option<MlsGroup>,
}

fn ratchet() -> SenderRatchetConfiguration {
    SenderRatchetConfiguration::new(OUT_OF_ORDER_TOLERANCE, MAXIMUM_FORWARD_DISTANCE)
}

fn member(i: usize) -> BenchResult<(Member, CredentialWithKey)> {
    let provider = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm())?;
    signer.store(provider.storage())?;
    let credential = CredentialWithKey {
        credential: BasicCredential::new(format!("member-{i}").into_bytes()).into(),
        signature_key: signer.public().into(),
    };
    Ok((
        Member {
            provider,
            signer,
            group: None,
        },
        credential,
    ))
}

/// Runs the floor chat for a group of `n`.
pub fn floor(n: usize) -> BenchResult<Floor> {
    let mut members = formed_group(n)?;
    let mut decrypt_time = Duration::ZERO;
    let mut decrypts = 0u64;
    for round in 0..CHAT_ROUNDS {
        let mut sent = Vec::with_capacity(n);
        for (i, m) in members.iter_mut().enumerate() {
            let mut body = vec![0u8; CHAT_BODY];
            body[..16].copy_from_slice(&((round * n + i) as u128).to_be_bytes());
            let group = m.group.as_mut().ok_or("member has no group")?;
            sent.push(
                group
                    .create_message(&m.provider, &m.signer, &body)?
                    .to_bytes()?,
            );
        }
        for (i, m) in members.iter_mut().enumerate() {
            let group = m.group.as_mut().ok_or("member has no group")?;
            for (j, bytes) in sent.iter().enumerate() {
                if i == j {
                    continue;
                }
                let started = Instant::now();
                let msg = MlsMessageIn::tls_deserialize_exact(bytes.as_slice())?;
                let pm = msg.try_into_protocol_message()?;
                let processed = group.process_message(&m.provider, pm)?;
                let ok = matches!(
                    processed.into_content(),
                    ProcessedMessageContent::ApplicationMessage(_)
                );
                decrypt_time += started.elapsed();
                decrypts += 1;
                if !ok {
                    return Err("floor: not an application message".into());
                }
            }
        }
    }
    Ok(Floor {
        n,
        decrypts,
        us_per_decrypt: decrypt_time.as_secs_f64() * 1e6 / decrypts as f64,
    })
}

/// `n` members in one group: the first creates it and adds the others in one commit; each
/// joins from the welcome.
fn formed_group(n: usize) -> BenchResult<Vec<Member>> {
    let mut members = Vec::with_capacity(n);
    let mut key_packages: Vec<KeyPackage> = Vec::new();
    for i in 0..n {
        let (m, credential) = member(i)?;
        if i == 0 {
            let config = MlsGroupCreateConfig::builder()
                .ciphersuite(CIPHERSUITE)
                .use_ratchet_tree_extension(true)
                .max_past_epochs(MAX_PAST_EPOCHS)
                .sender_ratchet_configuration(ratchet())
                .build();
            let group = MlsGroup::new(&m.provider, &m.signer, &config, credential)?;
            members.push(Member {
                group: Some(group),
                ..m
            });
        } else {
            let bundle =
                KeyPackage::builder().build(CIPHERSUITE, &m.provider, &m.signer, credential)?;
            key_packages.push(bundle.key_package().clone());
            members.push(m);
        }
    }
    // One commit adds everyone; each joiner joins from the welcome.
    let creator = &mut members[0];
    let group = creator.group.as_mut().ok_or("creator has no group")?;
    let (_, welcome, _) = group.add_members(&creator.provider, &creator.signer, &key_packages)?;
    group.merge_pending_commit(&creator.provider)?;
    let welcome_bytes = welcome.to_bytes()?;
    let join = MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(ratchet())
        .build();
    for m in members.iter_mut().skip(1) {
        let msg = MlsMessageIn::tls_deserialize_exact(welcome_bytes.as_slice())?;
        let MlsMessageBodyIn::Welcome(welcome) = msg.extract() else {
            return Err("not a welcome".into());
        };
        let staged = StagedWelcome::new_from_welcome(&m.provider, &join, welcome, None)?;
        m.group = Some(staged.into_group(&m.provider)?);
    }
    Ok(members)
}
