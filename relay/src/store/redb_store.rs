//! Embedded durable store on redb, one file `hush.redb` in the data
//! directory.
//!
//! Writes go through one writer thread that drains every pending write
//! request into a single write transaction, commits it with
//! `Durability::Immediate` (fsync), and only then answers each request
//! (group commit): many concurrent sends and acknowledgements cost one
//! fsync, and the `users` and `mailbox` tables are opened once per batch.
//! Every commit is fsync'd: acknowledgements are durable before `acked` is
//! sent, as sends are before `accepted` (docs/protocol.md). Reads run on the
//! blocking pool in their own read transactions and never wait for writes.
//!
//! Tables (big-endian integers):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | `&str` | `&str` (`relay_id`) |
//! | `users` | user id | `identity_key[32] \|\| last_id u64 \|\| count u64 \|\| bytes u64` |
//! | `keys` | user id | `identity_dh[32] \|\| identity_dh_sig[64] \|\| spk_id u32 \|\| spk[32] \|\| spk_sig[64]` |
//! | `one_time_prekeys` | (user id, id u32) | `key[32]` |
//! | `mailbox` | (user id, envelope id u64) | `accepted_at u64 \|\| len(from) u8 \|\| from \|\| body` |
//! | `presence_allow` | (user id, allowed user id) | `()`: who may see the user's presence |
//! | `last_seen` | user id | `u64` Unix ms of the user's last disconnect |

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use hush_protocol::frame::{OneTimePrekey, SignedPrekey};
use hush_protocol::{Body, PublicKeyBytes, SignatureBytes, UserId};
use redb::{
    Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition, WriteTransaction,
};
use tokio::sync::oneshot;

use super::{
    AppendOutcome, AuthOutcome, FetchedBundle, MailboxLimits, NewEnvelope, PublishOutcome,
    PublishedKeys, Store, StoreError, StoreStats, StoredEnvelope, Visibility,
};

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const OPKS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("one_time_prekeys");
const MAILBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("mailbox");
const PRESENCE_ALLOW: TableDefinition<(&str, &str), ()> = TableDefinition::new("presence_allow");
const LAST_SEEN: TableDefinition<&str, u64> = TableDefinition::new("last_seen");

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "hush.redb";
/// Most write requests folded into one transaction.
const MAX_BATCH: usize = 4096;

fn be<E: fmt::Display>(op: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Backend {
        op,
        detail: e.to_string(),
    }
}

// ------------------------------------------------------------ records

#[derive(Debug, Clone, Copy)]
struct UserRec {
    identity_key: [u8; 32],
    last_id: u64,
    count: u64,
    bytes: u64,
}

impl UserRec {
    const LEN: usize = 56;

    fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..32].copy_from_slice(&self.identity_key);
        out[32..40].copy_from_slice(&self.last_id.to_be_bytes());
        out[40..48].copy_from_slice(&self.count.to_be_bytes());
        out[48..56].copy_from_slice(&self.bytes.to_be_bytes());
        out
    }

    fn decode(v: &[u8]) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt { table: "users" };
        let v: &[u8; Self::LEN] = v.try_into().map_err(|_| corrupt())?;
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut identity_key = [0u8; 32];
        identity_key.copy_from_slice(&v[..32]);
        Ok(Self {
            identity_key,
            last_id: u64_at(32),
            count: u64_at(40),
            bytes: u64_at(48),
        })
    }
}

const KEYS_LEN: usize = 32 + 64 + 4 + 32 + 64;

fn encode_keys(k: &PublishedKeys) -> [u8; KEYS_LEN] {
    let mut out = [0u8; KEYS_LEN];
    out[..32].copy_from_slice(&k.identity_dh.0);
    out[32..96].copy_from_slice(&k.identity_dh_sig.0);
    out[96..100].copy_from_slice(&k.signed_prekey.id.to_be_bytes());
    out[100..132].copy_from_slice(&k.signed_prekey.key.0);
    out[132..196].copy_from_slice(&k.signed_prekey.signature.0);
    out
}

