//! The ballot box's upkeep: what changes with time and epochs rather than with a received
//! proposal or vote — automatic votes scheduled, own proposals held behind an emergency,
//! relays, the memory of resolved proposals and its bounds, moot proposals and departed
//! voters forgotten at a new epoch, and the box's next deadline.

use super::*;

/// The earliest time at which [`BallotBox::prune`] can find something too old: derived from
/// the box's contents, so it takes no part in equality (a box read back starts at zero and
/// scans once). Pruning is asked for after every packet; this keeps it from walking a
/// thousand resolved proposals each time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PruneAt(u64);

impl PruneAt {
    /// An entry created at `created_ms` arrived: it is too old after its age limit.
    pub(crate) fn lower(&mut self, created_ms: u64) {
        self.0 = self.0.min(created_ms.saturating_add(MAX_PROPOSAL_AGE_MS));
    }
}

impl PartialEq for PruneAt {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl BallotBox {
    /// Schedules (or cancels, with `None`) this member's automatic vote.
    pub fn schedule_auto_vote(&mut self, digest: Digest, at: Option<u64>) {
        match at {
            Some(at) => self.auto_votes.insert(digest, at),
            None => self.auto_votes.remove(&digest),
        };
    }

    /// Holds this member's own proposal back (registered, not sent).
    pub fn hold(&mut self, digest: &Digest) {
        if let Some(b) = self.open.get_mut(digest) {
            b.held = true;
        }
    }

    /// This member's held proposals, to send now that no emergency is open.
    pub fn release_held(&mut self) -> Vec<wire::Proposal> {
        if self.emergency_open() {
            return Vec::new();
        }
        self.open
            .values_mut()
            .filter(|b| b.held)
            .map(|b| {
                b.held = false;
                b.header.clone()
            })
            .collect()
    }

    /// A resolution certified: the proposal is closed and remembered.
    pub fn close(&mut self, digest: &Digest, id: u64, created_at_ms: u64) {
        self.drop_open(digest);
        self.forget_open_at_join(digest);
        self.prune_at.lower(created_at_ms);
        self.resolved
            .insert(*digest, Resolved { id, created_at_ms });
        while self.resolved.len() > MAX_RESOLVED {
            let oldest = self
                .resolved
                .iter()
                .min_by_key(|(_, r)| r.created_at_ms)
                .map(|(d, r)| (*d, r.created_at_ms));
            let Some((d, created)) = oldest else { break };
            self.resolved.remove(&d);
            self.floor_ms = self.floor_ms.max(created);
        }
    }

    /// Forgets what is too old to matter: open proposals and resolved ids past the age
    /// limit (such proposals are refused anyway). Returns whether anything went.
    pub fn prune(&mut self, now_ms: u64) -> bool {
        if now_ms <= self.prune_at.0 {
            return false;
        }
        let too_old = |created: u64| created.saturating_add(MAX_PROPOSAL_AGE_MS) < now_ms;
        let stale: Vec<Digest> = self
            .open
            .iter()
            .filter(|(_, b)| too_old(b.created_at_ms))
            .map(|(d, _)| *d)
            .collect();
        let resolved = self.resolved.len();
        let any = !stale.is_empty();
        for d in stale {
            self.drop_open(&d);
        }
        self.resolved.retain(|_, r| !too_old(r.created_at_ms));
        let names = self.prune_open_at_join(now_ms);
        let joined =
            (!self.open_at_join.digests.is_empty()).then_some(self.open_at_join.joined_at_ms);
        let oldest = (self.open.values().map(|b| b.created_at_ms))
            .chain(self.resolved.values().map(|r| r.created_at_ms))
            .chain(joined)
            .min();
        self.prune_at = PruneAt(u64::MAX);
        if let Some(created) = oldest {
            self.prune_at.lower(created);
        }
        any || names || self.resolved.len() != resolved
    }

    /// Forgets the open proposals a new epoch made moot (see [`Action::is_moot`]), and the
    /// adds of key packages already `spent` (a certified commit added their member once):
    /// they are not resolved (only a certified commit resolves), so one that stops being moot
    /// — its member removed again — may arrive and be decided again. Members learn a
    /// proposal at different epochs, so what is moot here may not be elsewhere. Returns how
    /// many went.
    pub fn forget_moot(
        &mut self,
        members: &BTreeSet<MemberId>,
        spent: impl Fn(&[u8]) -> bool,
    ) -> usize {
        let moot: Vec<Digest> = self
            .open
            .values()
            .filter(|b| {
                b.action.is_moot(members)
                    || matches!(&b.action, Action::Add { key_package, .. } if spent(key_package))
            })
            .map(|b| b.digest)
            .collect();
        for d in &moot {
            self.drop_open(d);
        }
        moot.len()
    }

    /// Votes of voters that are no longer members do not count; they are dropped.
    pub fn forget_voters(&mut self, members: &BTreeSet<MemberId>) {
        for b in self.open.values_mut() {
            let gone: Vec<MemberId> = (b.votes.keys())
                .filter(|m| !members.contains(m) && **m != b.owner)
                .copied()
                .collect();
            for m in &gone {
                b.votes.remove(m);
                b.rows.take(m);
            }
            b.counted.forget();
        }
        self.orphans.retain(|(c, _)| members.contains(c));
    }

    /// Takes an open proposal out of the box (its id and automatic vote with it).
    fn drop_open(&mut self, digest: &Digest) {
        if let Some(b) = self.open.remove(digest) {
            self.ids.remove(&b.id);
            self.dropped.some.insert(*digest);
        }
        self.auto_votes.remove(digest);
    }

    /// Marks a proposal's votes relayed; returns them (to re-broadcast) if not done before
    /// and its window is still open.
    pub fn take_relay(&mut self, digest: &Digest, now_ms: u64) -> Option<Vec<wire::Vote>> {
        let b = self.open.get_mut(digest)?;
        if b.relayed {
            return None;
        }
        b.relayed = true;
        (now_ms < b.expires_at_ms).then(|| b.votes.values().cloned().collect())
    }

    /// The dispatcher looked for decided proposals at `now_ms`. The mark moves only when a
    /// voting window closed since the last one (nothing else depends on it), so a step that
    /// changed nothing here leaves the box unchanged. Returns whether it moved.
    pub fn mark_checked(&mut self, now_ms: u64, settings: &Settings) -> bool {
        let closed = self.open.values().any(|b| {
            let at = b.silence_at(settings);
            at > self.checked_at_ms && at <= now_ms
        });
        if closed {
            self.checked_at_ms = now_ms;
        }
        closed
    }

    /// The earliest time something here changes by itself: an automatic vote, a relay, or a
    /// voting window closing after the dispatcher last looked.
    pub fn next_deadline(&self, me: &MemberId, settings: &Settings) -> Option<u64> {
        let mut next: Option<u64> = self.auto_votes.values().min().copied();
        let mut consider = |at: u64| next = Some(next.map_or(at, |n| n.min(at)));
        for b in self.open.values() {
            if !b.relayed && b.has_voted(me) && !b.held {
                consider(b.relay_at());
            }
            let silence = b.silence_at(settings);
            if silence > self.checked_at_ms {
                consider(silence);
            }
        }
        next
    }
}
