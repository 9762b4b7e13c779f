//! The steward schedule: the steward list, the order in which members lead the commit rounds
//! of an epoch, and how the list is renewed — all derived from certified state, so every
//! member of an epoch computes the same.
//!
//! Slot `i` of a list renewed in epoch `base` belongs to the *epoch steward* of epoch
//! `base + i`; the next slot's steward is its *backup*. The leader order of epoch E is the
//! list from E's slot on (epoch steward first, backup second, …), then the stewards before it,
//! then every other member ranked by `SHA256(domain ‖ conversation ‖ E ‖ seed ‖ member)`: round r of
//! epoch E is led by `order[r mod n]`. A steward that left, or led a round that failed, loses
//! its slot (the slot stays, empty, so the others keep theirs).
//!
//! When an epoch begins and the list is *used up* — its slot is past the list's end, or no
//! slot from it on is held any more (their stewards left or fell silent) — or the group is no
//! larger than `steward_list_min` and not every member is on the list, the list is renewed:
//! members sorted by `SHA256(domain ‖ conversation ‖ E ‖ seed ‖ member)` (the spec's inputs and the
//! epoch's seed), those
//! *demoted* (a certified commit penalised them, for instance for a round they led and did
//! not commit: a sleeping phone) after all the others, the first `steward_list_max` of them
//! (all of them below `steward_list_min`). A used-up list is replaced without waiting for
//! other work, so silent stewards are never chosen again while awake members remain. A list every member
//! derives from certified state needs no vote (a deviation from the spec's voted
//! elections). The epoch's *seed* ([`epoch_seed`]) is a hash of what the certified commit that
//! opened it resolved: a joiner cannot know it when it picks its keys, so it cannot grind a
//! rank (audit M7); it holds none of OpenMLS's random bytes, so one simulator seed still
//! replays one run. A group's first epoch has an empty seed.

use sha2::{Digest as _, Sha256};

use crate::mls::MemberId;
use crate::protocol::ballot_box::parse_payload;
use crate::protocol::settings::Settings;
use witan_wire as wire;

const LEADER_RANK_DOMAIN: &[u8] = b"witan/leader-rank/v1";
const STEWARD_RANK_DOMAIN: &[u8] = b"witan/steward-rank/v1";
const EPOCH_SEED_DOMAIN: &[u8] = b"witan/epoch-seed/v1";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StewardSchedule {
    /// One slot per epoch from `base_epoch` on; `None` once its steward lost it.
    pub(crate) slots: Vec<Option<MemberId>>,
    pub(crate) base_epoch: u64,
}

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// The seed of the epoch a certified commit opens: a hash of what it resolved — for each
/// proposal its owner, its times (set by its owner's clock), what it asks and about whom, and
/// its outcome. Every member and joiner of the epoch reads the same commit; nobody can know
/// it before those proposals are made and the leader chose them, so a joiner cannot grind
/// keys for a rank. It leaves out the bytes OpenMLS draws at random (key packages, and the
/// ids and signatures that cover them, and the digest order they set), so a simulator run
/// stays a function of its seed.
pub fn epoch_seed(resolutions: &[wire::Resolution]) -> Vec<u8> {
    let mut entries: Vec<Vec<u8>> = resolutions
        .iter()
        .filter_map(|r| {
            let p = r.proposal.as_ref()?;
            let mut e = p.proposal_owner.clone();
            e.extend(p.timestamp.to_be_bytes());
            e.extend(p.expiration_timestamp.to_be_bytes());
            if let Ok((action, _)) = parse_payload(p) {
                e.push(action.kind() as u8);
                e.extend(action.target().as_bytes());
            }
            e.extend([u8::from(r.approved), u8::from(r.dropped)]);
            Some(e)
        })
        .collect();
    entries.sort();
    let mut h = Sha256::new();
    h.update(EPOCH_SEED_DOMAIN);
    for e in entries {
        h.update((e.len() as u64).to_be_bytes());
        h.update(e);
    }
    h.finalize().to_vec()
}

/// The renewed list for epoch `epoch` (see the module doc).
pub fn derive(
    conversation: &str,
    epoch: u64,
    members: &[MemberId],
    settings: &Settings,
) -> Vec<MemberId> {
    derive_demoting(conversation, epoch, &[], members, &[], settings)
}

/// The renewed list for epoch `epoch` with its `seed`, the `demoted` members ranked after
/// all the others.
pub fn derive_demoting(
    conversation: &str,
    epoch: u64,
    seed: &[u8],
    members: &[MemberId],
    demoted: &[MemberId],
    settings: &Settings,
) -> Vec<MemberId> {
    let mut ranked: Vec<(bool, [u8; 32], MemberId)> = members
        .iter()
        .map(|m| {
            let rank = hash(&[
                STEWARD_RANK_DOMAIN,
                conversation.as_bytes(),
                &epoch.to_be_bytes(),
                seed,
                m.as_bytes(),
            ]);
            (demoted.contains(m), rank, *m)
        })
        .collect();
    ranked.sort();
    ranked.dedup_by(|a, b| a.2 == b.2);
    let size = if ranked.len() < settings.steward_list_min as usize {
        ranked.len()
    } else {
        ranked.len().min(settings.steward_list_max as usize)
    };
    ranked.into_iter().take(size).map(|(_, _, m)| m).collect()
}

