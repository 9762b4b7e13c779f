//! The fake network: a topic router that members' transports publish into, FIFO, with the
//! subscriptions each member asked for. It only queues; *when* and *to whom* a packet is
//! handed is the world's business (or the simulator's), so that each user can deliver its
//! own way — in order, in rounds, late, twice or never.
//!
//! What differs between users plugs in here:
//! - a member's [`Mode`]: publishing normally, swallowing what it publishes (a crashed or
//!   silent member, a sealed fixture), or refusing (a dying process: packets stay in the
//!   client's outbox);
//! - a [`Tap`] that sees every packet as it is published (counters, a recording, a label).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use witan::client::{OutboundPacket, Transport, TransportError};

/// One published packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The publishing member (`usize::MAX` when the sender is unknown, as for a remote).
    pub from: usize,
    pub topic: String,
    pub payload: Vec<u8>,
    /// A label a [`Tap`] may attach (what the publisher was doing); empty otherwise.
    pub phase: &'static str,
}

impl Packet {
    pub fn new(from: usize, topic: String, payload: Vec<u8>) -> Packet {
        Packet {
            from,
            topic,
            payload,
            phase: "",
        }
    }
}

/// Sees every packet a member publishes, before it is queued (the bench counts and labels
/// them here; a fixture records them).
pub trait Tap: Send + Sync {
    fn published(&self, packet: &mut Packet);
}

/// Poisoning only means another thread panicked mid-test; the data is still what it was.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The topic router shared by every member's transport and the world.
#[derive(Default)]
pub struct Network {
    queue: Mutex<VecDeque<Packet>>,
    subs: Mutex<BTreeMap<usize, BTreeSet<String>>>,
    tap: Option<Arc<dyn Tap>>,
}

impl Network {
    /// A network whose publications pass through `tap`.
    pub fn with_tap(tap: Arc<dyn Tap>) -> Network {
        Network {
            tap: Some(tap),
            ..Network::default()
        }
    }

    /// Queues a packet as if `packet.from` published it (the tap sees it too).
    pub fn publish(&self, mut packet: Packet) {
        if let Some(tap) = &self.tap {
            tap.published(&mut packet);
        }
        lock(&self.queue).push_back(packet);
    }

    /// Queues a packet without showing it to the tap (a remote's packets, re-routed ones).
    pub fn inject(&self, packet: Packet) {
        lock(&self.queue).push_back(packet);
    }

    /// The oldest packet in flight.
    pub fn pop(&self) -> Option<Packet> {
        lock(&self.queue).pop_front()
    }

    /// Every packet in flight, oldest first.
    pub fn take_all(&self) -> Vec<Packet> {
        lock(&self.queue).drain(..).collect()
    }

    /// Drops everything in flight.
    pub fn clear(&self) {
        lock(&self.queue).clear();
    }

    pub fn in_flight(&self) -> usize {
        lock(&self.queue).len()
    }

    /// The last packet published, if any is still in flight.
    pub fn last(&self) -> Option<Packet> {
        lock(&self.queue).back().cloned()
    }

    pub fn subscribe(&self, member: usize, topic: String) {
        lock(&self.subs).entry(member).or_default().insert(topic);
    }

    pub fn unsubscribe(&self, member: usize, topic: &str) {
        lock(&self.subs).entry(member).or_default().remove(topic);
    }

    pub fn is_subscribed(&self, member: usize, topic: &str) -> bool {
        lock(&self.subs)
            .get(&member)
            .is_some_and(|t| t.contains(topic))
    }

    /// Member `member`'s topics.
    pub fn topics(&self, member: usize) -> BTreeSet<String> {
        lock(&self.subs).get(&member).cloned().unwrap_or_default()
    }

    /// Every member's topics, at once.
    pub fn subscriptions(&self) -> BTreeMap<usize, BTreeSet<String>> {
        lock(&self.subs).clone()
    }

    /// The members subscribed to `topic`, in index order.
    pub fn subscribers(&self, topic: &str) -> Vec<usize> {
        lock(&self.subs)
            .iter()
            .filter(|(_, t)| t.contains(topic))
            .map(|(m, _)| *m)
            .collect()
    }
}

/// How a member's transport treats what the member publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Normal = MODE_NORMAL,
    /// Publishes are accepted and thrown away (a crashed or silent member).
    Swallow = MODE_SWALLOW,
    /// Every publish fails: the packets stay in the client's outbox (a dying process, a
    /// transport that is down).
    Refuse = MODE_REFUSE,
}

pub const MODE_NORMAL: u8 = 0;
pub const MODE_REFUSE: u8 = 1;
pub const MODE_SWALLOW: u8 = 2;

