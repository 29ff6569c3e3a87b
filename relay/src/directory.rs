//! The key directory, as the connections use it: registration and
//! authentication of identity keys, published prekeys, bundles and
//! identity lookups. A thin service over the [`Store`], so that connection
//! code never holds the store itself.

use std::future::Future;
use std::sync::Arc;

use hush_protocol::devices::SignedDeviceList;
use hush_protocol::frame::OneTimePrekey;
use hush_protocol::{PublicKeyBytes, UserId};

use crate::store::{
    AuthOutcome, DeviceListOutcome, FetchedBundle, PublishOutcome, PublishedKeys, Store, StoreError,
};

/// Envelopes read per round when a removed device's mailbox is emptied.
const PURGE_BATCH: usize = 1000;

/// The directory service of one relay (cheap to clone).
pub(crate) struct Directory<S> {
    store: Arc<S>,
}

impl<S> Clone for Directory<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: Store> Directory<S> {
    /// The directory kept in `store`.
    pub(crate) fn new(store: Arc<S>) -> Self {
        Self { store }
    }

    /// Whether `user` is registered.
    pub(crate) fn user_exists(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.user_exists(user)
    }

    /// Registers `user` to `key` if unknown; otherwise checks the key.
    pub(crate) fn register_or_authenticate(
        &self,
        user: &UserId,
        key: &PublicKeyBytes,
    ) -> impl Future<Output = Result<AuthOutcome, StoreError>> + Send {
        self.store.register_or_authenticate(user, key)
    }

    /// Replaces `user`'s published keys and adds one-time prekeys, storing
    /// at most `max_stored` of them.
    pub(crate) fn publish_keys(
        &self,
        user: &UserId,
        keys: PublishedKeys,
        one_time_prekeys: Vec<OneTimePrekey>,
        max_stored: usize,
    ) -> impl Future<Output = Result<PublishOutcome, StoreError>> + Send {
        self.store
            .publish_keys(user, keys, one_time_prekeys, max_stored)
    }

    /// `user`'s bundle, taking one one-time prekey.
    pub(crate) fn fetch_bundle(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<FetchedBundle>, StoreError>> + Send {
        self.store.fetch_bundle(user)
    }

    /// The key `user` is registered to (its account key).
    pub(crate) fn identity_key(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<PublicKeyBytes>, StoreError>> + Send {
        self.store.identity_key(user)
    }

    /// `user`'s device list, `None` for a legacy account.
    pub(crate) fn device_list(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<SignedDeviceList>, StoreError>> + Send {
        self.store.device_list(user)
    }

    /// Stores `list` if it is newer than `user`'s stored one.
    pub(crate) fn put_device_list(
        &self,
        user: &UserId,
        list: SignedDeviceList,
    ) -> impl Future<Output = Result<DeviceListOutcome, StoreError>> + Send {
        self.store.put_device_list(user, list)
    }

    /// Makes `address` (a device N ≥ 2) registered to `key`: registered if
    /// new, re-registered (everything it held deleted) if it was another
    /// key's.
    pub(crate) async fn register_device(
        &self,
        address: &UserId,
        key: &PublicKeyBytes,
    ) -> Result<(), StoreError> {
        if let AuthOutcome::KeyMismatch = self.store.register_or_authenticate(address, key).await? {
            self.store.reset_user(address).await?;
            self.store.register_or_authenticate(address, key).await?;
        }
        Ok(())
    }

    /// Deletes every envelope of `address`'s mailbox (a removed device).
    pub(crate) async fn purge_mailbox(&self, address: &UserId) -> Result<(), StoreError> {
        loop {
            let batch = self.store.mailbox_after(address, 0, PURGE_BATCH).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let ids = batch.iter().map(|e| e.id).collect();
            self.store.ack(address, ids).await?;
        }
    }

    /// `user`'s identity key and published keys (no one-time prekey).
    pub(crate) fn lookup_identity(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<(PublicKeyBytes, PublishedKeys)>, StoreError>> + Send
    {
        self.store.lookup_identity(user)
    }
}
