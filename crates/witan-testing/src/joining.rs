//! Joining while away, for the engine-level scenario tests: a member asks to join while
//! offline, the others certify its add, and the welcome waits among what it missed; and a
//! member of the new epoch reads the welcome's conversation sync.

use witan::mls::{Group, MlsProvider};
use witan::wire::{self, group_payload::Content};

use crate::engine::{CONV, Net};

/// A join whose welcome waits in the joiner's mailbox.
pub struct MissedWelcome {
    pub joiner: usize,
    /// Everything the joiner missed, in arrival order (its mailbox, taken).
    pub backlog: Vec<Vec<u8>>,
    /// The welcome's envelope, from the backlog.
    pub envelope: wire::Envelope,
    /// The welcome packet it carries.
    pub packet: wire::WelcomePacket,
}

impl Net {
    /// A fresh member (the sixth identity of [`Net::new`]) asks to join while offline, and the
    /// others run for 30 s: its join request reaches them, and what comes back waits.
    pub fn join_while_offline(&mut self) -> MissedWelcome {
        let fresh = Net::new(6).nodes.pop().expect("Net::new(6) has six nodes");
        self.nodes.push(fresh);
        let joiner = self.nodes.len() - 1;
        self.offline.insert(joiner);
        self.request_join(joiner);
        self.run_for(30_000);
        let backlog = self.mailbox.remove(&joiner).unwrap_or_default();
        let envelope = backlog
            .iter()
            .filter_map(|p| wire::decode_envelope(p).ok())
            .find(|e| e.kind == wire::PacketKind::Welcome as i32)
            .expect("a welcome for the joiner");
        let packet = wire::decode_welcome_packet(&envelope.body).expect("a welcome packet");
        MissedWelcome {
            joiner,
            backlog,
            envelope,
            packet,
        }
    }

    /// The conversation sync of `packet`, as member `reader` (of the new epoch) decrypts it.
    pub fn read_sync(&self, reader: usize, packet: &wire::WelcomePacket) -> wire::ConversationSync {
        let kv = self.nodes[reader].kv.clone();
        let provider = MlsProvider::new(&kv);
        let mut group = Group::load(&provider, CONV.as_bytes())
            .expect("the reader's group reads")
            .expect("the reader is in the group");
        let d = group
            .decrypt(&provider, &packet.sync)
            .expect("the reader decrypts the sync");
        match wire::decode_group_payload(&d.plaintext).map(|p| p.content) {
            Ok(Some(Content::Sync(s))) => s,
            other => panic!("not a sync: {other:?}"),
        }
    }
}
