//! Joining and steward elections: key packages seen on the welcome topic become add proposals
//! made by the epoch steward; a welcome with its conversation sync turns a pending node into a
//! member; a used-up steward list is replaced through an election proposal whose list every
//! member recomputes (spec "Steward list creation").
//!
//! Elections: when the list is used up (or a freeze round failed), the members of the new
//! deterministic list propose it one after another, the k-th waiting k freeze windows, so a
//! silent first steward does not stall the group. Groups no larger than `sn_min` need no vote:
//! every member is a steward and the list is recomputed after each commit.

use super::{Conversation, JoinRequest, State};
use crate::mls::{self, Group, MemberId};
use crate::protocol::consensus::Action;
use crate::protocol::scoring::Scores;
use crate::protocol::settings::Settings;
use crate::protocol::steward_list::{self, StewardList};
use crate::protocol::{Ctx, Event, Output, ProtocolError};
use witan_wire::{self as wire, group_payload::Content};

impl Conversation {
    pub(super) fn on_join_request(
        &mut self,
        ctx: &Ctx,
        req: wire::JoinRequest,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let info = mls::validate_key_package(ctx.provider, &req.key_package)?;
        let member = info.member_id;
        if self.members.contains(&member) || self.join_requests.contains_key(&member) {
            return Ok(());
        }
        self.join_requests.insert(
            member,
            JoinRequest {
                key_package: req.key_package,
                seen_at_ms: ctx.now_ms,
            },
        );
        self.bound_collections();
        let mut group = self.load_group(ctx)?;
        self.propose_pending_joins(ctx, &mut group, out)
    }

    /// The epoch steward turns stored join requests into add proposals.
    pub(super) fn propose_pending_joins(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let timeout = self.settings.pending_join_timeout_ms;
        self.join_requests
            .retain(|_, r| r.seen_at_ms.saturating_add(timeout) > ctx.now_ms);
        let members = self.members.clone();
        self.join_requests.retain(|m, _| !members.contains(m));
        if ctx.defer_governance
            || !matches!(self.state, State::Working | State::Freezing)
            || self.stewards.epoch_steward(self.epoch) != Some(self.me)
        {
            return Ok(());
        }
        let mut pending: Vec<(u64, MemberId, Vec<u8>)> = self
            .join_requests
            .iter()
            .filter(|(m, _)| {
                !self
                    .ballots
                    .values()
                    .any(|b| matches!(&b.action, Action::Add { member, .. } if member == *m))
            })
            .map(|(m, r)| (r.seen_at_ms, *m, r.key_package.clone()))
            .collect();
        pending.sort();
        for (_, member, key_package) in pending {
            self.propose(
                ctx,
                group,
                Action::Add {
                    member,
                    key_package,
                },
                out,
            )?;
        }
        Ok(())
    }

