//! Tests of `GroupCache`: reuse, what makes it forget, deferred secrets, the switches.
use super::*;
use crate::mls::tests::write_deferred_into;
use crate::mls::{Identity, MemoryKv};

const GID: &[u8] = b"cached";

/// Runs `f` on a provider with `cache` over `kv`, then persists its writes (a run that
/// succeeded).
fn run<R>(kv: &mut MemoryKv, cache: &GroupCache, f: impl FnOnce(&MlsProvider) -> R) -> R {
    let p = MlsProvider::with_group_cache(kv, cache);
    let r = f(&p);
    let changes = p.storage().take_changes();
    drop(p);
    kv.apply(changes);
    r
}

fn commit_empty(p: &MlsProvider, id: &Identity, g: &mut Group) {
    g.create_commit(p, id, &[], &[]).unwrap();
    g.merge_pending_commit(p).unwrap();
}

fn created(id: &Identity) -> (MemoryKv, GroupCache) {
    let mut kv = MemoryKv::new();
    let cache = GroupCache::keeping(true);
    run(&mut kv, &cache, |p| {
        Group::create(p, id, GID).map(|_| ()).unwrap()
    });
    (kv, cache)
}

#[test]
fn a_returned_group_is_reused_and_equals_the_stored_one() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let (mut kv, cache) = created(&id);
    for expected in 1..=3 {
        run(&mut kv, &cache, |p| {
            let mut g = CachedGroup::load(p, GID).unwrap().unwrap();
            commit_empty(p, &id, &mut g);
            assert_eq!(g.epoch(), expected);
        });
    }
    assert_eq!(cache.stats(), (2, 1));
    assert!(cache.is_settled() && cache.holds(GID));
    // What stayed in memory is what the rows hold.
    let cached = run(&mut kv, &cache, |p| {
        CachedGroup::load(p, GID)
            .unwrap()
            .unwrap()
            .epoch_authenticator()
    });
    let p = MlsProvider::new(&kv);
    let stored = Group::load(&p, GID).unwrap().unwrap();
    assert_eq!(stored.epoch(), 3);
    assert_eq!(stored.epoch_authenticator(), cached);
    drop(p);
    // Another group id is a miss and replaces the cached one.
    run(&mut kv, &cache, |p| {
        assert!(CachedGroup::load(p, b"other").unwrap().is_none());
    });
    assert!(cache.is_empty());
}

#[test]
fn a_reset_or_a_failed_run_forgets_the_group() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let (mut kv, cache) = created(&id);
    run(&mut kv, &cache, |p| {
        let _g = CachedGroup::load(p, GID).unwrap().unwrap();
    });
    assert!(cache.holds(GID));
    // A run that advances the group in memory but fails: its writes are dropped, and so is
    // the group.
    let p = MlsProvider::with_group_cache(&kv, &cache);
    {
        let mut g = CachedGroup::load(&p, GID).unwrap().unwrap();
        commit_empty(&p, &id, &mut g);
    }
    drop(p);
    assert!(cache.holds(GID));
    cache.run_failed();
    assert!(cache.is_empty());
    run(&mut kv, &cache, |p| {
        assert_eq!(CachedGroup::load(p, GID).unwrap().unwrap().epoch(), 0);
    });
    // A reset while a group is lent: the group does not come back.
    run(&mut kv, &cache, |p| {
        let g = CachedGroup::load(p, GID).unwrap().unwrap();
        cache.reset();
        drop(g);
    });
    assert!(cache.is_empty());
}

#[test]
fn a_group_an_operation_failed_on_is_not_kept() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let (mut kv, cache) = created(&id);
    run(&mut kv, &cache, |p| {
        let mut g = CachedGroup::load(p, GID).unwrap().unwrap();
        // Our own epoch-0 group cannot merge a commit it does not have.
        assert!(g.merge_pending_commit(p).is_err());
        assert!(g.decrypt(p, b"not an mls message").is_err());
        let staged = g.stage_commit(p, &[0; 8]);
        assert!(staged.is_err());
    });
    // Only the OpenMLS call that failed (none above reached OpenMLS) marks the group.
    assert!(cache.holds(GID));
    let other = Identity::from_secret(&[4; 32]).unwrap();
    let (mut other_kv, other_cache) = created(&other);
    let foreign = run(&mut other_kv, &other_cache, |p| {
        let mut g = CachedGroup::load(p, GID).unwrap().unwrap();
        g.encrypt(p, &other, b"from another group").unwrap()
    });
    run(&mut kv, &cache, |p| {
        let mut g = CachedGroup::load(p, GID).unwrap().unwrap();
        assert!(g.decrypt(p, &foreign).is_err());
    });
    assert!(cache.is_empty(), "the group OpenMLS failed on was dropped");
}

