//! Scenario tests of the `mls` layer. Every member keeps its OpenMLS state only in a
//! [`MemoryKv`]; each operation runs on a fresh [`MlsProvider`], reloads the group from the rows
//! and persists `take_changes()` afterwards, exactly like one durable protocol step.

use super::key_package::tests::garbage_inputs;
use super::*;

mod chat_signatures;
mod kept_stage;
mod message_head;
mod secrets_by_position;
mod secrets_copied;

const GID: &[u8] = b"conversation-1";

struct Member {
    id: Identity,
    kv: MemoryKv,
}

impl Member {
    fn new(seed: u8) -> Member {
        Member {
            id: Identity::from_secret(&[seed; 32]).unwrap(),
            kv: MemoryKv::new(),
        }
    }

    fn mid(&self) -> MemberId {
        self.id.member_id()
    }

    /// Runs `f` on a fresh provider and persists its changes.
    fn step<R>(&mut self, f: impl FnOnce(&MlsProvider, &Identity) -> R) -> R {
        let p = MlsProvider::new(&self.kv);
        let r = f(&p, &self.id);
        let changes = p.storage().take_changes();
        drop(p);
        self.kv.apply(changes);
        r
    }

    /// Loads the group from the rows, runs `f`, persists the changes.
    fn with<R>(&mut self, f: impl FnOnce(&MlsProvider, &Identity, &mut Group) -> R) -> R {
        self.step(|p, id| {
            let mut g = Group::load(p, GID).unwrap().expect("group stored");
            f(p, id, &mut g)
        })
    }

    fn key_package(&mut self) -> Vec<u8> {
        self.step(|p, id| new_key_package(p, id).unwrap())
    }

    fn join(&mut self, welcome: &[u8]) -> Result<(), MlsError> {
        self.step(|p, _| Group::join(p, welcome, GID).map(|_| ()))
    }

    fn encrypt(&mut self, text: &[u8]) -> Vec<u8> {
        self.with(|p, id, g| g.encrypt(p, id, text).unwrap())
    }

    fn decrypt(&mut self, msg: &[u8]) -> Result<Decrypted, MlsError> {
        self.with(|p, _, g| g.decrypt(p, msg))
    }

    /// Decrypts `msg` with the group kept in `cache` and its message secrets deferred, then
    /// writes them back as a step's end does; returns the write-back's changes.
    fn decrypt_deferred(
        &mut self,
        cache: &GroupCache,
        msg: &[u8],
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let p = MlsProvider::deferring_message_secrets(&self.kv, cache);
        CachedGroup::load(&p, GID)
            .unwrap()
            .unwrap()
            .decrypt(&p, msg)
            .unwrap();
        let changes = p.storage().take_changes();
        drop(p);
        self.kv.apply(changes);
        let p = MlsProvider::new(&self.kv);
        cache.write_deferred(&p).unwrap();
        let changes = p.storage().take_changes();
        drop(p);
        self.kv.apply(changes.clone());
        changes
    }

    fn epoch(&mut self) -> u64 {
        self.with(|_, _, g| g.epoch())
    }

    fn authenticator(&mut self) -> Vec<u8> {
        self.with(|_, _, g| g.epoch_authenticator())
    }

    fn members(&mut self) -> Vec<MemberId> {
        self.with(|_, _, g| g.members())
    }

    fn commit(&mut self, adds: &[Vec<u8>], removes: &[MemberId]) -> CommitOutput {
        self.with(|p, id, g| g.create_commit(p, id, adds, removes).unwrap())
    }

    fn merge_pending(&mut self) {
        self.with(|p, _, g| g.merge_pending_commit(p).unwrap())
    }

    /// Stages and merges a commit of another member, returning what it did.
    fn apply(&mut self, commit: &[u8]) -> (MemberId, Vec<MemberId>, Vec<MemberId>, bool) {
        self.with(|p, _, g| {
            let s = g.stage_commit(p, commit).unwrap();
            let out = (
                s.committer,
                s.added.clone(),
                s.removed.clone(),
                s.self_removed,
            );
            g.merge_staged(p, s).unwrap();
            out
        })
    }
}

