//! Moving every record of a profile under a fresh data key, for
//! [`ProfileStore::change_passphrase`](super::ProfileStore::change_passphrase).
//!
//! Values are opened with the old keys and sealed again with the new ones
//! (same table, same plaintext bytes, fresh nonces). Table keys that are
//! HMACs under the old index keys are recomputed under the new ones, which
//! needs the preimages:
//!
//! - sessions and contacts carry their peer's user id inside the value;
//! - a history key is `HMAC(peer) ‖ seq`: the peer is found among the user
//!   ids of the sessions, the contacts, the own user id and the presence
//!   allow list (a history whose peer is none of them is refused with
//!   [`StoreError::HistoryWithoutPeer`]);
//! - a message-index key is `HMAC(peer, message id)`: peer and message id
//!   come from the history entry the index row points at;
//! - a processed-envelope row pair is `HMAC(1, id) → order` and
//!   `HMAC(2, order) → id`: each pair names its own preimages.
//!
//! Every old row is checked against its recomputed old key before it is
//! moved, so a moved or forged row fails the change (`Corrupt`) instead of
//! being laundered under the new key.

use std::collections::HashMap;

use rand_core::CryptoRng;

use super::StoreError;
use super::backend::{Backend, RawBatch, RawOp, ScanOrder, Table};
use super::profile::{DEDUP_BY_ID, DEDUP_BY_ORDER, HEADER, SETTINGS};
use super::records::{self, Contact, HistoryEntry, MessageId, ProfileSettings};
use super::sealed::StoreKeys;

/// Length of a history key: `HMAC(peer)` (32) ‖ sequence number (8).
const HISTORY_KEY_LEN: usize = 32 + 8;

/// Every table, in the order they are moved: tables whose keys do not depend
/// on the data key first, then the ones whose values name peers (the
/// history needs every peer), then the history, then its index.
const ORDER: [Table; 7] = [
    Table::Meta,
    Table::Secrets,
    Table::Sessions,
    Table::Contacts,
    Table::History,
    Table::MessageIndex,
    Table::Processed,
];
// A table added to `Table::ALL` must be added here (and to the match below).
const _: () = assert!(ORDER.len() == Table::ALL.len());

/// Where a history row moves, and what its index row needs.
struct MovedEntry {
    peer: String,
    message_id: MessageId,
    new_key: Vec<u8>,
}

