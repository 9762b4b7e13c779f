//! The records and enums of the public API (`docs/api.md`), with their conversions from the
//! engine's types. They derive the UniFFI traits here so the `ffi` layer exports them as they
//! are, without copies. Identifiers cross the boundary as strings: member ids as 40 lowercase
//! hex characters, conversation ids as the creator chose them.

use crate::mls::MemberId;
use crate::protocol::{self, ConversationView, MemberView, ProposalView, Settings};
use crate::store::MessageRow;

/// How to open a client.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ClientConfig {
    /// A file path; `":memory:"` for tests (then `suspend` keeps the database open, since
    /// closing it would lose everything).
    pub database_path: String,
    /// 32 bytes kept by the host (Keystore / Keychain). `None`: generated once and kept in the
    /// database. A given secret is never written to the database.
    #[uniffi(default)]
    pub identity_secret: Option<Vec<u8>>,
    /// 32 bytes kept by the host (Keystore / Keychain) that encrypt the database at rest
    /// (SQLCipher; the first 32 bytes of the file stay plain so iOS recognises the WAL
    /// database). `None`: unencrypted. A database written without a key is encrypted in
    /// place the first time it is opened with one. A wrong key fails with `Storage`.
    #[uniffi(default)]
    pub database_key: Option<Vec<u8>>,
    /// Which process this client runs in. `None` is [`ClientRole::App`].
    #[uniffi(default)]
    pub role: Option<ClientRole>,
}

/// Which process a client runs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Enum)]
pub enum ClientRole {
    /// The app: does all the protocol work.
    #[default]
    App,
    /// The notification extension (iOS) or a push handler with tight limits: decrypts and
    /// stores what arrives and returns notifications, but leaves the protocol work that can
    /// wait (voting, commit candidates, freeze rounds, elections) to the app's next run, and
    /// waits at most [`EXTENSION_LOCK_WAIT_MS`] for a database lock held by the app — if the
    /// app holds it longer, the packets are kept aside, unread, for the next run that gets
    /// the lock (`WakeupReport::spooled_packets`).
    NotificationExtension,
}

/// How long a client in the extension role waits for the app's database lock.
pub const EXTENSION_LOCK_WAIT_MS: u64 = 1_500;

/// The page cache of a client in the extension role, in KiB (the app's is the store's
/// default, 1 MiB): half a MiB less of the extension's 16 MiB, for 0–2 ms more CPU on the
/// bench's wake-up (docs/bench.md, row (d)).
pub const EXTENSION_CACHE_KIB: u32 = 512;

/// Settings of a conversation, chosen by its creator and synced to joiners. One field per
/// engine setting ([`Settings`]).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ConversationSettings {
    pub steward_list_min: u32,
    pub steward_list_max: u32,
    pub pending_join_timeout_ms: u64,
    pub commit_inactivity_ms: u64,
    pub recovery_inactivity_ms: u64,
    pub freeze_window_ms: u64,
    pub vote_timeout_ms: u64,
    /// `None`: never vote automatically.
    pub auto_vote_delay_ms: Option<u64>,
    pub default_peer_score: i64,
    pub removal_threshold: i64,
    pub score_commit_reward: i64,
    pub score_missed_commit_penalty: i64,
    pub score_invalid_candidate_penalty: i64,
    pub score_rejected_emergency_penalty: i64,
    pub score_emergency_reward: i64,
    pub max_commit_proposals: u32,
    pub commit_delay_ms: u64,
    pub liveness_criteria_yes: bool,
    pub max_clock_skew_ms: u64,
}

impl From<Settings> for ConversationSettings {
    fn from(s: Settings) -> Self {
        witan_engine::copy_settings!(s, ConversationSettings)
    }
}

impl From<ConversationSettings> for Settings {
    fn from(s: ConversationSettings) -> Self {
        witan_engine::copy_settings!(s, Settings)
    }
}

/// Production defaults.
#[uniffi::export]
pub fn default_conversation_settings() -> ConversationSettings {
    Settings::default().into()
}

/// A packet the host must hand to the network.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct OutboundPacket {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Hex of the envelope's packet id (stable across retries).
    pub packet_id: String,
}

/// A packet that arrived on a subscribed topic.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct InboundPacket {
    pub topic: String,
    pub payload: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ConversationState {
    PendingJoin,
    Working,
    Freezing,
    Selection,
    Reelection,
    Left,
}

