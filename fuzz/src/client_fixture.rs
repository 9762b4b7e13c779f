//! A live member for the `receive` targets, built once per process: two `WitanClient`s form
//! conversation [`CONV`] in a `witan_testing` world (an in-process topic router driven by a
//! manual clock, as the tests use). Member 1, with a `":memory:"` database, is the one fed fuzz input;
//! member 0 uses a file database so that, once formed, its client is closed and its MLS group
//! can encrypt arbitrary plaintexts as a real member of the conversation. After formation
//! the router drops everything member 1 publishes and the clock stands still, so no deadline
//! fires while fuzzing.
//!
//! Member 1's state only changes when a packet is accepted (a rejected one is rolled back),
//! which random input rarely achieves; inputs are therefore nearly, but not exactly,
//! independent of each other.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use witan::client::{ConversationState, InboundPacket, ReceiveReport, WitanClient, WitanError};
use witan::mls::{Group, Identity, MlsProvider};
use witan::store::{Database, StoreOptions};
use witan::wire::{self, Envelope, PacketKind};
use witan_testing::{Dir, Ignore, MemberSpec, Mode, Packet, Tap, World};

/// The conversation id (also the MLS group id).
pub const CONV: &str = "fuzz-conv";

const SECRETS: [[u8; 32]; 2] = [[1; 32], [2; 32]];

/// Keeps every packet published while forming.
#[derive(Default)]
struct Capture(Mutex<Vec<Vec<u8>>>);

impl Tap for Capture {
    fn published(&self, packet: &mut Packet) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        log.push(packet.payload.clone());
    }
}

/// The formed conversation and the valid packets seen while forming it.
pub struct ClientFixture {
    /// Member 1 (`":memory:"`), the client under test.
    pub member: Arc<WitanClient>,
    /// Member 0's database and identity, to encrypt as member 0.
    sender: Mutex<Database>,
    sender_identity: Identity,
    /// Member ids: `[member 0, member 1]`.
    pub ids: [[u8; 20]; 2],
    /// Every packet published while forming (member 1 has seen them all).
    pub captured: Vec<Vec<u8>>,
    /// Valid packets of member 0 that member 1 has not received (two chats, a proposal).
    pub fresh: Vec<Vec<u8>>,
    /// The time on member 1's clock, which stands still after formation.
    pub now_ms: u64,
}

/// A fresh directory for member 0's file; directories of finished processes are removed.
fn scratch_dir() -> PathBuf {
    let base = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(pid) = name.strip_prefix("witan-fuzz-client-")
                && !PathBuf::from(format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("witan-fuzz-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn build() -> ClientFixture {
    let capture = Arc::new(Capture::default());
    let tap: Arc<dyn Tap> = capture.clone();
    let mut w = World::empty(
        Dir::Kept(scratch_dir()),
        Some(tap),
        Box::new(|_, _| Arc::new(Ignore)),
    );
    w.conv = CONV.to_string();
    w.add_member(MemberSpec::named("member-0").with_secret(&SECRETS[0]));
    w.add_member(MemberSpec {
        in_memory: true,
        ..MemberSpec::named("member-1").with_secret(&SECRETS[1])
    });
    w.open(0);
    w.open(1);
    w.form(0, &[1]);
    assert_eq!(
        w.info(1).state,
        ConversationState::Working,
        "fixture formed"
    );
    let captured = capture.0.lock().expect("log").clone();

    let (c0, c1) = (w.c(0), w.c(1));
    c0.send_message(CONV.into(), b"fresh chat one".to_vec())
        .expect("chat");
    c0.send_message(CONV.into(), b"fresh chat two".to_vec())
        .expect("chat");
    let _ = c0.propose_removal(CONV.into(), c1.member_id());
    let fresh = w.net.take_all().into_iter().map(|p| p.payload).collect();
    for t in &w.transports {
        t.set_mode(Mode::Swallow);
    }

    let member: Arc<WitanClient> = w.client(1).expect("member 1 is open").clone();
    let (sender_path, now_ms) = (w.path(0), w.now());
    drop(w);
    let sender = Database::open(&sender_path, &StoreOptions::default()).expect("sender db");
    let ids = SECRETS.map(|s| {
        *Identity::from_secret(&s)
            .expect("identity")
            .member_id()
            .as_bytes()
    });
    ClientFixture {
        member,
        sender: Mutex::new(sender),
        sender_identity: Identity::from_secret(&SECRETS[0]).expect("identity"),
        ids,
        captured,
        fresh,
        now_ms,
    }
}

/// The fixture, built on first use.
pub fn get() -> &'static ClientFixture {
    static FIXTURE: OnceLock<ClientFixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

impl ClientFixture {
    /// Feeds one packet to member 1 and checks the contract: `Ok`, exactly one packet
    /// counted, and no packet rejected with an internal error.
    pub fn receive(&self, payload: Vec<u8>) -> ReceiveReport {
        let packet = InboundPacket {
            topic: String::new(),
            payload,
        };
        let report: Result<ReceiveReport, WitanError> = self.member.receive(vec![packet]);
        let report = match report {
            Ok(r) => r,
            Err(e) => panic!("receive returned an error for one packet: {e:?}"),
        };
        crate::debug(|| format!("receive: {report:?}"));
        assert_eq!(
            report.accepted + report.duplicates + report.rejected,
            1,
            "{report:?}"
        );
        if let Some(reason) = crate::watch::take_internal() {
            panic!("packet rejected with an internal error: {reason}");
        }
        report
    }

    /// Encrypts `plaintext` as member 0 in the current epoch and feeds the resulting group
    /// packet to member 1. Member 0's ratchet advances only if member 1 accepted the packet,
    /// so the two stay in step however many packets are rejected.
    pub fn receive_from_sender(&self, plaintext: &[u8]) -> ReceiveReport {
        let mut db = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let step = db.step().expect("sender step");
        let p = MlsProvider::new(&step);
        let mut group = Group::load(&p, CONV.as_bytes())
            .expect("sender group loads")
            .expect("sender group stored");
        let ct = match group.encrypt(&p, &self.sender_identity, plaintext) {
            Ok(ct) => ct,
            Err(e) => panic!("sender cannot encrypt: {e}"),
        };
        let changes = p.storage().take_changes();
        drop(p);
        step.apply_mls_changes(&changes).expect("sender rows");
        let env = Envelope::new(CONV, self.ids[0], PacketKind::Group, ct);
        let report = self.receive(wire::encode(&env));
        if report.accepted == 1 {
            step.commit().expect("sender commit");
        }
        report
    }

    /// Seals `plaintext` with member 0's key of the current epoch and feeds the packet to
    /// member 1 (sealing changes nothing stored).
    pub fn receive_sealed_from_sender(&self, plaintext: &[u8]) -> ReceiveReport {
        let sealed = {
            let mut db = self.sender.lock().unwrap_or_else(|e| e.into_inner());
            let step = db.step().expect("sender step");
            let p = MlsProvider::new(&step);
            let group = Group::load(&p, CONV.as_bytes())
                .expect("sender group loads")
                .expect("sender group stored");
            let key = group.seal_key(&p).expect("sealing key");
            witan::mls::seal::seal(&p, &key, CONV, plaintext).expect("sealing")
        };
        let env = Envelope::new(CONV, self.ids[0], PacketKind::Sealed, wire::encode(&sealed));
        self.receive(wire::encode(&env))
    }

    /// Every valid packet the fixture knows.
    pub fn valid_packets(&self) -> Vec<Vec<u8>> {
        let mut v = self.captured.clone();
        v.extend(self.fresh.iter().cloned());
        v
    }
}
