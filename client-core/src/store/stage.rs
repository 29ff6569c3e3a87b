//! The plaintext staging of a commit: a [`Batch`](super::Batch)'s ops
//! resolved against the current state plus the batch's own earlier writes,
//! then sealed into one raw batch for the backend.

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::StoreError;
use super::backend::{RawBatch, RawOp, ScanOrder, Table};
use super::batch::{CommitOutcome, Op, StatusChange};
use super::profile::{
    IDENTITY, NEXT_SEQ, PREKEYS, PROCESSED_ENVELOPES_KEPT, PROCESSED_SEQ, ProfileStore, SETTINGS,
};
use super::records::{self, DeliveryStatus, Direction, HistoryEntry, MessageId};
use super::sealed::StoreKeys;

/// Pending plaintext writes of a batch, by (table, key); `None` is a delete.
pub(super) type Writes = BTreeMap<(Table, Vec<u8>), Option<Zeroizing<Vec<u8>>>>;

/// Plaintext view of the store plus the batch's pending writes.
pub(super) struct Stage<'s> {
    store: &'s ProfileStore,
    writes: Writes,
}

impl<'s> Stage<'s> {
    pub(super) fn new(store: &'s ProfileStore) -> Self {
        Stage {
            store,
            writes: BTreeMap::new(),
        }
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        match self.writes.get(&(table, key.to_vec())) {
            Some(Some(v)) => Ok(Some(v.clone())),
            Some(None) => Ok(None),
            None => self.store.read(table, key),
        }
    }

