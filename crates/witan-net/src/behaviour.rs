//! The libp2p side shared by members and service nodes: the network behaviour (relay =
//! gossipsub under Waku's protocol id, store = request-response, identify), the swarm over
//! TCP + Noise + Yamux on tokio, and address helpers.
//!
//! The relay runs gossipsub without signatures (anonymous, as Waku relay does): witan's
//! packets are signed and encrypted inside. A message's id is its Waku message hash, so the
//! same message relayed twice is recognised as one. Every message is validated before it is
//! forwarded: it must decode as a Waku message within the size limits.

use std::time::Duration;

use libp2p::gossipsub::{self, MessageAuthenticity, MessageId, ValidationMode, Version};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, connection_limits, identify, noise,
    tcp, yamux,
};
use sha2::{Digest, Sha256};

use crate::codec::StoreCodec;
use crate::limits::Limits;
use crate::waku::store_query::STORE_QUERY_PROTOCOL;
use crate::waku::{RELAY_PROTOCOL, WakuMessage};

/// How long a connection with nothing going on stays open. Members and nodes keep their
/// connections to each other; a dropped one is dialled again.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3_600);
/// How long a store query may take before it fails.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which side of the store query this peer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Asks queries (a member).
    Member,
    /// Answers them (a service node).
    Node,
}

/// Connections to one peer at most (a redial racing an old connection needs two).
const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Incoming connections a member accepts at most (it is dialled by few, if any).
const MAX_MEMBER_INCOMING: u32 = 64;
/// Incoming connections a service node accepts at most.
const MAX_NODE_INCOMING: u32 = 8_192;
/// A service node is the hub of a star: it keeps up to this many members of a shard in its
/// relay mesh (so each gets every message pushed, not gossiped), where a member keeps
/// gossipsub's default of 12 peers at most.
const NODE_MESH_HIGH: usize = 256;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub relay: gossipsub::Behaviour,
    pub store: request_response::Behaviour<StoreCodec>,
    pub identify: identify::Behaviour,
}

/// The relay's message id: the Waku message hash; bytes that are not a Waku message get a
/// hash of their own (they are rejected by validation anyway).
fn message_id(message: &gossipsub::Message) -> MessageId {
    let topic = message.topic.as_str();
    match <WakuMessage as prost::Message>::decode(message.data.as_slice()) {
        Ok(waku) => MessageId::new(&waku.hash(topic)),
        Err(_) => {
            let mut h = Sha256::new();
            h.update(b"undecodable");
            h.update(topic.as_bytes());
            h.update(&message.data);
            MessageId::new(&h.finalize())
        }
    }
}

fn relay_config(limits: &Limits, role: Role) -> Result<gossipsub::Config, String> {
    let mut config = gossipsub::ConfigBuilder::default();
    if role == Role::Node {
        config
            .mesh_n_low(4)
            .mesh_n(64)
            .mesh_n_high(NODE_MESH_HIGH)
            .mesh_outbound_min(2);
    }
    config
        .protocol_id(RELAY_PROTOCOL, Version::V1_1)
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(limits.max_transmit_bytes())
        .build()
        .map_err(|e| format!("relay configuration: {e}"))
}

/// The behaviour for one peer.
pub fn behaviour(key: &Keypair, limits: &Limits, role: Role) -> Result<Behaviour, String> {
    let relay =
        gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, relay_config(limits, role)?)
            .map_err(|e| format!("relay: {e}"))?;
    let (support, incoming) = match role {
        Role::Member => (ProtocolSupport::Outbound, MAX_MEMBER_INCOMING),
        Role::Node => (ProtocolSupport::Inbound, MAX_NODE_INCOMING),
    };
    let limits_behaviour = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
            .with_max_established_incoming(Some(incoming))
            .with_max_pending_incoming(Some(incoming)),
    );
    let store = request_response::Behaviour::with_codec(
        StoreCodec {
            max_response_bytes: limits.max_response_bytes(),
        },
        [(StreamProtocol::new(STORE_QUERY_PROTOCOL), support)],
        request_response::Config::default().with_request_timeout(QUERY_TIMEOUT),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new("/ipfs/id/1.0.0".into(), key.public())
            .with_agent_version(format!("witan-net/{}", env!("CARGO_PKG_VERSION"))),
    );
    Ok(Behaviour {
        limits: limits_behaviour,
        relay,
        store,
        identify,
    })
}