impl From<protocol::State> for ConversationState {
    fn from(s: protocol::State) -> Self {
        match s {
            protocol::State::PendingJoin => ConversationState::PendingJoin,
            protocol::State::Working => ConversationState::Working,
            protocol::State::Freezing => ConversationState::Freezing,
            protocol::State::Selection => ConversationState::Selection,
            protocol::State::Reelection => ConversationState::Reelection,
            protocol::State::Left => ConversationState::Left,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MemberInfo {
    pub member_id: String,
    pub score: i64,
    pub is_steward: bool,
}

impl From<&MemberView> for MemberInfo {
    fn from(m: &MemberView) -> Self {
        MemberInfo {
            member_id: m.member_id.to_hex(),
            score: m.score,
            is_steward: m.is_steward,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ProposalKind {
    AddMember,
    RemoveMember,
    SelfLeave,
    StewardElection,
    EmergencyRemoval,
}

impl From<protocol::ProposalKind> for ProposalKind {
    fn from(k: protocol::ProposalKind) -> Self {
        match k {
            protocol::ProposalKind::AddMember => ProposalKind::AddMember,
            protocol::ProposalKind::RemoveMember => ProposalKind::RemoveMember,
            protocol::ProposalKind::SelfLeave => ProposalKind::SelfLeave,
            protocol::ProposalKind::EmergencyRemoval => ProposalKind::EmergencyRemoval,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ProposalInfo {
    pub proposal_id: u64,
    pub kind: ProposalKind,
    /// The member the proposal is about (added, removed, leaving), if any.
    pub target: Option<String>,
    pub proposer: String,
    pub expires_at_ms: u64,
}

impl From<&ProposalView> for ProposalInfo {
    fn from(p: &ProposalView) -> Self {
        ProposalInfo {
            proposal_id: p.proposal_id,
            kind: p.kind.into(),
            target: p.target.map(|m| m.to_hex()),
            proposer: p.proposer.to_hex(),
            expires_at_ms: p.expires_at_ms,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ConversationInfo {
    pub conversation_id: String,
    pub state: ConversationState,
    pub epoch: u64,
    pub members: Vec<MemberInfo>,
    /// The current steward list, in order.
    pub stewards: Vec<String>,
    pub epoch_steward: Option<String>,
    pub open_proposals: Vec<ProposalInfo>,
}

impl From<&ConversationView> for ConversationInfo {
    fn from(v: &ConversationView) -> Self {
        ConversationInfo {
            conversation_id: v.conversation_id.clone(),
            state: v.state.into(),
            epoch: v.epoch,
            members: v.members.iter().map(MemberInfo::from).collect(),
            stewards: hex_ids(&v.stewards),
            epoch_steward: v.epoch_steward.map(|m| m.to_hex()),
            open_proposals: v.open_proposals.iter().map(ProposalInfo::from).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct StoredMessage {
    pub conversation_id: String,
    pub message_id: String,
    /// Position in the conversation's history, starting at 1.
    pub seq: u64,
    pub sender: String,
    pub body: Vec<u8>,
    pub sent_at_ms: u64,
    /// Sent by this client.
    pub own: bool,
}

impl From<MessageRow> for StoredMessage {
    fn from(m: MessageRow) -> Self {
        StoredMessage {
            conversation_id: m.conversation_id,
            message_id: m.message_id,
            seq: m.seq,
            sender: m.sender,
            body: m.body,
            sent_at_ms: m.sent_at_ms,
            own: m.own,
        }
    }
}

/// What `receive` did with a batch of packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct ReceiveReport {
    /// Packets handled (including those buffered for a future epoch).
    pub accepted: u32,
    /// Packets seen before (including this client's own echoes), and votes that count for
    /// nothing any more (their proposal resolved); nothing changed.
    pub duplicates: u32,
    /// Malformed packets, packets for unknown conversations and packets the engine refused;
    /// nothing changed.
    pub rejected: u32,
}

/// What `poll` did, and when it wants to run next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct PollReport {
    /// Earliest conversation deadline or outbox retry (ms since the Unix epoch); `None`:
    /// nothing scheduled.
    pub next_wakeup_at_ms: Option<u64>,
    /// Packets handed to the transport by this call.
    pub sent: u32,
    /// Packets still waiting in the outbox.
    pub outbox_pending: u32,
}

/// One chat message for a push notification.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Notification {
    pub conversation_id: String,
    pub sender: String,
    pub message_id: String,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct WakeupReport {
    pub notifications: Vec<Notification>,
    pub next_wakeup_at_ms: Option<u64>,
    /// Protocol work is due that this run left for the app (extension role): the host should
    /// get the app to run (`poll`) soon, e.g. through a background task.
    #[uniffi(default)]
    pub deferred_work: bool,
    /// Packets kept aside, unread, because the app held the database past the extension's
    /// bound; the next run that gets the lock applies them (no notification for them here).
    #[uniffi(default)]
    pub spooled_packets: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum LeaveReason {
    SelfLeave,
    Removed,
}

impl From<protocol::LeaveReason> for LeaveReason {
    fn from(r: protocol::LeaveReason) -> Self {
        match r {
            protocol::LeaveReason::SelfLeave => LeaveReason::SelfLeave,
            protocol::LeaveReason::Removed => LeaveReason::Removed,
        }
    }
}

/// What the listener hears, after the step that caused it is durably stored.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum WitanEvent {
    MessageReceived {
        conversation_id: String,
        message: StoredMessage,
    },
    VoteRequested {
        conversation_id: String,
        proposal: ProposalInfo,
    },
    ProposalResolved {
        conversation_id: String,
        proposal_id: u64,
        approved: bool,
    },
    MembershipChanged {
        conversation_id: String,
        epoch: u64,
        added: Vec<String>,
        removed: Vec<String>,
    },
    StateChanged {
        conversation_id: String,
        state: ConversationState,
    },
    StewardsChanged {
        conversation_id: String,
        stewards: Vec<String>,
    },
    Joined {
        conversation_id: String,
    },
    JoinExpired {
        conversation_id: String,
    },
    Left {
        conversation_id: String,
        reason: LeaveReason,
    },
    /// This member fell too far behind to catch up: leave and `request_to_join` again with a
    /// fresh key package. (See docs/api.md.)
    RejoinRequired {
        conversation_id: String,
    },
    Warning {
        conversation_id: Option<String>,
        message: String,
    },
}

impl WitanEvent {
    /// Converts an engine event of `conversation_id`. `MessageReceived` is built by the step
    /// (it needs the history sequence number), so it returns `None` here.
    pub(crate) fn from_engine(conversation_id: &str, e: &protocol::Event) -> Option<WitanEvent> {
        let conversation_id = conversation_id.to_string();
        Some(match e {
            protocol::Event::MessageReceived(_) => return None,
            protocol::Event::VoteRequested(p) => WitanEvent::VoteRequested {
                conversation_id,
                proposal: p.into(),
            },
            protocol::Event::ProposalResolved {
                proposal_id,
                approved,
            } => WitanEvent::ProposalResolved {
                conversation_id,
                proposal_id: *proposal_id,
                approved: *approved,
            },
            protocol::Event::MembershipChanged {
                epoch,
                added,
                removed,
            } => WitanEvent::MembershipChanged {
                conversation_id,
                epoch: *epoch,
                added: hex_ids(added),
                removed: hex_ids(removed),
            },
            protocol::Event::StateChanged(s) => WitanEvent::StateChanged {
                conversation_id,
                state: (*s).into(),
            },
            protocol::Event::StewardsChanged(s) => WitanEvent::StewardsChanged {
                conversation_id,
                stewards: hex_ids(s),
            },
            protocol::Event::Joined => WitanEvent::Joined { conversation_id },
            protocol::Event::JoinExpired => WitanEvent::JoinExpired { conversation_id },
            protocol::Event::Left(r) => WitanEvent::Left {
                conversation_id,
                reason: (*r).into(),
            },
            protocol::Event::RejoinRequired => WitanEvent::RejoinRequired { conversation_id },
            protocol::Event::Warning(message) => WitanEvent::Warning {
                conversation_id: Some(conversation_id),
                message: message.clone(),
            },
        })
    }
}

pub(crate) fn hex_ids(ids: &[MemberId]) -> Vec<String> {
    ids.iter().map(|m| m.to_hex()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_convert_both_ways_without_loss() {
        let engine = Settings {
            auto_vote_delay_ms: None,
            commit_delay_ms: 123,
            score_emergency_reward: 9,
            ..Settings::default()
        };
        let api: ConversationSettings = engine.clone().into();
        assert_eq!(api.commit_delay_ms, 123);
        assert_eq!(api.auto_vote_delay_ms, None);
        assert_eq!(Settings::from(api), engine);
        assert_eq!(
            Settings::from(default_conversation_settings()),
            Settings::default()
        );
    }

    #[test]
    fn engine_events_carry_the_conversation_id_and_hex_member_ids() {
        let m = MemberId([0xab; 20]);
        let e = protocol::Event::MembershipChanged {
            epoch: 3,
            added: vec![m],
            removed: vec![],
        };
        assert_eq!(
            WitanEvent::from_engine("c", &e),
            Some(WitanEvent::MembershipChanged {
                conversation_id: "c".into(),
                epoch: 3,
                added: vec!["ab".repeat(20)],
                removed: vec![],
            })
        );
        let chat = protocol::ChatRecord {
            message_id: "00".into(),
            sender: m,
            body: vec![],
            sent_at_ms: 0,
            own: false,
        };
        assert_eq!(
            WitanEvent::from_engine("c", &protocol::Event::MessageReceived(chat)),
            None
        );
    }
}
