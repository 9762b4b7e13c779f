//! Unit tests of `step`: what a run persists, how a failed run is undone, and the state's
//! parts as stored.

use super::*;
use crate::client::state::load;
use crate::protocol::{PartKey, Settings};
use crate::store::{Database, StoreOptions};

fn db() -> Database {
    Database::open(":memory:", &StoreOptions::default()).unwrap()
}

/// Creates conversation "c" in a run of `step` and flushes it; returns the state created.
fn create_c(step: &Step<'_>, identity: &Identity, now_ms: u64) -> Conversation {
    let mut env = StepEnv::new(step, identity, now_ms);
    let conv = env
        .run_engine("c", |_, ctx| {
            let (conv, out) = Conversation::create(ctx, "c", Settings::default())
                .map_err(|e| WitanError::from_protocol(e, State::Working))?;
            Ok((conv.clone(), conv, out))
        })
        .unwrap()
        .unwrap()
        .0;
    env.flush().unwrap();
    conv
}

#[test]
fn a_successful_run_persists_state_topics_and_events() {
    let mut db = db();
    let identity = Identity::from_secret(&[7; 32]).unwrap();
    let step = db.step().unwrap();
    let mut env = StepEnv::new(&step, &identity, 1_000);
    let result = env
        .run_engine("c", |_, ctx| {
            let (conv, out) = Conversation::create(ctx, "c", Settings::default())
                .map_err(|e| WitanError::from_protocol(e, State::Working))?;
            Ok((conv, 42, out))
        })
        .unwrap()
        .unwrap();
    assert_eq!(result.0, 42);
    assert_eq!(env.effects.subscribe.len(), 2);
    assert!(env.effects.events.iter().any(|e| matches!(
        e,
        WitanEvent::StateChanged { conversation_id, .. } if conversation_id == "c"
    )));
    // Kept in memory until flushed (written at once with the state cache off).
    let written = step.conversation_ids().unwrap();
    assert_eq!(written.is_empty(), Layer::State.enabled(), "{written:?}");
    env.flush().unwrap();
    drop(env);
    step.commit().unwrap();
    let step = db.read().unwrap();
    assert_eq!(load(&step, "c").unwrap().unwrap().state(), State::Working);
    assert_eq!(subscriptions::load(&step, "c").unwrap().len(), 2);
}

#[test]
fn state_is_stored_in_parts_and_a_damaged_state_is_a_storage_error() {
    let mut db = db();
    let identity = Identity::from_secret(&[7; 32]).unwrap();
    let step = db.step().unwrap();
    create_c(&step, &identity, 1_000);
    let parts = step.engine_parts("c").unwrap();
    let mut names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    let mut all: Vec<&str> = PartKey::ALL.iter().map(|k| k.as_str()).collect();
    all.sort();
    assert_eq!(names, all);
    assert_eq!(load(&step, "c").unwrap().unwrap().id(), "c");
    let core = PartKey::Core.as_str();
    let (_, bytes) = parts.iter().find(|(n, _)| n == core).unwrap();
    step.save_engine_part("c", core, &bytes[..bytes.len() / 2])
        .unwrap();
    assert!(matches!(load(&step, "c"), Err(WitanError::Storage { .. })));
    step.save_engine_part("c", core, bytes).unwrap();
    step.save_engine_part("c", "surprise", b"x").unwrap();
    assert!(matches!(load(&step, "c"), Err(WitanError::Storage { .. })));
    for (name, _) in step.engine_parts("c").unwrap() {
        step.delete_engine_part("c", &name).unwrap();
    }
    assert!(matches!(load(&step, "c"), Err(WitanError::Storage { .. })));
}

#[test]
fn a_run_writes_only_the_parts_it_changed() {
    let mut db = db();
    let identity = Identity::from_secret(&[7; 32]).unwrap();
    let step = db.step().unwrap();
    create_c(&step, &identity, 1_000);
    // A part the next run does not change is not rewritten: a marker left in it (a field
    // the engine does not know, which it would not write again) stays.
    let archive = PartKey::Archive.as_str();
    let (_, mut kept) = step
        .engine_parts("c")
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == archive)
        .unwrap();
    kept.extend_from_slice(&[15 << 3, 1]);
    step.save_engine_part("c", archive, &kept).unwrap();
    assert!(load(&step, "c").unwrap().is_some());
    let mut env = StepEnv::new(&step, &identity, 2_000);
    env.run_engine("c", |conv, ctx| {
        let mut conv = conv.unwrap();
        let (_, out) = conv
            .send_message(ctx, b"hello")
            .map_err(|e| WitanError::from_protocol(e, State::Working))?;
        assert!(!conv.dirty_parts().contains(&PartKey::Archive));
        Ok((conv, (), out))
    })
    .unwrap()
    .unwrap();
    env.flush().unwrap();
    drop(env);
    let after = step.engine_parts("c").unwrap();
    assert!(after.iter().any(|(n, v)| n == archive && *v == kept));
    assert!(load(&step, "c").unwrap().is_some());
}

