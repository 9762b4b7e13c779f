//! Receive-path benchmark of the reference implementation, de-mls 4.1.0.
//!
//! This is the "reference µs per message, one message per call, in memory"
//! figure that witan's own bench is compared against. For each group size n it
//! forms one de-mls group of n members entirely in memory (one OpenMLS
//! `openmls_rust_crypto` provider with its in-memory storage and one signer per
//! member; the creator admits everyone in one genesis commit through
//! `Conversation::create`'s `initial_members`, each joiner opens the welcome
//! with `Conversation::join`). Formation is not timed.
//!
//! It then runs a chat: every round each member sends one 64-byte message, and
//! every other member receives each of them with one `process_inbound` call per
//! packet. Only those calls are timed (wall clock, summed per call); the process
//! CPU time (`getrusage`) over the receive batches is reported beside it. Every
//! message must surface as exactly one chat event at every other member, with
//! the body that was sent, or the run fails: the figure can't silently measure
//! dropped packets.
//!
//! Usage: `witan-bench-reference [--ns 16,64,128] [--rounds 20] [--json PATH]`
//! (or `scripts/bench-reference.sh`, which builds it in release first).

use std::collections::HashMap;
use std::fmt::Display;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_signer_local::PrivateKeySigner;
use de_mls::defaults::{DefaultConsensusPlugin, InMemoryPeerScoreStorage};
use de_mls::protos::de_mls::messages::v1::app_message::Payload;
use de_mls::{
    Conversation, ConversationConfig, ConversationEvent, DispatchOutcome, PeerScoringService,
    ScoringConfig, WallClock,
};
use hashgraph_like_consensus::signing::EthereumConsensusSigner;
use openmls::credentials::{BasicCredential, CredentialWithKey};
use openmls::group::MlsGroupCreateConfig;
use openmls::key_packages::KeyPackage;
use openmls::prelude::tls_codec::Serialize as _;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// Label of the implementation measured, as it appears in the JSON line.
const REFERENCE: &str = "de-mls 4.1.0";
/// Size of every chat body, matching witan's bench.
const BODY_BYTES: usize = 64;
const DEFAULT_NS: [usize; 3] = [16, 64, 128];
const DEFAULT_ROUNDS: usize = 20;
const CONVERSATION_ID: &str = "bench-reference";
const USAGE: &str = "usage: witan-bench-reference [--ns 16,64,128] [--rounds 20] [--json PATH]";

type Result<T> = std::result::Result<T, String>;
type Conv = Conversation<DefaultConsensusPlugin, InMemoryPeerScoreStorage, SystemClock>;

/// Attach `what` to an error, so a failure names the step that failed.
fn ctx<T, E: Display>(result: std::result::Result<T, E>, what: &str) -> Result<T> {
    result.map_err(|e| format!("{what}: {e}"))
}

/// Wall-clock time source for de-mls, clamped so it never runs backwards.
#[derive(Default)]
struct SystemClock {
    last_nanos: AtomicU64,
}

impl WallClock for SystemClock {
    fn now(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .min(u64::MAX as u128) as u64;
        let nanos = self.last_nanos.fetch_max(now, Ordering::Relaxed).max(now);
        Duration::from_nanos(nanos)
    }
}

/// Command-line options.
struct Options {
    ns: Vec<usize>,
    rounds: usize,
    json_path: Option<String>,
}

