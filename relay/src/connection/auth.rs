//! The `auth` request: the signature over the relay id, the challenge and
//! the user id; registration (under the address's quota) or the check of
//! the registered key; the cluster-wide claim; then `auth_ok` and the
//! session going live.

use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};
use hush_protocol::frame::AuthOk;
use hush_protocol::{ErrorCode, ServerFrame, close, signing};

use super::{Authed, Conn, Flow};
use crate::sessions::Session;
use crate::store::{AuthOutcome, Store};

impl<S: Store> Conn<S> {
    /// A store failure during `auth`: answered, then closed (1011).
    async fn auth_store_failed(
        &mut self,
        rid: Option<u64>,
        e: &(dyn std::fmt::Display + Sync),
    ) -> Flow {
        tracing::error!(error = %e, "store failed during auth");
        self.fail(
            rid,
            ErrorCode::StoreUnavailable,
            "store unavailable",
            close::INTERNAL_ERROR,
        )
        .await;
        Flow::Break(())
    }

    pub(super) async fn authenticate(&mut self, a: hush_protocol::frame::Auth) -> Flow {
        let rid = Some(a.rid);
        let verified = VerifyingKey::from_bytes(&a.identity_key.0)
            .ok()
            .and_then(|key| {
                let msg =
                    signing::auth_message(self.hub.relay_id(), &self.challenge, a.user_id.as_str())
                        .ok()?;
                key.verify_strict(&msg, &Signature::from_bytes(&a.signature.0))
                    .ok()
                    .map(|()| key)
            });
        let Some(key) = verified else {
            tracing::info!(conn = self.conn_id, user = %a.user_id, "auth signature rejected");
            self.fail(
                rid,
                ErrorCode::AuthFailed,
                "bad signature",
                close::AUTH_FAILED,
            )
            .await;
            return Flow::Break(());
        };
        if !self.hub.quotas().may_register(&self.ip) {
            // Out of registrations: only a returning user may go on.
            match self.hub.directory().user_exists(&a.user_id).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(
                        conn = self.conn_id,
                        "registration quota of this address exhausted"
                    );
                    self.fail(
                        rid,
                        ErrorCode::RateLimited,
                        "too many new registrations from this address; try later",
                        close::AUTH_FAILED,
                    )
                    .await;
                    return Flow::Break(());
                }
                Err(e) => {
                    return self.auth_store_failed(rid, &e).await;
                }
            }
        }
        let outcome = match self
            .hub
            .directory()
            .register_or_authenticate(&a.user_id, &a.identity_key)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                return self.auth_store_failed(rid, &e).await;
            }
        };
        let AuthOutcome::Ok {
            registered,
            one_time_prekeys,
            has_keys,
            last_queued,
        } = outcome
        else {
            tracing::info!(conn = self.conn_id, user = %a.user_id, "auth with another key rejected");
            self.fail(
                rid,
                ErrorCode::AuthFailed,
                "user id is registered to another key",
                close::AUTH_FAILED,
            )
            .await;
            return Flow::Break(());
        };
        // Cluster-wide, this is now the user's newest connection.
        let epoch = match self.hub.claim(&a.user_id).await {
            Ok(e) => e,
            Err(e) => {
                return self.auth_store_failed(rid, &e).await;
            }
        };
        if registered {
            self.hub.quotas().registered(&self.ip);
        }
        tracing::info!(conn = self.conn_id, user = %a.user_id, registered, "authenticated");
        // auth_ok goes out before the session is live, so it precedes every
        // pushed envelope.
        self.send(&ServerFrame::AuthOk(AuthOk {
            rid: a.rid,
            user_id: a.user_id.clone(),
            registered,
            one_time_prekeys,
            has_keys,
            last_queued,
        }))
        .await?;
        let session = Arc::new(Session::new(
            self.conn_id,
            a.user_id.clone(),
            epoch,
            self.out.clone(),
            Arc::clone(&self.kill),
        ));
        self.hub.activate(Arc::clone(&session));
        self.authed = Some(Authed {
            user: a.user_id,
            key,
            session,
        });
        Flow::Continue(())
    }
}
