//! The parts' values, one function each way: a part's state to its stored message
//! (`schema`) and back, every field checked on the way in (see `persist`).

use std::collections::BTreeMap;

use super::catch_up::{Archive, Archived};
use super::schema::*;
use super::stored::{StateError, check_version, digest, err, member};
use crate::mls::{CheckedSignatures, MemberId};
use crate::protocol::ballot_box::{
    Ballot, BallotBox, MAX_OPEN, OpenAtJoin, Resolved, parse_checked,
};
use crate::protocol::commit_round::{
    Candidates, CollectedByValue, CommitRound, Lock, MAX_CANDIDATES,
};
use crate::protocol::join_queue::{JoinQueue, JoinRequest};
use crate::protocol::score_book::ScoreBook;
use crate::protocol::steward_schedule::StewardSchedule;
use witan_wire as wire;

/// The ballots part; `all_votes`: with every vote, or without those stored as rows
/// (`ballot_box::rows`).
pub(super) fn ballots_part(b: &BallotBox, all_votes: bool) -> BallotsPart {
    BallotsPart {
        version: PART_VERSION,
        open: b
            .open
            .values()
            .map(|x| StoredBallot {
                header: Some(x.header.clone()),
                first_seen_ms: x.first_seen_ms,
                votes: (x.votes.iter())
                    .filter(|(m, _)| all_votes || x.rows.is_inline(m))
                    .map(|(_, v)| v.clone())
                    .collect(),
                proofs: x.proofs.values().cloned().collect(),
                relayed: x.relayed,
                held: x.held,
            })
            .collect(),
        resolved: b
            .resolved
            .iter()
            .map(|(d, r)| StoredResolved {
                digest: d.to_vec(),
                id: r.id,
                created_at_ms: r.created_at_ms,
            })
            .collect(),
        floor_ms: b.floor_ms,
        orphans: b
            .orphans
            .iter()
            .map(|(c, v)| StoredOrphan {
                carrier: c.as_bytes().to_vec(),
                vote: Some(v.clone()),
            })
            .collect(),
        auto_votes: b
            .auto_votes
            .iter()
            .map(|(d, at)| StoredDeadline {
                digest: d.to_vec(),
                at_ms: *at,
            })
            .collect(),
        checked_at_ms: b.checked_at_ms,
        open_at_join: (b.open_at_join.digests.iter())
            .map(|d| d.to_vec())
            .collect(),
        joined_at_ms: b.open_at_join.joined_at_ms,
    }
}

/// The ballot box of a ballots part (its votes inline; those stored as rows are added by
/// `vote_rows`).
pub(super) fn ballots_from(
    conversation: &str,
    p: BallotsPart,
    checked: &CheckedSignatures,
) -> Result<BallotBox, StateError> {
    check_version(p.version, "ballots")?;
    let mut b = BallotBox {
        floor_ms: p.floor_ms,
        checked_at_ms: p.checked_at_ms,
        ..BallotBox::default()
    };
    for s in p.open {
        let header = s
            .header
            .ok_or_else(|| err("a ballot without its proposal"))?;
        let parsed =
            parse_checked(conversation, &header, checked).map_err(|e| err(e.to_string()))?;
        let votes = s
            .votes
            .into_iter()
            .map(|v| (MemberId::from_public_key(&v.vote_owner), v))
            .collect();
        let proofs = s
            .proofs
            .into_iter()
            .filter_map(|p| {
                let voter = p
                    .first
                    .as_ref()
                    .map(|v| MemberId::from_public_key(&v.vote_owner))?;
                Some((voter, p))
            })
            .collect();
        let ballot = Ballot {
            id: header.proposal_id,
            digest: parsed.digest,
            action: parsed.action,
            owner: parsed.owner,
            made_in: parsed.epoch,
            created_at_ms: header.timestamp,
            expires_at_ms: header.expiration_timestamp,
            first_seen_ms: s.first_seen_ms,
            header: parsed.header,
            votes,
            proofs,
            relayed: s.relayed,
            held: s.held,
            counted: Default::default(),
            rows: Default::default(),
        };
        b.ids.insert(ballot.id, ballot.digest);
        b.open.insert(ballot.digest, ballot);
    }
    for r in p.resolved {
        let resolved = Resolved {
            id: r.id,
            created_at_ms: r.created_at_ms,
        };
        b.resolved.insert(digest(&r.digest)?, resolved);
    }
    for o in p.orphans {
        let vote = o.vote.ok_or_else(|| err("an orphan without its vote"))?;
        b.orphans.push((member(&o.carrier)?, vote));
    }
    for a in p.auto_votes {
        b.auto_votes.insert(digest(&a.digest)?, a.at_ms);
    }
    if p.open_at_join.len() > MAX_OPEN {
        return Err(err("more proposals open at the join than a box holds"));
    }
    b.open_at_join = OpenAtJoin {
        digests: (p.open_at_join.iter().map(|d| digest(d))).collect::<Result<_, _>>()?,
        joined_at_ms: p.joined_at_ms,
    };
    Ok(b)
}