/// alice creates the group and adds bob and carol with one commit.
fn three_members() -> (Member, Member, Member) {
    let (a, b, c, _welcome) = three_members_with_welcome();
    (a, b, c)
}

/// `n` members, alice (index 0) having added the others in one commit.
fn group_of(n: u8) -> Vec<Member> {
    let mut members: Vec<Member> = (1..=n).map(Member::new).collect();
    members[0].step(|p, id| Group::create(p, id, GID).unwrap());
    let adds: Vec<Vec<u8>> = members[1..].iter_mut().map(Member::key_package).collect();
    let out = members[0].commit(&adds, &[]);
    members[0].merge_pending();
    let welcome = out.welcome.expect("welcome");
    for m in &mut members[1..] {
        m.join(&welcome).unwrap();
    }
    members
}

fn three_members_with_welcome() -> (Member, Member, Member, Vec<u8>) {
    let (mut a, mut b, mut c) = (Member::new(1), Member::new(2), Member::new(3));
    a.step(|p, id| Group::create(p, id, GID).unwrap());
    assert_eq!(a.epoch(), 0);
    assert_eq!(a.members(), vec![a.mid()]);
    let (kb, kc) = (b.key_package(), c.key_package());
    let out = a.commit(&[kb, kc], &[]);
    assert!(a.with(|_, _, g| g.has_pending_commit()));
    assert_eq!(a.epoch(), 0, "commit stays pending");
    a.merge_pending();
    let welcome = out.welcome.expect("welcome for adds");
    b.join(&welcome).unwrap();
    c.join(&welcome).unwrap();
    (a, b, c, welcome)
}

#[test]
fn create_add_join_and_chat() {
    let (mut a, mut b, mut c, welcome) = three_members_with_welcome();
    let expected = vec![a.mid(), b.mid(), c.mid()];
    for m in [&mut a, &mut b, &mut c] {
        assert_eq!(m.epoch(), 1);
        assert_eq!(m.members(), expected);
        assert!(m.with(|_, _, g| g.is_active() && g.group_id() == GID));
    }
    let auth = a.authenticator();
    assert_eq!(b.authenticator(), auth);
    assert_eq!(c.authenticator(), auth);

    let m1 = a.encrypt(b"hello from alice");
    assert_eq!(Group::message_header(&m1).unwrap(), (GID.to_vec(), 1));
    for m in [&mut b, &mut c] {
        let d = m.decrypt(&m1).unwrap();
        assert_eq!(d.sender, a.mid());
        assert_eq!(d.plaintext, b"hello from alice");
        assert_eq!(d.epoch, 1);
    }
    assert_eq!(a.decrypt(&m1), Err(MlsError::OwnMessage));
    assert_eq!(
        b.decrypt(&m1),
        Err(MlsError::Replayed),
        "a replay cannot be decrypted twice"
    );

    let m2 = b.encrypt(b"hi alice");
    let d = a.decrypt(&m2).unwrap();
    assert_eq!(
        (d.sender, d.plaintext.as_slice()),
        (b.mid(), &b"hi alice"[..])
    );
    assert_eq!(c.decrypt(&m2).unwrap().sender, b.mid());

    // out of order delivery within an epoch
    let x1 = c.encrypt(b"one");
    let x2 = c.encrypt(b"two");
    assert_eq!(a.decrypt(&x2).unwrap().plaintext, b"two");
    assert_eq!(a.decrypt(&x1).unwrap().plaintext, b"one");

    // the welcome cannot be used twice (the key package is consumed), nor by a stranger
    assert!(matches!(b.join(&welcome), Err(MlsError::InvalidWelcome(_))));
    let mut e = Member::new(5);
    e.key_package();
    assert!(matches!(e.join(&welcome), Err(MlsError::InvalidWelcome(_))));

    // a message of another group
    let other = e.step(|p, id| {
        let mut g = Group::create(p, id, b"other").unwrap();
        g.encrypt(p, id, b"elsewhere").unwrap()
    });
    assert_eq!(a.decrypt(&other), Err(MlsError::WrongGroup));
}

