//! The typed layer: [`ProfileStore`] and its all-or-nothing [`Batch`].
//!
//! Every write goes through [`ProfileStore::commit`]: the batch's typed ops
//! are resolved against the current state (plus the batch's own earlier ops),
//! every resulting value is sealed, and the backend applies the lot in one
//! transaction. A batch that fails anywhere (a duplicate message id, a
//! corrupt record, an I/O error) writes nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use super::StoreError;
use super::backend::{Backend, RawBatch, RawOp, ScanOrder, Table};
use super::disk::DiskBackend;
use super::header::{Header, KdfParams};
use super::records::{
    self, Contact, DeliveryStatus, Direction, HistoryEntry, MessageId, ProfileSettings, SecretBlob,
};
use super::rekey;
use super::sealed::{DataKey, StoreKeys};

/// How many processed relay envelope ids are remembered (the most recent
/// ones, by the order they were marked); older ones are forgotten.
pub const PROCESSED_ENVELOPES_KEPT: u64 = 10_000;

pub(super) const HEADER: &[u8] = b"header";
pub(super) const SETTINGS: &[u8] = b"settings";
const NEXT_SEQ: &[u8] = b"next_seq";
const PROCESSED_SEQ: &[u8] = b"processed_seq";
const IDENTITY: &[u8] = b"identity";
const PREKEYS: &[u8] = b"prekeys";
// Domain bytes inside the Processed table's HMAC keys.
pub(super) const DEDUP_BY_ID: u8 = 1;
pub(super) const DEDUP_BY_ORDER: u8 = 2;

#[derive(Debug)]
enum Op {
    Settings(ProfileSettings),
    Identity(SecretBlob),
    Prekeys(SecretBlob),
    Session {
        peer: String,
        blob: SecretBlob,
    },
    DeleteSession {
        peer: String,
    },
    Contact(Contact),
    DeleteContact {
        peer: String,
    },
    Append {
        peer: String,
        entry: HistoryEntry,
    },
    Status {
        peer: String,
        message_id: MessageId,
        status: DeliveryStatus,
    },
    Processed(u64),
    ForgetProcessed,
    ForgetPeer {
        peer: String,
    },
}

/// Writes to commit together with [`ProfileStore::commit`]: all of them or
/// none. Ops apply in the order they were added.
///
/// Receiving a message is one batch: the advanced session, the history
/// entry, the processed envelope id (and any contact update). Sending is one
/// batch: the advanced session and the outgoing entry.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Whether no op was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Replaces the profile settings.
    pub fn set_settings(&mut self, settings: ProfileSettings) -> &mut Self {
        self.ops.push(Op::Settings(settings));
        self
    }

    /// Stores the identity secret blob (replacing any previous one).
    pub fn put_identity(&mut self, blob: SecretBlob) -> &mut Self {
        self.ops.push(Op::Identity(blob));
        self
    }

    /// Stores the prekey-state secret blob (replacing any previous one).
    pub fn put_prekeys(&mut self, blob: SecretBlob) -> &mut Self {
        self.ops.push(Op::Prekeys(blob));
        self
    }

    /// Stores the sessions blob for `peer`.
    pub fn put_session(&mut self, peer: &str, blob: SecretBlob) -> &mut Self {
        self.ops.push(Op::Session {
            peer: peer.to_owned(),
            blob,
        });
        self
    }

    /// Deletes the sessions blob for `peer`.
    pub fn delete_session(&mut self, peer: &str) -> &mut Self {
        self.ops.push(Op::DeleteSession {
            peer: peer.to_owned(),
        });
        self
    }

    /// Inserts or replaces the contact `contact.user_id`.
    pub fn put_contact(&mut self, contact: Contact) -> &mut Self {
        self.ops.push(Op::Contact(contact));
        self
    }

    /// Deletes the contact `peer` (its history and session stay).
    pub fn delete_contact(&mut self, peer: &str) -> &mut Self {
        self.ops.push(Op::DeleteContact {
            peer: peer.to_owned(),
        });
        self
    }

    /// Appends `entry` to the history with `peer`. The commit fails with
    /// [`StoreError::DuplicateMessage`] if that peer's history already holds
    /// the message id.
    pub fn append_message(&mut self, peer: &str, entry: HistoryEntry) -> &mut Self {
        self.ops.push(Op::Append {
            peer: peer.to_owned(),
            entry,
        });
        self
    }

    /// Moves the status of our message `message_id` to `peer` forward to
    /// `status` (never backward). The result is reported in
    /// [`CommitOutcome::status_changes`]; an unknown id is not an error.
    pub fn update_status(
        &mut self,
        peer: &str,
        message_id: MessageId,
        status: DeliveryStatus,
    ) -> &mut Self {
        self.ops.push(Op::Status {
            peer: peer.to_owned(),
            message_id,
            status,
        });
        self
    }

    /// Deletes everything kept about `peer`: contact, sessions and the
    /// whole history with them (an evicted message request).
    pub fn forget_peer(&mut self, peer: &str) -> &mut Self {
        self.ops.push(Op::ForgetPeer {
            peer: peer.to_owned(),
        });
        self
    }

    /// Records relay envelope `envelope_id` as processed.
    pub fn mark_processed(&mut self, envelope_id: u64) -> &mut Self {
        self.ops.push(Op::Processed(envelope_id));
        self
    }

    /// Forgets every processed envelope id. For a mailbox the relay created
    /// anew (it registered our user id again after a reset or a restart of
    /// a memory relay): its ids start from 1 again and must not be mistaken
    /// for envelopes processed before.
    pub fn forget_processed(&mut self) -> &mut Self {
        self.ops.push(Op::ForgetProcessed);
        self
    }
}