fn decode_keys(v: &[u8]) -> Result<PublishedKeys, StoreError> {
    let corrupt = || StoreError::Corrupt { table: "keys" };
    if v.len() != KEYS_LEN {
        return Err(corrupt());
    }
    let arr32 = |r: std::ops::Range<usize>| -> Result<[u8; 32], StoreError> {
        v[r].try_into().map_err(|_| corrupt())
    };
    let arr64 = |r: std::ops::Range<usize>| -> Result<[u8; 64], StoreError> {
        v[r].try_into().map_err(|_| corrupt())
    };
    let id: [u8; 4] = v[96..100].try_into().map_err(|_| corrupt())?;
    Ok(PublishedKeys {
        identity_dh: PublicKeyBytes(arr32(0..32)?),
        identity_dh_sig: SignatureBytes(arr64(32..96)?),
        signed_prekey: SignedPrekey {
            id: u32::from_be_bytes(id),
            key: PublicKeyBytes(arr32(100..132)?),
            signature: SignatureBytes(arr64(132..196)?),
        },
    })
}

fn encode_envelope(e: &NewEnvelope) -> Vec<u8> {
    let from = e.from.as_str().as_bytes();
    let mut out = Vec::with_capacity(9 + from.len() + e.body.len());
    out.extend_from_slice(&e.accepted_at.to_be_bytes());
    // User ids are at most 32 bytes, so the length fits a byte.
    out.push(from.len() as u8);
    out.extend_from_slice(from);
    out.extend_from_slice(e.body.as_bytes());
    out
}

/// (accepted_at, from, body) of a stored envelope value.
fn split_envelope(v: &[u8]) -> Result<(u64, &str, &[u8]), StoreError> {
    let corrupt = || StoreError::Corrupt { table: "mailbox" };
    let at: [u8; 8] = v
        .get(..8)
        .ok_or_else(corrupt)?
        .try_into()
        .map_err(|_| corrupt())?;
    let flen = usize::from(*v.get(8).ok_or_else(corrupt)?);
    let from = v.get(9..9 + flen).ok_or_else(corrupt)?;
    let from = std::str::from_utf8(from).map_err(|_| corrupt())?;
    Ok((u64::from_be_bytes(at), from, &v[9 + flen..]))
}

fn decode_envelope(id: u64, v: &[u8]) -> Result<StoredEnvelope, StoreError> {
    let (accepted_at, from, body) = split_envelope(v)?;
    Ok(StoredEnvelope {
        id,
        from: UserId::try_from(from).map_err(|_| StoreError::Corrupt { table: "mailbox" })?,
        accepted_at,
        body: Body(body.to_vec()),
    })
}

fn body_len(v: &[u8]) -> Result<u64, StoreError> {
    split_envelope(v).map(|(_, _, b)| b.len() as u64)
}

// ------------------------------------------------------------ writer

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Apply = Box<dyn FnOnce(&mut Batch<'_>) -> (Completion, Result<(), StoreError>) + Send>;

/// A write request: applies itself to the batch's transaction, and returns
/// how to answer once the batch's commit is known.
struct Job {
    apply: Apply,
}

type UsersTable<'t> = Table<'t, &'static str, &'static [u8]>;
type MailboxTable<'t> = Table<'t, (&'static str, u64), &'static [u8]>;

/// One batch's write transaction, with the two tables every send and
/// acknowledgement touches opened once per batch rather than once per job.
struct Batch<'t> {
    txn: &'t WriteTransaction,
    mail: Option<(UsersTable<'t>, MailboxTable<'t>)>,
}

impl<'t> Batch<'t> {
    /// The `users` and `mailbox` tables, open until a job needs the bare
    /// transaction.
    fn mail(&mut self) -> Result<&mut (UsersTable<'t>, MailboxTable<'t>), StoreError> {
        let tables = match self.mail.take() {
            Some(t) => t,
            None => (
                self.txn.open_table(USERS).map_err(be("open users"))?,
                self.txn.open_table(MAILBOX).map_err(be("open mailbox"))?,
            ),
        };
        Ok(self.mail.insert(tables))
    }

    /// The transaction, after closing the cached tables (a table can be
    /// open only once in a transaction).
    fn txn(&mut self) -> &'t WriteTransaction {
        self.mail = None;
        self.txn
    }
}

