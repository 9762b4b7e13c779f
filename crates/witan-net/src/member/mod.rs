//! [`NetTransport`]: witan's `Transport` on the relay, with store catch-up — what a member
//! (an app, or the `witan-member` binary) runs.
//!
//! Two threads of its own: the network task (`swarm_task.rs`, a tokio current-thread
//! runtime owning the libp2p swarm) and the delivery thread (`delivery.rs`, which calls the
//! client). `publish` hands the packet to the network task and waits for its verdict (a
//! moment: nothing there waits on the network), so an error really means the relay did not
//! take the packet and witan's outbox keeps it: a packet over the size limit, no relay peer
//! on its topic yet, or a stopped network.
//!
//! The host opens the `WitanClient` with this transport, then calls [`NetTransport::attach`]
//! (the client holds the transport; the transport holds the client weakly, so there is no
//! cycle). Cursors (`cursors.rs`) live in the transport's own file.

mod cursors;
mod delivery;
mod swarm_task;
mod topics;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use witan::client::{Notification, OutboundPacket, Transport, TransportError, WitanClient};

pub use cursors::{Cursor, CursorStore};
use delivery::Delivery;
use swarm_task::Command;
use topics::Shared;

use crate::behaviour::{QUERY_TIMEOUT, parse_peer_address};
use crate::error::NetError;
use crate::limits::{Limits, MAX_PAGE_SIZE};
use crate::waku::WakuMessage;
use crate::waku::sharding::Sharding;
use crate::waku::store_query::{StoreQueryRequest, StoreQueryResponse};

/// How long `publish` waits for the network task's verdict.
const PUBLISH_REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Commands queued for the network task at most.
const COMMAND_QUEUE: usize = 1_024;
/// Live packets waiting for the delivery thread at most (more are fetched by catch-up).
const DELIVERY_QUEUE: usize = 4_096;
/// Events waiting for the host at most (older news is dropped, never traffic).
const EVENT_QUEUE: usize = 1_024;
/// How long start-up waits for the network task.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How a member joins the network.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Where to accept connections (none: a phone only dials out).
    pub listen: Vec<Multiaddr>,
    /// Relay peers to dial and keep dialling (each ending in `/p2p/<peer id>`).
    pub peers: Vec<Multiaddr>,
    /// The store node to catch up from (also dialled), ending in `/p2p/<peer id>`.
    pub store: Option<Multiaddr>,
    /// The cursor file; `None` keeps cursors in memory.
    pub cursor_path: Option<PathBuf>,
    pub sharding: Sharding,
    pub limits: Limits,
    /// Messages per catch-up page (at most [`MAX_PAGE_SIZE`]).
    pub page_size: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: Vec::new(),
            peers: Vec::new(),
            store: None,
            cursor_path: None,
            sharding: Sharding::default(),
            limits: Limits::default(),
            page_size: MAX_PAGE_SIZE,
        }
    }
}

/// What happened on the network, for hosts that want to show or log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    Listening {
        address: Multiaddr,
    },
    Dialing {
        address: Multiaddr,
    },
    Connected {
        peer: PeerId,
        address: Multiaddr,
    },
    Disconnected {
        peer: PeerId,
    },
    /// Live packets went to `receive`.
    Delivered {
        packets: u32,
        accepted: u32,
        duplicates: u32,
        rejected: u32,
    },
    CaughtUp {
        pages: u32,
        packets: u32,
    },
    Warning {
        message: String,
    },
}

/// What one catch-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct CatchUpReport {
    /// Store responses read.
    pub pages: u32,
    /// Packets handed to `handle_wakeup`.
    pub packets: u32,
    /// Stored entries that were not well-formed messages on the asked topics.
    pub skipped: u32,
    /// The chat messages the caught-up packets carried (the first 1,000).
    pub notifications: Vec<Notification>,
    /// The earliest wake-up the client asked for while catching up.
    pub next_wakeup_at_ms: Option<u64>,
}

/// A member's network: witan's `Transport` plus catch-up. See the module doc.
pub struct NetTransport {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) limits: Limits,
    pub(crate) store_peer: Option<PeerId>,
    pub(crate) page_size: u32,
    peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    /// Stops the network task (taken by `stop`).
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    delivery: SyncSender<Delivery>,
    events: SyncSender<NetEvent>,
    events_rx: Mutex<Option<Receiver<NetEvent>>>,
    client: Mutex<Option<Weak<WitanClient>>>,
    /// Also the catch-up lock: a catch-up holds it throughout.
    cursors: Mutex<CursorStore>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) stopped: AtomicBool,
    request_counter: AtomicU64,
}