/// What a status update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// The status moved forward.
    Advanced {
        /// The message concerned.
        message_id: MessageId,
        /// Status before.
        from: DeliveryStatus,
        /// Status after.
        to: DeliveryStatus,
    },
    /// The message already had this status or a later one; nothing changed.
    Unchanged {
        /// The message concerned.
        message_id: MessageId,
        /// Its (kept) status.
        current: DeliveryStatus,
    },
    /// No outgoing message with this id exists in that peer's history (or it
    /// is an incoming one); nothing changed.
    UnknownMessage {
        /// The id the update named.
        message_id: MessageId,
    },
}

/// The result of a successful commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// One entry per `update_status` op, in batch order.
    pub status_changes: Vec<StatusChange>,
}

/// An open, unlocked profile. All reads and writes of client state go
/// through it. Blocking (file I/O, and Argon2id on create/open): call it from
/// `spawn_blocking` or a dedicated thread in async code.
pub struct ProfileStore {
    backend: Box<dyn Backend>,
    keys: StoreKeys,
}

impl fmt::Debug for ProfileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileStore")
            .field("backend", &self.backend)
            .field("keys", &"<redacted>")
            .finish()
    }
}

impl ProfileStore {
    /// Creates a profile in directory `dir` (created if missing, mode 0700)
    /// sealed under `passphrase`.
    pub fn create_in(
        dir: &Path,
        passphrase: &[u8],
        params: KdfParams,
        settings: &ProfileSettings,
    ) -> Result<ProfileStore, StoreError> {
        let backend = DiskBackend::create(dir)?;
        Self::create(Box::new(backend), passphrase, params, settings)
    }

    /// Opens the profile in directory `dir`.
    pub fn open_in(dir: &Path, passphrase: &[u8]) -> Result<ProfileStore, StoreError> {
        let backend = DiskBackend::open(dir)?;
        Self::open(Box::new(backend), passphrase)
    }

    /// Creates a profile on `backend`: a random data key wrapped under
    /// `passphrase`, the header and `settings`, written in one commit.
    pub fn create(
        mut backend: Box<dyn Backend>,
        passphrase: &[u8],
        params: KdfParams,
        settings: &ProfileSettings,
    ) -> Result<ProfileStore, StoreError> {
        if backend.get(Table::Meta, HEADER)?.is_some() {
            return Err(StoreError::ProfileExists {
                path: backend.location(),
            });
        }
        let data_key = DataKey::random();
        let header = Header::seal(&data_key, passphrase, params)?;
        let keys = StoreKeys::derive(data_key)?;
        let settings_plain = records::to_json("settings", settings)?;
        let batch = RawBatch {
            ops: vec![
                RawOp::Put {
                    table: Table::Meta,
                    key: HEADER.to_vec(),
                    value: header.encode(),
                },
                RawOp::Put {
                    table: Table::Meta,
                    key: SETTINGS.to_vec(),
                    value: keys.seal(Table::Meta, SETTINGS, &settings_plain)?,
                },
            ],
        };
        backend.apply(batch)?;
        Ok(ProfileStore { backend, keys })
    }

    /// Opens the profile on `backend` with `passphrase`.
    ///
    /// Errors: [`StoreError::WrongPassphrase`], [`StoreError::Corrupt`] (header
    /// or settings damaged), [`StoreError::UnsupportedVersion`] (written by a
    /// newer Hush), [`StoreError::ProfileMissing`] (no header).
    pub fn open(backend: Box<dyn Backend>, passphrase: &[u8]) -> Result<ProfileStore, StoreError> {
        let Some(raw) = backend.get(Table::Meta, HEADER)? else {
            return Err(StoreError::ProfileMissing {
                path: backend.location(),
            });
        };
        let header = Header::decode(&raw)?;
        let data_key = header.unlock(passphrase)?;
        let store = ProfileStore {
            backend,
            keys: StoreKeys::derive(data_key)?,
        };
        // Format version 1 is the only one so far: no migration step exists.
        // A future version N+1 adds `migrate_from_N` here, run inside one
        // commit together with the header rewrite (see docs/store.md).
        store.settings()?;
        Ok(store)
    }

