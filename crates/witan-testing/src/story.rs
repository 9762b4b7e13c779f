//! What a test asks of the world's conversation ([`World::conv`]): form it by vote, send to
//! it, hand a member packets, read it back (history, rows of its file), and check that members
//! agree on everything a fork would break.

use std::collections::BTreeSet;

use witan::client::{
    ConversationInfo, ConversationSettings, ConversationState, EventListener, InboundPacket,
    ReceiveReport, StoredMessage, WitanError, default_conversation_settings,
};

use crate::world::World;

/// Settings that make a story quick in virtual time.
pub fn fast_settings() -> ConversationSettings {
    ConversationSettings {
        pending_join_timeout_ms: 60_000,
        commit_inactivity_ms: 3_000,
        recovery_inactivity_ms: 2_000,
        freeze_window_ms: 1_000,
        vote_timeout_ms: 5_000,
        auto_vote_delay_ms: Some(0),
        commit_delay_ms: 100,
        max_clock_skew_ms: 1_000,
        ..default_conversation_settings()
    }
}

/// The member ids of a conversation.
pub fn member_set(info: &ConversationInfo) -> BTreeSet<String> {
    info.members.iter().map(|m| m.member_id.clone()).collect()
}

impl<L: EventListener + 'static> World<L> {
    /// The creator `creator` and the joiners, admitted by vote (with [`fast_settings`]).
    pub fn form(&mut self, creator: usize, joiners: &[usize]) {
        self.c(creator)
            .create_conversation(self.conv.clone(), fast_settings())
            .expect("the creator creates the conversation");
        for &i in joiners {
            self.c(i)
                .request_to_join(self.conv.clone())
                .expect("a joiner asks to join");
        }
        self.run_for(30_000);
    }

    /// Member `i`'s view of the conversation (panics if it has none).
    pub fn info(&self, i: usize) -> ConversationInfo {
        self.c(i)
            .conversation(self.conv.clone())
            .expect("the database reads")
            .expect("the member has the conversation")
    }

    pub fn history(&self, i: usize) -> Vec<StoredMessage> {
        self.c(i)
            .messages(self.conv.clone(), None, 100_000)
            .expect("the database reads")
    }

    /// The bodies of member `i`'s history, as text.
    pub fn bodies(&self, i: usize) -> Vec<String> {
        self.history(i)
            .into_iter()
            .map(|m| String::from_utf8(m.body).expect("a text body"))
            .collect()
    }

    /// Hands member `i` these payloads in one `receive` call (as a push or a socket would).
    pub fn receive_payloads(
        &self,
        i: usize,
        payloads: &[Vec<u8>],
    ) -> Result<ReceiveReport, WitanError> {
        let packets = payloads
            .iter()
            .map(|payload| InboundPacket {
                topic: String::new(),
                payload: payload.clone(),
            })
            .collect();
        self.c(i).receive(packets)
    }

    /// Rows of `table` in member `i`'s database file.
    pub fn table_rows(&self, i: usize, table: &str) -> rusqlite::Result<i64> {
        let conn = rusqlite::Connection::open(self.path(i))?;
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
    }

    pub fn send(&self, i: usize, text: &str) {
        self.c(i)
            .send_message(self.conv.clone(), text.as_bytes().to_vec())
            .expect("the message is sent");
    }

    /// The local members agree on the conversation: Working, same epoch, same members, same
    /// stewards, same MLS epoch authenticator.
    pub fn assert_agree(&self, members: &[usize]) {
        let reference = self.info(members[0]);
        let auth = self.c(members[0]).epoch_authenticator(self.conv.clone());
        let auth = auth.expect("the reference reads its epoch authenticator");
        for &i in members {
            let info = self.info(i);
            let who = &self.names[i];
            assert_eq!(info.state, ConversationState::Working, "{who}");
            assert_eq!(info.epoch, reference.epoch, "{who}");
            assert_eq!(member_set(&info), member_set(&reference), "{who}");
            assert_eq!(info.stewards, reference.stewards, "{who}");
            let a = self.c(i).epoch_authenticator(self.conv.clone());
            assert_eq!(
                a.expect("it reads its epoch authenticator"),
                auth,
                "{who} forked"
            );
        }
    }
}
