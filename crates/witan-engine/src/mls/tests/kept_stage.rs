//! A commit judged once is kept staged for its merge (`group/commit.rs`): the same bytes in
//! the same epoch are handed back without staging them again, and what is merged from the
//! kept stage ends where staging afresh ends; anything else is staged afresh.

use super::*;

#[test]
fn a_kept_stage_is_handed_back_once_and_merges_where_staging_afresh_does() {
    let (mut a, mut b, mut c) = three_members();
    let mut d = Member::new(4);
    let cand = a.commit(&[d.key_package()], &[]);
    let (aid, did) = (a.mid(), d.mid());
    b.with(|p, _, g| {
        let judged = g.stage_commit(p, &cand.commit).unwrap();
        g.keep_staged(&cand.commit, judged);
        assert!(g.has_kept_stage(&cand.commit));
        let s = g.stage_commit(p, &cand.commit).unwrap();
        assert!(!g.has_kept_stage(&cand.commit), "handed back once");
        assert_eq!((s.committer, s.added.clone()), (aid, vec![did]));
        assert!(!p.storage().has_changes(), "staging wrote nothing");
        g.merge_staged(p, s).unwrap();
    });
    // carol stages it afresh for the merge, as a member that was restarted would
    c.apply(&cand.commit);
    a.merge_pending();
    d.join(&cand.welcome.unwrap()).unwrap();
    let auth = a.authenticator();
    for m in [&mut b, &mut c, &mut d] {
        assert_eq!(m.epoch(), 2);
        assert_eq!(m.authenticator(), auth);
    }
    let msg = b.encrypt(b"after the kept merge");
    assert_eq!(d.decrypt(&msg).unwrap().sender, b.mid());
}

#[test]
fn another_commit_another_epoch_or_an_own_commit_is_staged_afresh() {
    let (mut a, mut b, c) = three_members();
    let cand_a = a.commit(&[], &[c.mid()]);
    let cand_b = b.commit(&[], &[a.mid()]);
    let (aid, bid, cid) = (a.mid(), b.mid(), c.mid());
    b.with(|p, _, g| {
        // bob's own pending commit is cheap to stage and never kept
        let own = g.stage_commit(p, &cand_b.commit).unwrap();
        g.keep_staged(&cand_b.commit, own);
        assert!(!g.has_kept_stage(&cand_b.commit));

        let judged = g.stage_commit(p, &cand_a.commit).unwrap();
        g.keep_staged(&cand_a.commit, judged);
        assert!(g.has_kept_stage(&cand_a.commit));
        assert!(!g.has_kept_stage(&cand_b.commit));
        // staging another commit moves on from the kept one
        let s = g.stage_commit(p, &cand_b.commit).unwrap();
        assert_eq!((s.committer, s.removed.clone()), (bid, vec![aid]));
        assert!(!g.has_kept_stage(&cand_a.commit));

        let judged = g.stage_commit(p, &cand_a.commit).unwrap();
        assert_eq!(judged.removed, vec![cid]);
        g.keep_staged(&cand_a.commit, judged);
        // bob's own commit is certified instead: the kept one belongs to a past epoch
        g.merge_staged(p, s).unwrap();
        assert!(!g.has_kept_stage(&cand_a.commit));
        assert!(matches!(
            g.stage_commit(p, &cand_a.commit),
            Err(MlsError::WrongEpoch { .. })
        ));
    });
}
