//! The key directory, as the connections use it: registration and
//! authentication of identity keys, published prekeys, bundles and
//! identity lookups. A thin service over the [`Store`], so that connection
//! code never holds the store itself.

use std::future::Future;
use std::sync::Arc;

use hush_protocol::frame::OneTimePrekey;
use hush_protocol::{PublicKeyBytes, UserId};

use crate::store::{AuthOutcome, FetchedBundle, PublishOutcome, PublishedKeys, Store, StoreError};

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

    /// `user`'s identity key and published keys (no one-time prekey).
    pub(crate) fn lookup_identity(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<(PublicKeyBytes, PublishedKeys)>, StoreError>> + Send
    {
        self.store.lookup_identity(user)
    }
}