impl StewardSchedule {
    /// The list of a new group: its creator, from epoch 0.
    pub fn founding(creator: MemberId) -> Self {
        StewardSchedule {
            slots: vec![Some(creator)],
            base_epoch: 0,
        }
    }

    /// A list as a joiner receives it.
    pub fn from_parts(stewards: Vec<MemberId>, base_epoch: u64) -> Self {
        StewardSchedule {
            slots: stewards.into_iter().map(Some).collect(),
            base_epoch,
        }
    }

    pub fn base_epoch(&self) -> u64 {
        self.base_epoch
    }

    /// The slots in order, empty ones included.
    pub fn slots(&self) -> &[Option<MemberId>] {
        &self.slots
    }

    fn index(&self, epoch: u64) -> Option<usize> {
        epoch
            .checked_sub(self.base_epoch)
            .and_then(|i| usize::try_from(i).ok())
    }

    /// The steward responsible for committing in `epoch` (the leader of its round 0).
    pub fn epoch_steward(&self, epoch: u64) -> Option<MemberId> {
        self.index(epoch)
            .and_then(|i| self.slots.get(i).copied().flatten())
    }

    /// Whether the list has no slot left for `epoch`.
    pub fn exhausted(&self, epoch: u64) -> bool {
        self.index(epoch).is_none_or(|i| i >= self.slots.len())
    }

    /// Whether no slot from `epoch`'s on is held: the list cannot give `epoch` or any later
    /// epoch a steward.
    pub fn used_up(&self, epoch: u64) -> bool {
        self.index(epoch)
            .and_then(|i| self.slots.get(i..))
            .is_none_or(|rest| rest.iter().all(Option::is_none))
    }

    /// Stewards that still hold a slot, in slot order.
    pub fn active(&self) -> Vec<MemberId> {
        self.slots.iter().flatten().copied().collect()
    }

    pub fn contains(&self, member: &MemberId) -> bool {
        self.slots.contains(&Some(*member))
    }

    /// Empties the slot of `member` (it left, or led a round that failed).
    pub fn drop_member(&mut self, member: &MemberId) {
        for slot in &mut self.slots {
            if slot.as_ref() == Some(member) {
                *slot = None;
            }
        }
    }

    /// The order in which members lead the rounds of `epoch`, whose seed is `seed` (see the
    /// module doc).
    pub fn leader_order(
        &self,
        conversation: &str,
        epoch: u64,
        seed: &[u8],
        members: &[MemberId],
    ) -> Vec<MemberId> {
        let mut order: Vec<MemberId> = Vec::with_capacity(members.len());
        if let Some(k) = self.index(epoch).filter(|k| *k < self.slots.len()) {
            let (before, from) = self.slots.split_at(k);
            for s in from.iter().chain(before).flatten() {
                if members.contains(s) && !order.contains(s) {
                    order.push(*s);
                }
            }
        }
        let mut rest: Vec<([u8; 32], MemberId)> = members
            .iter()
            .filter(|m| !order.contains(m))
            .map(|m| {
                let rank = hash(&[
                    LEADER_RANK_DOMAIN,
                    conversation.as_bytes(),
                    &epoch.to_be_bytes(),
                    seed,
                    m.as_bytes(),
                ]);
                (rank, *m)
            })
            .collect();
        rest.sort();
        order.extend(rest.into_iter().map(|(_, m)| m));
        order.dedup();
        order
    }

    /// An epoch begins (certified): members that left lose their slots, and the list is
    /// renewed if it is used up, `demoted` members ranked last (see the module doc). Returns
    /// whether the list changed.
    pub fn on_epoch(
        &mut self,
        conversation: &str,
        epoch: u64,
        seed: &[u8],
        members: &[MemberId],
        demoted: &[MemberId],
        settings: &Settings,
    ) -> bool {
        let before = self.clone();
        for slot in &mut self.slots {
            if slot.is_some_and(|s| !members.contains(&s)) {
                *slot = None;
            }
        }
        let small = members.len() <= settings.steward_list_min as usize;
        let all_on_list = members.iter().all(|m| self.contains(m));
        if self.used_up(epoch) || (small && !all_on_list) {
            let list = derive_demoting(conversation, epoch, seed, members, demoted, settings);
            *self = StewardSchedule::from_parts(list, epoch);
        }
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u8) -> Vec<MemberId> {
        (1..=n).map(|i| MemberId([i; 20])).collect()
    }

    fn settings(min: u32, max: u32) -> Settings {
        Settings {
            steward_list_min: min,
            steward_list_max: max,
            ..Settings::default()
        }
    }

