//! Tests of the ballot box: votes counted once and bound to their proposal and conversation,
//! equivocation kept as proof, the group's rules for proposals, late proposals, bounds, and
//! the evidence check that decides whether a member signs a resolution.

use std::collections::BTreeSet;

use super::*;

const CONV: &str = "conversation";

fn ident(n: u8) -> Identity {
    Identity::from_secret(&[n; 32]).unwrap()
}

fn settings() -> Settings {
    Settings {
        vote_timeout_ms: 10_000,
        max_clock_skew_ms: 1_000,
        ..Settings::default()
    }
}

struct Fixture {
    ids: Vec<Identity>,
    members: BTreeSet<MemberId>,
    settings: Settings,
    /// A roster serial of its own, so that every test here runs with remembered counts
    /// (checked against full counts in debug builds).
    roster: u64,
    checked: CheckedSignatures,
}

/// Fixture rosters' serials (apart from the conversations' ones, which are small).
static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);

fn fixture(n: u8) -> Fixture {
    let ids: Vec<Identity> = (1..=n).map(ident).collect();
    let members = ids.iter().map(Identity::member_id).collect();
    Fixture {
        ids,
        members,
        settings: settings(),
        roster: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        checked: CheckedSignatures::default(),
    }
}

impl Fixture {
    fn scope(&self, now_ms: u64) -> Scope<'_> {
        Scope {
            conversation: CONV,
            members: &self.members,
            roster: self.roster,
            now_ms,
            settings: &self.settings,
            checked: &self.checked,
        }
    }

    fn proposal(&self, owner: usize, now_ms: u64) -> wire::Proposal {
        let target = ident(99).member_id();
        let cx = ProposalContext {
            conversation: CONV,
            epoch: 3,
            members: self.members.len(),
            now_ms,
            settings: &self.settings,
        };
        new_proposal(&self.ids[owner], &Action::Remove { member: target }, &cx)
    }

    fn vote(&self, voter: usize, p: &wire::Proposal, approve: bool) -> wire::Vote {
        self.vote_at(voter, p, approve, p.timestamp + 1)
    }

    fn vote_at(&self, voter: usize, p: &wire::Proposal, approve: bool, at: u64) -> wire::Vote {
        let d = wire::proposal_digest(CONV, p);
        let mut header = p.clone();
        header.votes.truncate(1);
        new_vote(&self.ids[voter], CONV, &d, &header, approve, at)
    }

    fn member(&self, i: usize) -> MemberId {
        self.ids[i].member_id()
    }
}

#[test]
fn a_vote_counts_once_and_only_from_its_owner_and_a_member() {
    let f = fixture(3);
    let mut b = BallotBox::default();
    let p = f.proposal(0, 1_000);
    let (d, new) = b.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    assert!(new);
    let v = f.vote(1, &p, true);
    assert_eq!(
        b.add_vote(&v, Some(f.member(1)), &f.scope(1_001)),
        Ok(VoteOutcome::Counted)
    );
    assert_eq!(
        b.add_vote(&v, Some(f.member(1)), &f.scope(1_002)),
        Ok(VoteOutcome::Duplicate)
    );
    assert!(matches!(
        b.add_vote(&v, Some(f.member(2)), &f.scope(1_002)),
        Err(BallotError::Vote(_))
    ));
    let outsider = Identity::from_secret(&[50; 32]).unwrap();
    let mut header = p.clone();
    header.votes.truncate(1);
    let foreign = new_vote(&outsider, CONV, &d, &header, true, 1_003);
    assert_eq!(
        b.add_vote(&foreign, None, &f.scope(1_003)),
        Err(BallotError::NotVoter)
    );
    assert_eq!(
        b.get(&d).unwrap().tentative(&f.scope(1_004)),
        Some(Tentative {
            approved: true,
            at_expiry: false
        })
    );
}

#[test]
fn a_vote_is_bound_to_its_conversation_and_to_the_whole_proposal() {
    let f = fixture(3);
    let p = f.proposal(0, 1_000);
    let d = wire::proposal_digest(CONV, &p);
    let mut header = p.clone();
    header.votes.truncate(1);
    // Signed in another conversation, or for a proposal with another digest (same id).
    for (conv, digest) in [("other", d), (CONV, [7u8; 32])] {
        let v = new_vote(&f.ids[1], conv, &digest, &header, true, 1_001);
        assert!(votes::verify(CONV, &d, &header, &v).is_err());
    }
    let mut tampered = f.vote(1, &p, true);
    tampered.vote = false;
    assert!(votes::verify(CONV, &d, &header, &tampered).is_err());
    let mut forged = f.vote(1, &p, true);
    forged.signature[0] ^= 1;
    assert!(votes::verify(CONV, &d, &header, &forged).is_err());
}

