//! The UniFFI surface: `WitanClient` exported to Kotlin and Swift.
//!
//! Only this layer knows about foreign callers. It translates nothing but calling
//! conventions: the records, enums, errors and callback traits are the client's own (they
//! carry UniFFI derives in `client::types`), so there is one copy of every type.
//!
//! - Calls that touch storage or crypto are exported `async` (Kotlin `suspend`, Swift
//!   `async`) and run on tokio's blocking pool, so a call from the main thread never blocks
//!   it; cheap getters are exported sync. Rust callers use the client's blocking methods of
//!   the same names directly, or these `*_async` methods.
//! - No panic crosses the boundary: every call runs under `catch_unwind`, and a panic becomes
//!   `WitanError::Internal`. The client stays usable — its database handle sits behind a
//!   mutex that recovers from poisoning and every step is a transaction that a panic rolls
//!   back.
//! - The host's callbacks are isolated ([`HostTransport`], [`HostListener`]): a Kotlin or
//!   Swift implementation that throws where no error is declared (`on_event`, `subscribe`,
//!   `unsubscribe`) reaches Rust as a panic inside UniFFI. Those calls run after the step was
//!   committed, so letting the panic escape would report a failure for a call whose effects
//!   are stored (a retried `send_message` would send twice) and drop the remaining events and
//!   topic changes. The failure is logged and the call goes on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::client::{
    ClientConfig, ConversationInfo, ConversationSettings, EventListener, InboundPacket,
    OutboundPacket, PollReport, ReceiveReport, StoredMessage, Transport, TransportError,
    WakeupReport, WitanClient, WitanError, WitanEvent,
};

fn panic_reason(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `f`, turning a panic into `WitanError::Internal`.
fn guard<T>(f: impl FnOnce() -> Result<T, WitanError>) -> Result<T, WitanError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let reason = panic_reason(payload);
            tracing::error!(%reason, "panic caught at the FFI boundary");
            Err(WitanError::Internal {
                reason: format!("panic: {reason}"),
            })
        }
    }
}

/// Runs a blocking client call off the caller's thread when a tokio runtime drives the call
/// (always the case for Kotlin and Swift callers), inline otherwise.
async fn offload<T: Send + 'static>(
    client: Arc<WitanClient>,
    f: impl FnOnce(&WitanClient) -> Result<T, WitanError> + Send + 'static,
) -> Result<T, WitanError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.spawn_blocking(move || guard(|| f(&client))).await {
            Ok(result) => result,
            Err(join) => Err(WitanError::Internal {
                reason: format!("task failed: {join}"),
            }),
        },
        Err(_) => guard(|| f(&client)),
    }
}

/// The host's transport, with its failures contained: a throw from `publish` becomes a
/// `TransportError` (the packet stays in the outbox), one from `subscribe` / `unsubscribe` is
/// logged. The host's message is not logged: it may quote anything.
struct HostTransport(Arc<dyn Transport>);

impl Transport for HostTransport {
    fn publish(&self, packet: OutboundPacket) -> Result<(), TransportError> {
        catch_unwind(AssertUnwindSafe(|| self.0.publish(packet))).unwrap_or_else(|_| {
            Err(TransportError::Unavailable {
                reason: "the host transport failed".into(),
            })
        })
    }

    fn subscribe(&self, topic: String) {
        if catch_unwind(AssertUnwindSafe(|| self.0.subscribe(topic))).is_err() {
            tracing::warn!(
                "the host transport failed in subscribe; call subscriptions() to resync"
            );
        }
    }

    fn unsubscribe(&self, topic: String) {
        if catch_unwind(AssertUnwindSafe(|| self.0.unsubscribe(topic))).is_err() {
            tracing::warn!(
                "the host transport failed in unsubscribe; call subscriptions() to resync"
            );
        }
    }
}

/// The host's listener, with its failures contained: an event whose delivery throws is
/// dropped (the state it reports is stored) and the next ones are still delivered.
struct HostListener(Arc<dyn EventListener>);

