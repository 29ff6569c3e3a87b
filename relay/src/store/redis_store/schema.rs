//! The Redis key layout, the scripts, and the reply and error helpers every
//! concern shares.

use std::time::Duration;

use redis::{Script, Value};

use crate::store::StoreError;

/// Prefix of every key and channel.
pub(crate) const PREFIX: &str = "hush:";
/// Prefix of the per-relay-process pub/sub channels.
pub(crate) const NODE_CHANNEL: &str = "hush:node:";
/// Broadcast channel of presence changes (payload: the user id).
pub(crate) const PRESENCE_CHANNEL: &str = "hush:presence";
/// Set of the users whose mailbox is not empty.
pub(super) const NONEMPTY: &str = "hush:nonempty";
/// Number of registered users.
pub(super) const USERS: &str = "hush:users";
/// The cluster's relay id.
pub(super) const RELAY_ID: &str = "hush:relay_id";

fn key(kind: &str, user: &str) -> String {
    format!("{PREFIX}{kind}:{user}")
}
/// `hush:u:{u}`: the user's hash.
pub(super) fn user_key(u: &str) -> String {
    key("u", u)
}
/// `hush:opk:{u}`: the user's one-time prekeys.
pub(super) fn opk_key(u: &str) -> String {
    key("opk", u)
}
/// `hush:mbox:{u}`: the user's mailbox.
pub(super) fn mbox_key(u: &str) -> String {
    key("mbox", u)
}
/// `hush:presence:{u}`: the relay holding the user's live connection.
pub(crate) fn presence_key(u: &str) -> String {
    key("presence", u)
}
/// `hush:epoch:{u}`: the user's connection counter.
pub(crate) fn epoch_key(u: &str) -> String {
    key("epoch", u)
}
/// `hush:pallow:{u}`: who may see the user's presence.
pub(super) fn pallow_key(u: &str) -> String {
    key("pallow", u)
}

/// `hush:devices:{u}`: the account's signed device list. A device N ≥ 2
/// has the keys of a user under its address `{u}/N` (`hush:u:{u}/N`,
/// `hush:mbox:{u}/N`, ...), device 1 the account's own.
pub(super) fn devices_key(u: &str) -> String {
    key("devices", u)
}

/// The scripts, loaded lazily by EVALSHA (re-sent on NOSCRIPT). `append.lua`
/// is the append pump's own ([`super::writer`]).
pub(super) struct Scripts {
    pub(super) auth: Script,
    pub(super) publish_keys: Script,
    pub(super) fetch_bundle: Script,
    pub(super) ack: Script,
    pub(super) sweep: Script,
    pub(super) reset_user: Script,
    pub(super) claim: Script,
    pub(super) release: Script,
    pub(super) refresh: Script,
    pub(super) forward: Script,
    pub(super) presence_allow: Script,
    pub(super) last_seen: Script,
    pub(super) put_device_list: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            auth: Script::new(include_str!("../lua/auth.lua")),
            publish_keys: Script::new(include_str!("../lua/publish_keys.lua")),
            fetch_bundle: Script::new(include_str!("../lua/fetch_bundle.lua")),
            ack: Script::new(include_str!("../lua/ack.lua")),
            sweep: Script::new(include_str!("../lua/sweep.lua")),
            reset_user: Script::new(include_str!("../lua/reset_user.lua")),
            claim: Script::new(include_str!("../lua/claim.lua")),
            release: Script::new(include_str!("../lua/release.lua")),
            refresh: Script::new(include_str!("../lua/refresh.lua")),
            forward: Script::new(include_str!("../lua/forward.lua")),
            presence_allow: Script::new(include_str!("../lua/presence_allow.lua")),
            last_seen: Script::new(include_str!("../lua/last_seen.lua")),
            put_device_list: Script::new(include_str!("../lua/put_device_list.lua")),
        }
    }
}

/// Maps a Redis error to [`StoreError::Backend`] during `op`, counting it.
pub(super) fn be(op: &'static str) -> impl Fn(redis::RedisError) -> StoreError {
    move |e| {
        crate::metrics::redis_error(op);
        StoreError::Backend {
            op,
            detail: e.to_string(),
        }
    }
}

pub(super) fn corrupt(table: &'static str) -> StoreError {
    StoreError::Corrupt { table }
}

/// An integer reply, else a corrupt script reply.
pub(super) fn int(v: &Value) -> Result<i64, StoreError> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(corrupt("script reply")),
    }
}

/// A count reply, saturated to `u32`.
pub(super) fn count(v: &Value) -> Result<u32, StoreError> {
    Ok(u32::try_from(int(v)?).unwrap_or(u32::MAX))
}

/// A `ls` field as stored by `last_seen.lua`; anything else is corrupt.
pub(super) fn last_seen_value(v: Value) -> Result<Option<u64>, StoreError> {
    match v {
        Value::Nil => Ok(None),
        v => redis::from_redis_value::<u64>(v)
            .map(Some)
            .map_err(|_| corrupt("last seen")),
    }
}

/// A TTL in whole milliseconds, at least 1.
pub(super) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
