//! Outsiders' join requests, kept by every member until an add proposal for them exists or
//! they expire, and the takeover windows that decide who proposes them.
//!
//! The leader of round 0 (the epoch steward) proposes an add as soon as it sees the request;
//! the member at position k of the epoch's leader order proposes it if, `k` takeover windows
//! after the request arrived, no add proposal for that member exists. So a sleeping epoch
//! steward blocks no join, and several members rarely propose the same one (duplicates are
//! harmless: a commit adds a member once and resolves the other adds as well). The windows do
//! not start again at each epoch: the members that saw a request may all rank low in a later
//! epoch, and the request must not expire while they wait.
//!
//! A request from a member of the group with a fresh key package, made after this member
//! entered the group, is a *re-join*: the device lost its state (`RejoinRequired`) and asks
//! to come back. The same takeover turns it into a removal of the old leaf first; once
//! that is committed the request's windows start again (everyone's would have passed, and
//! all would propose the add at once) and it is an ordinary join. A request made before the
//! member entered the group — its first join's renewal or a copy, delivered late — is not a
//! re-join: each member remembers when it applied the commit that added each later member
//! (or when it entered itself, for those before it) and ignores a current member's requests
//! made before then, clocks up to twice the allowed skew apart.
//!
//! Requests come from anyone who can publish on the welcome topic, so they are bounded in
//! number and bytes; the oldest goes first.
//!
//! A key package can welcome its member once (its private key is gone after the join), so
//! the queue also remembers, by hash, the key packages certified commits added: a request or
//! an add proposal carrying one again (a backlog read late, a replay) is refused rather than
//! committed into a member that can never arrive.

use std::collections::BTreeMap;

use crate::mls::MemberId;

/// Requests kept at most: a group of a thousand forms from one burst of requests.
pub const MAX_REQUESTS: usize = 1024;
/// Bytes of key packages kept at most: an honest key package is about 300 bytes, so a full
/// queue of them fits about three times over; larger ones (an outsider's padding) evict the
/// oldest requests. Part of the state budget (`protocol::STATE_BUDGET_BYTES`).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Spent key packages remembered at most (the oldest are forgotten first).
pub const MAX_SPENT: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    pub(crate) key_package: Vec<u8>,
    pub(crate) seen_at_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinQueue {
    pub(crate) requests: BTreeMap<MemberId, JoinRequest>,
    /// Hashes of the key packages certified commits added, oldest first.
    pub(crate) spent: Vec<[u8; 32]>,
    /// When this member entered the group: a member's join request made before then is the
    /// one that brought it in (delivered late), not a re-join.
    pub(crate) member_since_ms: u64,
    /// When this member applied the commit that added each current member that came in
    /// after it: that member's requests made before then are its first join's (a renewal or
    /// a copy delivered late), not a re-join. At most one entry per current member.
    pub(crate) admitted: BTreeMap<MemberId, u64>,
}

/// The hash a spent key package is remembered by.
pub fn key_package_hash(key_package: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(key_package).into()
}

impl JoinQueue {
    /// A certified commit added the member of this key package.
    pub fn spend(&mut self, key_package: &[u8]) {
        let h = key_package_hash(key_package);
        if !self.spent.contains(&h) {
            self.spent.push(h);
        }
        if self.spent.len() > MAX_SPENT {
            self.spent.remove(0);
        }
        self.requests.retain(|_, r| r.key_package != key_package);
    }