#[test]
fn two_groups_lent_at_once_are_not_kept() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let (mut kv, cache) = created(&id);
    run(&mut kv, &cache, |p| {
        let mut a = CachedGroup::load(p, GID).unwrap().unwrap();
        let b = CachedGroup::load(p, GID).unwrap().unwrap();
        commit_empty(p, &id, &mut a);
        assert_eq!((a.epoch(), b.epoch()), (1, 0));
        drop(b);
        drop(a);
    });
    assert!(cache.is_empty());
    run(&mut kv, &cache, |p| {
        assert_eq!(CachedGroup::load(p, GID).unwrap().unwrap().epoch(), 1);
    });
    assert!(cache.holds(GID));
}

#[test]
fn creating_or_deleting_a_group_forgets_the_one_held() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let (mut kv, cache) = created(&id);
    run(&mut kv, &cache, |p| {
        let _g = CachedGroup::load(p, GID).unwrap().unwrap();
    });
    assert!(cache.holds(GID));
    run(&mut kv, &cache, |p| {
        let g = Group::load(p, GID).unwrap().unwrap();
        g.delete(p).unwrap();
    });
    assert!(cache.is_empty());
    run(&mut kv, &cache, |p| {
        assert!(CachedGroup::load(p, GID).unwrap().is_none());
    });
    run(&mut kv, &cache, |p| {
        let _g = Group::create(p, &id, b"x").unwrap();
        let _c = CachedGroup::load(p, b"x").unwrap().unwrap();
    });
    assert!(cache.holds(b"x"));
    run(&mut kv, &cache, |p| {
        Group::create(p, &id, GID).map(|_| ()).unwrap()
    });
    assert!(cache.is_empty());
}

/// A cache holding group `GID` with message secrets newer than the rows.
fn ahead_cache(kv: &mut MemoryKv, id: &Identity) -> GroupCache {
    let cache = GroupCache::keeping(true);
    run(kv, &cache, |p| {
        Group::create(p, id, GID).map(|_| ()).unwrap()
    });
    let p = MlsProvider::deferring_message_secrets(kv, &cache);
    {
        let mut g = CachedGroup::load(&p, GID).unwrap().unwrap();
        commit_empty(&p, id, &mut g);
    }
    let changes = p.storage().take_changes();
    drop(p);
    kv.apply(changes);
    assert!(cache.is_ahead() && cache.holds(GID));
    cache
}

#[test]
fn dropping_a_group_ahead_of_its_rows_loses_the_transaction() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let kv = MemoryKv::new();
    // A failed run, a group created over the rows, or another group loaded: lost.
    let cache = ahead_cache(&mut kv.clone(), &id);
    cache.run_failed();
    assert!(cache.is_lost() && !cache.is_settled());
    let cache = ahead_cache(&mut kv.clone(), &id);
    cache.forget();
    assert!(cache.is_lost());
    let mut other = kv.clone();
    let cache = ahead_cache(&mut other, &id);
    run(&mut other, &cache, |p| {
        assert!(CachedGroup::load(p, b"other").unwrap().is_none());
    });
    assert!(cache.is_lost());
    // Lost stays lost until the transaction is rolled back (reset).
    run(&mut other, &cache, |p| {
        let _g = CachedGroup::load(p, GID).unwrap().unwrap();
    });
    assert!(cache.is_lost());
    cache.reset();
    assert!(cache.is_empty());
}

#[test]
fn secrets_ahead_of_the_rows_are_written_back_and_checked() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let mut kv = MemoryKv::new();
    let cache = ahead_cache(&mut kv, &id);
    // Loading the same group again is a hit: still ahead.
    let p = MlsProvider::deferring_message_secrets(&kv, &cache);
    assert_eq!(CachedGroup::load(&p, GID).unwrap().unwrap().epoch(), 1);
    drop(p);
    assert!(cache.is_ahead());
    write_deferred_into(&cache, &mut kv);
    assert!(cache.is_settled() && cache.holds(GID));
    let stored = Group::load(&MlsProvider::new(&kv), GID).unwrap().unwrap();
    assert_eq!(stored.epoch(), 1);
    // Nothing ahead: writing is a no-op.
    write_deferred_into(&cache, &mut kv);
    assert!(cache.holds(GID));
}

#[test]
fn without_a_cache_every_load_decodes_the_rows() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let mut kv = MemoryKv::new();
    let p = MlsProvider::new(&kv);
    Group::create(&p, &id, GID).unwrap();
    let changes = p.storage().take_changes();
    drop(p);
    kv.apply(changes);
    let p = MlsProvider::new(&kv);
    assert!(p.group_cache().is_none());
    let g = CachedGroup::load(&p, GID).unwrap().unwrap();
    assert_eq!(g.epoch(), 0);
}