fn parse_options() -> Result<Options> {
    let mut options = Options {
        ns: DEFAULT_NS.to_vec(),
        rounds: DEFAULT_ROUNDS,
        json_path: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--ns" => options.ns = parse_ns(&value("--ns")?)?,
            "--rounds" => options.rounds = ctx(value("--rounds")?.parse(), "--rounds")?,
            "--json" => options.json_path = Some(value("--json")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if options.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    Ok(options)
}

/// Parse `16,64,128`; every size needs at least two members (one sender, one receiver).
fn parse_ns(list: &str) -> Result<Vec<usize>> {
    let ns = list
        .split(',')
        .map(|s| ctx(s.trim().parse::<usize>(), "--ns"))
        .collect::<Result<Vec<_>>>()?;
    if ns.is_empty() || ns.iter().any(|&n| n < 2) {
        return Err("--ns takes group sizes of at least 2".into());
    }
    Ok(ns)
}

/// One member in the group: its own provider (crypto + in-memory storage),
/// signer, and its view of the conversation.
struct Member {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    conversation: Conv,
}

/// A member's identity before it is in the group.
struct Identity {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    consensus: DefaultConsensusPlugin,
    app_id: Vec<u8>,
}

fn group_config() -> MlsGroupCreateConfig {
    // de-mls joins expect the ratchet tree inside the welcome.
    MlsGroupCreateConfig::builder()
        .use_ratchet_tree_extension(true)
        .build()
}

fn new_identity(index: usize) -> Identity {
    let ciphersuite = group_config().ciphersuite();
    let signer = SignatureKeyPair::new(ciphersuite.signature_algorithm())
        .expect("setup: generate an MLS signature key");
    let name = format!("member-{index}").into_bytes();
    let credential = CredentialWithKey {
        credential: BasicCredential::new(name.clone()).into(),
        signature_key: signer.to_public_vec().into(),
    };
    let consensus =
        DefaultConsensusPlugin::new(EthereumConsensusSigner::new(PrivateKeySigner::random()));
    Identity {
        provider: OpenMlsRustCrypto::default(),
        signer,
        credential,
        consensus,
        app_id: name,
    }
}

/// Mint a key package into the joiner's own provider (which keeps its private keys).
fn key_package(identity: &Identity) -> Vec<u8> {
    let bundle = KeyPackage::builder()
        .build(
            group_config().ciphersuite(),
            &identity.provider,
            &identity.signer,
            identity.credential.clone(),
        )
        .expect("setup: build a key package");
    bundle
        .key_package()
        .tls_serialize_detached()
        .expect("setup: serialize a key package")
}

fn scoring() -> PeerScoringService<InMemoryPeerScoreStorage> {
    PeerScoringService::new(
        InMemoryPeerScoreStorage::default(),
        HashMap::new(),
        ScoringConfig::default(),
    )
}

/// The creator's genesis welcome: the MLS welcome and the bundled conversation sync.
fn genesis_welcome(creator: &Conv) -> (Vec<u8>, Vec<u8>) {
    creator
        .drain_events()
        .into_iter()
        .find_map(|event| match event {
            ConversationEvent::WelcomeReady {
                welcome,
                minted_locally: true,
            } => Some((welcome.welcome_bytes, welcome.conversation_sync_bytes)),
            _ => None,
        })
        .expect("setup: the creator mints a genesis welcome")
}

/// Form a group of `n` members the quickest way the API allows: one genesis
/// commit adding everyone, then each joiner opens the welcome. Not timed.
fn form_group(n: usize) -> Vec<Member> {
    let identities: Vec<Identity> = (0..n).map(new_identity).collect();
    let key_packages: Vec<Vec<u8>> = identities[1..].iter().map(key_package).collect();
    let initial: Vec<&[u8]> = key_packages.iter().map(Vec::as_slice).collect();

    let mut identities = identities.into_iter();
    let creator_id = identities.next().expect("setup: a creator");
    let creator = Conv::create(
        CONVERSATION_ID,
        &creator_id.provider,
        creator_id.credential.clone(),
        &group_config(),
        &creator_id.signer,
        &creator_id.consensus,
        scoring(),
        SystemClock::default(),
        &creator_id.app_id,
        ConversationConfig::default(),
        &initial,
    )
    .expect("setup: create the group with its initial members");
    let (welcome, sync) = genesis_welcome(&creator);

    let mut members = vec![into_member(creator_id, creator)];
    for identity in identities {
        let conversation = Conv::join(
            &identity.provider,
            &identity.signer,
            &welcome,
            &sync,
            &identity.consensus,
            scoring(),
            SystemClock::default(),
            &identity.app_id,
            ConversationConfig::default(),
        )
        .expect("setup: join from the genesis welcome")
        .expect("setup: the genesis welcome addresses every joiner");
        members.push(into_member(identity, conversation));
    }
    // Formation traffic (the welcome relay, each joiner's join announcement)
    // and events are not part of the chat: clear them before it starts.
    for member in &members {
        member.conversation.drain_outbound();
        member.conversation.drain_events();
    }
    members
}

fn into_member(identity: Identity, conversation: Conv) -> Member {
    Member {
        provider: identity.provider,
        signer: identity.signer,
        conversation,
    }
}

/// The 64-byte body member `sender` sends in `round`: both numbers, then filler.
fn body(round: usize, sender: usize) -> Vec<u8> {
    let mut body = vec![0u8; BODY_BYTES];
    body[..8].copy_from_slice(&(round as u64).to_le_bytes());
    body[8..16].copy_from_slice(&(sender as u64).to_le_bytes());
    for (i, byte) in body.iter_mut().enumerate().skip(16) {
        *byte = (i as u8) ^ (sender as u8) ^ (round as u8);
    }
    body
}

/// One broadcast packet of the chat.
struct Packet {
    from: usize,
    sender: Vec<u8>,
    payload: Vec<u8>,
}

/// Every member sends its message for `round`; each must yield exactly one packet.
fn send_round(members: &mut [Member], round: usize) -> Result<Vec<Packet>> {
    let mut packets = Vec::with_capacity(members.len());
    for (from, member) in members.iter_mut().enumerate() {
        let sent =
            member
                .conversation
                .send_message(&member.provider, &member.signer, body(round, from));
        ctx(
            sent,
            &format!("member {from} send_message in round {round}"),
        )?;
        let mut outbound = member.conversation.drain_outbound();
        if outbound.len() != 1 {
            return Err(format!(
                "member {from} produced {} packets for one message in round {round}",
                outbound.len()
            ));
        }
        let out = outbound.remove(0);
        packets.push(Packet {
            from,
            sender: out.sender,
            payload: out.payload,
        });
    }
    Ok(packets)
}

/// Process CPU time (user + system) so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we hand it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// What one receiver spent on one round's packets.
struct Batch {
    receives: u64,
    wall: Duration,
    cpu: Duration,
}

/// Feed `packets` to member `to`, one `process_inbound` call per packet,
/// timing each call; the CPU clock brackets the whole batch.
fn receive_round(member: &mut Member, to: usize, packets: &[Packet]) -> Result<Batch> {
    let mut batch = Batch {
        receives: 0,
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
    };
    let cpu_start = process_cpu();
    for packet in packets.iter().filter(|p| p.from != to) {
        let start = Instant::now();
        let outcome = member.conversation.process_inbound(
            &member.provider,
            &member.signer,
            &packet.sender,
            &packet.payload,
        );
        batch.wall += start.elapsed();
        let outcome = ctx(
            outcome,
            &format!("member {to} process_inbound from {}", packet.from),
        )?;
        if outcome != DispatchOutcome::Done {
            return Err(format!(
                "member {to} got {outcome:?} for the packet of member {}",
                packet.from
            ));
        }
        batch.receives += 1;
    }
    batch.cpu = process_cpu().saturating_sub(cpu_start);
    Ok(batch)
}

/// Check that member `to` surfaced every other member's `round` message exactly
/// once, with the body that was sent; returns how many it delivered.
fn check_delivery(member: &Member, to: usize, n: usize, round: usize) -> Result<u64> {
    let mut seen = vec![false; n];
    let mut delivered = 0u64;
    for event in member.conversation.drain_events() {
        match event {
            ConversationEvent::ConversationMessage { message, .. } => {
                let Some(Payload::ConversationMessage(chat)) = message.payload else {
                    continue;
                };
                let from = sender_of(&chat.message, round, n)
                    .ok_or_else(|| format!("member {to} got a foreign body in round {round}"))?;
                if from == to || seen[from] {
                    return Err(format!(
                        "member {to} got member {from}'s round {round} message twice or from itself"
                    ));
                }
                seen[from] = true;
                delivered += 1;
            }
            ConversationEvent::Error { operation, message } => {
                return Err(format!(
                    "member {to} reported an error in {operation}: {message}"
                ));
            }
            _ => {}
        }
    }
    if delivered != n as u64 - 1 {
        return Err(format!(
            "member {to} delivered {delivered} of {} messages in round {round}",
            n - 1
        ));
    }
    Ok(delivered)
}

/// The sender of a body, if it is exactly what that sender sent in `round`.
fn sender_of(received: &[u8], round: usize, n: usize) -> Option<usize> {
    let from = u64::from_le_bytes(received.get(8..16)?.try_into().ok()?) as usize;
    (from < n && received == body(round, from).as_slice()).then_some(from)
}

/// Totals of one chat.
struct ChatResult {
    n: usize,
    receives: u64,
    delivered: u64,
    wall: Duration,
    cpu: Duration,
}

impl ChatResult {
    fn wall_us_per_receive(&self) -> f64 {
        self.wall.as_secs_f64() * 1e6 / self.receives as f64
    }

    fn cpu_us_per_receive(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.receives as f64
    }
}

fn run_chat(members: &mut [Member], rounds: usize) -> Result<ChatResult> {
    let n = members.len();
    let mut result = ChatResult {
        n,
        receives: 0,
        delivered: 0,
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
    };
    for round in 0..rounds {
        let packets = send_round(members, round)?;
        for (to, member) in members.iter_mut().enumerate() {
            let batch = receive_round(member, to, &packets)?;
            result.receives += batch.receives;
            result.wall += batch.wall;
            result.cpu += batch.cpu;
            result.delivered += check_delivery(member, to, n, round)?;
        }
    }
    let expected = (rounds * n * (n - 1)) as u64;
    if result.receives != expected || result.delivered != expected {
        return Err(format!(
            "n={n}: {} receives, {} delivered, {expected} expected",
            result.receives, result.delivered
        ));
    }
    Ok(result)
}

fn json_line(results: &[ChatResult]) -> String {
    let figures = |per: fn(&ChatResult) -> f64| {
        results
            .iter()
            .map(|r| {
                (
                    r.n.to_string(),
                    serde_json::json!((per(r) * 100.0).round() / 100.0),
                )
            })
            .collect::<serde_json::Map<_, _>>()
    };
    serde_json::json!({
        "reference": REFERENCE,
        "live_us_per_receive": figures(ChatResult::wall_us_per_receive),
        "cpu_us_per_receive": figures(ChatResult::cpu_us_per_receive),
    })
    .to_string()
}

fn run(options: &Options) -> Result<()> {
    println!(
        "{REFERENCE}: {} rounds, {BODY_BYTES}-byte bodies, one process_inbound call per packet",
        options.rounds
    );
    let mut results = Vec::new();
    for &n in &options.ns {
        let formed = Instant::now();
        let mut members = form_group(n);
        let formation = formed.elapsed();
        let result = run_chat(&mut members, options.rounds)?;
        println!(
            "n={n:>4}  receives={:>7}  delivered={:>7}  wall {:>8.2} µs/receive  cpu {:>8.2} µs/receive  (formation {:.1} s, untimed)",
            result.receives,
            result.delivered,
            result.wall_us_per_receive(),
            result.cpu_us_per_receive(),
            formation.as_secs_f64(),
        );
        results.push(result);
    }
    let json = json_line(&results);
    println!("{json}");
    if let Some(path) = &options.json_path {
        ctx(
            std::fs::write(path, format!("{json}\n")),
            &format!("write {path}"),
        )?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let outcome = parse_options().and_then(|options| run(&options));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench-reference: {message}");
            ExitCode::FAILURE
        }
    }
}