fn writer_loop(db: Arc<Database>, rx: mpsc::Receiver<Job>) {
    let mut queue: VecDeque<Job> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => return,
            }
        }
        while queue.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => break,
            }
        }
        run_batch(&db, &mut queue);
    }
}

/// Applies queued jobs to one transaction until one fails, commits, answers
/// them. A job that fails aborts the batch (all applied jobs get the error);
/// jobs not yet applied stay queued for the next batch. The commit is
/// fsync'd (`Durability::Immediate`).
fn run_batch(db: &Database, queue: &mut VecDeque<Job>) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            fail_all(queue, be("begin write")(e));
            return;
        }
    };
    let mut done: Vec<Completion> = Vec::with_capacity(queue.len());
    let mut failed = None;
    {
        let mut batch = Batch {
            txn: &txn,
            mail: None,
        };
        while let Some(job) = queue.pop_front() {
            let (completion, result) = (job.apply)(&mut batch);
            done.push(completion);
            if let Err(e) = result {
                failed = Some(e);
                break;
            }
        }
    }
    let outcome = match failed {
        Some(e) => {
            let _ = txn.abort();
            Err(e)
        }
        None => commit(txn),
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %e, batch = done.len(), "store write batch failed");
    }
    for c in done {
        c(outcome.clone());
    }
}

fn commit(mut txn: WriteTransaction) -> Result<(), StoreError> {
    txn.set_durability(Durability::Immediate)
        .map_err(be("set durability"))?;
    txn.commit().map_err(be("commit"))
}

fn fail_all(queue: &mut VecDeque<Job>, e: StoreError) {
    tracing::error!(error = %e, "store write transaction could not start");
    // Dropping a job drops its reply channel; the caller sees the failure.
    queue.clear();
}

// ------------------------------------------------------------ store

/// The redb backend.
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
    relay_id: String,
    jobs: Option<mpsc::Sender<Job>>,
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
    /// [`StoreError::Locked`] if another process has it open.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
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
                        let id = super::random_relay_id()?;
                        meta.insert("relay_id", id.as_str()).map_err(be("open"))?;
                        id
                    }
                }
            };
            txn.commit().map_err(be("open"))?;
            relay_id
        };
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_db = Arc::clone(&db);
        let writer = std::thread::Builder::new()
            .name("hush-redb-writer".into())
            .spawn(move || writer_loop(writer_db, rx))
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

    /// Queues a write job now (before the future is first polled, so
    /// requests keep their submission order) and resolves after its batch
    /// commits durably.
    fn write<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(op, move |b: &mut Batch<'_>| f(b.txn()))
    }

    /// [`Self::write`] for a job on the `users` and `mailbox` tables, which
    /// the batch keeps open across such jobs.
    fn write_mail<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut UsersTable<'_>, &mut MailboxTable<'_>) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        self.submit(op, move |b: &mut Batch<'_>| {
            let (users, mailbox) = b.mail()?;
            f(users, mailbox)
        })
    }

    fn submit<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let apply: Apply = Box::new(move |batch| match f(batch) {
            Ok(v) => (
                Box::new(move |commit: Result<(), StoreError>| {
                    let _ = reply.send(commit.map(|()| v));
                }) as Completion,
                Ok(()),
            ),
            Err(e) => {
                let e2 = e.clone();
                (
                    Box::new(move |_| {
                        let _ = reply.send(Err(e2));
                    }) as Completion,
                    Err(e),
                )
            }
        });
        let job = Job { apply };
        let queued = match &self.jobs {
            Some(jobs) => jobs.send(job).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        };
        async move {
            queued?;
            answer.await.map_err(|_| StoreError::Backend {
                op,
                detail: "write batch aborted".into(),
            })?
        }
    }

    fn read<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        async move {
            tokio::task::spawn_blocking(move || {
                let txn = db.begin_read().map_err(be(op))?;
                f(&txn)
            })
            .await
            .map_err(be(op))?
        }
    }
}

