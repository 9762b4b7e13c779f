//! A property test of the commit round in a small model: 4 to 7 members, up to f of them
//! byzantine, random message schedules (delays, reordering, loss, duplication, timeouts at
//! random moments), members that disagree on which values are valid, and a byzantine
//! adversary that signs anything, equivocates as leader, and forms every polka the honest
//! prevotes allow. The property: for no two different values could a certificate ever form
//! in one epoch — whatever the byzantine members do with their own signatures.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const CONV: &str = "model";
const EPOCH: u64 = 1;

type Msg = (usize, usize, wire::group_payload::Content); // (from, to, content)

struct Model {
    ids: Vec<Identity>,
    members: Vec<MemberId>,
    signers: Signers,
    byzantine: BTreeSet<usize>,
    nodes: BTreeMap<usize, CommitRound>,
    /// Which values (by their commit byte) each honest member finds valid.
    valid: BTreeMap<(usize, u8), bool>,
    net: Vec<Msg>,
    now: u64,
    /// Every prevote and precommit an honest member signed: (kind, round, digest) → signers.
    honest_votes: BTreeMap<(u8, u32, Vec<u8>), BTreeSet<usize>>,
    /// Candidates by digest.
    values: BTreeMap<Vec<u8>, wire::Candidate>,
    certified: BTreeSet<Vec<u8>>,
    timing: Timing,
}

impl Model {
    fn new(rng: &mut Rng) -> Model {
        let n = 4 + rng.below(4) as usize;
        let ids: Vec<Identity> = (0..n)
            .map(|i| Identity::from_secret(&[i as u8 + 1; 32]).unwrap())
            .collect();
        let members: Vec<MemberId> = ids.iter().map(Identity::member_id).collect();
        let signers = ids
            .iter()
            .map(|i| (i.public_key(), i.member_id()))
            .collect();
        let mut byzantine = BTreeSet::new();
        let f = max_faulty(n);
        while byzantine.len() < f {
            byzantine.insert(rng.below(n as u64) as usize);
        }
        let nodes = (0..n)
            .filter(|i| !byzantine.contains(i))
            .map(|i| (i, CommitRound::new(EPOCH)))
            .collect();
        let mut valid = BTreeMap::new();
        for i in 0..n {
            for v in 95..=115u8 {
                valid.insert((i, v), rng.chance(85));
            }
        }
        Model {
            ids,
            members,
            signers,
            byzantine,
            nodes,
            valid,
            net: Vec::new(),
            now: 1_000,
            honest_votes: BTreeMap::new(),
            values: BTreeMap::new(),
            certified: BTreeSet::new(),
            timing: Timing {
                first_round_ms: 100,
                round_ms: 40,
                commit_delay_ms: 5,
                collect_ms: 5,
            },
        }
    }