/// A peer to dial: its id and address.
type Peer = (PeerId, Multiaddr);

/// Checks a configuration (its peer addresses and page size); returns the peers to dial (the
/// store node among them) and the store node's id.
fn checked_config(config: &NetConfig) -> Result<(Vec<Peer>, Option<PeerId>), NetError> {
    let mut peers = Vec::new();
    for address in &config.peers {
        peers.push(parse_peer_address(&address.to_string()).map_err(NetError::Config)?);
    }
    let store_peer = match &config.store {
        Some(address) => {
            let (peer, address) =
                parse_peer_address(&address.to_string()).map_err(NetError::Config)?;
            if !peers.iter().any(|(p, _)| *p == peer) {
                peers.push((peer, address));
            }
            Some(peer)
        }
        None => None,
    };
    if config.page_size == 0 || config.page_size > MAX_PAGE_SIZE {
        return Err(NetError::Config(format!(
            "page size must be 1..={MAX_PAGE_SIZE}"
        )));
    }
    Ok((peers, store_peer))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NetTransport {
    /// Starts the network task and the delivery thread, listens and dials. Returns once the
    /// listen addresses are known.
    pub fn start(config: NetConfig) -> Result<Arc<NetTransport>, NetError> {
        let (peers, store_peer) = checked_config(&config)?;
        let cursors = CursorStore::open(config.cursor_path.as_deref())?;
        let key = Keypair::generate_ed25519();
        let peer_id = key.public().to_peer_id();
        let shared = Arc::new(Shared::new(config.sharding));
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let (delivery, delivery_rx) = sync_channel(DELIVERY_QUEUE);
        let (events, events_rx) = sync_channel(EVENT_QUEUE);
        let setup = swarm_task::Setup {
            key,
            limits: config.limits,
            listen: config.listen.clone(),
            peers,
            store_peer,
            shared: shared.clone(),
            delivery: delivery.clone(),
            events: events.clone(),
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let network = std::thread::Builder::new()
            .name("witan-net".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => {
                        rt.block_on(swarm_task::run(setup, commands_rx, shutdown_rx, ready_tx))
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("runtime: {e}")));
                    }
                }
            })
            .map_err(|e| NetError::Unavailable(format!("cannot start the network thread: {e}")))?;
        let listen = match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(listen)) => listen,
            Ok(Err(e)) => return Err(NetError::Config(e)),
            Err(_) => return Err(NetError::Unavailable("the network did not start".into())),
        };
        shared.set_listen(listen);
        let inner = Arc::new(Inner {
            shared,
            limits: config.limits,
            store_peer,
            page_size: config.page_size,
            peer_id,
            commands,
            shutdown: Mutex::new(Some(shutdown)),
            delivery,
            events,
            events_rx: Mutex::new(Some(events_rx)),
            client: Mutex::new(None),
            cursors: Mutex::new(cursors),
            threads: Mutex::new(vec![network]),
            stopped: AtomicBool::new(false),
            request_counter: AtomicU64::new(0),
        });
        let for_delivery = inner.clone();
        let delivery_thread = std::thread::Builder::new()
            .name("witan-net-delivery".into())
            .spawn(move || delivery::run(for_delivery, delivery_rx))
            .map_err(|e| NetError::Unavailable(format!("cannot start the delivery thread: {e}")))?;
        lock(&inner.threads).push(delivery_thread);
        Ok(Arc::new(NetTransport { inner }))
    }

    /// Connects the client that receives what arrives, and runs a first catch-up (in the
    /// background).
    pub fn attach(&self, client: &Arc<WitanClient>) {
        *lock(&self.inner.client) = Some(Arc::downgrade(client));
        self.inner.request_catch_up();
    }

    /// Catches up from the store now, on the caller's thread; returns what it delivered.
    pub fn catch_up(&self) -> Result<CatchUpReport, NetError> {
        self.inner.catch_up()
    }

    /// After the app comes back: dials the peers that dropped (at once, not at their
    /// backoff) and catches up in the background.
    pub fn resume(&self) {
        let _ = self.inner.commands.try_send(Command::RedialNow);
        self.inner.request_catch_up();
    }

    /// The network's events, once (later calls get `None`).
    pub fn events(&self) -> Option<Receiver<NetEvent>> {
        lock(&self.inner.events_rx).take()
    }

    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// Where this member accepts connections, each ending in `/p2p/<peer id>`.
    pub fn listen_addresses(&self) -> Vec<Multiaddr> {
        let id = self.inner.peer_id;
        self.inner
            .shared
            .listen()
            .into_iter()
            .map(|a| a.with_p2p(id).unwrap_or_else(|a| a))
            .collect()
    }

    pub fn connected_peers(&self) -> usize {
        self.inner.shared.connected()
    }

    /// Stops both threads (also done when the transport is dropped).
    pub fn stop(&self) {
        self.inner.stop();
    }
}

