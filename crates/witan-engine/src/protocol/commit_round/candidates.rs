//! The candidates a member keeps besides its current round's: held for later rounds (a few
//! rounds ahead at most), remembered for earlier ones (for their polkas), bounded in number
//! and bytes so that a leader of several rounds cannot fill the state.

use super::*;

/// Candidates kept per epoch at most (one per round and leader; older rounds go first).
pub(crate) const MAX_CANDIDATES: usize = 32;
/// Bytes of candidates kept besides the current round's (held for later rounds, remembered
/// for earlier ones): a leader of several rounds cannot fill the state with packet-sized
/// candidates (`keep`). The whole state is decoded on every step, also in a notification
/// extension (`protocol::STATE_BUDGET_BYTES`); an honest candidate (removals, a batch of
/// adds) is far smaller.
pub const MAX_KEPT_CANDIDATE_BYTES: usize = 1024 * 1024;
/// Largest candidate a member accepts (encoded), in a candidate packet, a lock or a
/// certified commit: a leader builds none larger (`conversation::candidate`), and the
/// current round's candidate, the lock and the newest archived commit each fit in it.
pub const MAX_CANDIDATE_BYTES: usize = 2 * 1024 * 1024;

impl CommitRound {
    /// Where a candidate for `round` belongs: the current round, a later one (held), or a past
    /// one (remembered, for polkas of that round).
    pub fn placement(&self, round: u32) -> std::cmp::Ordering {
        round.cmp(&self.round)
    }

    /// Keeps a candidate of another round (the first one of its round only).
    pub fn hold(&mut self, c: wire::Candidate) -> Vec<RoundEffect> {
        if c.round > self.round.saturating_add(MAX_ROUNDS_AHEAD) {
            return Vec::new();
        }
        self.keep(c);
        Vec::new()
    }

    /// Keeps a candidate (the first of its round), within the bounds: at most
    /// `MAX_CANDIDATES`, and `MAX_KEPT_CANDIDATE_BYTES` besides the current round's. Over the
    /// byte bound, earlier rounds go first (oldest first), then later ones (farthest first),
    /// so a nearer round's candidate displaces a farther one's; rounds this member formed a
    /// polka in stay. A locked value is kept with its lock, and one dropped here only costs
    /// the round it was for.
    pub(super) fn keep(&mut self, c: wire::Candidate) {
        self.candidates.insert_first(c);
        while self.candidates.len() > MAX_CANDIDATES {
            if let Some((r, _)) = self.candidates.pop_first() {
                self.digests.0.remove(&r);
            }
        }
        let current = self.round;
        let spare = |r: &u32| *r != current && !self.polka_sent.contains(r);
        let mut bytes: usize = self
            .candidates
            .iter()
            .filter(|(r, _)| spare(r))
            .map(|(_, c)| prost::Message::encoded_len(c))
            .sum();
        let mut order: Vec<u32> = self
            .candidates
            .keys()
            .copied()
            .filter(|r| *r < current)
            .collect();
        order.extend(
            self.candidates
                .keys()
                .copied()
                .filter(|r| *r > current)
                .rev(),
        );
        let mut drop = Vec::new();
        for r in order {
            if bytes <= MAX_KEPT_CANDIDATE_BYTES {
                break;
            }
            if !spare(&r) {
                continue;
            }
            if let Some(c) = self.candidates.get(&r) {
                bytes = bytes.saturating_sub(prost::Message::encoded_len(c));
                drop.push(r);
            }
        }
        for r in drop {
            self.candidates.remove(&r);
            self.digests.0.remove(&r);
        }
    }

    /// The digest of the candidate kept for `round`, computed once while it is kept (a
    /// leader compares every prevote and precommit it collects with it: hashing the whole
    /// candidate, which carries every vote as evidence, for each was O(n²) for the leader).
    pub(super) fn digest_at(&mut self, round: u32, ctx: &RoundCtx<'_>) -> Option<Digest> {
        let c = self.candidates.get(&round)?;
        if let Some(d) = self.digests.0.get(&round) {
            debug_assert_eq!(*d, digest_of(ctx, c), "remembered candidate digest");
            return Some(*d);
        }
        let d = digest_of(ctx, c);
        self.digests.0.insert(round, d);
        Some(d)
    }
}

/// The digests of the kept candidates, by round. A round's candidate is never replaced while
/// it is kept (`keep` keeps the first), and its digest is forgotten when it goes, so a
/// remembered digest is always its candidate's. Never stored; two rounds compare equal
/// whatever their memos hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct DigestMemo(BTreeMap<u32, Digest>);

impl PartialEq for DigestMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The candidates kept this epoch, by round, and whether they changed since they were last
/// stored. Each carries every vote it resolves, so they are the bulk of a round's state in a
/// large group: they are stored apart from the rest of the round and written when they
/// change, not at every prevote, polka or precommit. Every change goes through a method
/// here, so the mark cannot be missed; reads go through `Deref`.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    by_round: BTreeMap<u32, wire::Candidate>,
    changed: bool,
}

/// Two rounds compare by their candidates, whatever was stored of them.
impl PartialEq for Candidates {
    fn eq(&self, other: &Self) -> bool {
        self.by_round == other.by_round
    }
}

impl std::ops::Deref for Candidates {
    type Target = BTreeMap<u32, wire::Candidate>;
    fn deref(&self) -> &Self::Target {
        &self.by_round
    }
}

impl Candidates {
    /// Candidates as read from the store: nothing to write.
    pub(crate) fn stored(by_round: BTreeMap<u32, wire::Candidate>) -> Self {
        Candidates {
            by_round,
            changed: false,
        }
    }

    /// Whether they changed since they were stored (or since [`Candidates::saved`]).
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// They were written as they are.
    pub(crate) fn saved(&mut self) {
        self.changed = false;
    }

    /// They are to be written even if unchanged: a new round replaces what was stored.
    pub(crate) fn mark_changed(&mut self) {
        self.changed = true;
    }

    /// Keeps `c` unless its round has a candidate already.
    pub(crate) fn insert_first(&mut self, c: wire::Candidate) {
        if let std::collections::btree_map::Entry::Vacant(e) = self.by_round.entry(c.round) {
            e.insert(c);
            self.changed = true;
        }
    }

    /// Keeps `c` for `round`, replacing what was kept (tests build rounds with it).
    #[cfg(test)]
    pub(crate) fn insert(&mut self, round: u32, c: wire::Candidate) {
        self.by_round.insert(round, c);
        self.changed = true;
    }

    pub(crate) fn pop_first(&mut self) -> Option<(u32, wire::Candidate)> {
        let first = self.by_round.pop_first();
        self.changed |= first.is_some();
        first
    }

    pub(crate) fn remove(&mut self, round: &u32) -> Option<wire::Candidate> {
        let gone = self.by_round.remove(round);
        self.changed |= gone.is_some();
        gone
    }

    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        self.changed |= !self.by_round.is_empty();
        self.by_round.clear();
    }
}
