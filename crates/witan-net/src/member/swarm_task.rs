//! A member's network task: owns the swarm on the transport's own thread and runs it until
//! told to stop. It publishes what `publish` hands it, joins and leaves relay topics,
//! forwards store queries, validates relayed messages and passes the ones on witan's topics
//! to the delivery thread, and dials its configured peers again whenever a connection drops
//! (1 s, doubling up to 30 s). Told to stop within a moment of a publish, it runs the swarm
//! on for what is left of that moment, so a packet the relay just took reaches the wire.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Sender, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, PublishError};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};
use witan::client::InboundPacket;

use super::NetEvent;
use super::delivery::Delivery;
use super::topics::Shared;
use crate::behaviour::{self, Behaviour, BehaviourEvent, Role};
use crate::limits::Limits;
use crate::waku::WakuMessage;
use crate::waku::store_query::{StoreQueryRequest, StoreQueryResponse};

const REDIAL_FIRST: Duration = Duration::from_secs(1);
const REDIAL_MAX: Duration = Duration::from_secs(30);
/// Store queries waiting for an answer at most (each one blocks a caller).
const MAX_PENDING_QUERIES: usize = 64;
/// How long after a publish a stopping task keeps the connections running.
const PUBLISH_LINGER: Duration = Duration::from_millis(300);
/// How long start-up waits for the listeners to report their addresses.
const LISTEN_WAIT: Duration = Duration::from_secs(5);

pub(crate) type Reply<T> = SyncSender<Result<T, String>>;

pub(crate) enum Command {
    Publish {
        relay_topic: String,
        data: Vec<u8>,
        reply: Reply<()>,
    },
    Join(String),
    Leave(String),
    Query {
        request: StoreQueryRequest,
        reply: Reply<StoreQueryResponse>,
    },
    /// Dial every configured peer that is not connected now (the app came back).
    RedialNow,
}

/// What the task needs to start.
pub(crate) struct Setup {
    pub key: Keypair,
    pub limits: Limits,
    pub listen: Vec<Multiaddr>,
    pub peers: Vec<(PeerId, Multiaddr)>,
    pub store_peer: Option<PeerId>,
    pub shared: Arc<Shared>,
    pub delivery: SyncSender<Delivery>,
    pub events: SyncSender<NetEvent>,
}

struct Redial {
    address: Multiaddr,
    due: Option<Instant>,
    backoff: Duration,
}

struct Task {
    swarm: Swarm<Behaviour>,
    limits: Limits,
    store_peer: Option<PeerId>,
    shared: Arc<Shared>,
    delivery: SyncSender<Delivery>,
    events: SyncSender<NetEvent>,
    redial: HashMap<PeerId, Redial>,
    queries: HashMap<OutboundRequestId, Reply<StoreQueryResponse>>,
    last_publish: Option<Instant>,
}

/// Builds the swarm, starts listening and dialling, reports the listen addresses through
/// `ready`, then runs until `shutdown` fires (or is dropped) or every command sender is gone.
pub(crate) async fn run(
    setup: Setup,
    mut commands: mpsc::Receiver<Command>,
    mut shutdown: oneshot::Receiver<()>,
    ready: Sender<Result<Vec<Multiaddr>, String>>,
) {
    let mut task = match Task::start(setup).await {
        Ok(task) => task,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(task.shared.listen()));
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            command = commands.recv() => match command {
                None => break,
                Some(command) => task.command(command),
            },
            event = task.swarm.select_next_some() => task.event(event),
            _ = tick.tick() => task.redial_due(),
        }
    }
    for (_, reply) in task.queries.drain() {
        let _ = reply.send(Err("the network stopped".into()));
    }
    task.linger().await;
}

impl Task {
    /// Gossip the relay accepted sits in the connections' send queues until they run.
    async fn linger(&mut self) {
        let Some(published) = self.last_publish else {
            return;
        };
        let until = tokio::time::Instant::from_std(published + PUBLISH_LINGER);
        let _ = tokio::time::timeout_at(until, async {
            loop {
                let event = self.swarm.select_next_some().await;
                self.event(event);
            }
        })
        .await;
    }

    async fn start(setup: Setup) -> Result<Task, String> {
        let mut swarm = behaviour::swarm(setup.key, &setup.limits, Role::Member)?;
        let mut listeners = 0;
        for address in &setup.listen {
            swarm
                .listen_on(address.clone())
                .map_err(|e| format!("listen on {address}: {e}"))?;
            listeners += 1;
        }
        let mut task = Task {
            swarm,
            limits: setup.limits,
            store_peer: setup.store_peer,
            shared: setup.shared,
            delivery: setup.delivery,
            events: setup.events,
            redial: HashMap::new(),
            queries: HashMap::new(),
            last_publish: None,
        };
        // Wait for the listeners' addresses, so the host can hand them out at once.
        let deadline = tokio::time::Instant::now() + LISTEN_WAIT;
        while task.shared.listen().len() < listeners {
            match tokio::time::timeout_at(deadline, task.swarm.select_next_some()).await {
                Ok(event) => task.event(event),
                Err(_) => return Err("the listeners reported no address in time".into()),
            }
        }
        for (peer, address) in setup.peers {
            task.swarm.add_peer_address(peer, address.clone());
            task.redial.insert(
                peer,
                Redial {
                    address,
                    due: Some(Instant::now()),
                    backoff: REDIAL_FIRST,
                },
            );
        }
        task.redial_due();
        Ok(task)
    }

