//! Tests of the parts' codec: references to held candidates, the own value, the candidates
//! apart from the round, and the forms stored before.

use super::*;
use prost::Message;

fn candidate(round: u32, tag: u8) -> wire::Candidate {
    wire::Candidate {
        round,
        commit: vec![tag; 100],
        ..wire::Candidate::default()
    }
}

fn lock(round: u32, tag: u8) -> Lock {
    Lock {
        polka: wire::Polka {
            round,
            ..wire::Polka::default()
        },
        candidate: candidate(round, tag),
    }
}

/// `r` stored and read back through its round and candidates parts.
fn stored(r: &CommitRound) -> (RoundPart, CandidatesPart) {
    (round_part(r), candidates_part(r))
}

fn read(part: RoundPart, candidates: &CandidatesPart) -> Result<CommitRound, StateError> {
    round_from(part, Some(candidates.clone()))
}

#[test]
fn a_leaders_own_candidate_is_stored_once_and_reads_back_whole() {
    let mut r = CommitRound::default();
    let mut proposed = candidate(3, 5);
    proposed.pol = Some(wire::Polka::default());
    r.candidates.insert(3, proposed.clone());
    let mut own = proposed.clone();
    own.round = 0;
    own.pol = None;
    r.own = Some(own);
    let (part, held) = stored(&r);
    assert_eq!((part.own.is_none(), part.own_of_round), (true, Some(3)));
    let bytes = part.encode_to_vec();
    let back = read(RoundPart::decode(bytes.as_slice()).unwrap(), &held).unwrap();
    assert_eq!(back, r);
    // Stored whole (as before references, or not among the candidates) it reads back too.
    let mut whole = round_part(&r);
    (whole.own, whole.own_of_round) = (r.own.clone(), None);
    assert!(whole.encode_to_vec().len() > bytes.len());
    assert_eq!(read(whole, &held).unwrap(), r);
    r.candidates.clear();
    let (alone, none) = stored(&r);
    assert_eq!((alone.own.is_some(), alone.own_of_round), (true, None));
    assert_eq!(read(alone, &none).unwrap(), r);
    // A reference to a candidate not held, or both forms at once, is refused.
    assert!(read(part.clone(), &none).is_err());
    let mut both = part;
    both.own = r.own.clone();
    assert!(read(both, &held).is_err());
}

#[test]
fn a_lock_on_a_held_candidate_is_stored_once_and_reads_back_whole() {
    let mut r = CommitRound::default();
    r.candidates.insert(2, candidate(2, 7));
    r.lock = Some(lock(2, 7));
    // A member's lock on a value this member never received as a candidate.
    r.new_rounds.insert(MemberId([1; 20]), Some(lock(1, 9)));
    let (part, held) = stored(&r);
    let stored_lock = part.lock.as_ref().unwrap();
    assert_eq!(
        (
            stored_lock.candidate.is_none(),
            stored_lock.candidate_of_round
        ),
        (true, Some(2))
    );
    let other = part.new_rounds[0].lock.as_ref().unwrap();
    assert!(other.candidate.is_some(), "not held: stored whole");
    let bytes = part.encode_to_vec();
    let back = read(RoundPart::decode(bytes.as_slice()).unwrap(), &held).unwrap();
    assert_eq!(back, r);

    // A lock stored whole (as before references) reads back the same.
    let mut whole = round_part(&r);
    whole.lock = Some(StoredLock {
        polka: Some(lock(2, 7).polka),
        candidate: Some(candidate(2, 7)),
        candidate_of_round: None,
    });
    assert!(whole.encode_to_vec().len() > bytes.len());
    assert_eq!(read(whole, &held).unwrap(), r);

    // A reference to a candidate that is not there, or a lock naming both, is refused.
    let none = CandidatesPart {
        version: PART_VERSION,
        candidates: Vec::new(),
    };
    assert!(read(round_part(&r), &none).is_err());
    let mut both = round_part(&r);
    if let Some(l) = both.lock.as_mut() {
        l.candidate = Some(candidate(2, 7));
    }
    assert!(read(both, &held).is_err());
}

#[test]
fn candidates_are_stored_apart_from_the_round_and_inline_ones_still_read() {
    let mut r = CommitRound::default();
    r.candidates.insert(2, candidate(2, 7));
    r.candidates.insert(4, candidate(4, 8));
    r.lock = Some(lock(2, 7));
    let (part, held) = stored(&r);
    assert!(part.candidates_apart && part.candidates.is_empty());
    assert_eq!(held.candidates.len(), 2);
    let back = read(part.clone(), &held).unwrap();
    assert_eq!(back, r);
    assert!(!back.candidates.changed(), "as stored: nothing to write");
    // A round part stored before the candidates had a part of their own holds them.
    let mut inline = part.clone();
    (inline.candidates, inline.candidates_apart) = (held.candidates.clone(), false);
    assert_eq!(round_from(inline.clone(), None).unwrap(), r);
    assert_eq!(round_from(inline, Some(held.clone())).unwrap(), r);
    // Apart but missing, in both places, another version or too many: refused.
    assert!(round_from(part.clone(), None).is_err());
    let mut both = part.clone();
    both.candidates = held.candidates.clone();
    assert!(read(both, &held).is_err());
    let mut other = held.clone();
    other.version += 1;
    assert!(read(part.clone(), &other).is_err());
    let mut many = held;
    many.candidates = (0..=MAX_CANDIDATES as u32)
        .map(|i| candidate(i, 1))
        .collect();
    assert!(read(part, &many).is_err());
}

#[test]
fn the_proposals_open_at_a_join_are_stored_with_the_ballots_and_bounded_on_read() {
    let mut b = BallotBox::default();
    let names = [[1u8; 32].as_slice(), [2u8; 32].as_slice()];
    b.adopt_open_at_join(names, 5_000);
    let part = ballots_part(&b, true);
    assert_eq!(part.open_at_join.len(), 2);
    let checked = CheckedSignatures::default();
    let back = ballots_from("c", part.clone(), &checked).unwrap();
    assert_eq!(back.open_at_join, b.open_at_join);
    assert!(back.was_open_at_join(&[2; 32]));
    let mut short = part.clone();
    short.open_at_join[0].pop();
    assert!(ballots_from("c", short, &checked).is_err());
    let mut many = part;
    many.open_at_join = vec![vec![3; 32]; MAX_OPEN + 1];
    assert!(ballots_from("c", many, &checked).is_err());
}