#[test]
fn a_changed_vote_becomes_a_proof_that_voids_the_voter() {
    let f = fixture(4);
    let mut b = BallotBox::default();
    let p = f.proposal(0, 1_000);
    let (d, _) = b.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    b.add_vote(&f.vote(1, &p, true), None, &f.scope(1_001))
        .unwrap();
    let outcome = b
        .add_vote(&f.vote(1, &p, false), None, &f.scope(1_002))
        .unwrap();
    let VoteOutcome::Equivocation(proof) = outcome else {
        panic!("{outcome:?}");
    };
    let ballot = b.get(&d).unwrap();
    assert!(
        ballot.votes().all(|(m, _)| *m != f.member(1)),
        "its votes no longer count"
    );
    assert_eq!(
        verify_proof(CONV, &d, ballot.header(), &proof),
        Ok(f.member(1))
    );
    // Another member learns it from the proof alone.
    let mut other = BallotBox::default();
    other.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    other
        .add_vote(&f.vote(1, &p, true), None, &f.scope(1_001))
        .unwrap();
    assert_eq!(other.add_proof(&proof, &f.scope(1_003)), Ok(true));
    assert!(
        other
            .get(&d)
            .unwrap()
            .votes()
            .all(|(m, _)| *m != f.member(1))
    );
}

#[test]
fn a_proposal_must_follow_the_groups_rules() {
    let f = fixture(3);
    let mut b = BallotBox::default();
    let mut window = f.proposal(0, 1_000);
    window.expiration_timestamp += 1;
    assert!(matches!(
        b.receive(&window, f.member(0), &f.scope(1_000)),
        Err(BallotError::Malformed(_) | BallotError::Vote(_) | BallotError::Rules(_))
    ));
    let mut s = settings();
    s.liveness_criteria_yes = false;
    let strict = Fixture {
        settings: s,
        ..fixture(3)
    };
    let p = f.proposal(0, 1_000);
    assert!(matches!(
        b.receive(&p, f.member(0), &strict.scope(1_000)),
        Err(BallotError::Rules(_))
    ));
    // From the future beyond the allowed skew, whoever sends it.
    let future = f.proposal(0, 5_000);
    for sender in [0, 1] {
        assert!(matches!(
            b.receive(&future, f.member(sender), &f.scope(3_000)),
            Err(BallotError::Refused(_))
        ));
    }
    // Sent by an owner that is not a member; passed on by a member, it is taken (its owner
    // signed it, and may have left since it was made).
    let outsider = fixture(4);
    let theirs = outsider.proposal(3, 1_000);
    assert!(matches!(
        b.receive(&theirs, outsider.member(3), &f.scope(1_000)),
        Err(BallotError::Refused(_))
    ));
    assert!(b.receive(&theirs, f.member(1), &f.scope(1_000)).is_ok());
    // Once resolved, it cannot be registered again (here or carried in a candidate).
    let (d, _) = b.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    b.close(&d, p.proposal_id, p.timestamp);
    assert!(matches!(
        b.receive(&p, f.member(0), &f.scope(1_500)),
        Err(BallotError::Refused(_))
    ));
    assert!(matches!(
        b.learn(&p, &f.scope(1_500)),
        Err(BallotError::Refused(_))
    ));
    // Too old.
    let old = f.proposal(1, 1_000);
    assert!(matches!(
        b.learn(&old, &f.scope(1_000 + MAX_PROPOSAL_AGE_MS + 1)),
        Err(BallotError::Refused(_))
    ));
}

#[test]
fn a_proposal_learned_late_is_not_decided_by_silence_before_a_full_window_here() {
    let f = fixture(4);
    let mut b = BallotBox::default();
    let p = f.proposal(0, 1_000);
    // Learned 20 s after it was made (its window closed 10 s ago), with a second YES (a
    // removal needs one beyond its proposer's).
    let (d, _) = b.learn(&p, &f.scope(21_000)).unwrap();
    b.add_vote(&f.vote(1, &p, true), None, &f.scope(21_000))
        .unwrap();
    let ballot = b.get(&d).unwrap();
    assert_eq!(ballot.tentative(&f.scope(25_000)), None);
    assert_eq!(ballot.silence_at(&f.settings), 31_000);
    assert_eq!(
        ballot.tentative(&f.scope(31_000)),
        Some(Tentative {
            approved: true,
            at_expiry: true
        })
    );
    // Learned in time: its own window.
    let mut b = BallotBox::default();
    let (d, _) = b.learn(&f.proposal(1, 1_000), &f.scope(1_500)).unwrap();
    assert_eq!(b.get(&d).unwrap().silence_at(&f.settings), 11_000);
}

