//! The key-value rows behind OpenMLS storage: the read-only [`KvSource`] the store layer
//! implements over its database transaction, [`MemoryKv`], an in-memory implementation for
//! tests and simulators, and [`OverlayKv`], a write overlay that lets several MLS operations
//! of one transaction share their rows in memory.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Read side of the persistent key-value rows that back OpenMLS storage.
pub trait KvSource {
    /// Returns the value stored under `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;

    /// Hands the value stored under `key` (if any) to `f` — borrowed when the source can,
    /// which saves copying a large row that is only decoded.
    fn read(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), String> {
        let value = self.get(key)?;
        f(value.as_deref());
        Ok(())
    }
}

/// A `BTreeMap` key-value store (tests and simulators).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryKv(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl MemoryKv {
    /// An empty store.
    pub fn new() -> MemoryKv {
        MemoryKv::default()
    }

    /// Applies changes produced by
    /// [`MlsStorage::take_changes`](super::storage::MlsStorage::take_changes) (`None` deletes
    /// the row).
    pub fn apply(&mut self, changes: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        for (k, v) in changes {
            match v {
                Some(v) => {
                    self.0.insert(k, v);
                }
                None => {
                    self.0.remove(&k);
                }
            }
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the store has no rows.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl KvSource for MemoryKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(key).cloned())
    }

    fn read(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), String> {
        f(self.0.get(key).map(Vec::as_slice));
        Ok(())
    }
}

/// One row as the overlay knows it: `None` = absent.
type Row = Option<Vec<u8>>;

/// One change of an open part: the key, what it replaced (`None`: the row was not known
/// yet) and whether the key was dirty before.
type Undo = (Vec<u8>, Option<Row>, bool);

/// A [`KvSource`] over another one that keeps, in memory, every row read through it and every
/// change applied to it, for the life of one transaction: several MLS operations in a row
/// (the packets of one batch) read their predecessors' writes and the source's rows without
/// going back to the database, and the database is written once, with [`OverlayKv::take_changes`].
///
/// Changes can be grouped in parts ([`OverlayKv::begin_part`]): a part is kept or undone as a
/// whole, which is how one packet of a batch is rejected alone. A change that writes a row's
/// current value again is no change and is not written back.
///
/// The source must not change underneath while the overlay lives (it reads one transaction).
pub struct OverlayKv<'a> {
    source: &'a dyn KvSource,
    /// Every row read or written so far, with its current value.
    rows: RefCell<HashMap<Vec<u8>, Row>>,
    /// Keys whose current value differs from what the source holds (to be written back).
    dirty: RefCell<BTreeSet<Vec<u8>>>,
    /// While a part is open: what each change of the part replaced (`None`: the row was not
    /// known yet), and whether the key was dirty, in order.
    journal: RefCell<Option<Vec<Undo>>>,
}

impl<'a> OverlayKv<'a> {
    /// An empty overlay over `source`.
    pub fn new(source: &'a dyn KvSource) -> Self {
        OverlayKv {
            source,
            rows: RefCell::new(HashMap::new()),
            dirty: RefCell::new(BTreeSet::new()),
            journal: RefCell::new(None),
        }
    }

    /// Applies changes (`None` deletes the row), e.g. those of
    /// [`MlsStorage::take_changes`](super::storage::MlsStorage::take_changes).
    pub fn apply(&self, changes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), String> {
        for (key, value) in changes {
            // Know the current value first, so that an unchanged write is recognised.
            self.load(&key)?;
            let mut rows = self.rows.borrow_mut();
            if rows.get(&key).is_some_and(|current| *current == value) {
                continue;
            }
            let mut dirty = self.dirty.borrow_mut();
            let was_dirty = dirty.contains(&key);
            let previous = rows.insert(key.clone(), value);
            if let Some(journal) = self.journal.borrow_mut().as_mut() {
                journal.push((key.clone(), previous, was_dirty));
            }
            dirty.insert(key);
        }
        Ok(())
    }

    /// Reads `key` from the source unless the overlay knows it already.
    fn load(&self, key: &[u8]) -> Result<(), String> {
        if !self.rows.borrow().contains_key(key) {
            let row = self.source.get(key)?;
            self.rows.borrow_mut().insert(key.to_vec(), row);
        }
        Ok(())
    }

    /// Starts a part: the changes applied from now on can be undone together. An open part
    /// is kept.
    pub fn begin_part(&self) {
        *self.journal.borrow_mut() = Some(Vec::new());
    }

