//! The ballot box: proposals, their signed votes, proofs of equivocation, each member's
//! *tentative* tally, and the memory of resolved proposals.
//!
//! A member's own tally of a proposal is only tentative: what is final is what a certified
//! commit resolves (see `commit_round`). The tally is a pure function of the valid signed
//! votes, the member set of the epoch being committed (every member is a voter), the proposal
//! and whether it is decided at expiry ([`tally::decide`]). A commit carries, for each
//! proposal it resolves, the votes its leader holds ([`evidence`]); a member asked to sign it
//! adds the votes it holds itself and refuses a resolution they contradict.
//!
//! Proposals are named by their digest (which binds the conversation); the 63-bit id is for
//! the host and is never shared by two registered proposals. Votes are accepted until the
//! proposal is resolved, after its expiry too. A proposal received after its expiry (a
//! backlog) is not decided by silence until it has had a full voting window here.
//!
//! Everything here is bounded: open proposals in number, per owner and in bytes; votes that
//! arrived before their proposal per carrier and in total; the resolved-id memory by count
//! (the oldest forgotten raises the age below which proposals are refused) and by age.

mod ballot;
mod counted;
mod evidence;
mod joined;
mod proposal;
mod rows;
mod tally;
mod upkeep;
mod votes;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::mls::{CheckedSignatures, Identity, MemberId};
use crate::protocol::settings::Settings;
use witan_wire as wire;

use ballot::held_already;
pub use ballot::{Ballot, Tentative};
pub use evidence::ResolutionCheck;
pub(crate) use joined::OpenAtJoin;
pub use proposal::{
    Action, Class, Parsed, ProposalContext, ProposalKind, check_rules, derive_proposal_id,
    new_proposal, parse, parse_checked, parse_payload, parse_unsigned,
};
pub(crate) use rows::Placed;
pub use tally::{decide, decide_backed};
pub use votes::{
    check_hash as check_vote_hash, new_vote, verify as verify_vote, verify_evidence, verify_proof,
    verify_signed as verify_signed_vote,
};

/// A SHA-256 digest (of a proposal or a candidate).
pub type Digest = [u8; 32];

/// Open proposals at most: one owner's adds for a full join queue, and as many others.
pub const MAX_OPEN: usize = 2 * MAX_OPEN_ADDS_PER_OWNER;
/// Open proposals of one owner at most, adds aside.
pub const MAX_OPEN_PER_OWNER: usize = 32;
/// Open add proposals of one owner at most: a member proposes an add for every join request
/// it holds (the epoch steward for a burst of joiners forming a group), so as many as the
/// join queue keeps.
pub const MAX_OPEN_ADDS_PER_OWNER: usize = crate::protocol::join_queue::MAX_REQUESTS;
/// Bytes of open proposals (headers and votes) at most, checked when a proposal is
/// registered and when a vote is counted. Part of the state budget
/// (`protocol::STATE_BUDGET_BYTES`).
pub const MAX_OPEN_BYTES: usize = 3 * 1024 * 1024;
/// Votes waiting for their proposal, at most, in total and per carrier.
pub const MAX_ORPHANS: usize = 512;
pub const MAX_ORPHANS_PER_CARRIER: usize = 64;
/// Resolved proposals remembered at most (older ones are refused by age).
pub const MAX_RESOLVED: usize = 4096;
/// Proposals older than this are refused, resolved or not.
pub const MAX_PROPOSAL_AGE_MS: u64 = 24 * 3_600_000;
/// What one stored vote costs in bytes (for the byte bound).
const VOTE_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BallotError {
    #[error("malformed proposal: {0}")]
    Malformed(String),
    #[error("proposal breaks the group's rules: {0}")]
    Rules(String),
    #[error("vote refused: {0}")]
    Vote(&'static str),
    #[error("vote refused: its owner is not a member")]
    NotVoter,
    #[error("{0}")]
    Refused(String),
    #[error("too many open proposals: {0}")]
    Full(&'static str),
    #[error("{0} not found")]
    NotFound(String),
}

/// What an operation needs to know of the conversation.
pub struct Scope<'a> {
    pub conversation: &'a str,
    /// The members of the current epoch: the voters.
    pub members: &'a BTreeSet<MemberId>,
    /// The serial of the roster `members` comes from, which tallies may remember their
    /// counts under (`counted`); 0 for a set built for one use.
    pub roster: u64,
    pub now_ms: u64,
    pub settings: &'a Settings,
    /// Vote signatures a batch already proved (`mls::checked`).
    pub checked: &'a CheckedSignatures,
}

/// What a received vote did.
#[derive(Clone, Debug, PartialEq)]
pub enum VoteOutcome {
    /// A new vote was counted.
    Counted,
    /// Already held.
    Duplicate,
    /// The voter voted both ways: here is the proof (its votes no longer count).
    Equivocation(Box<wire::EquivocationProof>),
    /// Its proposal is not known yet: kept until it is.
    Orphan,
}

/// A resolved proposal, remembered so it cannot be registered again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) id: u64,
    pub(crate) created_at_ms: u64,
}

