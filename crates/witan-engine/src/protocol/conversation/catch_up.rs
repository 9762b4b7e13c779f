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

use super::schema::{ArchivePart, StoredArchived};
use super::{Conversation, PartKey};
use crate::mls::{MemberId, MlsError};
use crate::protocol::commit_round::max_faulty;
use crate::protocol::{Ctx, Event, Outbound, Output, ProtocolError, topics};
use witan_wire as wire;

/// Certified commits kept at most, and their bytes at most.
pub const MAX_ARCHIVED: usize = 8;
pub const MAX_ARCHIVE_BYTES: usize = 2 * 1024 * 1024;
/// Catch-up requests back off up to this many doublings of the commit inactivity window.
const MAX_BACKOFF: u32 = 6;

/// One certified commit as it was published, with the members of its epoch.
///
/// The packet itself is a row of its own (see [`archive_row`]), written by the step that
/// applies the commit and read only to answer a catch-up: a step that applies a commit
/// then writes one packet, not the whole archive, and a notification extension's wake-up
/// never holds the archive's packets (up to [`MAX_ARCHIVE_BYTES`]) in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    pub(crate) epoch: u64,
    /// The packet's bytes.
    pub(crate) len: usize,
    /// The packet, when this entry was written by a version that kept the packets in the
    /// archive part: it stays there until it ages out of the archive.
    pub(crate) inline: Option<Vec<u8>>,
    pub(crate) keys: Vec<[u8; 32]>,
}

/// The archive part: the last certified commits, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Archive {
    pub(crate) entries: Vec<Archived>,
}

impl Archive {
    /// Keeps `entry`; returns the entries it pushed out.
    fn keep(&mut self, entry: Archived) -> Vec<Archived> {
        let mut out = Vec::new();
        if let Some(i) = self.entries.iter().position(|e| e.epoch == entry.epoch) {
            // Replaced: its row, if it has one, is written again under the same key.
            self.entries.remove(i);
        }
        self.entries.push(entry);
        self.entries.sort_by_key(|e| e.epoch);
        let bytes = |es: &[Archived]| es.iter().map(|e| e.len).sum::<usize>();
        while self.entries.len() > MAX_ARCHIVED
            || (self.entries.len() > 1 && bytes(&self.entries) > MAX_ARCHIVE_BYTES)
        {
            out.push(self.entries.remove(0));
        }
        out
    }

    fn oldest(&self) -> Option<u64> {
        self.entries.first().map(|e| e.epoch)
    }

    /// The archive part's encoding (`schema::ArchivePart` with `version`).
    pub(super) fn encode(&self, version: u32) -> Vec<u8> {
        use prost::Message;
        ArchivePart {
            version,
            entries: self
                .entries
                .iter()
                .map(|e| StoredArchived {
                    epoch: e.epoch,
                    packet: e.inline.clone().unwrap_or_default(),
                    keys: e.keys.iter().map(|k| k.to_vec()).collect(),
                    packet_len: if e.inline.is_some() { 0 } else { e.len as u64 },
                })
                .collect(),
        }
        .encode_to_vec()
    }
}

/// The key of the row holding the packet of `conversation`'s certified commit of `epoch`:
/// beside OpenMLS's rows, under a prefix of its own.
fn archive_row(conversation: &str, epoch: u64) -> Vec<u8> {
    format!("witan1/archive/{conversation}/{epoch:016x}").into_bytes()
}

