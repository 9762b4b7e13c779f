//! Running a world: delivering what is in flight, polling the members, and moving the clock
//! to the earliest wake-up when nothing else is left to do.
//!
//! Two ways to deliver:
//! - [`World::deliver`], packet by packet in publication order, to every subscribed member,
//!   the publisher included (pub/sub echoes, and its echo must be a duplicate), through the
//!   hostile links; remote members get every packet, in one batch per round, and what they
//!   publish is fed back into the network;
//! - [`World::deliver_round`], in rounds: a round takes every packet in flight and hands each
//!   member, in one `receive` call, the ones on its topics in publication order, except its
//!   own; packets published meanwhile go to the next round. [`World::receive`] counts the
//!   packets and the calls (the bench times the calls itself).

use std::collections::BTreeMap;

use witan::client::{EventListener, InboundPacket, PollReport, WitanClient, WitanError};

use crate::links::InFlight;
use crate::net::Packet;
use crate::world::{Slot, World};

/// The earlier of two optional times.
pub fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn inbound(p: Packet) -> InboundPacket {
    InboundPacket {
        topic: p.topic,
        payload: p.payload,
    }
}

impl<L: EventListener + 'static> World<L> {
    /// Feeds the remotes' published packets into the network; true if there were any.
    fn pump_remotes(&mut self) -> bool {
        let mut any = false;
        for slot in &mut self.slots {
            if let Slot::Remote(r) = slot {
                let published = r.take_published();
                any |= !published.is_empty();
                // Remotes are not routed through the hostile links: their sender is unknown.
                for (topic, payload) in published {
                    self.net.inject(Packet::new(usize::MAX, topic, payload));
                }
            }
        }
        any
    }

    /// Delivers everything in flight, packet by packet (see the module doc). Packets on a cut
    /// link are lost, those across a partition wait for `heal`, and with a delay function
    /// they wait in flight until due. Panics if a member's `receive` fails.
    pub fn deliver(&mut self) {
        let now = self.now();
        loop {
            let mut for_remotes: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
            while let Some(packet) = self.net.pop() {
                let subs = self.net.subscriptions();
                for i in 0..self.slots.len() {
                    let subscribed = subs.get(&i).is_some_and(|s| s.contains(&packet.topic));
                    match &self.slots[i] {
                        Slot::Remote(_) => {
                            for_remotes
                                .entry(i)
                                .or_default()
                                .push(packet.payload.clone());
                        }
                        _ if !subscribed || self.crashed.contains(&i) => {}
                        Slot::Local(_) => self.links.route(now, i, packet.clone()),
                    }
                }
            }
            while let Some(due) = self.links.next_due(now) {
                self.hand_over(due);
            }
            for (i, packets) in for_remotes {
                self.remote(i).receive(now, packets);
            }
            let queued = self.net.in_flight() > 0;
            let due_now = self.links.next_due_at().is_some_and(|at| at <= now);
            if !self.pump_remotes() && !queued && !due_now {
                return;
            }
        }
    }

    /// Hands a packet that is due to its member (or to its mailbox while it is closed).
    fn hand_over(&mut self, InFlight { to, packet }: InFlight) {
        match &self.slots[to] {
            Slot::Local(Some(c)) => {
                if let Err(e) = c.receive(vec![inbound(packet)]) {
                    panic!("{} failed to receive: {e}", self.names[to]);
                }
            }
            Slot::Local(None) => self.mailbox[to].push(packet),
            Slot::Remote(_) => {}
        }
    }

    /// Hands a reopened member the packets that arrived while it was closed, in one call.
    pub fn deliver_mailbox(&mut self, i: usize) {
        let backlog = std::mem::take(&mut self.mailbox[i]);
        let packets = backlog.into_iter().map(inbound).collect();
        if let Err(e) = self.c(i).receive(packets) {
            panic!("{} failed to receive its mailbox: {e}", self.names[i]);
        }
    }

    /// Delivers one round (see the module doc); returns how many packets it took.
    pub fn deliver_round(&mut self) -> Result<usize, WitanError> {
        self.deliver_round_by(|_, c, packets| c.receive(packets).map(|_| 1))
    }

    /// [`World::deliver_round`], handing each open member's packets of the round to `hand`
    /// (which makes the `receive` calls and says how many) instead of one `receive` call; the
    /// packets and calls are counted in [`World::receive`].
    pub fn deliver_round_by(
        &mut self,
        mut hand: impl FnMut(usize, &WitanClient, Vec<InboundPacket>) -> Result<u64, WitanError>,
    ) -> Result<usize, WitanError> {
        let batch = self.net.take_all();
        if batch.is_empty() {
            return Ok(0);
        }
        let subs = self.net.subscriptions();
        for i in 0..self.slots.len() {
            let Some(topics) = subs.get(&i) else { continue };
            let mine = batch
                .iter()
                .filter(|p| p.from != i && topics.contains(&p.topic));
            match &self.slots[i] {
                Slot::Local(Some(c)) => {
                    let packets: Vec<InboundPacket> = mine.cloned().map(inbound).collect();
                    if packets.is_empty() {
                        continue;
                    }
                    let count = packets.len() as u64;
                    let calls = hand(i, c, packets)?;
                    self.receive.packets += count;
                    self.receive.calls += calls;
                }
                Slot::Local(None) => self.mailbox[i].extend(mine.cloned()),
                Slot::Remote(_) => {}
            }
        }
        Ok(batch.len())
    }

    /// Polls every open member that has not crashed; returns the earliest wake-up they asked
    /// for (on the shared clock), or when the next packet in flight is due.
    pub fn try_poll_all(&mut self) -> Result<Option<u64>, WitanError> {
        self.try_poll_all_by(|_, c| c.poll())
    }

    /// [`World::try_poll_all`], polling each open local member through `poll`.
    pub fn try_poll_all_by(
        &mut self,
        mut poll: impl FnMut(usize, &WitanClient) -> Result<PollReport, WitanError>,
    ) -> Result<Option<u64>, WitanError> {
        let now = self.now();
        let mut next: Option<u64> = None;
        for i in 0..self.slots.len() {
            let at = match &mut self.slots[i] {
                Slot::Local(Some(_)) if self.crashed.contains(&i) => None,
                Slot::Local(Some(c)) => poll(i, c)?.next_wakeup_at_ms,
                Slot::Local(None) => None,
                Slot::Remote(r) => r.poll(now),
            };
            next = min_opt(next, at.map(|at| self.clocks[i].to_global(at)));
        }
        self.pump_remotes();
        Ok(min_opt(next, self.links.next_due_at()))
    }

    /// [`World::try_poll_all`], panicking if a poll fails.
    pub fn poll_all(&mut self) -> Option<u64> {
        match self.try_poll_all() {
            Ok(next) => next,
            Err(e) => panic!("poll failed: {e}"),
        }
    }

    /// Delivers and polls, jumping the clock to the next wake-up, for `horizon_ms`.
    pub fn run_for(&mut self, horizon_ms: u64) {
        let end = self.now() + horizon_ms;
        for _ in 0..100_000 {
            self.deliver();
            let first = self.poll_all();
            self.deliver();
            let next = min_opt(first, self.poll_all());
            match next {
                Some(at) if at <= end && at > self.now() => self.set_now(at),
                Some(at) if at <= self.now() => {}
                _ => {
                    self.set_now(end);
                    self.poll_all();
                    self.deliver();
                    return;
                }
            }
        }
        panic!("the world did not settle");
    }
}
