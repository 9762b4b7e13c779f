//! Catching up with the certified chain.
//!
//! Every member keeps the packets of the last few certified commits it applied (the archive,
//! with the keys of the members of each epoch). A member that sees traffic of a later epoch —
//! unauthenticated, so it proves nothing and starts no clock but this one — asks, after the
//! commit inactivity window and then less and less often, for the certified commits it lacks:
//! a [`wire::CatchUp`] on the welcome topic, signed with its identity key (the others may not
//! be able to read its epoch any more). The first members of the leader order answer by
//! publishing the stored packets again, byte for byte, so the member reads them with its own
//! epoch's keys and applies them one after another. A member told by more than f members of
//! its epoch, in signed answers, that the commit it needs is no longer kept has no certified
//! path left: only then is it told to re-join.

use super::{Conversation, PartKey};
use crate::mls::MemberId;
use crate::protocol::commit_round::max_faulty;
use crate::protocol::{Ctx, Event, Outbound, Output, ProtocolError, topics};
use witan_wire as wire;

/// Certified commits kept at most, and their bytes at most.
pub const MAX_ARCHIVED: usize = 8;
pub const MAX_ARCHIVE_BYTES: usize = 2 * 1024 * 1024;
/// Catch-up requests back off up to this many doublings of the commit inactivity window.
const MAX_BACKOFF: u32 = 6;

/// One certified commit as it was published, with the members of its epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    pub(crate) epoch: u64,
    pub(crate) packet: Vec<u8>,
    pub(crate) keys: Vec<[u8; 32]>,
}

/// The archive part: the last certified commits, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Archive {
    pub(crate) entries: Vec<Archived>,
}

impl Archive {
    fn keep(&mut self, entry: Archived) {
        self.entries.retain(|e| e.epoch != entry.epoch);
        self.entries.push(entry);
        self.entries.sort_by_key(|e| e.epoch);
        let bytes = |es: &[Archived]| es.iter().map(|e| e.packet.len()).sum::<usize>();
        while self.entries.len() > MAX_ARCHIVED
            || (self.entries.len() > 1 && bytes(&self.entries) > MAX_ARCHIVE_BYTES)
        {
            self.entries.remove(0);
        }
    }

    fn oldest(&self) -> Option<u64> {
        self.entries.first().map(|e| e.epoch)
    }

    /// The archive part's encoding (`schema::ArchivePart` with `version`), written from the
    /// entries in place. Building the schema message first would copy every packet — up to
    /// `MAX_ARCHIVE_BYTES` more at the peak of a notification extension's wake-up, which
    /// saves this part whenever it applies a certified commit.
    pub(super) fn encode(&self, version: u32) -> Vec<u8> {
        use prost::encoding::{
            WireType, bytes, encode_key, encode_varint, encoded_len_varint, key_len, uint32, uint64,
        };
        // A key is a 32-byte field 3: its tag, its length, its bytes.
        let key_field = key_len(3) + encoded_len_varint(32) + 32;
        let entry_len = |e: &Archived| {
            (if e.epoch != 0 {
                uint64::encoded_len(1, &e.epoch)
            } else {
                0
            }) + (if e.packet.is_empty() {
                0
            } else {
                bytes::encoded_len(2, &e.packet)
            }) + e.keys.len() * key_field
        };
        let lens: Vec<usize> = self.entries.iter().map(entry_len).collect();
        let total = lens
            .iter()
            .map(|l| key_len(2) + encoded_len_varint(*l as u64) + l)
            .sum::<usize>()
            + uint32::encoded_len(1, &version);
        let mut buf = Vec::with_capacity(total);
        if version != 0 {
            uint32::encode(1, &version, &mut buf);
        }
        for (e, len) in self.entries.iter().zip(lens) {
            encode_key(2, WireType::LengthDelimited, &mut buf);
            encode_varint(len as u64, &mut buf);
            if e.epoch != 0 {
                uint64::encode(1, &e.epoch, &mut buf);
            }
            if !e.packet.is_empty() {
                bytes::encode(2, &e.packet, &mut buf);
            }
            for k in &e.keys {
                encode_key(3, WireType::LengthDelimited, &mut buf);
                encode_varint(32, &mut buf);
                buf.extend_from_slice(k);
            }
        }
        buf
    }
}

impl Conversation {
    /// Keeps the packet of the certified commit of `epoch` (whose members are still in
    /// `self.members`).
    pub(super) fn archive(&mut self, epoch: u64, packet: Option<Vec<u8>>) {
        let Some(packet) = packet else { return };
        self.touch(PartKey::Archive);
        let keys = self.members.iter().map(|(_, k)| *k).collect();
        self.archive.keep(Archived {
            epoch,
            packet,
            keys,
        });
    }

    /// Traffic of a later epoch arrived: if nothing moves this member on, it asks.
    pub(super) fn note_behind(&mut self, ctx: &Ctx) {
        if self.catch_up_at.is_none() {
            self.touch(PartKey::Core);
            self.catch_up_at = Some(
                ctx.now_ms
                    .saturating_add(self.settings.commit_inactivity_ms),
            );
        }
    }

    /// The epoch moved: whatever catching up was under way is over.
    pub(super) fn caught_up(&mut self) {
        self.touch(PartKey::Core);
        self.catch_up_at = None;
        self.catch_up_tries = 0;
        self.gone.clear();
    }