#[test]
fn the_providers_of_one_cache_draw_from_one_generator_seeded_once() {
    use openmls_traits::OpenMlsProvider as _;
    use openmls_traits::random::OpenMlsRand as _;
    let kv = MemoryKv::new();
    let cache = GroupCache::keeping(true);
    let (a, b) = (
        MlsProvider::with_group_cache(&kv, &cache),
        MlsProvider::with_group_cache(&kv, &cache),
    );
    assert!(std::ptr::eq(a.rand(), b.rand()));
    // One stream: what one provider drew, the next does not draw again.
    let (x, y) = (
        a.rand().random_vec(32).unwrap(),
        b.rand().random_vec(32).unwrap(),
    );
    assert_ne!(x, y);
    // A provider without a cache seeds its own.
    let own = MlsProvider::new(&kv);
    assert!(!std::ptr::eq(own.rand(), a.rand()));
}

#[test]
fn writing_deferred_secrets_back_writes_the_message_secrets_row_alone() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let mut kv = MemoryKv::new();
    let cache = ahead_cache(&mut kv, &id);
    let p = MlsProvider::new(&kv);
    cache.write_deferred(&p).unwrap();
    let changes = p.storage().take_changes();
    // A live receive pays for every row written; the join configuration did not change.
    let labels: Vec<String> = changes
        .iter()
        .map(|(key, _)| {
            String::from_utf8_lossy(key)
                .split('/')
                .nth(1)
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(!labels.is_empty() && labels.iter().all(|l| l == "message_secrets"));
    drop(p);
    kv.apply(changes);
    assert_eq!(
        Group::load(&MlsProvider::new(&kv), GID)
            .unwrap()
            .unwrap()
            .epoch(),
        1
    );
}

#[test]
fn a_carried_group_outlives_its_step_and_losing_it_loses_nothing() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let mut kv = MemoryKv::new();
    let cache = ahead_cache(&mut kv, &id);
    assert!(!cache.is_settled());
    assert_ne!(cache.carry(1, 1_000), Carrying::Refused);
    assert!(cache.is_carried() && cache.is_ahead() && cache.is_settled());
    // Lent and given back by a run that deferred nothing: still carried.
    run(&mut kv, &cache, |p| {
        assert_eq!(CachedGroup::load(p, GID).unwrap().unwrap().epoch(), 1);
    });
    assert!(cache.is_carried());
    // A failed run, a reset, another group: forgotten, not lost.
    cache.run_failed();
    assert!(cache.is_empty());
    let cache = ahead_cache(&mut MemoryKv::new(), &id);
    assert_ne!(cache.carry(1, 1_000), Carrying::Refused);
    cache.reset();
    assert!(cache.is_empty());
    let mut other = MemoryKv::new();
    let cache = ahead_cache(&mut other, &id);
    assert_ne!(cache.carry(1, 1_000), Carrying::Refused);
    run(&mut other, &cache, |p| {
        assert!(CachedGroup::load(p, b"other").unwrap().is_none());
    });
    assert!(!cache.is_lost() && !cache.holds(GID));
}

#[test]
fn a_group_is_carried_within_the_bound_and_written_like_deferred_secrets() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let mut kv = MemoryKv::new();
    let cache = ahead_cache(&mut kv, &id);
    let start = 5_000;
    assert_eq!(cache.carry(CARRY_BOUND.chats - 1, start), Carrying::Began);
    // Deferred again by a later step: the chats add up.
    let p = MlsProvider::deferring_message_secrets(&kv, &cache);
    {
        let _g = CachedGroup::load(&p, GID).unwrap().unwrap();
        assert!(p.group_cache().is_some_and(|l| l.defer_write()));
    }
    drop(p);
    assert!(cache.is_ahead() && !cache.is_carried());
    assert_eq!(cache.carry(1, start + CARRY_BOUND.ms), Carrying::Continued);
    assert_eq!(cache.carry(1, start + 1), Carrying::Refused);
    assert!(cache.is_carried());
    // Time alone ends it too.
    let timed = ahead_cache(&mut MemoryKv::new(), &id);
    assert_ne!(timed.carry(0, start), Carrying::Refused);
    assert_eq!(
        timed.carry(0, start + CARRY_BOUND.ms + 1),
        Carrying::Refused
    );
    // Written like deferred secrets: the rows hold them, nothing is carried any more.
    write_deferred_into(&cache, &mut kv);
    assert!(cache.is_settled() && !cache.is_carried() && cache.holds(GID));
    assert_eq!(cache.carry(1, start), Carrying::Refused);
    let stored = Group::load(&MlsProvider::new(&kv), GID).unwrap().unwrap();
    assert_eq!(stored.epoch(), 1);
}

#[test]
fn a_settled_group_is_not_carried() {
    let id = Identity::from_secret(&[3; 32]).unwrap();
    let (_kv, cache) = created(&id);
    assert_eq!(cache.carry(1, 0), Carrying::Refused);
    assert!(!cache.is_carried());
}
