//! The steward list (spec "Steward list creation", "Multi steward"): who may commit in which
//! epoch.
//!
//! The list is deterministic: eligible members sorted by
//! `SHA256(epoch ‖ retry_round ‖ member_id ‖ conversation_id)` ascending, truncated to
//! `sn_max`; when fewer than `sn_min` members are eligible it holds all of them. Index `i` of a
//! list elected in epoch `base` is the *epoch steward* of epoch `base + i`; the next entry is
//! the *backup*. A list is used up once its last steward's epoch has passed; then a new list
//! is elected by a steward-election proposal, which every member recomputes and rejects if the
//! proposed list differs. Leavers and members being removed are not eligible.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::mls::MemberId;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StewardList {
    pub stewards: Vec<MemberId>,
    /// The epoch whose epoch steward is `stewards[0]`.
    pub base_epoch: u64,
    pub retry_round: u32,
}

fn rank(epoch: u64, retry_round: u32, member: &MemberId, conversation_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(epoch.to_be_bytes());
    h.update(retry_round.to_be_bytes());
    h.update(member.as_bytes());
    h.update(conversation_id.as_bytes());
    h.finalize().into()
}

/// The deterministic list for `epoch` and `retry_round` over `eligible` members.
pub fn deterministic(
    conversation_id: &str,
    epoch: u64,
    retry_round: u32,
    eligible: &[MemberId],
    sn_min: u32,
    sn_max: u32,
) -> Vec<MemberId> {
    let mut ranked: Vec<([u8; 32], MemberId)> = eligible
        .iter()
        .map(|m| (rank(epoch, retry_round, m, conversation_id), *m))
        .collect();
    ranked.sort();
    ranked.dedup_by(|a, b| a.1 == b.1);
    let size = if ranked.len() < sn_min as usize {
        ranked.len()
    } else {
        ranked.len().min(sn_max as usize)
    };
    ranked.into_iter().take(size).map(|(_, m)| m).collect()
}

impl StewardList {
    fn index(&self, epoch: u64) -> Option<usize> {
        epoch
            .checked_sub(self.base_epoch)
            .and_then(|i| usize::try_from(i).ok())
    }

    /// The steward responsible for committing in `epoch`.
    pub fn epoch_steward(&self, epoch: u64) -> Option<MemberId> {
        self.index(epoch)
            .and_then(|i| self.stewards.get(i).copied())
    }

    /// The next in line after the epoch steward; for the last slot it wraps to the first
    /// steward, so a failing last steward still has a backup.
    pub fn backup(&self, epoch: u64) -> Option<MemberId> {
        let i = self.index(epoch)?;
        if i >= self.stewards.len() || self.stewards.len() < 2 {
            return None;
        }
        self.stewards.get((i + 1) % self.stewards.len()).copied()
    }

    /// Whether the list has no epoch steward left for `epoch`.
    pub fn exhausted(&self, epoch: u64) -> bool {
        self.epoch_steward(epoch).is_none()
    }

    pub fn contains(&self, member: &MemberId) -> bool {
        self.stewards.contains(member)
    }

    pub fn remove(&mut self, member: &MemberId) {
        // Keep the slots of the others stable: a removed steward's slot stays, held by nobody
        // who can commit, so the freeze round's backup takes over in that epoch.
        if let Some(slot) = self.stewards.iter_mut().find(|s| *s == member) {
            *slot = MemberId([0u8; 20]);
        }
    }

    /// Stewards that can still act (placeholders of removed stewards excluded).
    pub fn active(&self) -> Vec<MemberId> {
        self.stewards
            .iter()
            .copied()
            .filter(|m| m.0 != [0u8; 20])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u8) -> Vec<MemberId> {
        (1..=n).map(|i| MemberId([i; 20])).collect()
    }

    #[test]
    fn list_is_deterministic_and_order_independent() {
        let mut m = members(9);
        let a = deterministic("conv", 4, 0, &m, 3, 5);
        m.reverse();
        let b = deterministic("conv", 4, 0, &m, 3, 5);
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
    }

    #[test]
    fn list_changes_with_epoch_retry_round_and_conversation() {
        let m = members(9);
        let base = deterministic("conv", 4, 0, &m, 3, 5);
        assert_ne!(base, deterministic("conv", 5, 0, &m, 3, 5));
        assert_ne!(base, deterministic("conv", 4, 1, &m, 3, 5));
        assert_ne!(base, deterministic("other", 4, 0, &m, 3, 5));
    }

    #[test]
    fn small_groups_put_everyone_on_the_list() {
        assert_eq!(deterministic("c", 0, 0, &members(2), 3, 5).len(), 2);
        assert_eq!(deterministic("c", 0, 0, &members(3), 3, 5).len(), 3);
        assert_eq!(deterministic("c", 0, 0, &members(1), 3, 5).len(), 1);
    }

    #[test]
    fn epoch_and_backup_stewards_rotate_then_the_list_is_used_up() {
        let list = StewardList {
            stewards: members(3),
            base_epoch: 10,
            retry_round: 0,
        };
        assert_eq!(list.epoch_steward(9), None);
        assert_eq!(list.epoch_steward(10), Some(MemberId([1; 20])));
        assert_eq!(list.backup(10), Some(MemberId([2; 20])));
        assert_eq!(list.epoch_steward(11), Some(MemberId([2; 20])));
        assert_eq!(list.backup(12), Some(MemberId([1; 20])));
        assert!(!list.exhausted(12));
        assert!(list.exhausted(13));
    }

    #[test]
    fn removed_steward_keeps_its_slot_empty() {
        let mut list = StewardList {
            stewards: members(3),
            base_epoch: 0,
            retry_round: 0,
        };
        list.remove(&MemberId([2; 20]));
        assert_eq!(list.active(), vec![MemberId([1; 20]), MemberId([3; 20])]);
        assert_eq!(list.epoch_steward(2), Some(MemberId([3; 20])));
        assert!(!list.contains(&MemberId([2; 20])));
    }
}