#[test]
fn too_old_messages_are_a_wrong_epoch() {
    let (mut a, mut b, _c) = three_members();
    let old = b.encrypt(b"epoch 1");
    let recent = b.encrypt(b"also epoch 1");
    for _ in 0..MAX_PAST_EPOCHS {
        a.commit(&[], &[]);
        a.merge_pending();
    }
    assert_eq!(a.epoch(), 1 + MAX_PAST_EPOCHS as u64);
    assert_eq!(a.decrypt(&recent).unwrap().plaintext, b"also epoch 1");
    a.commit(&[], &[]);
    a.merge_pending();
    assert_eq!(
        a.decrypt(&old),
        Err(MlsError::WrongEpoch {
            message_epoch: 1,
            group_epoch: 2 + MAX_PAST_EPOCHS as u64
        })
    );
}

#[test]
fn remove_member_and_epochs() {
    let (mut a, mut b, mut c) = three_members();
    let late = b.encrypt(b"sent in epoch 1");
    let out = a.commit(&[], &[c.mid()]);
    assert!(out.welcome.is_none());
    assert_eq!(Group::message_header(&out.commit).unwrap().1, 1);
    a.merge_pending();
    assert_eq!(a.epoch(), 2);

    // alice is ahead: her epoch-2 message is a future epoch for bob
    let m = a.encrypt(b"epoch 2");
    assert_eq!(
        b.decrypt(&m),
        Err(MlsError::WrongEpoch {
            message_epoch: 2,
            group_epoch: 1
        })
    );
    let (committer, added, removed, self_removed) = b.apply(&out.commit);
    assert_eq!(committer, a.mid());
    assert!(added.is_empty());
    assert_eq!(removed, vec![c.mid()]);
    assert!(!self_removed);
    assert_eq!(b.decrypt(&m).unwrap().plaintext, b"epoch 2");
    // a late message of the previous epoch still decrypts
    let d = a.decrypt(&late).unwrap();
    assert_eq!((d.sender, d.epoch), (b.mid(), 1));

    let (_, _, removed, self_removed) = c.apply(&out.commit);
    assert_eq!(removed, vec![c.mid()]);
    assert!(self_removed);
    c.with(|p, id, g| {
        assert!(!g.is_active());
        assert_eq!(g.encrypt(p, id, b"x"), Err(MlsError::Inactive));
        assert_eq!(g.decrypt(p, &m), Err(MlsError::Inactive));
    });

    assert_eq!(a.members(), vec![a.mid(), b.mid()]);
    assert_eq!(b.members(), vec![a.mid(), b.mid()]);
    assert_eq!(a.authenticator(), b.authenticator());
    // a stale commit is reported as a wrong epoch
    b.with(|p, _, g| {
        assert_eq!(
            g.stage_commit(p, &out.commit).unwrap_err(),
            MlsError::WrongEpoch {
                message_epoch: 1,
                group_epoch: 2
            }
        );
    });

    // carol can be invited again; her inactive state is replaced
    let kc = c.key_package();
    let out = a.commit(&[kc], &[]);
    a.merge_pending();
    b.apply(&out.commit);
    c.join(&out.welcome.unwrap()).unwrap();
    assert_eq!(c.epoch(), 3);
    assert_eq!(c.authenticator(), a.authenticator());
    let m = c.encrypt(b"back");
    assert_eq!(a.decrypt(&m).unwrap().sender, c.mid());
}

