//! Shared store on Redis, for several relays (cluster mode, `--redis URL`).
//!
//! Every operation that reads and writes is one Lua script (EVALSHA), so it
//! is atomic without locks; plain reads are single commands. The scripts are
//! in `store/lua/`. Key layout (`{u}` is the user id; binary integers are
//! big-endian; binary records are encoded by [`crate::store::codec`]):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `hush:relay_id` | string | the relay id every relay of the cluster presents |
//! | `hush:users` | string | number of registered users |
//! | `hush:u:{u}` | hash | `ik` identity key (32 bytes), `keys` published keys (196 bytes, as in redb), `last` newest envelope id ever assigned, `b` body bytes queued, `ls` last disconnect (Unix ms, decimal) |
//! | `hush:pallow:{u}` | set | user ids allowed to see the user's presence |
//! | `hush:opk:{u}` | sorted set | one-time prekeys: score = id, member = `id u32 \|\| key[32]` |
//! | `hush:mbox:{u}` | sorted set | mailbox: score = envelope id, member = `id u64 \|\| accepted_at u64 \|\| len(from) u8 \|\| from \|\| body` |
//! | `hush:nonempty` | set | users whose mailbox is not empty (what the retention sweep visits) |
//! | `hush:presence:{u}` | string, TTL | `NODE:EPOCH`: the relay process holding the user's live connection |
//! | `hush:epoch:{u}` | string | counter of the user's connections (newest wins) |
//!
//! Pub/sub channel `hush:node:{NODE}` carries messages for one relay
//! process (see [`crate::cluster`]): `m` new mail (the mailbox member),
//! `k` a newer connection (epoch), `f` a frame to push. Channel
//! `hush:presence` (every relay) carries the user id whose presence or allow
//! list changed.
//!
//! Appends keep their submission order: [`Store::append`] queues the call at
//! once to one task that sends queued appends as one pipeline at a time
//! (group commit: with `appendfsync always` Redis fsyncs once per batch).
//! Envelope ids are sorted-set scores (doubles): exact up to 2^53.
//!
//! | module | holds |
//! | --- | --- |
//! | `schema` | key names, channels, the scripts, reply and error helpers |
//! | `writer` | the append pump (ordered, batched `append.lua` calls) |
//! | `directory` | registration and authentication, published keys and one-time prekeys, user reset |
//! | `mailbox` | append, read, acknowledge, retention sweep, stats |
//! | `presence` | allow lists and last-seen times |
//! | `sessions` | which relay holds each user's live connection: claim, release, refresh, forward, online, presence broadcast |

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hush_protocol::devices::SignedDeviceList;
use hush_protocol::frame::OneTimePrekey;
use hush_protocol::{PublicKeyBytes, UserId};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands as _, Client};
use tokio::sync::mpsc;

use super::{
    AppendOutcome, AuthOutcome, DeviceListOutcome, FetchedBundle, MailboxLimits, NewEnvelope,
    PublishOutcome, PublishedKeys, Store, StoreError, StoreStats, StoredEnvelope, Visibility,
};

mod devices;
mod directory;
mod mailbox;
mod presence;
mod schema;
mod sessions;
mod writer;

pub(crate) use super::codec::decode_member;
pub(crate) use crate::config::redact_url as redact;
// Kept at their pre-split paths (`store::redis_store::*`) for the cluster
// code, whether or not it uses them today.
#[allow(unused_imports)]
pub(crate) use schema::{NODE_CHANNEL, PREFIX, PRESENCE_CHANNEL, epoch_key, presence_key};
pub(crate) use sessions::Refreshed;

use schema::{RELAY_ID, Scripts};

struct Inner {
    conn: ConnectionManager,
    client: Client,
    target: String,
    node: String,
    relay_id: String,
    scripts: Scripts,
    appends: mpsc::UnboundedSender<writer::AppendJob>,
}

/// The Redis backend. Clones share one connection (multiplexed, reconnected
/// on demand by the connection manager).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.inner.target)
            .field("node", &self.inner.node)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://HOST:PORT[/DB]`). Fails with
    /// [`StoreError::Unreachable`] when Redis does not answer. The relay id
    /// (if the cluster has none yet) and this process's node id come from
    /// the OS RNG.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, super::os_random_id).await
    }

    /// [`Self::connect`], with the 16 bytes of each id it makes (the
    /// cluster's relay id if it has none yet, then this process's node id)
    /// from `random` instead of the OS RNG (tests).
    pub async fn connect_with_random(
        url: &str,
        mut random: impl FnMut() -> [u8; 16] + Send,
    ) -> Result<Self, StoreError> {
        Self::connect_with(url, move || Ok(random())).await
    }

    async fn connect_with(
        url: &str,
        mut random: impl FnMut() -> Result<[u8; 16], StoreError> + Send,
    ) -> Result<Self, StoreError> {
        let target = redact(url);
        let unreachable = |detail: String| StoreError::Unreachable {
            target: target.clone(),
            detail,
        };
        let client = Client::open(url).map_err(|e| unreachable(e.to_string()))?;
        // Few, short retries: a command during an outage fails within about
        // a second (the caller answers `store_unavailable`); the next command
        // tries to reconnect again.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let mut conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let _: () = redis::cmd("SET")
            .arg(RELAY_ID)
            .arg(super::relay_id_text(random()?))
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let relay_id: String = conn
            .get(RELAY_ID)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let node = super::relay_id_text(random()?);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer::append_pump(conn.clone(), node.clone(), rx));
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                client,
                target,
                node,
                relay_id,
                scripts: Scripts::new(),
                appends: tx,
            }),
        })
    }

    /// This relay process's node id (names its pub/sub channel and its
    /// presence entries).
    pub(crate) fn node(&self) -> &str {
        &self.inner.node
    }

    /// The Redis URL without credentials.
    pub(crate) fn target(&self) -> &str {
        &self.inner.target
    }

    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }
}

/// Each method is the function of the same name in the module of its
/// concern.
impl Store for RedisStore {
    async fn relay_id(&self) -> Result<String, StoreError> {
        Ok(self.inner.relay_id.clone())
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

#[cfg(test)]
mod tests;
