//! Shared store on Redis, for several relays (cluster mode, `--redis URL`).
//!
//! Every operation that reads and writes is one Lua script (EVALSHA), so it
//! is atomic without locks; plain reads are single commands. The scripts are
//! in `store/lua/`. Key layout (`{u}` is the user id; binary integers are
//! big-endian):
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

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hush_protocol::frame::{OneTimePrekey, SignedPrekey};
use hush_protocol::{Body, PublicKeyBytes, SignatureBytes, UserId};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands as _, Client, Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::{
    AppendOutcome, AuthOutcome, FetchedBundle, MailboxLimits, NewEnvelope, PublishOutcome,
    PublishedKeys, Store, StoreError, StoreStats, StoredEnvelope, Visibility,
};

/// Prefix of every key and channel.
pub(crate) const PREFIX: &str = "hush:";
/// Prefix of the per-relay-process pub/sub channels.
pub(crate) const NODE_CHANNEL: &str = "hush:node:";
/// Broadcast channel of presence changes (payload: the user id).
pub(crate) const PRESENCE_CHANNEL: &str = "hush:presence";
/// Most appends sent in one pipeline.
const MAX_BATCH: usize = 512;
/// Users per retention-sweep script call.
const SWEEP_CHUNK: usize = 100;

const APPEND_LUA: &str = include_str!("lua/append.lua");

fn key(kind: &str, user: &str) -> String {
    format!("{PREFIX}{kind}:{user}")
}
fn user_key(u: &str) -> String {
    key("u", u)
}
fn opk_key(u: &str) -> String {
    key("opk", u)
}
fn mbox_key(u: &str) -> String {
    key("mbox", u)
}
pub(crate) fn presence_key(u: &str) -> String {
    key("presence", u)
}
pub(crate) fn epoch_key(u: &str) -> String {
    key("epoch", u)
}
fn pallow_key(u: &str) -> String {
    key("pallow", u)
}
const NONEMPTY: &str = "hush:nonempty";
const USERS: &str = "hush:users";
const RELAY_ID: &str = "hush:relay_id";

/// The Redis URL without credentials, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => "<invalid URL>".to_owned(),
    }
}

fn be(op: &'static str) -> impl Fn(redis::RedisError) -> StoreError {
    move |e| {
        crate::metrics::redis_error(op);
        StoreError::Backend {
            op,
            detail: e.to_string(),
        }
    }
}

fn corrupt(table: &'static str) -> StoreError {
    StoreError::Corrupt { table }
}

/// The scripts, loaded lazily by EVALSHA (re-sent on NOSCRIPT).
struct Scripts {
    auth: Script,
    publish_keys: Script,
    fetch_bundle: Script,
    ack: Script,
    sweep: Script,
    reset_user: Script,
    pub(crate) claim: Script,
    pub(crate) release: Script,
    pub(crate) refresh: Script,
    pub(crate) forward: Script,
    presence_allow: Script,
    last_seen: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            auth: Script::new(include_str!("lua/auth.lua")),
            publish_keys: Script::new(include_str!("lua/publish_keys.lua")),
            fetch_bundle: Script::new(include_str!("lua/fetch_bundle.lua")),
            ack: Script::new(include_str!("lua/ack.lua")),
            sweep: Script::new(include_str!("lua/sweep.lua")),
            reset_user: Script::new(include_str!("lua/reset_user.lua")),
            claim: Script::new(include_str!("lua/claim.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            refresh: Script::new(include_str!("lua/refresh.lua")),
            forward: Script::new(include_str!("lua/forward.lua")),
            presence_allow: Script::new(include_str!("lua/presence_allow.lua")),
            last_seen: Script::new(include_str!("lua/last_seen.lua")),
        }
    }
}

/// One envelope for the append pump.
struct AppendJob {
    user: String,
    limits: MailboxLimits,
    body_len: usize,
    tail: Vec<u8>,
    /// The new id, 0 (unknown user) or -1 (mailbox full).
    reply: oneshot::Sender<Result<i64, StoreError>>,
}

