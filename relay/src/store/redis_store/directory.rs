//! The directory on Redis: registration and authentication, published keys
//! and one-time prekeys, and deleting a user with everything it owns.

use hush_protocol::frame::OneTimePrekey;
use hush_protocol::{PublicKeyBytes, UserId};
use redis::{AsyncCommands as _, Value};

use super::RedisStore;
use super::schema::{
    NODE_CHANNEL, NONEMPTY, USERS, be, corrupt, count, epoch_key, int, mbox_key, opk_key,
    pallow_key, presence_key, user_key,
};
use crate::store::codec::{arr, decode_keys, decode_opk_member, encode_keys, encode_opk_member};
use crate::store::{AuthOutcome, FetchedBundle, PublishOutcome, PublishedKeys, StoreError};

pub(super) async fn register_or_authenticate(
    store: &RedisStore,
    user: &UserId,
    key: &PublicKeyBytes,
) -> Result<AuthOutcome, StoreError> {
    let u = user.as_str();
    let r: Vec<Value> = store
        .scripts()
        .auth
        .key(user_key(u))
        .key(opk_key(u))
        .key(mbox_key(u))
        .key(USERS)
        .arg(key.0.as_slice())
        .invoke_async(&mut store.conn())
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

pub(super) async fn publish_keys(
    store: &RedisStore,
    user: &UserId,
    keys: PublishedKeys,
    one_time_prekeys: Vec<OneTimePrekey>,
    max_stored: usize,
) -> Result<PublishOutcome, StoreError> {
    let u = user.as_str();
    let mut inv = store.scripts().publish_keys.prepare_invoke();
    inv.key(user_key(u))
        .key(opk_key(u))
        .arg(max_stored)
        .arg(encode_keys(&keys).as_slice());
    for o in &one_time_prekeys {
        inv.arg(o.id).arg(encode_opk_member(o).as_slice());
    }
    let r: Vec<i64> = inv
        .invoke_async(&mut store.conn())
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

pub(super) async fn fetch_bundle(
    store: &RedisStore,
    user: &UserId,
) -> Result<Option<FetchedBundle>, StoreError> {
    let u = user.as_str();
    let r: Vec<Value> = store
        .scripts()
        .fetch_bundle
        .key(user_key(u))
        .key(opk_key(u))
        .invoke_async(&mut store.conn())
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
        Some(decode_opk_member(opk)?)
    };
    Ok(Some(FetchedBundle {
        identity_key: PublicKeyBytes(arr(ik, "users")?),
        keys: decode_keys(keys)?,
        one_time_prekey,
        remaining: count(left)?,
    }))
}

pub(super) async fn lookup_identity(
    store: &RedisStore,
    user: &UserId,
) -> Result<Option<(PublicKeyBytes, PublishedKeys)>, StoreError> {
    let (ik, keys): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::cmd("HMGET")
        .arg(user_key(user.as_str()))
        .arg("ik")
        .arg("keys")
        .query_async(&mut store.conn())
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

pub(super) async fn user_exists(store: &RedisStore, user: &UserId) -> Result<bool, StoreError> {
    store
        .conn()
        .exists(user_key(user.as_str()))
        .await
        .map_err(be("user exists"))
}

pub(super) async fn reset_user(store: &RedisStore, user: &UserId) -> Result<bool, StoreError> {
    let u = user.as_str();
    let existed: i64 = store
        .scripts()
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
        .invoke_async(&mut store.conn())
        .await
        .map_err(be("reset user"))?;
    super::devices::remove_list(store, user).await?;
    Ok(existed == 1)
}