#[test]
fn one_owner_cannot_fill_the_box_and_orphans_are_bounded() {
    let f = fixture(3);
    let mut b = BallotBox::default();
    for k in 0..MAX_OPEN_PER_OWNER as u64 {
        b.receive(&f.proposal(0, 1_000 + k), f.member(0), &f.scope(1_000 + k))
            .unwrap();
    }
    let one_more = f.proposal(0, 2_000);
    assert_eq!(
        b.receive(&one_more, f.member(0), &f.scope(2_000)),
        Err(BallotError::Full("of this owner"))
    );
    b.receive(&f.proposal(1, 2_000), f.member(1), &f.scope(2_000))
        .unwrap();
    // Votes for unknown proposals wait, a bounded number per carrier.
    let unknown = f.proposal(2, 3_000);
    for k in 0..(MAX_ORPHANS_PER_CARRIER + 10) {
        let v = f.vote_at(1, &unknown, true, 3_000 + k as u64);
        assert_eq!(
            b.add_vote(&v, Some(f.member(1)), &f.scope(3_000)),
            Ok(VoteOutcome::Orphan)
        );
    }
    assert_eq!(b.orphans.len(), MAX_ORPHANS_PER_CARRIER);
    // They count once their proposal arrives.
    let (d, _) = b.receive(&unknown, f.member(2), &f.scope(3_001)).unwrap();
    assert!(b.get(&d).unwrap().has_voted(&f.member(1)));
}

#[test]
fn a_copy_of_a_waiting_vote_waits_once_and_takes_no_other_votes_place() {
    let f = fixture(3);
    let mut b = BallotBox::default();
    let unknown = f.proposal(2, 3_000);
    let votes: Vec<_> = (0..MAX_ORPHANS_PER_CARRIER as u64)
        .map(|k| f.vote_at(1, &unknown, true, 3_000 + k))
        .collect();
    for v in &votes {
        assert_eq!(
            b.add_vote(v, Some(f.member(1)), &f.scope(3_000)),
            Ok(VoteOutcome::Orphan)
        );
    }
    // Copies of every waiting vote, as a sealed vote read again brings them: held, so not
    // checked again (the digest they name is not known here).
    for v in &votes {
        assert!(b.holds(&[7; 32], v));
        assert_eq!(
            b.add_vote(v, Some(f.member(1)), &f.scope(3_000)),
            Ok(VoteOutcome::Duplicate)
        );
    }
    let waiting: Vec<_> = b.orphans.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(waiting, votes, "the first waiting vote is still there");
}

#[test]
fn a_resolution_contradicted_by_votes_held_here_is_refused() {
    // The lost NO vote: the leader holds the owner's YES, a second YES and one NO; this
    // member also holds a second NO. With four members and silent voters counting YES, the
    // leader decides YES at expiry; here the result is a tie, which rejects.
    let f = fixture(4);
    let p = f.proposal(0, 1_000);
    let mut leader = BallotBox::default();
    let (d, _) = leader.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    leader
        .add_vote(&f.vote(1, &p, true), None, &f.scope(1_001))
        .unwrap();
    leader
        .add_vote(&f.vote(2, &p, false), None, &f.scope(1_001))
        .unwrap();
    let t = leader.get(&d).unwrap().tentative(&f.scope(11_000)).unwrap();
    assert_eq!(
        t,
        Tentative {
            approved: true,
            at_expiry: true
        }
    );
    let res = leader.resolution(&d, t, false, &f.scope(11_000)).unwrap();

    let mut signer = BallotBox::default();
    signer.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    signer
        .add_vote(&f.vote(2, &p, false), None, &f.scope(1_001))
        .unwrap();
    signer
        .add_vote(&f.vote(3, &p, false), None, &f.scope(1_002))
        .unwrap();
    assert!(matches!(
        signer.check(&res, &f.scope(11_000)),
        Ok(ResolutionCheck::Refuse(_))
    ));
    // A member holding nothing more agrees.
    let mut agreeing = BallotBox::default();
    agreeing.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    assert_eq!(
        agreeing.check(&res, &f.scope(11_000)),
        Ok(ResolutionCheck::Accept)
    );
    // But not before the window closed on its own clock.
    let mut early = BallotBox::default();
    early.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    assert!(matches!(
        early.check(&res, &f.scope(9_000)),
        Ok(ResolutionCheck::Refuse(_))
    ));
    // A member that never saw the proposal learns it and does not sign this time.
    let mut stranger = BallotBox::default();
    assert_eq!(
        stranger.check(&res, &f.scope(11_000)),
        Ok(ResolutionCheck::Learned(d))
    );
    assert!(stranger.get(&d).is_some());
}

