//! What a member that joined knows of the proposals made before it: the digests of those
//! still open when the commit that added it was certified, as that commit's leader told it
//! (`ConversationSync::open_proposals`).
//!
//! A member refuses a proposal made before it joined: it cannot tell whether a commit it
//! never saw resolved it, so a replay would open it again here (F22). Those named here are
//! the exception: they were open at its join, so a member passing one on (sharing the work
//! it holds) is heard, and the newcomer can vote on it and sign the commit that resolves it.
//! Without them a proposal open across a join could only reach the newcomers in a candidate
//! of its holder, whose turn to lead may be many rounds away (F31). The names go when the
//! proposal is registered or resolved, and all of them once every proposal made before the
//! join is past the age limit.

use super::*;

/// See the module doc.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct OpenAtJoin {
    pub(crate) digests: BTreeSet<Digest>,
    /// When this member joined: the names are kept until every proposal made before then is
    /// too old to be registered.
    pub(crate) joined_at_ms: u64,
}

impl BallotBox {
    /// Keeps the digests a joiner's sync names (`sync`: 32 bytes each, checked by the wire
    /// decoder; others are skipped), at most [`MAX_OPEN`], leaving out those already resolved
    /// or registered here.
    pub fn adopt_open_at_join<'a>(
        &mut self,
        sync: impl IntoIterator<Item = &'a [u8]>,
        now_ms: u64,
    ) {
        let digests: BTreeSet<Digest> = sync
            .into_iter()
            .filter_map(|d| Digest::try_from(d).ok())
            .filter(|d| !self.resolved.contains_key(d) && !self.open.contains_key(d))
            .take(MAX_OPEN)
            .collect();
        if !digests.is_empty() {
            self.prune_at.lower(now_ms);
        }
        self.open_at_join = OpenAtJoin {
            digests,
            joined_at_ms: now_ms,
        };
    }

    /// Whether the proposal `digest` was open when this member joined.
    pub fn was_open_at_join(&self, digest: &Digest) -> bool {
        self.open_at_join.digests.contains(digest)
    }

    /// The proposals open here, for the sync of a commit that adds members (applied, so the
    /// ones it resolved are closed): those registered, then those this member was told were
    /// open at its own join and has not seen since; at most [`MAX_OPEN`].
    pub fn open_for_joiners(&self) -> Vec<Vec<u8>> {
        self.open
            .keys()
            .chain(self.open_at_join.digests.iter())
            .take(MAX_OPEN)
            .map(|d| d.to_vec())
            .collect()
    }

    /// The proposal is registered or resolved here: its name is no longer needed.
    pub(crate) fn forget_open_at_join(&mut self, digest: &Digest) {
        self.open_at_join.digests.remove(digest);
    }

    /// Forgets the names once every proposal made before the join is past the age limit.
    pub(crate) fn prune_open_at_join(&mut self, now_ms: u64) -> bool {
        let j = &mut self.open_at_join;
        if j.digests.is_empty() || j.joined_at_ms.saturating_add(MAX_PROPOSAL_AGE_MS) >= now_ms {
            return false;
        }
        j.digests.clear();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(b: &BallotBox) -> Vec<Digest> {
        b.open_at_join.digests.iter().copied().collect()
    }

    #[test]
    fn a_joiner_keeps_the_names_it_was_given_except_those_it_knows_resolved() {
        let mut b = BallotBox::default();
        b.resolved.insert(
            [2; 32],
            Resolved {
                id: 1,
                created_at_ms: 5,
            },
        );
        let sync = [vec![1u8; 32], vec![2; 32], vec![3; 31]];
        b.adopt_open_at_join(sync.iter().map(Vec::as_slice), 1_000);
        assert_eq!(names(&b), vec![[1; 32]]);
        assert!(b.was_open_at_join(&[1; 32]));
        assert!(!b.was_open_at_join(&[2; 32]));
        b.forget_open_at_join(&[1; 32]);
        assert!(!b.was_open_at_join(&[1; 32]));
    }

    #[test]
    fn names_are_bounded_and_passed_on_until_resolved() {
        let mut b = BallotBox::default();
        let many: Vec<Vec<u8>> = (0..MAX_OPEN + 10)
            .map(|i| {
                let mut d = vec![0u8; 32];
                d[..8].copy_from_slice(&(i as u64).to_be_bytes());
                d
            })
            .collect();
        b.adopt_open_at_join(many.iter().map(Vec::as_slice), 0);
        assert_eq!(b.open_at_join.digests.len(), MAX_OPEN);
        let first = many[0].as_slice().try_into().unwrap_or([0; 32]);
        assert_eq!(b.open_for_joiners().len(), MAX_OPEN);
        b.close(&first, 1, 0);
        let passed = b.open_for_joiners();
        assert_eq!(passed.len(), MAX_OPEN - 1);
        assert!(!passed.contains(&many[0]));
        assert_eq!(passed[0], many[1]);
    }

    #[test]
    fn names_go_once_every_proposal_made_before_the_join_is_too_old() {
        let mut b = BallotBox::default();
        b.adopt_open_at_join([[7u8; 32].as_slice()], 1_000);
        assert!(!b.prune_open_at_join(1_000 + MAX_PROPOSAL_AGE_MS));
        assert!(b.was_open_at_join(&[7; 32]));
        assert!(b.prune(1_001 + MAX_PROPOSAL_AGE_MS));
        assert!(!b.was_open_at_join(&[7; 32]));
    }
}
