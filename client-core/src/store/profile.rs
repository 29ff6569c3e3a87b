//! The typed layer: [`ProfileStore`], read directly and written through
//! an all-or-nothing [`Batch`] (`batch.rs`), staged in `stage.rs`.
//!
//! Every write goes through [`ProfileStore::commit`]: the batch's typed ops
//! are resolved against the current state (plus the batch's own earlier ops),
//! every resulting value is sealed, and the backend applies the lot in one
//! transaction. A batch that fails anywhere (a duplicate message id, a
//! corrupt record, an I/O error) writes nothing.

use std::fmt;
use std::path::Path;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::StoreError;
use super::backend::{Backend, RawBatch, RawOp, ScanOrder, Table};
use super::batch::{Batch, CommitOutcome};
use super::disk::DiskBackend;
use super::header::{Header, KdfParams};
use super::records::{self, Contact, HistoryEntry, MessageId, ProfileSettings, SecretBlob};
use super::rekey;
use super::sealed::{DataKey, StoreKeys};
use super::stage::{self, Stage};
use crate::random::SystemRandom;

/// How many processed relay envelope ids are remembered (the most recent
/// ones, by the order they were marked); older ones are forgotten.
pub const PROCESSED_ENVELOPES_KEPT: u64 = 10_000;

pub(super) const HEADER: &[u8] = b"header";
pub(super) const SETTINGS: &[u8] = b"settings";
pub(super) const NEXT_SEQ: &[u8] = b"next_seq";
pub(super) const PROCESSED_SEQ: &[u8] = b"processed_seq";
pub(super) const IDENTITY: &[u8] = b"identity";
pub(super) const PREKEYS: &[u8] = b"prekeys";
// Domain bytes inside the Processed table's HMAC keys.
pub(super) const DEDUP_BY_ID: u8 = 1;
pub(super) const DEDUP_BY_ORDER: u8 = 2;

/// An open, unlocked profile. All reads and writes of client state go
/// through it. Blocking (file I/O, and Argon2id on create/open): call it from
/// `spawn_blocking` or a dedicated thread in async code.
pub struct ProfileStore {
    pub(super) backend: Box<dyn Backend>,
    pub(super) keys: StoreKeys,
    /// Nonces, data keys and salts: injected so tests can make a store's
    /// bytes reproducible; [`SystemRandom`] by default.
    rng: StoreRng,
}

/// The randomness a [`ProfileStore`] seals with.
pub type StoreRng = Box<dyn CryptoRng + Send>;

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
        backend: Box<dyn Backend>,
        passphrase: &[u8],
        params: KdfParams,
        settings: &ProfileSettings,
    ) -> Result<ProfileStore, StoreError> {
        Self::create_with_rng(
            backend,
            passphrase,
            params,
            settings,
            Box::new(SystemRandom),
        )
    }

    /// [`ProfileStore::create`] with the randomness given (the store keeps
    /// it for every later write).
    pub fn create_with_rng(
        mut backend: Box<dyn Backend>,
        passphrase: &[u8],
        params: KdfParams,
        settings: &ProfileSettings,
        mut rng: StoreRng,
    ) -> Result<ProfileStore, StoreError> {
        if backend.get(Table::Meta, HEADER)?.is_some() {
            return Err(StoreError::ProfileExists {
                path: backend.location(),
            });
        }
        let data_key = DataKey::random(&mut *rng);
        let header = Header::seal(&data_key, passphrase, params, &mut *rng)?;
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
                    value: keys.seal(&mut *rng, Table::Meta, SETTINGS, &settings_plain)?,
                },
            ],
        };
        backend.apply(batch)?;
        Ok(ProfileStore { backend, keys, rng })
    }

    /// Opens the profile on `backend` with `passphrase`.
    ///
    /// Errors: [`StoreError::WrongPassphrase`], [`StoreError::Corrupt`] (header
    /// or settings damaged), [`StoreError::UnsupportedVersion`] (written by a
    /// newer Hush), [`StoreError::ProfileMissing`] (no header).
    pub fn open(backend: Box<dyn Backend>, passphrase: &[u8]) -> Result<ProfileStore, StoreError> {
        Self::open_with_rng(backend, passphrase, Box::new(SystemRandom))
    }

    /// [`ProfileStore::open`] with the randomness later writes seal with.
    pub fn open_with_rng(
        backend: Box<dyn Backend>,
        passphrase: &[u8],
        rng: StoreRng,
    ) -> Result<ProfileStore, StoreError> {
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
            rng,
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
        let new_keys = StoreKeys::derive(DataKey::random(&mut *self.rng))?;
        let header = Header::seal(new_keys.data_key(), new, params, &mut *self.rng)?;
        let batch = rekey::rekey_batch(
            &*self.backend,
            &self.keys,
            &new_keys,
            header.encode(),
            &mut *self.rng,
        )?;
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

    pub(super) fn read(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
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

    pub(super) fn processed_id_key(&self, envelope_id: u64) -> Vec<u8> {
        self.keys.dedup_key(DEDUP_BY_ID, envelope_id).to_vec()
    }

    pub(super) fn processed_order_key(&self, seq: u64) -> Vec<u8> {
        self.keys.dedup_key(DEDUP_BY_ORDER, seq).to_vec()
    }

    /// Applies `batch` all-or-nothing. See [`Batch`].
    pub fn commit(&mut self, batch: Batch) -> Result<CommitOutcome, StoreError> {
        let mut stage = Stage::new(self);
        let mut outcome = CommitOutcome::default();
        for op in batch.ops {
            stage.apply(op, &mut outcome)?;
        }
        let writes = stage.finish();
        let raw = stage::seal(&self.keys, &mut *self.rng, writes)?;
        if !raw.ops.is_empty() {
            self.backend.apply(raw)?;
        }
        Ok(outcome)
    }
}