    /// The catch-up deadline fired: asks, and waits longer before asking again.
    pub(super) fn ask_to_catch_up(&mut self, ctx: &Ctx, out: &mut Output) {
        self.touch(PartKey::Core);
        self.catch_up_tries = self.catch_up_tries.saturating_add(1);
        let backoff = 1u64 << self.catch_up_tries.min(MAX_BACKOFF);
        let wait = self.settings.commit_inactivity_ms.saturating_mul(backoff);
        self.catch_up_at = Some(ctx.now_ms.saturating_add(wait));
        tracing::info!(conversation = %self.id, epoch = self.epoch, tries = self.catch_up_tries, "asking for the certified commits this member lacks");
        let c = self.signed_catch_up(ctx, self.epoch, false, 0);
        self.emit(
            out,
            topics::welcome(&self.id),
            wire::PacketKind::CatchUp,
            wire::encode(&c),
            None,
        );
    }

    fn signed_catch_up(&self, ctx: &Ctx, epoch: u64, gone: bool, oldest: u64) -> wire::CatchUp {
        let hash = wire::catch_up_hash(&self.id, epoch, gone, oldest);
        wire::CatchUp {
            epoch,
            gone,
            oldest,
            key: ctx.identity.public_key().to_vec(),
            signature: ctx.identity.sign(&hash),
        }
    }

    /// A catch-up request or answer from the welcome topic.
    pub(super) fn on_catch_up(
        &mut self,
        ctx: &Ctx,
        c: wire::CatchUp,
        out: &mut Output,
    ) -> Result<(), ProtocolError> {
        let hash = wire::catch_up_hash(&self.id, c.epoch, c.gone, c.oldest);
        if !crate::mls::verify_signature(&c.key, &hash, &c.signature) {
            return Err(ProtocolError::InvalidInput(
                "catch-up signature does not verify".into(),
            ));
        }
        let key: [u8; 32] = c
            .key
            .as_slice()
            .try_into()
            .map_err(|_| ProtocolError::InvalidInput("catch-up key is not 32 bytes".into()))?;
        let sender = MemberId::from_public_key(&key);
        if c.gone {
            self.on_gone(c.epoch, sender, key, out);
            return Ok(());
        }
        if c.epoch >= self.epoch {
            return Ok(());
        }
        match self.archive.entries.iter().position(|e| e.epoch == c.epoch) {
            Some(i) if self.archive.entries[i].keys.contains(&key) => {
                // The first f + 1 members of the order, the asker left out (in a group of two
                // the other member answers).
                let rank = self
                    .leaders
                    .iter()
                    .filter(|m| **m != sender)
                    .position(|m| *m == self.me)
                    .unwrap_or(usize::MAX);
                if rank <= max_faulty(self.leaders.len()) {
                    for e in &self.archive.entries[i..] {
                        republish(&self.id, &e.packet, out);
                    }
                }
            }
            Some(_) => {}
            None => {
                let too_old = self.archive.oldest().is_some_and(|o| c.epoch < o)
                    && self.since_epoch <= c.epoch;
                if too_old {
                    let oldest = self.archive.oldest().unwrap_or(self.epoch);
                    let answer = self.signed_catch_up(ctx, c.epoch, true, oldest);
                    self.emit(
                        out,
                        topics::welcome(&self.id),
                        wire::PacketKind::CatchUp,
                        wire::encode(&answer),
                        None,
                    );
                }
            }
        }
        Ok(())
    }

    /// A member of this epoch says the commit this member needs is no longer kept.
    fn on_gone(&mut self, epoch: u64, sender: MemberId, key: [u8; 32], out: &mut Output) {
        let member = self.members.iter().any(|(m, k)| *m == sender && *k == key);
        if epoch != self.epoch || !member || self.rejoin_required || !self.is_member_state() {
            return;
        }
        self.touch(PartKey::Core);
        self.gone.insert(sender);
        if self.gone.len() > max_faulty(self.members.len()) {
            tracing::warn!(conversation = %self.id, epoch = self.epoch, "no certified path left: re-join required");
            self.rejoin_required = true;
            self.catch_up_at = None;
            out.events.push(Event::RejoinRequired);
        }
    }
}

/// Queues a stored packet for publishing again, as it was.
fn republish(conversation: &str, packet: &[u8], out: &mut Output) {
    let Ok(env) = wire::decode_envelope(packet) else {
        return;
    };
    out.outbound.push(Outbound {
        topic: topics::app(conversation),
        payload: packet.to_vec(),
        packet_id: env.packet_id_hex(),
    });
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::{Archive, Archived};
    use crate::protocol::conversation::schema::{ArchivePart, StoredArchived};

    fn derived(a: &Archive, version: u32) -> Vec<u8> {
        ArchivePart {
            version,
            entries: a
                .entries
                .iter()
                .map(|e| StoredArchived {
                    epoch: e.epoch,
                    packet: e.packet.clone(),
                    keys: e.keys.iter().map(|k| k.to_vec()).collect(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    #[test]
    fn the_archive_encodes_in_place_exactly_as_its_schema_message() {
        let entry = |epoch: u64, len: usize, keys: usize| Archived {
            epoch,
            packet: (0..len).map(|i| i as u8).collect(),
            keys: (0..keys).map(|k| [k as u8; 32]).collect(),
        };
        let cases = [
            Archive::default(),
            Archive {
                entries: vec![entry(0, 0, 0)],
            },
            Archive {
                entries: vec![
                    entry(1, 3, 1),
                    entry(300, 200, 5),
                    entry(u64::MAX, 70_000, 0),
                ],
            },
        ];
        for a in &cases {
            for version in [0, 1, 7] {
                assert_eq!(a.encode(version), derived(a, version));
            }
        }
    }
}
