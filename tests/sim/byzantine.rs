//! Byzantine members: packets crafted with the member's own keys and MLS state.
//!
//! A byzantine member runs an ordinary `WitanClient` (so it follows the group) whose own
//! traffic may be swallowed (a *silent* member). On top of it the simulator crafts packets
//! from the member's database — a second connection beside the client's, exactly as another
//! process would — with `witan::wire`, `witan::mls` and `witan::protocol`, and the identity
//! secret it passed in `ClientConfig`:
//! - a candidate for the current round whose resolution nobody voted for, with a broken
//!   commit (*bogus*), whether or not it leads the round;
//! - old votes and proposals sent again (*replay*), each vote also sealed (as honest members
//!   send votes), once as it was and once with its choice flipped in its owner's name;
//! - two different, individually valid candidates for one round, each sent to a different
//!   part of the group (*equivocation*; only when it leads the round and has work decided).
//!
//! Encrypting advances the member's sender ratchet, so the crafting step persists its MLS
//! writes (including the commits it created and discarded) but never the engine state.

use witan::mls::{Group, Identity, MemberId, MlsProvider};
use witan::protocol::ballot_box::{Action, ProposalContext, new_proposal, parse_payload};
use witan::protocol::{Conversation, State};
use witan::store::{Database, StoreOptions};
use witan::wire::{self, group_payload::Content};

use super::world::CONV;

/// What the member's state offers for crafting.
pub struct Crafted {
    pub packets: Vec<Vec<u8>>,
    pub epoch: u64,
    pub round: u32,
}

type Builder<'b> = dyn FnOnce(&Conversation, &mut Group, &MlsProvider, &Identity) -> Result<Vec<Content>, String>
    + 'b;

/// Loads the member's group beside its engine state `conv` (read through the client just
/// before), lets `build` produce payloads, encrypts each as the member and persists the MLS
/// writes. `None` when the member is not in the group.
pub fn craft(
    path: &str,
    secret: &[u8; 32],
    conv: &Conversation,
    build: Box<Builder<'_>>,
) -> Result<Option<Crafted>, String> {
    if !conv.is_member_state() || conv.rejoin_required() {
        return Ok(None);
    }
    let identity = Identity::from_secret(secret).map_err(|e| e.to_string())?;
    let mut db = Database::open(path, &StoreOptions::default()).map_err(|e| e.to_string())?;
    let step = db.step().map_err(|e| e.to_string())?;
    let provider = MlsProvider::new(&step);
    let Some(mut group) = Group::load(&provider, CONV.as_bytes()).map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let contents = build(conv, &mut group, &provider, &identity)?;
    let mut packets = Vec::new();
    for content in &contents {
        if let Content::Vote(v) = content {
            packets.extend(sealed_votes(conv, &group, &provider, &identity, v)?);
        }
    }
    for content in contents {
        let plaintext = prost::Message::encode_to_vec(&wire::GroupPayload {
            content: Some(content),
        });
        let ct = group
            .encrypt(&provider, &identity, &plaintext)
            .map_err(|e| e.to_string())?;
        let env = wire::Envelope::new(
            CONV,
            identity.member_id().as_bytes(),
            wire::PacketKind::Group,
            ct,
        );
        packets.push(wire::encode(&env));
    }
    let changes = provider.storage().take_changes();
    drop(provider);
    step.apply_mls_changes(&changes)
        .map_err(|e| e.to_string())?;
    step.commit().map_err(|e| e.to_string())?;
    Ok(Some(Crafted {
        packets,
        epoch: conv.epoch(),
        round: conv.commit_round().round(),
    }))
}

/// `v` sealed with the member's current epoch key, as honest members send votes: once as it
/// is (with its proposal's digest when the member holds the proposal, else a wrong one) and
/// once with its choice flipped, which breaks its owner's signature.
fn sealed_votes(
    conv: &Conversation,
    group: &Group,
    provider: &MlsProvider,
    identity: &Identity,
    v: &wire::Vote,
) -> Result<Vec<Vec<u8>>, String> {
    let digest = conv
        .ballots()
        .open()
        .find(|b| b.header().proposal_id == v.proposal_id)
        .map(|b| wire::proposal_digest(CONV, b.header()).to_vec())
        .unwrap_or_else(|| vec![0x77; 32]);
    let mut flipped = v.clone();
    flipped.vote = !flipped.vote;
    let key = group.seal_key(provider).map_err(|e| e.to_string())?;
    let mut packets = Vec::new();
    for vote in [v.clone(), flipped] {
        let payload =
            wire::SealedPayload::new(wire::sealed_payload::Content::Vote(wire::SignedVote {
                proposal_digest: digest.clone(),
                vote: Some(vote),
            }));
        let plaintext = prost::Message::encode_to_vec(&payload);
        let sealed =
            witan::mls::seal::seal(provider, &key, CONV, &plaintext).map_err(|e| e.to_string())?;
        let env = wire::Envelope::new(
            CONV,
            identity.member_id().as_bytes(),
            wire::PacketKind::Sealed,
            wire::encode(&sealed),
        );
        packets.push(wire::encode(&env));
    }
    Ok(packets)
}

