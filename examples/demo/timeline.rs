//! The demo's timeline: every event the members heard, one line per (virtual instant, event)
//! with the names of the members who heard it ("everyone" when all members in the
//! conversation did), member ids replaced by names, proposals by what they propose.

use std::collections::BTreeSet;

use witan::client::{ConversationState, ProposalInfo, ProposalKind, WitanEvent};

use crate::world::Demo;
use crate::{NAMES, START_MS};

impl Demo {
    pub fn stamp(at: u64) -> String {
        format!("t=+{:>5.1}s", (at - START_MS) as f64 / 1000.0)
    }

    pub fn say(&mut self, text: &str) {
        self.print_events(true);
        println!("\n{} == {text}", Self::stamp(self.now()));
    }

    pub fn describe(&self, p: &ProposalInfo) -> String {
        let target = p
            .target
            .as_deref()
            .map(|t| self.name(t))
            .unwrap_or_default();
        match p.kind {
            ProposalKind::AddMember => format!("add {target}"),
            ProposalKind::RemoveMember => format!("remove {target}"),
            ProposalKind::SelfLeave => format!("{target} leaves"),
            ProposalKind::StewardElection => "elect a new steward list".to_string(),
            ProposalKind::EmergencyRemoval => format!("emergency removal of {target}"),
        }
    }

    /// One line for an event, or `None` for events the timeline leaves out.
    pub fn render(&mut self, e: &WitanEvent) -> Option<String> {
        Some(match e {
            WitanEvent::MessageReceived { message, .. } => format!(
                "got {}'s message \"{}\"",
                self.name(&message.sender),
                String::from_utf8_lossy(&message.body)
            ),
            WitanEvent::VoteRequested { proposal, .. } => {
                let what = self.describe(proposal);
                self.proposals.insert(proposal.proposal_id, what.clone());
                format!(
                    "VoteRequested: {what} (proposed by {})",
                    self.name(&proposal.proposer)
                )
            }
            WitanEvent::ProposalResolved {
                proposal_id,
                approved,
                ..
            } => {
                let what = self
                    .proposals
                    .get(proposal_id)
                    .cloned()
                    .unwrap_or_else(|| format!("proposal {:08x}…", proposal_id >> 32));
                let verdict = if *approved { "approved" } else { "rejected" };
                format!("ProposalResolved: {what} -> {verdict}")
            }
            WitanEvent::MembershipChanged {
                epoch,
                added,
                removed,
                ..
            } => {
                let mut change = Vec::new();
                if !added.is_empty() {
                    change.push(format!("added {}", self.set_of(added)));
                }
                if !removed.is_empty() {
                    change.push(format!("removed {}", self.set_of(removed)));
                }
                format!("MembershipChanged: epoch {epoch}, {}", change.join("; "))
            }
            WitanEvent::StateChanged { state, .. } => format!("StateChanged: {state:?}"),
            WitanEvent::StewardsChanged { stewards, .. } => {
                format!("StewardsChanged: [{}]", self.names_of(stewards))
            }
            WitanEvent::Joined { .. } => "Joined".to_string(),
            WitanEvent::JoinExpired { .. } => "JoinExpired".to_string(),
            WitanEvent::Left { reason, .. } => format!("Left ({reason:?})"),
            WitanEvent::RejoinRequired { .. } => "RejoinRequired".to_string(),
            WitanEvent::Warning { message, .. } => {
                let mut message = message.clone();
                for (id, name) in &self.names {
                    message = message.replace(&id[..8], name);
                }
                format!("Warning: {message}")
            }
        })
    }

    /// Prints the events heard since the last call, one line per (instant, event) with the
    /// members who heard it. A state change also shows the member's epoch. Unless `all`, the
    /// events of the current instant wait (more members may still hear the same thing).
    pub fn print_events(&mut self, all: bool) {
        let now = self.now();
        let new: Vec<(u64, usize, WitanEvent)> = {
            let log = self.log.lock().unwrap();
            let pending = &log[self.printed..];
            let ready = if all {
                pending.len()
            } else {
                pending.iter().take_while(|(at, _, _)| *at < now).count()
            };
            pending[..ready].to_vec()
        };
        self.printed += new.len();
        // (instant, text, who heard it, who was expected to: the members in the conversation
        // then, but the sender for a message)
        let mut lines: Vec<(u64, String, Vec<usize>, BTreeSet<usize>)> = Vec::new();
        for (at, who, event) in new {
            self.track(who, &event);
            let Some(mut text) = self.render(&event) else {
                continue;
            };
            if let WitanEvent::StateChanged { state, .. } = event
                && state != ConversationState::Left
                && state != ConversationState::PendingJoin
            {
                text.push_str(&format!(" (epoch {})", self.epochs[who]));
            }
            match lines.iter_mut().find(|(t, l, _, _)| *t == at && *l == text) {
                Some((_, _, heard, _)) => heard.push(who),
                None => {
                    let mut expected = self.present.clone();
                    // A message is heard by everyone but its sender.
                    if let WitanEvent::MessageReceived { message, .. } = &event {
                        expected.remove(&self.index(&message.sender));
                    }
                    lines.push((at, text, vec![who], expected));
                }
            }
        }
        for (at, text, heard, expected) in lines {
            let heard_set: BTreeSet<usize> = heard.iter().copied().collect();
            let who = if heard.len() > 1 && heard_set == expected {
                let message = text.starts_with("got ");
                if message { "everyone else" } else { "everyone" }.to_string()
            } else {
                heard
                    .iter()
                    .map(|i| NAMES[*i])
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!("{}   {who:<22} {text}", Self::stamp(at));
        }
    }

    /// Follows each member's epoch and who is in the conversation, in event order.
    pub fn track(&mut self, who: usize, event: &WitanEvent) {
        match event {
            WitanEvent::MembershipChanged { epoch, added, .. } => {
                self.epochs[who] = *epoch;
                for id in added {
                    let i = self.index(id);
                    self.epochs[i] = *epoch;
                }
            }
            WitanEvent::StateChanged {
                state: ConversationState::Working,
                ..
            } if !self.crashed(who) => {
                self.present.insert(who);
            }
            WitanEvent::Left { .. } | WitanEvent::JoinExpired { .. } => {
                self.present.remove(&who);
            }
            _ => {}
        }
    }

    /// Learns what the open proposals are about (for the `ProposalResolved` lines).
    pub fn note_proposals(&mut self) {
        for i in self.live() {
            for p in self.info(i).open_proposals {
                if !self.proposals.contains_key(&p.proposal_id) {
                    let what = self.describe(&p);
                    self.proposals.insert(p.proposal_id, what);
                }
            }
        }
    }
}