/// See the module doc.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BallotBox {
    pub(crate) open: BTreeMap<Digest, Ballot>,
    pub(crate) ids: BTreeMap<u64, Digest>,
    pub(crate) resolved: BTreeMap<Digest, Resolved>,
    /// Proposals created at or before this time are refused (resolved ones forgotten).
    pub(crate) floor_ms: u64,
    /// Votes that arrived before their proposal, with their MLS carrier.
    pub(crate) orphans: Vec<(MemberId, wire::Vote)>,
    /// This member's automatic votes, by proposal, and when they are due.
    pub(crate) auto_votes: BTreeMap<Digest, u64>,
    /// When the dispatcher last looked for decided proposals: voting windows that closed
    /// before are no longer deadlines.
    pub(crate) checked_at_ms: u64,
    /// Until when `prune` has nothing to forget.
    pub(crate) prune_at: upkeep::PruneAt,
    /// Ballots that went since the last save (see `rows`).
    pub(crate) dropped: rows::DroppedBallots,
    /// The proposals open when this member joined (see `joined`).
    pub(crate) open_at_join: joined::OpenAtJoin,
}

impl BallotBox {
    /// An empty box for a conversation started afresh: a store drops every vote row it
    /// holds under the conversation's id at the next save (see `rows`).
    pub(crate) fn fresh() -> BallotBox {
        let mut b = BallotBox::default();
        b.dropped.all = true;
        b
    }

    pub fn get(&self, digest: &Digest) -> Option<&Ballot> {
        self.open.get(digest)
    }

    /// Evidence against `member` from a proof of equivocation held on an open proposal (one
    /// small enough to carry).
    pub fn evidence_against(&self, member: &MemberId) -> Option<Vec<u8>> {
        self.open.values().find_map(|b| {
            b.proofs
                .get(member)
                .map(|proof| votes::evidence_from(&b.header, proof))
                .filter(|e| e.len() <= wire::limits::MAX_EVIDENCE_BYTES)
        })
    }

    pub fn by_id(&self, id: u64) -> Option<&Ballot> {
        self.ids.get(&id).and_then(|d| self.open.get(d))
    }

    pub fn open(&self) -> impl Iterator<Item = &Ballot> {
        self.open.values()
    }

    pub fn is_resolved(&self, digest: &Digest) -> bool {
        self.resolved.contains_key(digest)
    }