/// A candidate for the current round whose only resolution approves a removal with nothing
/// but its owner's vote, and whose commit is garbage.
pub fn bogus_candidate(victim_pick: u64, now_ms: u64) -> Box<Builder<'static>> {
    Box::new(move |conv, _group, _provider, identity| {
        let me = identity.member_id();
        // Sorted: the MLS leaf order depends on the order of a commit's adds, which follows
        // proposal digests over random key-package bytes.
        let mut others: Vec<MemberId> = conv.members().into_iter().filter(|m| *m != me).collect();
        others.sort();
        let Some(victim) = others
            .get(victim_pick as usize % others.len().max(1))
            .copied()
        else {
            return Ok(Vec::new());
        };
        let cx = ProposalContext {
            conversation: CONV,
            epoch: conv.epoch(),
            members: conv.members().len(),
            now_ms,
            settings: conv.settings(),
        };
        let p = new_proposal(identity, &Action::Remove { member: victim }, &cx);
        Ok(vec![Content::Candidate(wire::Candidate {
            epoch: conv.epoch(),
            round: conv.commit_round().round(),
            proposer: me.as_bytes().to_vec(),
            commit: vec![0xde, 0xad, 0xbe, 0xef],
            welcome: Default::default(),
            resolutions: vec![wire::Resolution {
                proposal: Some(p),
                approved: true,
                ..wire::Resolution::default()
            }],
            pol: None,
        })])
    })
}

/// Votes and proposal headers the member holds now (to replay much later).
pub fn harvest(conv: &Conversation) -> (Vec<wire::Vote>, Vec<wire::Proposal>) {
    // Ballots come in digest order, and an add's digest hashes a key package (random bytes):
    // taken in that order, the pool — and so what is replayed — would differ between runs
    // of one seed. Everything in `replay_order` is fixed by the seed.
    let mut ballots: Vec<_> = conv.ballots().open().collect();
    ballots.sort_by_cached_key(|b| replay_order(b.header()));
    let mut votes = Vec::new();
    let mut proposals = Vec::new();
    for b in ballots {
        let mut signed: Vec<wire::Vote> = b.signed_votes().cloned().collect();
        signed.sort_by(|x, y| {
            (x.timestamp, &x.vote_owner, x.vote_id, x.vote).cmp(&(
                y.timestamp,
                &y.vote_owner,
                y.vote_id,
                y.vote,
            ))
        });
        votes.extend(signed);
        proposals.push(b.header().clone());
    }
    (votes, proposals)
}

/// A proposal's place in a pool: when and by whom it was made, and on whom (member ids are
/// fixed per seed), never its digest.
fn replay_order(p: &wire::Proposal) -> (u64, Vec<u8>, String, Option<(MemberId, u64)>) {
    let about = parse_payload(p)
        .ok()
        .map(|(action, epoch)| (action.target(), epoch));
    (p.timestamp, p.proposal_owner.clone(), p.name.clone(), about)
}

/// Votes and proposals a byzantine member harvested from its own state over time.
#[derive(Clone, Default)]
pub struct Pool {
    pub votes: Vec<wire::Vote>,
    pub proposals: Vec<wire::Proposal>,
}

/// Counts only: the trace shows a member's `Byz`, and an add's bytes differ between runs.
impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pool({} votes, {} proposals)",
            self.votes.len(),
            self.proposals.len()
        )
    }
}

