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
use ed25519_dalek::VerifyingKey as DeviceKey;
use hush_protocol::UserId;

/// A device that passed authentication, about to go live.
pub(super) struct Live {
    pub(super) rid: u64,
    pub(super) account: UserId,
    pub(super) device: u32,
    /// The key it authenticated with (its keys are signed by it).
    pub(super) key: DeviceKey,
    /// Authenticated by `auth_device`.
    pub(super) by_device_key: bool,
    pub(super) registered: bool,
    pub(super) one_time_prekeys: u32,
    pub(super) has_keys: bool,
    pub(super) last_queued: u64,
}

impl<S: Store> Conn<S> {
    /// A store failure during `auth`: answered, then closed (1011).
    pub(super) async fn auth_store_failed(
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
        let message =
            signing::auth_message(self.hub.relay_id(), &self.challenge, a.user_id.as_str()).ok();
        let verified = signed_by(&a.identity_key.0, message, &a.signature.0);
        let Some(key) = verified else {
            tracing::info!(conn = self.conn_id, user = %a.user_id, "auth signature rejected");
            return self
                .refuse_auth(rid, ErrorCode::AuthFailed, "bad signature")
                .await;
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
                    return self
                        .refuse_auth(
                            rid,
                            ErrorCode::RateLimited,
                            "too many new registrations from this address; try later",
                        )
                        .await;
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
            return self
                .refuse_auth(
                    rid,
                    ErrorCode::AuthFailed,
                    "user id is registered to another key",
                )
                .await;
        };
        if let Err(flow) = self.device_one_listed(a.rid, &a.user_id).await {
            return flow;
        }
        if registered {
            self.hub.quotas().registered(&self.ip);
        }
        let live = Live {
            rid: a.rid,
            account: a.user_id,
            device: 1,
            key,
            by_device_key: false,
            registered,
            one_time_prekeys,
            has_keys,
            last_queued,
        };
        self.go_live(live).await
    }

    /// V1 auth is device 1's: refused once a published list lacks it.
    async fn device_one_listed(&mut self, rid: u64, user: &UserId) -> Result<(), Flow> {
        match self.hub.directory().device_list(user).await {
            Ok(Some(list)) if !list.devices.iter().any(|d| d.id == 1) => {
                tracing::info!(conn = self.conn_id, %user, "auth of a removed device 1");
                self.fail(
                    Some(rid),
                    ErrorCode::UnknownDevice,
                    "device 1 is not in this account's device list",
                    close::AUTH_FAILED,
                )
                .await;
                Err(Flow::Break(()))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(self.auth_store_failed(Some(rid), &e).await),
        }
    }

    /// The end of every successful authentication: the cluster-wide claim
    /// of the device's address, `auth_ok`, and the session going live.
    pub(super) async fn go_live(&mut self, live: Live) -> Flow {
        let address = live.account.device_address(live.device);
        let rid = Some(live.rid);
        // Cluster-wide, this is now the device's newest connection.
        let epoch = match self.hub.claim(&address).await {
            Ok(e) => e,
            Err(e) => {
                return self.auth_store_failed(rid, &e).await;
            }
        };
        tracing::info!(conn = self.conn_id, user = %live.account, device = live.device, registered = live.registered, "authenticated");
        // auth_ok goes out before the session is live, so it precedes every
        // pushed envelope.
        self.send(&ServerFrame::AuthOk(AuthOk {
            rid: live.rid,
            user_id: live.account.clone(),
            registered: live.registered,
            one_time_prekeys: live.one_time_prekeys,
            has_keys: live.has_keys,
            last_queued: live.last_queued,
        }))
        .await?;
        let session = Arc::new(Session::new(
            self.conn_id,
            address.clone(),
            epoch,
            self.out.clone(),
            Arc::clone(&self.kill),
        ));
        self.hub.activate(Arc::clone(&session));
        self.authed = Some(Authed {
            user: address,
            account: live.account,
            device: live.device,
            key: live.key,
            by_device_key: live.by_device_key,
            session,
        });
        Flow::Continue(())
    }
}

/// The key, if `signature` over `message` verifies under it
/// (`verify_strict`); `None` for an invalid key, a message that could not
/// be built, or a bad signature.
pub(super) fn signed_by(
    key: &[u8; 32],
    message: Option<Vec<u8>>,
    signature: &[u8; 64],
) -> Option<VerifyingKey> {
    let key = VerifyingKey::from_bytes(key).ok()?;
    key.verify_strict(&message?, &Signature::from_bytes(signature))
        .ok()
        .map(|()| key)
}