/// A lock as stored: its value by reference when it is one of `candidates` (a large group's
/// candidate carries a thousand votes; written twice, it was the biggest part of a step).
pub(super) fn lock_part(l: &Lock, candidates: &BTreeMap<u32, wire::Candidate>) -> StoredLock {
    let round = l.candidate.round;
    if candidates.get(&round) == Some(&l.candidate) {
        return StoredLock {
            polka: Some(l.polka.clone()),
            candidate: None,
            candidate_of_round: Some(round),
        };
    }
    StoredLock {
        polka: Some(l.polka.clone()),
        candidate: Some(l.candidate.clone()),
        candidate_of_round: None,
    }
}

pub(super) fn lock_from(
    l: Option<StoredLock>,
    candidates: &BTreeMap<u32, wire::Candidate>,
) -> Result<Option<Lock>, StateError> {
    let Some(l) = l else { return Ok(None) };
    let candidate = match (l.candidate, l.candidate_of_round) {
        (Some(candidate), None) => Some(candidate),
        (None, Some(round)) => candidates.get(&round).cloned(),
        _ => None,
    };
    match (l.polka, candidate) {
        (Some(polka), Some(candidate)) => Ok(Some(Lock { polka, candidate })),
        _ => Err(err("a lock without its polka or candidate")),
    }
}

/// Whether `own` (a leader's candidate as it keeps it to propose again: round 0, no polka) is
/// candidate `c` of a round.
fn is_own(own: &wire::Candidate, c: &wire::Candidate) -> bool {
    own.round == 0
        && own.pol.is_none()
        && own.epoch == c.epoch
        && own.proposer == c.proposer
        && own.commit == c.commit
        && own.welcome == c.welcome
        && own.resolutions == c.resolutions
}

/// The leader's own candidate as stored: by reference to a held candidate it equals, or whole.
fn own_part(r: &CommitRound) -> (Option<wire::Candidate>, Option<u32>) {
    let Some(own) = &r.own else {
        return (None, None);
    };
    match r.candidates.values().find(|c| is_own(own, c)) {
        Some(c) => (None, Some(c.round)),
        None => (Some(own.clone()), None),
    }
}

fn own_from(
    own: Option<wire::Candidate>,
    of_round: Option<u32>,
    candidates: &BTreeMap<u32, wire::Candidate>,
) -> Result<Option<wire::Candidate>, StateError> {
    match (own, of_round) {
        (own, None) => Ok(own),
        (None, Some(round)) => {
            let mut own = candidates
                .get(&round)
                .cloned()
                .ok_or_else(|| err("the own candidate refers to a candidate not held"))?;
            own.round = 0;
            own.pol = None;
            Ok(Some(own))
        }
        (Some(_), Some(_)) => Err(err("the own candidate is stored twice")),
    }
}

pub(super) fn round_part(r: &CommitRound) -> RoundPart {
    let (own, own_of_round) = own_part(r);
    let collected = |t: &CollectedByValue| {
        t.iter()
            .map(|((round, d), sigs)| StoredCollected {
                round: *round,
                digest: d.clone(),
                signatures: sigs
                    .iter()
                    .map(|(k, s)| wire::RoundSignature {
                        voter_key: k.to_vec(),
                        signature: s.clone(),
                    })
                    .collect(),
            })
            .collect()
    };
    let new_round = |round: u32, m: &MemberId, l: &Option<Lock>| StoredNewRound {
        round,
        member: m.as_bytes().to_vec(),
        lock: l.as_ref().map(|l| lock_part(l, &r.candidates)),
    };
    RoundPart {
        version: PART_VERSION,
        epoch: r.epoch,
        round: r.round,
        started: r.started,
        deadline: r.deadline,
        commit_at: r.commit_at,
        lock: r.lock.as_ref().map(|l| lock_part(l, &r.candidates)),
        prevoted: r.prevoted,
        precommitted: r.precommitted,
        own,
        own_of_round,
        proposed: r.proposed,
        candidates: Vec::new(),
        candidates_apart: true,
        early_polkas: r.early_polkas.values().cloned().collect(),
        prevotes: collected(&r.prevotes),
        precommits: collected(&r.precommits),
        new_rounds: r
            .new_rounds
            .iter()
            .map(|(m, l)| new_round(r.round, m, l))
            .collect(),
        collect_until: r.collect_until,
        ahead: r
            .ahead
            .iter()
            .flat_map(|(round, ms)| ms.iter().map(move |(m, l)| new_round(*round, m, l)))
            .collect(),
        polka_sent: r.polka_sent.iter().copied().collect(),
        certified_sent: r.certified_sent,
        valid: r
            .valid
            .iter()
            .map(|(d, m)| StoredValid {
                digest: d.clone(),
                committer: m.as_bytes().to_vec(),
            })
            .collect(),
        fallback_at: r.fallback_at,
    }
}

/// The candidates part (see [`CandidatesPart`]).
pub(super) fn candidates_part(r: &CommitRound) -> CandidatesPart {
    CandidatesPart {
        version: PART_VERSION,
        candidates: r.candidates.values().cloned().collect(),
    }
}