    /// Changes the passphrase and the data key behind it. `old` must be the
    /// current passphrase.
    ///
    /// A fresh random data key replaces the current one: every record of
    /// every table is opened with the current keys and sealed again under
    /// the new ones (table keys that are HMACs are recomputed with the new
    /// index keys), and the new header wraps the new data key under `new`
    /// (fresh salt and nonce, `params`). Rows, index rows and header are
    /// replaced in **one** backend commit: a crash at any point leaves
    /// either the old profile under `old` or the new one under `new`.
    /// Afterwards this store uses the new keys; the old ones are zeroized.
    /// An old copy of the header (or of the file) and `old` open none of
    /// the records written by or after the change.
    ///
    /// Then the backend is compacted ([`Backend::compact`]) so that the
    /// file's pages freed by the rewrite are reclaimed; what may remain on
    /// disk is described in `docs/store.md`. If only that compaction fails,
    /// the change is in force and [`StoreError::NotCompacted`] is returned;
    /// [`ProfileStore::compact`] retries it.
    ///
    /// Errors before the commit leave the profile and this store as they
    /// were: [`StoreError::WrongPassphrase`], [`StoreError::InvalidKdfParams`],
    /// [`StoreError::Corrupt`] (a record that does not open),
    /// [`StoreError::HistoryWithoutPeer`], I/O errors.
    pub fn change_passphrase(
        &mut self,
        old: &[u8],
        new: &[u8],
        params: KdfParams,
    ) -> Result<(), StoreError> {
        let raw = self
            .backend
            .get(Table::Meta, HEADER)?
            .ok_or_else(|| StoreError::corrupt("header disappeared"))?;
        let current = Header::decode(&raw)?;
        let check = current.unlock(old)?;
        if check.as_bytes() != self.keys.data_key().as_bytes() {
            return Err(StoreError::corrupt(
                "header does not match the open profile",
            ));
        }
        drop(check);
        let new_keys = StoreKeys::derive(DataKey::random())?;
        let header = Header::seal(new_keys.data_key(), new, params)?;
        let batch = rekey::rekey_batch(&*self.backend, &self.keys, &new_keys, header.encode())?;
        self.backend.apply(batch)?;
        // The commit is durable: from here on only the new keys open the
        // profile. Replacing `keys` drops the old ones, which zeroizes them.
        self.keys = new_keys;
        self.compact()
    }