/// Builds the one batch that replaces every row of `backend` (sealed under
/// `old`) by the same record sealed under `new`, plus `header`. Deletes of
/// old keys come before the puts of new ones, so a new key equal to an old
/// one (the constant keys of `meta` and `secrets`) is simply overwritten.
pub(super) fn rekey_batch(
    backend: &dyn Backend,
    old: &StoreKeys,
    new: &StoreKeys,
    header: Vec<u8>,
    rng: &mut (dyn CryptoRng + Send),
) -> Result<RawBatch, StoreError> {
    let mut deletes = Vec::new();
    let mut puts = vec![RawOp::Put {
        table: Table::Meta,
        key: HEADER.to_vec(),
        value: header,
    }];
    let rows = |table| backend.scan_prefix(table, &[], ScanOrder::Ascending, None);
    let mut peers: HashMap<[u8; 32], String> = HashMap::new();
    let mut settings = None;
    let mut history: HashMap<Vec<u8>, MovedEntry> = HashMap::new();
    for table in ORDER {
        match table {
            Table::Meta | Table::Secrets => {
                for (key, sealed) in rows(table)? {
                    if table == Table::Meta && key == HEADER {
                        continue;
                    }
                    let plain = old.open(table, &key, &sealed)?;
                    if table == Table::Meta && key == SETTINGS {
                        settings = Some(records::from_json::<ProfileSettings>("settings", &plain)?);
                    }
                    let value = new.seal(rng, table, &key, &plain)?;
                    puts.push(RawOp::Put { table, key, value });
                }
            }
            Table::Sessions | Table::Contacts => {
                for (key, sealed) in rows(table)? {
                    let plain = old.open(table, &key, &sealed)?;
                    let peer = if table == Table::Sessions {
                        records::decode_session(&plain)?.0
                    } else {
                        records::from_json::<Contact>("contact", &plain)?.user_id
                    };
                    let old_key = old.peer_key(&peer);
                    if old_key.as_slice() != key.as_slice() {
                        return Err(StoreError::corrupt(format!(
                            "{} record stored under another peer's key",
                            table.name()
                        )));
                    }
                    let new_key = new.peer_key(&peer).to_vec();
                    let value = new.seal(rng, table, &new_key, &plain)?;
                    peers.insert(old_key, peer);
                    deletes.push(RawOp::Delete { table, key });
                    puts.push(RawOp::Put {
                        table,
                        key: new_key,
                        value,
                    });
                }
            }
            Table::History => {
                // Peers named only in the settings may still have a history.
                if let Some(s) = &settings {
                    for peer in std::iter::once(&s.user_id).chain(&s.presence_allow) {
                        peers
                            .entry(old.peer_key(peer))
                            .or_insert_with(|| peer.clone());
                    }
                }
                let mut orphans = 0usize;
                for (key, sealed) in rows(table)? {
                    let plain = old.open(table, &key, &sealed)?;
                    if key.len() != HISTORY_KEY_LEN {
                        return Err(StoreError::corrupt("history key length"));
                    }
                    let (prefix, seq) = key.split_at(32);
                    let Some(peer) = peers.get(prefix) else {
                        orphans += 1;
                        continue;
                    };
                    let entry: HistoryEntry = records::from_json("history entry", &plain)?;
                    let mut new_key = new.peer_key(peer).to_vec();
                    new_key.extend_from_slice(seq);
                    let value = new.seal(rng, table, &new_key, &plain)?;
                    puts.push(RawOp::Put {
                        table,
                        key: new_key.clone(),
                        value,
                    });
                    deletes.push(RawOp::Delete {
                        table,
                        key: key.clone(),
                    });
                    history.insert(
                        key,
                        MovedEntry {
                            peer: peer.clone(),
                            message_id: entry.message_id,
                            new_key,
                        },
                    );
                }
                if orphans > 0 {
                    return Err(StoreError::HistoryWithoutPeer { entries: orphans });
                }
            }
            Table::MessageIndex => {
                for (key, sealed) in rows(table)? {
                    let plain = old.open(table, &key, &sealed)?;
                    let moved = history.get(plain.as_slice()).ok_or_else(|| {
                        StoreError::corrupt("message index points at a missing history entry")
                    })?;
                    if old.message_key(&moved.peer, &moved.message_id.0).as_slice()
                        != key.as_slice()
                    {
                        return Err(StoreError::corrupt(
                            "message index row does not match its history entry",
                        ));
                    }
                    let new_key = new.message_key(&moved.peer, &moved.message_id.0).to_vec();
                    let value = new.seal(rng, table, &new_key, &moved.new_key)?;
                    deletes.push(RawOp::Delete { table, key });
                    puts.push(RawOp::Put {
                        table,
                        key: new_key,
                        value,
                    });
                }
            }
            Table::Processed => {
                let mut opened = HashMap::new();
                for (key, sealed) in rows(table)? {
                    let plain = old.open(table, &key, &sealed)?;
                    let n = records::decode_u64("processed envelope row", &plain)?;
                    opened.insert(key, n);
                }
                // A row `HMAC(1, id) → order` is paired with the row
                // `HMAC(2, order) → id`; rows that pair with nothing are damage.
                let mut pairs = Vec::new();
                for (key, &order) in &opened {
                    let order_key = old.dedup_key(DEDUP_BY_ORDER, order);
                    let Some(&id) = opened.get(order_key.as_slice()) else {
                        continue;
                    };
                    if old.dedup_key(DEDUP_BY_ID, id).as_slice() == key.as_slice() {
                        pairs.push((id, order));
                    }
                }
                if pairs.len() * 2 != opened.len() {
                    return Err(StoreError::corrupt(
                        "processed envelope rows do not pair up",
                    ));
                }
                for key in opened.into_keys() {
                    deletes.push(RawOp::Delete { table, key });
                }
                for (id, order) in pairs {
                    for (key, value) in [
                        (new.dedup_key(DEDUP_BY_ID, id), order),
                        (new.dedup_key(DEDUP_BY_ORDER, order), id),
                    ] {
                        let value = new.seal(rng, table, &key, &value.to_be_bytes())?;
                        puts.push(RawOp::Put {
                            table,
                            key: key.to_vec(),
                            value,
                        });
                    }
                }
            }
        }
    }
    deletes.append(&mut puts);
    Ok(RawBatch { ops: deletes })
}
