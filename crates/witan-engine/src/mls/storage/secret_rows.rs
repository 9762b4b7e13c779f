//! A group's message secrets kept as pieces in rows of their own, so that a receive rewrites
//! the piece that changed, not a row that grows with the group.
//!
//! OpenMLS hands over the whole message-secrets store (the secret tree of this epoch and of
//! the past epochs kept) after every message it processes. One received application message
//! advances one sender's ratchet, yet the whole value — 4 KB at 16 members, 27 KB at 128 —
//! used to be rewritten, in pages that SQLite then copies into its log and checkpoints. The
//! value is now encoded with cuts (`codec::to_vec_with_cuts`: between elements of the tree's
//! long lists; struct fields by position, without names), each piece is a row of its own,
//! and a head row at the usual key names how many pieces there are and which version of them
//! the rows hold.
//!
//! A group keeps the pieces it last wrote ([`SecretRows`], in `Group`) and lends them to the
//! storage around its operations that write secrets — sending, receiving, writing deferred
//! secrets back ([`MlsStorage::with_secret_memory`]): only the pieces that differ from those
//! are written. That memory is trusted only if the head in the rows still has its version —
//! any other write of the secrets (without the memory, by another group object, by another
//! connection) bumps the version — so a stale memory costs a full write, never a wrong one.
//!
//! The memory also spares most of the encoding: a group tracks the application ratchets it
//! advanced since its last write (`Group::advanced`), and when it writes back secrets whose
//! write was deferred (a receive step), every element of the secret tree's lists — and every
//! past epoch — is copied from the memory but those ratchets (`codec::to_vec_reusing`). That
//! holds only while each of those ratchets existed before: a sender's first message in an
//! epoch also derives its ratchets from the tree's nodes, and is encoded afresh. A write
//! inside an OpenMLS operation (a send, a commit) knows nothing of what changed and encodes
//! afresh too.
//!
//! A value with nothing to cut (a group of up to 8 members) is written whole, in one row
//! starting with the row codec's magic byte, as all rows were before pieces; such a row is
//! read as it is (and leaves no memory).
//!
//! Head: [`PIECES_MAGIC`], the piece count (u32 le), the version (u64 le). Piece `i`: the
//! head's key, `#`, `i` (u32 big-endian, so the pieces of a group sort in order).

use super::*;

/// First byte of a message-secrets head (a row written whole starts with `codec::MAGIC`).
const PIECES_MAGIC: u8 = 0xB3;
/// Most pieces a head may name: a head read from the database is input.
const MAX_PIECES: u32 = 1 << 16;
const HEAD_LEN: usize = 1 + 4 + 8;

/// The struct field of OpenMLS's secret tree that holds the application ratchets, one per
/// leaf (a receive or a send advances one of them).
const APPLICATION_RATCHETS: &str = "application_sender_ratchets";

/// Message secrets as one group last wrote them: the encoding (where it was cut, where its
/// lists' elements lie) and the version its head was given.
#[derive(Debug, Clone)]
pub struct SecretRows {
    version: u64,
    encoded: codec::Encoded,
}

impl SecretRows {
    fn count(&self) -> usize {
        self.encoded.cuts.len() + 1
    }

    fn piece(&self, i: usize) -> Option<&[u8]> {
        let (bytes, cuts) = (&self.encoded.bytes, &self.encoded.cuts);
        let start = match i {
            0 => 0,
            _ => *cuts.get(i - 1)?,
        };
        let end = cuts.get(i).copied().unwrap_or(bytes.len());
        bytes.get(start..end)
    }

    /// The version of the head these pieces were written under.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether the application ratchet of every leaf in `leaves` already existed in these
    /// secrets: advancing an existing ratchet changes nothing else, while the first message of
    /// a sender in an epoch also derives its ratchets from the tree's nodes.
    fn has_ratchets(&self, leaves: &[usize]) -> bool {
        leaves.iter().all(|&leaf| {
            self.encoded
                .element(APPLICATION_RATCHETS, leaf)
                .is_some_and(|e| e != [codec::NONE_TAG])
        })
    }
}

