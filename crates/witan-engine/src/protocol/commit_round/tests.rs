//! Unit tests of the commit round: timeouts, the prevote rule with locks and polkas, the
//! leader's aggregation into a polka and a certificate, moving rounds.

use super::*;

const CONV: &str = "c";

struct Group {
    ids: Vec<Identity>,
    members: Vec<MemberId>,
    signers: Signers,
}

fn group(n: u8) -> Group {
    let ids: Vec<Identity> = (1..=n)
        .map(|i| Identity::from_secret(&[i; 32]).unwrap())
        .collect();
    let members = ids.iter().map(Identity::member_id).collect();
    let signers = ids
        .iter()
        .map(|i| (i.public_key(), i.member_id()))
        .collect();
    Group {
        ids,
        members,
        signers,
    }
}

const TIMING: Timing = Timing {
    first_round_ms: 3_000,
    round_ms: 1_000,
    commit_delay_ms: 100,
    collect_ms: 200,
};

impl Group {
    fn ctx(&self, i: usize, now_ms: u64) -> RoundCtx<'_> {
        RoundCtx {
            conversation: CONV,
            epoch: 1,
            identity: &self.ids[i],
            leaders: &self.members,
            signers: &self.signers,
            now_ms,
            timing: TIMING,
        }
    }

    /// Member 0 as round 0's leader, having proposed value 9: its round, the candidate and
    /// its digest.
    fn leading_round_0(&self) -> (CommitRound, wire::Candidate, Digest) {
        let mut leader = CommitRound::new(1);
        leader.note_work(&self.ctx(0, 0));
        leader.poll(&self.ctx(0, 100));
        let c = self.candidate(9, 0);
        let d = wire::candidate_digest(CONV, &c);
        leader.proposed(c.clone(), true, true, &self.ctx(0, 100));
        (leader, c, d)
    }

    fn candidate(&self, value: u8, round: u32) -> wire::Candidate {
        let leader = self.members[round as usize % self.members.len()];
        wire::Candidate {
            epoch: 1,
            round,
            proposer: leader.as_bytes().to_vec(),
            commit: vec![value],
            ..wire::Candidate::default()
        }
    }

    fn polka(&self, c: &wire::Candidate, round: u32, signers: &[usize]) -> wire::Polka {
        let d = wire::candidate_digest(CONV, c);
        wire::Polka {
            epoch: 1,
            round,
            digest: d.to_vec(),
            signatures: signers
                .iter()
                .map(|&i| {
                    let v = sign(
                        &self.ids[i],
                        RoundVoteKind::Prevote,
                        CONV,
                        1,
                        round,
                        Some(&d),
                    );
                    wire::RoundSignature {
                        voter_key: v.voter_key,
                        signature: v.signature,
                    }
                })
                .collect(),
        }
    }
}

fn prevotes(effects: &[RoundEffect]) -> Vec<&wire::RoundVote> {
    effects
        .iter()
        .filter_map(|e| match e {
            RoundEffect::SendVote {
                content: wire::sealed_payload::Content::Prevote(v),
                ..
            } => Some(v),
            _ => None,
        })
        .collect()
}

#[test]
fn round_timeouts_start_with_the_inactivity_window_then_grow_linearly_up_to_a_cap() {
    let t: Vec<u64> = (0..6).map(|r| TIMING.timeout(r)).collect();
    assert_eq!(t, [3_000, 1_000, 2_000, 3_000, 4_000, 5_000]);
    assert_eq!(TIMING.timeout(32), 32_000);
    assert_eq!(TIMING.timeout(1_000), 32_000, "capped");
}

#[test]
fn a_locked_member_prevotes_another_value_only_with_a_newer_polka() {
    let g = group(4);
    // Member 3 leads none of rounds 0 to 2.
    let mut member = CommitRound::new(1);
    let a = g.candidate(1, 0);
    member.on_candidate(a.clone(), true, &g.ctx(3, 0));
    let lock = g.polka(&a, 0, &[0, 1, 2]);
    member.on_polka(lock, true, &g.ctx(3, 0));
    assert_eq!(member.lock().map(Lock::round), Some(0));
    // Round 1: another value without a polka is not prevoted.
    member.poll(&g.ctx(3, 10_000));
    assert_eq!(member.round(), 1);
    let b = g.candidate(2, 1);
    assert!(prevotes(&member.on_candidate(b.clone(), true, &g.ctx(3, 10_001))).is_empty());
    // Round 2: the same value with a polka of round 1 (after the lock) is.
    member.poll(&g.ctx(3, 20_000));
    assert_eq!(member.round(), 2);
    let mut b2 = g.candidate(2, 2);
    b2.pol = Some(g.polka(&b, 1, &[0, 1, 2]));
    let out = member.on_candidate(b2.clone(), true, &g.ctx(3, 20_001));
    assert_eq!(prevotes(&out).len(), 1);
    // And once per round only.
    assert!(member.on_candidate(b2, true, &g.ctx(3, 20_002)).is_empty());
}

