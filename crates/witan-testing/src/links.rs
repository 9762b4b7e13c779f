//! Hostile links between members, for the world's in-order delivery: a *cut* link loses
//! what it carries, a *partitioned* one holds it until the partition heals, and a delay
//! function makes every delivery wait in flight until it is due. Packets in flight are kept
//! by (due time, routing order), so equal delays keep publication order.

use std::collections::{BTreeMap, BTreeSet};

use crate::net::Packet;

/// A delivery delay in ms for a packet from `from` to `to`, the `seq`-th one routed.
pub type DelayFn = Box<dyn Fn(usize, usize, u64) -> u64 + Send>;

/// A packet on its way to one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    pub to: usize,
    pub packet: Packet,
}

/// The state of every directed link, and what is on its way.
#[derive(Default)]
pub struct Links {
    /// Directed links (from, to) on which every packet is lost.
    pub cut: BTreeSet<(usize, usize)>,
    /// Directed links (from, to) whose packets wait in `held` until [`Links::heal`].
    pub partitioned: BTreeSet<(usize, usize)>,
    pub held: Vec<InFlight>,
    /// Delay of each delivery, if any.
    pub delay: Option<DelayFn>,
    /// Packets waiting for their delivery time, by (due time, routing order).
    in_flight: BTreeMap<(u64, u64), InFlight>,
    routed: u64,
}

impl Links {
    /// Puts a packet for member `to` on its way at `now` (or loses or holds it).
    pub fn route(&mut self, now: u64, to: usize, packet: Packet) {
        let link = (packet.from, to);
        if self.cut.contains(&link) {
            return;
        }
        if self.partitioned.contains(&link) {
            self.held.push(InFlight { to, packet });
            return;
        }
        let seq = self.next_seq();
        let delay = match &self.delay {
            Some(d) if packet.from != to => d(packet.from, to, seq),
            _ => 0,
        };
        self.in_flight
            .insert((now + delay, seq), InFlight { to, packet });
    }

    fn next_seq(&mut self) -> u64 {
        self.routed += 1;
        self.routed - 1
    }

    /// A partition between `side` and everyone else among `n` members.
    pub fn partition(&mut self, n: usize, side: &[usize]) {
        for a in 0..n {
            for b in 0..n {
                if side.contains(&a) != side.contains(&b) {
                    self.partitioned.insert((a, b));
                }
            }
        }
    }

    /// Ends every partition; what waited is due at `now`.
    pub fn heal(&mut self, now: u64) {
        self.partitioned.clear();
        for p in std::mem::take(&mut self.held) {
            let seq = self.next_seq();
            self.in_flight.insert((now, seq), p);
        }
    }

    /// When the next packet in flight is due.
    pub fn next_due_at(&self) -> Option<u64> {
        self.in_flight.keys().next().map(|(at, _)| *at)
    }

    /// The next packet in flight that is due by `now`.
    pub fn next_due(&mut self, now: u64) -> Option<InFlight> {
        let key = *self.in_flight.keys().next().filter(|(at, _)| *at <= now)?;
        self.in_flight.remove(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(from: usize, n: u8) -> Packet {
        Packet::new(from, "t".into(), vec![n])
    }

    fn drain(links: &mut Links, now: u64) -> Vec<(usize, u8)> {
        std::iter::from_fn(|| links.next_due(now))
            .map(|f| (f.to, f.packet.payload[0]))
            .collect()
    }

    #[test]
    fn without_faults_packets_are_due_at_once_in_routing_order() {
        let mut links = Links::default();
        links.route(10, 1, packet(0, 1));
        links.route(10, 2, packet(0, 1));
        links.route(10, 1, packet(2, 2));
        assert_eq!(links.next_due_at(), Some(10));
        assert_eq!(drain(&mut links, 10), vec![(1, 1), (2, 1), (1, 2)]);
        assert_eq!(links.next_due_at(), None);
    }

    #[test]
    fn a_cut_link_loses_packets_in_one_direction_only() {
        let mut links = Links::default();
        links.cut.insert((0, 1));
        links.route(0, 1, packet(0, 1));
        links.route(0, 0, packet(1, 2));
        assert_eq!(drain(&mut links, 0), vec![(0, 2)]);
    }

    #[test]
    fn a_partition_holds_packets_until_it_heals() {
        let mut links = Links::default();
        links.partition(3, &[0]);
        links.route(0, 1, packet(0, 1));
        links.route(0, 2, packet(1, 2));
        assert_eq!(drain(&mut links, 100), vec![(2, 2)]);
        links.heal(100);
        assert_eq!(links.next_due_at(), Some(100));
        assert_eq!(drain(&mut links, 100), vec![(1, 1)]);
        links.route(100, 1, packet(0, 3));
        assert_eq!(drain(&mut links, 100), vec![(1, 3)], "healed for good");
    }

    #[test]
    fn a_delay_keeps_packets_in_flight_until_due_but_not_a_members_echo() {
        let mut links = Links {
            delay: Some(Box::new(|from, _to, _seq| 50 * (from as u64 + 1))),
            ..Links::default()
        };
        links.route(0, 1, packet(0, 1));
        links.route(0, 0, packet(1, 2));
        links.route(0, 2, packet(1, 3));
        assert_eq!(drain(&mut links, 49), vec![]);
        assert_eq!(links.next_due_at(), Some(50));
        assert_eq!(drain(&mut links, 50), vec![(1, 1)]);
        assert_eq!(drain(&mut links, 100), vec![(0, 2), (2, 3)]);
        let mut echo = Links {
            delay: Some(Box::new(|_, _, _| 1_000)),
            ..Links::default()
        };
        echo.route(0, 4, packet(4, 9));
        assert_eq!(drain(&mut echo, 0), vec![(4, 9)]);
    }
}