/// A swarm over TCP (no delay) + Noise + Yamux. Must be called inside a tokio runtime.
pub fn swarm(key: Keypair, limits: &Limits, role: Role) -> Result<Swarm<Behaviour>, String> {
    let behaviour = behaviour(&key, limits, role)?;
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| format!("transport: {e}"))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| format!("behaviour: {e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build())
}

/// The peer id at the end of an address (`…/p2p/<id>`).
pub fn peer_id_of(address: &Multiaddr) -> Option<PeerId> {
    match address.iter().last() {
        Some(Protocol::P2p(id)) => Some(id),
        _ => None,
    }
}

/// Parses a dial address; it must name its peer (`…/p2p/<id>`).
pub fn parse_peer_address(text: &str) -> Result<(PeerId, Multiaddr), String> {
    let address: Multiaddr = text
        .trim()
        .parse()
        .map_err(|e| format!("address {text:?}: {e}"))?;
    let peer =
        peer_id_of(&address).ok_or_else(|| format!("address {text:?} names no /p2p/ peer id"))?;
    Ok((peer, address))
}

/// Whether every IP in the address is a loopback address (and there is at least one).
pub fn is_loopback(address: &Multiaddr) -> bool {
    let mut saw_ip = false;
    for part in address.iter() {
        match part {
            Protocol::Ip4(ip) => {
                saw_ip = true;
                if !ip.is_loopback() {
                    return false;
                }
            }
            Protocol::Ip6(ip) => {
                saw_ip = true;
                if !ip.is_loopback() {
                    return false;
                }
            }
            Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_) => {
                return false;
            }
            _ => {}
        }
    }
    saw_ip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_peer_and_loopback_is_recognised() {
        let key = Keypair::generate_ed25519();
        let id = key.public().to_peer_id();
        let text = format!("/ip4/127.0.0.1/tcp/4001/p2p/{id}");
        let (peer, address) = parse_peer_address(&text).unwrap();
        assert_eq!(peer, id);
        assert!(is_loopback(&address));
        assert!(parse_peer_address("/ip4/127.0.0.1/tcp/4001").is_err());
        assert!(parse_peer_address("not an address").is_err());
        assert!(!is_loopback(&"/ip4/10.0.0.1/tcp/1".parse().unwrap()));
        assert!(is_loopback(&"/ip6/::1/tcp/1".parse().unwrap()));
        assert!(!is_loopback(&"/dns4/localhost/tcp/1".parse().unwrap()));
        assert!(!is_loopback(&"/tcp/1".parse().unwrap()));
    }

    #[test]
    fn the_message_id_is_the_waku_hash() {
        let waku = WakuMessage::new("/witan/1/ab/app", vec![1, 2, 3], 99);
        let message = gossipsub::Message {
            source: None,
            data: waku.to_bytes(),
            sequence_number: None,
            topic: gossipsub::TopicHash::from_raw("/waku/2/rs/66/0"),
        };
        assert_eq!(
            message_id(&message).0,
            waku.hash("/waku/2/rs/66/0").to_vec()
        );
        let junk = gossipsub::Message {
            data: vec![0xff; 3],
            ..message
        };
        assert_eq!(message_id(&junk).0.len(), 32);
        assert!(relay_config(&Limits::default(), Role::Member).is_ok());
        assert!(relay_config(&Limits::default(), Role::Node).is_ok());
    }
}
