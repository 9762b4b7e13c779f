//! `WitanClient`: the durable driver of the engine, with the synchronous methods of the public
//! API (`docs/api.md`; the `ffi` layer wraps them for Kotlin and Swift).
//!
//! Every step — one batch of received packets, one fired conversation deadline, one local
//! action — is one store transaction (`BEGIN IMMEDIATE`): the conversation's state is loaded
//! inside it, the engine runs over an MLS provider reading the same transaction, and MLS
//! rows, state, next deadline, outbox, history, de-duplication and buffered packets are
//! written together (see `step.rs`). Within a batch a packet the engine refuses changes
//! nothing: an engine run's outputs are written only when it succeeds. After the commit, and
//! with the database lock released, the client tells the transport about topic changes,
//! publishes the outbox (`outbox.rs`) and delivers events to the listener — so a host
//! callback may call the client again, and an event is only heard once it is durable.
//!
//! Between steps the client keeps only what the store vouches for: the decoded MLS group of
//! its last committed step, while no other process wrote the file (the app and its
//! notification extension may drive the same file; see `witan_store::Database`). Memory
//! grows with the work of a step, not with the number of conversations.
//!
//! Files: `types.rs` (API records), `error.rs`, `callbacks.rs` (host interfaces), `step.rs`
//! (one engine run in one transaction), `state.rs` (the engine state a step works on),
//! `inbound.rs` (`receive`), `outbox.rs` (publishing), `wakeup.rs` (`poll`,
//! `handle_wakeup`), `subscriptions.rs` (topic bookkeeping), `inspect.rs` (read-only
//! accessors for Rust callers, not exported to foreign languages).

mod callbacks;
mod error;
mod inbound;
mod inspect;
mod outbox;
mod spool;
mod state;
mod step;
mod subscriptions;
mod types;
mod wakeup;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::mls::{Identity, Layer, MemberId};
use crate::protocol::{Conversation, Ctx, Output, ProtocolError, Settings, State};
use crate::store::{Database, DatabaseKey, StoreOptions};

pub use callbacks::{Clock, EventListener, SystemClock, Transport};
pub use error::{TransportError, WitanError};
pub use types::*;

use step::{Durability, Effects, EngineResult, StepEnv};

/// Meta row holding the member id the database belongs to (guards against opening one
/// member's database with another member's identity).
const MEMBER_ID_KEY: &str = "client.member_id";

/// A witan client: one member, one database.
#[derive(uniffi::Object)]
pub struct WitanClient {
    database_path: String,
    /// How the database is (re)opened: busy timeout (by role) and key.
    store_options: StoreOptions,
    role: ClientRole,
    db: Mutex<Option<Database>>,
    identity: Identity,
    transport: Arc<dyn Transport>,
    listener: Arc<dyn EventListener>,
    clock: Arc<dyn Clock>,
    /// Held while publishing the outbox, so one process never publishes a packet twice at
    /// once. Not the database lock: publishing calls into the host.
    flushing: Mutex<()>,
    /// The conversation states the last committed step left (see `state.rs`); taken and
    /// replaced under the database lock, forgotten when the connection is reopened.
    kept_states: Mutex<Option<state::KeptStates>>,
    /// Set by [`WitanClient::abandon`]: dropping writes nothing.
    abandoned: AtomicBool,
}

impl std::fmt::Debug for WitanClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitanClient")
            .field("database_path", &self.database_path)
            .field("member_id", &self.identity.member_id())
            .finish_non_exhaustive()
    }
}

impl Drop for WitanClient {
    /// Closing the client writes the MLS secrets of the last chats read (a killed process
    /// leaves them to the rows' copies of the keys; see `client::step`).
    fn drop(&mut self) {
        if !self.abandoned.load(Ordering::Relaxed) {
            self.write_carried_secrets_or_warn();
        }
    }
}