    fn emit(&self, event: NetEvent) {
        // A host that does not read its events loses the oldest news, never the network.
        let _ = self.events.try_send(event);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Publish {
                relay_topic,
                data,
                reply,
            } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .relay
                    .publish(IdentTopic::new(relay_topic), data)
                    .map(|_| self.last_publish = Some(Instant::now()))
                    .map_err(|e| match e {
                        PublishError::NoPeersSubscribedToTopic => {
                            "no relay peer on the topic yet".to_string()
                        }
                        other => format!("relay refused the message: {other}"),
                    });
                let _ = reply.send(result);
            }
            Command::Join(topic) => {
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .relay
                    .subscribe(&IdentTopic::new(&topic))
                {
                    tracing::warn!(%topic, error = ?e, "cannot join the relay topic");
                }
            }
            Command::Leave(topic) => {
                self.swarm
                    .behaviour_mut()
                    .relay
                    .unsubscribe(&IdentTopic::new(&topic));
            }
            Command::Query { request, reply } => self.query(request, reply),
            Command::RedialNow => {
                let now = Instant::now();
                let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                for (peer, r) in self.redial.iter_mut() {
                    if !connected.contains(peer) {
                        r.due = Some(now);
                        r.backoff = REDIAL_FIRST;
                    }
                }
                self.redial_due();
            }
        }
    }

    fn query(&mut self, request: StoreQueryRequest, reply: Reply<StoreQueryResponse>) {
        let Some(peer) = self.store_peer else {
            let _ = reply.send(Err("no store node configured".into()));
            return;
        };
        if self.queries.len() >= MAX_PENDING_QUERIES {
            let _ = reply.send(Err("too many store queries in flight".into()));
            return;
        }
        let id = self
            .swarm
            .behaviour_mut()
            .store
            .send_request(&peer, request);
        self.queries.insert(id, reply);
    }

    fn redial_due(&mut self) {
        let now = Instant::now();
        let mut dials = Vec::new();
        for (peer, r) in self.redial.iter_mut() {
            if r.due.is_some_and(|due| due <= now) {
                r.due = None;
                dials.push((*peer, r.address.clone()));
            }
        }
        for (peer, address) in dials {
            if self.swarm.is_connected(&peer) {
                continue;
            }
            self.emit(NetEvent::Dialing {
                address: address.clone(),
            });
            if let Err(e) = self.swarm.dial(address.clone()) {
                tracing::debug!(%peer, error = %e, "dial failed at once");
                self.schedule_redial(peer);
            }
        }
    }

    fn schedule_redial(&mut self, peer: PeerId) {
        if let Some(r) = self.redial.get_mut(&peer)
            && r.due.is_none()
        {
            r.due = Some(Instant::now() + r.backoff);
            r.backoff = (r.backoff * 2).min(REDIAL_MAX);
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                self.shared.add_listen(address.clone());
                self.emit(NetEvent::Listening { address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if num_established.get() == 1 {
                    self.shared.connected_peers.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(r) = self.redial.get_mut(&peer_id) {
                    r.backoff = REDIAL_FIRST;
                    r.due = None;
                }
                self.emit(NetEvent::Connected {
                    peer: peer_id,
                    address: endpoint.get_remote_address().clone(),
                });
                if Some(peer_id) == self.store_peer {
                    // Back in touch with the store: whatever was missed meanwhile is there.
                    let _ = self.delivery.try_send(Delivery::CatchUp);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.shared.connected_peers.fetch_sub(1, Ordering::Relaxed);
                self.emit(NetEvent::Disconnected { peer: peer_id });
                self.schedule_redial(peer_id);
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "dial failed");
                self.schedule_redial(peer);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => self.relay_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Store(event)) => self.store_event(event),
            _ => {}
        }
    }

    fn relay_event(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let acceptance =
            match WakuMessage::decode_checked(&message.data, self.limits.max_packet_bytes) {
                Ok(waku) => {
                    if self.shared.wants(&waku.content_topic) {
                        let packet = InboundPacket {
                            topic: waku.content_topic,
                            payload: waku.payload,
                        };
                        match self.delivery.try_send(Delivery::Live(packet)) {
                            Ok(()) => {}
                            Err(TrySendError::Full(_)) => {
                                self.shared.missed.store(true, Ordering::Relaxed);
                            }
                            Err(TrySendError::Disconnected(_)) => {}
                        }
                    }
                    gossipsub::MessageAcceptance::Accept
                }
                Err(e) => {
                    tracing::debug!(error = %e, "relayed message refused");
                    gossipsub::MessageAcceptance::Reject
                }
            };
        self.swarm
            .behaviour_mut()
            .relay
            .report_message_validation_result(&message_id, &propagation_source, acceptance);
    }

    fn store_event(
        &mut self,
        event: request_response::Event<StoreQueryRequest, StoreQueryResponse>,
    ) {
        match event {
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.queries.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.queries.remove(&request_id) {
                    let _ = reply.send(Err(format!("store unreachable: {error}")));
                }
            }
            _ => {}
        }
    }
}