impl Conversation {
    /// Keeps the packet of the certified commit of `epoch` (whose members are still in
    /// `self.members`): its row is written in this step, and the rows of the entries it
    /// pushes out are deleted.
    pub(super) fn archive(&mut self, ctx: &Ctx, epoch: u64, packet: Option<Vec<u8>>) {
        let Some(packet) = packet else { return };
        self.touch(PartKey::Archive);
        let storage = ctx.provider.storage();
        let keys = self.members.iter().map(|(_, k)| *k).collect();
        let len = packet.len();
        storage.put_row(archive_row(&self.id, epoch), packet);
        let out = self.archive.keep(Archived {
            epoch,
            len,
            inline: None,
            keys,
        });
        for e in out.iter().filter(|e| e.inline.is_none()) {
            storage.delete_row(archive_row(&self.id, e.epoch));
        }
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
                        self.republish(ctx, e, out)?;
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

impl Conversation {
    /// Queues an archived packet for publishing again, as it was. A row that is missing
    /// (deleted by hand, or a copy of this state under another id) is skipped: another of the
    /// members asked answers.
    fn republish(&self, ctx: &Ctx, e: &Archived, out: &mut Output) -> Result<(), ProtocolError> {
        let stored;
        let packet = match &e.inline {
            Some(p) => p,
            None => {
                stored = ctx
                    .provider
                    .storage()
                    .get_row(&archive_row(&self.id, e.epoch))
                    .map_err(|err| MlsError::Storage(err.to_string()))?;
                let Some(p) = &stored else {
                    tracing::warn!(conversation = %self.id, epoch = e.epoch, "an archived commit's row is missing");
                    return Ok(());
                };
                p
            }
        };
        let Ok((env, seen)) = wire::decode_envelope_keyed(packet) else {
            return Ok(());
        };
        out.outbound.push(Outbound {
            topic: topics::app(&self.id),
            payload: packet.to_vec(),
            packet_id: env.packet_id_hex(),
            seen,
            copy_known: false,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Archive, Archived, MAX_ARCHIVE_BYTES, MAX_ARCHIVED};
    use crate::protocol::conversation::part_codec::archive_from;
    use crate::protocol::conversation::schema::ArchivePart;

    fn entry(epoch: u64, len: usize, inline: bool) -> Archived {
        Archived {
            epoch,
            len,
            inline: inline.then(|| vec![epoch as u8; len]),
            keys: vec![[epoch as u8; 32]; 2],
        }
    }

    #[test]
    fn the_archive_part_reads_back_as_written_with_rows_and_inline_packets() {
        use prost::Message;
        let a = Archive {
            entries: vec![
                entry(1, 3, true),
                entry(300, 200, false),
                entry(u64::MAX, 0, false),
            ],
        };
        let bytes = a.encode(1);
        let back = archive_from(ArchivePart::decode(bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn a_packet_an_earlier_version_kept_in_the_part_is_published_again_beside_one_in_a_row() {
        use super::{Conversation, archive_row};
        use crate::mls::{Identity, MemoryKv, MlsProvider};
        use crate::protocol::{Ctx, Output, Settings};
        use witan_wire::{self as wire, Envelope, PacketKind};

        let kv = MemoryKv::new();
        let provider = MlsProvider::new(&kv);
        let (me, asker) = (
            Identity::from_secret(&[1; 32]).unwrap(),
            Identity::from_secret(&[2; 32]).unwrap(),
        );
        let ctx = |identity| Ctx {
            provider: &provider,
            identity,
            now_ms: 0,
            defer_governance: false,
        };
        let (mut conv, _) = Conversation::create(&ctx(&me), "c", Settings::default()).unwrap();
        let packet = |n: u8| {
            let env = Envelope::new("c", [n; 20], PacketKind::Group, vec![n; 40]);
            wire::encode(&env)
        };
        let (old, new) = (packet(1), packet(2));
        let keys = vec![asker.public_key(), me.public_key()];
        conv.archive.entries = vec![
            Archived {
                epoch: 4,
                len: old.len(),
                inline: Some(old.clone()),
                keys: keys.clone(),
            },
            Archived {
                epoch: 5,
                len: new.len(),
                inline: None,
                keys,
            },
        ];
        provider.storage().put_row(archive_row("c", 5), new.clone());
        conv.epoch = 6;
        let request = conv.signed_catch_up(&ctx(&asker), 4, false, 0);
        let mut out = Output::default();
        conv.on_catch_up(&ctx(&me), request, &mut out).unwrap();
        let sent: Vec<&[u8]> = out.outbound.iter().map(|o| o.payload.as_slice()).collect();
        assert_eq!(sent, vec![old.as_slice(), new.as_slice()]);
    }

    #[test]
    fn the_archive_keeps_the_newest_commits_within_its_bounds_and_says_what_it_dropped() {
        let mut a = Archive::default();
        let mut dropped = Vec::new();
        for epoch in 1..=(MAX_ARCHIVED as u64 + 3) {
            dropped.extend(a.keep(entry(epoch, 10, false)).into_iter().map(|e| e.epoch));
        }
        assert_eq!(dropped, vec![1, 2, 3]);
        assert_eq!(a.entries.len(), MAX_ARCHIVED);
        let big = a.keep(entry(100, MAX_ARCHIVE_BYTES - 15, false));
        assert_eq!(
            big.len(),
            MAX_ARCHIVED - 1,
            "only the newest and one more fit"
        );
        assert_eq!(
            a.entries.iter().map(|e| e.epoch).collect::<Vec<_>>(),
            vec![MAX_ARCHIVED as u64 + 3, 100]
        );
        assert!(
            a.keep(entry(100, 5, false)).is_empty(),
            "a replaced entry is not dropped"
        );
        assert_eq!(a.entries.len(), 2);
    }
}
