//! Presence on Redis: who may see each user's presence (the set
//! `hush:pallow:{u}`) and each user's last disconnect (the `ls` field of
//! its hash).

use hush_protocol::UserId;
use redis::{AsyncCommands as _, Value};

use super::RedisStore;
use super::schema::{be, corrupt, int, last_seen_value, pallow_key, user_key};
use crate::store::{StoreError, Visibility};

pub(super) async fn set_presence_allow(
    store: &RedisStore,
    user: &UserId,
    allowed: Vec<UserId>,
) -> Result<(), StoreError> {
    let u = user.as_str();
    let mut inv = store.scripts().presence_allow.prepare_invoke();
    inv.key(user_key(u)).key(pallow_key(u));
    for a in &allowed {
        inv.arg(a.as_str());
    }
    let _: i64 = inv
        .invoke_async(&mut store.conn())
        .await
        .map_err(be("presence allow"))?;
    Ok(())
}

pub(super) async fn presence_allow_list(
    store: &RedisStore,
    user: &UserId,
) -> Result<Vec<UserId>, StoreError> {
    let members: Vec<String> = store
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

pub(super) async fn set_last_seen(
    store: &RedisStore,
    user: &UserId,
    at_ms: u64,
) -> Result<(), StoreError> {
    let _: i64 = store
        .scripts()
        .last_seen
        .key(user_key(user.as_str()))
        .arg(at_ms)
        .invoke_async(&mut store.conn())
        .await
        .map_err(be("last seen"))?;
    Ok(())
}

pub(super) async fn presence_view(
    store: &RedisStore,
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
        .query_async(&mut store.conn())
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

pub(super) async fn presence_watchers(
    store: &RedisStore,
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
        .query_async(&mut store.conn())
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