impl Drop for NetTransport {
    fn drop(&mut self) {
        self.inner.stop();
    }
}

impl Transport for NetTransport {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        self.inner
            .publish(packet)
            .map_err(|reason| TransportError::Unavailable { reason })
    }

    fn subscribe(&self, topic: String) {
        if let Some(relay_topic) = self.inner.shared.add(&topic) {
            let _ = self.inner.commands.try_send(Command::Join(relay_topic));
        }
        // What was published on the topic before this member followed it is in the store.
        self.inner.request_catch_up();
    }

    fn unsubscribe(&self, topic: String) {
        if let Some(relay_topic) = self.inner.shared.remove(&topic) {
            let _ = self.inner.commands.try_send(Command::Leave(relay_topic));
        }
    }
}

impl Inner {
    pub(crate) fn client(&self) -> Option<Arc<WitanClient>> {
        lock(&self.client).as_ref().and_then(Weak::upgrade)
    }

    pub(crate) fn lock_cursors(&self) -> MutexGuard<'_, CursorStore> {
        lock(&self.cursors)
    }

    pub(crate) fn emit(&self, event: NetEvent) {
        let _ = self.events.try_send(event);
    }

    pub(crate) fn request_catch_up(&self) {
        // A full queue means the thread is busy; `missed` makes it catch up afterwards.
        if self.delivery.try_send(Delivery::CatchUp).is_err() {
            self.shared.missed.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.peer_id)
    }

    fn publish(&self, packet: OutboundPacket) -> Result<(), String> {
        let limit = self.limits.max_packet_bytes;
        if packet.payload.len() > limit {
            return Err(format!(
                "packet of {} bytes is over the relay limit of {limit} bytes",
                packet.payload.len()
            ));
        }
        if self.stopped.load(Ordering::Relaxed) {
            return Err("the network is stopped".into());
        }
        let message = WakuMessage::new(&packet.topic, packet.payload, now_ns());
        message.check(limit).map_err(|e| e.to_string())?;
        let relay_topic = self.shared.sharding().pubsub_topic(&packet.topic);
        let (reply, verdict) = sync_channel(1);
        self.commands
            .try_send(Command::Publish {
                relay_topic,
                data: message.to_bytes(),
                reply,
            })
            .map_err(|_| "the network task is busy or stopped".to_string())?;
        match verdict.recv_timeout(PUBLISH_REPLY_TIMEOUT) {
            Ok(result) => result,
            Err(_) => Err("the network task did not answer".into()),
        }
    }

    pub(crate) fn query(&self, request: StoreQueryRequest) -> Result<StoreQueryResponse, NetError> {
        let (reply, answer) = sync_channel(1);
        self.commands
            .try_send(Command::Query { request, reply })
            .map_err(|_| NetError::Unavailable("the network task is busy or stopped".into()))?;
        match answer.recv_timeout(QUERY_TIMEOUT + Duration::from_secs(2)) {
            Ok(result) => result.map_err(NetError::Store),
            Err(_) => Err(NetError::Store("no answer in time".into())),
        }
    }

    fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(shutdown) = lock(&self.shutdown).take() {
            let _ = shutdown.send(());
        }
        // A full queue wakes the thread anyway; it then sees `stopped`.
        let _ = self.delivery.try_send(Delivery::Stop);
        let me = std::thread::current().id();
        for handle in lock(&self.threads).drain(..) {
            // The last client reference may be dropped on the delivery thread itself.
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

/// The wall clock in nanoseconds (the Waku timestamp).
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