    pub(super) fn on_welcome(
        &mut self,
        ctx: &Ctx,
        packet: wire::WelcomePacket,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if !packet
            .joiners
            .iter()
            .any(|j| j.as_slice() == self.me.as_bytes())
        {
            return Ok(());
        }
        let mut group = Group::join(ctx.provider, &packet.welcome)?;
        let sync = group.decrypt(ctx.provider, &packet.sync)?;
        let payload = wire::decode_group_payload(&sync.plaintext)?;
        let Some(Content::Sync(sync)) = payload.content else {
            return Err(ProtocolError::InvalidInput(
                "welcome without a conversation sync".into(),
            ));
        };
        let settings = sync
            .settings
            .as_ref()
            .ok_or_else(|| ProtocolError::InvalidInput("sync without settings".into()))
            .and_then(Settings::from_wire)?;
        let stewards = sync
            .stewards
            .iter()
            .map(|s| MemberId::from_slice(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut scores = Scores::default();
        for s in &sync.scores {
            scores.set(MemberId::from_slice(&s.member_id)?, s.score);
        }
        self.settings = settings;
        self.epoch = group.epoch();
        self.members = group.members();
        self.member_counts
            .insert(self.epoch, self.members.len() as u32);
        for m in &self.members {
            scores.ensure(*m, self.settings.default_peer_score);
        }
        self.scores = scores;
        self.stewards = StewardList {
            stewards,
            base_epoch: sync.steward_base_epoch,
            retry_round: sync.retry_round,
        };
        self.retry_round = 0;
        self.recovering = sync.recovering;
        self.pending_join_until = None;
        out.epoch_advanced = true;
        out.events.push(Event::Joined);
        self.set_state(State::Working, out);
        out.events
            .push(Event::StewardsChanged(self.stewards.active()));
        self.after_epoch_change(ctx, &mut group, out)
    }

    /// The conversation sync a committer sends to its joiners.
    pub(super) fn sync_payload(&self) -> Content {
        Content::Sync(wire::ConversationSync {
            settings: Some(self.settings.to_wire()),
            stewards: self
                .stewards
                .stewards
                .iter()
                .map(|m| m.as_bytes().to_vec())
                .collect(),
            retry_round: self.stewards.retry_round,
            scores: self
                .scores
                .iter()
                .map(|(m, s)| wire::PeerScore {
                    member_id: m.as_bytes().to_vec(),
                    score: *s,
                })
                .collect(),
            steward_base_epoch: self.stewards.base_epoch,
            recovering: self.recovering,
        })
    }

    /// Members that may be elected: not leaving and not being removed by an approved proposal.
    pub(super) fn eligible_stewards(&self) -> Vec<MemberId> {
        let going: Vec<MemberId> = self
            .ballots
            .values()
            .filter(|b| b.decision == Some(true))
            .filter_map(|b| b.action.removes())
            .collect();
        self.members
            .iter()
            .copied()
            .filter(|m| !going.contains(m))
            .collect()
    }

    pub(super) fn expected_list(&self) -> Vec<MemberId> {
        steward_list::deterministic(
            &self.id,
            self.epoch,
            self.retry_round,
            &self.eligible_stewards(),
            self.settings.steward_list_min,
            self.settings.steward_list_max,
        )
    }

    pub(super) fn election_matches(&self, ballot_id: u64) -> bool {
        match self.ballots.get(&ballot_id).map(|b| &b.action) {
            Some(Action::Election {
                epoch,
                retry_round,
                stewards,
            }) => {
                *epoch == self.epoch
                    && *retry_round == self.retry_round
                    && *stewards == self.expected_list()
            }
            _ => false,
        }
    }

    pub(super) fn needs_election(&self) -> bool {
        self.state == State::Reelection || self.stewards.exhausted(self.epoch)
    }

    fn election_open(&self) -> bool {
        self.ballots
            .values()
            .any(|b| b.decision.is_none() && matches!(b.action, Action::Election { .. }))
    }

    /// When this member should propose the next list, if it is its turn.
    pub(super) fn election_deadline(&self) -> Option<u64> {
        let since = self.election_since?;
        if !self.needs_election() || self.election_open() {
            return None;
        }
        // Members of the new list go first, in list order; then everyone else in id order, so
        // a list whose members are all silent is still proposed by somebody.
        let list = self.expected_list();
        let position = match list.iter().position(|m| *m == self.me) {
            Some(p) => p,
            None => list.len() + self.members.iter().filter(|m| **m < self.me).count(),
        } as u64;
        Some(since.saturating_add(position.saturating_mul(self.settings.freeze_window_ms)))
    }

    pub(super) fn election_timer(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if !self.needs_election() || self.election_open() {
            self.election_since = None;
            return Ok(());
        }
        let list = self.expected_list();
        // Wait a full round before anyone (including this member) proposes again.
        let span = (list.len() as u64 + 1).saturating_mul(self.settings.freeze_window_ms);
        self.election_since = Some(
            ctx.now_ms
                .saturating_add(self.settings.vote_timeout_ms)
                .saturating_add(span),
        );
        let action = Action::Election {
            epoch: self.epoch,
            retry_round: self.retry_round,
            stewards: list,
        };
        self.propose(ctx, group, action, out)?;
        Ok(())
    }

    /// Starts using a new steward list for the current epoch.
    pub(super) fn adopt_stewards(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        list: Vec<MemberId>,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        self.stewards = StewardList {
            stewards: list,
            base_epoch: self.epoch,
            retry_round: self.retry_round,
        };
        self.election_since = None;
        out.events
            .push(Event::StewardsChanged(self.stewards.active()));
        if self.state == State::Reelection {
            self.recovering = true;
            self.set_state(State::Working, out);
        }
        self.inactivity_at = None;
        self.commit_at = None;
        if self.has_approved_work() {
            self.on_new_approved_work(ctx, out);
        }
        self.propose_pending_joins(ctx, group, out)
    }

    /// Housekeeping after the epoch moved (a commit was applied or this member joined).
    pub(super) fn after_epoch_change(
        &mut self,
        ctx: &Ctx,
        group: &mut Group,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        if self.stewards.exhausted(self.epoch) {
            let eligible = self.eligible_stewards();
            if eligible.len() <= self.settings.steward_list_min as usize {
                let list = self.expected_list();
                return self.adopt_stewards(ctx, group, list, out);
            }
            if self.election_since.is_none() {
                self.election_since = Some(ctx.now_ms);
            }
            return Ok(());
        }
        if self.has_approved_work() {
            self.on_new_approved_work(ctx, out);
        }
        self.propose_pending_joins(ctx, group, out)
    }
}
