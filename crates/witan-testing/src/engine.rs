//! The engine-level harness: members running the sans-IO engine over in-memory MLS storage,
//! linked by an in-memory topic router (FIFO), driven by a virtual clock that jumps to the
//! earliest deadline when nothing is in flight. A step that fails is discarded — engine state
//! and MLS writes alike — exactly as the durable client rolls back its transaction.
//!
//! This is the client-level [`World`](crate::World) one layer down, for tests of the protocol
//! itself: no SQLite, no client, and every engine part readable.

use std::collections::{BTreeMap, HashSet, VecDeque};

use witan::mls::{Group, Identity, MemberId, MemoryKv, MlsProvider};
use witan::protocol::{
    ChatRecord, Conversation, Ctx, Event, Output, ProtocolError, Settings, State,
};
use witan::wire;

pub struct Node {
    pub identity: Identity,
    pub kv: MemoryKv,
    pub conv: Option<Conversation>,
    pub buffered: Vec<(u64, Vec<u8>)>,
    pub events: Vec<Event>,
    pub history: Vec<ChatRecord>,
    pub seen: HashSet<[u8; 32]>,
    pub rejected: Vec<String>,
}

impl Node {
    pub fn id(&self) -> MemberId {
        self.identity.member_id()
    }
    pub fn conv(&self) -> &Conversation {
        self.conv.as_ref().expect("conversation exists")
    }
    pub fn state(&self) -> State {
        self.conv().state()
    }
}

pub struct Net {
    pub now: u64,
    pub nodes: Vec<Node>,
    queue: VecDeque<(usize, String, Vec<u8>)>,
    /// Members whose outbound packets are lost (silent stewards, crashed senders).
    pub muted: HashSet<usize>,
    /// Members that receive nothing (offline).
    pub offline: HashSet<usize>,
    pub delivered: u64,
    /// Packets kept for offline members, delivered when they reconnect (a store-and-forward
    /// transport, as push services provide).
    pub mailbox: BTreeMap<usize, Vec<Vec<u8>>>,
    /// Directed links (from, to) on which every packet is lost.
    pub cut: HashSet<(usize, usize)>,
    /// Members running in extension mode (governance work deferred).
    pub extension: HashSet<usize>,
}

/// [`crate::fast_settings`] for the engine, with a steward list of three to five.
pub fn fast_settings() -> Settings {
    Settings {
        steward_list_min: 3,
        steward_list_max: 5,
        ..crate::fast_settings().into()
    }
}

pub const CONV: &str = "test-conversation";