impl WitanClient {
    /// Opens (or creates) the client's database and identity, with the wall clock.
    pub fn open(
        config: ClientConfig,
        transport: Arc<dyn Transport>,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<Self>, WitanError> {
        Self::open_with_clock(config, transport, listener, Arc::new(SystemClock))
    }

    /// Opens with an injected clock (tests, simulators). Tells the transport to subscribe to
    /// every topic of the stored conversations.
    pub fn open_with_clock(
        config: ClientConfig,
        transport: Arc<dyn Transport>,
        listener: Arc<dyn EventListener>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, WitanError> {
        let role = config.role.unwrap_or_default();
        let key = match &config.database_key {
            Some(bytes) => {
                Some(DatabaseKey::new(bytes).map_err(|e| WitanError::invalid(e.to_string()))?)
            }
            None => None,
        };
        let store_options = StoreOptions {
            busy_timeout_ms: match role {
                ClientRole::App => StoreOptions::default().busy_timeout_ms,
                ClientRole::NotificationExtension => EXTENSION_LOCK_WAIT_MS,
            },
            key,
            cache_kib: match role {
                ClientRole::App => StoreOptions::default().cache_kib,
                ClientRole::NotificationExtension => EXTENSION_CACHE_KIB,
            },
        };
        let mut db = Database::open(&config.database_path, &store_options)?;
        let identity = open_identity(&mut db, config.identity_secret.as_deref())?;
        let client = Arc::new(WitanClient {
            database_path: config.database_path,
            store_options,
            role,
            db: Mutex::new(Some(db)),
            identity,
            transport,
            listener,
            clock,
            flushing: Mutex::new(()),
            kept_states: Mutex::new(None),
            abandoned: AtomicBool::new(false),
        });
        for topic in client.subscriptions() {
            client.transport.subscribe(topic);
        }
        Ok(client)
    }

    /// This member's id (40 lowercase hex characters).
    pub fn member_id(&self) -> String {
        self.identity.member_id().to_hex()
    }

    /// Topics the host must deliver to `receive` (also pushed through `Transport::subscribe`
    /// / `unsubscribe` as they change). Empty if the database cannot be read.
    pub fn subscriptions(&self) -> Vec<String> {
        let result = self.with_db(|db| {
            let step = db.read()?;
            subscriptions::all(&step)
        });
        result.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list subscriptions");
            Vec::new()
        })
    }

    /// Creates a conversation with this member as its only member and steward.
    pub fn create_conversation(
        &self,
        conversation_id: String,
        settings: ConversationSettings,
    ) -> Result<ConversationInfo, WitanError> {
        let settings = Settings::from(settings);
        self.local(&conversation_id, |existing, ctx| {
            if let Some(c) = existing {
                return Err(WitanError::WrongState {
                    state: c.state().into(),
                    reason: "the conversation already exists".into(),
                });
            }
            let (conv, out) = Conversation::create(ctx, &conversation_id, settings)
                .map_err(|e| WitanError::from_protocol(e, State::PendingJoin))?;
            let info = ConversationInfo::from(&conv.view());
            Ok((conv, info, out))
        })
    }

    /// Publishes this member's key package on the conversation's welcome topic and waits in
    /// `PendingJoin` for a welcome. A conversation that was left, or that told this member
    /// `RejoinRequired`, may be joined again: the group votes on it (for a re-join, first on
    /// removing the old leaf), and the stored history stays.
    ///
    /// Without a trust anchor the first valid welcome is taken: anyone who knows the
    /// conversation id can create a group under it and welcome this member into a group of
    /// its own (it never splits the real group). [`Self::request_to_join_expecting`] refuses
    /// that.
    pub fn request_to_join(&self, conversation_id: String) -> Result<(), WitanError> {
        self.join(conversation_id, None)
    }

    /// Like [`Self::request_to_join`], but takes only a welcome into a group that
    /// `expected_member_id` (hex; a member known out-of-band, such as the inviter) is in and
    /// whose certificate of the commit adding this member it signed. Other welcomes are
    /// refused (`InvalidInput`, "welcome refused: …") and the join keeps waiting. If that
    /// member is away when the commit is certified, the join waits until it expires, and may
    /// be asked again.
    pub fn request_to_join_expecting(
        &self,
        conversation_id: String,
        expected_member_id: String,
    ) -> Result<(), WitanError> {
        let expected = MemberId::from_hex(&expected_member_id)
            .map_err(|e| WitanError::invalid(format!("member id: {e}")))?;
        self.join(conversation_id, Some(expected))
    }

