//! What the simulator checks, and the ledger it keeps to check it.
//!
//! After every call (for honest members only):
//! - **no fork**: two members in the same epoch hold the same member list and the same MLS
//!   epoch authenticator;
//! - **applied once**: no member hears `MessageReceived` twice for one message id, and the
//!   body is the one its sender sent;
//! - **one decision**: no two members resolve one proposal with opposite results;
//! - **no internal error**: no call fails with `Internal` or `Storage`, no scheduled step
//!   fails (checked where the calls are made).
//!
//! At every quiescent point (the network healed, every member back, every packet delivered,
//! then a long calm period):
//! - **convergence** (`divergence/*` when violated): members in the group share epoch, state
//!   `Working`, member list, steward list, scores (unless `Config::check_scores` is off) and
//!   authenticator, and every member the group lists knows it is a member (`ghost`);
//! - **no loss**: every chat an honest member sent is in the history of every honest member
//!   that was in the group in the chat's epoch and still is — except where the chat reached
//!   it more than `MAX_PAST_EPOCHS` epochs late (the MLS window; counted, not a violation);
//! - **approved means committed**: for every member an approved proposal concerned, the
//!   latest approved proposal about it is reflected in the member list.

use std::collections::{BTreeMap, BTreeSet};

use witan::client::{ConversationState, ProposalKind, StoredMessage, WitanEvent};
use witan::mls::MAX_PAST_EPOCHS;

use super::world::CONV;
use super::{R, Sim};

/// A chat an honest member sent.
#[derive(Debug, Clone)]
pub struct Chat {
    pub sender: usize,
    pub tenure: u64,
    pub epoch: u64,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct ProposalRec {
    pub kind: ProposalKind,
    pub target: Option<String>,
    /// Order of its first approval among all approvals of the run.
    pub approved: Option<u64>,
}

#[derive(Default)]
pub struct Ledger {
    pub chats: BTreeMap<String, Chat>,
    pub chat_by_hash: BTreeMap<[u8; 32], String>,
    /// (member, message id): the chat reached the member after the MLS window closed.
    pub excused: BTreeSet<(usize, String)>,
    pub received: Vec<BTreeSet<String>>,
    pub proposals: BTreeMap<u64, ProposalRec>,
    pub decisions: BTreeMap<u64, BTreeMap<usize, bool>>,
    pub approvals: u64,
}

impl Ledger {
    pub fn new(members: usize) -> Ledger {
        Ledger {
            received: vec![BTreeSet::new(); members],
            ..Ledger::default()
        }
    }

    pub fn note_delivery(&mut self, to: usize, hash: &[u8; 32], epoch_after: u64) {
        if let Some(id) = self.chat_by_hash.get(hash)
            && let Some(chat) = self.chats.get(id)
            && chat.epoch + (MAX_PAST_EPOCHS as u64) < epoch_after
        {
            self.excused.insert((to, id.clone()));
        }
    }

    fn note_committed_add(&mut self, epoch: u64, member: &str) {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(epoch.to_be_bytes());
        h.update(member.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&h.finalize()[..8]);
        let key = u64::from_be_bytes(id) | (1 << 63);
        if self.proposals.contains_key(&key) {
            return;
        }
        self.approvals += 1;
        self.proposals.insert(
            key,
            ProposalRec {
                kind: ProposalKind::AddMember,
                target: Some(member.to_string()),
                approved: Some(self.approvals),
            },
        );
    }

    fn record_proposal(&mut self, id: u64, kind: ProposalKind, target: Option<String>) {
        self.proposals.entry(id).or_insert(ProposalRec {
            kind,
            target,
            approved: None,
        });
    }
}

impl Sim {
    pub fn record_own_proposal(&mut self, id: u64, kind: ProposalKind, target: Option<String>) {
        self.ledger.record_proposal(id, kind, target);
    }

