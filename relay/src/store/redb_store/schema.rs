//! redb's tables and the small reads every concern shares.
//!
//! Tables (integers big-endian; values encoded by [`crate::store::codec`]):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | `&str` | `&str` (`relay_id`) |
//! | `users` | user id | [`UserRec`]: `identity_key[32] \|\| last_id u64 \|\| count u64 \|\| bytes u64` |
//! | `keys` | user id | published keys: `identity_dh[32] \|\| identity_dh_sig[64] \|\| spk_id u32 \|\| spk[32] \|\| spk_sig[64]` |
//! | `one_time_prekeys` | (user id, id u32) | `key[32]` |
//! | `mailbox` | (user id, envelope id u64) | envelope tail: `accepted_at u64 \|\| len(from) u8 \|\| from \|\| body` |
//! | `presence_allow` | (user id, allowed user id) | `()`: who may see the user's presence |
//! | `last_seen` | user id | `u64` Unix ms of the user's last disconnect |
//! | `device_lists` | user id | the account's signed device list, as its protocol JSON (created by the first list stored) |
//!
//! A device N ≥ 2 of an account is a row of `users`, `keys`,
//! `one_time_prekeys` and `mailbox` under the key `user/N`
//! (`UserId::device_address`), laid out exactly like a user's.

use std::fmt;

use redb::{ReadableTable, Table, TableDefinition};

use crate::store::StoreError;
use crate::store::codec::UserRec;

pub(super) const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
pub(super) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
pub(super) const OPKS: TableDefinition<(&str, u32), &[u8]> =
    TableDefinition::new("one_time_prekeys");
pub(super) const MAILBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("mailbox");
pub(super) const PRESENCE_ALLOW: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("presence_allow");
pub(super) const LAST_SEEN: TableDefinition<&str, u64> = TableDefinition::new("last_seen");
pub(super) const DEVICE_LISTS: TableDefinition<&str, &[u8]> = TableDefinition::new("device_lists");

/// The `users` table, open in a write transaction.
pub(super) type UsersTable<'t> = Table<'t, &'static str, &'static [u8]>;
/// The `mailbox` table, open in a write transaction.
pub(super) type MailboxTable<'t> = Table<'t, (&'static str, u64), &'static [u8]>;

/// Maps a redb error to [`StoreError::Backend`] during `op`.
pub(super) fn be<E: fmt::Display>(op: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Backend {
        op,
        detail: e.to_string(),
    }
}

/// `user`'s record, `None` if unknown.
pub(super) fn get_user<T: ReadableTable<&'static str, &'static [u8]>>(
    users: &T,
    user: &str,
) -> Result<Option<UserRec>, StoreError> {
    match users.get(user).map_err(be("read user"))? {
        Some(v) => UserRec::decode(v.value()).map(Some),
        None => Ok(None),
    }
}

/// How many one-time prekeys `user` has stored.
pub(super) fn opk_count<T: ReadableTable<(&'static str, u32), &'static [u8]>>(
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
pub(super) fn newest_queued<T: ReadableTable<(&'static str, u64), &'static [u8]>>(
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