/// Sends old votes again (relayed in a bundle, so they count through their signatures, or
/// directly as if they were the member's own) and old proposals again (as if they were new),
/// then adds what the member holds now to the pool.
pub fn replay<'b>(pool: &'b mut Pool, picks: [u64; 3]) -> Box<Builder<'b>> {
    Box::new(move |conv, _group, _provider, _identity| {
        let mut out = Vec::new();
        if !pool.votes.is_empty() {
            let n = pool.votes.len() as u64;
            let start = (picks[0] % n) as usize;
            let votes: Vec<wire::Vote> = pool.votes.iter().skip(start).take(6).cloned().collect();
            out.push(Content::Vote(votes[0].clone()));
            out.push(Content::Votes(wire::VoteBundle { votes }));
        }
        if !pool.proposals.is_empty() {
            let i = (picks[1] % pool.proposals.len() as u64) as usize;
            out.push(Content::Proposal(pool.proposals[i].clone()));
        }
        if picks[2].is_multiple_of(2) {
            let (votes, proposals) = harvest(conv);
            pool.votes.extend(votes);
            pool.proposals.extend(proposals);
            let excess = pool.votes.len().saturating_sub(256);
            pool.votes.drain(..excess);
            let excess = pool.proposals.len().saturating_sub(64);
            pool.proposals.drain(..excess);
        }
        Ok(out)
    })
}

/// Whether the member leads the current round and has work decided.
pub fn can_equivocate(conv: &Conversation, me: MemberId, now_ms: u64) -> bool {
    let round = conv.commit_round().round();
    let leaders = conv.leaders();
    conv.state() != State::Left
        && !leaders.is_empty()
        && leaders[round as usize % leaders.len()] == me
        && !conv.resolutions_at(now_ms).is_empty()
}

/// Two candidates for the current round over the same resolutions with different MLS
/// commits.
pub fn equivocation(now_ms: u64) -> Box<Builder<'static>> {
    Box::new(move |conv, group, provider, identity| {
        let me = identity.member_id();
        if !can_equivocate(conv, me, now_ms) {
            return Ok(Vec::new());
        }
        let members = conv.members();
        let mut resolutions = conv.resolutions_at(now_ms);
        let mut adds: Vec<Vec<u8>> = Vec::new();
        let mut added: Vec<MemberId> = Vec::new();
        let mut removes: Vec<MemberId> = Vec::new();
        resolutions.retain(|r| {
            let Some((action, _)) = r.proposal.as_ref().and_then(|p| parse_payload(p).ok()) else {
                return false;
            };
            !(r.approved && action.removes() == Some(me))
        });
        for r in &resolutions {
            let Some((action, _)) = r.proposal.as_ref().and_then(|p| parse_payload(p).ok()) else {
                continue;
            };
            if !r.approved {
                continue;
            }
            match action {
                Action::Add {
                    member,
                    key_package,
                } => {
                    if !members.contains(&member) && !added.contains(&member) {
                        added.push(member);
                        adds.push(key_package);
                    }
                }
                other => {
                    if let Some(m) = other.removes()
                        && members.contains(&m)
                        && !removes.contains(&m)
                    {
                        removes.push(m);
                    }
                }
            }
        }
        if resolutions.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for _ in 0..2 {
            let commit = group
                .create_commit(provider, identity, &adds, &removes)
                .map_err(|e| e.to_string())?;
            group
                .clear_pending_commit(provider)
                .map_err(|e| e.to_string())?;
            out.push(Content::Candidate(wire::Candidate {
                epoch: conv.epoch(),
                round: conv.commit_round().round(),
                proposer: me.as_bytes().to_vec(),
                commit: commit.commit,
                welcome: commit.welcome.unwrap_or_default().into(),
                resolutions: resolutions.clone(),
                pol: None,
            }));
        }
        Ok(out)
    })
}

/// The byzantine-member family's attacks (issue #17), each one that survived as a regression
/// test in `tests/malicious_member.rs` or `tests/hostile_traffic.rs`.
#[derive(Clone, Copy, Debug)]
pub enum Attack {
    /// A candidate whose only resolution is a removal "decided" by its proposer's vote,
    /// claiming one voter and an epoch far ahead, with a real MLS commit when the member
    /// holds no pending commit of its own.
    ForgedEvidence,
    /// A removal proposal with a voting window or silent-voter rule of its own, or sent
    /// already expired.
    CraftedWindow,
    /// Copies of one of its chats whose unauthenticated MLS framing claims later epochs.
    FutureEpochs,
    /// A candidate with a garbage commit (see [`bogus_candidate`]).
    GarbageCandidate,
}

impl Attack {
    pub fn pick(r: u64) -> Attack {
        match r % 4 {
            0 => Attack::ForgedEvidence,
            1 => Attack::CraftedWindow,
            2 => Attack::FutureEpochs,
            _ => Attack::GarbageCandidate,
        }
    }
}