    fn join(&self, conversation_id: String, expected: Option<MemberId>) -> Result<(), WitanError> {
        self.local(&conversation_id, |existing, ctx| {
            if let Some(c) = existing.filter(|c| c.state() != State::Left && !c.rejoin_required()) {
                return Err(WitanError::WrongState {
                    state: c.state().into(),
                    reason: "the conversation already exists".into(),
                });
            }
            // The creator's settings replace these when the welcome arrives.
            let (conv, out) = Conversation::request_join_expecting(
                ctx,
                &conversation_id,
                Settings::default(),
                expected,
            )
            .map_err(|e| WitanError::from_protocol(e, State::PendingJoin))?;
            Ok((conv, (), out))
        })
    }

    /// Sends a chat message; returns its message id.
    pub fn send_message(
        &self,
        conversation_id: String,
        body: Vec<u8>,
    ) -> Result<String, WitanError> {
        self.act(&conversation_id, |c, ctx| c.send_message(ctx, &body))
    }

    /// Proposes removing a member; returns the proposal id.
    pub fn propose_removal(
        &self,
        conversation_id: String,
        member_id: String,
    ) -> Result<u64, WitanError> {
        let member = MemberId::from_hex(&member_id)
            .map_err(|e| WitanError::invalid(format!("member id: {e}")))?;
        self.act(&conversation_id, |c, ctx| c.propose_removal(ctx, member))
    }

    /// Votes on an open proposal.
    pub fn vote(
        &self,
        conversation_id: String,
        proposal_id: u64,
        approve: bool,
    ) -> Result<(), WitanError> {
        self.act(&conversation_id, |c, ctx| {
            Ok(((), c.vote(ctx, proposal_id, approve)?))
        })
    }

    /// Leaves the conversation (a self-leave proposal when others remain).
    pub fn leave(&self, conversation_id: String) -> Result<(), WitanError> {
        self.act(&conversation_id, |c, ctx| Ok(((), c.leave(ctx)?)))
    }

    /// Every stored conversation. Loads them one at a time.
    pub fn conversations(&self) -> Result<Vec<ConversationInfo>, WitanError> {
        self.with_db(|db| {
            let step = db.read()?;
            let mut infos = Vec::new();
            for id in step.conversation_ids()? {
                if let Some(c) = state::load(&step, &id)? {
                    infos.push(ConversationInfo::from(&c.view()));
                }
            }
            Ok(infos)
        })
    }

    /// One conversation, if stored.
    pub fn conversation(
        &self,
        conversation_id: String,
    ) -> Result<Option<ConversationInfo>, WitanError> {
        self.with_db(|db| {
            let step = db.read()?;
            Ok(state::load(&step, &conversation_id)?.map(|c| ConversationInfo::from(&c.view())))
        })
    }

    /// Stored message history, oldest first, after sequence `after_seq`.
    pub fn messages(
        &self,
        conversation_id: String,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, WitanError> {
        self.with_db(|db| {
            let step = db.read()?;
            if !step.has_conversation(&conversation_id)? {
                return Err(WitanError::not_found(format!(
                    "conversation {conversation_id:?}"
                )));
            }
            let rows = step.messages(&conversation_id, after_seq, limit)?;
            Ok(rows.into_iter().map(StoredMessage::from).collect())
        })
    }

    /// Releases the database handle so a backgrounded app holds no file lock; the next call
    /// (or `resume`) reopens it. An in-memory database is kept (closing it would erase it).
    /// The MLS secrets of chats read since the last write go to the database first.
    pub fn suspend(&self) {
        self.write_carried_secrets_or_warn();
        if is_in_memory(&self.database_path) {
            return;
        }
        *self.lock_db() = None;
    }

    /// Test hook (Rust only): dropping this client afterwards writes nothing it holds only
    /// in memory, as when the system kills the app's process. Never call it in an app.
    #[doc(hidden)]
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }

    /// Reopens the database after `suspend` (a no-op when it is open).
    pub fn resume(&self) -> Result<(), WitanError> {
        self.with_db(|_| Ok(()))
    }

    // ----- internals -----

    /// Writes the MLS secrets a group carries past chats read one step at a time (see
    /// `client::step`), so that the database no longer holds those chats' keys: one step with
    /// nothing else to do (its flush writes them). A no-op when nothing is carried.
    pub(crate) fn write_carried_secrets(&self) -> Result<(), WitanError> {
        let carried = self
            .lock_db()
            .as_ref()
            .is_some_and(Database::carries_secrets);
        if carried {
            let now = self.clock.now_ms();
            self.in_step_then(now, Durability::SyncedBeforePublishing, |_| Ok(()))?;
        }
        Ok(())
    }

