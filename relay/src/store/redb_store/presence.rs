//! Presence in redb: who may see each user's presence (the allow list, one
//! `presence_allow` row per allowed user) and each user's last disconnect.

use hush_protocol::UserId;
use redb::{ReadableTable as _, WriteTransaction};

use super::RedbStore;
use super::schema::{LAST_SEEN, PRESENCE_ALLOW, USERS, be};
use crate::store::{StoreError, Visibility};

/// Deletes every `presence_allow` row of `user`.
pub(super) fn clear_allow_list(
    txn: &WriteTransaction,
    user: &str,
    op: &'static str,
) -> Result<(), StoreError> {
    let mut allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
    let mut old = Vec::new();
    for entry in allow.range((user, "")..).map_err(be(op))? {
        let (k, _) = entry.map_err(be(op))?;
        let (owner, allowed) = k.value();
        if owner != user {
            break;
        }
        old.push(allowed.to_owned());
    }
    for a in old {
        allow.remove((user, a.as_str())).map_err(be(op))?;
    }
    Ok(())
}

pub(super) async fn set_presence_allow(
    store: &RedbStore,
    user: &UserId,
    allowed: Vec<UserId>,
) -> Result<(), StoreError> {
    let name = user.as_str().to_owned();
    store
        .write("presence allow", move |txn| {
            let op = "presence allow";
            let users = txn.open_table(USERS).map_err(be(op))?;
            if users.get(name.as_str()).map_err(be(op))?.is_none() {
                return Ok(());
            }
            clear_allow_list(txn, &name, op)?;
            let mut allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
            for a in &allowed {
                allow
                    .insert((name.as_str(), a.as_str()), ())
                    .map_err(be(op))?;
            }
            Ok(())
        })
        .await
}

pub(super) async fn presence_allow_list(
    store: &RedbStore,
    user: &UserId,
) -> Result<Vec<UserId>, StoreError> {
    let name = user.as_str().to_owned();
    store
        .read("presence allow list", move |txn| {
            let op = "presence allow list";
            let allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
            let mut out = Vec::new();
            for entry in allow.range((name.as_str(), "")..).map_err(be(op))? {
                let (k, _) = entry.map_err(be(op))?;
                let (owner, allowed) = k.value();
                if owner != name {
                    break;
                }
                out.push(UserId::try_from(allowed).map_err(|_| StoreError::Corrupt {
                    table: "presence_allow",
                })?);
            }
            Ok(out)
        })
        .await
}

pub(super) async fn set_last_seen(
    store: &RedbStore,
    user: &UserId,
    at_ms: u64,
) -> Result<(), StoreError> {
    let name = user.as_str().to_owned();
    store
        .write("last seen", move |txn| {
            let op = "last seen";
            let users = txn.open_table(USERS).map_err(be(op))?;
            if users.get(name.as_str()).map_err(be(op))?.is_none() {
                return Ok(());
            }
            let mut last_seen = txn.open_table(LAST_SEEN).map_err(be(op))?;
            last_seen.insert(name.as_str(), at_ms).map_err(be(op))?;
            Ok(())
        })
        .await
}

pub(super) async fn presence_view(
    store: &RedbStore,
    asker: &UserId,
    subjects: &[UserId],
) -> Result<Vec<Visibility>, StoreError> {
    let asker = asker.as_str().to_owned();
    let subjects: Vec<String> = subjects.iter().map(|s| s.as_str().to_owned()).collect();
    store
        .read("presence view", move |txn| {
            let op = "presence view";
            let allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
            let last_seen = txn.open_table(LAST_SEEN).map_err(be(op))?;
            subjects
                .iter()
                .map(|s| {
                    let allowed = allow
                        .get((s.as_str(), asker.as_str()))
                        .map_err(be(op))?
                        .is_some();
                    if !(allowed || *s == asker) {
                        return Ok(None);
                    }
                    let seen = last_seen.get(s.as_str()).map_err(be(op))?;
                    Ok(Some(seen.map(|v| v.value())))
                })
                .collect()
        })
        .await
}

pub(super) async fn presence_watchers(
    store: &RedbStore,
    subject: &UserId,
    askers: &[UserId],
) -> Result<(Vec<bool>, Option<u64>), StoreError> {
    let subject = subject.as_str().to_owned();
    let askers: Vec<String> = askers.iter().map(|a| a.as_str().to_owned()).collect();
    store
        .read("presence watchers", move |txn| {
            let op = "presence watchers";
            let allow = txn.open_table(PRESENCE_ALLOW).map_err(be(op))?;
            let last_seen = txn.open_table(LAST_SEEN).map_err(be(op))?;
            let allowed = askers
                .iter()
                .map(|a| {
                    Ok(*a == subject
                        || allow
                            .get((subject.as_str(), a.as_str()))
                            .map_err(be(op))?
                            .is_some())
                })
                .collect::<Result<Vec<bool>, StoreError>>()?;
            let seen = last_seen
                .get(subject.as_str())
                .map_err(be(op))?
                .map(|v| v.value());
            Ok((allowed, seen))
        })
        .await
}