    pub fn on_event(&mut self, m: usize, e: WitanEvent) -> R<()> {
        let honest = self.members[m].honest();
        match e {
            WitanEvent::MessageReceived { message, .. } => self.on_message(m, &message)?,
            WitanEvent::VoteRequested { proposal, .. } => {
                self.ledger
                    .record_proposal(proposal.proposal_id, proposal.kind, proposal.target);
            }
            WitanEvent::ProposalResolved {
                proposal_id,
                approved,
                ..
            } => {
                if honest {
                    self.on_resolved(m, proposal_id, approved)?;
                }
            }
            WitanEvent::MembershipChanged {
                epoch,
                added,
                removed,
                ..
            } => {
                // An add committed is an approved add, whoever proposed it: one this ledger
                // may not have heard of (in a group of one, nobody else is asked to vote).
                for a in &added {
                    self.ledger.note_committed_add(epoch, a);
                }
                let (mut a, mut r) = (self.labels(&added), self.labels(&removed));
                a.sort();
                r.sort();
                self.tr(|| format!("m{m} commit -> epoch {epoch}: +{a:?} -{r:?}"));
            }
            WitanEvent::JoinExpired { .. } => {
                self.stats.join_expired += 1;
                self.tr(|| format!("m{m} JOIN EXPIRED"));
            }
            WitanEvent::RejoinRequired { .. } => {
                self.stats.rejoin_required += 1;
                self.tr(|| format!("m{m} REJOIN REQUIRED"));
                // The app does what the event asks: join again with a fresh key package.
                let at = self.now() + 1_000;
                self.queue.push(at, super::net::Ev::Join { member: m });
            }
            WitanEvent::Warning { message, .. } => {
                if honest && message.starts_with("a scheduled step failed") {
                    return Err(self.violation("error", format!("m{m}: {message}")));
                }
                self.tr(|| format!("m{m} warning: {message}"));
            }
            WitanEvent::StewardsChanged { stewards, .. } => {
                let s = self.labels(&stewards);
                self.tr(|| format!("m{m} stewards {s:?}"));
            }
            WitanEvent::Left { reason, .. } => self.tr(|| format!("m{m} LEFT ({reason:?})")),
            WitanEvent::Joined { .. } | WitanEvent::StateChanged { .. } => {}
        }
        Ok(())
    }

    /// A chat heard: at most once per member, and as its sender sent it.
    fn on_message(&mut self, m: usize, message: &StoredMessage) -> R<()> {
        if !self.ledger.received[m].insert(message.message_id.clone()) {
            return Err(self.violation(
                "applied twice",
                format!("m{m} heard message {} twice", message.message_id),
            ));
        }
        if let Some(chat) = self.ledger.chats.get(&message.message_id)
            && (chat.body != message.body || self.members[chat.sender].id != message.sender)
        {
            return Err(self.violation(
                "integrity",
                format!("m{m} stored message {} altered", message.message_id),
            ));
        }
        let body = String::from_utf8_lossy(&message.body).to_string();
        self.tr(|| format!("m{m} got chat {body}"));
        Ok(())
    }

    /// A proposal resolved at honest member `m`: every honest member decides it the same way;
    /// approvals are numbered in the order they first came.
    fn on_resolved(&mut self, m: usize, proposal_id: u64, approved: bool) -> R<()> {
        let decisions = self.ledger.decisions.entry(proposal_id).or_default();
        decisions.insert(m, approved);
        if let Some((other, _)) = decisions.iter().find(|(_, d)| **d != approved) {
            let other = *other;
            let what = self.proposal_label(proposal_id);
            return Err(self.violation(
                "consensus",
                format!(
                    "{what}: m{m} decided {approved}, m{other} decided {}",
                    !approved
                ),
            ));
        }
        if approved {
            let order = self.ledger.approvals + 1;
            if let Some(p) = self.ledger.proposals.get_mut(&proposal_id)
                && p.approved.is_none()
            {
                p.approved = Some(order);
                self.ledger.approvals = order;
            }
        }
        let what = self.proposal_label(proposal_id);
        self.tr(|| format!("m{m} resolved {what}: {approved}"));
        Ok(())
    }