struct Inner {
    conn: ConnectionManager,
    client: Client,
    target: String,
    node: String,
    relay_id: String,
    scripts: Scripts,
    appends: mpsc::UnboundedSender<AppendJob>,
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
    /// [`StoreError::Unreachable`] when Redis does not answer.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
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
            .arg(super::random_relay_id()?)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let relay_id: String = conn
            .get(RELAY_ID)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let node = super::random_relay_id()?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(append_pump(conn.clone(), node.clone(), rx));
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

    /// Claims the user's presence for a new connection on this relay and
    /// tells the previous holder to close its older one. Returns the
    /// connection's epoch.
    pub(crate) async fn claim(&self, user: &UserId, ttl: Duration) -> Result<u64, StoreError> {
        let u = user.as_str();
        self.inner
            .scripts
            .claim
            .key(presence_key(u))
            .key(epoch_key(u))
            .arg(&self.inner.node)
            .arg(ttl_ms(ttl))
            .arg(u)
            .arg(NODE_CHANNEL)
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("claim presence"))
    }

    /// Deletes the presence entry of a closed connection if still ours.
    pub(crate) async fn release(&self, user: &UserId, epoch: u64) -> Result<(), StoreError> {
        let _: i64 = self
            .inner
            .scripts
            .release
            .key(presence_key(user.as_str()))
            .arg(format!("{}:{epoch}", self.inner.node))
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("release presence"))?;
        Ok(())
    }

    /// Refreshes the presence of these (user, epoch) connections; returns
    /// what happened to each.
    pub(crate) async fn refresh(
        &self,
        live: &[(UserId, u64)],
        ttl: Duration,
    ) -> Result<Vec<Refreshed>, StoreError> {
        let mut out = Vec::with_capacity(live.len());
        for chunk in live.chunks(256) {
            let mut inv = self.inner.scripts.refresh.prepare_invoke();
            inv.arg(&self.inner.node).arg(ttl_ms(ttl));
            for (u, epoch) in chunk {
                inv.key(presence_key(u.as_str()))
                    .key(epoch_key(u.as_str()))
                    .arg(*epoch);
            }
            let got: Vec<i64> = inv
                .invoke_async(&mut self.conn())
                .await
                .map_err(be("refresh presence"))?;
            out.extend(got.into_iter().map(|v| match v {
                0 => Refreshed::Superseded,
                2 => Refreshed::Recreated,
                _ => Refreshed::Kept,
            }));
        }
        Ok(out)
    }

    /// Publishes `message` to the relay holding `user`, if another one does.
    pub(crate) async fn forward(&self, user: &UserId, message: Vec<u8>) -> Result<(), StoreError> {
        let _: i64 = self
            .inner
            .scripts
            .forward
            .key(presence_key(user.as_str()))
            .arg(&self.inner.node)
            .arg(message)
            .arg(NODE_CHANNEL)
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("forward"))?;
        Ok(())
    }
}

impl RedisStore {
    /// Which of `users` have a live connection on some relay of the
    /// cluster (their presence entry exists).
    pub(crate) async fn online(&self, users: &[UserId]) -> Result<Vec<bool>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for u in users {
            pipe.exists(presence_key(u.as_str()));
        }
        pipe.query_async(&mut self.conn())
            .await
            .map_err(be("presence online"))
    }

    /// Tells every relay that `user`'s presence or allow list changed.
    pub(crate) async fn publish_presence(&self, user: &UserId) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .publish(PRESENCE_CHANNEL, user.as_str())
            .await
            .map_err(be("publish presence"))?;
        Ok(())
    }
}

/// A `ls` field as stored by `last_seen.lua`; anything else is corrupt.
fn last_seen_value(v: Value) -> Result<Option<u64>, StoreError> {
    match v {
        Value::Nil => Ok(None),
        v => redis::from_redis_value::<u64>(v)
            .map(Some)
            .map_err(|_| corrupt("last seen")),
    }
}

