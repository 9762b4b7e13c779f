//! Read-only inspection for Rust callers (tests, simulators, desktop tools): the MLS epoch
//! authenticator of a conversation, which two members share exactly when they hold the same
//! epoch of the same group — the fork check of the simulator — and the engine's stored state
//! of a conversation (decoded as the client decodes it, whatever the row format).
//!
//! This impl block is deliberately not `#[uniffi::export]`ed: the `ffi` layer wraps only the
//! methods it lists, so nothing here reaches Kotlin or Swift.

use crate::mls::{Group, MlsProvider};
use crate::protocol::Conversation;

use super::WitanClient;
use super::error::WitanError;
use super::state;

impl WitanClient {
    /// The epoch authenticator of the conversation's current MLS epoch. `NotFound` when this
    /// client holds no group for it (never joined, or still waiting for a welcome).
    pub fn epoch_authenticator(&self, conversation_id: String) -> Result<Vec<u8>, WitanError> {
        self.with_db(|db| {
            let step = db.read()?;
            let provider = MlsProvider::new(&step);
            match Group::load(&provider, conversation_id.as_bytes())? {
                Some(group) => Ok(group.epoch_authenticator()),
                None => Err(WitanError::not_found(format!(
                    "MLS group of conversation {conversation_id:?}"
                ))),
            }
            // The read step is dropped here: nothing is written.
        })
    }

    /// The engine's stored state of the conversation, if any (a copy: changing it changes
    /// nothing).
    pub fn engine_state(
        &self,
        conversation_id: String,
    ) -> Result<Option<Conversation>, WitanError> {
        self.with_db(|db| {
            let step = db.read()?;
            state::load(&step, &conversation_id)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::client::{
        ClientConfig, EventListener, OutboundPacket, Transport, TransportError, WitanEvent,
        default_conversation_settings,
    };

    struct Quiet;

    impl Transport for Quiet {
        fn publish(&self, _: OutboundPacket) -> Result<(), TransportError> {
            Ok(())
        }
        fn subscribe(&self, _: String) {}
        fn unsubscribe(&self, _: String) {}
    }

    impl EventListener for Quiet {
        fn on_event(&self, _: WitanEvent) {}
    }

    #[test]
    fn the_authenticator_is_stable_within_an_epoch_and_missing_groups_are_not_found() {
        let client = WitanClient::open(
            ClientConfig {
                database_path: ":memory:".into(),
                identity_secret: Some(vec![3; 32]),
                database_key: None,
                role: None,
            },
            Arc::new(Quiet),
            Arc::new(Quiet),
        )
        .unwrap();
        client
            .create_conversation("c".into(), default_conversation_settings())
            .unwrap();
        let first = client.epoch_authenticator("c".into()).unwrap();
        assert!(!first.is_empty());
        let state = client.engine_state("c".into()).unwrap().unwrap();
        assert_eq!(state.members().len(), 1);
        assert_eq!(
            client
                .engine_state("other".into())
                .unwrap()
                .map(|c| c.epoch()),
            None
        );
        client.send_message("c".into(), b"hi".to_vec()).unwrap();
        assert_eq!(client.epoch_authenticator("c".into()).unwrap(), first);
        assert!(matches!(
            client.epoch_authenticator("other".into()),
            Err(WitanError::NotFound { .. })
        ));
    }
}
