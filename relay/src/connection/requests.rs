//! The directory and mailbox requests of an authenticated connection:
//! `publish_keys`, `fetch_bundle`, `lookup`, `send` and `ack`. A send is
//! submitted at once and completes later, in request order (see
//! [`super::reply`]).

use ed25519_dalek::Signature;
use hush_protocol::frame::{
    Accepted, Ack, Acked, Bundle, FetchBundle, Identity, KeysPublished, Lookup, PrekeysLow,
    PublishKeys, SendEnvelope,
};
use hush_protocol::{ErrorCode, ServerFrame, signing};

use super::reply::Done;
use super::{Conn, Flow};
use crate::store::{AppendOutcome, PublishOutcome, PublishedKeys, Store};

impl<S: Store> Conn<S> {
    pub(super) async fn publish_keys(&mut self, p: PublishKeys) -> Flow {
        let Some(authed) = &self.authed else {
            return Flow::Break(());
        };
        let limits = self.hub.limits();
        if p.one_time_prekeys.len() > limits.max_prekeys_per_upload {
            let msg = format!(
                "{} one-time prekeys in one upload; at most {}",
                p.one_time_prekeys.len(),
                limits.max_prekeys_per_upload
            );
            return self
                .error(Some(p.rid), ErrorCode::TooManyPrekeys, msg)
                .await;
        }
        let dh_ok = authed
            .key
            .verify_strict(
                &signing::identity_dh_message(&p.identity_dh.0),
                &Signature::from_bytes(&p.identity_dh_sig.0),
            )
            .is_ok();
        let spk_ok = authed
            .key
            .verify_strict(
                &signing::signed_prekey_message(p.signed_prekey.id, &p.signed_prekey.key.0),
                &Signature::from_bytes(&p.signed_prekey.signature.0),
            )
            .is_ok();
        if !dh_ok || !spk_ok {
            let which = if dh_ok {
                "signed_prekey.signature"
            } else {
                "identity_dh_sig"
            };
            let code = if authed.by_device_key {
                ErrorCode::DeviceKeyMismatch
            } else {
                ErrorCode::BadSignature
            };
            return self
                .error(
                    Some(p.rid),
                    code,
                    format!("{which} does not verify with the registered identity key"),
                )
                .await;
        }
        let keys = PublishedKeys {
            identity_dh: p.identity_dh,
            identity_dh_sig: p.identity_dh_sig,
            signed_prekey: p.signed_prekey,
        };
        let max = limits.max_prekeys_stored;
        match self
            .hub
            .directory()
            .publish_keys(&authed.user, keys, p.one_time_prekeys, max)
            .await
        {
            Ok(PublishOutcome::Published { one_time_prekeys }) => {
                self.send(&ServerFrame::KeysPublished(KeysPublished {
                    rid: p.rid,
                    one_time_prekeys,
                }))
                .await
            }
            Ok(PublishOutcome::TooManyPrekeys { would_store, max }) => {
                let msg =
                    format!("upload would store {would_store} one-time prekeys; at most {max}");
                self.error(Some(p.rid), ErrorCode::TooManyPrekeys, msg)
                    .await
            }
            Ok(PublishOutcome::UnknownUser) => {
                self.error(
                    Some(p.rid),
                    ErrorCode::UnknownUser,
                    "user no longer registered",
                )
                .await
            }
            Err(e) => self.store_error(p.rid, e).await,
        }
    }

    /// Takes one bundle fetch from the account's quota; false when it is
    /// exhausted (or the connection is not authenticated).
    pub(super) fn take_fetch_quota(&self) -> bool {
        self.authed
            .as_ref()
            .is_some_and(|a| self.hub.quotas().take_fetch(&a.account))
    }

    pub(super) async fn fetch_quota_exhausted(&mut self, rid: u64) -> Flow {
        self.error(
            Some(rid),
            ErrorCode::RateLimited,
            "bundle fetch quota exhausted; try later",
        )
        .await
    }