    /// Compacts the backend: reclaims the file's free pages (see
    /// [`Backend::compact`]). [`ProfileStore::change_passphrase`] does this
    /// itself; call it again after a [`StoreError::NotCompacted`].
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.backend
            .compact()
            .map_err(|e| StoreError::NotCompacted {
                reason: e.to_string(),
            })
    }

    /// The Argon2id parameters the header currently uses.
    pub fn kdf_params(&self) -> Result<KdfParams, StoreError> {
        let raw = self
            .backend
            .get(Table::Meta, HEADER)?
            .ok_or_else(|| StoreError::corrupt("header disappeared"))?;
        Ok(Header::decode(&raw)?.params)
    }

    fn read(&self, table: Table, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        match self.backend.get(table, key)? {
            Some(sealed) => Ok(Some(self.keys.open(table, key, &sealed)?)),
            None => Ok(None),
        }
    }

    /// Profile settings.
    pub fn settings(&self) -> Result<ProfileSettings, StoreError> {
        let plain = self
            .read(Table::Meta, SETTINGS)?
            .ok_or_else(|| StoreError::corrupt("settings missing"))?;
        records::from_json("settings", &plain)
    }

    /// The identity secret blob, if one was stored.
    pub fn identity(&self) -> Result<Option<SecretBlob>, StoreError> {
        self.read(Table::Secrets, IDENTITY)
    }

    /// The prekey-state secret blob, if one was stored.
    pub fn prekeys(&self) -> Result<Option<SecretBlob>, StoreError> {
        self.read(Table::Secrets, PREKEYS)
    }

    /// The sessions blob for `peer`, if any.
    pub fn session(&self, peer: &str) -> Result<Option<SecretBlob>, StoreError> {
        let key = self.keys.peer_key(peer);
        let Some(plain) = self.read(Table::Sessions, &key)? else {
            return Ok(None);
        };
        let (user, blob) = records::decode_session(&plain)?;
        if user != peer {
            return Err(StoreError::corrupt("session record names another peer"));
        }
        Ok(Some(blob))
    }

    /// The contact `peer`, if pinned.
    pub fn contact(&self, peer: &str) -> Result<Option<Contact>, StoreError> {
        let key = self.keys.peer_key(peer);
        let Some(plain) = self.read(Table::Contacts, &key)? else {
            return Ok(None);
        };
        let contact: Contact = records::from_json("contact", &plain)?;
        if contact.user_id != peer {
            return Err(StoreError::corrupt("contact record names another peer"));
        }
        Ok(Some(contact))
    }

    /// Every contact, sorted by user id.
    pub fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let pairs = self
            .backend
            .scan_prefix(Table::Contacts, &[], ScanOrder::Ascending, None)?;
        let mut out = Vec::with_capacity(pairs.len());
        for (key, sealed) in pairs {
            let plain = self.keys.open(Table::Contacts, &key, &sealed)?;
            let contact: Contact = records::from_json("contact", &plain)?;
            if self.keys.peer_key(&contact.user_id).as_slice() != key.as_slice() {
                return Err(StoreError::corrupt(
                    "contact stored under another peer's key",
                ));
            }
            out.push(contact);
        }
        out.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(out)
    }

    /// The history with `peer`, oldest first, in the order entries were
    /// stored. With `limit = Some(n)`, only the newest `n` entries (still
    /// oldest first).
    pub fn history(
        &self,
        peer: &str,
        limit: Option<usize>,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let prefix = self.keys.peer_key(peer);
        let pairs =
            self.backend
                .scan_prefix(Table::History, &prefix, ScanOrder::Descending, limit)?;
        let mut out = Vec::with_capacity(pairs.len());
        for (key, sealed) in pairs.into_iter().rev() {
            let plain = self.keys.open(Table::History, &key, &sealed)?;
            out.push(records::from_json("history entry", &plain)?);
        }
        Ok(out)
    }

    /// One history entry by message id.
    pub fn message(
        &self,
        peer: &str,
        message_id: MessageId,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        let mut stage = Stage::new(self);
        Ok(stage.find_message(peer, message_id)?.map(|(_, e)| e))
    }

    /// Whether relay envelope `envelope_id` was marked processed (among the
    /// last [`PROCESSED_ENVELOPES_KEPT`] marked).
    pub fn is_processed(&self, envelope_id: u64) -> Result<bool, StoreError> {
        let key = self.processed_id_key(envelope_id);
        Ok(self.read(Table::Processed, &key)?.is_some())
    }

    /// How many envelope ids are currently remembered (at most
    /// [`PROCESSED_ENVELOPES_KEPT`]).
    pub fn processed_count(&self) -> Result<u64, StoreError> {
        let pairs = self
            .backend
            .scan_prefix(Table::Processed, &[], ScanOrder::Ascending, None)?;
        // Each remembered id has two rows (by id, by order).
        Ok(u64::try_from(pairs.len() / 2).unwrap_or(u64::MAX))
    }

    fn processed_id_key(&self, envelope_id: u64) -> Vec<u8> {
        self.keys.dedup_key(DEDUP_BY_ID, envelope_id).to_vec()
    }

    fn processed_order_key(&self, seq: u64) -> Vec<u8> {
        self.keys.dedup_key(DEDUP_BY_ORDER, seq).to_vec()
    }

    /// Applies `batch` all-or-nothing. See [`Batch`].
    pub fn commit(&mut self, batch: Batch) -> Result<CommitOutcome, StoreError> {
        let mut stage = Stage::new(self);
        let mut outcome = CommitOutcome::default();
        for op in batch.ops {
            stage.apply(op, &mut outcome)?;
        }
        let raw = stage.seal()?;
        if !raw.ops.is_empty() {
            self.backend.apply(raw)?;
        }
        Ok(outcome)
    }
}

/// Pending plaintext writes of a batch, by (table, key); `None` is a delete.
type Writes = BTreeMap<(Table, Vec<u8>), Option<Zeroizing<Vec<u8>>>>;

/// Plaintext view of the store plus the batch's pending writes.
struct Stage<'s> {
    store: &'s ProfileStore,
    writes: Writes,
}

impl<'s> Stage<'s> {
    fn new(store: &'s ProfileStore) -> Self {
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

    fn find_message(
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

    fn apply(&mut self, op: Op, outcome: &mut CommitOutcome) -> Result<(), StoreError> {
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

    fn seal(self) -> Result<RawBatch, StoreError> {
        let mut ops = Vec::with_capacity(self.writes.len());
        for ((table, key), value) in self.writes {
            match value {
                Some(plain) => {
                    let sealed = self.store.keys.seal(table, &key, &plain)?;
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
}
