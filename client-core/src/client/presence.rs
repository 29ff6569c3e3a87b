//! Presence: the allow list (kept in the profile, published on every
//! connection), queries, and subscriptions renewed on every connection
//! whose snapshot arrives as events.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use hush_protocol::frame::{PresenceAllow, PresenceEntry, PresenceQuery, PresenceSubscribe};
use hush_protocol::{ClientFrame, ServerFrame, UserId};
use tracing::warn;

use super::config::check_presence_request;
use super::handle::Client;
use super::link::Link;
use super::state::with_engine;
use super::supervisor::Supervisor;
use crate::error::ClientError;
use crate::events::Event;

impl Client {
    /// The users allowed to see our presence, as stored in the profile.
    pub async fn presence_allowed(&self) -> Result<Vec<UserId>, ClientError> {
        self.with_engine(|e| e.profile().presence_allowed()).await
    }

    /// Replaces the presence allow list: stored in the profile, then
    /// published to the relay (and again on every connection). Duplicates
    /// and our own id are dropped; more than
    /// [`MAX_PRESENCE_ALLOW`](crate::limits::MAX_PRESENCE_ALLOW) ids is
    /// [`ClientError::LimitExceeded`] and changes nothing.
    pub async fn set_presence_allowed(&self, users: Vec<UserId>) -> Result<(), ClientError> {
        self.change_presence_allowed(move |list| *list = users)
            .await
            .map(|_| ())
    }

    /// Adds `user` to the presence allow list and publishes it; returns
    /// whether the list changed.
    pub async fn allow_presence(&self, user: &UserId) -> Result<bool, ClientError> {
        let user = user.clone();
        self.change_presence_allowed(move |list| list.push(user))
            .await
    }

    /// Removes `user` from the presence allow list and publishes it;
    /// returns whether the list changed. From then on `user` sees us as
    /// they see a user who never allowed them.
    pub async fn deny_presence(&self, user: &UserId) -> Result<bool, ClientError> {
        let user = user.clone();
        self.change_presence_allowed(move |list| list.retain(|u| *u != user))
            .await
    }

    pub(super) async fn change_presence_allowed(
        &self,
        change: impl FnOnce(&mut Vec<UserId>) + Send + 'static,
    ) -> Result<bool, ClientError> {
        let _serial = self.shared.presence_lock.lock().await;
        let link = self.link().await?;
        let (changed, list) = self
            .with_engine(move |e| -> Result<(bool, Vec<UserId>), ClientError> {
                let before = e.profile().presence_allowed();
                let mut list = before.clone();
                change(&mut list);
                let list = normalise_allow_list(list, e.user_id());
                if list.len() > crate::limits::MAX_PRESENCE_ALLOW {
                    return Err(ClientError::LimitExceeded {
                        what: "users on the presence allow list",
                        max: crate::limits::MAX_PRESENCE_ALLOW,
                    });
                }
                let changed = list != before;
                if changed {
                    e.profile_mut().set_presence_allowed(&list)?;
                }
                Ok((changed, list))
            })
            .await??;
        publish_allow_list(&link, list).await?;
        Ok(changed)
    }

    /// The presence of `users` (at most
    /// [`MAX_PRESENCE_QUERY`](crate::limits::MAX_PRESENCE_QUERY)), once: for
    /// each, hidden unless that user allowed us, in which case online and
    /// last seen. A user who does not exist is hidden too.
    pub async fn query_presence(
        &self,
        users: &[UserId],
    ) -> Result<Vec<PresenceEntry>, ClientError> {
        check_presence_request(
            users,
            "users in one presence query",
            crate::limits::MAX_PRESENCE_QUERY,
        )?;
        let users = users.to_vec();
        let link = self.link().await?;
        let reply = link
            .request(move |rid| ClientFrame::PresenceQuery(PresenceQuery { rid, users }))
            .await?;
        presence_reply(reply)
    }

    /// Subscribes to the presence of `users` (at most
    /// [`MAX_PRESENCE_SUBSCRIPTIONS`](crate::limits::MAX_PRESENCE_SUBSCRIPTIONS)
    /// distinct ids), replacing
    /// any earlier subscription, and returns the snapshot. Changes then
    /// arrive as [`Event::Presence`]; after a reconnect the subscription is
    /// renewed and its snapshot emitted as events. An empty list
    /// unsubscribes.
    pub async fn subscribe_presence(
        &self,
        users: Vec<UserId>,
    ) -> Result<Vec<PresenceEntry>, ClientError> {
        check_presence_request(
            &users,
            "presence subscriptions",
            crate::limits::MAX_PRESENCE_SUBSCRIPTIONS,
        )?;
        if let Ok(mut subs) = self.shared.presence_subscriptions.lock() {
            subs.clone_from(&users);
        }
        let link = self.link().await?;
        subscribe(&link, users).await
    }
}

