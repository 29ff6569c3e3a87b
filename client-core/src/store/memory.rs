//! In-memory backend for tests: a `BTreeMap` per table behind a shared lock.
//!
//! Clones share the same tables, so a test can drop a
//! [`super::ProfileStore`] and open the "same profile" again from a clone,
//! the way a process restart reopens the same directory.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use super::StoreError;
use super::backend::{Backend, Pairs, RawBatch, RawOp, ScanOrder, Table, prefix_end};

type Tables = BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Tables kept in memory; nothing survives the last clone.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    // std Mutex: held only for the duration of one map operation, never
    // across an await (the store is synchronous).
    tables: Arc<Mutex<Tables>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::Database("memory backend lock poisoned".into()))
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend").finish_non_exhaustive()
    }
}

impl Backend for MemoryBackend {
    fn location(&self) -> std::path::PathBuf {
        std::path::PathBuf::from("<memory>")
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock()?.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        order: ScanOrder,
        limit: Option<usize>,
    ) -> Result<Pairs, StoreError> {
        let guard = self.lock()?;
        let Some(t) = guard.get(&table) else {
            return Ok(Vec::new());
        };
        let upper = match prefix_end(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        let range = t.range::<Vec<u8>, _>((Bound::Included(prefix.to_vec()), upper));
        let limit = limit.unwrap_or(usize::MAX);
        let out = match order {
            ScanOrder::Ascending => range
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ScanOrder::Descending => range
                .rev()
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        Ok(out)
    }

    fn apply(&mut self, batch: RawBatch) -> Result<(), StoreError> {
        // No op below can fail, and the lock is held throughout, so readers
        // see the state before or after the whole batch.
        let mut guard = self.lock()?;
        let next = &mut *guard;
        for op in batch.ops {
            match op {
                RawOp::Put { table, key, value } => {
                    next.entry(table).or_default().insert(key, value);
                }
                RawOp::Delete { table, key } => {
                    if let Some(t) = next.get_mut(&table) {
                        t.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }
}