/// A group's operation in progress ([`MlsStorage::with_secret_memory`]).
#[derive(Debug, Default)]
pub(super) struct Scope {
    /// The pieces the group last wrote, then the pieces written in this scope.
    memory: Option<SecretRows>,
    /// The leaves whose application ratchets the group advanced since `memory` was written
    /// (`None`: anything may have changed).
    advanced: Option<Vec<usize>>,
    /// Join-configuration writes are dropped (see [`MlsStorage::with_secret_memory`]).
    drop_join_config: bool,
}

/// What a head row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    count: u32,
    version: u64,
}

fn head_bytes(head: Head) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD_LEN);
    out.push(PIECES_MAGIC);
    out.extend_from_slice(&head.count.to_le_bytes());
    out.extend_from_slice(&head.version.to_le_bytes());
    out
}

/// The head a row holds: `None` for a row written whole.
fn parse_head(row: &[u8]) -> Result<Option<Head>, MlsStorageError> {
    match row.first() {
        Some(&codec::MAGIC) => return Ok(None),
        Some(&PIECES_MAGIC) if row.len() == HEAD_LEN => {}
        _ => {
            return Err(MlsStorageError::Serde(
                "message secrets: damaged head".into(),
            ));
        }
    }
    let count = row
        .get(1..5)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes);
    let version = row
        .get(5..HEAD_LEN)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes);
    match (count, version) {
        (Some(count), Some(version)) if (1..=MAX_PIECES).contains(&count) => {
            Ok(Some(Head { count, version }))
        }
        _ => Err(MlsStorageError::Serde(
            "message secrets: head names no pieces or too many".into(),
        )),
    }
}

/// The secrets encoded with their struct fields by position (a fifth fewer bytes, less time,
/// and they are encoded after every message), or with names if a struct of them cannot be
/// written so (one that leaves a field out); the reader takes either. With the pieces in the
/// rows (`previous`) and the leaves whose ratchets alone changed since (`advanced`), the
/// rest is copied from `previous` instead of encoded again.
fn encode<V: Serialize + ?Sized>(
    value: &V,
    previous: &mut Option<SecretRows>,
    advanced: Option<Vec<usize>>,
) -> Result<codec::Encoded, MlsStorageError> {
    #[cfg(any(test, feature = "testing"))]
    if tests_hook::NAMED.get() {
        return Ok(codec::to_vec_with_cuts(value, codec::Fields::Named, 0)?);
    }
    if let (Some(prev), Some(leaves)) = (previous.as_mut(), advanced)
        && prev.has_ratchets(&leaves)
        && let Ok(encoded) =
            codec::to_vec_reusing(value, &mut prev.encoded, APPLICATION_RATCHETS, leaves)
    {
        check_copy(value, &prev.encoded, &encoded)?;
        return Ok(encoded);
    }
    let expected = previous
        .as_ref()
        .map_or(0, |p| p.encoded.bytes.len() + p.encoded.bytes.len() / 16);
    codec::to_vec_with_cuts(value, codec::Fields::ByPosition, expected)
        .or_else(|_| codec::to_vec_with_cuts(value, codec::Fields::Named, expected))
        .map_err(MlsStorageError::from)
}

/// In debug builds (every test), an encoding made by copying must be the one made afresh.
fn check_copy<V: Serialize + ?Sized>(
    value: &V,
    previous: &codec::Encoded,
    copied: &codec::Encoded,
) -> Result<(), MlsStorageError> {
    #[cfg(any(test, feature = "testing"))]
    tests_hook::COPIED.set(tests_hook::COPIED.get() + 1);
    if cfg!(debug_assertions) {
        let fresh = codec::to_vec_like(value, previous)?;
        if fresh.bytes != copied.bytes || fresh.cuts != copied.cuts {
            return Err(MlsStorageError::Serde(
                "message secrets: the copied encoding differs from a fresh one".into(),
            ));
        }
    }
    Ok(())
}