impl Net {
    pub fn new(n: usize) -> Net {
        let nodes = (0..n)
            .map(|i| {
                let mut secret = [0u8; 32];
                secret[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
                secret[31] = 7;
                Node {
                    identity: Identity::from_secret(&secret).unwrap(),
                    kv: MemoryKv::new(),
                    conv: None,
                    buffered: Vec::new(),
                    events: Vec::new(),
                    history: Vec::new(),
                    seen: HashSet::new(),
                    rejected: Vec::new(),
                }
            })
            .collect();
        Net {
            now: 1_000_000,
            nodes,
            queue: VecDeque::new(),
            muted: HashSet::new(),
            offline: HashSet::new(),
            delivered: 0,
            mailbox: BTreeMap::new(),
            cut: HashSet::new(),
            extension: HashSet::new(),
        }
    }

    /// Runs one engine step on node `i`; on error nothing of the step is kept.
    pub fn step<F>(&mut self, i: usize, f: F) -> Result<Output, ProtocolError>
    where
        F: FnOnce(&mut Option<Conversation>, &Ctx) -> Result<Output, ProtocolError>,
    {
        let now = self.now;
        let deferring = self.extension.contains(&i);
        let node = &mut self.nodes[i];
        let mut conv = node.conv.clone();
        let (result, changes) = {
            let provider = MlsProvider::new(&node.kv);
            let ctx = Ctx {
                provider: &provider,
                identity: &node.identity,
                now_ms: now,
                defer_governance: deferring,
            };
            let result = f(&mut conv, &ctx);
            (result, provider.storage().take_changes())
        };
        let out = result?;
        node.kv.apply(changes);
        node.conv = conv;
        for o in &out.outbound {
            node.seen.insert(o.seen);
            if !self.muted.contains(&i) {
                self.queue
                    .push_back((i, o.topic.clone(), o.payload.clone()));
            }
        }
        for m in &out.messages {
            if !node.history.iter().any(|h| h.message_id == m.message_id) {
                node.history.push(m.clone());
            }
        }
        node.events.extend(out.events.iter().cloned());
        Ok(out)
    }

    pub fn create(&mut self, i: usize, settings: Settings) {
        self.step(i, |conv, ctx| {
            let (c, out) = Conversation::create(ctx, CONV, settings)?;
            *conv = Some(c);
            Ok(out)
        })
        .unwrap();
    }

    pub fn request_join(&mut self, i: usize) {
        self.step(i, |conv, ctx| {
            let (c, out) = Conversation::request_join(ctx, CONV, fast_settings())?;
            *conv = Some(c);
            Ok(out)
        })
        .unwrap();
    }

    /// Feeds one packet to node `i` as the client would: de-duplicated, buffered when it is
    /// for a future epoch, re-fed once the epoch advanced.
    /// Checks the sealed votes among `payloads` as one batch at node `i`, as a client does
    /// before it applies packets that arrived together; they are then fed one by one with
    /// [`Net::receive`]. How many signatures the batch proved.
    pub fn check_sealed_votes(&mut self, i: usize, payloads: &[Vec<u8>]) -> usize {
        let envelopes: Vec<wire::Envelope> = payloads
            .iter()
            .filter_map(|p| wire::decode_envelope(p).ok())
            .collect();
        let refs: Vec<&wire::Envelope> = envelopes.iter().collect();
        let mut proved = 0;
        self.step(i, |conv, ctx| {
            if let Some(c) = conv.as_mut() {
                proved = c.check_sealed_votes(ctx, &refs);
            }
            Ok(Output::default())
        })
        .unwrap_or_default();
        proved
    }

    pub fn receive(&mut self, i: usize, payload: &[u8]) -> Result<(), ProtocolError> {
        if self.nodes[i].conv.is_none() {
            return Ok(());
        }
        // De-duplicated on the client's key (`wire::seen_key`).
        let (env, hash) = wire::decode_envelope_keyed(payload)?;
        if self.nodes[i].seen.contains(&hash) {
            return Ok(());
        }
        let result = self.step(i, |conv, ctx| match conv.as_mut() {
            Some(c) => c.handle_packet(ctx, &env),
            None => Ok(Output::default()),
        });
        match result {
            Ok(out) => {
                self.nodes[i].seen.insert(hash);
                if let Some(epoch) = out.buffer_for_epoch {
                    self.nodes[i].buffered.push((epoch, payload.to_vec()));
                }
                if out.epoch_advanced {
                    self.refeed(i);
                }
                Ok(())
            }
            Err(e) => {
                self.nodes[i].rejected.push(e.to_string());
                Err(e)
            }
        }
    }

    fn refeed(&mut self, i: usize) {
        let Some(epoch) = self.nodes[i].conv.as_ref().map(|c| c.epoch()) else {
            return;
        };
        if self.nodes[i].conv().state() == State::PendingJoin {
            return;
        }
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.nodes[i].buffered)
            .into_iter()
            .partition(|(e, _)| *e <= epoch);
        self.nodes[i].buffered = later;
        for (_, payload) in ready {
            if let Ok((_, hash)) = wire::decode_envelope_keyed(&payload) {
                self.nodes[i].seen.remove(&hash);
            }
            let _ = self.receive(i, &payload);
        }
    }

