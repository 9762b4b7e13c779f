//! Commit candidates and their certificates: a member stages a candidate's MLS commit once —
//! to judge it before it prevotes — and merges that staged commit when the certificate comes
//! (staging is most of what applying a commit costs). The only test of its binary, because
//! it reads the process-wide counters.
//!
//! The staged commit lives in the group a client keeps between its steps; with that cache
//! off (`WITAN_CACHE_OFF`, layer `kept`) every step loads the group afresh, and a member
//! stages the commit again for its merge.

#[path = "support/clients.rs"]
mod clients;

use clients::{CONV, World};
use witan::mls::Layer;
use witan_engine::metrics;

#[test]
fn each_member_stages_a_certified_commit_once_from_its_candidate_to_its_merge() {
    let names = ["ann", "bob", "cat", "dan", "eve", "fay"];
    let mut w = World::new(&names);
    w.form(0, &[1, 2, 3, 4, 5]);
    w.run_for(10_000);
    let epoch = w.info(0).epoch;
    let fay = w.c(5).member_id();
    let before = metrics::counters();
    w.c(1).propose_removal(CONV.into(), fay.clone()).unwrap();
    w.run_for(120_000);
    let spent = metrics::counters().since(&before);

    assert!(
        !w.info(0).members.iter().any(|m| m.member_id == fay),
        "the removal went through"
    );
    assert_eq!(w.info(0).epoch, epoch + 1, "in one commit");
    w.assert_agree(&[0, 1, 2, 3, 4]);
    let per_member = if Layer::Kept.enabled() { 1 } else { 2 };
    assert!(
        spent.commits_staged <= per_member * names.len() as u64,
        "{} stagings of one commit by {} members",
        spent.commits_staged,
        names.len()
    );
}