    /// Registers a proposal received from `sender` (its MLS-authenticated sender): its owner,
    /// or a member passing it on with the votes it holds. Returns its digest and whether it is
    /// new here.
    pub fn receive(
        &mut self,
        p: &wire::Proposal,
        sender: MemberId,
        scope: &Scope<'_>,
    ) -> Result<(Digest, bool), BallotError> {
        let parsed = parse_checked(scope.conversation, p, scope.checked)?;
        // Another member may pass a proposal on (its owner signed it): only a proposal sent
        // by its owner needs the owner to be a member now.
        if parsed.owner == sender && !scope.members.contains(&parsed.owner) {
            return Err(BallotError::Refused(
                "the proposal's owner is not a member".into(),
            ));
        }
        let skew = scope.settings.max_clock_skew_ms;
        if parsed.header.timestamp > scope.now_ms.saturating_add(skew) {
            return Err(BallotError::Refused(
                "the proposal is from the future".into(),
            ));
        }
        self.register(parsed, scope)
    }

    /// Registers a proposal carried in a candidate (its owner may have left since, and its
    /// time is judged by the checks of the resolution, not here).
    pub fn learn(
        &mut self,
        p: &wire::Proposal,
        scope: &Scope<'_>,
    ) -> Result<(Digest, bool), BallotError> {
        let parsed = parse_checked(scope.conversation, p, scope.checked)?;
        self.register(parsed, scope)
    }

    fn register(
        &mut self,
        parsed: proposal::Parsed,
        scope: &Scope<'_>,
    ) -> Result<(Digest, bool), BallotError> {
        check_rules(&parsed.header, scope.settings)?;
        let digest = parsed.digest;
        if self.open.contains_key(&digest) {
            return Ok((digest, false));
        }
        if self.resolved.contains_key(&digest) {
            return Err(BallotError::Refused(
                "the proposal was resolved already".into(),
            ));
        }
        let created = parsed.header.timestamp;
        if created <= self.floor_ms || created.saturating_add(MAX_PROPOSAL_AGE_MS) < scope.now_ms {
            return Err(BallotError::Refused("the proposal is too old".into()));
        }
        let id = parsed.header.proposal_id;
        if self.ids.contains_key(&id) {
            return Err(BallotError::Refused(
                "another proposal holds this id".into(),
            ));
        }
        self.check_room(&parsed)?;
        let first = parsed
            .header
            .votes
            .first()
            .cloned()
            .ok_or_else(|| BallotError::Malformed("no owner vote".into()))?;
        let mut ballot = Ballot {
            id,
            digest,
            action: parsed.action,
            owner: parsed.owner,
            made_in: parsed.epoch,
            created_at_ms: created,
            expires_at_ms: parsed.header.expiration_timestamp,
            first_seen_ms: scope.now_ms,
            header: parsed.header,
            votes: BTreeMap::new(),
            proofs: BTreeMap::new(),
            relayed: false,
            held: false,
            counted: counted::CountMemo::default(),
            rows: rows::VoteRows::default(),
        };
        ballot.put_vote(parsed.owner, first, scope);
        self.ids.insert(id, digest);
        self.prune_at.lower(created);
        self.open.insert(digest, ballot);
        self.forget_open_at_join(&digest);
        self.adopt_orphans(&digest, scope);
        Ok((digest, true))
    }

    fn check_room(&self, parsed: &proposal::Parsed) -> Result<(), BallotError> {
        if self.open.len() >= MAX_OPEN {
            return Err(BallotError::Full("in the conversation"));
        }
        let is_add = |a: &Action| matches!(a, Action::Add { .. });
        let add = is_add(&parsed.action);
        let owned = self
            .open
            .values()
            .filter(|b| b.owner == parsed.owner && is_add(&b.action) == add)
            .count();
        let cap = if add {
            MAX_OPEN_ADDS_PER_OWNER
        } else {
            MAX_OPEN_PER_OWNER
        };
        if owned >= cap {
            return Err(BallotError::Full("of this owner"));
        }
        if self.open_bytes() + prost::Message::encoded_len(&parsed.header) > MAX_OPEN_BYTES {
            return Err(BallotError::Full("in bytes"));
        }
        Ok(())
    }

    /// Bytes the open proposals take (headers and votes), against `MAX_OPEN_BYTES`.
    fn open_bytes(&self) -> usize {
        self.open.values().map(Ballot::bytes).sum()
    }