/// A round from its part and, when the part says they are apart, its candidates part; a round
/// part stored before they were apart holds them itself.
pub(super) fn round_from(
    p: RoundPart,
    apart: Option<CandidatesPart>,
) -> Result<CommitRound, StateError> {
    check_version(p.version, "round")?;
    let list = match (p.candidates_apart, apart) {
        (false, _) => p.candidates,
        (true, Some(_)) if !p.candidates.is_empty() => {
            return Err(err("candidates stored both in the round and apart"));
        }
        (true, Some(c)) => {
            check_version(c.version, "candidates")?;
            c.candidates
        }
        (true, None) => return Err(err("the candidates part is missing")),
    };
    if list.len() > MAX_CANDIDATES {
        return Err(err("more candidates than a round keeps"));
    }
    let candidates: BTreeMap<u32, wire::Candidate> =
        list.into_iter().map(|c| (c.round, c)).collect();
    let mut r = CommitRound {
        epoch: p.epoch,
        round: p.round,
        started: p.started,
        deadline: p.deadline,
        commit_at: p.commit_at,
        lock: lock_from(p.lock, &candidates)?,
        prevoted: p.prevoted,
        precommitted: p.precommitted,
        own: own_from(p.own, p.own_of_round, &candidates)?,
        proposed: p.proposed,
        collect_until: p.collect_until,
        fallback_at: p.fallback_at,
        certified_sent: p.certified_sent,
        polka_sent: p.polka_sent.into_iter().collect(),
        ..CommitRound::default()
    };
    for v in p.valid {
        r.valid.insert(v.digest, member(&v.committer)?);
    }
    for polka in p.early_polkas {
        r.early_polkas.insert(polka.digest.clone(), polka);
    }
    for (from, to) in [
        (p.prevotes, &mut r.prevotes),
        (p.precommits, &mut r.precommits),
    ] {
        for c in from {
            let mut sigs = BTreeMap::new();
            for s in c.signatures {
                let key: [u8; 32] = s
                    .voter_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| err("a signer key is not 32 bytes"))?;
                sigs.insert(key, s.signature);
            }
            to.insert((c.round, c.digest), sigs);
        }
    }
    for n in p.new_rounds {
        r.new_rounds
            .insert(member(&n.member)?, lock_from(n.lock, &candidates)?);
    }
    for n in p.ahead {
        r.ahead
            .entry(n.round)
            .or_default()
            .insert(member(&n.member)?, lock_from(n.lock, &candidates)?);
    }
    r.candidates = Candidates::stored(candidates);
    Ok(r)
}

pub(super) fn stewards_from(p: StewardsPart) -> Result<StewardSchedule, StateError> {
    check_version(p.version, "stewards")?;
    let slots = p
        .slots
        .iter()
        .map(|s| {
            if s.is_empty() {
                Ok(None)
            } else {
                member(s).map(Some)
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(StewardSchedule {
        slots,
        base_epoch: p.base_epoch,
    })
}

pub(super) fn scores_from(p: ScoresPart) -> Result<ScoreBook, StateError> {
    check_version(p.version, "scores")?;
    let table = |entries: Vec<wire::PeerScore>| -> Result<BTreeMap<MemberId, i64>, StateError> {
        entries
            .into_iter()
            .map(|e| Ok((member(&e.member_id)?, e.score)))
            .collect()
    };
    Ok(ScoreBook::from_tables(
        table(p.scores)?,
        table(p.suspicion)?,
    ))
}

pub(super) fn joins_from(p: JoinsPart) -> Result<JoinQueue, StateError> {
    check_version(p.version, "joins")?;
    let mut q = JoinQueue::default();
    for r in p.requests {
        q.requests.insert(
            member(&r.member)?,
            JoinRequest {
                key_package: r.key_package,
                seen_at_ms: r.seen_at_ms,
            },
        );
    }
    for h in p.spent {
        q.spent.push(digest(&h)?);
    }
    q.member_since_ms = p.member_since_ms;
    for a in p.admitted {
        q.admitted.insert(member(&a.member)?, a.seen_at_ms);
    }
    Ok(q)
}

pub(super) fn archive_from(p: ArchivePart) -> Result<Archive, StateError> {
    check_version(p.version, "archive")?;
    let mut a = Archive::default();
    for e in p.entries {
        let keys = e
            .keys
            .iter()
            .map(|k| {
                k.as_slice()
                    .try_into()
                    .map_err(|_| err("an archived key is not 32 bytes"))
            })
            .collect::<Result<_, _>>()?;
        // A packet in the part was written by an earlier version (see `Archived::inline`).
        let (len, inline) = if e.packet.is_empty() {
            let len = usize::try_from(e.packet_len)
                .map_err(|_| err("an archived packet's length does not fit"))?;
            (len, None)
        } else {
            (e.packet.len(), Some(e.packet))
        };
        a.entries.push(Archived {
            epoch: e.epoch,
            len,
            inline,
            keys,
        });
    }
    Ok(a)
}

#[cfg(test)]
#[path = "part_codec_tests.rs"]
mod tests;
