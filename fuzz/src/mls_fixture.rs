//! A fixed small MLS group built once per process over `MemoryKv` (as in `crates/witan-engine/src/mls/tests.rs`):
//! alice creates it and adds bob (epoch 1); alice then sends an application message and
//! creates two commits for epoch 1 (adding carol, removing bob); carol keeps the key package
//! the add's Welcome is addressed to; dave holds a spare key package. Targets run every
//! operation on a fresh provider over bob's or carol's rows and never persist its changes,
//! so every input meets the same state.

use std::sync::OnceLock;

use witan::mls::{Group, Identity, MemoryKv, MlsProvider, new_key_package};

/// The MLS group id of the fixture.
pub const GID: &[u8] = b"fuzz-group";

/// The fixture's rows and valid messages.
pub struct MlsFixture {
    /// bob's rows: a member at epoch 1.
    pub bob: MemoryKv,
    /// carol's rows: holds the key package `welcome` is addressed to.
    pub carol: MemoryKv,
    /// alice's application message of epoch 1 (bob decrypts it).
    pub application: Vec<u8>,
    /// alice's commits of epoch 1 (bob stages them): add carol, remove bob.
    pub commits: Vec<Vec<u8>>,
    /// The Welcome of the add-carol commit.
    pub welcome: Vec<u8>,
    /// dave's serialized key package.
    pub key_package: Vec<u8>,
}

impl MlsFixture {
    /// Every valid message of the fixture.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut v = vec![self.application.clone(), self.welcome.clone()];
        v.extend(self.commits.iter().cloned());
        v.push(self.key_package.clone());
        v
    }
}

/// Runs `f` on a fresh provider over `kv` and persists its changes.
fn step<R>(kv: &mut MemoryKv, f: impl FnOnce(&MlsProvider) -> R) -> R {
    let p = MlsProvider::new(&*kv);
    let r = f(&p);
    let changes = p.storage().take_changes();
    drop(p);
    kv.apply(changes);
    r
}

fn load(p: &MlsProvider) -> Group {
    Group::load(p, GID)
        .expect("fixture group loads")
        .expect("fixture group stored")
}

fn build() -> MlsFixture {
    let ids: Vec<Identity> = (1..=4u8)
        .map(|s| Identity::from_secret(&[s; 32]).expect("fixture identity"))
        .collect();
    let (alice, bob_id, carol_id, dave_id) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let mut a = MemoryKv::new();
    let mut bob = MemoryKv::new();
    let mut carol = MemoryKv::new();
    let mut dave = MemoryKv::new();
    step(&mut a, |p| Group::create(p, alice, GID).expect("create"));
    let kb = step(&mut bob, |p| new_key_package(p, bob_id).expect("kp bob"));
    let kc = step(&mut carol, |p| {
        new_key_package(p, carol_id).expect("kp carol")
    });
    let key_package = step(&mut dave, |p| new_key_package(p, dave_id).expect("kp dave"));
    let out = step(&mut a, |p| {
        let mut g = load(p);
        let out = g.create_commit(p, alice, &[kb], &[]).expect("commit");
        g.merge_pending_commit(p).expect("merge");
        out
    });
    let welcome_bob = out.welcome.expect("welcome for bob");
    step(&mut bob, |p| {
        Group::join(p, &welcome_bob).expect("bob joins")
    });
    let application = step(&mut a, |p| {
        load(p)
            .encrypt(p, alice, b"hello from alice")
            .expect("encrypt")
    });
    let add = step(&mut a, |p| {
        load(p)
            .create_commit(p, alice, &[kc], &[])
            .expect("add carol")
    });
    let remove = step(&mut a, |p| {
        load(p)
            .create_commit(p, alice, &[], &[bob_id.member_id()])
            .expect("remove bob")
    });
    MlsFixture {
        bob,
        carol,
        application,
        commits: vec![add.commit, remove.commit],
        welcome: add.welcome.expect("welcome for carol"),
        key_package,
    }
}

/// The fixture, built on first use.
pub fn get() -> &'static MlsFixture {
    static FIXTURE: OnceLock<MlsFixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// Loads bob's group on a fresh provider (changes are dropped with the provider) and runs
/// `f` on it.
pub fn with_bob<R>(f: impl FnOnce(&MlsProvider, &mut Group) -> R) -> R {
    let fx = get();
    let p = MlsProvider::new(&fx.bob);
    let mut g = load(&p);
    f(&p, &mut g)
}

/// A fresh provider over carol's rows (changes are dropped with it).
pub fn with_carol<R>(f: impl FnOnce(&MlsProvider) -> R) -> R {
    let fx = get();
    let p = MlsProvider::new(&fx.carol);
    f(&p)
}
