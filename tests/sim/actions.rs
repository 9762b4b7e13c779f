//! The random actions of the chaos phase: chats, removals, leaves, re-joins, crashes,
//! offline periods, partitions, and what byzantine members do (bogus candidates, replayed
//! traffic, the byzantine-member family's attacks, and — behind a flag — equivocation). Actors and targets are drawn when the action
//! happens, from the members' state at that moment.

use std::rc::Rc;

use witan::client::{Clock, ConversationState, ProposalKind};

use super::byzantine;
use super::invariants::Chat;
use super::net::{Batch, Ev, Partition};
use super::scenario::max_outside;
use super::world::{CONV, Down};
use super::{R, Sim};

/// What crafting a byzantine member's packets gave: nothing when it is not in a state to.
type CraftResult = Result<Option<byzantine::Crafted>, String>;

#[derive(Clone, Copy, Debug)]
enum Act {
    Chat,
    Remove,
    Leave,
    Rejoin,
    Crash,
    Offline,
    Partition,
    Bogus,
    Replay,
    Malicious,
}

/// Which byzantine behaviour an action asks of a byzantine member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ByzKind {
    Bogus,
    Replay,
    Malicious,
}

impl Sim {
    /// Members in the group according to the honest member furthest ahead.
    fn group_size(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.honest() && m.view.in_group())
            .max_by_key(|m| m.view.epoch())
            .map_or(0, |m| m.view.member_ids().len())
    }

    pub(crate) fn random_action(&mut self) -> R<()> {
        let act = self.pick_act();
        let n = self.members.len();
        let active: Vec<usize> = (0..n)
            .filter(|i| {
                self.members[*i].honest()
                    && self.members[*i].up()
                    && self.members[*i].view.in_group()
            })
            .collect();
        let down = self.members.iter().filter(|m| m.down != Down::Up).count();
        // One removal or leave at a time (a window of 20 s), never below the smallest group
        // the run allows.
        let shrinkable =
            self.group_size() > n - max_outside(n) && self.now() >= self.churn_quiet_until;
        match act {
            Act::Chat => {
                if let Some(m) = self.rng_scn.pick(&active) {
                    self.chat(m)?;
                }
            }
            Act::Remove if shrinkable => {
                if let Some(m) = self.rng_scn.pick(&active) {
                    self.churn_quiet_until = self.now() + 20_000;
                    self.remove(m)?;
                }
            }
            Act::Leave if shrinkable => {
                if let Some(m) = self.rng_scn.pick(&active) {
                    self.churn_quiet_until = self.now() + 20_000;
                    self.tr(|| format!("m{m} leaves"));
                    self.invoke(m, "leave", |c| c.leave(CONV.into()))?;
                    let now = self.now();
                    self.set_wake(m, Some(now), true);
                }
            }
            Act::Rejoin => {
                let outside: Vec<usize> = (0..n)
                    .filter(|i| {
                        let m = &self.members[*i];
                        m.honest()
                            && m.up()
                            && matches!(m.view.state(), Some(ConversationState::Left) | None)
                    })
                    .collect();
                if let Some(m) = self.rng_scn.pick(&outside) {
                    self.join(m)?;
                }
            }
            Act::Crash if down < (n - 1) / 3 => self.crash_one()?,
            Act::Offline if down < (n - 1) / 3 => self.take_one_offline(),
            Act::Partition => self.split_network(),
            Act::Bogus => self.byzantine_act(ByzKind::Bogus)?,
            Act::Replay => self.byzantine_act(ByzKind::Replay)?,
            Act::Malicious => self.byzantine_act(ByzKind::Malicious)?,
            _ => {}
        }
        Ok(())
    }

    /// The chaos phase's next action, drawn by weight from those the mix allows.
    fn pick_act(&mut self) -> Act {
        let f = self.mix;
        let mut menu: Vec<(Act, u64)> = vec![(Act::Chat, 40)];
        if f.churn {
            menu.extend([(Act::Remove, 4), (Act::Leave, 2), (Act::Rejoin, 8)]);
        }
        if f.crashes || f.slow_restart {
            menu.push((Act::Crash, 5));
        }
        if f.offline {
            menu.push((Act::Offline, 4));
        }
        if (f.partitions || f.long_partitions) && self.partition.is_none() {
            menu.push((Act::Partition, 3));
        }
        if f.bogus {
            menu.push((Act::Bogus, 4));
        }
        if f.replay {
            menu.push((Act::Replay, 4));
        }
        if f.byzantine_member {
            menu.push((Act::Malicious, 15));
        }
        let total: u64 = menu.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng_scn.below(total);
        for (a, w) in menu {
            if pick < w {
                return a;
            }
            pick -= w;
        }
        Act::Chat
    }

    /// The members whose process is up, in index order.
    fn members_up(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| self.members[*i].up())
            .collect()
    }

    /// A member that is up crashes now, or — with slow restarts — during its next call.
    fn crash_one(&mut self) -> R<()> {
        let f = self.mix;
        let up = self.members_up();
        if let Some(m) = self.rng_scn.pick(&up) {
            self.stats.crashes += 1;
            if f.slow_restart || (f.crashes && self.rng_scn.chance(0.5)) {
                self.members[m].dying = true;
                self.tr(|| format!("m{m} will die during its next call"));
            } else {
                self.crash_now(m)?;
            }
        }
        Ok(())
    }

    /// A member that is up goes offline for a few seconds, or now and then for minutes.
    fn take_one_offline(&mut self) {
        let up = self.members_up();
        if let Some(m) = self.rng_scn.pick(&up) {
            self.stats.offline += 1;
            let long = self.rng_scn.chance(0.3);
            let d = if long {
                self.rng_scn.range(30_000, 120_000)
            } else {
                self.rng_scn.range(2_000, 30_000)
            };
            self.members[m].down = Down::Offline;
            self.members[m].wake_at = None;
            self.queue.push(self.now() + d, Ev::Return { member: m });
            self.tr(|| format!("m{m} goes OFFLINE for {d} ms"));
        }
    }

    /// The members split in two sides for a moment, or — with long partitions — for seconds.
    fn split_network(&mut self) {
        let f = self.mix;
        let n = self.members.len();
        let mut order: Vec<usize> = (0..n).collect();
        self.rng_scn.shuffle(&mut order);
        let k = self.rng_scn.range(1, n as u64) as usize;
        let side_a = order[..k].iter().copied().collect();
        let long = f.long_partitions && (!f.partitions || self.rng_scn.chance(0.5));
        let d = if long {
            self.rng_scn.range(8_000, 30_000)
        } else {
            self.rng_scn.range(100, 400)
        };
        let until = self.now() + d;
        self.partition = Some(Partition { side_a, until });
        self.queue.push(until, Ev::Heal);
        self.stats.partitions += 1;
        let a = order[..k].to_vec();
        self.tr(|| format!("PARTITION {a:?} | rest for {d} ms"));
    }

    fn chat(&mut self, m: usize) -> R<()> {
        self.stats.chats += 1;
        let body = format!("c{}-m{m}", self.stats.chats);
        let Some((result, batches)) = self.invoke(m, "send_message", |c| {
            c.send_message(CONV.into(), body.clone().into_bytes())
        })?
        else {
            return Ok(());
        };
        let Ok(id) = result else { return Ok(()) };
        let view = &self.members[m].view;
        let (Some(tenure), epoch) = (view.tenure, view.epoch()) else {
            return Ok(());
        };
        // The chat is the newest packet of the call (the outbox publishes in order).
        let hash = batches.last().and_then(|b| b.hashes.last().copied());
        if let Some(h) = hash {
            self.ledger.chat_by_hash.insert(h, id.clone());
        }
        self.ledger.chats.insert(
            id,
            Chat {
                sender: m,
                tenure: tenure.id,
                epoch,
                body: body.clone().into_bytes(),
            },
        );
        self.tr(|| format!("m{m} sends chat {body} in epoch {epoch}"));
        Ok(())
    }

    fn remove(&mut self, m: usize) -> R<()> {
        let mut targets: Vec<String> = self.members[m].view.member_ids();
        let me = self.members[m].id.clone();
        targets.retain(|t| *t != me);
        let byz: Vec<String> = targets
            .iter()
            .filter(|t| self.members.iter().any(|x| &x.id == *t && !x.honest()))
            .cloned()
            .collect();
        // Other families remove byzantine members half of the time; the byzantine-member
        // family keeps its attacker in the group (a target like any other).
        let pool = if !byz.is_empty() && !self.mix.byzantine_member && self.rng_scn.chance(0.5) {
            byz
        } else {
            targets
        };
        let Some(i) = (!pool.is_empty()).then(|| self.rng_scn.below(pool.len() as u64) as usize)
        else {
            return Ok(());
        };
        let target = pool[i].clone();
        let who = self.label(&target);
        self.tr(|| format!("m{m} proposes to remove {who}"));
        let t = target.clone();
        if let Some((Ok(pid), _)) =
            self.invoke(m, "propose_removal", |c| c.propose_removal(CONV.into(), t))?
        {
            self.stats.proposals += 1;
            self.record_own_proposal(pid, ProposalKind::RemoveMember, Some(target));
        }
        let now = self.now();
        self.set_wake(m, Some(now), true);
        Ok(())
    }

    /// A byzantine member sends a bogus candidate, replays old traffic, or runs one of the
    /// byzantine-member family's attacks.
    fn byzantine_act(&mut self, kind: ByzKind) -> R<()> {
        let n = self.members.len();
        let cands: Vec<usize> = (0..n)
            .filter(|i| {
                let m = &self.members[*i];
                m.up()
                    && m.byz.as_ref().is_some_and(|b| {
                        b.active
                            && match kind {
                                ByzKind::Bogus => b.bogus,
                                ByzKind::Replay => b.replay,
                                ByzKind::Malicious => b.malicious,
                            }
                    })
            })
            .collect();
        let Some(m) = self.rng_byz.pick(&cands) else {
            return Ok(());
        };
        let picks = [
            self.rng_byz.next_u64(),
            self.rng_byz.next_u64(),
            self.rng_byz.next_u64(),
        ];
        let Some(conv) = self.engine_state(m)? else {
            return Ok(());
        };
        let (crafted, what) = self.craft(m, kind, &conv, picks);
        let crafted =
            crafted.map_err(|e| self.violation("setup", format!("m{m} crafting failed: {e}")))?;
        let Some(c) = crafted else { return Ok(()) };
        if c.packets.is_empty() {
            return Ok(());
        }
        self.stats.byzantine_packets += c.packets.len() as u64;
        let k = c.packets.len();
        self.tr(|| {
            format!(
                "m{m} (byzantine) sends {what} ({k} packets, epoch {})",
                c.epoch
            )
        });
        let topic = witan::protocol::topics::app(CONV);
        self.route(Rc::new(Batch::new(m, topic, c.packets, true)));
        Ok(())
    }

    /// What byzantine member `m` sends for `kind`, crafted on its engine state `conv`, and
    /// what the trace calls it. `picks` are the action's random draws.
    fn craft(
        &mut self,
        m: usize,
        kind: ByzKind,
        conv: &witan::protocol::Conversation,
        picks: [u64; 3],
    ) -> (CraftResult, String) {
        let now_local = self.members[m].clock.now_ms();
        let (path, secret) = (self.members[m].path.clone(), self.members[m].secret);
        let attack = byzantine::Attack::pick(picks[2]);
        match kind {
            ByzKind::Bogus => (
                byzantine::craft(
                    &path,
                    &secret,
                    conv,
                    byzantine::bogus_candidate(picks[0], now_local),
                ),
                "a bogus candidate".to_string(),
            ),
            ByzKind::Replay => {
                let mut pool = self.members[m]
                    .byz
                    .as_ref()
                    .map(|b| b.pool.clone())
                    .unwrap_or_default();
                let c = byzantine::craft(&path, &secret, conv, byzantine::replay(&mut pool, picks));
                if let Some(b) = self.members[m].byz.as_mut() {
                    b.pool = pool;
                }
                (c, "replayed traffic".to_string())
            }
            ByzKind::Malicious => {
                let builder = match attack {
                    byzantine::Attack::ForgedEvidence => {
                        byzantine::forged_evidence(picks[0], now_local)
                    }
                    byzantine::Attack::CraftedWindow => {
                        byzantine::crafted_window([picks[0], picks[1]], now_local)
                    }
                    byzantine::Attack::FutureEpochs => {
                        byzantine::template_chat(picks[0], now_local)
                    }
                    byzantine::Attack::GarbageCandidate => {
                        byzantine::bogus_candidate(picks[0], now_local)
                    }
                };
                let c = byzantine::craft(&path, &secret, conv, builder).map(|c| {
                    c.map(|mut c| {
                        if matches!(attack, byzantine::Attack::FutureEpochs) {
                            let first = c.epoch + 1 + picks[1] % 3 * 500;
                            c.packets = c
                                .packets
                                .first()
                                .map(|p| byzantine::future_epochs(p, first, 1 + picks[0] % 24))
                                .unwrap_or_default();
                        }
                        c
                    })
                });
                (c, format!("{attack:?}"))
            }
        }
    }

    /// After a call on an equivocating member: if it is the epoch steward with approved work,
    /// it sends one valid commit to part of the group and another to the rest.
    pub fn maybe_equivocate(&mut self, m: usize) -> R<()> {
        let Some(b) = self.members[m].byz.as_ref() else {
            return Ok(());
        };
        if !b.active || !b.equivocate || !self.members[m].view.in_group() {
            return Ok(());
        }
        let done = b.equivocated;
        let path = self.members[m].path.clone();
        let Some(conv) = self.engine_state(m)? else {
            return Ok(());
        };
        let me = conv.me();
        let now_local = self.members[m].clock.now_ms();
        let here = (conv.epoch(), conv.commit_round().round());
        if done == Some(here) || !byzantine::can_equivocate(&conv, me, now_local) {
            return Ok(());
        }
        let secret = self.members[m].secret;
        let crafted =
            byzantine::craft(&path, &secret, &conv, byzantine::equivocation(now_local))
                .map_err(|e| self.violation("setup", format!("m{m} equivocation failed: {e}")))?;
        // Nothing to equivocate on (only its own removal is decided, say).
        let Some(c) = crafted.filter(|c| !c.packets.is_empty()) else {
            return Ok(());
        };
        if let Some(b) = self.members[m].byz.as_mut() {
            b.equivocated = Some((c.epoch, c.round));
        }
        let [a, b] = <[Vec<u8>; 2]>::try_from(c.packets)
            .map_err(|_| self.violation("setup", "equivocation needs two candidates".into()))?;
        let topic = witan::protocol::topics::app(CONV);
        let (ba, bb) = (
            Rc::new(Batch::new(m, topic.clone(), vec![a], true)),
            Rc::new(Batch::new(m, topic.clone(), vec![b], true)),
        );
        let now = self.now();
        let mut side = Vec::new();
        for to in self.sink.subscribers(&topic) {
            let first = self.rng_byz.chance(0.5);
            side.push((to, first));
            self.send_to(to, if first { ba.clone() } else { bb.clone() }, now);
        }
        self.stats.byzantine_packets += 2;
        self.tr(|| {
            format!(
                "m{m} (byzantine) EQUIVOCATES in epoch {}: commit A/B to {side:?}",
                c.epoch
            )
        });
        Ok(())
    }
}