    /// Whether a certified commit already added the member of this key package.
    pub fn is_spent(&self, key_package: &[u8]) -> bool {
        self.spent.contains(&key_package_hash(key_package))
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    pub fn get(&self, member: &MemberId) -> Option<&JoinRequest> {
        self.requests.get(member)
    }

    /// Keeps a validated request (a newer key package of the same member replaces the older).
    /// Returns whether it is new.
    pub fn add(&mut self, member: MemberId, key_package: Vec<u8>, now_ms: u64) -> bool {
        if self.is_spent(&key_package) {
            return false;
        }
        if self
            .requests
            .get(&member)
            .is_some_and(|r| r.key_package == key_package)
        {
            return false;
        }
        self.requests.insert(
            member,
            JoinRequest {
                key_package,
                seen_at_ms: now_ms,
            },
        );
        self.bound();
        self.requests.contains_key(&member)
    }

    fn bound(&mut self) {
        let bytes = |q: &BTreeMap<MemberId, JoinRequest>| -> usize {
            q.values().map(|r| r.key_package.len()).sum()
        };
        while self.requests.len() > MAX_REQUESTS || bytes(&self.requests) > MAX_REQUEST_BYTES {
            let oldest = self
                .requests
                .iter()
                .min_by_key(|(m, r)| (r.seen_at_ms, **m))
                .map(|(m, _)| *m);
            match oldest {
                Some(m) => self.requests.remove(&m),
                None => break,
            };
        }
    }

    pub fn remove(&mut self, member: &MemberId) {
        self.requests.remove(member);
    }

    /// A certified commit this member applied at `now_ms` added `member`.
    pub fn admit(&mut self, member: MemberId, now_ms: u64) {
        self.admitted.insert(member, now_ms);
    }

    /// Keeps admission times of current members only.
    pub fn forget_admitted_unless(&mut self, is_member: impl Fn(&MemberId) -> bool) {
        self.admitted.retain(|m, _| is_member(m));
    }

    /// Whether a request by current member `member` made at `requested_at_ms` (its clock)
    /// is from before it entered the group, as this member knows it, with clocks up to
    /// `skew_ms` apart either way: its first join's, not a re-join.
    pub fn made_before_membership(
        &self,
        member: &MemberId,
        requested_at_ms: u64,
        skew_ms: u64,
    ) -> bool {
        let since = self
            .admitted
            .get(member)
            .copied()
            .unwrap_or(0)
            .max(self.member_since_ms);
        requested_at_ms <= since.saturating_add(skew_ms.saturating_mul(2))
    }

    /// Drops requests older than `timeout_ms` (their joiner gave up).
    pub fn expire(&mut self, now_ms: u64, timeout_ms: u64) {
        self.requests
            .retain(|_, r| r.seen_at_ms.saturating_add(timeout_ms) > now_ms);
    }

    /// The takeover windows of `member`'s request start again (a commit removed its old
    /// leaf: the add comes next).
    pub fn restart_windows(&mut self, member: &MemberId, now_ms: u64) {
        if let Some(r) = self.requests.get_mut(member) {
            r.seen_at_ms = now_ms;
        }
    }

    /// When this member proposes the add of a request, at position `rank` of the leader
    /// order with `window_ms` per position.
    pub fn due_at(&self, request: &JoinRequest, rank: usize, window_ms: u64) -> u64 {
        let k = u64::try_from(rank).unwrap_or(u64::MAX);
        request
            .seen_at_ms
            .saturating_add(k.saturating_mul(window_ms))
    }

    /// The requests this member must propose now, oldest first, given which members already
    /// have an add proposal.
    pub fn due(
        &self,
        now_ms: u64,
        rank: usize,
        window_ms: u64,
        proposed: impl Fn(&MemberId) -> bool,
    ) -> Vec<(MemberId, Vec<u8>)> {
        let mut due: Vec<(u64, MemberId, Vec<u8>)> = self
            .requests
            .iter()
            .filter(|(m, r)| self.due_at(r, rank, window_ms) <= now_ms && !proposed(m))
            .map(|(m, r)| (r.seen_at_ms, *m, r.key_package.clone()))
            .collect();
        due.sort();
        due.into_iter().map(|(_, m, kp)| (m, kp)).collect()
    }

    /// The next time a request not yet proposed becomes due for this member.
    pub fn next_deadline(
        &self,
        rank: usize,
        window_ms: u64,
        proposed: impl Fn(&MemberId) -> bool,
    ) -> Option<u64> {
        self.requests
            .iter()
            .filter(|(m, _)| !proposed(m))
            .map(|(_, r)| self.due_at(r, rank, window_ms))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u8) -> MemberId {
        MemberId([i; 20])
    }

    #[test]
    fn requests_are_due_by_rank_and_skipped_once_proposed() {
        let mut q = JoinQueue::default();
        assert!(q.add(id(1), vec![1; 10], 1_000));
        assert!(!q.add(id(1), vec![1; 10], 2_000), "the same request again");
        assert!(q.add(id(2), vec![2; 10], 1_500));
        // The epoch steward (rank 0) proposes at once, rank 2 after two windows.
        assert_eq!(q.due(1_500, 0, 500, |_| false).len(), 2);
        assert!(q.due(1_999, 2, 500, |_| false).is_empty());
        assert_eq!(q.due(2_000, 2, 500, |_| false), vec![(id(1), vec![1; 10])]);
        assert!(
            q.due(9_000, 2, 500, |m| *m == id(1))
                .iter()
                .all(|(m, _)| *m == id(2))
        );
        assert_eq!(q.next_deadline(2, 500, |_| false), Some(2_000));
        assert_eq!(q.next_deadline(2, 500, |m| *m == id(1)), Some(2_500));
        // A re-join whose old leaf was just removed: its windows start again.
        q.restart_windows(&id(1), 10_000);
        assert_eq!(q.due(10_999, 2, 500, |_| false), vec![(id(2), vec![2; 10])]);
        assert_eq!(q.due(10_000, 0, 500, |_| false).len(), 2);
        assert_eq!(q.next_deadline(2, 500, |m| *m == id(2)), Some(11_000));
    }

    #[test]
    fn a_key_package_a_commit_used_is_refused_and_the_memory_is_bounded() {
        let mut q = JoinQueue::default();
        assert!(q.add(id(1), vec![1; 10], 1_000));
        q.spend(&[1; 10]);
        assert!(q.is_spent(&[1; 10]) && q.get(&id(1)).is_none());
        assert!(!q.add(id(1), vec![1; 10], 2_000), "a request read late");
        assert!(q.add(id(1), vec![9; 10], 2_000), "a fresh key package");
        for i in 0..(MAX_SPENT as u32 + 5) {
            q.spend(&i.to_be_bytes());
        }
        assert_eq!(q.spent.len(), MAX_SPENT);
        assert!(!q.is_spent(&[1; 10]), "the oldest is forgotten first");
    }

    #[test]
    fn a_request_from_before_a_members_admission_is_not_a_re_join() {
        let mut q = JoinQueue {
            member_since_ms: 1_000,
            ..JoinQueue::default()
        };
        q.admit(id(2), 50_000);
        // Members from before this one: its own entry counts.
        assert!(q.made_before_membership(&id(1), 1_500, 250));
        assert!(!q.made_before_membership(&id(1), 1_501, 250));
        // A later member: the commit that added it counts.
        assert!(q.made_before_membership(&id(2), 50_500, 250));
        assert!(!q.made_before_membership(&id(2), 50_501, 250));
        q.forget_admitted_unless(|m| *m != id(2));
        assert!(!q.made_before_membership(&id(2), 1_501, 250));
    }

    #[test]
    fn a_burst_of_999_join_requests_is_kept_whole() {
        // A group of a thousand forms from 999 simultaneous requests (key packages of the
        // size witan makes, about 300 bytes; 1 KiB here).
        let mut q = JoinQueue::default();
        for i in 0..999u64 {
            let mut m = [0u8; 20];
            m[..8].copy_from_slice(&i.to_be_bytes());
            assert!(q.add(MemberId(m), vec![7; 1024], 1_000));
        }
        assert_eq!(q.len(), 999);
    }

    #[test]
    fn outsiders_cannot_grow_the_queue_without_bound() {
        let mut q = JoinQueue::default();
        for i in 0..(MAX_REQUESTS + 10) {
            let mut m = [0u8; 20];
            m[..8].copy_from_slice(&(i as u64).to_be_bytes());
            q.add(MemberId(m), vec![0; 100], i as u64);
        }
        assert_eq!(q.len(), MAX_REQUESTS);
        let mut big = JoinQueue::default();
        for i in 0..100u8 {
            big.add(id(i), vec![0; 64 * 1024], u64::from(i));
        }
        let bytes: usize = big.requests.values().map(|r| r.key_package.len()).sum();
        assert!(bytes <= MAX_REQUEST_BYTES);
        assert!(big.get(&id(99)).is_some(), "the newest is kept");
        assert!(big.get(&id(0)).is_none(), "the oldest goes first");
        big.expire(1_000, 10);
        assert!(big.is_empty());
    }
}