    fn adopt_orphans(&mut self, digest: &Digest, scope: &Scope<'_>) {
        let Some(id) = self.open.get(digest).map(|b| b.id) else {
            return;
        };
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.orphans)
            .into_iter()
            .partition(|(_, v)| v.proposal_id == id);
        self.orphans = rest;
        for (carrier, vote) in mine {
            // A vote that does not verify against the proposal is dropped like any forgery.
            let _refused = self.add_vote(&vote, Some(carrier), scope);
        }
    }

    /// The digest of the open or known proposal `proposal_id`, if this box has it.
    pub fn digest_of(&self, proposal_id: u64) -> Option<Digest> {
        self.ids.get(&proposal_id).copied()
    }

    /// Whether `vote` is held as it is: by the open proposal `digest`, or waiting for its
    /// proposal (a copy would count for nothing, so needs no check).
    pub fn holds(&self, digest: &Digest, vote: &wire::Vote) -> bool {
        self.open
            .get(digest)
            .is_some_and(|b| held_already(b, vote).is_some())
            || self.orphans.iter().any(|(_, v)| v == vote)
    }

    /// A vote received directly (`carrier`: its MLS sender, which must be the voter) or
    /// carried in evidence or a relayed bundle (`None`: it counts through its signature).
    pub fn add_vote(
        &mut self,
        vote: &wire::Vote,
        carrier: Option<MemberId>,
        scope: &Scope<'_>,
    ) -> Result<VoteOutcome, BallotError> {
        self.count_vote(vote, carrier, true, scope)
    }

    /// [`Self::add_vote`]; `bounded`: refused when the box is full in bytes. A candidate's
    /// evidence is not (the candidate is bounded and resolves the proposals it votes on).
    fn count_vote(
        &mut self,
        vote: &wire::Vote,
        carrier: Option<MemberId>,
        bounded: bool,
        scope: &Scope<'_>,
    ) -> Result<VoteOutcome, BallotError> {
        let Some(digest) = self.ids.get(&vote.proposal_id).copied() else {
            return self.keep_orphan(vote, carrier);
        };
        let room = !bounded || self.open_bytes() + VOTE_BYTES <= MAX_OPEN_BYTES;
        let Some(ballot) = self.open.get_mut(&digest) else {
            return Err(BallotError::NotFound("open proposal".into()));
        };
        let voter = match held_already(ballot, vote) {
            Some(voter) => voter,
            None => votes::verify_with(
                scope.conversation,
                &digest,
                &ballot.header,
                vote,
                scope.checked,
            )?,
        };
        if carrier.is_some_and(|c| c != voter) {
            return Err(BallotError::Vote("vote was not delivered by its owner"));
        }
        if !scope.members.contains(&voter) {
            return Err(BallotError::NotVoter);
        }
        if ballot.proofs.contains_key(&voter) {
            return Ok(VoteOutcome::Duplicate);
        }
        match ballot.votes.get(&voter) {
            Some(held) if held.vote == vote.vote => Ok(VoteOutcome::Duplicate),
            Some(held) => {
                let proof = wire::EquivocationProof {
                    first: Some(held.clone()),
                    second: Some(vote.clone()),
                };
                ballot.take_vote(&voter, scope);
                ballot.proofs.insert(voter, proof.clone());
                Ok(VoteOutcome::Equivocation(Box::new(proof)))
            }
            // Votes count against the box's byte bound too: a thousand members voting on
            // every open proposal would otherwise outgrow the state budget.
            None if !room => Err(BallotError::Full("in bytes")),
            None => {
                ballot.put_vote(voter, vote.clone(), scope);
                Ok(VoteOutcome::Counted)
            }
        }
    }

    fn keep_orphan(
        &mut self,
        vote: &wire::Vote,
        carrier: Option<MemberId>,
    ) -> Result<VoteOutcome, BallotError> {
        // Only votes delivered by their own voter wait (relayed ones come again with their
        // proposal's evidence), and each carrier has a bounded share.
        let Some(carrier) = carrier else {
            return Ok(VoteOutcome::Orphan);
        };
        if MemberId::from_public_key(&vote.vote_owner) != carrier {
            return Err(BallotError::Vote("vote was not delivered by its owner"));
        }
        // A copy waits once: a sealed vote's copy is read again (it leaves no seen mark).
        if self.orphans.iter().any(|(c, v)| *c == carrier && v == vote) {
            return Ok(VoteOutcome::Duplicate);
        }
        let held = self.orphans.iter().filter(|(c, _)| *c == carrier).count();
        if held >= MAX_ORPHANS_PER_CARRIER {
            if let Some(i) = self.orphans.iter().position(|(c, _)| *c == carrier) {
                self.orphans.remove(i);
            }
        } else if self.orphans.len() >= MAX_ORPHANS {
            self.orphans.remove(0);
        }
        self.orphans.push((carrier, vote.clone()));
        Ok(VoteOutcome::Orphan)
    }

    /// A proof of equivocation received on its own.
    pub fn add_proof(
        &mut self,
        proof: &wire::EquivocationProof,
        scope: &Scope<'_>,
    ) -> Result<bool, BallotError> {
        let id = proof
            .first
            .as_ref()
            .map(|v| v.proposal_id)
            .unwrap_or_default();
        let Some(digest) = self.ids.get(&id).copied() else {
            return Ok(false);
        };
        let Some(ballot) = self.open.get_mut(&digest) else {
            return Ok(false);
        };
        let voter = verify_proof(scope.conversation, &digest, &ballot.header, proof)?;
        if ballot.proofs.contains_key(&voter) {
            return Ok(false);
        }
        ballot.take_vote(&voter, scope);
        ballot.proofs.insert(voter, proof.clone());
        Ok(true)
    }

    /// This member's vote on an open proposal; it is counted here and returned to be sent.
    pub fn cast(
        &mut self,
        identity: &Identity,
        digest: &Digest,
        approve: bool,
        scope: &Scope<'_>,
    ) -> Result<wire::Vote, BallotError> {
        let me = identity.member_id();
        let ballot = self
            .open
            .get(digest)
            .ok_or_else(|| BallotError::NotFound("open proposal".into()))?;
        if ballot.has_voted(&me) {
            return Err(BallotError::Refused("this member already voted".into()));
        }
        let vote = new_vote(
            identity,
            scope.conversation,
            digest,
            &ballot.header,
            approve,
            scope.now_ms,
        );
        self.auto_votes.remove(digest);
        self.add_vote(&vote, Some(me), scope)?;
        Ok(vote)
    }

    /// Whether an emergency proposal is open: lower-class proposals then wait (spec
    /// "Partial Freeze Semantics").
    pub fn emergency_open(&self) -> bool {
        self.open
            .values()
            .any(|b| b.action.class() == Class::Emergency && !b.held)
    }

    /// This member's tentative result for an open proposal, with the partial freeze: while
    /// an emergency is open, a lower-class proposal is not decided by silence here (its
    /// voters may be holding their votes back).
    pub fn tentative(&self, digest: &Digest, scope: &Scope<'_>) -> Option<Tentative> {
        let b = self.open.get(digest)?;
        if b.held {
            return None;
        }
        let t = b.tentative(scope)?;
        let frozen = t.at_expiry && b.action.class() < Class::Emergency && self.emergency_open();
        (!frozen).then_some(t)
    }

    /// The open proposals this member tentatively considers decided, in ascending digest
    /// order (the order a commit resolves them in).
    pub fn decided(&self, scope: &Scope<'_>) -> Vec<(Digest, Tentative)> {
        self.open
            .keys()
            .filter_map(|d| self.tentative(d, scope).map(|t| (*d, t)))
            .collect()
    }
}