fn victim_of(conv: &Conversation, me: MemberId, pick: u64) -> Option<MemberId> {
    let mut others: Vec<MemberId> = conv.members().into_iter().filter(|m| *m != me).collect();
    others.sort();
    others.get(pick as usize % others.len().max(1)).copied()
}

/// See [`Attack::ForgedEvidence`].
pub fn forged_evidence(victim_pick: u64, now_ms: u64) -> Box<Builder<'static>> {
    Box::new(move |conv, group, provider, identity| {
        let me = identity.member_id();
        let Some(victim) = victim_of(conv, me, victim_pick) else {
            return Ok(Vec::new());
        };
        let cx = ProposalContext {
            conversation: CONV,
            epoch: conv.epoch() + 1000,
            members: 1,
            now_ms,
            settings: conv.settings(),
        };
        let p = new_proposal(identity, &Action::Remove { member: victim }, &cx);
        // A real commit only when it would not discard the member's own pending one.
        let commit = if group.has_pending_commit() {
            vec![0xba, 0xd0]
        } else {
            let c = group
                .create_commit(provider, identity, &[], &[victim])
                .map_err(|e| e.to_string())?;
            group
                .clear_pending_commit(provider)
                .map_err(|e| e.to_string())?;
            c.commit
        };
        Ok(vec![Content::Candidate(wire::Candidate {
            epoch: conv.epoch(),
            round: conv.commit_round().round(),
            proposer: me.as_bytes().to_vec(),
            commit,
            welcome: Default::default(),
            resolutions: vec![wire::Resolution {
                proposal: Some(p),
                approved: true,
                ..wire::Resolution::default()
            }],
            pol: None,
        })])
    })
}

/// See [`Attack::CraftedWindow`]: `picks[0]` chooses the victim, `picks[1]` the trick.
pub fn crafted_window(picks: [u64; 2], now_ms: u64) -> Box<Builder<'static>> {
    Box::new(move |conv, _group, _provider, identity| {
        let Some(victim) = victim_of(conv, identity.member_id(), picks[0]) else {
            return Ok(Vec::new());
        };
        let group_rules = conv.settings().clone();
        let t = group_rules.vote_timeout_ms;
        let (rules, at) = match picks[1] % 4 {
            0 => (
                witan::protocol::Settings {
                    vote_timeout_ms: 1,
                    ..group_rules
                },
                now_ms,
            ),
            1 => (
                witan::protocol::Settings {
                    vote_timeout_ms: t.saturating_mul(1_000),
                    ..group_rules
                },
                now_ms,
            ),
            2 => (
                witan::protocol::Settings {
                    liveness_criteria_yes: !group_rules.liveness_criteria_yes,
                    ..group_rules
                },
                now_ms,
            ),
            _ => (group_rules, now_ms.saturating_sub(2 * t)),
        };
        let cx = ProposalContext {
            conversation: CONV,
            epoch: conv.epoch(),
            members: conv.members().len(),
            now_ms: at,
            settings: &rules,
        };
        let p = new_proposal(identity, &Action::Remove { member: victim }, &cx);
        Ok(vec![Content::Proposal(p)])
    })
}

/// One chat of the member, never sent, to copy in [`future_epochs`].
pub fn template_chat(pick: u64, now_ms: u64) -> Box<Builder<'static>> {
    Box::new(move |_conv, _group, _provider, _identity| {
        let mut message_id = vec![0xfe; 8];
        message_id.extend_from_slice(&pick.to_be_bytes());
        Ok(vec![Content::Chat(wire::Chat {
            message_id,
            body: b"never sent".to_vec(),
            sent_at_ms: now_ms,
        })])
    })
}

/// `count` copies of `packet` (a group packet of the member) claiming epochs from `first`
/// on, re-wrapped so their packet ids are valid: what anyone who knows the conversation id
/// can make.
pub fn future_epochs(packet: &[u8], first: u64, count: u64) -> Vec<Vec<u8>> {
    let Ok(env) = wire::decode_envelope(packet) else {
        return Vec::new();
    };
    // MlsMessage: version (2) and wire format (2), the group id (a one-byte length: the
    // conversation id is shorter than 64 bytes), then the 8-byte big-endian epoch.
    let at = 4 + 1 + CONV.len();
    if env.body.len() < at + 8 {
        return Vec::new();
    }
    (0..count)
        .map(|k| {
            let mut body = env.body.to_vec();
            body[at..at + 8].copy_from_slice(&first.saturating_add(k).to_be_bytes());
            wire::encode(&wire::Envelope::new(
                CONV,
                env.sender.clone(),
                wire::PacketKind::Group,
                body,
            ))
        })
        .collect()
}
