//! The presence requests (`presence_allow`, `presence_query`,
//! `presence_subscribe`) and ephemeral sends of one connection. All of them
//! take a token of the connection's presence bucket first (on top of the
//! general one); the state they read and the fan-out live in
//! [`crate::presence`].

use std::sync::Arc;

use hush_protocol::frame::{
    Accepted, Presence, PresenceAllow, PresenceAllowed, PresenceQuery, PresenceSubscribe,
    SendEnvelope,
};
use hush_protocol::{ErrorCode, ServerFrame};
use tokio::time::Instant;

use super::{Conn, Flow};
use crate::presence::distinct;
use crate::store::Store;
use crate::wire;

impl<S: Store> Conn<S> {
    /// Takes a presence token; without one, answers `rate_limited` and
    /// returns the flow to end the request with.
    pub(super) async fn presence_limited(&mut self, rid: u64) -> Option<Flow> {
        if self.presence_bucket.try_take(Instant::now()) {
            return None;
        }
        Some(
            self.error(
                Some(rid),
                ErrorCode::RateLimited,
                "too many presence requests or ephemeral sends; slow down",
            )
            .await,
        )
    }

    async fn over_cap(&mut self, rid: u64, what: &str, n: usize, max: usize) -> Flow {
        let msg = format!("{n} distinct user ids in {what}; at most {max}");
        self.error(Some(rid), ErrorCode::LimitExceeded, msg).await
    }

    pub(super) async fn presence_allow(&mut self, f: PresenceAllow) -> Flow {
        if let Some(flow) = self.presence_limited(f.rid).await {
            return flow;
        }
        let Some(user) = self.authed.as_ref().map(|a| a.account.clone()) else {
            return Flow::Break(());
        };
        let users = distinct(f.users);
        let max = self.hub.limits().max_presence_allow;
        if users.len() > max {
            return self
                .over_cap(f.rid, "presence_allow", users.len(), max)
                .await;
        }
        let count = u32::try_from(users.len()).unwrap_or(u32::MAX);
        if let Err(e) = self.hub.presence().set_allow(&user, users).await {
            return self.store_error(f.rid, e).await;
        }
        self.send(&ServerFrame::PresenceAllowed(PresenceAllowed {
            rid: f.rid,
            count,
        }))
        .await?;
        self.hub.presence().announce(&user).await;
        Flow::Continue(())
    }

    pub(super) async fn presence_query(&mut self, f: PresenceQuery) -> Flow {
        if let Some(flow) = self.presence_limited(f.rid).await {
            return flow;
        }
        let Some(asker) = self.authed.as_ref().map(|a| a.account.clone()) else {
            return Flow::Break(());
        };
        let users = distinct(f.users);
        let max = self.hub.limits().max_presence_query;
        if users.len() > max {
            return self
                .over_cap(f.rid, "presence_query", users.len(), max)
                .await;
        }
        match self.hub.presence().entries(&asker, &users).await {
            Ok(entries) => {
                self.send(&ServerFrame::Presence(Presence {
                    rid: f.rid,
                    users: entries,
                }))
                .await
            }
            Err(e) => self.store_error(f.rid, e).await,
        }
    }

    pub(super) async fn presence_subscribe(&mut self, f: PresenceSubscribe) -> Flow {
        if let Some(flow) = self.presence_limited(f.rid).await {
            return flow;
        }
        let Some((asker, session)) = self
            .authed
            .as_ref()
            .map(|a| (a.account.clone(), Arc::clone(&a.session)))
        else {
            return Flow::Break(());
        };
        let users = distinct(f.users);
        let max = self.hub.limits().max_presence_subscriptions;
        if users.len() > max {
            return self
                .over_cap(f.rid, "presence_subscribe", users.len(), max)
                .await;
        }
        // The reply must be queued before any update of the new set.
        self.complete_all().await?;
        self.hub.presence().replace(&session, &users);
        match self.hub.presence().entries(&asker, &users).await {
            Ok(entries) => {
                self.hub.presence().snapshot(self.conn_id, &entries);
                let flow = self
                    .send_now(&ServerFrame::Presence(Presence {
                        rid: f.rid,
                        users: entries,
                    }))
                    .await;
                self.hub.presence().settle(self.conn_id);
                flow
            }
            Err(e) => {
                self.hub.presence().forget(self.conn_id);
                self.store_error(f.rid, e).await
            }
        }
    }

    /// An ephemeral send: pushed to the recipient if it is connected here or
    /// on another relay, never stored, and answered the same either way.
    pub(super) async fn send_ephemeral(&mut self, s: SendEnvelope) -> Flow {
        if let Some(flow) = self.presence_limited(s.rid).await {
            return flow;
        }
        let Some(from) = self.authed.as_ref().map(|a| a.user.clone()) else {
            return Flow::Break(());
        };
        let max = self.hub.limits().max_envelope_bytes;
        if s.body.len() > max {
            let msg = format!("body is {} bytes; at most {max}", s.body.len());
            return self
                .error(Some(s.rid), ErrorCode::EnvelopeTooLarge, msg)
                .await;
        }
        // The same store read whether the recipient is online or not, so
        // neither the reply nor its timing tells them apart.
        match self.hub.directory().user_exists(&s.to).await {
            Ok(true) => {}
            Ok(false) => {
                return self
                    .error(Some(s.rid), ErrorCode::UnknownUser, "no such recipient")
                    .await;
            }
            Err(e) => return self.store_error(s.rid, e).await,
        }
        let frame = wire::ephemeral_envelope(
            from.as_str(),
            self.hub.delivery().now_ms(),
            s.body.as_bytes(),
        );
        self.hub.delivery().push_to(&s.to, frame);
        self.send(&ServerFrame::Accepted(Accepted {
            rid: s.rid,
            id: None,
        }))
        .await
    }
}