#[test]
fn forged_evidence_makes_the_resolution_invalid() {
    let f = fixture(4);
    let p = f.proposal(0, 1_000);
    let mut leader = BallotBox::default();
    let (d, _) = leader.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    for i in [1, 2] {
        leader
            .add_vote(&f.vote(i, &p, true), None, &f.scope(1_001))
            .unwrap();
    }
    let t = leader.get(&d).unwrap().tentative(&f.scope(1_002)).unwrap();
    assert_eq!(
        t,
        Tentative {
            approved: true,
            at_expiry: false
        }
    );
    let good = leader.resolution(&d, t, false, &f.scope(1_002)).unwrap();
    let mut signer = BallotBox::default();
    assert_eq!(
        signer.check(&good, &f.scope(1_003)),
        Ok(ResolutionCheck::Accept)
    );
    let mut bad = good.clone();
    bad.votes[0].signature[3] ^= 1;
    let mut signer = BallotBox::default();
    assert!(signer.check(&bad, &f.scope(1_003)).is_err());
    // Approval claimed from too few votes: one YES of four is not decided early.
    let mut thin = good.clone();
    thin.votes.truncate(0);
    let mut signer = BallotBox::default();
    signer.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    assert!(matches!(
        signer.check(&thin, &f.scope(1_003)),
        Ok(ResolutionCheck::Refuse(_))
    ));
    // A rejection cannot be dropped.
    let mut dropped = good;
    dropped.approved = false;
    dropped.dropped = true;
    assert!(signer.check(&dropped, &f.scope(1_003)).is_err());
}

#[test]
fn a_proposal_a_commit_made_moot_is_forgotten_not_resolved() {
    let f = fixture(3);
    let mut b = BallotBox::default();
    // The fixture's proposals remove a non-member: moot from the start for this member set.
    let p = f.proposal(0, 1_000);
    let (digest, _) = b.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    let mut with_target = f.members.clone();
    with_target.insert(ident(99).member_id());
    assert_eq!(
        b.forget_moot(&with_target, |_| false),
        0,
        "not moot while the target is a member"
    );
    assert_eq!(b.forget_moot(&f.members, |_| false), 1);
    assert!(b.get(&digest).is_none() && !b.is_resolved(&digest));
    // Moot here is not moot everywhere: it may come back, and only a commit resolves it.
    let (again, new) = b.receive(&p, f.member(1), &f.scope(1_001)).unwrap();
    assert!(new && again == digest);
}

#[test]
fn remembered_counts_follow_votes_proofs_and_former_voters() {
    let f = fixture(5);
    let mut b = BallotBox::default();
    let p = f.proposal(0, 1_000);
    let (d, _) = b.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    let counts = |b: &BallotBox, scope: &Scope<'_>| b.get(&d).unwrap().counts(scope);
    assert_eq!(counts(&b, &f.scope(1_000)), (1, 0));
    b.add_vote(&f.vote(1, &p, false), Some(f.member(1)), &f.scope(1_001))
        .unwrap();
    b.add_vote(&f.vote(2, &p, true), Some(f.member(2)), &f.scope(1_001))
        .unwrap();
    assert_eq!(counts(&b, &f.scope(1_001)), (2, 1));
    // Member 2 changes its vote: a proof, neither counts.
    let outcome = b.add_vote(&f.vote(2, &p, false), Some(f.member(2)), &f.scope(1_002));
    assert!(matches!(outcome, Ok(VoteOutcome::Equivocation(_))));
    assert_eq!(counts(&b, &f.scope(1_002)), (1, 1));
    // A proof received on its own voids member 1.
    let proof = wire::EquivocationProof {
        first: Some(f.vote(1, &p, false)),
        second: Some(f.vote(1, &p, true)),
    };
    assert_eq!(b.add_proof(&proof, &f.scope(1_003)), Ok(true));
    assert_eq!(counts(&b, &f.scope(1_003)), (1, 0));
    b.add_vote(&f.vote(3, &p, true), Some(f.member(3)), &f.scope(1_004))
        .unwrap();
    assert_eq!(counts(&b, &f.scope(1_004)), (2, 0));
    // Another member set (another roster): its own count, and the votes of those who left
    // are dropped (the owner's is kept; it counts only while the owner is a member).
    let mut smaller = fixture(5);
    smaller.members.remove(&f.member(0));
    smaller.members.remove(&f.member(3));
    assert_eq!(counts(&b, &smaller.scope(1_005)), (0, 0));
    b.forget_voters(&smaller.members);
    assert_eq!(counts(&b, &smaller.scope(1_005)), (0, 0));
    assert_eq!(
        counts(&b, &f.scope(1_006)),
        (1, 0),
        "the owner's vote is kept"
    );
    b.add_vote(
        &f.vote(4, &p, false),
        Some(f.member(4)),
        &smaller.scope(1_007),
    )
    .unwrap();
    assert_eq!(counts(&b, &smaller.scope(1_007)), (0, 1));
    assert_eq!(counts(&b, &f.scope(1_007)), (1, 1));
}

