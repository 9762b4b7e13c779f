//! The lines the binaries print: one JSON object per line, so that a person can read them
//! and a program (the story, the tests) can parse them. Written under stdout's lock, one
//! whole line at a time.

use std::io::Write;

use serde_json::{Value, json};
use witan::client::{ConversationInfo, StoredMessage, WitanEvent};

use crate::member::NetEvent;
use crate::node::NodeEvent;

/// Prints one line.
pub fn print(value: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) is no reason to stop the member or node.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

pub fn message(m: &StoredMessage) -> Value {
    json!({
        "seq": m.seq, "sender": m.sender, "text": text(&m.body),
        "message_id": m.message_id, "own": m.own,
    })
}

/// A witan event as a line.
pub fn event(e: &WitanEvent) -> Value {
    match e {
        WitanEvent::MessageReceived {
            conversation_id,
            message: m,
        } => json!({"event": "message", "conversation": conversation_id, "message": message(m)}),
        WitanEvent::VoteRequested {
            conversation_id,
            proposal,
        } => json!({
            "event": "vote_requested", "conversation": conversation_id,
            "proposal": proposal.proposal_id, "kind": format!("{:?}", proposal.kind),
            "target": proposal.target, "proposer": proposal.proposer,
        }),
        WitanEvent::ProposalResolved {
            conversation_id,
            proposal_id,
            approved,
        } => json!({
            "event": "proposal_resolved", "conversation": conversation_id,
            "proposal": proposal_id, "approved": approved,
        }),
        WitanEvent::MembershipChanged {
            conversation_id,
            epoch,
            added,
            removed,
        } => json!({
            "event": "membership_changed", "conversation": conversation_id,
            "epoch": epoch, "added": added, "removed": removed,
        }),
        WitanEvent::StateChanged {
            conversation_id,
            state,
        } => {
            json!({"event": "state", "conversation": conversation_id, "state": format!("{state:?}")})
        }
        WitanEvent::StewardsChanged {
            conversation_id,
            stewards,
        } => json!({"event": "stewards", "conversation": conversation_id, "stewards": stewards}),
        WitanEvent::Joined { conversation_id } => {
            json!({"event": "joined", "conversation": conversation_id})
        }
        WitanEvent::JoinExpired { conversation_id } => {
            json!({"event": "join_expired", "conversation": conversation_id})
        }
        WitanEvent::Left {
            conversation_id,
            reason,
        } => {
            json!({"event": "left", "conversation": conversation_id, "reason": format!("{reason:?}")})
        }
        WitanEvent::RejoinRequired { conversation_id } => {
            json!({"event": "rejoin_required", "conversation": conversation_id})
        }
        WitanEvent::Warning {
            conversation_id,
            message,
        } => json!({"event": "warning", "conversation": conversation_id, "message": message}),
    }
}

/// A conversation's state, its history and its epoch authenticator (equal on two members
/// exactly when they hold the same epoch of the same group).
pub fn status(
    info: &ConversationInfo,
    messages: &[StoredMessage],
    authenticator: Option<&[u8]>,
) -> Value {
    let mut members: Vec<&str> = info.members.iter().map(|m| m.member_id.as_str()).collect();
    members.sort_unstable();
    json!({"status": {
        "conversation": info.conversation_id,
        "state": format!("{:?}", info.state),
        "epoch": info.epoch,
        "members": members,
        "stewards": info.stewards,
        "epoch_steward": info.epoch_steward,
        "open_proposals": info.open_proposals.iter().map(|p| p.proposal_id).collect::<Vec<_>>(),
        "authenticator": authenticator.map(hex::encode),
        "messages": messages.iter().map(message).collect::<Vec<_>>(),
    }})
}

pub fn net(e: &NetEvent) -> Value {
    match e {
        NetEvent::Listening { address } => {
            json!({"net": "listening", "address": address.to_string()})
        }
        NetEvent::Dialing { address } => json!({"net": "dialing", "address": address.to_string()}),
        NetEvent::Connected { peer, address } => {
            json!({"net": "connected", "peer": peer.to_string(), "address": address.to_string()})
        }
        NetEvent::Disconnected { peer } => json!({"net": "disconnected", "peer": peer.to_string()}),
        NetEvent::Delivered {
            packets,
            accepted,
            duplicates,
            rejected,
        } => json!({
            "net": "delivered", "packets": packets, "accepted": accepted,
            "duplicates": duplicates, "rejected": rejected,
        }),
        NetEvent::CaughtUp { pages, packets } => {
            json!({"net": "caught_up", "pages": pages, "packets": packets})
        }
        NetEvent::Warning { message } => json!({"net": "warning", "message": message}),
    }
}

pub fn node(e: &NodeEvent) -> Value {
    match e {
        NodeEvent::Listening { address } => {
            json!({"node": "listening", "address": address.to_string()})
        }
        NodeEvent::Connected { peer, address } => {
            json!({"node": "connected", "peer": peer.to_string(), "address": address.to_string()})
        }
        NodeEvent::Disconnected { peer } => {
            json!({"node": "disconnected", "peer": peer.to_string()})
        }
        NodeEvent::Stored {
            relay_topic,
            content_topic,
            bytes,
            hash,
        } => json!({
            "node": "stored", "relay_topic": relay_topic, "content_topic": content_topic,
            "bytes": bytes, "hash": hex::encode(hash),
        }),
        NodeEvent::Refused { reason } => json!({"node": "refused", "reason": reason}),
        NodeEvent::Answered {
            peer,
            messages,
            status,
        } => {
            json!({"node": "answered", "peer": peer.to_string(), "messages": messages, "status": status})
        }
        NodeEvent::Pruned { messages } => json!({"node": "pruned", "messages": messages}),
    }
}
