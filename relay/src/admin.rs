//! Operator commands that work on a stopped relay's data directory.

use std::path::Path;

use hush_protocol::UserId;

use crate::store::redb_store::DB_FILE;
use crate::store::{RedbStore, Store, StoreError};

/// Deletes `user` with its keys, mailbox and envelope counter, freeing the
/// id for registration by any key. Fails with [`StoreError::Locked`] while a
/// relay has the data directory open. Returns whether the user existed.
pub async fn reset_user(data_dir: &Path, user: &UserId) -> Result<bool, StoreError> {
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
    store.reset_user(user).await
}