    fn ctx(&self, i: usize) -> RoundCtx<'_> {
        RoundCtx {
            conversation: CONV,
            epoch: EPOCH,
            identity: &self.ids[i],
            leaders: &self.members,
            signers: &self.signers,
            now_ms: self.now,
            timing: self.timing,
        }
    }

    fn n(&self) -> usize {
        self.members.len()
    }

    fn candidate(&mut self, value: u8, round: u32, proposer: usize) -> wire::Candidate {
        let c = wire::Candidate {
            epoch: EPOCH,
            round,
            proposer: self.members[proposer].as_bytes().to_vec(),
            commit: vec![value],
            ..wire::Candidate::default()
        };
        let d = wire::candidate_digest(CONV, &c);
        self.values.entry(d.to_vec()).or_insert_with(|| c.clone());
        c
    }

    fn is_valid(&self, i: usize, c: &wire::Candidate) -> bool {
        let v = c.commit.first().copied().unwrap_or(0);
        self.valid.get(&(i, v)).copied().unwrap_or(false)
    }

    fn broadcast(&mut self, from: usize, content: wire::group_payload::Content) {
        for to in 0..self.n() {
            if to != from {
                self.net.push((from, to, content.clone()));
            }
        }
    }

    fn run_effects(&mut self, i: usize, effects: Vec<RoundEffect>) {
        use wire::group_payload::Content;
        let mut queue = effects;
        while !queue.is_empty() {
            let mut next = Vec::new();
            for e in std::mem::take(&mut queue) {
                match e {
                    RoundEffect::SendVote { to, content } => {
                        let (kind, content) = match content {
                            wire::sealed_payload::Content::Prevote(v) => (1u8, Content::Prevote(v)),
                            wire::sealed_payload::Content::Precommit(v) => {
                                (2u8, Content::Precommit(v))
                            }
                            wire::sealed_payload::Content::Vote(_) => continue,
                        };
                        let (Content::Prevote(v) | Content::Precommit(v)) = &content else {
                            continue;
                        };
                        self.honest_votes
                            .entry((kind, v.round, v.digest.clone()))
                            .or_default()
                            .insert(i);
                        let to = self.members.iter().position(|m| *m == to).unwrap();
                        self.net.push((i, to, content));
                    }
                    RoundEffect::Polka(p) => self.broadcast(i, Content::Polka(p)),
                    RoundEffect::Certified(c) => self.note_certificate(i, c),
                    RoundEffect::NewRound { to, message } => match to {
                        Some(to) => {
                            let to = self.members.iter().position(|m| *m == to).unwrap();
                            self.net.push((i, to, Content::NewRound(message)));
                        }
                        None => self.broadcast(i, Content::NewRound(message)),
                    },
                    RoundEffect::Propose { round, value } => {
                        let built = value.is_none();
                        let mut c = match value {
                            Some((c, pol)) => wire::Candidate { pol, ..c },
                            None => self.candidate(100 + i as u8 % 8, round, i),
                        };
                        c.round = round;
                        c.proposer = self.members[i].as_bytes().to_vec();
                        self.broadcast(i, Content::Candidate(c.clone()));
                        next.extend(
                            self.with_node(i, |node, ctx| node.proposed(c, built, true, ctx)),
                        );
                    }
                    RoundEffect::Consider(c) => {
                        let valid = self.is_valid(i, &c);
                        next.extend(
                            self.with_node(i, |node, ctx| node.on_candidate(c, valid, ctx)),
                        );
                    }
                }
            }
            queue = next;
        }
    }

    fn with_node(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut CommitRound, &RoundCtx<'_>) -> Vec<RoundEffect>,
    ) -> Vec<RoundEffect> {
        let mut node = std::mem::take(self.nodes.get_mut(&i).unwrap());
        let out = f(&mut node, &self.ctx(i));
        *self.nodes.get_mut(&i).unwrap() = node;
        out
    }

    fn note_certificate(&mut self, i: usize, c: wire::CertifiedCommit) {
        let node = self.nodes.get(&i).unwrap();
        let d = node
            .verify_certificate(&c, &self.ctx(i))
            .expect("an honest certificate verifies");
        self.certified.insert(d.to_vec());
        self.broadcast(i, wire::group_payload::Content::Certified(c));
    }

    fn deliver(&mut self, (from, to, content): Msg) {
        use wire::group_payload::Content;
        if self.byzantine.contains(&to) || !self.nodes.contains_key(&to) {
            return;
        }
        let sender = self.members[from];
        let effects = match content {
            Content::Candidate(c) => {
                let ctx = self.ctx(to);
                if ctx.leader(c.round) != Some(sender) {
                    return;
                }
                let valid = self.is_valid(to, &c);
                self.with_node(to, |node, ctx| match node.placement(c.round) {
                    std::cmp::Ordering::Equal => node.on_candidate(c, valid, ctx),
                    _ => node.hold(c),
                })
            }
            Content::Prevote(v) => self.with_node(to, |node, ctx| node.on_prevote(v, ctx)),
            Content::Precommit(v) => self.with_node(to, |node, ctx| node.on_precommit(v, ctx)),
            Content::Polka(p) => {
                let valid = self
                    .values
                    .get(&p.digest)
                    .is_some_and(|c| self.is_valid(to, c));
                self.with_node(to, |node, ctx| node.on_polka(p, valid, ctx))
            }
            Content::NewRound(m) => {
                self.with_node(to, |node, ctx| node.on_new_round(sender, m, ctx))
            }
            Content::Certified(c) => {
                let ok = self.nodes[&to].verify_certificate(&c, &self.ctx(to));
                if let Ok(d) = ok {
                    self.certified.insert(d.to_vec());
                }
                Vec::new()
            }
            _ => Vec::new(),
        };
        self.run_effects(to, effects);
    }

    /// The byzantine members' move: anything their keys can sign.
    fn byzantine_move(&mut self, rng: &mut Rng) {
        use wire::group_payload::Content;
        let Some(&b) = self
            .byzantine
            .iter()
            .nth(rng.below(self.byzantine.len().max(1) as u64) as usize)
        else {
            return;
        };
        // Where the honest members are: the adversary acts in their rounds.
        let honest: Vec<u32> = self.nodes.values().map(CommitRound::round).collect();
        let round = honest[rng.below(honest.len() as u64) as usize] + rng.below(2) as u32;
        let value = rng.below(4) as u8 + 100;
        match rng.below(4) {
            0 if self.ctx(b).leader(round) == Some(self.members[b]) => {
                // Equivocate: a different value to each member, some with a forged pol.
                for to in 0..self.n() {
                    let mut c = self.candidate(value + to as u8 % 2, round, b);
                    c.pol = self.formable_polka(rng, round, None);
                    self.net.push((b, to, Content::Candidate(c)));
                }
            }
            1 => {
                let exact = rng.chance(50).then_some(round);
                if let Some(p) = self.formable_polka(rng, round + 1, exact) {
                    let c = self.values.get(&p.digest).cloned();
                    for to in 0..self.n() {
                        if rng.chance(50) {
                            self.net.push((b, to, Content::Polka(p.clone())));
                            if let Some(c) = c.clone() {
                                let m = wire::NewRound {
                                    epoch: EPOCH,
                                    round: round + 1,
                                    lock: Some(p.clone()),
                                    locked: Some(c),
                                };
                                self.net.push((b, to, Content::NewRound(m)));
                            }
                        }
                    }
                }
            }
            _ => {
                let digests: Vec<Vec<u8>> = self.values.keys().cloned().collect();
                if digests.is_empty() {
                    return;
                }
                let d = &digests[rng.below(digests.len() as u64) as usize];
                let digest: Digest = d.as_slice().try_into().unwrap();
                let kind = if rng.chance(50) {
                    RoundVoteKind::Prevote
                } else {
                    RoundVoteKind::Precommit
                };
                let v = sign(&self.ids[b], kind, CONV, EPOCH, round, Some(&digest));
                let to = self
                    .ctx(b)
                    .leader(round)
                    .and_then(|l| self.members.iter().position(|m| *m == l))
                    .unwrap();
                let content = match kind {
                    RoundVoteKind::Prevote => Content::Prevote(v),
                    RoundVoteKind::Precommit => Content::Precommit(v),
                };
                self.net.push((b, to, content));
            }
        }
    }

    /// A polka of a round before `before` (of exactly `round` if given) that the honest
    /// prevotes plus every byzantine signature allow, if any.
    fn formable_polka(
        &mut self,
        rng: &mut Rng,
        before: u32,
        round: Option<u32>,
    ) -> Option<wire::Polka> {
        let q = quorum(self.n());
        let options: Vec<(u32, Vec<u8>, BTreeSet<usize>)> = self
            .honest_votes
            .iter()
            .filter(|((k, r, _), s)| {
                *k == 1
                    && *r < before
                    && round.is_none_or(|x| x == *r)
                    && s.len() + self.byzantine.len() >= q
            })
            .map(|((_, r, d), s)| (*r, d.clone(), s.clone()))
            .collect();
        if options.is_empty() {
            return None;
        }
        let (round, d, honest) = options[rng.below(options.len() as u64) as usize].clone();
        let digest: Digest = d.as_slice().try_into().ok()?;
        let signers = honest.iter().chain(self.byzantine.iter());
        let signatures = signers
            .map(|&i| {
                let v = sign(
                    &self.ids[i],
                    RoundVoteKind::Prevote,
                    CONV,
                    EPOCH,
                    round,
                    Some(&digest),
                );
                wire::RoundSignature {
                    voter_key: v.voter_key,
                    signature: v.signature,
                }
            })
            .take(q.max(1) + 1)
            .collect();
        Some(wire::Polka {
            epoch: EPOCH,
            round,
            digest: d,
            signatures,
        })
    }

    fn step(&mut self, rng: &mut Rng) {
        match rng.below(10) {
            0..=5 if !self.net.is_empty() => {
                let k = rng.below(self.net.len() as u64) as usize;
                let msg = self.net.swap_remove(k);
                if rng.chance(5) {
                    return; // lost
                }
                if rng.chance(5) {
                    self.net.push(msg.clone()); // duplicated
                }
                self.deliver(msg);
            }
            6 if !self.byzantine.is_empty() => self.byzantine_move(rng),
            _ => {
                // Time passes; a random honest member notices its deadlines.
                self.now += 1 + rng.below(60);
                let honest: Vec<usize> = self.nodes.keys().copied().collect();
                let i = honest[rng.below(honest.len() as u64) as usize];
                let effects = self.with_node(i, |node, ctx| {
                    node.note_work(ctx);
                    node.poll(ctx)
                });
                self.run_effects(i, effects);
            }
        }
    }

    /// The digests for which some round's honest precommits plus every byzantine signature
    /// reach a quorum: what a certificate could be formed for.
    fn certifiable(&self) -> BTreeSet<Vec<u8>> {
        let q = quorum(self.n());
        self.honest_votes
            .iter()
            .filter(|((k, _, _), s)| *k == 2 && s.len() + self.byzantine.len() >= q)
            .map(|((_, _, d), _)| d.clone())
            .collect()
    }
}

#[test]
fn two_certificates_for_one_epoch_never_form_under_any_schedule() {
    let mut progressed = 0;
    for seed in 0..160u64 {
        let mut rng = Rng(seed.wrapping_mul(0x5851_f42d_4c95_7f2d) ^ 0xabcdef);
        let mut model = Model::new(&mut rng);
        for _ in 0..1_500 {
            model.step(&mut rng);
            let certifiable = model.certifiable();
            assert!(
                certifiable.len() <= 1,
                "seed {seed}: values {} could both be certified (n = {}, byzantine {:?})",
                certifiable.len(),
                model.n(),
                model.byzantine
            );
            assert!(model.certified.is_subset(&certifiable) || model.certified.len() <= 1);
        }
        if !model.certified.is_empty() {
            progressed += 1;
        }
    }
    // The schedules are hostile but not hopeless: many runs certify something.
    assert!(progressed > 20, "only {progressed} runs certified a value");
}
