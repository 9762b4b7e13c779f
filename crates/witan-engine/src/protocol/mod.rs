//! The de-MLS engine for one conversation, sans-IO.
//!
//! Inputs are an inbound envelope, a local command or a tick, always with the current time;
//! outputs are packets to publish, events for the host and chat messages for the history.
//! The engine never reads a clock, spawns a thread or touches SQL: MLS state goes through the
//! `mls::MlsProvider` it is handed (its reads are the caller's storage, its writes the caller
//! persists), and the engine's own state ([`Conversation`]) is a versioned schema in parts
//! that the caller persists in the same transaction (`conversation::persist`). A step that
//! returns an error must be discarded by the caller (state and MLS writes alike), which is
//! how bad input "changes nothing".
//!
//! The parts, each owning its state: [`ballot_box`] (proposals, votes, tentative tallies,
//! evidence), [`commit_round`] (certified commits), [`steward_schedule`] (who leads which
//! round), [`score_book`] (peer scores), [`join_queue`] (outsiders' join requests). The
//! dispatcher [`Conversation`] routes inputs to them and acts on what they return.

pub mod ballot_box;
pub mod commit_round;
pub mod conversation;
pub mod join_queue;
pub mod score_book;
pub mod settings;
pub mod steward_schedule;

/// The whole state of a conversation that others can grow, at most: what a notification
/// extension decodes on a wake-up (16 MiB of its 24 MiB) less a margin. The bounds of the
/// parts sum within it (`state_budget_tests`): the ballot box (`ballot_box::MAX_OPEN_BYTES`,
/// votes included; orphan votes and the resolved-proposal memory by count), the join queue
/// (`join_queue::MAX_REQUEST_BYTES`), the commit round (the current round's candidate and
/// each lock at most `commit_round::MAX_CANDIDATE_BYTES`, the others together
/// `commit_round::MAX_KEPT_CANDIDATE_BYTES`) and the certified-commit archive.
pub const STATE_BUDGET_BYTES: usize = 16 * 1024 * 1024;

pub use ballot_box::{Action, BallotError, ProposalKind};
pub use conversation::{
    Conversation, ConversationView, MemberView, PartKey, ProposalView, State, StateError,
    StoredVote, VoteChanges,
};
pub use settings::Settings;

use crate::mls::{Identity, MemberId, MlsError, MlsProvider};
use witan_wire::WireError;

/// What the engine needs from its driver for one step.
pub struct Ctx<'a, 'p> {
    pub provider: &'a MlsProvider<'p>,
    pub identity: &'a Identity,
    pub now_ms: u64,
    /// Extension mode (a notification extension with little memory and time): inbound
    /// traffic is applied — chat is decrypted, received commits are applied so later messages
    /// stay readable — and the round's work a sleeping group needs is done: automatic votes
    /// that are due, prevotes and precommits, join takeovers (an add proposal), round
    /// timeouts (a NewRound) and leading a round (one commit of at most
    /// `max_commit_proposals` proposals), so that rounds move on during push wake-ups. Work
    /// that can wait for the app (relaying, emergencies, catch-up requests) is not started;
    /// its deadlines stay stored and fire in the app's next poll.
    pub defer_governance: bool,
}

/// A packet the driver must publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Hex of the envelope's packet id.
    pub packet_id: String,
    /// What receivers de-duplicate the packet on (`wire::seen_key`); its sender marks it seen
    /// too, so that its own packet coming back is a duplicate — unless `copy_known`.
    pub seen: witan_wire::SeenKey,
    /// A sealed packet: a copy of it is known as one without a mark (see
    /// [`Output::copy_known`]; its own vote coming back is its sender's, counted when cast).
    pub copy_known: bool,
}

/// A chat message to store in the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRecord {
    pub message_id: String,
    pub sender: MemberId,
    pub body: Vec<u8>,
    pub sent_at_ms: u64,
    pub own: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    SelfLeave,
    Removed,
}