#[test]
fn an_invalid_candidate_gets_no_prevote_and_a_forged_polka_no_lock() {
    let g = group(4);
    let mut member = CommitRound::new(1);
    let a = g.candidate(1, 0);
    assert!(prevotes(&member.on_candidate(a.clone(), false, &g.ctx(1, 0))).is_empty());
    // Two signatures are not a quorum of four; a member's signature counts once.
    member.on_polka(g.polka(&a, 0, &[0, 1]), true, &g.ctx(1, 0));
    member.on_polka(g.polka(&a, 0, &[0, 1, 1]), true, &g.ctx(1, 0));
    assert!(member.lock().is_none());
}

#[test]
fn the_leader_turns_a_quorum_of_prevotes_into_a_polka_and_of_precommits_into_a_certificate() {
    let g = group(4);
    let mut leader = CommitRound::new(1);
    leader.note_work(&g.ctx(0, 0));
    let effects = leader.poll(&g.ctx(0, 100));
    assert!(matches!(
        effects[..],
        [RoundEffect::Propose {
            round: 0,
            value: None
        }]
    ));
    let c = g.candidate(9, 0);
    let d = wire::candidate_digest(CONV, &c);
    assert!(
        leader
            .proposed(c.clone(), true, true, &g.ctx(0, 100))
            .is_empty()
    );
    assert!(leader.own().is_some());
    let vote = |i: usize, kind| sign(&g.ids[i], kind, CONV, 1, 0, Some(&d));
    assert!(
        leader
            .on_prevote(vote(1, RoundVoteKind::Prevote), &g.ctx(0, 101))
            .is_empty()
    );
    let out = leader.on_prevote(vote(2, RoundVoteKind::Prevote), &g.ctx(0, 102));
    assert!(matches!(out.first(), Some(RoundEffect::Polka(p)) if p.signatures.len() == 3));
    assert!(leader.lock().is_some(), "the leader locks on its own polka");
    // Its own precommit is counted; two more make the certificate.
    assert!(
        leader
            .on_precommit(vote(1, RoundVoteKind::Precommit), &g.ctx(0, 103))
            .is_empty()
    );
    let out = leader.on_precommit(vote(3, RoundVoteKind::Precommit), &g.ctx(0, 104));
    let Some(RoundEffect::Certified(cc)) = out.first() else {
        panic!("no certificate: {out:?}");
    };
    assert_eq!(leader.verify_certificate(cc, &g.ctx(2, 105)), Ok(d));
    // A prevote signed for another round or value is not counted.
    let stray = sign(
        &g.ids[3],
        RoundVoteKind::Prevote,
        CONV,
        1,
        0,
        Some(&[0; 32]),
    );
    assert!(leader.on_prevote(stray, &g.ctx(0, 106)).is_empty());
}

#[test]
fn a_copy_of_a_prevote_counts_once_and_a_forged_one_not_at_all() {
    // Round messages leave no seen mark at a client: copies reach the leader again.
    let g = group(4);
    let (mut leader, _, d) = g.leading_round_0();
    let vote = |i: usize| sign(&g.ids[i], RoundVoteKind::Prevote, CONV, 1, 0, Some(&d));
    let mut forged = vote(1);
    forged.signature[0] ^= 1;
    for v in [vote(1), vote(1), forged] {
        assert!(leader.on_prevote(v, &g.ctx(0, 101)).is_empty(), "no polka");
    }
    // The leader's own and member 1's first.
    let held: Vec<_> = leader.prevotes.values().flat_map(|s| s.values()).collect();
    assert_eq!(held.len(), 2);
    assert!(
        held.contains(&&vote(1).signature),
        "member 1's first signature"
    );
    let out = leader.on_prevote(vote(2), &g.ctx(0, 102));
    assert!(matches!(out.first(), Some(RoundEffect::Polka(p)) if p.signatures.len() == 3));
}