#[test]
fn competing_candidates() {
    let (mut a, mut b, mut c) = three_members();
    let mut d = Member::new(4);
    let kd = d.key_package();
    // two stewards build candidates for epoch 1
    let cand_a = a.commit(&[], &[c.mid()]);
    let cand_b = b.commit(&[kd], &[]);

    // carol stages alice's candidate, then discards it: nothing is written
    c.with(|p, _, g| {
        let s = g.stage_commit(p, &cand_a.commit).unwrap();
        assert!(s.self_removed);
        assert_eq!(s.committer, a.mid());
        assert!(!p.storage().has_changes());
        drop(s);
        let s = g.stage_commit(p, &cand_b.commit).unwrap();
        assert_eq!((s.committer, s.added.clone()), (b.mid(), vec![d.mid()]));
        g.merge_staged(p, s).unwrap();
    });
    // alice drops her own candidate and applies bob's
    a.with(|p, _, g| {
        let s = g.stage_commit(p, &cand_b.commit).unwrap();
        g.clear_pending_commit(p).unwrap();
        assert!(!g.has_pending_commit());
        g.merge_staged(p, s).unwrap();
    });
    // bob receives his own candidate back and merges it as such
    let (bid, did) = (b.mid(), d.mid());
    b.with(|p, _, g| {
        let s = g.stage_commit(p, &cand_b.commit).unwrap();
        assert_eq!(s.added, vec![did]);
        assert_eq!(s.committer, bid);
        g.merge_staged(p, s).unwrap();
        assert!(!g.has_pending_commit());
    });
    d.join(&cand_b.welcome.unwrap()).unwrap();

    let auth = a.authenticator();
    for m in [&mut b, &mut c, &mut d] {
        assert_eq!(m.epoch(), 2);
        assert_eq!(m.authenticator(), auth);
    }
    let expected = vec![a.mid(), b.mid(), c.mid(), d.mid()];
    assert_eq!(a.members(), expected);
    assert_eq!(d.members(), expected);
    let m = d.encrypt(b"hello all");
    for m_ in [&mut a, &mut b, &mut c] {
        assert_eq!(m_.decrypt(&m).unwrap().sender, d.mid());
    }
}

#[test]
fn merging_a_pending_commit_requires_one() {
    let (mut a, _b, _c) = three_members();
    a.with(|p, _, g| {
        assert_eq!(g.merge_pending_commit(p), Err(MlsError::NoPendingCommit));
        // removing oneself or an unknown member is refused
        let me = g.members()[0];
        let stranger = MemberId::from_public_key(b"stranger");
        let id = Identity::from_secret(&[1; 32]).unwrap();
        assert!(matches!(
            g.create_commit(p, &id, &[], &[me]),
            Err(MlsError::InvalidCommit(_))
        ));
        assert_eq!(
            g.create_commit(p, &id, &[], &[stranger]),
            Err(MlsError::UnknownMember(stranger))
        );
    });
}

#[test]
fn adding_an_existing_member_is_refused() {
    let (mut a, mut b, _c) = three_members();
    let kb = b.key_package();
    a.with(|p, id, g| {
        assert!(matches!(
            g.create_commit(p, id, &[kb], &[]),
            Err(MlsError::InvalidKeyPackage(_))
        ));
    });
}

#[test]
fn garbage_never_panics() {
    let (mut a, mut b, _c) = three_members();
    let mut inputs = garbage_inputs();
    let app = a.encrypt(b"valid");
    let commit = a.commit(&[], &[]).commit;
    a.with(|p, _, g| g.clear_pending_commit(p).unwrap());
    for i in 0..app.len() {
        let mut t = app.clone();
        t[i] ^= 0x80;
        inputs.push(t);
    }
    for i in (0..commit.len()).step_by(3) {
        let mut t = commit.clone();
        t[i] ^= 0x04;
        inputs.push(t);
    }
    inputs.push(app[..app.len() / 2].to_vec());
    inputs.push(commit[..commit.len() - 1].to_vec());
    for g_in in &inputs {
        b.with(|p, _, g| {
            assert!(g.decrypt(p, g_in).is_err());
            assert!(g.stage_commit(p, g_in).is_err());
        });
        b.step(|p, _| {
            assert!(Group::join(p, g_in, GID).is_err());
            assert!(validate_key_package(p, g_in).is_err());
        });
        let _ = Group::message_header(g_in);
    }
    // wrong message kinds
    b.with(|p, _, g| {
        assert_eq!(g.decrypt(p, &commit), Err(MlsError::NotApplication));
        assert_eq!(g.stage_commit(p, &app).unwrap_err(), MlsError::NotACommit);
    });
    assert!(b.join(&commit).is_err());
    // the group still works after all that
    assert_eq!(b.decrypt(&app).unwrap().plaintext, b"valid");
    assert_eq!(b.epoch(), 1);
}

