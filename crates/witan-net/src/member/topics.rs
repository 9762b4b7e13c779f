//! What a member's network task and its host share: the content topics witan asked for (the
//! filter live traffic passes through), grouped by relay topic, and a few counters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use libp2p::Multiaddr;

use crate::waku::sharding::Sharding;

#[derive(Debug)]
pub(crate) struct Shared {
    sharding: Sharding,
    /// Content topic -> its relay topic.
    topics: Mutex<BTreeMap<String, String>>,
    listen: Mutex<Vec<Multiaddr>>,
    pub connected_peers: AtomicUsize,
    /// Live packets were dropped (queue full, or the client refused them): the next
    /// catch-up brings them from the store.
    pub missed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here is left half-updated by a panic: plain inserts and removals.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(sharding: Sharding) -> Shared {
        Shared {
            sharding,
            topics: Mutex::default(),
            listen: Mutex::default(),
            connected_peers: AtomicUsize::new(0),
            missed: AtomicBool::new(false),
        }
    }

    pub fn sharding(&self) -> Sharding {
        self.sharding
    }

    /// Adds a content topic; returns its relay topic if this is the first content topic on
    /// it (the relay topic must then be joined).
    pub fn add(&self, content_topic: &str) -> Option<String> {
        let pubsub = self.sharding.pubsub_topic(content_topic);
        let mut topics = lock(&self.topics);
        let first = !topics.values().any(|p| *p == pubsub);
        topics.insert(content_topic.to_string(), pubsub.clone());
        first.then_some(pubsub)
    }

    /// Removes a content topic; returns its relay topic if no content topic is left on it
    /// (the relay topic may then be left).
    pub fn remove(&self, content_topic: &str) -> Option<String> {
        let mut topics = lock(&self.topics);
        let pubsub = topics.remove(content_topic)?;
        let last = !topics.values().any(|p| *p == pubsub);
        last.then_some(pubsub)
    }

    pub fn wants(&self, content_topic: &str) -> bool {
        lock(&self.topics).contains_key(content_topic)
    }

    /// Relay topic -> its content topics.
    pub fn by_relay_topic(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (content, pubsub) in lock(&self.topics).iter() {
            out.entry(pubsub.clone())
                .or_default()
                .insert(content.clone());
        }
        out
    }

    pub fn set_listen(&self, addresses: Vec<Multiaddr>) {
        *lock(&self.listen) = addresses;
    }

    pub fn add_listen(&self, address: Multiaddr) {
        let mut listen = lock(&self.listen);
        if !listen.contains(&address) {
            listen.push(address);
        }
    }

    pub fn listen(&self) -> Vec<Multiaddr> {
        lock(&self.listen).clone()
    }

    pub fn connected(&self) -> usize {
        self.connected_peers.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_topic_is_joined_with_its_first_content_topic_and_left_with_its_last() {
        let shared = Shared::new(Sharding::new(1, 1).unwrap());
        assert_eq!(
            shared.add("/witan/1/a/app").as_deref(),
            Some("/waku/2/rs/1/0")
        );
        assert_eq!(shared.add("/witan/1/a/welcome"), None);
        assert!(shared.wants("/witan/1/a/app"));
        assert!(!shared.wants("/witan/1/b/app"));
        assert_eq!(shared.by_relay_topic()["/waku/2/rs/1/0"].len(), 2);
        assert_eq!(shared.remove("/witan/1/a/app"), None);
        assert_eq!(shared.remove("/witan/1/b/app"), None);
        assert_eq!(
            shared.remove("/witan/1/a/welcome").as_deref(),
            Some("/waku/2/rs/1/0")
        );
        assert!(shared.by_relay_topic().is_empty());
    }
}
