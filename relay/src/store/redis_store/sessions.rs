//! Which relay process holds each user's live connection (cluster mode):
//! claiming it for a new connection (newest wins), releasing and
//! refreshing it, forwarding to its holder, and the presence broadcast.
//! Used by [`crate::cluster`].

use std::time::Duration;

use hush_protocol::UserId;
use redis::AsyncCommands as _;

use super::RedisStore;
use super::schema::{NODE_CHANNEL, PRESENCE_CHANNEL, be, epoch_key, presence_key, ttl_ms};
use crate::store::StoreError;

/// What a presence refresh found for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refreshed {
    /// Still the user's newest; TTL renewed.
    Kept,
    /// A newer connection exists elsewhere.
    Superseded,
    /// The entry had expired (the relay could not refresh it in time) and
    /// was set again: new mail meanwhile was not announced.
    Recreated,
}

impl RedisStore {
    /// Claims the user's presence for a new connection on this relay and
    /// tells the previous holder to close its older one. Returns the
    /// connection's epoch.
    pub(crate) async fn claim(&self, user: &UserId, ttl: Duration) -> Result<u64, StoreError> {
        let u = user.as_str();
        self.scripts()
            .claim
            .key(presence_key(u))
            .key(epoch_key(u))
            .arg(&self.inner.node)
            .arg(ttl_ms(ttl))
            .arg(u)
            .arg(NODE_CHANNEL)
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("claim presence"))
    }

    /// Deletes the presence entry of a closed connection if still ours.
    pub(crate) async fn release(&self, user: &UserId, epoch: u64) -> Result<(), StoreError> {
        let _: i64 = self
            .scripts()
            .release
            .key(presence_key(user.as_str()))
            .arg(format!("{}:{epoch}", self.inner.node))
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("release presence"))?;
        Ok(())
    }

    /// Refreshes the presence of these (user, epoch) connections; returns
    /// what happened to each.
    pub(crate) async fn refresh(
        &self,
        live: &[(UserId, u64)],
        ttl: Duration,
    ) -> Result<Vec<Refreshed>, StoreError> {
        let mut out = Vec::with_capacity(live.len());
        for chunk in live.chunks(256) {
            let mut inv = self.scripts().refresh.prepare_invoke();
            inv.arg(&self.inner.node).arg(ttl_ms(ttl));
            for (u, epoch) in chunk {
                inv.key(presence_key(u.as_str()))
                    .key(epoch_key(u.as_str()))
                    .arg(*epoch);
            }
            let got: Vec<i64> = inv
                .invoke_async(&mut self.conn())
                .await
                .map_err(be("refresh presence"))?;
            out.extend(got.into_iter().map(|v| match v {
                0 => Refreshed::Superseded,
                2 => Refreshed::Recreated,
                _ => Refreshed::Kept,
            }));
        }
        Ok(out)
    }

    /// Publishes `message` to the relay holding `user`, if another one does.
    pub(crate) async fn forward(&self, user: &UserId, message: Vec<u8>) -> Result<(), StoreError> {
        let _: i64 = self
            .scripts()
            .forward
            .key(presence_key(user.as_str()))
            .arg(&self.inner.node)
            .arg(message)
            .arg(NODE_CHANNEL)
            .invoke_async(&mut self.conn())
            .await
            .map_err(be("forward"))?;
        Ok(())
    }

    /// Which of `users` have a live connection on some relay of the
    /// cluster (their presence entry exists).
    pub(crate) async fn online(&self, users: &[UserId]) -> Result<Vec<bool>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for u in users {
            pipe.exists(presence_key(u.as_str()));
        }
        pipe.query_async(&mut self.conn())
            .await
            .map_err(be("presence online"))
    }

    /// Tells every relay that `user`'s presence or allow list changed.
    pub(crate) async fn publish_presence(&self, user: &UserId) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .publish(PRESENCE_CHANNEL, user.as_str())
            .await
            .map_err(be("publish presence"))?;
        Ok(())
    }
}