    #[test]
    fn a_renewed_list_is_deterministic_and_changes_with_epoch_and_conversation() {
        let mut m = members(9);
        let s = settings(3, 5);
        let a = derive("conv", 4, &m, &s);
        m.reverse();
        assert_eq!(derive("conv", 4, &m, &s), a);
        assert_eq!(a.len(), 5);
        assert_ne!(derive("conv", 5, &m, &s), a);
        assert_ne!(derive("other", 4, &m, &s), a);
        assert_eq!(derive("c", 0, &members(2), &s).len(), 2);
    }

    #[test]
    fn the_leader_order_starts_at_the_epoch_steward_and_covers_everyone_once() {
        let m = members(7);
        let list = StewardSchedule::from_parts(vec![m[2], m[4], m[0]], 10);
        let order = list.leader_order("c", 11, &[], &m);
        assert_eq!(&order[..3], &[m[4], m[0], m[2]]);
        assert_eq!(order.len(), 7);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, m);
        assert_eq!(list.epoch_steward(11), Some(m[4]));
        // Past the list: ranked members only.
        let past = list.leader_order("c", 13, &[], &m);
        assert_eq!(past.len(), 7);
        assert_eq!(past, list.leader_order("c", 13, &[], &m));
    }

    #[test]
    fn a_dropped_steward_keeps_its_slot_empty_and_is_skipped() {
        let m = members(5);
        let mut list = StewardSchedule::from_parts(vec![m[0], m[1], m[2]], 0);
        list.drop_member(&m[1]);
        assert_eq!(list.epoch_steward(1), None);
        assert_eq!(list.epoch_steward(2), Some(m[2]));
        assert!(!list.exhausted(1));
        let order = list.leader_order("c", 1, &[], &m);
        assert_eq!(&order[..2], &[m[2], m[0]]);
        assert_eq!(order.len(), 5);
    }

    #[test]
    fn the_list_is_renewed_when_used_up_or_when_a_small_group_grows() {
        let m = members(7);
        let s = settings(3, 3);
        let mut list = StewardSchedule::from_parts(vec![m[0], m[1], m[2]], 0);
        assert!(!list.on_epoch("c", 2, &[], &m, &[], &s));
        assert!(list.on_epoch("c", 3, &[], &m, &[], &s));
        assert_eq!(list.base_epoch(), 3);
        assert_eq!(list.active(), derive("c", 3, &m, &s));
        // A group of two grows to three: everyone becomes a steward.
        let mut small = StewardSchedule::from_parts(vec![m[0], m[1]], 0);
        assert!(small.on_epoch("c", 1, &[], &m[..3], &[], &s));
        assert_eq!(small.active().len(), 3);
        // Members that left lose their slots.
        let mut list = StewardSchedule::from_parts(vec![m[0], m[1], m[2]], 0);
        let without: Vec<MemberId> = m.iter().copied().filter(|x| *x != m[1]).collect();
        assert!(list.on_epoch("c", 0, &[], &without, &[], &s));
        assert!(!list.contains(&m[1]));
    }

    #[test]
    fn a_list_whose_remaining_slots_were_all_lost_is_renewed_without_the_demoted() {
        let m = members(7);
        let s = settings(2, 2);
        let mut list = StewardSchedule::from_parts(vec![m[0], m[1]], 4);
        // Both stewards led rounds that failed: their slots are empty but not past the end.
        list.drop_member(&m[0]);
        list.drop_member(&m[1]);
        assert!(!list.exhausted(5) && list.used_up(5));
        let demoted = [m[0], m[1]];
        assert!(list.on_epoch("c", 5, &[], &m, &demoted, &s));
        assert_eq!(list.base_epoch(), 5);
        assert_eq!(list.active().len(), 2);
        assert!(list.active().iter().all(|x| !demoted.contains(x)));
        assert_eq!(list.epoch_steward(5), list.active().first().copied());
        // A list with a held slot ahead is kept; demoted members still serve when nobody else
        // is left.
        let mut held = StewardSchedule::from_parts(vec![m[0], m[1]], 4);
        held.drop_member(&m[0]);
        assert!(!held.used_up(4) && !held.on_epoch("c", 4, &[], &m, &[], &s));
        let all_demoted = derive_demoting("c", 9, &[], &m[..2], &m[..2], &s);
        assert_eq!(all_demoted.len(), 2);
    }

    #[test]
    fn the_epoch_seed_changes_the_ranking() {
        let m = members(9);
        let list = StewardSchedule::from_parts(vec![], 0);
        let a = list.leader_order("c", 3, &[], &m);
        let b = list.leader_order("c", 3, &epoch_seed(&[]), &m);
        assert_ne!(a, b);
        let s = settings(3, 5);
        assert_ne!(
            derive_demoting("c", 3, &[], &m, &[], &s),
            derive_demoting("c", 3, &[1], &m, &[], &s)
        );
    }
}