fn piece_key(head_key: &[u8], i: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(head_key.len() + 5);
    key.extend_from_slice(head_key);
    key.push(b'#');
    key.extend_from_slice(&i.to_be_bytes());
    key
}

fn piece_index(i: usize) -> Result<u32, MlsStorageError> {
    u32::try_from(i)
        .ok()
        .filter(|i| *i < MAX_PIECES)
        .ok_or_else(|| MlsStorageError::Serde("message secrets: too many pieces".into()))
}

impl MlsStorage<'_> {
    /// Runs `op`, an operation of one group that may write its message secrets, with the
    /// pieces that group wrote last (`memory`); returns its result and the pieces the rows
    /// hold after it (the memory unchanged if it wrote none).
    ///
    /// With `drop_join_config`, join-configuration writes are dropped: OpenMLS's only public
    /// way to write the secrets back is setting the deletion policy the group already has,
    /// which also writes the join configuration, unchanged (a live receive would pay for it as
    /// one more page).
    pub(crate) fn with_secret_memory<T>(
        &self,
        memory: Option<SecretRows>,
        advanced: Option<Vec<usize>>,
        drop_join_config: bool,
        op: impl FnOnce() -> T,
    ) -> (T, Option<SecretRows>) {
        *self.scope.borrow_mut() = Some(Scope {
            memory,
            advanced,
            drop_join_config,
        });
        let out = op();
        let memory = self.scope.borrow_mut().take().and_then(|s| s.memory);
        (out, memory)
    }

    pub(super) fn drops_join_config(&self) -> bool {
        self.scope
            .borrow()
            .as_ref()
            .is_some_and(|s| s.drop_join_config)
    }

    /// Writes message secrets as pieces under `head_key`: the pieces that differ from the
    /// memory of the group in scope when that memory is what the rows hold, every piece
    /// otherwise.
    pub(super) fn write_secret_rows<V: Serialize + ?Sized>(
        &self,
        head_key: Vec<u8>,
        value: &V,
    ) -> Result<(), MlsStorageError> {
        let old = match self.raw_get(&head_key)? {
            Some(row) => parse_head(&row)?,
            None => None,
        };
        let (old_count, old_version) = old.map_or((0, 0), |h| (h.count, h.version));
        // The memory is what the rows hold only if no other write bumped their version.
        let (mut previous, advanced) = match self.scope.borrow_mut().as_mut() {
            Some(s) => (
                s.memory
                    .take()
                    .filter(|p| old.is_some() && p.version == old_version),
                s.advanced.take(),
            ),
            None => (None, None),
        };
        let encoded = encode(value, &mut previous, advanced)?;
        let new = SecretRows {
            version: old_version.wrapping_add(1),
            encoded,
        };
        if new.encoded.cuts.is_empty() {
            // Nothing to cut (a group of up to 8): one row, as before pieces, and no head.
            for i in 0..old_count {
                self.raw_set(piece_key(&head_key, i), None);
            }
            self.raw_set(head_key, Some(new.encoded.bytes));
            return Ok(());
        }
        let count = piece_index(new.count())?;
        for i in 0..count {
            let Some(piece) = new.piece(i as usize) else {
                return Err(MlsStorageError::Serde("message secrets: bad cut".into()));
            };
            if previous.as_ref().and_then(|p| p.piece(i as usize)) != Some(piece) {
                self.raw_set(piece_key(&head_key, i), Some(piece.to_vec()));
            }
        }
        for i in count..old_count {
            self.raw_set(piece_key(&head_key, i), None);
        }
        let head = Head {
            count,
            version: new.version,
        };
        self.raw_set(head_key, Some(head_bytes(head)));
        if let Some(s) = self.scope.borrow_mut().as_mut() {
            s.memory = Some(new);
        }
        Ok(())
    }

    /// Drops this run's writes of the secrets under `head_key`, head and pieces alike (a
    /// deferred write supersedes them; a head left without its pieces would misread).
    pub(super) fn forget_secret_writes(&self, head_key: &[u8]) {
        let mut writes = self.writes.borrow_mut();
        if writes.is_empty() {
            // The usual case on a packet's run: nothing written before the secrets.
            return;
        }
        writes.remove(head_key);
        let mut prefix = head_key.to_vec();
        prefix.push(b'#');
        let pieces: Vec<Vec<u8>> = writes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for key in pieces {
            writes.remove(&key);
        }
    }

    /// [`MlsStorage::put`] for message secrets: skipped for the group whose writes are
    /// deferred (see the module doc).
    pub(super) fn put_message_secrets<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &self,
        label: &str,
        key: &K,
        value: &V,
    ) -> Result<(), MlsStorageError> {
        let row = Self::row_key(label, key)?;
        if let Some(cache) = self.deferral
            && self.deferred_row.borrow().as_ref() == Some(&row)
            && cache.defer_write()
        {
            // The lent group holds these secrets; an earlier write of this run is older.
            self.forget_secret_writes(&row);
            return Ok(());
        }
        self.write_secret_rows(row, value)
    }

    /// [`MlsStorage::get`] for message secrets.
    pub(super) fn get_message_secrets<K: Serialize + ?Sized, V: DeserializeOwned>(
        &self,
        label: &str,
        key: &K,
    ) -> Result<Option<V>, MlsStorageError> {
        self.read_secret_rows(&Self::row_key(label, key)?)
    }

    /// [`MlsStorage::del`] for message secrets.
    pub(super) fn del_message_secrets<K: Serialize + ?Sized>(
        &self,
        label: &str,
        key: &K,
    ) -> Result<(), MlsStorageError> {
        self.delete_secret_rows(Self::row_key(label, key)?)
    }

    /// Reads message secrets written as pieces or whole.
    pub(super) fn read_secret_rows<V: DeserializeOwned>(
        &self,
        head_key: &[u8],
    ) -> Result<Option<V>, MlsStorageError> {
        let Some(row) = self.raw_get(head_key)? else {
            return Ok(None);
        };
        let Some(head) = parse_head(&row)? else {
            return decode(&row).map(Some);
        };
        let mut bytes = Vec::new();
        for i in 0..head.count {
            match self.raw_get(&piece_key(head_key, i))? {
                Some(piece) => bytes.extend_from_slice(&piece),
                None => {
                    return Err(MlsStorageError::Serde(format!(
                        "message secrets: piece {i} of {} missing",
                        head.count
                    )));
                }
            }
        }
        decode(&bytes).map(Some)
    }

    /// Deletes message secrets written as pieces or whole.
    pub(super) fn delete_secret_rows(&self, head_key: Vec<u8>) -> Result<(), MlsStorageError> {
        if let Some(row) = self.raw_get(&head_key)?
            && let Some(head) = parse_head(&row)?
        {
            for i in 0..head.count {
                self.raw_set(piece_key(&head_key, i), None);
            }
        }
        self.raw_set(head_key, None);
        Ok(())
    }
}

/// `kv` with the versions of its message-secrets heads cleared: two paths that end with the
/// same secrets may have written them a different number of times.
#[cfg(test)]
pub(crate) fn without_versions(kv: &super::super::kv::MemoryKv) -> super::super::kv::MemoryKv {
    let mut out = kv.clone();
    for value in out.0.values_mut() {
        if value.len() == HEAD_LEN && value.first() == Some(&PIECES_MAGIC) {
            value[5..].fill(0);
        }
    }
    out
}

/// Lets a test write secrets with their field names, as versions before `FIELDS` did (on
/// this thread; never for hosts).
#[cfg(any(test, feature = "testing"))]
pub mod tests_hook {
    thread_local! {
        /// Whether message secrets are written with names.
        pub static NAMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        /// How many encodings of message secrets were made by copying from the last one.
        pub static COPIED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
}
