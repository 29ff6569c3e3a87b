//! Cross-relay notification: what this relay tells the other relays of a
//! cluster, and what it learns from them ([`BusEvents`]). Routing and
//! presence talk to a [`Bus`] only, never to a store: [`LocalBus`] is a
//! single relay (nothing to tell anyone), [`RedisBus`] several relays on one
//! Redis (pub/sub, the presence table and its refresh).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use hush_protocol::UserId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::{StoreError, StoredEnvelope};

mod local;
mod redis;

pub(crate) use local::LocalBus;
pub(crate) use redis::RedisBus;

/// This relay's link to the others.
pub(crate) trait Bus: Send + Sync + 'static {
    /// Claims `user` for a new connection here; returns its epoch, the
    /// cluster-wide order of the user's connections (0 for a single relay).
    fn claim<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Forgets the presence of a closed connection, if still ours (a
    /// failure is logged: the entry expires by itself).
    fn release<'a>(&'a self, user: &'a UserId, epoch: u64) -> BoxFuture<'a, ()>;

    /// Which of `users` are online on some relay of the cluster; `None` for
    /// a single relay (its sessions are the whole truth).
    fn online<'a>(
        &'a self,
        users: &'a [UserId],
    ) -> BoxFuture<'a, Option<Result<Vec<bool>, StoreError>>>;

    /// Tells the other relays that `user`'s presence or allow list changed
    /// (a failure is logged; the other relays' periodic re-check covers
    /// online state).
    fn announce_presence<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, ()>;

    /// Hands `frame` to the relay holding `user`, if another one does (in
    /// the background; best effort, like every push of a frame).
    fn forward(&self, user: &UserId, frame: String);

    /// Starts listening to the other relays on behalf of `events`, in tasks
    /// of `tasks` that end when `stop` is cancelled.
    fn spawn(&self, events: Arc<dyn BusEvents>, stop: CancellationToken, tasks: &TaskTracker);
}

/// What the bus asks of this relay (implemented by the hub).
pub(crate) trait BusEvents: Send + Sync + 'static {
    /// An envelope was committed for `user` by another relay.
    fn new_mail(&self, user: &UserId, env: StoredEnvelope);
    /// `user` connected elsewhere with `epoch`: close older connections.
    fn replaced(&self, user: &UserId, epoch: u64);
    /// Push a frame to `user` if connected here.
    fn push(&self, user: &UserId, frame: String);
    /// Re-read every session's mailbox (notifications may have been lost).
    fn resync_all(&self);
    /// Re-read `user`'s mailbox if connected here.
    fn resync(&self, user: &UserId);
    /// (user, epoch) of every live session.
    fn live(&self) -> Vec<(UserId, u64)>;
    /// `user`'s presence or allow list changed (on any relay).
    fn presence_changed(&self, user: &UserId);
    /// Re-read the presence of subscribed subjects: all of them (`all`,
    /// after messages may have been lost) or those shown online (entries
    /// may have expired).
    fn presence_recheck(&self, all: bool);
}