/// Events for the host, delivered by the driver after the step is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    MessageReceived(ChatRecord),
    VoteRequested(ProposalView),
    ProposalResolved {
        proposal_id: u64,
        approved: bool,
    },
    MembershipChanged {
        epoch: u64,
        added: Vec<MemberId>,
        removed: Vec<MemberId>,
    },
    StateChanged(State),
    StewardsChanged(Vec<MemberId>),
    Joined,
    JoinExpired,
    Left(LeaveReason),
    /// The member fell too far behind to catch up and must re-join with a fresh key package.
    RejoinRequired,
    Warning(String),
}

/// Everything one step produced.
#[derive(Debug, Default)]
pub struct Output {
    pub outbound: Vec<Outbound>,
    pub events: Vec<Event>,
    pub messages: Vec<ChatRecord>,
    /// The packet belongs to this future epoch: the driver should keep it and feed it again
    /// once the conversation reached that epoch.
    pub buffer_for_epoch: Option<u64>,
    /// The MLS epoch moved during this step (buffered packets may now apply).
    pub epoch_advanced: bool,
    /// The packet was a copy of a message this member read before (MLS refused its used-up
    /// key, or the vote it seals was counted already or is on a resolved proposal, or is
    /// this member's own): nothing changed.
    pub duplicate: bool,
    /// The packet was a sealed vote, prevote or precommit: a copy of it is the same vote
    /// again, which the ballot box or the round counts once, so the driver need not remember
    /// the packet to know a copy (docs/safety.md, "Votes outside MLS").
    pub copy_known: bool,
}

impl From<crate::mls::BadMemberId> for ProtocolError {
    fn from(e: crate::mls::BadMemberId) -> Self {
        ProtocolError::Mls(e.into())
    }
}

impl From<commit_round::QuorumError> for ProtocolError {
    fn from(e: commit_round::QuorumError) -> Self {
        ProtocolError::InvalidInput(e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed packet: {0}")]
    Wire(#[from] WireError),
    #[error("mls: {0}")]
    Mls(#[from] MlsError),
    #[error("{0}")]
    Vote(#[from] BallotError),
    #[error("packet is for another conversation")]
    WrongConversation,
    #[error("sender is not a member of the conversation")]
    NotMember,
    #[error("sender field does not match the authenticated sender")]
    SenderMismatch,
    #[error("{0}")]
    InvalidInput(String),
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    #[error("not possible in state {state:?}: {reason}")]
    WrongState { state: State, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("held back: an emergency proposal is open")]
    HeldBack,
    #[error("packet is too old for this member's epoch")]
    Stale,
    #[error("welcome refused: {0}")]
    UntrustedWelcome(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// Topic names: one for the group's encrypted traffic, one for join requests and welcomes.
pub mod topics {
    pub fn app(conversation_id: &str) -> String {
        format!("/witan/1/{}/app", hex::encode(conversation_id.as_bytes()))
    }
    pub fn welcome(conversation_id: &str) -> String {
        format!(
            "/witan/1/{}/welcome",
            hex::encode(conversation_id.as_bytes())
        )
    }
}

#[cfg(test)]
mod state_budget_tests {
    use super::*;

    /// The sum of every part's bound, with the per-entry sizes of the parts bounded by count.
    #[test]
    fn the_bounds_of_every_part_sum_within_the_wake_up_budget() {
        use commit_round::{MAX_CANDIDATE_BYTES, MAX_KEPT_CANDIDATE_BYTES};
        let ballots = ballot_box::MAX_OPEN_BYTES
            + ballot_box::MAX_ORPHANS * 260
            + ballot_box::MAX_RESOLVED * 48;
        // The current round's candidate, this member's lock, the newest lock of the round it
        // leads and of the rounds ahead, and the rest.
        let round = 4 * MAX_CANDIDATE_BYTES + MAX_KEPT_CANDIDATE_BYTES;
        // Its byte bound, or its newest entry alone (a candidate and a certificate).
        let archive = conversation::MAX_ARCHIVE_BYTES.max(MAX_CANDIDATE_BYTES + 128 * 1024);
        let joins = join_queue::MAX_REQUEST_BYTES + join_queue::MAX_SPENT * 32;
        let sum = ballots + round + archive + joins;
        assert!(sum <= STATE_BUDGET_BYTES - 512 * 1024, "{sum} bytes");
    }
}