/// What a presence refresh found for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refreshed {
    /// Still the user's newest; TTL renewed.
    Kept,
    /// A newer connection exists elsewhere.
    Superseded,
    /// The entry had expired (the relay could not refresh it in time) and
    /// was set again: new mail meanwhile was not announced.
    Recreated,
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Sends queued appends in submission order: everything queued (up to
/// [`MAX_BATCH`] envelopes) goes in one call of `append.lua`, which applies
/// them in order, reading each recipient's record once per batch and
/// telling each holding relay once per batch. Measured against one call per
/// envelope (cluster row of docs/benchmarks.md): Redis CPU per message
/// 10.65 -> 5.9 us; most of what is left is the Lua interpreter's own cost
/// per envelope (arguments, the member string, one `ZADD`), not the
/// commands.
///
/// The script is loaded in front of a call whenever the previous one may
/// have met a Redis that forgot it (after any error, and at start), and a
/// call refused with NOSCRIPT is sent again behind a load. A call is all or
/// nothing: if it fails, every envelope of its batch gets the error and
/// none was stored.
async fn append_pump(
    mut conn: ConnectionManager,
    node: String,
    mut rx: mpsc::UnboundedReceiver<AppendJob>,
) {
    let sha = Script::new(APPEND_LUA).get_hash().to_owned();
    let mut load = true;
    while let Some(first) = rx.recv().await {
        // The mailbox limits are the relay's; the first job's stand for
        // the batch.
        let limits = first.limits;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut outcome = append_call(&mut conn, &sha, &node, limits, &batch, load).await;
        if matches!(outcome, Err(Failed::NoScript)) {
            // Redis forgot the script (restart, SCRIPT FLUSH): the call ran
            // nothing, so it is sent again behind a load.
            outcome = append_call(&mut conn, &sha, &node, limits, &batch, true).await;
        }
        match outcome {
            Ok(ids) => {
                load = false;
                for (job, id) in batch.into_iter().zip(ids) {
                    let _ = job.reply.send(Ok(id));
                }
            }
            Err(e) => {
                load = true;
                fail(batch, &e.to_string());
            }
        }
    }
}

/// Why a call of `append.lua` stored nothing.
#[derive(Debug)]
enum Failed {
    NoScript,
    Other(String),
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::NoScript => f.write_str("append.lua not loaded"),
            Failed::Other(e) => f.write_str(e),
        }
    }
}

/// One call of `append.lua` for `batch` (preceded by loading it when
/// `load`): the new ids (or 0 / -1), in order.
async fn append_call(
    conn: &mut ConnectionManager,
    sha: &str,
    node: &str,
    limits: MailboxLimits,
    batch: &[AppendJob],
    load: bool,
) -> Result<Vec<i64>, Failed> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    if load {
        pipe.cmd("SCRIPT").arg("LOAD").arg(APPEND_LUA);
    }
    // Sized once: a batch is up to 512 envelopes of up to 64 KiB, and
    // growing the argument buffer by doubling cost a copy and fresh pages
    // per step.
    let bytes: usize = batch
        .iter()
        .map(|j| 4 * j.user.len() + 40 + j.tail.len())
        .sum();
    let mut cmd = redis::Cmd::with_capacity(8 + 6 * batch.len(), 256 + bytes);
    cmd.arg("EVALSHA")
        .arg(sha)
        .arg(1 + 3 * batch.len())
        .arg(NONEMPTY);
    for job in batch {
        cmd.arg(user_key(&job.user))
            .arg(mbox_key(&job.user))
            .arg(presence_key(&job.user));
    }
    cmd.arg(limits.max_envelopes)
        .arg(limits.max_bytes)
        .arg(node)
        .arg(NODE_CHANNEL);
    for job in batch {
        cmd.arg(&job.user)
            .arg(job.body_len)
            .arg(job.tail.as_slice());
    }
    pipe.add_command(cmd);
    let expected = 1 + usize::from(load);
    let mut values = pipe
        .query_async::<Vec<Value>>(conn)
        .await
        .map_err(|e| Failed::Other(e.to_string()))?;
    if values.len() != expected {
        return Err(Failed::Other(format!(
            "{} replies to {expected} commands",
            values.len()
        )));
    }
    match values.pop() {
        Some(Value::ServerError(e)) if e.code() == "NOSCRIPT" => Err(Failed::NoScript),
        Some(Value::ServerError(e)) => Err(Failed::Other(e.to_string())),
        Some(v) => match redis::from_redis_value::<Vec<i64>>(v) {
            Ok(ids) if ids.len() == batch.len() => Ok(ids),
            _ => Err(Failed::Other("malformed append.lua reply".into())),
        },
        None => Err(Failed::Other("no reply from append.lua".into())),
    }
}