    /// [`WitanClient::write_carried_secrets`] where no error can be returned (`suspend`,
    /// drop): a failure leaves the keys in the rows a little longer, and is logged.
    fn write_carried_secrets_or_warn(&self) {
        if let Err(e) = self.write_carried_secrets() {
            tracing::warn!(error = %e, "the secrets of the last chats read were not written");
        }
    }

    fn lock_db(&self) -> MutexGuard<'_, Option<Database>> {
        // A panic while the lock was held dropped that step (a rollback), so the connection
        // is still consistent: recover it instead of failing every later call.
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with the open database (reopening it after `suspend`). The lock is held only
    /// for `f`: never call into the host from inside.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&mut Database) -> Result<T, WitanError>,
    ) -> Result<T, WitanError> {
        let mut guard = self.lock_db();
        if guard.is_none() {
            *guard = Some(Database::open(&self.database_path, &self.store_options)?);
            // States kept from another connection: vouched for by nothing on this one.
            self.take_kept_states();
        }
        match guard.as_mut() {
            Some(db) => f(db),
            None => Err(WitanError::internal("database handle missing")),
        }
    }

    /// Runs `f` in one step (one transaction) and commits; returns its value and what the
    /// host must hear. On error the step is dropped (rolled back).
    fn in_step<T>(
        &self,
        now_ms: u64,
        f: impl FnOnce(&mut StepEnv<'_, '_>) -> Result<T, WitanError>,
    ) -> Result<(T, Effects), WitanError> {
        self.in_step_then(now_ms, Durability::Synced, f)
    }

    /// [`WitanClient::in_step`] with the given durability.
    fn in_step_then<T>(
        &self,
        now_ms: u64,
        durability: Durability,
        f: impl FnOnce(&mut StepEnv<'_, '_>) -> Result<T, WitanError>,
    ) -> Result<(T, Effects), WitanError> {
        self.with_db(|db| {
            let (value, effects, must_sync) = self.run_step(db, now_ms, durability, f)?;
            if must_sync {
                db.sync_queued_outbox()?;
            }
            Ok((value, effects))
        })
    }

    /// The body of [`WitanClient::in_step_then`]: the step itself. Also says whether the
    /// log must be synced before what it queued is published. Dropping the step on an error
    /// rolls it back (and the store forgets the group it lent).
    fn run_step<T>(
        &self,
        db: &mut Database,
        now_ms: u64,
        durability: Durability,
        f: impl FnOnce(&mut StepEnv<'_, '_>) -> Result<T, WitanError>,
    ) -> Result<(T, Effects, bool), WitanError> {
        let step = match durability {
            Durability::Synced => db.step()?,
            Durability::SyncedBeforePublishing => db.relaxed_step()?,
        };
        let mut env = StepEnv::new(&step, &self.identity, now_ms);
        env.defer_governance = self.role == ClientRole::NotificationExtension;
        // The states the last committed step left are exactly the rows while no other
        // connection committed since (this connection's commits leave `data_version` as is).
        let version = step.data_version()?;
        if let Some(kept) = self.take_kept_states()
            && kept.version == version
            && Layer::Kept.enabled()
        {
            env.start_from(kept);
        }
        let value = f(&mut env)?;
        env.flush()?;
        let mut effects = std::mem::take(&mut env.effects);
        effects.queued = env.queued_packets;
        let must_sync = durability == Durability::SyncedBeforePublishing && env.queued_packets;
        let states = env.take_states();
        drop(env);
        step.commit()?;
        if Layer::Kept.enabled() {
            *self.lock_kept_states() = states.into_kept(version);
        }
        Ok((value, effects, must_sync))
    }

    fn lock_kept_states(&self) -> MutexGuard<'_, Option<state::KeptStates>> {
        self.kept_states.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_kept_states(&self) -> Option<state::KeptStates> {
        self.lock_kept_states().take()
    }

    /// A local action as one step: the engine runs on the stored conversation (if any), the
    /// result is committed, buffered packets are replayed if the epoch moved, and the host
    /// hears about it afterwards.
    fn local<T>(
        &self,
        conversation_id: &str,
        op: impl FnOnce(Option<Conversation>, &Ctx) -> EngineResult<T>,
    ) -> Result<T, WitanError> {
        let now = self.clock.now_ms();
        let (value, effects) = self.in_step(now, |env| {
            let (value, applied) = env.run_engine(conversation_id, op)??;
            if applied.epoch_advanced {
                env.refeed(conversation_id, applied)?;
            }
            Ok(value)
        })?;
        self.after_commit(effects);
        Ok(value)
    }

    /// A local action on an existing conversation.
    fn act<T>(
        &self,
        conversation_id: &str,
        f: impl FnOnce(&mut Conversation, &Ctx) -> Result<(T, Output), ProtocolError>,
    ) -> Result<T, WitanError> {
        self.local(conversation_id, |existing, ctx| {
            let mut conv = existing.ok_or_else(|| {
                WitanError::not_found(format!("conversation {conversation_id:?}"))
            })?;
            let state = conv.state();
            let (value, out) =
                f(&mut conv, ctx).map_err(|e| WitanError::from_protocol(e, state))?;
            Ok((conv, value, out))
        })
    }

    /// After a commit, with no lock held: topic changes to the transport, the outbox to the
    /// network, then the events to the listener. Returns the delivered events.
    fn after_commit(&self, effects: Effects) -> Vec<WitanEvent> {
        for topic in effects.unsubscribe {
            self.transport.unsubscribe(topic);
        }
        for topic in effects.subscribe {
            self.transport.subscribe(topic);
        }
        // Only a step that queued packets has anything new to publish: what waits for a
        // backoff is the next poll's (its wake-up time counts it), and reading the outbox
        // after every live packet would cost a read transaction each.
        if effects.queued
            && let Err(e) = self.flush_outbox()
        {
            tracing::warn!(error = %e, "outbox delivery failed; retried by the next poll");
        }
        for event in &effects.events {
            self.listener.on_event(event.clone());
        }
        effects.events
    }
}

