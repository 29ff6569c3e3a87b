//! The low-level storage trait: named tables of byte keys to byte values, and
//! one atomic write operation.
//!
//! Backends store bytes they are given; they know nothing of sealing. The
//! typed layer ([`super::ProfileStore`]) seals every value before it reaches a
//! backend, so a backend never sees plaintext (except the header, which holds
//! no secret in the clear).

use std::fmt;
use std::path::PathBuf;

use super::StoreError;

/// The tables of a profile. Names are part of the format (they are bound into
/// every sealed value's associated data) and never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Table {
    /// `header` (unsealed), `settings`, `next_seq`, `processed_seq`.
    Meta,
    /// `identity`, `prekeys`.
    Secrets,
    /// HMAC(peer) -> sealed (user id, session blob).
    Sessions,
    /// HMAC(peer) -> sealed contact.
    Contacts,
    /// HMAC(peer) || seq (u64 BE) -> sealed history entry.
    History,
    /// HMAC(peer, message id) -> sealed history key.
    MessageIndex,
    /// HMAC(1, envelope id) -> sealed order; HMAC(2, order) -> sealed
    /// envelope id (the last `PROCESSED_ENVELOPES_KEPT` processed).
    Processed,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 7] = [
        Table::Meta,
        Table::Secrets,
        Table::Sessions,
        Table::Contacts,
        Table::History,
        Table::MessageIndex,
        Table::Processed,
    ];

    /// The table's name on disk.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Secrets => "secrets",
            Table::Sessions => "sessions",
            Table::Contacts => "contacts",
            Table::History => "history",
            Table::MessageIndex => "message_index",
            Table::Processed => "processed",
        }
    }
}

/// One write in a [`RawBatch`].
#[derive(Clone, PartialEq, Eq)]
pub enum RawOp {
    /// Insert or replace.
    Put {
        /// Table written to.
        table: Table,
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes (already sealed by the typed layer).
        value: Vec<u8>,
    },
    /// Remove if present.
    Delete {
        /// Table written to.
        table: Table,
        /// Key bytes.
        key: Vec<u8>,
    },
}

impl fmt::Debug for RawOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawOp::Put { table, key, value } => f
                .debug_struct("Put")
                .field("table", table)
                .field("key_len", &key.len())
                .field("value_len", &value.len())
                .finish(),
            RawOp::Delete { table, key } => f
                .debug_struct("Delete")
                .field("table", table)
                .field("key_len", &key.len())
                .finish(),
        }
    }
}

/// Writes applied all-or-nothing by [`Backend::apply`], in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawBatch {
    /// The writes, applied in order (a later write to the same key wins).
    pub ops: Vec<RawOp>,
}

/// Scan direction for [`Backend::scan_prefix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanOrder {
    /// Ascending key order.
    Ascending,
    /// Descending key order.
    Descending,
}

/// Key/value pairs returned by a scan.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A storage backend. Implemented by [`super::MemoryBackend`] (tests) and
/// [`super::DiskBackend`] (redb file); the typed layer is written once against
/// this trait.
pub trait Backend: Send + fmt::Debug {
    /// Where the profile lives, for error messages (`ProfileExists`,
    /// `ProfileMissing`): the profile directory, or `<memory>`.
    fn location(&self) -> PathBuf;

    /// Reads one value.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads up to `limit` pairs whose key starts with `prefix`, in `order`.
    fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        order: ScanOrder,
        limit: Option<usize>,
    ) -> Result<Pairs, StoreError>;

    /// Applies every op of `batch` or none of them. On the disk backend the
    /// batch is durable (fsynced) when this returns `Ok`.
    fn apply(&mut self, batch: RawBatch) -> Result<(), StoreError>;

    /// Reclaims storage freed by earlier writes, so that it no longer holds
    /// values that were deleted or overwritten (as far as the backend can:
    /// see `docs/store.md`). Called after a passphrase change. The default
    /// does nothing (for backends without a file, such as the memory one).
    fn compact(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The exclusive upper bound of keys starting with `prefix`, or `None` if
/// every key greater than or equal to `prefix` starts with it.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
