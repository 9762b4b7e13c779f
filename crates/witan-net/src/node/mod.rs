//! The service node (`witan-node`): an always-on peer that relays every shard of its
//! cluster and keeps what it relays in an SQLite archive (`archive.rs`) to answer history
//! queries — the relay and store roles of a Waku service node, for witan's traffic.
//!
//! It validates every relayed message (a Waku message within the size limits) before
//! forwarding it, stores it before forwarding it (so a member that saw a message live can
//! always find it in the store afterwards), and prunes the archive by its retention every
//! [`PRUNE_INTERVAL`]. Its libp2p key is kept in the archive, so its address survives a
//! restart.

pub mod archive;

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};

pub use archive::{Archive, Retention};

use crate::behaviour::{self, Behaviour, BehaviourEvent, Role, parse_peer_address};
use crate::error::NetError;
use crate::limits::Limits;
use crate::waku::WakuMessage;
use crate::waku::sharding::Sharding;
use crate::waku::store_query::{StoreQueryRequest, StoreQueryResponse};

/// How often the archive is pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(30);
const KEY_META: &str = "node.key";

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub listen: Vec<Multiaddr>,
    /// Other service nodes to dial (each ending in `/p2p/<peer id>`).
    pub peers: Vec<Multiaddr>,
    /// The archive file; `None` keeps it in memory.
    pub archive_path: Option<PathBuf>,
    pub retention: Retention,
    pub sharding: Sharding,
    pub limits: Limits,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: vec![
                Multiaddr::empty()
                    .with(Protocol::Ip4(Ipv4Addr::LOCALHOST))
                    .with(Protocol::Tcp(0)),
            ],
            peers: Vec::new(),
            archive_path: None,
            retention: Retention::default(),
            sharding: Sharding::default(),
            limits: Limits::default(),
        }
    }
}

/// What a node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A listen address, ending in `/p2p/<peer id>`.
    Listening {
        address: Multiaddr,
    },
    Connected {
        peer: PeerId,
        address: Multiaddr,
    },
    Disconnected {
        peer: PeerId,
    },
    Stored {
        relay_topic: String,
        content_topic: String,
        bytes: usize,
        hash: [u8; 32],
    },
    Refused {
        reason: String,
    },
    Answered {
        peer: PeerId,
        messages: usize,
        status: u32,
    },
    Pruned {
        messages: usize,
    },
}

struct Node {
    swarm: Swarm<Behaviour>,
    archive: Archive,
    config: NodeConfig,
}

/// Runs a node until `shutdown` completes. `on_event` hears everything it does.
pub async fn run(
    config: NodeConfig,
    mut on_event: impl FnMut(NodeEvent),
    shutdown: impl Future<Output = ()>,
) -> Result<(), NetError> {
    let archive = Archive::open(config.archive_path.as_deref())?;
    let key = node_key(&archive)?;
    let mut swarm = behaviour::swarm(key, &config.limits, Role::Node).map_err(NetError::Config)?;
    for topic in config.sharding.all_topics() {
        swarm
            .behaviour_mut()
            .relay
            .subscribe(&IdentTopic::new(topic))
            .map_err(|e| NetError::Config(format!("relay topic: {e:?}")))?;
    }
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| NetError::Config(format!("listen on {address}: {e}")))?;
    }
    for address in &config.peers {
        let (_, address) = parse_peer_address(&address.to_string()).map_err(NetError::Config)?;
        swarm
            .dial(address.clone())
            .map_err(|e| NetError::Unavailable(format!("dial {address}: {e}")))?;
    }
    let mut node = Node {
        swarm,
        archive,
        config,
    };
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            event = node.swarm.select_next_some() => node.event(event, &mut on_event),
            _ = prune.tick() => match node.archive.prune(&node.config.retention, now_ms()) {
                Ok(0) => {}
                Ok(messages) => on_event(NodeEvent::Pruned { messages }),
                Err(e) => on_event(NodeEvent::Refused { reason: format!("pruning failed: {e}") }),
            },
        }
    }
}

