//! Read-only summaries of a conversation for the host: members with scores, the steward list,
//! open proposals.

use super::{Conversation, State};
use crate::mls::MemberId;
use crate::protocol::consensus::{Ballot, ProposalKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalView {
    pub proposal_id: u64,
    pub kind: ProposalKind,
    pub target: Option<MemberId>,
    pub proposer: MemberId,
    pub expires_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub member_id: MemberId,
    pub score: i64,
    pub is_steward: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationView {
    pub conversation_id: String,
    pub state: State,
    pub epoch: u64,
    pub members: Vec<MemberView>,
    pub stewards: Vec<MemberId>,
    pub epoch_steward: Option<MemberId>,
    pub open_proposals: Vec<ProposalView>,
}

impl Conversation {
    pub fn proposal_view(&self, b: &Ballot) -> ProposalView {
        ProposalView {
            proposal_id: b.id,
            kind: b.kind(),
            target: b.action.target(),
            proposer: b.owner,
            expires_at_ms: b.expires_at_ms,
        }
    }

    pub fn view(&self) -> ConversationView {
        let stewards = self.stewards.active();
        let members = self
            .members
            .iter()
            .map(|m| MemberView {
                member_id: *m,
                score: self
                    .scores
                    .get(m)
                    .unwrap_or(self.settings.default_peer_score),
                is_steward: stewards.contains(m),
            })
            .collect();
        let epoch_steward = if self.is_member_state() {
            self.stewards.epoch_steward(self.epoch)
        } else {
            None
        };
        ConversationView {
            conversation_id: self.id.clone(),
            state: self.state,
            epoch: self.epoch,
            members,
            stewards,
            epoch_steward,
            open_proposals: self
                .ballots
                .values()
                .filter(|b| b.decision.is_none())
                .map(|b| self.proposal_view(b))
                .collect(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }
}