fn fail(batch: Vec<AppendJob>, detail: &str) {
    crate::metrics::redis_error("append");
    for job in batch {
        let _ = job.reply.send(Err(StoreError::Backend {
            op: "append",
            detail: detail.to_owned(),
        }));
    }
}

// ------------------------------------------------------------ records

const KEYS_LEN: usize = 32 + 64 + 4 + 32 + 64;

fn encode_keys(k: &PublishedKeys) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEYS_LEN);
    out.extend_from_slice(&k.identity_dh.0);
    out.extend_from_slice(&k.identity_dh_sig.0);
    out.extend_from_slice(&k.signed_prekey.id.to_be_bytes());
    out.extend_from_slice(&k.signed_prekey.key.0);
    out.extend_from_slice(&k.signed_prekey.signature.0);
    out
}

fn arr<const N: usize>(v: &[u8], table: &'static str) -> Result<[u8; N], StoreError> {
    v.try_into().map_err(|_| corrupt(table))
}

fn decode_keys(v: &[u8]) -> Result<PublishedKeys, StoreError> {
    if v.len() != KEYS_LEN {
        return Err(corrupt("keys"));
    }
    Ok(PublishedKeys {
        identity_dh: PublicKeyBytes(arr(&v[..32], "keys")?),
        identity_dh_sig: SignatureBytes(arr(&v[32..96], "keys")?),
        signed_prekey: SignedPrekey {
            id: u32::from_be_bytes(arr(&v[96..100], "keys")?),
            key: PublicKeyBytes(arr(&v[100..132], "keys")?),
            signature: SignatureBytes(arr(&v[132..196], "keys")?),
        },
    })
}

/// `accepted_at u64 || len(from) u8 || from || body`: the mailbox member
/// after its id.
fn envelope_tail(e: &NewEnvelope) -> Vec<u8> {
    let from = e.from.as_str().as_bytes();
    let mut out = Vec::with_capacity(9 + from.len() + e.body.len());
    out.extend_from_slice(&e.accepted_at.to_be_bytes());
    // User ids are at most 32 bytes.
    out.push(u8::try_from(from.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(from);
    out.extend_from_slice(e.body.as_bytes());
    out
}

/// Decodes a mailbox member (`id u64 || accepted_at u64 || len(from) u8 ||
/// from || body`).
pub(crate) fn decode_member(m: &[u8]) -> Result<StoredEnvelope, StoreError> {
    let c = || corrupt("mailbox");
    let id = u64::from_be_bytes(arr(m.get(..8).ok_or_else(c)?, "mailbox")?);
    let at = u64::from_be_bytes(arr(m.get(8..16).ok_or_else(c)?, "mailbox")?);
    let flen = usize::from(*m.get(16).ok_or_else(c)?);
    let from = m.get(17..17 + flen).ok_or_else(c)?;
    let from = std::str::from_utf8(from).map_err(|_| c())?;
    Ok(StoredEnvelope {
        id,
        from: UserId::try_from(from).map_err(|_| c())?,
        accepted_at: at,
        body: Body(m[17 + flen..].to_vec()),
    })
}

fn int(v: &Value) -> Result<i64, StoreError> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(corrupt("script reply")),
    }
}

fn count(v: &Value) -> Result<u32, StoreError> {
    Ok(u32::try_from(int(v)?).unwrap_or(u32::MAX))
}