/// Loads (or creates) the identity and checks that the database belongs to it. Writes only
/// on the first open, so an extension opening a database the app is writing to does not wait
/// for the app's lock.
fn open_identity(db: &mut Database, given: Option<&[u8]>) -> Result<Identity, WitanError> {
    {
        let read = db.read()?;
        if let Some(owner) = read.meta_get(MEMBER_ID_KEY)? {
            let secret = match given {
                Some(secret) => Some(secret.to_vec()),
                None => read.identity_secret()?,
            };
            if let Some(secret) = secret {
                let identity = parse_identity(&secret, given.is_some())?;
                return check_owner(&owner, identity);
            }
        }
    }
    let step = db.step()?;
    let identity = match given {
        Some(secret) => Identity::from_secret(secret)?,
        None => match step.identity_secret()? {
            Some(secret) => parse_identity(&secret, false)?,
            None => {
                let identity = Identity::generate();
                step.set_identity_secret(&identity.secret())?;
                identity
            }
        },
    };
    let identity = match step.meta_get(MEMBER_ID_KEY)? {
        Some(owner) => check_owner(&owner, identity)?,
        None => {
            step.meta_set(MEMBER_ID_KEY, identity.member_id().to_hex().as_bytes())?;
            identity
        }
    };
    step.commit()?;
    Ok(identity)
}

/// A secret from the host is the host's input; a stored one that does not parse is a
/// damaged database.
fn parse_identity(secret: &[u8], from_host: bool) -> Result<Identity, WitanError> {
    if from_host {
        return Ok(Identity::from_secret(secret)?);
    }
    Identity::from_secret(secret).map_err(|e| WitanError::Storage {
        reason: format!("stored identity is unreadable: {e}"),
    })
}

fn check_owner(owner: &[u8], identity: Identity) -> Result<Identity, WitanError> {
    if owner != identity.member_id().to_hex().as_bytes() {
        return Err(WitanError::invalid(
            "the database belongs to another identity",
        ));
    }
    Ok(identity)
}

fn is_in_memory(path: &str) -> bool {
    path.is_empty() || path == ":memory:"
}

#[cfg(test)]
mod tests;
