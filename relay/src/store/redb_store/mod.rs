//! Embedded durable store on redb, one file `hush.redb` in the data
//! directory.
//!
//! Every commit is fsync'd and group-committed by one writer thread
//! ([`writer`]): acknowledgements are durable before `acked` is sent, as
//! sends are before `accepted` (docs/protocol.md). Reads run on the
//! blocking pool in their own read transactions and never wait for writes.
//!
//! | module | holds |
//! | --- | --- |
//! | `schema` | the tables (layout table there) and the reads every concern shares |
//! | `writer` | the writer thread, group commit, `write` / `write_mail` / `read` |
//! | `directory` | registration and authentication, published keys and one-time prekeys, user reset |
//! | `mailbox` | append, read, acknowledge, retention sweep, stats |
//! | `presence` | allow lists and last-seen times |
//!
//! The records are encoded by the codec both stores share
//! ([`crate::store::codec`]).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use hush_protocol::devices::SignedDeviceList;
use hush_protocol::frame::OneTimePrekey;
use hush_protocol::{PublicKeyBytes, UserId};
use redb::{Database, DatabaseError, ReadableTable as _};

use super::{
    AppendOutcome, AuthOutcome, DeviceListOutcome, FetchedBundle, MailboxLimits, NewEnvelope,
    PublishOutcome, PublishedKeys, Store, StoreError, StoreStats, StoredEnvelope, Visibility,
};

mod devices;
mod directory;
mod mailbox;
mod presence;
mod schema;
mod writer;

use schema::{KEYS, LAST_SEEN, MAILBOX, META, OPKS, PRESENCE_ALLOW, USERS, be};

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "hush.redb";