    /// Keeps the changes of the open part.
    pub fn keep_part(&self) {
        *self.journal.borrow_mut() = None;
    }

    /// Undoes the changes of the open part.
    pub fn undo_part(&self) {
        let Some(journal) = self.journal.borrow_mut().take() else {
            return;
        };
        let mut rows = self.rows.borrow_mut();
        let mut dirty = self.dirty.borrow_mut();
        for (key, previous, was_dirty) in journal.into_iter().rev() {
            if !was_dirty {
                dirty.remove(&key);
            }
            match previous {
                Some(row) => {
                    rows.insert(key, row);
                }
                None => {
                    rows.remove(&key);
                }
            }
        }
    }

    /// The rows changed since the last call, ordered by key (`None`: delete). They stay
    /// readable through the overlay.
    pub fn take_changes(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let rows = self.rows.borrow();
        std::mem::take(&mut *self.dirty.borrow_mut())
            .into_iter()
            .map(|key| {
                let value = rows.get(&key).cloned().flatten();
                (key, value)
            })
            .collect()
    }
}

impl KvSource for OverlayKv<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let mut value = None;
        self.read(key, &mut |row| value = row.map(<[u8]>::to_vec))?;
        Ok(value)
    }

    fn read(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), String> {
        self.load(key)?;
        // `f` only decodes; it never reaches back into this overlay.
        let rows = self.rows.borrow();
        f(rows.get(key).and_then(|row| row.as_deref()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(rows: &[(&[u8], &[u8])]) -> MemoryKv {
        let mut kv = MemoryKv::new();
        kv.apply(
            rows.iter()
                .map(|(k, v)| (k.to_vec(), Some(v.to_vec())))
                .collect(),
        );
        kv
    }

    fn change(k: &[u8], v: Option<&[u8]>) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.to_vec(), v.map(<[u8]>::to_vec))
    }

    #[test]
    fn reads_see_applied_changes_and_only_real_changes_are_taken() {
        let source = kv(&[(b"a", b"1"), (b"b", b"2")]);
        let o = OverlayKv::new(&source);
        assert_eq!(o.get(b"a").unwrap(), Some(b"1".to_vec()));
        o.apply(vec![
            change(b"a", Some(b"1")), // the same value: no change
            change(b"b", None),
            change(b"c", Some(b"3")),
            change(b"missing", None), // deleting an absent row: no change
        ])
        .unwrap();
        assert_eq!(o.get(b"b").unwrap(), None);
        assert_eq!(o.get(b"c").unwrap(), Some(b"3".to_vec()));
        assert_eq!(
            o.take_changes(),
            vec![change(b"b", None), change(b"c", Some(b"3"))]
        );
        assert!(o.take_changes().is_empty());
        // Still readable after taking.
        assert_eq!(o.get(b"c").unwrap(), Some(b"3".to_vec()));
        // Writing a row back to the source's value after a change is a change again.
        o.apply(vec![change(b"b", Some(b"2"))]).unwrap();
        assert_eq!(o.take_changes(), vec![change(b"b", Some(b"2"))]);
    }

    #[test]
    fn an_undone_part_leaves_the_earlier_state() {
        let source = kv(&[(b"a", b"1")]);
        let o = OverlayKv::new(&source);
        o.begin_part();
        o.apply(vec![change(b"a", Some(b"2"))]).unwrap();
        o.keep_part();
        o.begin_part();
        o.apply(vec![change(b"a", Some(b"3")), change(b"b", Some(b"x"))])
            .unwrap();
        o.apply(vec![change(b"a", None)]).unwrap();
        assert_eq!(o.get(b"a").unwrap(), None);
        o.undo_part();
        assert_eq!(o.get(b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(o.get(b"b").unwrap(), None);
        assert_eq!(o.take_changes(), vec![change(b"a", Some(b"2"))]);
        // A part that only touched clean rows leaves nothing to write.
        o.begin_part();
        o.apply(vec![change(b"z", Some(b"9"))]).unwrap();
        o.undo_part();
        assert!(o.take_changes().is_empty());
        // Undo without a part is a no-op.
        o.undo_part();
    }

    #[test]
    fn source_errors_surface() {
        struct Failing;
        impl KvSource for Failing {
            fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, String> {
                Err("gone".into())
            }
        }
        let o = OverlayKv::new(&Failing);
        assert!(o.get(b"a").is_err());
        assert!(o.apply(vec![change(b"a", None)]).is_err());
    }
}