#[test]
fn a_refused_run_writes_nothing() {
    let mut db = db();
    let identity = Identity::from_secret(&[7; 32]).unwrap();
    let step = db.step().unwrap();
    let mut env = StepEnv::new(&step, &identity, 1_000);
    let result: Result<_, _> = env
        .run_engine("c", |_, ctx| {
            let (conv, out) = Conversation::create(ctx, "c", Settings::default())
                .map_err(|e| WitanError::from_protocol(e, State::Working))?;
            let _ = (conv, out);
            Err::<(Conversation, (), Output), _>(WitanError::invalid("no"))
        })
        .unwrap();
    assert!(result.is_err());
    assert!(env.effects.events.is_empty());
    assert_eq!(step.conversation_ids().unwrap(), Vec::<String>::new());
}

#[test]
fn a_failed_run_on_a_lent_state_is_undone_or_loses_the_step() {
    let mut db = db();
    let identity = Identity::from_secret(&[7; 32]).unwrap();
    let create = |env: &mut StepEnv<'_, '_>| {
        env.run_engine("c", |_, ctx| {
            let (conv, out) = Conversation::create(ctx, "c", Settings::default())
                .map_err(|e| WitanError::from_protocol(e, State::Working))?;
            Ok((conv, (), out))
        })
        .unwrap()
        .unwrap();
    };
    let fail = |env: &mut StepEnv<'_, '_>| {
        let refused = env
            .run_engine("c", |conv, _| {
                assert!(conv.is_some(), "the run is lent the state");
                Err::<(Conversation, (), Output), _>(WitanError::invalid("no"))
            })
            .unwrap();
        assert!(refused.is_err());
    };
    let step = db.step().unwrap();
    let mut env = StepEnv::new(&step, &identity, 1_000);
    create(&mut env);
    env.flush().unwrap();
    drop(env);
    step.commit().unwrap();

    // Lent as stored: a failed run is undone from the stored bytes, the step goes on.
    let step = db.step().unwrap();
    let mut env = StepEnv::new(&step, &identity, 2_000);
    env.lend_states();
    fail(&mut env);
    assert!(!env.is_lost());
    let again = env
        .run_engine("c", |conv, _| {
            let conv = conv.ok_or_else(|| WitanError::internal("state gone"))?;
            Ok((conv, (), Output::default()))
        })
        .unwrap();
    assert!(again.is_ok(), "the state is back after the failed run");
    drop(env);
    drop(step);

    // Lent with a change of this step: the failed run loses the step, which cannot flush.
    let step = db.step().unwrap();
    let mut env = StepEnv::new(&step, &identity, 3_000);
    env.lend_states();
    env.run_engine("c", |conv, ctx| {
        let mut conv = conv.ok_or_else(|| WitanError::internal("state gone"))?;
        let out = conv
            .send_message(ctx, b"hi")
            .map(|(_, out)| out)
            .map_err(|e| WitanError::from_protocol(e, State::Working))?;
        Ok((conv, (), out))
    })
    .unwrap()
    .unwrap();
    fail(&mut env);
    assert_eq!(env.is_lost(), Layer::State.enabled());
    assert_eq!(env.flush().is_err(), Layer::State.enabled());
}

#[test]
fn a_state_no_run_changed_stays_readable_after_a_flush() {
    let mut db = db();
    let identity = Identity::from_secret(&[7; 32]).unwrap();
    let step = db.step().unwrap();
    create_c(&step, &identity, 1_000);
    step.commit().unwrap();

    let step = db.step().unwrap();
    let mut env = StepEnv::new(&step, &identity, 2_000);
    // Read (a run that is refused), flushed with nothing changed, read again.
    let refused = env
        .run_engine("c", |_, _| {
            Err::<(Conversation, (), Output), _>(WitanError::invalid("no"))
        })
        .unwrap();
    assert!(refused.is_err());
    env.flush().unwrap();
    let again = env
        .run_engine("c", |conv, _| {
            let conv = conv.ok_or_else(|| WitanError::internal("state gone"))?;
            Ok((conv, (), Output::default()))
        })
        .unwrap();
    assert!(again.is_ok(), "{again:?}");
}

#[test]
fn effects_merge_cancels_opposite_topic_changes() {
    let mut a = Effects::default();
    a.subscribe.insert("t".into());
    let mut b = Effects::default();
    b.unsubscribe.insert("t".into());
    a.merge(b);
    assert!(a.subscribe.is_empty());
    assert_eq!(a.unsubscribe.len(), 1);
}

#[test]
fn a_conversation_started_again_drops_the_votes_stored_under_its_id() {
    // A member that left and joins again gets a new state under the same id: the vote rows
    // of the old state must go with it (found by the simulator: the next read refused them).
    let identity = Identity::from_secret(&[7; 32]).unwrap();
    // The same conversation started again (elsewhere: one MLS group per id and database).
    let again = create_c(&db().step().unwrap(), &identity, 2_000);
    let mut db = db();
    let step = db.step().unwrap();
    create_c(&step, &identity, 1_000);
    // The old state's votes (here one that no state of this id can hold).
    let old = crate::protocol::StoredVote {
        ballot: [9; 32],
        row: 0,
        vote: vec![1, 2, 3],
    };
    step.save_engine_vote("c", &old).unwrap();
    assert!(matches!(load(&step, "c"), Err(WitanError::Storage { .. })));
    let mut states = crate::client::state::States::default();
    states.replace(&step, "c", again).unwrap();
    states.flush(&step).unwrap();
    assert!(step.engine_votes("c").unwrap().is_empty());
    assert_eq!(load(&step, "c").unwrap().unwrap().state(), State::Working);
}