/// One member's transport. It outlives the member's client, so a client reopened from its
/// file gets the same subscriptions and mode.
pub struct MemberTransport {
    /// The network its packets go to.
    pub sink: Arc<Network>,
    pub member: usize,
    /// A [`Mode`] as its `u8`.
    pub mode: AtomicU8,
}

impl MemberTransport {
    pub fn new(sink: Arc<Network>, member: usize) -> MemberTransport {
        MemberTransport {
            sink,
            member,
            mode: AtomicU8::new(MODE_NORMAL),
        }
    }

    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            MODE_REFUSE => Mode::Refuse,
            MODE_SWALLOW => Mode::Swallow,
            _ => Mode::Normal,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

impl Transport for MemberTransport {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        match self.mode() {
            Mode::Refuse => Err(TransportError::Unavailable {
                reason: "the transport is down".into(),
            }),
            Mode::Swallow => Ok(()),
            Mode::Normal => {
                let packet = Packet::new(self.member, packet.topic, packet.payload);
                self.sink.publish(packet);
                Ok(())
            }
        }
    }
    fn subscribe(&self, topic: String) {
        self.sink.subscribe(self.member, topic);
    }
    fn unsubscribe(&self, topic: String) {
        self.sink.unsubscribe(self.member, &topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn out(topic: &str, payload: &[u8]) -> OutboundPacket {
        OutboundPacket {
            packet_id: String::new(),
            topic: topic.into(),
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn packets_come_out_in_publication_order_with_their_sender() {
        let net = Arc::new(Network::default());
        let a = MemberTransport::new(net.clone(), 0);
        let b = MemberTransport::new(net.clone(), 1);
        a.publish(out("t", b"1")).unwrap();
        b.publish(out("t", b"2")).unwrap();
        a.publish(out("u", b"3")).unwrap();
        assert_eq!(net.in_flight(), 3);
        let first = net.pop().unwrap();
        assert_eq!((first.from, first.payload.as_slice()), (0, &b"1"[..]));
        let rest: Vec<(usize, String)> = net
            .take_all()
            .into_iter()
            .map(|p| (p.from, p.topic))
            .collect();
        assert_eq!(rest, vec![(1, "t".to_string()), (0, "u".to_string())]);
        assert_eq!(net.in_flight(), 0);
    }

    #[test]
    fn subscriptions_are_per_member_and_survive_a_new_transport() {
        let net = Arc::new(Network::default());
        let a = MemberTransport::new(net.clone(), 0);
        a.subscribe("t".into());
        a.subscribe("u".into());
        MemberTransport::new(net.clone(), 2).subscribe("t".into());
        assert_eq!(net.subscribers("t"), vec![0, 2]);
        assert_eq!(net.subscribers("u"), vec![0]);
        drop(a);
        MemberTransport::new(net.clone(), 0).unsubscribe("t".into());
        assert!(!net.is_subscribed(0, "t"));
        assert!(net.is_subscribed(0, "u"));
        assert_eq!(net.subscribers("t"), vec![2]);
    }

    #[test]
    fn a_swallowing_member_loses_its_packets_and_a_refusing_one_gets_an_error() {
        let net = Arc::new(Network::default());
        let t = MemberTransport::new(net.clone(), 0);
        t.set_mode(Mode::Swallow);
        assert!(t.publish(out("t", b"x")).is_ok());
        assert_eq!(net.in_flight(), 0);
        t.set_mode(Mode::Refuse);
        assert!(t.publish(out("t", b"x")).is_err());
        assert_eq!(net.in_flight(), 0);
        t.set_mode(Mode::Normal);
        assert!(t.publish(out("t", b"x")).is_ok());
        assert_eq!(net.in_flight(), 1);
    }

    struct Counting(AtomicUsize);

    impl Tap for Counting {
        fn published(&self, packet: &mut Packet) {
            self.0.fetch_add(1, Ordering::SeqCst);
            packet.phase = "counted";
        }
    }

    #[test]
    fn the_tap_sees_and_labels_published_packets_but_not_injected_ones() {
        let tap = Arc::new(Counting(AtomicUsize::new(0)));
        let net = Arc::new(Network::with_tap(tap.clone()));
        MemberTransport::new(net.clone(), 3)
            .publish(out("t", b"x"))
            .unwrap();
        net.inject(Packet::new(usize::MAX, "t".into(), b"y".to_vec()));
        assert_eq!(tap.0.load(Ordering::SeqCst), 1);
        let phases: Vec<&str> = net.take_all().iter().map(|p| p.phase).collect();
        assert_eq!(phases, vec!["counted", ""]);
    }
}