impl EventListener for HostListener {
    fn on_event(&self, event: WitanEvent) {
        if catch_unwind(AssertUnwindSafe(|| self.0.on_event(event))).is_err() {
            tracing::warn!("the host event listener failed; the event was dropped");
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl WitanClient {
    /// Opens (or creates) the client's database and identity.
    #[uniffi::constructor(name = "open")]
    pub fn open_ffi(
        config: ClientConfig,
        transport: Arc<dyn Transport>,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<Self>, WitanError> {
        let transport = Arc::new(HostTransport(transport));
        let listener = Arc::new(HostListener(listener));
        guard(|| WitanClient::open(config, transport, listener))
    }

    #[uniffi::method(name = "member_id")]
    pub fn member_id_ffi(&self) -> String {
        self.member_id()
    }

    /// Topics the host must deliver to `receive`.
    #[uniffi::method(name = "subscriptions")]
    pub fn subscriptions_ffi(&self) -> Vec<String> {
        guard(|| Ok(self.subscriptions())).unwrap_or_default()
    }

    #[uniffi::method(name = "create_conversation")]
    pub async fn create_conversation_async(
        self: Arc<Self>,
        conversation_id: String,
        settings: ConversationSettings,
    ) -> Result<ConversationInfo, WitanError> {
        offload(self, move |c| {
            c.create_conversation(conversation_id, settings)
        })
        .await
    }

    /// Publishes this member's key package and waits in `PendingJoin` for a welcome.
    #[uniffi::method(name = "request_to_join")]
    pub async fn request_to_join_async(
        self: Arc<Self>,
        conversation_id: String,
    ) -> Result<(), WitanError> {
        offload(self, move |c| c.request_to_join(conversation_id)).await
    }

    /// Like `request_to_join`, but takes only a welcome into a group that
    /// `expected_member_id` (hex, known out-of-band: the inviter) is in and signed the
    /// commit adding this member for; an impostor's group under the same id is refused.
    #[uniffi::method(name = "request_to_join_expecting")]
    pub async fn request_to_join_expecting_async(
        self: Arc<Self>,
        conversation_id: String,
        expected_member_id: String,
    ) -> Result<(), WitanError> {
        offload(self, move |c| {
            c.request_to_join_expecting(conversation_id, expected_member_id)
        })
        .await
    }

    #[uniffi::method(name = "send_message")]
    pub async fn send_message_async(
        self: Arc<Self>,
        conversation_id: String,
        body: Vec<u8>,
    ) -> Result<String, WitanError> {
        offload(self, move |c| c.send_message(conversation_id, body)).await
    }

    #[uniffi::method(name = "propose_removal")]
    pub async fn propose_removal_async(
        self: Arc<Self>,
        conversation_id: String,
        member_id: String,
    ) -> Result<u64, WitanError> {
        offload(self, move |c| c.propose_removal(conversation_id, member_id)).await
    }

    #[uniffi::method(name = "vote")]
    pub async fn vote_async(
        self: Arc<Self>,
        conversation_id: String,
        proposal_id: u64,
        approve: bool,
    ) -> Result<(), WitanError> {
        offload(self, move |c| c.vote(conversation_id, proposal_id, approve)).await
    }

    #[uniffi::method(name = "leave")]
    pub async fn leave_async(self: Arc<Self>, conversation_id: String) -> Result<(), WitanError> {
        offload(self, move |c| c.leave(conversation_id)).await
    }

    /// Feeds packets that arrived on subscribed topics; duplicates change nothing.
    #[uniffi::method(name = "receive")]
    pub async fn receive_async(
        self: Arc<Self>,
        packets: Vec<InboundPacket>,
    ) -> Result<ReceiveReport, WitanError> {
        offload(self, move |c| c.receive(packets)).await
    }

    /// Fires due deadlines, retries the outbox, says when to run next.
    #[uniffi::method(name = "poll")]
    pub async fn poll_async(self: Arc<Self>) -> Result<PollReport, WitanError> {
        offload(self, move |c| c.poll()).await
    }

    /// The push path: receive + poll + outbox, returning what to show.
    #[uniffi::method(name = "handle_wakeup")]
    pub async fn handle_wakeup_async(
        self: Arc<Self>,
        packets: Vec<InboundPacket>,
    ) -> Result<WakeupReport, WitanError> {
        offload(self, move |c| c.handle_wakeup(packets)).await
    }

    #[uniffi::method(name = "conversations")]
    pub async fn conversations_async(self: Arc<Self>) -> Result<Vec<ConversationInfo>, WitanError> {
        offload(self, move |c| c.conversations()).await
    }

    #[uniffi::method(name = "conversation")]
    pub async fn conversation_async(
        self: Arc<Self>,
        conversation_id: String,
    ) -> Result<Option<ConversationInfo>, WitanError> {
        offload(self, move |c| c.conversation(conversation_id)).await
    }

    /// Stored history, oldest first, after `after_seq`.
    #[uniffi::method(name = "messages")]
    pub async fn messages_async(
        self: Arc<Self>,
        conversation_id: String,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, WitanError> {
        offload(self, move |c| c.messages(conversation_id, after_seq, limit)).await
    }

    /// Releases every database handle (call when the app goes to the background).
    #[uniffi::method(name = "suspend")]
    pub fn suspend_ffi(&self) {
        let _ = guard(|| {
            self.suspend();
            Ok(())
        });
    }

    #[uniffi::method(name = "resume")]
    pub fn resume_ffi(&self) -> Result<(), WitanError> {
        guard(|| self.resume())
    }

    /// Test hook: panics inside the library so binding tests can show that a panic reaches
    /// the host as `WitanError.Internal` and leaves the client usable. Never call it in an app.
    #[uniffi::method(name = "debug_force_panic")]
    pub async fn debug_force_panic_async(self: Arc<Self>) -> Result<(), WitanError> {
        offload(self, |_| -> Result<(), WitanError> {
            panic!("forced by debug_force_panic")
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::default_conversation_settings;

    /// A host whose every callback throws (what UniFFI turns into a panic).
    struct ThrowingHost;

    impl EventListener for ThrowingHost {
        fn on_event(&self, _: WitanEvent) {
            panic!("host listener threw");
        }
    }

    impl Transport for ThrowingHost {
        fn publish(&self, _: OutboundPacket) -> Result<(), TransportError> {
            panic!("host transport threw");
        }
        fn subscribe(&self, _: String) {
            panic!("host transport threw");
        }
        fn unsubscribe(&self, _: String) {
            panic!("host transport threw");
        }
    }

    #[test]
    fn a_throwing_host_callback_does_not_fail_a_committed_call() {
        let client = WitanClient::open_ffi(
            ClientConfig {
                database_path: ":memory:".into(),
                identity_secret: None,
                database_key: None,
                role: None,
            },
            Arc::new(ThrowingHost),
            Arc::new(ThrowingHost),
        )
        .unwrap();
        // Events (listener throws) and new topics (subscribe throws) follow the commit.
        client
            .create_conversation("c".into(), default_conversation_settings())
            .unwrap();
        // publish throws: the packet stays in the outbox.
        client.send_message("c".into(), b"hi".to_vec()).unwrap();
        assert_eq!(client.messages("c".into(), None, 10).unwrap().len(), 1);
        assert_eq!(client.poll().unwrap().outbox_pending, 1);
        assert!(!client.subscriptions().is_empty());
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let r: Result<(), WitanError> = guard(|| panic!("boom"));
        match r {
            Err(WitanError::Internal { reason }) => assert!(reason.contains("boom")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn errors_and_values_pass_through_unchanged() {
        assert_eq!(guard(|| Ok(5)).ok(), Some(5));
        let e = guard::<()>(|| Err(WitanError::NotFound { what: "x".into() }));
        assert!(matches!(e, Err(WitanError::NotFound { .. })));
    }
}