#[test]
fn a_leader_keeps_no_signature_past_the_polka_or_the_certificate_it_formed() {
    // Once its polka (or certificate) is out, later votes are of no use to the leader:
    // checking and keeping them made its state hold n signatures per phase, stored again
    // at every late vote.
    let g = group(4);
    let (mut leader, _, d) = g.leading_round_0();
    let vote = |i: usize, kind| sign(&g.ids[i], kind, CONV, 1, 0, Some(&d));
    leader.on_prevote(vote(1, RoundVoteKind::Prevote), &g.ctx(0, 101));
    let out = leader.on_prevote(vote(2, RoundVoteKind::Prevote), &g.ctx(0, 102));
    assert!(matches!(out.first(), Some(RoundEffect::Polka(_))));
    assert!(leader.prevotes.is_empty(), "the polka holds them");
    assert!((leader.on_prevote(vote(3, RoundVoteKind::Prevote), &g.ctx(0, 103))).is_empty());
    assert!(leader.prevotes.is_empty(), "a late prevote is not kept");
    leader.on_precommit(vote(1, RoundVoteKind::Precommit), &g.ctx(0, 104));
    let out = leader.on_precommit(vote(2, RoundVoteKind::Precommit), &g.ctx(0, 105));
    assert!(matches!(out.first(), Some(RoundEffect::Certified(_))));
    assert!(leader.precommits.is_empty(), "the certificate holds them");
    let late = leader.on_precommit(vote(3, RoundVoteKind::Precommit), &g.ctx(0, 106));
    assert!(late.is_empty() && leader.precommits.is_empty());
    // The lock keeps the polka whole: the leader still precommits and re-proposes with it.
    assert_eq!(leader.lock().map(|l| l.polka.signatures.len()), Some(3));
}

#[test]
fn a_member_moves_ahead_on_f_plus_one_new_rounds_or_when_the_leader_passes() {
    let g = group(4);
    let mut member = CommitRound::new(1);
    member.note_work(&g.ctx(3, 0));
    let nr = |round| wire::NewRound {
        epoch: 1,
        round,
        lock: None,
        locked: None,
    };
    // f = 1: one NewRound for round 2 is not enough, two are.
    member.on_new_round(g.members[0], nr(2), &g.ctx(3, 10));
    assert_eq!(member.round(), 0);
    member.on_new_round(g.members[1], nr(2), &g.ctx(3, 11));
    assert_eq!(member.round(), 2);
    // The leader of round 2 (member 2) passes its turn.
    member.on_new_round(g.members[2], nr(3), &g.ctx(3, 12));
    assert_eq!(member.round(), 3);
}

#[test]
fn a_member_whose_rounds_run_follows_a_later_leaders_candidate_with_one_other_member_ahead() {
    // Five members, f = 1. This member (4) cannot time out (a notification extension): it
    // sits in round 0 while members 0 and 3 are awake. Round 3 is led by member 3, which sends
    // no NewRound for its own round: member 0's NewRound and member 3's candidate are the two
    // members ahead of it.
    let g = group(5);
    let mut member = CommitRound::new(1);
    member.note_work(&g.ctx(4, 0));
    assert!(member.started(), "its rounds run");
    let nr = wire::NewRound {
        epoch: 1,
        round: 3,
        lock: None,
        locked: None,
    };
    member.on_new_round(g.members[0], nr, &g.ctx(4, 10));
    assert_eq!(member.round(), 0, "one member ahead is not enough");
    let c = g.candidate(7, 3);
    member.follow_candidate(3, g.members[3], &g.ctx(4, 11));
    assert_eq!(
        member.round(),
        3,
        "the leader's candidate is the second member ahead"
    );
    let effects = member.on_candidate(c, true, &g.ctx(4, 12));
    assert_eq!(prevotes(&effects).len(), 1, "and it prevotes the candidate");
    // The leader alone is not enough to pull a member three rounds further.
    member.follow_candidate(8, g.members[3], &g.ctx(4, 13));
    assert_eq!(member.round(), 3);
}

#[test]
fn a_later_leader_waits_for_a_quorum_and_proposes_the_newest_lock() {
    let g = group(4);
    let mut leader = CommitRound::new(1);
    leader.note_work(&g.ctx(1, 0));
    // Round 0 times out; member 1 leads round 1.
    let out = leader.poll(&g.ctx(1, 3_000));
    assert!(out.is_empty(), "{out:?}");
    let a = g.candidate(5, 0);
    let lock = wire::NewRound {
        epoch: 1,
        round: 1,
        lock: Some(g.polka(&a, 0, &[0, 2, 3])),
        locked: Some(a.clone()),
    };
    assert!(
        leader
            .on_new_round(g.members[2], lock, &g.ctx(1, 3_001))
            .is_empty()
    );
    let plain = wire::NewRound {
        epoch: 1,
        round: 1,
        lock: None,
        locked: None,
    };
    // A quorum (3), but the collection window is still open.
    assert!(
        leader
            .on_new_round(g.members[3], plain, &g.ctx(1, 3_002))
            .is_empty()
    );
    let out = leader.poll(&g.ctx(1, 3_300));
    let Some(RoundEffect::Propose {
        round: 1,
        value: Some((c, Some(p))),
    }) = out.first()
    else {
        panic!("{out:?}");
    };
    assert_eq!(c.commit, a.commit);
    assert_eq!(p.round, 0);
}