impl Supervisor {
    /// On a new connection: publishes the allow list (its reply is only
    /// logged) and renews the presence subscription, whose reply the serve
    /// loop turns into [`Event::Presence`] snapshot events. Nothing here
    /// waits for a reply: the relay may be pushing a backlog that the inbox
    /// must take first. Failures are logged, not fatal: a relay without
    /// presence still carries messages.
    pub(super) async fn renew_presence(&self, link: &Link) -> Option<Renewal> {
        {
            // Under the lock: a concurrent change publishes after us.
            let _serial = self.shared.presence_lock.lock().await;
            let published =
                match with_engine(&self.shared.engine, |e| e.profile().presence_allowed()).await {
                    Ok(users) => {
                        link.enqueue(move |rid| {
                            ClientFrame::PresenceAllow(PresenceAllow { rid, users })
                        })
                        .await
                    }
                    Err(e) => Err(e),
                };
            match published {
                Ok(reply) => {
                    tokio::spawn(async move {
                        if let Err(e) = reply.wait().await {
                            warn!(error = %e, "cannot publish the presence allow list");
                        }
                    });
                }
                Err(e) => warn!(error = %e, "cannot publish the presence allow list"),
            }
        }
        let users = self
            .shared
            .presence_subscriptions
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        if users.is_empty() {
            return None;
        }
        match link
            .enqueue(move |rid| ClientFrame::PresenceSubscribe(PresenceSubscribe { rid, users }))
            .await
        {
            Ok(reply) => Some(Box::pin(reply.wait())),
            Err(e) => {
                warn!(error = %e, "cannot renew presence subscriptions");
                None
            }
        }
    }

    /// The reply to a renewed subscription: its snapshot, as events.
    pub(super) async fn on_renewal(&self, reply: Result<ServerFrame, ClientError>) {
        match reply.and_then(presence_reply) {
            Ok(snapshot) => {
                for entry in snapshot {
                    self.emit(Event::Presence(entry)).await;
                }
            }
            Err(e) => warn!(error = %e, "cannot renew presence subscriptions"),
        }
    }
}

/// The reply to a presence subscription renewed on connection.
pub(super) type Renewal = Pin<Box<dyn Future<Output = Result<ServerFrame, ClientError>> + Send>>;

/// Waits for the renewal's reply, or forever without one.
pub(super) async fn renewal_reply(
    renewal: &mut Option<Renewal>,
) -> Result<ServerFrame, ClientError> {
    match renewal {
        Some(r) => r.await,
        None => std::future::pending().await,
    }
}

/// The allow list as published: in order, without duplicates or `me`.
pub(super) fn normalise_allow_list(list: Vec<UserId>, me: &UserId) -> Vec<UserId> {
    let mut seen = HashSet::new();
    list.into_iter()
        .filter(|u| u != me && seen.insert(u.clone()))
        .collect()
}

pub(super) async fn publish_allow_list(link: &Link, users: Vec<UserId>) -> Result<(), ClientError> {
    match link
        .request(move |rid| ClientFrame::PresenceAllow(PresenceAllow { rid, users }))
        .await?
    {
        ServerFrame::PresenceAllowed(_) => Ok(()),
        other => Err(ClientError::Protocol(format!(
            "expected presence_allowed, got {other:?}"
        ))),
    }
}

pub(super) async fn subscribe(
    link: &Link,
    users: Vec<UserId>,
) -> Result<Vec<PresenceEntry>, ClientError> {
    let reply = link
        .request(move |rid| ClientFrame::PresenceSubscribe(PresenceSubscribe { rid, users }))
        .await?;
    presence_reply(reply)
}

pub(super) fn presence_reply(reply: ServerFrame) -> Result<Vec<PresenceEntry>, ClientError> {
    match reply {
        ServerFrame::Presence(p) => Ok(p.users),
        other => Err(ClientError::Protocol(format!(
            "expected presence, got {other:?}"
        ))),
    }
}