/// The node's key, created on first start and kept in the archive.
fn node_key(archive: &Archive) -> Result<Keypair, NetError> {
    if let Some(bytes) = archive.meta_get(KEY_META)? {
        return Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| NetError::Database(format!("stored node key: {e}")));
    }
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| NetError::Config(format!("node key: {e}")))?;
    archive.meta_set(KEY_META, &bytes)?;
    Ok(key)
}

impl Node {
    fn event(&mut self, event: SwarmEvent<BehaviourEvent>, on_event: &mut impl FnMut(NodeEvent)) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let id = *self.swarm.local_peer_id();
                let address = address.with_p2p(id).unwrap_or_else(|a| a);
                on_event(NodeEvent::Listening { address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => on_event(NodeEvent::Connected {
                peer: peer_id,
                address: endpoint.get_remote_address().clone(),
            }),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => on_event(NodeEvent::Disconnected { peer: peer_id }),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let acceptance = self.keep(&message, on_event);
                self.swarm
                    .behaviour_mut()
                    .relay
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Store(request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            })) => {
                let response = self.answer(&request);
                on_event(NodeEvent::Answered {
                    peer,
                    messages: response.messages.len(),
                    status: response.status_code.unwrap_or(0),
                });
                // The member may have given up waiting; nothing to do then.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .store
                    .send_response(channel, response);
            }
            _ => {}
        }
    }

    /// Validates and stores a relayed message; the verdict decides whether it is forwarded.
    fn keep(
        &self,
        message: &gossipsub::Message,
        on_event: &mut impl FnMut(NodeEvent),
    ) -> gossipsub::MessageAcceptance {
        let relay_topic = message.topic.as_str();
        let waku =
            match WakuMessage::decode_checked(&message.data, self.config.limits.max_packet_bytes) {
                Ok(waku) => waku,
                Err(e) => {
                    on_event(NodeEvent::Refused {
                        reason: e.to_string(),
                    });
                    return gossipsub::MessageAcceptance::Reject;
                }
            };
        match self.archive.insert(relay_topic, &waku, now_ms()) {
            Ok(true) => on_event(NodeEvent::Stored {
                relay_topic: relay_topic.to_string(),
                content_topic: waku.content_topic.clone(),
                bytes: waku.payload.len(),
                hash: waku.hash(relay_topic),
            }),
            Ok(false) => {}
            Err(e) => {
                // Not kept, so not forwarded either: a member that saw it live could not
                // find it in the store. The publisher's copy goes to its other peers.
                on_event(NodeEvent::Refused {
                    reason: format!("archive: {e}"),
                });
                return gossipsub::MessageAcceptance::Ignore;
            }
        }
        gossipsub::MessageAcceptance::Accept
    }

    fn answer(&self, request: &StoreQueryRequest) -> StoreQueryResponse {
        self.archive.query(request)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A node on a thread of its own (tests, and hosts that embed one).
pub struct NodeHandle {
    /// The node's listen addresses, each ending in `/p2p/<peer id>`.
    pub addresses: Vec<Multiaddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), NetError>>>,
}

impl NodeHandle {
    /// Starts a node; returns once it listens on every address of `config.listen`.
    pub fn spawn(config: NodeConfig) -> Result<NodeHandle, NetError> {
        let listeners = config.listen.len();
        if listeners == 0 {
            return Err(NetError::Config("a node needs a listen address".into()));
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("witan-node".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| NetError::Unavailable(format!("runtime: {e}")))?;
                runtime.block_on(run(
                    config,
                    |event| {
                        if let NodeEvent::Listening { address } = event {
                            let _ = tx.send(address);
                        }
                    },
                    async {
                        let _ = stopped.await;
                    },
                ))
            })
            .map_err(|e| NetError::Unavailable(format!("node thread: {e}")))?;
        let mut addresses = Vec::new();
        while addresses.len() < listeners {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(address) => addresses.push(address),
                Err(_) => {
                    let _ = stop.send(());
                    let reason = match thread.join() {
                        Ok(Err(e)) => e.to_string(),
                        _ => "the node did not start listening".to_string(),
                    };
                    return Err(NetError::Unavailable(reason));
                }
            }
        }
        Ok(NodeHandle {
            addresses,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The first listen address (there is at least one).
    pub fn address(&self) -> Multiaddr {
        self.addresses
            .first()
            .cloned()
            .unwrap_or_else(Multiaddr::empty)
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