#[test]
fn a_vote_held_already_is_not_verified_again_but_still_checked_for_carrier_and_membership() {
    let f = fixture(4);
    let mut b = BallotBox::default();
    let p = f.proposal(0, 1_000);
    let (d, _) = b.receive(&p, f.member(0), &f.scope(1_000)).unwrap();
    let v = f.vote(1, &p, true);
    b.add_vote(&v, Some(f.member(1)), &f.scope(1_001)).unwrap();
    let ballot = b.get(&d).unwrap();
    assert_eq!(held_already(ballot, &v), Some(f.member(1)));
    // Any byte apart and the vote is verified as new: a flipped signature is a forgery.
    let mut forged = v.clone();
    forged.signature[0] ^= 1;
    assert_eq!(held_already(ballot, &forged), None);
    assert!(matches!(
        b.add_vote(&forged, None, &f.scope(1_002)),
        Err(BallotError::Vote(_))
    ));
    let other = f.vote(2, &p, true);
    assert_eq!(held_already(b.get(&d).unwrap(), &other), None);
    // The held vote again: from evidence, a duplicate; from the wrong carrier, refused.
    assert_eq!(
        b.add_vote(&v, None, &f.scope(1_003)),
        Ok(VoteOutcome::Duplicate)
    );
    assert!(matches!(
        b.add_vote(&v, Some(f.member(2)), &f.scope(1_003)),
        Err(BallotError::Vote(_))
    ));
    // Its voter left (another member set): not a voter, held or not.
    let mut smaller = fixture(4);
    smaller.members.remove(&f.member(1));
    assert_eq!(
        b.add_vote(&v, None, &smaller.scope(1_004)),
        Err(BallotError::NotVoter)
    );
}

#[test]
fn an_unsigned_parse_is_a_parse_but_for_the_owners_signature() {
    let f = fixture(3);
    let p = f.proposal(0, 1_000);
    let signed = parse(CONV, &p).unwrap();
    let unsigned = parse_unsigned(CONV, &p).unwrap();
    assert_eq!(
        (unsigned.digest, &unsigned.action),
        (signed.digest, &signed.action)
    );
    let mut forged = p.clone();
    forged.votes[0].signature[0] ^= 1;
    assert!(parse(CONV, &forged).is_err());
    assert_eq!(parse_unsigned(CONV, &forged).unwrap().digest, signed.digest);
    // Everything else is still checked.
    let mut rebound = p.clone();
    rebound.proposal_id ^= 1;
    assert!(parse_unsigned(CONV, &rebound).is_err());
    let mut no_vote = p;
    no_vote.votes.clear();
    assert!(parse_unsigned(CONV, &no_vote).is_err());
}

#[test]
fn pruning_forgets_at_the_age_limit_exactly_and_a_box_read_back_prunes_the_same() {
    let f = fixture(3);
    let mut b = BallotBox::default();
    let first = f.proposal(0, 1_000);
    let (d1, _) = b.receive(&first, f.member(0), &f.scope(1_000)).unwrap();
    b.close(&d1, 7, 1_000);
    let second = f.proposal(1, 5_000);
    b.receive(&second, f.member(1), &f.scope(5_000)).unwrap();
    let limit = MAX_PROPOSAL_AGE_MS;
    assert!(!b.prune(1_000 + limit), "nothing is too old yet");
    // A copy that knows nothing of when to look again (as if read back) agrees throughout.
    let mut read_back = b.clone();
    read_back.prune_at = upkeep::PruneAt::default();
    for mut bx in [b, read_back] {
        assert!(bx.prune(1_001 + limit), "the resolved proposal ages out");
        assert!(!bx.is_resolved(&d1));
        assert_eq!(bx.open().count(), 1);
        assert!(!bx.prune(5_000 + limit), "the open one is not too old yet");
        assert!(bx.prune(5_001 + limit), "now it is");
        assert_eq!(bx.open().count(), 0);
        assert!(!bx.prune(u64::MAX), "an empty box has nothing to forget");
    }
}
