//! A single relay's bus: there are no other relays, so nothing is told and
//! nothing is heard; the sessions of this relay are the whole truth.

use std::sync::Arc;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use hush_protocol::UserId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Bus, BusEvents};
use crate::store::StoreError;

/// The bus of a relay alone (memory or redb store).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LocalBus;

impl Bus for LocalBus {
    fn claim<'a>(&'a self, _: &'a UserId) -> BoxFuture<'a, Result<u64, StoreError>> {
        std::future::ready(Ok(0)).boxed()
    }

    fn release<'a>(&'a self, _: &'a UserId, _: u64) -> BoxFuture<'a, ()> {
        std::future::ready(()).boxed()
    }

    fn online<'a>(
        &'a self,
        _: &'a [UserId],
    ) -> BoxFuture<'a, Option<Result<Vec<bool>, StoreError>>> {
        std::future::ready(None).boxed()
    }

    fn announce_presence<'a>(&'a self, _: &'a UserId) -> BoxFuture<'a, ()> {
        std::future::ready(()).boxed()
    }

    fn forward(&self, _: &UserId, _: String) {}

    fn spawn(&self, _: Arc<dyn BusEvents>, _: CancellationToken, _: &TaskTracker) {}
}