    pub fn poll(&mut self, i: usize) {
        let result = self.step(i, |conv, ctx| match conv.as_mut() {
            Some(c) => c.poll(ctx),
            None => Ok(Output::default()),
        });
        match result {
            Ok(out) if out.epoch_advanced => self.refeed(i),
            Ok(_) => {}
            Err(e) => panic!("poll of node {i} failed: {e}"),
        }
    }

    /// Delivers everything in flight, FIFO, to every subscribed node but the sender.
    pub fn deliver(&mut self) {
        while self.deliver_one() {}
    }

    /// Delivers the oldest packet in flight; false if none was.
    pub fn deliver_one(&mut self) -> bool {
        let Some((from, topic, payload)) = self.queue.pop_front() else {
            return false;
        };
        for i in 0..self.nodes.len() {
            if i == from || self.cut.contains(&(from, i)) {
                continue;
            }
            let subscribed = self.nodes[i]
                .conv
                .as_ref()
                .is_some_and(|c| c.topics().contains(&topic));
            if subscribed && self.offline.contains(&i) {
                self.mailbox.entry(i).or_default().push(payload.clone());
            } else if subscribed {
                self.delivered += 1;
                let _ = self.receive(i, &payload);
            }
        }
        true
    }

    /// Brings an offline member back and hands it its backlog, oldest first.
    pub fn reconnect(&mut self, i: usize) {
        self.offline.remove(&i);
        self.muted.remove(&i);
        for payload in self.mailbox.remove(&i).unwrap_or_default() {
            let _ = self.receive(i, &payload);
        }
        self.poll(i);
    }

    /// The earliest deadline of an online member (an extension's deadlines that are due wait
    /// for the app: they do not hold the clock back).
    pub fn next_deadline(&self) -> Option<u64> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.offline.contains(i))
            .filter_map(|(i, n)| {
                let at = n.conv.as_ref().and_then(|c| c.next_deadline())?;
                (!self.extension.contains(&i) || at > self.now).then_some(at)
            })
            .min()
    }

    /// Delivers and fires deadlines until nothing is in flight and no deadline is due
    /// before `now + horizon_ms`.
    pub fn run_for(&mut self, horizon_ms: u64) {
        let end = self.now + horizon_ms;
        loop {
            self.deliver();
            for i in 0..self.nodes.len() {
                if !self.offline.contains(&i) {
                    self.poll(i);
                }
            }
            self.deliver();
            match self.next_deadline() {
                Some(at) if at <= end => self.now = self.now.max(at),
                _ => {
                    self.now = end;
                    for i in 0..self.nodes.len() {
                        if !self.offline.contains(&i) {
                            self.poll(i);
                        }
                    }
                    self.deliver();
                    return;
                }
            }
        }
    }

    pub fn epoch_authenticator(&self, i: usize) -> Vec<u8> {
        let provider = MlsProvider::new(&self.nodes[i].kv);
        Group::load(&provider, CONV.as_bytes())
            .unwrap()
            .unwrap()
            .epoch_authenticator()
    }

    /// Runs a local command on node `i`.
    pub fn act<F>(&mut self, i: usize, f: F) -> Result<Output, ProtocolError>
    where
        F: FnOnce(&mut Conversation, &Ctx) -> Result<Output, ProtocolError>,
    {
        self.step(i, |conv, ctx| match conv.as_mut() {
            Some(c) => f(c, ctx),
            None => Err(ProtocolError::NotFound("conversation".into())),
        })
    }

    pub fn send(&mut self, i: usize, body: &[u8]) -> String {
        let mut id = String::new();
        self.act(i, |c, ctx| {
            let (mid, out) = c.send_message(ctx, body)?;
            id = mid;
            Ok(out)
        })
        .unwrap();
        id
    }

    /// Creator `0` creates; nodes `1..n` ask to join at the same instant; runs until formed.
    pub fn form(n: usize, settings: Settings) -> Net {
        let mut net = Net::new(n);
        net.form_among(n, settings);
        net
    }

    /// Forms a group of nodes `0..members` as [`Net::form`] does; the others stay outside,
    /// for joins later.
    pub fn form_among(&mut self, members: usize, settings: Settings) {
        self.create(0, settings);
        for i in 1..members {
            self.request_join(i);
        }
        self.run_for(30_000);
    }

    /// Asserts that the given members agree on everything a fork would break.
    pub fn assert_agree(&self, members: &[usize]) {
        let first = members[0];
        let reference = self.nodes[first].conv();
        let auth = self.epoch_authenticator(first);
        let scores = |c: &Conversation| -> Vec<(MemberId, i64)> {
            c.scores().iter().map(|(m, s)| (*m, *s)).collect()
        };
        for &i in members {
            let c = self.nodes[i].conv();
            assert_eq!(c.state(), State::Working, "node {i} state");
            assert_eq!(c.epoch(), reference.epoch(), "node {i} epoch");
            assert_eq!(c.members(), reference.members(), "node {i} members");
            assert_eq!(c.stewards(), reference.stewards(), "node {i} steward list");
            assert_eq!(scores(c), scores(reference), "node {i} scores");
            assert_eq!(
                self.epoch_authenticator(i),
                auth,
                "node {i} epoch authenticator"
            );
        }
    }

    pub fn ids(&self, members: &[usize]) -> Vec<MemberId> {
        let mut v: Vec<MemberId> = members.iter().map(|i| self.nodes[*i].id()).collect();
        v.sort();
        v
    }

    pub fn count_events(&self, i: usize, pred: impl Fn(&Event) -> bool) -> usize {
        self.nodes[i].events.iter().filter(|e| pred(e)).count()
    }

    pub fn history_bodies(&self, i: usize) -> BTreeMap<String, Vec<u8>> {
        self.nodes[i]
            .history
            .iter()
            .map(|m| (m.message_id.clone(), m.body.clone()))
            .collect()
    }
}