#[test]
fn dropped_run_writes_leave_the_source_unchanged() {
    let mut a = Member::new(9);
    {
        let p = MlsProvider::new(&a.kv);
        Group::create(&p, &a.id, GID).unwrap();
        new_key_package(&p, &a.id).unwrap();
        assert!(p.storage().has_changes());
        // dropped without take_changes
    }
    assert!(a.kv.is_empty());
    let p = MlsProvider::new(&a.kv);
    assert!(Group::load(&p, GID).unwrap().is_none());
    drop(p);

    a.step(|p, id| Group::create(p, id, GID).unwrap());
    let before = a.kv.clone();
    {
        let p = MlsProvider::new(&a.kv);
        let mut g = Group::load(&p, GID).unwrap().unwrap();
        let _ = g.create_commit(&p, &a.id, &[], &[]).unwrap();
        g.merge_pending_commit(&p).unwrap();
        assert_eq!(g.epoch(), 1);
    }
    assert_eq!(a.kv, before);
    assert_eq!(a.epoch(), 0);
    // creating a group that exists is refused
    a.step(|p, id| {
        assert_eq!(
            Group::create(p, id, GID).unwrap_err(),
            MlsError::GroupExists
        );
    });
}

#[test]
fn deferred_message_secrets_end_in_the_rows_the_plain_path_writes() {
    let (mut a, mut b, mut c) = three_members();
    let msgs: Vec<Vec<u8>> = (0..3u8)
        .flat_map(|i| [a.encrypt(&[i]), c.encrypt(&[i])])
        .collect();
    let mut rows = b.kv.clone();
    for m in &msgs {
        b.decrypt(m).unwrap();
    }
    let cache = GroupCache::keeping(true);
    for (i, m) in msgs.iter().enumerate() {
        let p = MlsProvider::deferring_message_secrets(&rows, &cache);
        let d = {
            let mut g = CachedGroup::load(&p, GID).unwrap().unwrap();
            g.decrypt(&p, m).unwrap()
        };
        assert_eq!(d.plaintext, vec![(i / 2) as u8]);
        let changes = p.storage().take_changes();
        drop(p);
        rows.apply(changes);
        assert!(cache.is_ahead());
    }
    assert_ne!(
        rows, b.kv,
        "the rows miss the secrets the cached group holds"
    );
    write_deferred_into(&cache, &mut rows);
    assert!(cache.is_settled());
    use crate::mls::storage::secret_rows::without_versions;
    assert!(without_versions(&rows) == without_versions(&b.kv));
}