impl Store for RedisStore {
    async fn relay_id(&self) -> Result<String, StoreError> {
        Ok(self.inner.relay_id.clone())
    }

    async fn register_or_authenticate(
        &self,
        user: &UserId,
        key: &PublicKeyBytes,
    ) -> Result<AuthOutcome, StoreError> {
        let u = user.as_str();
        let r: Vec<Value> = self
            .inner
            .scripts
            .auth
            .key(user_key(u))
            .key(opk_key(u))
            .key(mbox_key(u))
            .key(USERS)
            .arg(key.0.as_slice())
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("auth"))?;
        match r.as_slice() {
            [code] if int(code)? == -1 => Ok(AuthOutcome::KeyMismatch),
            [registered, opks, has, last] => Ok(AuthOutcome::Ok {
                registered: int(registered)? == 1,
                one_time_prekeys: count(opks)?,
                has_keys: int(has)? == 1,
                last_queued: u64::try_from(int(last)?).unwrap_or(0),
            }),
            _ => Err(corrupt("script reply")),
        }
    }

    async fn publish_keys(
        &self,
        user: &UserId,
        keys: PublishedKeys,
        one_time_prekeys: Vec<OneTimePrekey>,
        max_stored: usize,
    ) -> Result<PublishOutcome, StoreError> {
        let u = user.as_str();
        let mut inv = self.inner.scripts.publish_keys.prepare_invoke();
        inv.key(user_key(u))
            .key(opk_key(u))
            .arg(max_stored)
            .arg(encode_keys(&keys));
        for o in &one_time_prekeys {
            let mut member = Vec::with_capacity(36);
            member.extend_from_slice(&o.id.to_be_bytes());
            member.extend_from_slice(&o.key.0);
            inv.arg(o.id).arg(member);
        }
        let r: Vec<i64> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("publish keys"))?;
        match r.as_slice() {
            [-1] => Ok(PublishOutcome::UnknownUser),
            [0, would] => Ok(PublishOutcome::TooManyPrekeys {
                would_store: usize::try_from(*would).unwrap_or(usize::MAX),
                max: max_stored,
            }),
            [1, n] => Ok(PublishOutcome::Published {
                one_time_prekeys: u32::try_from(*n).unwrap_or(u32::MAX),
            }),
            _ => Err(corrupt("script reply")),
        }
    }

    async fn fetch_bundle(&self, user: &UserId) -> Result<Option<FetchedBundle>, StoreError> {
        let u = user.as_str();
        let r: Vec<Value> = self
            .inner
            .scripts
            .fetch_bundle
            .key(user_key(u))
            .key(opk_key(u))
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("fetch bundle"))?;
        let [
            Value::BulkString(ik),
            Value::BulkString(keys),
            Value::BulkString(opk),
            left,
        ] = r.as_slice()
        else {
            return if r.is_empty() {
                Ok(None)
            } else {
                Err(corrupt("script reply"))
            };
        };
        let one_time_prekey = if opk.is_empty() {
            None
        } else {
            if opk.len() != 36 {
                return Err(corrupt("one_time_prekeys"));
            }
            Some(OneTimePrekey {
                id: u32::from_be_bytes(arr(&opk[..4], "one_time_prekeys")?),
                key: PublicKeyBytes(arr(&opk[4..], "one_time_prekeys")?),
            })
        };
        Ok(Some(FetchedBundle {
            identity_key: PublicKeyBytes(arr(ik, "users")?),
            keys: decode_keys(keys)?,
            one_time_prekey,
            remaining: count(left)?,
        }))
    }

    async fn lookup_identity(
        &self,
        user: &UserId,
    ) -> Result<Option<(PublicKeyBytes, PublishedKeys)>, StoreError> {
        let (ik, keys): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::cmd("HMGET")
            .arg(user_key(user.as_str()))
            .arg("ik")
            .arg("keys")
            .query_async(&mut self.conn())
            .await
            .map_err(be("lookup"))?;
        match (ik, keys) {
            (Some(ik), Some(keys)) => Ok(Some((
                PublicKeyBytes(arr(&ik, "users")?),
                decode_keys(&keys)?,
            ))),
            _ => Ok(None),
        }
    }

    async fn user_exists(&self, user: &UserId) -> Result<bool, StoreError> {
        self.conn()
            .exists(user_key(user.as_str()))
            .await
            .map_err(be("user exists"))
    }

    fn append(
        &self,
        to: &UserId,
        envelope: NewEnvelope,
        limits: MailboxLimits,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send + 'static {
        let job_tail = envelope_tail(&envelope);
        // Queued now, in call order (see `append_pump`).
        let (reply, answer) = oneshot::channel();
        let queued = self
            .inner
            .appends
            .send(AppendJob {
                user: to.as_str().to_owned(),
                limits,
                body_len: envelope.body.len(),
                tail: job_tail,
                reply,
            })
            .map_err(|_| StoreError::Closed);
        async move {
            queued?;
            match answer.await.map_err(|_| StoreError::Closed)?? {
                0 => Ok(AppendOutcome::UnknownUser),
                -1 => Ok(AppendOutcome::MailboxFull),
                id => Ok(AppendOutcome::Appended(StoredEnvelope {
                    id: u64::try_from(id).map_err(|_| corrupt("script reply"))?,
                    from: envelope.from,
                    accepted_at: envelope.accepted_at,
                    body: envelope.body,
                })),
            }
        }
    }

    async fn mailbox_after(
        &self,
        user: &UserId,
        after_id: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let members: Vec<Vec<u8>> = redis::cmd("ZRANGEBYSCORE")
            .arg(mbox_key(user.as_str()))
            .arg(format!("({after_id}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(be("mailbox read"))?;
        members
            .iter()
            .map(|m| decode_member(m))
            .filter(|e| e.as_ref().map_or(true, |e| e.id > after_id))
            .collect()
    }

    async fn ack(&self, user: &UserId, ids: Vec<u64>) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let u = user.as_str();
        let mut inv = self.inner.scripts.ack.prepare_invoke();
        inv.key(user_key(u)).key(mbox_key(u)).key(NONEMPTY).arg(u);
        for id in ids {
            inv.arg(id);
        }
        inv.invoke_async(&mut self.conn()).await.map_err(be("ack"))
    }

    async fn reset_user(&self, user: &UserId) -> Result<bool, StoreError> {
        let u = user.as_str();
        let existed: i64 = self
            .inner
            .scripts
            .reset_user
            .key(user_key(u))
            .key(opk_key(u))
            .key(mbox_key(u))
            .key(NONEMPTY)
            .key(USERS)
            .key(presence_key(u))
            .key(epoch_key(u))
            .key(pallow_key(u))
            .arg(u)
            .arg(NODE_CHANNEL)
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("reset user"))?;
        Ok(existed == 1)
    }

    async fn sweep_expired(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let mut cursor = 0u64;
        let mut removed = 0u64;
        loop {
            let (next, users): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(NONEMPTY)
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(be("sweep"))?;
            for chunk in users.chunks(SWEEP_CHUNK) {
                let mut inv = self.inner.scripts.sweep.prepare_invoke();
                inv.key(NONEMPTY).arg(cutoff_ms);
                for u in chunk {
                    inv.key(user_key(u)).key(mbox_key(u)).arg(u);
                }
                let n: u64 = inv.invoke_async(&mut conn).await.map_err(be("sweep"))?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut conn = self.conn();
        let users: Option<u64> = conn.get(USERS).await.map_err(be("stats"))?;
        let mut s = StoreStats {
            users: users.unwrap_or(0),
            ..StoreStats::default()
        };
        let names: Vec<String> = conn.smembers(NONEMPTY).await.map_err(be("stats"))?;
        for u in names {
            let n: u64 = conn.zcard(mbox_key(&u)).await.map_err(be("stats"))?;
            let b: Option<u64> = conn.hget(user_key(&u), "b").await.map_err(be("stats"))?;
            s.envelopes += n;
            s.envelope_bytes += b.unwrap_or(0);
            s.census.add(n, b.unwrap_or(0));
        }
        Ok(s)
    }

    async fn set_presence_allow(
        &self,
        user: &UserId,
        allowed: Vec<UserId>,
    ) -> Result<(), StoreError> {
        let u = user.as_str();
        let mut inv = self.inner.scripts.presence_allow.prepare_invoke();
        inv.key(user_key(u)).key(pallow_key(u));
        for a in &allowed {
            inv.arg(a.as_str());
        }
        let _: i64 = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("presence allow"))?;
        Ok(())
    }

    async fn presence_allow_list(&self, user: &UserId) -> Result<Vec<UserId>, StoreError> {
        let members: Vec<String> = self
            .conn()
            .smembers(pallow_key(user.as_str()))
            .await
            .map_err(be("presence allow list"))?;
        let mut out = members
            .into_iter()
            .map(|m| UserId::try_from(m).map_err(|_| corrupt("presence allow")))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        Ok(out)
    }

    async fn set_last_seen(&self, user: &UserId, at_ms: u64) -> Result<(), StoreError> {
        let _: i64 = self
            .inner
            .scripts
            .last_seen
            .key(user_key(user.as_str()))
            .arg(at_ms)
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("last seen"))?;
        Ok(())
    }

    async fn presence_view(
        &self,
        asker: &UserId,
        subjects: &[UserId],
    ) -> Result<Vec<Visibility>, StoreError> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for s in subjects {
            pipe.sismember(pallow_key(s.as_str()), asker.as_str())
                .hget(user_key(s.as_str()), "ls");
        }
        let values: Vec<Value> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(be("presence view"))?;
        if values.len() != 2 * subjects.len() {
            return Err(corrupt("presence view reply"));
        }
        let mut values = values.into_iter();
        let mut out = Vec::with_capacity(subjects.len());
        for s in subjects {
            let (Some(member), Some(seen)) = (values.next(), values.next()) else {
                return Err(corrupt("presence view reply"));
            };
            let allowed = int(&member)? == 1 || s == asker;
            out.push(if allowed {
                Some(last_seen_value(seen)?)
            } else {
                None
            });
        }
        Ok(out)
    }

    async fn presence_watchers(
        &self,
        subject: &UserId,
        askers: &[UserId],
    ) -> Result<(Vec<bool>, Option<u64>), StoreError> {
        let s = subject.as_str();
        let mut pipe = redis::pipe();
        pipe.hget(user_key(s), "ls");
        for a in askers {
            pipe.sismember(pallow_key(s), a.as_str());
        }
        let values: Vec<Value> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(be("presence watchers"))?;
        let mut values = values.into_iter();
        let seen = last_seen_value(values.next().ok_or_else(|| corrupt("presence reply"))?)?;
        let allowed = askers
            .iter()
            .map(|a| {
                let v = values.next().ok_or_else(|| corrupt("presence reply"))?;
                Ok(a == subject || int(&v)? == 1)
            })
            .collect::<Result<Vec<bool>, StoreError>>()?;
        Ok((allowed, seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_credentials_only() {
        assert_eq!(
            redact("redis://:pw@10.0.0.5:6379/2"),
            "redis://***@10.0.0.5:6379/2"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("nonsense"), "<invalid URL>");
    }

    #[test]
    fn member_round_trip_and_truncation() {
        let e = NewEnvelope {
            from: UserId::try_from("alice").unwrap(),
            accepted_at: 42,
            body: Body(vec![9; 10]),
        };
        let mut m = 3u64.to_be_bytes().to_vec();
        m.extend_from_slice(&envelope_tail(&e));
        let d = decode_member(&m).unwrap();
        assert_eq!((d.id, d.accepted_at, d.from.as_str()), (3, 42, "alice"));
        assert_eq!(d.body.0, vec![9; 10]);
        for cut in 0..22 {
            assert!(decode_member(&m[..cut]).is_err(), "cut at {cut}");
        }
    }
}