fn opk_count<T: ReadableTable<(&'static str, u32), &'static [u8]>>(
    opks: &T,
    user: &str,
) -> Result<u32, StoreError> {
    let n = opks
        .range((user, 0u32)..=(user, u32::MAX))
        .map_err(be("count prekeys"))?
        .count();
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Id of the newest envelope in `user`'s mailbox, 0 if it is empty.
fn newest_queued<T: ReadableTable<(&'static str, u64), &'static [u8]>>(
    mailbox: &T,
    user: &str,
) -> Result<u64, StoreError> {
    let mut range = mailbox
        .range((user, 0u64)..=(user, u64::MAX))
        .map_err(be("newest envelope"))?;
    match range.next_back() {
        Some(entry) => Ok(entry.map_err(be("newest envelope"))?.0.value().1),
        None => Ok(0),
    }
}

fn get_user<T: ReadableTable<&'static str, &'static [u8]>>(
    users: &T,
    user: &str,
) -> Result<Option<UserRec>, StoreError> {
    match users.get(user).map_err(be("read user"))? {
        Some(v) => UserRec::decode(v.value()).map(Some),
        None => Ok(None),
    }
}

/// Deletes every `presence_allow` row of `user`.
fn clear_allow_list(
    txn: &WriteTransaction,
    user: &str,
    op: &'static str,
) -> Result<(), StoreError> {
    let mut allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
    let mut old = Vec::new();
    for entry in allow.range((user, "")..).map_err(be(op))? {
        let (k, _) = entry.map_err(be(op))?;
        let (owner, allowed) = k.value();
        if owner != user {
            break;
        }
        old.push(allowed.to_owned());
    }
    for a in old {
        allow.remove((user, a.as_str())).map_err(be(op))?;
    }
    Ok(())
}

fn auth_write(
    txn: &WriteTransaction,
    user: &str,
    key: [u8; 32],
) -> Result<AuthOutcome, StoreError> {
    let mut users = txn.open_table(USERS).map_err(be("auth"))?;
    if let Some(rec) = get_user(&users, user)? {
        if rec.identity_key != key {
            return Ok(AuthOutcome::KeyMismatch);
        }
        let opks = txn.open_table(OPKS).map_err(be("auth"))?;
        let keys = txn.open_table(KEYS).map_err(be("auth"))?;
        let mailbox = txn.open_table(MAILBOX).map_err(be("auth"))?;
        return Ok(AuthOutcome::Ok {
            registered: false,
            one_time_prekeys: opk_count(&opks, user)?,
            has_keys: keys.get(user).map_err(be("auth"))?.is_some(),
            last_queued: newest_queued(&mailbox, user)?,
        });
    }
    let rec = UserRec {
        identity_key: key,
        last_id: 0,
        count: 0,
        bytes: 0,
    };
    users
        .insert(user, rec.encode().as_slice())
        .map_err(be("register"))?;
    Ok(AuthOutcome::Ok {
        registered: true,
        one_time_prekeys: 0,
        has_keys: false,
        last_queued: 0,
    })
}

impl Store for RedbStore {
    async fn relay_id(&self) -> Result<String, StoreError> {
        Ok(self.relay_id.clone())
    }

    async fn register_or_authenticate(
        &self,
        user: &UserId,
        key: &PublicKeyBytes,
    ) -> Result<AuthOutcome, StoreError> {
        // Known users authenticate with a read; only registration writes.
        let name = user.as_str().to_owned();
        let key = key.0;
        let known = self
            .read("auth", move |txn| {
                let users = txn.open_table(USERS).map_err(be("auth"))?;
                let Some(rec) = get_user(&users, &name)? else {
                    return Ok(None);
                };
                if rec.identity_key != key {
                    return Ok(Some(AuthOutcome::KeyMismatch));
                }
                let opks = txn.open_table(OPKS).map_err(be("auth"))?;
                let keys = txn.open_table(KEYS).map_err(be("auth"))?;
                let mailbox = txn.open_table(MAILBOX).map_err(be("auth"))?;
                Ok(Some(AuthOutcome::Ok {
                    registered: false,
                    one_time_prekeys: opk_count(&opks, &name)?,
                    has_keys: keys.get(name.as_str()).map_err(be("auth"))?.is_some(),
                    last_queued: newest_queued(&mailbox, &name)?,
                }))
            })
            .await?;
        if let Some(outcome) = known {
            return Ok(outcome);
        }
        let name = user.as_str().to_owned();
        self.write("register", move |txn| auth_write(txn, &name, key))
            .await
    }

    async fn publish_keys(
        &self,
        user: &UserId,
        keys: PublishedKeys,
        one_time_prekeys: Vec<OneTimePrekey>,
        max_stored: usize,
    ) -> Result<PublishOutcome, StoreError> {
        let name = user.as_str().to_owned();
        self.write("publish keys", move |txn| {
            let op = "publish keys";
            let users = txn.open_table(USERS).map_err(be(op))?;
            if get_user(&users, &name)?.is_none() {
                return Ok(PublishOutcome::UnknownUser);
            }
            let mut opks = txn.open_table(OPKS).map_err(be(op))?;
            let existing = opk_count(&opks, &name)? as usize;
            let mut fresh = std::collections::BTreeSet::new();
            for o in &one_time_prekeys {
                if opks.get((name.as_str(), o.id)).map_err(be(op))?.is_none() {
                    fresh.insert(o.id);
                }
            }
            let would_store = existing + fresh.len();
            if would_store > max_stored {
                return Ok(PublishOutcome::TooManyPrekeys {
                    would_store,
                    max: max_stored,
                });
            }
            let mut keys_t = txn.open_table(KEYS).map_err(be(op))?;
            keys_t
                .insert(name.as_str(), encode_keys(&keys).as_slice())
                .map_err(be(op))?;
            for o in &one_time_prekeys {
                opks.insert((name.as_str(), o.id), o.key.0.as_slice())
                    .map_err(be(op))?;
            }
            Ok(PublishOutcome::Published {
                one_time_prekeys: opk_count(&opks, &name)?,
            })
        })
        .await
    }

    async fn fetch_bundle(&self, user: &UserId) -> Result<Option<FetchedBundle>, StoreError> {
        let name = user.as_str().to_owned();
        self.write("fetch bundle", move |txn| {
            let op = "fetch bundle";
            let users = txn.open_table(USERS).map_err(be(op))?;
            let Some(rec) = get_user(&users, &name)? else {
                return Ok(None);
            };
            let keys_t = txn.open_table(KEYS).map_err(be(op))?;
            let keys = match keys_t.get(name.as_str()).map_err(be(op))? {
                Some(v) => decode_keys(v.value())?,
                None => return Ok(None),
            };
            let mut opks = txn.open_table(OPKS).map_err(be(op))?;
            let first = {
                let mut range = opks
                    .range((name.as_str(), 0u32)..=(name.as_str(), u32::MAX))
                    .map_err(be(op))?;
                match range.next() {
                    Some(entry) => {
                        let (k, v) = entry.map_err(be(op))?;
                        let key: [u8; 32] =
                            v.value().try_into().map_err(|_| StoreError::Corrupt {
                                table: "one_time_prekeys",
                            })?;
                        Some(OneTimePrekey {
                            id: k.value().1,
                            key: PublicKeyBytes(key),
                        })
                    }
                    None => None,
                }
            };
            if let Some(o) = &first {
                opks.remove((name.as_str(), o.id)).map_err(be(op))?;
            }
            Ok(Some(FetchedBundle {
                identity_key: PublicKeyBytes(rec.identity_key),
                keys,
                one_time_prekey: first,
                remaining: opk_count(&opks, &name)?,
            }))
        })
        .await
    }

    async fn lookup_identity(
        &self,
        user: &UserId,
    ) -> Result<Option<(PublicKeyBytes, PublishedKeys)>, StoreError> {
        let name = user.as_str().to_owned();
        self.read("lookup", move |txn| {
            let users = txn.open_table(USERS).map_err(be("lookup"))?;
            let Some(rec) = get_user(&users, &name)? else {
                return Ok(None);
            };
            let keys = txn.open_table(KEYS).map_err(be("lookup"))?;
            let published = match keys.get(name.as_str()).map_err(be("lookup"))? {
                Some(v) => decode_keys(v.value())?,
                None => return Ok(None),
            };
            Ok(Some((PublicKeyBytes(rec.identity_key), published)))
        })
        .await
    }

    async fn user_exists(&self, user: &UserId) -> Result<bool, StoreError> {
        let name = user.as_str().to_owned();
        self.read("user exists", move |txn| {
            let users = txn.open_table(USERS).map_err(be("user exists"))?;
            Ok(users
                .get(name.as_str())
                .map_err(be("user exists"))?
                .is_some())
        })
        .await
    }

    fn append(
        &self,
        to: &UserId,
        envelope: NewEnvelope,
        limits: MailboxLimits,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send + 'static {
        // Not an `async fn`: the job is queued at call time.
        let name = to.as_str().to_owned();
        self.write_mail("append", move |users, mailbox| {
            let op = "append";
            let Some(mut rec) = get_user(users, &name)? else {
                return Ok(AppendOutcome::UnknownUser);
            };
            let len = envelope.body.len() as u64;
            if rec.count >= limits.max_envelopes || rec.bytes.saturating_add(len) > limits.max_bytes
            {
                return Ok(AppendOutcome::MailboxFull);
            }
            rec.last_id += 1;
            rec.count += 1;
            rec.bytes += len;
            mailbox
                .insert(
                    (name.as_str(), rec.last_id),
                    encode_envelope(&envelope).as_slice(),
                )
                .map_err(be(op))?;
            users
                .insert(name.as_str(), rec.encode().as_slice())
                .map_err(be(op))?;
            Ok(AppendOutcome::Appended(StoredEnvelope {
                id: rec.last_id,
                from: envelope.from,
                accepted_at: envelope.accepted_at,
                body: envelope.body,
            }))
        })
    }

    async fn mailbox_after(
        &self,
        user: &UserId,
        after_id: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let name = user.as_str().to_owned();
        self.read("mailbox read", move |txn| {
            let op = "mailbox read";
            let mailbox = txn.open_table(MAILBOX).map_err(be(op))?;
            let Some(start) = after_id.checked_add(1) else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for entry in mailbox
                .range((name.as_str(), start)..=(name.as_str(), u64::MAX))
                .map_err(be(op))?
                .take(limit)
            {
                let (k, v) = entry.map_err(be(op))?;
                out.push(decode_envelope(k.value().1, v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn ack(&self, user: &UserId, ids: Vec<u64>) -> Result<u64, StoreError> {
        let name = user.as_str().to_owned();
        // Durable before `acked` (docs/protocol.md): an acknowledged
        // envelope is never pushed again, even after a crash. Acks share the
        // group commit with the sends of their batch.
        self.write_mail("ack", move |users, mailbox| {
            let op = "ack";
            let Some(mut rec) = get_user(users, &name)? else {
                return Ok(0);
            };
            let mut removed = 0;
            for id in ids {
                if let Some(v) = mailbox.remove((name.as_str(), id)).map_err(be(op))? {
                    rec.bytes = rec.bytes.saturating_sub(body_len(v.value())?);
                    rec.count = rec.count.saturating_sub(1);
                    removed += 1;
                }
            }
            if removed > 0 {
                users
                    .insert(name.as_str(), rec.encode().as_slice())
                    .map_err(be(op))?;
            }
            Ok(removed)
        })
        .await
    }

    async fn reset_user(&self, user: &UserId) -> Result<bool, StoreError> {
        let name = user.as_str().to_owned();
        self.write("reset user", move |txn| {
            let op = "reset user";
            let mut users = txn.open_table(USERS).map_err(be(op))?;
            let existed = users.remove(name.as_str()).map_err(be(op))?.is_some();
            let mut keys = txn.open_table(KEYS).map_err(be(op))?;
            keys.remove(name.as_str()).map_err(be(op))?;
            let mut opks = txn.open_table(OPKS).map_err(be(op))?;
            opks.retain_in((name.as_str(), 0u32)..=(name.as_str(), u32::MAX), |_, _| {
                false
            })
            .map_err(be(op))?;
            let mut mailbox = txn.open_table(MAILBOX).map_err(be(op))?;
            mailbox
                .retain_in((name.as_str(), 0u64)..=(name.as_str(), u64::MAX), |_, _| {
                    false
                })
                .map_err(be(op))?;
            clear_allow_list(txn, &name, op)?;
            let mut last_seen = txn.open_table(LAST_SEEN).map_err(be(op))?;
            last_seen.remove(name.as_str()).map_err(be(op))?;
            Ok(existed)
        })
        .await
    }

    async fn sweep_expired(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        self.write("sweep", move |txn| {
            let op = "sweep";
            let mut users = txn.open_table(USERS).map_err(be(op))?;
            let mut mailbox = txn.open_table(MAILBOX).map_err(be(op))?;
            let mut names = Vec::new();
            for entry in users.iter().map_err(be(op))? {
                let (k, v) = entry.map_err(be(op))?;
                if UserRec::decode(v.value())?.count > 0 {
                    names.push(k.value().to_owned());
                }
            }
            let mut removed = 0u64;
            for name in names {
                let mut expired = Vec::new();
                for entry in mailbox
                    .range((name.as_str(), 0u64)..=(name.as_str(), u64::MAX))
                    .map_err(be(op))?
                {
                    let (k, v) = entry.map_err(be(op))?;
                    let (at, _, body) = split_envelope(v.value())?;
                    if at >= cutoff_ms {
                        break;
                    }
                    expired.push((k.value().1, body.len() as u64));
                }
                if expired.is_empty() {
                    continue;
                }
                let Some(mut rec) = get_user(&users, &name)? else {
                    continue;
                };
                for (id, len) in &expired {
                    mailbox.remove((name.as_str(), *id)).map_err(be(op))?;
                    rec.count = rec.count.saturating_sub(1);
                    rec.bytes = rec.bytes.saturating_sub(*len);
                }
                removed += expired.len() as u64;
                users
                    .insert(name.as_str(), rec.encode().as_slice())
                    .map_err(be(op))?;
            }
            Ok(removed)
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.read("stats", move |txn| {
            let users = txn.open_table(USERS).map_err(be("stats"))?;
            let mut s = StoreStats::default();
            for entry in users.iter().map_err(be("stats"))? {
                let (_, v) = entry.map_err(be("stats"))?;
                let rec = UserRec::decode(v.value())?;
                s.users += 1;
                s.envelopes += rec.count;
                s.envelope_bytes += rec.bytes;
                s.census.add(rec.count, rec.bytes);
            }
            Ok(s)
        })
        .await
    }

    async fn set_presence_allow(
        &self,
        user: &UserId,
        allowed: Vec<UserId>,
    ) -> Result<(), StoreError> {
        let name = user.as_str().to_owned();
        self.write("presence allow", move |txn| {
            let op = "presence allow";
            let users = txn.open_table(USERS).map_err(be(op))?;
            if users.get(name.as_str()).map_err(be(op))?.is_none() {
                return Ok(());
            }
            clear_allow_list(txn, &name, op)?;
            let mut allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
            for a in &allowed {
                allow
                    .insert((name.as_str(), a.as_str()), ())
                    .map_err(be(op))?;
            }
            Ok(())
        })
        .await
    }

    async fn presence_allow_list(&self, user: &UserId) -> Result<Vec<UserId>, StoreError> {
        let name = user.as_str().to_owned();
        self.read("presence allow list", move |txn| {
            let op = "presence allow list";
            let allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
            let mut out = Vec::new();
            for entry in allow.range((name.as_str(), "")..).map_err(be(op))? {
                let (k, _) = entry.map_err(be(op))?;
                let (owner, allowed) = k.value();
                if owner != name {
                    break;
                }
                out.push(UserId::try_from(allowed).map_err(|_| StoreError::Corrupt {
                    table: "presence_allow",
                })?);
            }
            Ok(out)
        })
        .await
    }

    async fn set_last_seen(&self, user: &UserId, at_ms: u64) -> Result<(), StoreError> {
        let name = user.as_str().to_owned();
        self.write("last seen", move |txn| {
            let op = "last seen";
            let users = txn.open_table(USERS).map_err(be(op))?;
            if users.get(name.as_str()).map_err(be(op))?.is_none() {
                return Ok(());
            }
            let mut last_seen = txn.open_table(LAST_SEEN).map_err(be(op))?;
            last_seen.insert(name.as_str(), at_ms).map_err(be(op))?;
            Ok(())
        })
        .await
    }

    async fn presence_view(
        &self,
        asker: &UserId,
        subjects: &[UserId],
    ) -> Result<Vec<Visibility>, StoreError> {
        let asker = asker.as_str().to_owned();
        let subjects: Vec<String> = subjects.iter().map(|s| s.as_str().to_owned()).collect();
        self.read("presence view", move |txn| {
            let op = "presence view";
            let allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
            let last_seen = txn.open_table(LAST_SEEN).map_err(be(op))?;
            subjects
                .iter()
                .map(|s| {
                    let allowed = allow
                        .get((s.as_str(), asker.as_str()))
                        .map_err(be(op))?
                        .is_some();
                    if !(allowed || *s == asker) {
                        return Ok(None);
                    }
                    let seen = last_seen.get(s.as_str()).map_err(be(op))?;
                    Ok(Some(seen.map(|v| v.value())))
                })
                .collect()
        })
        .await
    }

    async fn presence_watchers(
        &self,
        subject: &UserId,
        askers: &[UserId],
    ) -> Result<(Vec<bool>, Option<u64>), StoreError> {
        let subject = subject.as_str().to_owned();
        let askers: Vec<String> = askers.iter().map(|a| a.as_str().to_owned()).collect();
        self.read("presence watchers", move |txn| {
            let op = "presence watchers";
            let allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
            let last_seen = txn.open_table(LAST_SEEN).map_err(be(op))?;
            let allowed = askers
                .iter()
                .map(|a| {
                    Ok(*a == subject
                        || allow
                            .get((subject.as_str(), a.as_str()))
                            .map_err(be(op))?
                            .is_some())
                })
                .collect::<Result<Vec<bool>, StoreError>>()?;
            let seen = last_seen
                .get(subject.as_str())
                .map_err(be(op))?
                .map(|v| v.value());
            Ok((allowed, seen))
        })
        .await
    }
}
