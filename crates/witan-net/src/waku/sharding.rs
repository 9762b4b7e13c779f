//! Which relay topic carries a witan topic: one gossipsub topic per group shard, named like
//! Waku's static shards (`/waku/2/rs/<cluster>/<shard>`).
//!
//! witan's topics are 4-segment content topics, `/witan/1/<conversation>/app` and
//! `/witan/1/<conversation>/welcome`; both topics of a conversation land on the same shard
//! (chosen by a hash of the conversation segment), so one conversation's traffic stays on
//! one relay topic while different groups spread over the shards. Any other topic is hashed
//! whole.

use sha2::{Digest, Sha256};

/// The relay topics of one deployment: a cluster id (a private one by default: the public
/// Waku network is cluster 1) and a shard count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharding {
    pub cluster: u16,
    pub shards: u16,
}

impl Default for Sharding {
    fn default() -> Self {
        Sharding {
            cluster: 66,
            shards: 8,
        }
    }
}

/// Largest shard count accepted (Waku's static sharding allows 1,024 per cluster).
pub const MAX_SHARDS: u16 = 1_024;

impl Sharding {
    /// Refuses a shard count of 0 or above [`MAX_SHARDS`].
    pub fn new(cluster: u16, shards: u16) -> Result<Sharding, String> {
        if shards == 0 || shards > MAX_SHARDS {
            return Err(format!(
                "shard count must be 1..={MAX_SHARDS}, not {shards}"
            ));
        }
        Ok(Sharding { cluster, shards })
    }

    /// The shard of a content topic.
    pub fn shard_of(&self, content_topic: &str) -> u16 {
        let key = group_segment(content_topic).unwrap_or(content_topic);
        let digest = Sha256::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(self.shards.max(1))) as u16
    }

    /// The relay (pubsub) topic of a content topic.
    pub fn pubsub_topic(&self, content_topic: &str) -> String {
        self.shard_topic(self.shard_of(content_topic))
    }

    pub fn shard_topic(&self, shard: u16) -> String {
        format!("/waku/2/rs/{}/{shard}", self.cluster)
    }

    /// Every relay topic of the cluster (what a service node serves).
    pub fn all_topics(&self) -> Vec<String> {
        (0..self.shards).map(|s| self.shard_topic(s)).collect()
    }
}

/// The conversation segment of a witan topic (`/witan/1/<this>/app`).
fn group_segment(content_topic: &str) -> Option<&str> {
    let mut parts = content_topic.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(""), Some("witan"), Some(_version), Some(group)) if !group.is_empty() => Some(group),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_topics_of_a_conversation_share_a_shard() {
        let s = Sharding::default();
        for i in 0..50 {
            let app = format!("/witan/1/{i:040x}/app");
            let welcome = format!("/witan/1/{i:040x}/welcome");
            assert_eq!(s.pubsub_topic(&app), s.pubsub_topic(&welcome));
            assert!(s.shard_of(&app) < s.shards);
        }
    }

    #[test]
    fn groups_spread_over_the_shards() {
        let s = Sharding::new(5, 4).unwrap();
        let used: std::collections::BTreeSet<u16> = (0..64)
            .map(|i| s.shard_of(&format!("/witan/1/{i:040x}/app")))
            .collect();
        assert_eq!(used.len(), 4);
        assert_eq!(s.shard_topic(3), "/waku/2/rs/5/3");
        assert_eq!(s.all_topics().len(), 4);
    }

    #[test]
    fn foreign_topics_and_bad_counts() {
        let s = Sharding::new(1, 1).unwrap();
        assert_eq!(s.pubsub_topic("anything"), "/waku/2/rs/1/0");
        assert!(Sharding::new(1, 0).is_err());
        assert!(Sharding::new(1, MAX_SHARDS + 1).is_err());
        assert_eq!(group_segment("/witan/1//app"), None);
        assert_eq!(group_segment("/other/1/x/app"), None);
    }
}
