//! Unit tests for vote validation (each forged, replayed, expired case) and the tally rules.

use super::*;

fn ident(n: u8) -> Identity {
    Identity::from_secret(&[n; 32]).unwrap()
}

fn voters(ids: &[&Identity]) -> BTreeSet<MemberId> {
    ids.iter().map(|i| i.member_id()).collect()
}

fn proposal(owner: &Identity, n: u32) -> wire::Proposal {
    let action = Action::Remove {
        member: ident(99).member_id(),
    };
    new_proposal(owner, &action, 3, n, 1_000, 10_000, true)
}

#[test]
fn tally_n1_and_n2_need_unanimity() {
    assert_eq!(decide(1, 1, 0, false, true), Some(true));
    assert_eq!(decide(1, 0, 1, false, true), Some(false));
    assert_eq!(decide(2, 1, 0, false, true), None);
    assert_eq!(decide(2, 2, 0, false, true), Some(true));
    assert_eq!(decide(2, 1, 1, false, true), Some(false));
    // Silent second voter at expiry follows the liveness criterion.
    assert_eq!(decide(2, 1, 0, true, true), Some(true));
    assert_eq!(decide(2, 1, 0, true, false), Some(false));
}

#[test]
fn tally_n3_needs_quorum_and_majority() {
    assert_eq!(decide(3, 1, 0, false, true), None);
    assert_eq!(decide(3, 2, 0, false, true), Some(true));
    assert_eq!(decide(3, 1, 1, false, true), None);
    assert_eq!(decide(3, 1, 2, false, true), Some(false));
    assert_eq!(decide(3, 1, 1, true, true), Some(true));
    assert_eq!(decide(3, 1, 1, true, false), Some(false));
}

#[test]
fn tally_n4_ties_are_rejected() {
    assert_eq!(decide(4, 2, 1, false, true), None);
    assert_eq!(decide(4, 3, 0, false, true), Some(true));
    assert_eq!(decide(4, 2, 2, false, true), Some(false));
    assert_eq!(decide(4, 2, 2, true, true), Some(false));
    assert_eq!(decide(4, 1, 1, true, true), Some(true));
    assert_eq!(decide(4, 1, 1, true, false), Some(false));
}

#[test]
fn tally_n7_early_only_when_missing_votes_cannot_change_it() {
    // 4 YES of 7 is a majority of all members, but the quorum of 5 is not met yet.
    assert_eq!(decide(7, 4, 0, false, true), None);
    assert_eq!(decide(7, 4, 1, false, true), Some(true));
    assert_eq!(decide(7, 3, 2, false, true), None);
    assert_eq!(decide(7, 1, 4, false, true), Some(false));
    assert_eq!(decide(7, 2, 3, false, true), None);
    // Silent voters both ways at expiry.
    assert_eq!(decide(7, 2, 3, true, true), Some(true));
    assert_eq!(decide(7, 2, 3, true, false), Some(false));
    assert_eq!(decide(7, 0, 0, true, true), Some(true));
    assert_eq!(decide(7, 0, 0, true, false), Some(false));
}