impl Net {
    /// Member `i`'s signed vote on the open proposal `pid` (held by member `holder`), as a
    /// modified client would sign it — without counting it anywhere.
    pub fn sign_vote(&self, i: usize, holder: usize, pid: u64, approve: bool) -> wire::Vote {
        let ballot = self.nodes[holder]
            .conv()
            .ballots()
            .by_id(pid)
            .expect("open proposal");
        witan::protocol::ballot_box::new_vote(
            &self.nodes[i].identity,
            CONV,
            ballot.digest(),
            ballot.header(),
            approve,
            self.now,
        )
    }

    /// A proposal made by member `i` under the group's settings, not registered anywhere.
    pub fn make_proposal(&self, i: usize, action: witan::protocol::Action) -> wire::Proposal {
        let conv = self.nodes[i].conv();
        let cx = witan::protocol::ballot_box::ProposalContext {
            conversation: CONV,
            epoch: conv.epoch(),
            members: conv.members().len(),
            now_ms: self.now,
            settings: conv.settings(),
        };
        witan::protocol::ballot_box::new_proposal(&self.nodes[i].identity, &action, &cx)
    }

    /// Encrypts an arbitrary payload as member `i` (for byzantine and bad-input scenarios).
    pub fn craft(&mut self, i: usize, content: wire::group_payload::Content) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.step(i, |_, ctx| {
            let mut group = Group::load(ctx.provider, CONV.as_bytes())?.expect("group");
            let plaintext = prost::Message::encode_to_vec(&wire::GroupPayload {
                content: Some(content),
            });
            let ct = group.encrypt(ctx.provider, ctx.identity, &plaintext)?;
            let env = wire::Envelope::new(
                CONV,
                ctx.identity.member_id().as_bytes(),
                wire::PacketKind::Group,
                ct,
            );
            bytes = wire::encode(&env);
            Ok(Output::default())
        })
        .unwrap();
        bytes
    }

    /// Seals an arbitrary payload with member `i`'s key of its current epoch, as a packet
    /// sent by `sender` (for byzantine and bad-input scenarios; nothing is stored).
    pub fn seal(&self, i: usize, sender: usize, content: wire::sealed_payload::Content) -> Vec<u8> {
        let provider = MlsProvider::new(&self.nodes[i].kv);
        let group = Group::load(&provider, CONV.as_bytes())
            .unwrap()
            .expect("group");
        let key = group.seal_key(&provider).unwrap();
        let plaintext = prost::Message::encode_to_vec(&wire::SealedPayload::new(content));
        let sealed = witan::mls::seal::seal(&provider, &key, CONV, &plaintext).unwrap();
        wire::encode(&wire::Envelope::new(
            CONV,
            self.nodes[sender].id().as_bytes(),
            wire::PacketKind::Sealed,
            wire::encode(&sealed),
        ))
    }

    /// The packets in flight from node `from`, as sent (nothing is delivered).
    pub fn raw_in_flight_from(&self, from: usize) -> Vec<Vec<u8>> {
        self.queue
            .iter()
            .filter(|(f, _, _)| *f == from)
            .map(|(_, _, payload)| payload.clone())
            .collect()
    }

    /// What node `from` has in flight, decrypted as node `reader` would (on a copy of its
    /// storage: nothing changes); packets it cannot decrypt are left out.
    pub fn in_flight_from(&self, from: usize, reader: usize) -> Vec<wire::group_payload::Content> {
        self.in_flight_kinds_from(from, reader)
            .into_iter()
            .map(|(_, c)| c)
            .collect()
    }

    /// [`Self::in_flight_from`], with the kind of packet each content came in.
    pub fn in_flight_kinds_from(
        &self,
        from: usize,
        reader: usize,
    ) -> Vec<(wire::PacketKind, wire::group_payload::Content)> {
        let kv = self.nodes[reader].kv.clone();
        let provider = MlsProvider::new(&kv);
        let Ok(Some(mut group)) = Group::load(&provider, CONV.as_bytes()) else {
            return Vec::new();
        };
        self.queue
            .iter()
            .filter(|(f, _, _)| *f == from)
            .filter_map(|(_, _, payload)| {
                let env = wire::decode_envelope(payload).ok()?;
                if env.kind() == wire::PacketKind::Sealed {
                    return Some((env.kind(), open_sealed(&provider, &group, &env.body)?));
                }
                let d = group.decrypt(&provider, &env.body).ok()?;
                Some((
                    env.kind(),
                    wire::decode_group_payload(&d.plaintext).ok()?.content?,
                ))
            })
            .collect()
    }

    /// Drops everything in flight.
    pub fn drop_in_flight(&mut self) {
        self.queue.clear();
    }

    /// The serialized engine state of node `i`, to prove a rejected input changed nothing.
    pub fn snapshot(&self, i: usize) -> (Vec<u8>, usize) {
        (self.nodes[i].conv().to_bytes(), self.nodes[i].kv.len())
    }
}

/// A sealed packet of the group's current epoch, opened, as the group content it stands for.
fn open_sealed(
    provider: &MlsProvider,
    group: &Group,
    body: &[u8],
) -> Option<wire::group_payload::Content> {
    use wire::{group_payload::Content, sealed_payload::Content as Sealed};
    let sealed = wire::decode_sealed(body).ok()?;
    let key = group.seal_key(provider).ok()?;
    let plaintext = witan::mls::seal::open(provider, &key, CONV, &sealed).ok()?;
    Some(
        match wire::decode_sealed_payload(&plaintext).ok()?.content? {
            Sealed::Vote(signed) => Content::Vote(signed.vote?),
            Sealed::Prevote(v) => Content::Prevote(v),
            Sealed::Precommit(v) => Content::Precommit(v),
        },
    )
}