/// The labels of the rows in `changes` (`mls1/<label>/...`), and how many there are.
fn labels_of(changes: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<String> {
    let label = |k: &[u8]| {
        String::from_utf8_lossy(k)
            .split('/')
            .nth(1)
            .unwrap_or("")
            .to_owned()
    };
    changes.iter().map(|(k, _)| label(k)).collect()
}

#[test]
fn a_send_or_a_receive_in_a_group_of_twenty_rewrites_a_piece_of_the_secrets() {
    let (mut a, mut b) = (Member::new(1), Member::new(2));
    a.step(|p, id| Group::create(p, id, GID).unwrap());
    let mut adds = vec![b.key_package()];
    adds.extend((3..=20u8).map(|i| Member::new(i).key_package()));
    let out = a.commit(&adds, &[]);
    a.merge_pending();
    b.join(&out.welcome.expect("welcome")).unwrap();
    let msgs: Vec<Vec<u8>> = (0..3u8).map(|i| a.encrypt(&[i])).collect();
    let cache = GroupCache::keeping(true);
    let mut written = Vec::new();
    for m in &msgs[..2] {
        written.push(labels_of(&b.decrypt_deferred(&cache, m)));
    }
    // The first write-back knows nothing of the rows: every piece and the head.
    let pieces = written[0].len() - 1;
    assert!(pieces >= 4, "twenty leaves are cut into pieces: {pieces}");
    assert!(written.iter().flatten().all(|l| l == "message_secrets"));
    // The second one: the head and the piece holding alice's ratchet.
    assert!(
        written[1].len() <= 3,
        "rewrote {:?} of {pieces} pieces",
        written[1]
    );
    // The rows alone (no cache) read the secrets the cached group had: the next message opens.
    assert_eq!(b.decrypt(&msgs[2]).unwrap().plaintext, vec![2]);
    // Old keys are gone from the rows too: the second message cannot be opened again.
    assert!(b.decrypt(&msgs[1]).is_err());
    // Sending: alice's group, kept between sends, writes her ratchet's piece and the head.
    let kept = GroupCache::keeping(true);
    let mut sent = Vec::new();
    for i in 0..2u8 {
        let p = MlsProvider::with_group_cache(&a.kv, &kept);
        let m = {
            let mut g = CachedGroup::load(&p, GID).unwrap().unwrap();
            g.encrypt(&p, &a.id, &[10 + i]).unwrap()
        };
        let changes = p.storage().take_changes();
        drop(p);
        sent.push(labels_of(&changes).len());
        a.kv.apply(changes);
        assert_eq!(b.decrypt(&m).unwrap().plaintext, vec![10 + i]);
    }
    assert!(
        sent[0] > pieces && sent[1] <= 3,
        "rows written per send: {sent:?}"
    );
}

/// Writes `cache`'s deferred message secrets into `kv`, as a step does before it commits.
pub(crate) fn write_deferred_into(cache: &GroupCache, kv: &mut MemoryKv) {
    let p = MlsProvider::new(&*kv);
    cache.write_deferred(&p).unwrap();
    let changes = p.storage().take_changes();
    drop(p);
    kv.apply(changes);
}

/// A group of thirty-two that has chatted holds a ratchet per sender: its secrets outgrow a
/// database page, so writing them whole would spill into overflow pages on every receive.
#[test]
fn a_receive_in_a_chatty_group_of_thirty_two_rewrites_a_small_piece_of_the_secrets() {
    let mut members = group_of(32);
    let (first, rest) = members.split_at_mut(1);
    let b = &mut first[0];
    let cache = GroupCache::keeping(true);
    for m in rest.iter_mut() {
        b.decrypt_deferred(&cache, &m.encrypt(b"hello"));
    }
    let whole: usize =
        b.kv.0
            .iter()
            .filter(|(k, _)| k.starts_with(b"mls1/message_secrets/"))
            .map(|(_, v)| v.len())
            .sum();
    assert!(whole > 4096, "thirty-one senders' ratchets: {whole} bytes");
    let written = b.decrypt_deferred(&cache, &rest[3].encrypt(b"again"));
    let sizes: Vec<usize> = written
        .iter()
        .map(|(_, v)| v.as_ref().map_or(0, Vec::len))
        .collect();
    // The head and one piece, each far inside a 4 KiB page (no overflow pages to rewrite).
    assert!(
        written.len() <= 3
            && sizes.iter().all(|s| *s < 2048)
            && sizes.iter().sum::<usize>() < whole / 2,
        "rewrote {sizes:?} of {whole} bytes"
    );
}