    fn put(&mut self, table: Table, key: Vec<u8>, value: Zeroizing<Vec<u8>>) {
        self.writes.insert((table, key), Some(value));
    }

    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.writes.insert((table, key), None);
    }

    fn get_u64(&self, key: &[u8], what: &'static str) -> Result<u64, StoreError> {
        match self.get(Table::Meta, key)? {
            Some(v) => records::decode_u64(what, &v),
            None => Ok(0),
        }
    }

    pub(super) fn find_message(
        &mut self,
        peer: &str,
        id: MessageId,
    ) -> Result<Option<(Vec<u8>, HistoryEntry)>, StoreError> {
        let index_key = self.store.keys.message_key(peer, &id.0);
        let Some(history_key) = self.get(Table::MessageIndex, &index_key)? else {
            return Ok(None);
        };
        let history_key = history_key.to_vec();
        let plain = self.get(Table::History, &history_key)?.ok_or_else(|| {
            StoreError::corrupt("message index points at a missing history entry")
        })?;
        let entry: HistoryEntry = records::from_json("history entry", &plain)?;
        if entry.message_id != id || !history_key.starts_with(&self.store.keys.peer_key(peer)) {
            return Err(StoreError::corrupt(
                "message index points at another message",
            ));
        }
        Ok(Some((history_key, entry)))
    }

    pub(super) fn apply(&mut self, op: Op, outcome: &mut CommitOutcome) -> Result<(), StoreError> {
        let keys = &self.store.keys;
        match op {
            Op::Settings(s) => {
                let v = records::to_json("settings", &s)?;
                self.put(Table::Meta, SETTINGS.to_vec(), v);
            }
            Op::Identity(blob) => self.put(Table::Secrets, IDENTITY.to_vec(), blob),
            Op::Prekeys(blob) => self.put(Table::Secrets, PREKEYS.to_vec(), blob),
            Op::Session { peer, blob } => {
                let v = records::encode_session(&peer, &blob)?;
                self.put(Table::Sessions, keys.peer_key(&peer).to_vec(), v);
            }
            Op::DeleteSession { peer } => {
                self.delete(Table::Sessions, keys.peer_key(&peer).to_vec())
            }
            Op::Contact(c) => {
                let key = keys.peer_key(&c.user_id).to_vec();
                let v = records::to_json("contact", &c)?;
                self.put(Table::Contacts, key, v);
            }
            Op::DeleteContact { peer } => {
                self.delete(Table::Contacts, keys.peer_key(&peer).to_vec())
            }
            Op::Append { peer, entry } => {
                let index_key = keys.message_key(&peer, &entry.message_id.0).to_vec();
                if self.get(Table::MessageIndex, &index_key)?.is_some() {
                    return Err(StoreError::DuplicateMessage {
                        message_id: entry.message_id.to_hex(),
                    });
                }
                let seq = self.get_u64(NEXT_SEQ, "history sequence")?;
                let mut history_key = keys.peer_key(&peer).to_vec();
                history_key.extend_from_slice(&seq.to_be_bytes());
                let v = records::to_json("history entry", &entry)?;
                self.put(Table::History, history_key.clone(), v);
                self.put(Table::MessageIndex, index_key, Zeroizing::new(history_key));
                let next = seq
                    .checked_add(1)
                    .ok_or_else(|| StoreError::corrupt("history sequence overflow"))?;
                self.put(
                    Table::Meta,
                    NEXT_SEQ.to_vec(),
                    Zeroizing::new(next.to_be_bytes().to_vec()),
                );
            }
            Op::Status {
                peer,
                message_id,
                status,
            } => {
                let change = match self.find_message(&peer, message_id)? {
                    Some((key, mut entry)) if entry.direction == Direction::Outgoing => {
                        let current = entry.status.unwrap_or(DeliveryStatus::Sent);
                        if status > current {
                            entry.status = Some(status);
                            let v = records::to_json("history entry", &entry)?;
                            self.put(Table::History, key, v);
                            StatusChange::Advanced {
                                message_id,
                                from: current,
                                to: status,
                            }
                        } else {
                            StatusChange::Unchanged {
                                message_id,
                                current,
                            }
                        }
                    }
                    _ => StatusChange::UnknownMessage { message_id },
                };
                outcome.status_changes.push(change);
            }
            Op::ForgetPeer { peer } => {
                let prefix = keys.peer_key(&peer).to_vec();
                self.delete(Table::Contacts, prefix.clone());
                self.delete(Table::Sessions, prefix.clone());
                let rows = self.store.backend.scan_prefix(
                    Table::History,
                    &prefix,
                    ScanOrder::Ascending,
                    None,
                )?;
                for (key, sealed) in rows {
                    let plain = keys.open(Table::History, &key, &sealed)?;
                    let entry: HistoryEntry = records::from_json("history entry", &plain)?;
                    let index_key = keys.message_key(&peer, &entry.message_id.0).to_vec();
                    self.delete(Table::MessageIndex, index_key);
                    self.delete(Table::History, key);
                }
            }
            Op::ForgetProcessed => {
                let rows = self.store.backend.scan_prefix(
                    Table::Processed,
                    &[],
                    ScanOrder::Ascending,
                    None,
                )?;
                for (key, _) in rows {
                    self.delete(Table::Processed, key);
                }
            }
            Op::Processed(id) => {
                let id_key = self.store.processed_id_key(id);
                if self.get(Table::Processed, &id_key)?.is_some() {
                    return Ok(());
                }
                let seq = self.get_u64(PROCESSED_SEQ, "processed sequence")?;
                self.put(
                    Table::Processed,
                    id_key,
                    Zeroizing::new(seq.to_be_bytes().to_vec()),
                );
                self.put(
                    Table::Processed,
                    self.store.processed_order_key(seq),
                    Zeroizing::new(id.to_be_bytes().to_vec()),
                );
                if let Some(evict) = seq.checked_sub(PROCESSED_ENVELOPES_KEPT) {
                    let order_key = self.store.processed_order_key(evict);
                    if let Some(old) = self.get(Table::Processed, &order_key)? {
                        let old_id = records::decode_u64("processed envelope id", &old)?;
                        self.delete(Table::Processed, self.store.processed_id_key(old_id));
                    }
                    self.delete(Table::Processed, order_key);
                }
                let next = seq
                    .checked_add(1)
                    .ok_or_else(|| StoreError::corrupt("processed sequence overflow"))?;
                self.put(
                    Table::Meta,
                    PROCESSED_SEQ.to_vec(),
                    Zeroizing::new(next.to_be_bytes().to_vec()),
                );
            }
        }
        Ok(())
    }

    /// The batch's pending writes, resolved.
    pub(super) fn finish(self) -> Writes {
        self.writes
    }
}

/// Seals resolved writes into the raw batch the backend applies (a fresh
/// nonce from `rng` per value).
pub(super) fn seal(
    keys: &StoreKeys,
    rng: &mut (dyn CryptoRng + Send),
    writes: Writes,
) -> Result<RawBatch, StoreError> {
    let mut ops = Vec::with_capacity(writes.len());
    for ((table, key), value) in writes {
        match value {
            Some(plain) => {
                let sealed = keys.seal(rng, table, &key, &plain)?;
                ops.push(RawOp::Put {
                    table,
                    key,
                    value: sealed,
                });
            }
            None => ops.push(RawOp::Delete { table, key }),
        }
    }
    Ok(RawBatch { ops })
}