/// The redb backend.
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
    relay_id: String,
    jobs: Option<mpsc::Sender<writer::Job>>,
    writer: Option<JoinHandle<()>>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("relay_id", &self.relay_id)
            .finish_non_exhaustive()
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer after its current batch; wait
        // for it so the database file is closed when the store is gone.
        self.jobs.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl RedbStore {
    /// Opens (creating if needed) the store in `data_dir`. Fails with
    /// [`StoreError::Locked`] if another process has it open. A new
    /// database gets a relay id from the OS RNG.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, super::os_random_id)
    }

    /// [`Self::open`], with the 16 bytes of a new database's relay id from
    /// `random` instead of the OS RNG (tests).
    pub fn open_with_random(
        data_dir: &Path,
        mut random: impl FnMut() -> [u8; 16],
    ) -> Result<Self, StoreError> {
        Self::open_with(data_dir, move || Ok(random()))
    }

    fn open_with(
        data_dir: &Path,
        random: impl FnOnce() -> Result<[u8; 16], StoreError>,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(be("create data dir"))?;
        let path = data_dir.join(DB_FILE);
        let db = Database::create(&path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                path: path.display().to_string(),
            },
            e => be("open")(e),
        })?;
        let relay_id = {
            let txn = db.begin_write().map_err(be("open"))?;
            let relay_id = {
                txn.open_table(USERS).map_err(be("open"))?;
                txn.open_table(KEYS).map_err(be("open"))?;
                txn.open_table(OPKS).map_err(be("open"))?;
                txn.open_table(MAILBOX).map_err(be("open"))?;
                txn.open_table(PRESENCE_ALLOW).map_err(be("open"))?;
                txn.open_table(LAST_SEEN).map_err(be("open"))?;
                let mut meta = txn.open_table(META).map_err(be("open"))?;
                let existing = meta
                    .get("relay_id")
                    .map_err(be("open"))?
                    .map(|v| v.value().to_owned());
                match existing {
                    Some(id) => id,
                    None => {
                        let id = super::relay_id_text(random()?);
                        meta.insert("relay_id", id.as_str()).map_err(be("open"))?;
                        id
                    }
                }
            };
            txn.commit().map_err(be("open"))?;
            relay_id
        };
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<writer::Job>();
        let writer_db = Arc::clone(&db);
        let writer = std::thread::Builder::new()
            .name("hush-redb-writer".into())
            .spawn(move || writer::writer_loop(writer_db, rx))
            .map_err(be("spawn writer"))?;
        Ok(Self {
            db,
            path,
            relay_id,
            jobs: Some(tx),
            writer: Some(writer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Each method is the function of the same name in the module of its
/// concern.
impl Store for RedbStore {
    async fn relay_id(&self) -> Result<String, StoreError> {
        Ok(self.relay_id.clone())
    }

    fn register_or_authenticate(
        &self,
        user: &UserId,
        key: &PublicKeyBytes,
    ) -> impl Future<Output = Result<AuthOutcome, StoreError>> + Send {
        directory::register_or_authenticate(self, user, key)
    }

    fn publish_keys(
        &self,
        user: &UserId,
        keys: PublishedKeys,
        one_time_prekeys: Vec<OneTimePrekey>,
        max_stored: usize,
    ) -> impl Future<Output = Result<PublishOutcome, StoreError>> + Send {
        directory::publish_keys(self, user, keys, one_time_prekeys, max_stored)
    }

    fn fetch_bundle(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<FetchedBundle>, StoreError>> + Send {
        directory::fetch_bundle(self, user)
    }

    fn lookup_identity(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<(PublicKeyBytes, PublishedKeys)>, StoreError>> + Send
    {
        directory::lookup_identity(self, user)
    }

    fn user_exists(&self, user: &UserId) -> impl Future<Output = Result<bool, StoreError>> + Send {
        directory::user_exists(self, user)
    }

    fn identity_key(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<PublicKeyBytes>, StoreError>> + Send {
        devices::identity_key(self, user)
    }

    fn device_list(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<SignedDeviceList>, StoreError>> + Send {
        devices::device_list(self, user)
    }

    fn put_device_list(
        &self,
        user: &UserId,
        list: SignedDeviceList,
    ) -> impl Future<Output = Result<DeviceListOutcome, StoreError>> + Send {
        devices::put_device_list(self, user, list)
    }

    fn append(
        &self,
        to: &UserId,
        envelope: NewEnvelope,
        limits: MailboxLimits,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send + 'static {
        mailbox::append(self, to, envelope, limits)
    }

    fn mailbox_after(
        &self,
        user: &UserId,
        after_id: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEnvelope>, StoreError>> + Send {
        mailbox::mailbox_after(self, user, after_id, limit)
    }

    fn ack(
        &self,
        user: &UserId,
        ids: Vec<u64>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        mailbox::ack(self, user, ids)
    }

    fn reset_user(&self, user: &UserId) -> impl Future<Output = Result<bool, StoreError>> + Send {
        directory::reset_user(self, user)
    }

    fn sweep_expired(
        &self,
        cutoff_ms: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        mailbox::sweep_expired(self, cutoff_ms)
    }

    fn stats(&self) -> impl Future<Output = Result<StoreStats, StoreError>> + Send {
        mailbox::stats(self)
    }

    fn set_presence_allow(
        &self,
        user: &UserId,
        allowed: Vec<UserId>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        presence::set_presence_allow(self, user, allowed)
    }

    fn presence_allow_list(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Vec<UserId>, StoreError>> + Send {
        presence::presence_allow_list(self, user)
    }

    fn set_last_seen(
        &self,
        user: &UserId,
        at_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        presence::set_last_seen(self, user, at_ms)
    }

    fn presence_view(
        &self,
        asker: &UserId,
        subjects: &[UserId],
    ) -> impl Future<Output = Result<Vec<Visibility>, StoreError>> + Send {
        presence::presence_view(self, asker, subjects)
    }

    fn presence_watchers(
        &self,
        subject: &UserId,
        askers: &[UserId],
    ) -> impl Future<Output = Result<(Vec<bool>, Option<u64>), StoreError>> + Send {
        presence::presence_watchers(self, subject, askers)
    }
}
