//! The directory in redb: registration and authentication, published keys
//! and one-time prekeys, and deleting a user with everything it owns.

use std::collections::BTreeSet;

use hush_protocol::frame::OneTimePrekey;
use hush_protocol::{PublicKeyBytes, UserId};
use redb::{ReadableTable as _, WriteTransaction};

use super::RedbStore;
use super::presence::clear_allow_list;
use super::schema::{
    KEYS, LAST_SEEN, MAILBOX, OPKS, USERS, be, get_user, newest_queued, opk_count,
};
use crate::store::codec::{UserRec, decode_keys, decode_opk_key, encode_keys};
use crate::store::{AuthOutcome, FetchedBundle, PublishOutcome, PublishedKeys, StoreError};

pub(super) async fn register_or_authenticate(
    store: &RedbStore,
    user: &UserId,
    key: &PublicKeyBytes,
) -> Result<AuthOutcome, StoreError> {
    // Known users authenticate with a read; only registration writes.
    let name = user.as_str().to_owned();
    let key = key.0;
    let known = store
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
    store
        .write("register", move |txn| auth_write(txn, &name, key))
        .await
}

/// Registration, in the writer: the user may have been registered since
/// the read in [`register_or_authenticate`].
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

pub(super) async fn publish_keys(
    store: &RedbStore,
    user: &UserId,
    keys: PublishedKeys,
    one_time_prekeys: Vec<OneTimePrekey>,
    max_stored: usize,
) -> Result<PublishOutcome, StoreError> {
    let name = user.as_str().to_owned();
    store
        .write("publish keys", move |txn| {
            let op = "publish keys";
            let users = txn.open_table(USERS).map_err(be(op))?;
            if get_user(&users, &name)?.is_none() {
                return Ok(PublishOutcome::UnknownUser);
            }
            let mut opks = txn.open_table(OPKS).map_err(be(op))?;
            let existing = opk_count(&opks, &name)? as usize;
            let mut fresh = BTreeSet::new();
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

pub(super) async fn fetch_bundle(
    store: &RedbStore,
    user: &UserId,
) -> Result<Option<FetchedBundle>, StoreError> {
    let name = user.as_str().to_owned();
    store
        .write("fetch bundle", move |txn| {
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
                        Some(OneTimePrekey {
                            id: k.value().1,
                            key: decode_opk_key(v.value())?,
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

pub(super) async fn lookup_identity(
    store: &RedbStore,
    user: &UserId,
) -> Result<Option<(PublicKeyBytes, PublishedKeys)>, StoreError> {
    let name = user.as_str().to_owned();
    store
        .read("lookup", move |txn| {
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

pub(super) async fn user_exists(store: &RedbStore, user: &UserId) -> Result<bool, StoreError> {
    let name = user.as_str().to_owned();
    store
        .read("user exists", move |txn| {
            let users = txn.open_table(USERS).map_err(be("user exists"))?;
            Ok(users
                .get(name.as_str())
                .map_err(be("user exists"))?
                .is_some())
        })
        .await
}

pub(super) async fn reset_user(store: &RedbStore, user: &UserId) -> Result<bool, StoreError> {
    let name = user.as_str().to_owned();
    store
        .write("reset user", move |txn| {
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
            super::devices::remove_list(txn, &name)?;
            Ok(existed)
        })
        .await
}
