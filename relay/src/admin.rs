//! Operator commands (`hush-relay admin ...`) on a relay's store: a stopped
//! relay's data directory (redb allows one process at a time, so these fail
//! with [`StoreError::Locked`] while a relay runs on it), or a cluster's
//! Redis (safe while relays run: every operation is one atomic script or a
//! read).

use std::path::Path;

use hush_protocol::UserId;

use crate::store::redb_store::DB_FILE;
use crate::store::{RedbStore, RedisStore, Store, StoreError, StoreStats};

/// Where an admin command works.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A stopped relay's data directory.
    DataDir(&'a Path),
    /// A cluster's Redis URL.
    Redis(&'a str),
}

/// An opened store of either kind.
#[derive(Debug)]
enum Opened {
    Redb(RedbStore),
    Redis(RedisStore),
}

async fn open(target: Target<'_>) -> Result<Opened, StoreError> {
    match target {
        Target::Redis(url) => Ok(Opened::Redis(RedisStore::connect(url).await?)),
        Target::DataDir(data_dir) => {
            let path = data_dir.join(DB_FILE);
            if !path.exists() {
                return Err(StoreError::Missing {
                    path: path.display().to_string(),
                });
            }
            let dir = data_dir.to_owned();
            let store = tokio::task::spawn_blocking(move || RedbStore::open(&dir))
                .await
                .map_err(|e| StoreError::Backend {
                    op: "open",
                    detail: e.to_string(),
                })??;
            Ok(Opened::Redb(store))
        }
    }
}

/// Deletes `user` with its keys, mailbox and envelope counter, its device
/// list and the records of the devices it lists, freeing the id for
/// registration by any key. Returns whether the user existed.
pub async fn reset_user_at(target: Target<'_>, user: &UserId) -> Result<bool, StoreError> {
    match open(target).await? {
        Opened::Redb(s) => reset_account(&s, user).await,
        Opened::Redis(s) => reset_account(&s, user).await,
    }
}

/// Resets the devices N ≥ 2 of `user`'s list (their `user/N` records),
/// then the account itself (device 1, the list).
async fn reset_account<S: Store>(s: &S, user: &UserId) -> Result<bool, StoreError> {
    if let Some(list) = s.device_list(user).await? {
        for d in list.devices.iter().filter(|d| d.id != 1) {
            s.reset_user(&user.device_address(d.id)).await?;
        }
    }
    s.reset_user(user).await
}

/// [`reset_user_at`] on a data directory.
pub async fn reset_user(data_dir: &Path, user: &UserId) -> Result<bool, StoreError> {
    reset_user_at(Target::DataDir(data_dir), user).await
}

/// Registered users, queued envelopes and their body bytes.
pub async fn stats(target: Target<'_>) -> Result<StoreStats, StoreError> {
    match open(target).await? {
        Opened::Redb(s) => s.stats().await,
        Opened::Redis(s) => s.stats().await,
    }
}

/// Deletes every envelope accepted more than `retention` ago, as the
/// relay's periodic sweep does. Returns how many were deleted.
pub async fn purge_expired(
    target: Target<'_>,
    retention: std::time::Duration,
) -> Result<u64, StoreError> {
    let now = crate::clock::Clock::system().now_ms();
    let cutoff = now.saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
    match open(target).await? {
        Opened::Redb(s) => s.sweep_expired(cutoff).await,
        Opened::Redis(s) => s.sweep_expired(cutoff).await,
    }
}