#[test]
fn early_and_expiry_results_never_disagree() {
    for n in 1..=12u32 {
        for yes in 0..=n {
            for no in 0..=(n - yes) {
                for liveness in [true, false] {
                    if let Some(early) = decide(n, yes, no, false, liveness) {
                        // Any completion of the missing votes must reach the same result.
                        let missing = n - yes - no;
                        for extra_yes in 0..=missing {
                            let y = yes + extra_yes;
                            let nn = no + (missing - extra_yes);
                            assert_eq!(
                                decide(n, y, nn, true, liveness),
                                Some(early),
                                "n={n} y={yes} no={no}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_valid_vote_is_counted_once() {
    let (a, b, c) = (ident(1), ident(2), ident(3));
    let p = proposal(&a, 3);
    let mut ballot = Ballot::new(&p, voters(&[&a, &b, &c]), 0).unwrap();
    let vote = new_vote(&b, &p, true, 2_000);
    assert_eq!(ballot.add_vote(&vote, Some(b.member_id()), 0), Ok(true));
    assert_eq!(
        ballot.add_vote(&vote, Some(b.member_id()), 0),
        Ok(false),
        "replay changes nothing"
    );
    assert_eq!(ballot.counts(), (2, 0));
    assert_eq!(ballot.tally(2_000), Some(true));
}

#[test]
fn forged_signature_is_rejected() {
    let (a, b) = (ident(1), ident(2));
    let p = proposal(&a, 2);
    let mut ballot = Ballot::new(&p, voters(&[&a, &b]), 0).unwrap();
    let mut vote = new_vote(&b, &p, true, 2_000);
    vote.signature[0] ^= 1;
    assert_eq!(
        ballot.add_vote(&vote, Some(b.member_id()), 0),
        Err(VoteError::BadSignature)
    );
    assert_eq!(ballot.counts(), (1, 0));
}

#[test]
fn tampered_value_breaks_the_hash() {
    let (a, b) = (ident(1), ident(2));
    let p = proposal(&a, 2);
    let mut ballot = Ballot::new(&p, voters(&[&a, &b]), 0).unwrap();
    let mut vote = new_vote(&b, &p, false, 2_000);
    vote.vote = true;
    assert_eq!(
        ballot.add_vote(&vote, Some(b.member_id()), 0),
        Err(VoteError::BadHash)
    );
}

#[test]
fn vote_from_outside_the_group_is_ignored() {
    let (a, b, outsider) = (ident(1), ident(2), ident(7));
    let p = proposal(&a, 2);
    let mut ballot = Ballot::new(&p, voters(&[&a, &b]), 0).unwrap();
    let vote = new_vote(&outsider, &p, true, 2_000);
    assert_eq!(
        ballot.add_vote(&vote, Some(outsider.member_id()), 0),
        Err(VoteError::NotEligible)
    );
}

#[test]
fn vote_relayed_by_someone_else_is_not_counted_directly() {
    let (a, b, c) = (ident(1), ident(2), ident(3));
    let p = proposal(&a, 3);
    let mut ballot = Ballot::new(&p, voters(&[&a, &b, &c]), 0).unwrap();
    let vote = new_vote(&b, &p, true, 2_000);
    assert_eq!(
        ballot.add_vote(&vote, Some(c.member_id()), 0),
        Err(VoteError::NotOwner)
    );
}

#[test]
fn replayed_vote_from_another_proposal_is_rejected() {
    let (a, b) = (ident(1), ident(2));
    let p1 = proposal(&a, 2);
    let p2 = new_proposal(
        &a,
        &Action::Remove {
            member: ident(98).member_id(),
        },
        3,
        2,
        1_500,
        10_000,
        true,
    );
    let mut ballot = Ballot::new(&p2, voters(&[&a, &b]), 0).unwrap();
    let old = new_vote(&b, &p1, true, 2_000);
    assert_eq!(
        ballot.add_vote(&old, Some(b.member_id()), 0),
        Err(VoteError::WrongProposal)
    );
}

#[test]
fn expired_vote_is_rejected() {
    let (a, b) = (ident(1), ident(2));
    let p = proposal(&a, 2);
    let mut ballot = Ballot::new(&p, voters(&[&a, &b]), 0).unwrap();
    let late = new_vote(&b, &p, true, 11_001);
    assert_eq!(
        ballot.add_vote(&late, Some(b.member_id()), 0),
        Err(VoteError::OutOfWindow)
    );
    let early = new_vote(&b, &p, true, 999);
    assert_eq!(
        ballot.add_vote(&early, Some(b.member_id()), 0),
        Err(VoteError::OutOfWindow)
    );
}

#[test]
fn changed_vote_is_a_violation() {
    let (a, b, c) = (ident(1), ident(2), ident(3));
    let p = proposal(&a, 3);
    let mut ballot = Ballot::new(&p, voters(&[&a, &b, &c]), 0).unwrap();
    let first = new_vote(&b, &p, true, 2_000);
    ballot.add_vote(&first, Some(b.member_id()), 0).unwrap();
    let flipped = new_vote(&b, &p, false, 2_100);
    assert_eq!(
        ballot.add_vote(&flipped, Some(b.member_id()), 0),
        Err(VoteError::ChangedVote)
    );
    assert_eq!(ballot.counts(), (2, 0));
}

#[test]
fn vote_not_linked_to_the_first_vote_is_rejected() {
    let (a, b) = (ident(1), ident(2));
    let p = proposal(&a, 2);
    let mut ballot = Ballot::new(&p, voters(&[&a, &b]), 0).unwrap();
    let mut vote = new_vote(&b, &p, true, 2_000);
    vote.received_hash = vec![7; 32];
    vote.vote_hash = wire::vote_hash(&vote).to_vec();
    vote.signature = b.sign(&vote.vote_hash);
    assert_eq!(
        ballot.add_vote(&vote, Some(b.member_id()), 0),
        Err(VoteError::BadReceivedHash)
    );
}

#[test]
fn evidence_round_trips_and_proves_the_decision() {
    let (a, b, c) = (ident(1), ident(2), ident(3));
    let p = proposal(&a, 3);
    let eligible = voters(&[&a, &b, &c]);
    let mut ballot = Ballot::new(&p, eligible.clone(), 0).unwrap();
    ballot
        .add_vote(&new_vote(&b, &p, true, 2_000), Some(b.member_id()), 0)
        .unwrap();
    let evidence = ballot.evidence().unwrap();
    let verified = verify_evidence(&evidence, &eligible, 0, Some(2_000)).unwrap();
    assert_eq!(verified.decision, Some(true));
    assert_eq!(verified.digest, ballot.digest);
    // Evidence that does not decide YES is refused.
    let lone = Ballot::new(&p, eligible.clone(), 0)
        .unwrap()
        .evidence()
        .unwrap();
    assert!(verify_evidence(&lone, &eligible, 0, Some(2_000)).is_err());
    // A verifier that could have voted decides on carried votes only, even after expiry: a
    // committer could silence any voter by leaving its NO out of the evidence.
    assert!(verify_evidence(&lone, &eligible, 0, None).is_err());
    // One that was not a member then may let expiry decide (silent voters count as YES).
    assert!(verify_evidence(&lone, &eligible, 0, Some(11_000)).is_ok());
}

#[test]
fn proposal_owner_must_be_eligible_and_first_vote_must_be_its_yes() {
    let (a, b) = (ident(1), ident(2));
    let p = proposal(&a, 2);
    assert_eq!(
        Ballot::new(&p, voters(&[&b]), 0).err(),
        Some(VoteError::NotEligible)
    );
    let mut no_votes = p.clone();
    no_votes.votes.clear();
    assert!(Ballot::new(&no_votes, voters(&[&a, &b]), 0).is_err());
    let mut renamed = p.clone();
    renamed.name = "add_member".into();
    assert!(Ballot::new(&renamed, voters(&[&a, &b]), 0).is_err());
    // A relayer cannot swap the payload under the owner's signed vote.
    let other = new_proposal(
        &a,
        &Action::Remove {
            member: b.member_id(),
        },
        3,
        2,
        1_000,
        10_000,
        true,
    );
    let mut swapped = p;
    swapped.payload = other.payload;
    assert!(matches!(
        Ballot::new(&swapped, voters(&[&a, &b]), 0),
        Err(VoteError::MalformedProposal(_))
    ));
}
