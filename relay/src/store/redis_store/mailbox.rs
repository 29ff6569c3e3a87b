//! Mailboxes on Redis: append (queued to the append pump, see
//! [`super::writer`]), reads in id order, acknowledgements, the retention
//! sweep and the counts for monitoring.

use std::future::Future;

use hush_protocol::UserId;
use redis::AsyncCommands as _;
use tokio::sync::oneshot;

use super::RedisStore;
use super::schema::{NONEMPTY, USERS, be, corrupt, mbox_key, user_key};
use super::writer::AppendJob;
use crate::store::codec::{decode_member, encode_envelope_tail};
use crate::store::{
    AppendOutcome, MailboxLimits, NewEnvelope, StoreError, StoreStats, StoredEnvelope,
};

/// Users per retention-sweep script call.
const SWEEP_CHUNK: usize = 100;

/// Not an `async fn`: the append is queued at call time, in call order
/// (see [`super::writer::append_pump`]).
pub(super) fn append(
    store: &RedisStore,
    to: &UserId,
    envelope: NewEnvelope,
    limits: MailboxLimits,
) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send + 'static {
    let job_tail = encode_envelope_tail(&envelope);
    let (reply, answer) = oneshot::channel();
    let queued = store
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

pub(super) async fn mailbox_after(
    store: &RedisStore,
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
        .query_async(&mut store.conn())
        .await
        .map_err(be("mailbox read"))?;
    members
        .iter()
        .map(|m| decode_member(m))
        .filter(|e| e.as_ref().map_or(true, |e| e.id > after_id))
        .collect()
}

pub(super) async fn ack(
    store: &RedisStore,
    user: &UserId,
    ids: Vec<u64>,
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let u = user.as_str();
    let mut inv = store.scripts().ack.prepare_invoke();
    inv.key(user_key(u)).key(mbox_key(u)).key(NONEMPTY).arg(u);
    for id in ids {
        inv.arg(id);
    }
    inv.invoke_async(&mut store.conn()).await.map_err(be("ack"))
}

pub(super) async fn sweep_expired(store: &RedisStore, cutoff_ms: u64) -> Result<u64, StoreError> {
    let mut conn = store.conn();
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
            let mut inv = store.scripts().sweep.prepare_invoke();
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

pub(super) async fn stats(store: &RedisStore) -> Result<StoreStats, StoreError> {
    let mut conn = store.conn();
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
