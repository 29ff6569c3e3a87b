//! Device lists on Redis: the hash `hush:devices:{u}` (`v`: the version as
//! 20 decimal digits, `list`: the list's JSON), replaced only by a newer
//! version in one script (`put_device_list.lua`), so two relays racing to
//! store lists for one account keep the newest.

use hush_protocol::devices::SignedDeviceList;
use hush_protocol::{PublicKeyBytes, UserId};
use redis::{AsyncCommands as _, Value};

use super::RedisStore;
use super::schema::{be, corrupt, devices_key, int, user_key};
use crate::store::codec::{arr, decode_device_list, encode_device_list};
use crate::store::{DeviceListOutcome, StoreError};

pub(super) async fn identity_key(
    store: &RedisStore,
    user: &UserId,
) -> Result<Option<PublicKeyBytes>, StoreError> {
    let ik: Option<Vec<u8>> = store
        .conn()
        .hget(user_key(user.as_str()), "ik")
        .await
        .map_err(be("identity key"))?;
    ik.map(|v| arr::<32>(&v, "users").map(PublicKeyBytes))
        .transpose()
}

pub(super) async fn device_list(
    store: &RedisStore,
    user: &UserId,
) -> Result<Option<SignedDeviceList>, StoreError> {
    let list: Option<Vec<u8>> = store
        .conn()
        .hget(devices_key(user.as_str()), "list")
        .await
        .map_err(be("device list"))?;
    list.map(|v| decode_device_list(&v)).transpose()
}

pub(super) async fn put_device_list(
    store: &RedisStore,
    user: &UserId,
    list: SignedDeviceList,
) -> Result<DeviceListOutcome, StoreError> {
    let r: Vec<Value> = store
        .scripts()
        .put_device_list
        .key(devices_key(user.as_str()))
        .arg(format!("{:020}", list.version))
        .arg(encode_device_list(&list))
        .invoke_async(&mut store.conn())
        .await
        .map_err(be("put device list"))?;
    match r.as_slice() {
        [stored] if int(stored)? == 1 => Ok(DeviceListOutcome::Stored),
        [_, Value::BulkString(current)] => {
            decode_device_list(current).map(DeviceListOutcome::Stale)
        }
        _ => Err(corrupt("script reply")),
    }
}

/// Deletes `user`'s device list (after `reset_user`).
pub(super) async fn remove_list(store: &RedisStore, user: &UserId) -> Result<(), StoreError> {
    let _: i64 = store
        .conn()
        .del(devices_key(user.as_str()))
        .await
        .map_err(be("reset user"))?;
    Ok(())
}