    /// A proposal as the trace shows it: kind and target, never its id (ids bind key
    /// packages, whose bytes differ between runs of one seed).
    pub fn proposal_label(&self, id: u64) -> String {
        match self.ledger.proposals.get(&id) {
            Some(p) => match &p.target {
                Some(t) => format!("{:?}({})", p.kind, self.label(t)),
                None => format!("{:?}", p.kind),
            },
            None => "a proposal".into(),
        }
    }

    fn score_labels(&self, scores: &[(String, i64)]) -> Vec<String> {
        scores
            .iter()
            .map(|(id, s)| format!("{}={s}", self.label(id)))
            .collect()
    }

    /// Short labels (`m3`) for hex member ids.
    pub fn labels(&self, ids: &[String]) -> Vec<String> {
        ids.iter().map(|id| self.label(id)).collect()
    }

    pub fn label(&self, id: &str) -> String {
        match self.members.iter().position(|m| m.id == id) {
            Some(i) => format!("m{i}"),
            None => id.chars().take(8).collect(),
        }
    }

    /// The per-step fork check for member `m` against every honest member in its epoch.
    pub fn check_fork(&mut self, m: usize) -> R<()> {
        let me = &self.members[m];
        if !me.honest() || !me.view.in_group() {
            return Ok(());
        }
        let epoch = me.view.epoch();
        for o in &self.members {
            if o.index == m || !o.honest() || !o.view.in_group() || o.view.epoch() != epoch {
                continue;
            }
            if o.view.auth != me.view.auth || o.view.member_ids() != me.view.member_ids() {
                let (a, b) = (
                    self.labels(&me.view.member_ids()),
                    self.labels(&o.view.member_ids()),
                );
                return Err(self.violation(
                    "fork",
                    format!(
                        "epoch {epoch}: m{m} has members {a:?}, m{} has {b:?}; authenticators {}",
                        o.index,
                        if o.view.auth == me.view.auth {
                            "equal"
                        } else {
                            "differ"
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Convergence, no loss and approved-means-committed, once everything was delivered.
    pub fn check_settled(&mut self) -> R<()> {
        let inside: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].honest() && self.members[*i].view.in_group())
            .collect();
        let Some(&first) = inside.first() else {
            return Ok(());
        };
        let reference = self.members[first].view.clone();
        let ref_info = reference.info.clone().unwrap_or_else(|| unreachable!());
        let scores = |v: &super::world::View| -> Vec<(String, i64)> {
            let mut s: Vec<(String, i64)> = v
                .info
                .iter()
                .flat_map(|i| i.members.iter().map(|m| (m.member_id.clone(), m.score)))
                .collect();
            s.sort();
            s
        };
        for &i in &inside {
            let v = &self.members[i].view;
            let info = v.info.as_ref().unwrap_or_else(|| unreachable!());
            // A state is the member's own, not a difference from the first member.
            if v.epoch() == reference.epoch() && info.state != ConversationState::Working {
                return Err(self.violation(
                    "divergence/state",
                    format!("after healing, m{i} is not working: state {:?}", info.state),
                ));
            }
            let what = if v.epoch() != reference.epoch() {
                Some((
                    "epoch",
                    format!("epoch {} vs {}", v.epoch(), reference.epoch()),
                ))
            } else if v.member_ids() != reference.member_ids() {
                Some(("members", "member list".to_string()))
            } else if v.auth != reference.auth {
                Some(("authenticator", "epoch authenticator".to_string()))
            } else if info.stewards != ref_info.stewards {
                Some((
                    "stewards",
                    format!(
                        "steward list {:?} vs {:?}",
                        self.labels(&info.stewards),
                        self.labels(&ref_info.stewards)
                    ),
                ))
            } else if self.cfg.check_scores && scores(v) != scores(&reference) {
                let (a, b) = (
                    self.score_labels(&scores(v)),
                    self.score_labels(&scores(&reference)),
                );
                Some(("scores", format!("scores {a:?} vs {b:?}")))
            } else {
                None
            };
            if let Some((class, what)) = what {
                return Err(self.violation(
                    &format!("divergence/{class}"),
                    format!("after healing, m{i} and m{first} differ: {what}"),
                ));
            }
        }
        let listed = reference.member_ids();
        for h in 0..self.members.len() {
            let m = &self.members[h];
            if m.honest() && !m.view.in_group() && listed.contains(&m.id) {
                let state = m.view.state();
                return Err(self.violation(
                    "ghost",
                    format!("the group lists m{h}, which is not in it (state {state:?})"),
                ));
            }
        }
        self.check_no_loss(&inside)?;
        self.check_committed(&listed)
    }

    fn check_no_loss(&mut self, inside: &[usize]) -> R<()> {
        let mut excused = 0;
        for (id, chat) in &self.ledger.chats {
            let sender = &self.members[chat.sender];
            if sender.view.tenure.map(|t| t.id) != Some(chat.tenure) {
                continue; // the sender left since: members may refuse its late traffic
            }
            for &r in inside {
                let Some(t) = self.members[r].view.tenure else {
                    continue;
                };
                if r == chat.sender || t.start_epoch > chat.epoch {
                    continue;
                }
                if self.ledger.received[r].contains(id) {
                    continue;
                }
                if self.ledger.excused.contains(&(r, id.clone())) {
                    excused += 1;
                    continue;
                }
                let (s, e, body) = (chat.sender, chat.epoch, String::from_utf8_lossy(&chat.body));
                let detail = format!(
                    "m{r} (in the group since epoch {}) never got chat {body} of m{s} sent in epoch {e}",
                    t.start_epoch
                );
                return Err(self.violation("loss", detail));
            }
        }
        self.stats.stale_chats = excused;
        Ok(())
    }

    fn check_committed(&mut self, listed: &[String]) -> R<()> {
        let mut latest: BTreeMap<String, (u64, u64, ProposalKind)> = BTreeMap::new();
        for (pid, p) in &self.ledger.proposals {
            let (Some(order), Some(target)) = (p.approved, p.target.clone()) else {
                continue;
            };
            if p.kind == ProposalKind::StewardElection {
                continue;
            }
            let e = latest.entry(target).or_insert((order, *pid, p.kind));
            if order > e.0 {
                *e = (order, *pid, p.kind);
            }
        }
        for (target, (_, _, kind)) in latest {
            let member = listed.contains(&target);
            let want = kind == ProposalKind::AddMember;
            if member != want {
                let who = self.label(&target);
                return Err(self.violation(
                    "not committed",
                    format!("approved {kind:?} of {who} is not reflected after healing"),
                ));
            }
        }
        Ok(())
    }

    /// At the very end: each honest member's stored history holds what it heard, once.
    pub fn check_histories(&mut self) -> R<()> {
        for m in 0..self.members.len() {
            if !self.members[m].honest() || self.members[m].client.is_none() {
                continue;
            }
            let Some((result, _)) =
                self.invoke(m, "messages", |c| c.messages(CONV.into(), None, u32::MAX))?
            else {
                continue;
            };
            let Ok(rows) = result else { continue };
            let mut ids = BTreeSet::new();
            for row in &rows {
                if !ids.insert(row.message_id.clone()) {
                    return Err(self.violation(
                        "applied twice",
                        format!("m{m} stores {} twice", row.message_id),
                    ));
                }
            }
            if let Some(missing) = self.ledger.received[m].iter().find(|id| !ids.contains(*id)) {
                let missing = missing.clone();
                return Err(self.violation(
                    "loss",
                    format!("m{m} announced {missing} but its history lacks it"),
                ));
            }
        }
        Ok(())
    }
}
