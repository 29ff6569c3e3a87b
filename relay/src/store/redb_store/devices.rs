//! Device lists in redb: one record per account in the `device_lists`
//! table (created by the first write; a database without it has no lists),
//! replaced only by a newer version, inside one write transaction.

use hush_protocol::devices::SignedDeviceList;
use hush_protocol::{PublicKeyBytes, UserId};
use redb::{ReadTransaction, ReadableTable as _, TableError};

use super::RedbStore;
use super::schema::{DEVICE_LISTS, USERS, be, get_user};
use crate::store::codec::{decode_device_list, encode_device_list};
use crate::store::{DeviceListOutcome, StoreError};

pub(super) async fn identity_key(
    store: &RedbStore,
    user: &UserId,
) -> Result<Option<PublicKeyBytes>, StoreError> {
    let name = user.as_str().to_owned();
    store
        .read("identity key", move |txn| {
            let users = txn.open_table(USERS).map_err(be("identity key"))?;
            Ok(get_user(&users, &name)?.map(|rec| PublicKeyBytes(rec.identity_key)))
        })
        .await
}

fn read_list(txn: &ReadTransaction, user: &str) -> Result<Option<SignedDeviceList>, StoreError> {
    let table = match txn.open_table(DEVICE_LISTS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(be("device list")(e)),
    };
    match table.get(user).map_err(be("device list"))? {
        Some(v) => decode_device_list(v.value()).map(Some),
        None => Ok(None),
    }
}

pub(super) async fn device_list(
    store: &RedbStore,
    user: &UserId,
) -> Result<Option<SignedDeviceList>, StoreError> {
    let name = user.as_str().to_owned();
    store
        .read("device list", move |txn| read_list(txn, &name))
        .await
}

pub(super) async fn put_device_list(
    store: &RedbStore,
    user: &UserId,
    list: SignedDeviceList,
) -> Result<DeviceListOutcome, StoreError> {
    let name = user.as_str().to_owned();
    store
        .write("put device list", move |txn| {
            let op = "put device list";
            let mut table = txn.open_table(DEVICE_LISTS).map_err(be(op))?;
            let current = match table.get(name.as_str()).map_err(be(op))? {
                Some(v) => Some(decode_device_list(v.value())?),
                None => None,
            };
            if let Some(current) = current
                && current.version >= list.version
            {
                return Ok(DeviceListOutcome::Stale(current));
            }
            table
                .insert(name.as_str(), encode_device_list(&list).as_slice())
                .map_err(be(op))?;
            Ok(DeviceListOutcome::Stored)
        })
        .await
}

/// Deletes `user`'s device list (with the user, by `reset_user`).
pub(super) fn remove_list(txn: &redb::WriteTransaction, user: &str) -> Result<(), StoreError> {
    let mut table = txn.open_table(DEVICE_LISTS).map_err(be("reset user"))?;
    table.remove(user).map_err(be("reset user"))?;
    Ok(())
}