    pub(super) async fn fetch_bundle(&mut self, f: FetchBundle) -> Flow {
        if !self.take_fetch_quota() {
            return self.fetch_quota_exhausted(f.rid).await;
        }
        let fetched = match self.hub.directory().fetch_bundle(&f.user_id).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return self
                    .error(
                        Some(f.rid),
                        ErrorCode::UnknownUser,
                        "no such user or no published keys",
                    )
                    .await;
            }
            Err(e) => return self.store_error(f.rid, e).await,
        };
        let popped = fetched.one_time_prekey.is_some();
        let remaining = fetched.remaining;
        let reply = ServerFrame::Bundle(Box::new(Bundle {
            rid: f.rid,
            user_id: f.user_id.clone(),
            identity_key: fetched.identity_key,
            identity_dh: fetched.keys.identity_dh,
            identity_dh_sig: fetched.keys.identity_dh_sig,
            signed_prekey: fetched.keys.signed_prekey,
            one_time_prekey: fetched.one_time_prekey,
        }));
        if popped && remaining < self.hub.limits().prekey_low_threshold {
            self.hub.delivery().push_to(
                &f.user_id,
                ServerFrame::PrekeysLow(PrekeysLow {
                    one_time_prekeys: remaining,
                })
                .encode(),
            );
        }
        self.send(&reply).await
    }

    pub(super) async fn lookup(&mut self, l: Lookup) -> Flow {
        match self.hub.directory().lookup_identity(&l.user_id).await {
            Ok(Some((identity_key, keys))) => {
                self.send(&ServerFrame::Identity(Identity {
                    rid: l.rid,
                    user_id: l.user_id,
                    identity_key,
                    identity_dh: keys.identity_dh,
                    identity_dh_sig: keys.identity_dh_sig,
                }))
                .await
            }
            Ok(None) => {
                self.error(
                    Some(l.rid),
                    ErrorCode::UnknownUser,
                    "no such user or no published keys",
                )
                .await
            }
            Err(e) => self.store_error(l.rid, e).await,
        }
    }

    pub(super) async fn send_envelope(&mut self, s: SendEnvelope) -> Flow {
        if let Some(flow) = self.legacy_send_refused(s.rid, &s.to).await {
            return flow;
        }
        if s.ephemeral {
            return self.send_ephemeral(s).await;
        }
        let Some(authed) = &self.authed else {
            return Flow::Break(());
        };
        let max = self.hub.limits().max_envelope_bytes;
        if s.body.len() > max {
            let msg = format!("body is {} bytes; at most {max}", s.body.len());
            return self
                .error(Some(s.rid), ErrorCode::EnvelopeTooLarge, msg)
                .await;
        }
        // Submitted now (see `Store::append`); the reply follows the commit
        // while this connection goes on reading.
        let bytes = s.body.len();
        let committed = self.hub.delivery().submit(&authed.user, &s.to, s.body);
        let (rid, to) = (s.rid, s.to);
        self.in_flight_bytes += bytes;
        self.pending.push_back(Box::pin(async move {
            let frame = match committed.await {
                Ok(AppendOutcome::Appended(env)) => {
                    return Done {
                        frame: ServerFrame::Accepted(Accepted {
                            rid,
                            id: Some(env.id),
                        }),
                        deliver: vec![(to, env)],
                        bytes,
                    };
                }
                Ok(AppendOutcome::MailboxFull) => ServerFrame::error(
                    Some(rid),
                    ErrorCode::MailboxFull,
                    "recipient's mailbox is full",
                ),
                Ok(AppendOutcome::UnknownUser) => {
                    ServerFrame::error(Some(rid), ErrorCode::UnknownUser, "no such recipient")
                }
                Err(e) => {
                    tracing::error!(error = %e, "store failed");
                    ServerFrame::error(
                        Some(rid),
                        ErrorCode::StoreUnavailable,
                        "store unavailable; retry later",
                    )
                }
            };
            Done {
                frame,
                deliver: Vec::new(),
                bytes,
            }
        }));
        Flow::Continue(())
    }

    pub(super) async fn ack(&mut self, a: Ack) -> Flow {
        let Some(authed) = &self.authed else {
            return Flow::Break(());
        };
        let max = self.hub.limits().max_ack_ids;
        if a.ids.len() > max {
            let msg = format!("{} ids in one ack; at most {max}", a.ids.len());
            return self.error(Some(a.rid), ErrorCode::TooManyIds, msg).await;
        }
        match self.hub.delivery().ack(&authed.user, a.ids).await {
            Ok(_) => self.send(&ServerFrame::Acked(Acked { rid: a.rid })).await,
            Err(e) => self.store_error(a.rid, e).await,
        }
    }
}