#[test]
fn an_author_knows_its_value_may_be_certified_only_once_a_polka_for_it_exists() {
    let g = group(4);
    let (mut leader, c, d) = g.leading_round_0();
    assert!(
        !leader.own_may_be_certified(&g.ctx(0, 100)),
        "proposed, no prevotes: no polka anywhere"
    );
    let prevote = |i: usize| sign(&g.ids[i], RoundVoteKind::Prevote, CONV, 1, 0, Some(&d));
    leader.on_prevote(prevote(1), &g.ctx(0, 101));
    assert!(
        !leader.own_may_be_certified(&g.ctx(0, 101)),
        "short of a quorum"
    );
    leader.on_prevote(prevote(2), &g.ctx(0, 102));
    assert!(
        leader.own_may_be_certified(&g.ctx(0, 102)),
        "it formed the polka"
    );
    // Another member's lock on it (a polka it saw) counts the same.
    let mut other = CommitRound::new(1);
    other.own = Some(c.clone());
    other.on_candidate(c.clone(), true, &g.ctx(1, 0));
    assert!(!other.own_may_be_certified(&g.ctx(1, 0)));
    other.on_polka(g.polka(&c, 0, &[0, 1, 2]), true, &g.ctx(1, 1));
    assert!(other.own_may_be_certified(&g.ctx(1, 1)));
}

fn precommits(effects: &[RoundEffect]) -> Vec<&wire::RoundVote> {
    effects
        .iter()
        .filter_map(|e| match e {
            RoundEffect::SendVote {
                content: wire::sealed_payload::Content::Precommit(v),
                ..
            } => Some(v),
            _ => None,
        })
        .collect()
}

#[test]
fn a_member_past_a_round_precommits_its_late_polka_if_it_signed_nothing_after_it() {
    let g = group(4);
    // Member 3 prevotes value a in round 0, then its round times out before the polka comes.
    let mut member = CommitRound::new(1);
    let a = g.candidate(1, 0);
    assert_eq!(
        prevotes(&member.on_candidate(a.clone(), true, &g.ctx(3, 0))).len(),
        1
    );
    member.poll(&g.ctx(3, 10_000));
    assert_eq!(member.round(), 1);
    let out = member.on_polka(g.polka(&a, 0, &[0, 1, 3]), true, &g.ctx(3, 10_001));
    let late = precommits(&out);
    assert_eq!(late.len(), 1, "{out:?}");
    assert_eq!(late[0].round, 0);
    assert_eq!(member.lock().map(Lock::round), Some(0));

    // A member that prevoted in round 1 signs nothing more for round 0: a precommit there
    // could complete a certificate the round-1 prevote already ignored.
    let mut other = CommitRound::new(1);
    other.on_candidate(a.clone(), true, &g.ctx(2, 0));
    other.poll(&g.ctx(2, 10_000));
    let b = g.candidate(2, 1);
    assert_eq!(
        prevotes(&other.on_candidate(b, true, &g.ctx(2, 10_001))).len(),
        1
    );
    let out = other.on_polka(g.polka(&a, 0, &[0, 1, 3]), true, &g.ctx(2, 10_002));
    assert!(precommits(&out).is_empty(), "{out:?}");
}

#[test]
fn a_leader_counts_a_lock_it_took_after_entering_its_round() {
    let g = group(4);
    // Member 1 prevotes a in round 0 and leads round 1 without a lock.
    let mut leader = CommitRound::new(1);
    let a = g.candidate(5, 0);
    leader.on_candidate(a.clone(), true, &g.ctx(1, 0));
    assert!(leader.poll(&g.ctx(1, 3_000)).is_empty());
    assert_eq!(leader.round(), 1);
    // The polka of round 0 arrives late: the leader locks on a.
    leader.on_polka(g.polka(&a, 0, &[0, 2, 3]), true, &g.ctx(1, 3_001));
    assert_eq!(leader.lock().map(Lock::round), Some(0));
    let plain = || wire::NewRound {
        epoch: 1,
        round: 1,
        lock: None,
        locked: None,
    };
    leader.on_new_round(g.members[2], plain(), &g.ctx(1, 3_002));
    leader.on_new_round(g.members[3], plain(), &g.ctx(1, 3_003));
    let out = leader.poll(&g.ctx(1, 3_300));
    let Some(RoundEffect::Propose {
        round: 1,
        value: Some((c, Some(p))),
    }) = out.first()
    else {
        panic!("the leader does not propose its lock: {out:?}");
    };
    assert_eq!(c.commit, a.commit);
    assert_eq!(p.round, 0);
}
