//! The key-value rows behind OpenMLS storage: the read-only [`KvSource`] the store layer
//! implements over its database transaction, and [`MemoryKv`], an in-memory implementation
//! for tests and simulators.

use std::collections::BTreeMap;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_rows_apply_changes_in_order_and_read_borrowed() {
        let mut kv = MemoryKv::new();
        kv.apply(vec![
            (b"a".to_vec(), Some(b"1".to_vec())),
            (b"b".to_vec(), Some(b"2".to_vec())),
            (b"a".to_vec(), None),
            (b"missing".to_vec(), None),
        ]);
        assert_eq!(kv.len(), 1);
        assert_eq!(kv.get(b"a").unwrap(), None);
        let mut read = None;
        kv.read(b"b", &mut |row| read = row.map(<[u8]>::to_vec))
            .unwrap();
        assert_eq!(read, Some(b"2".to_vec()));
    }
}
