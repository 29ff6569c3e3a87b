//! The background task: connects (authenticating and publishing keys),
//! hands the connection to the [`inbox`](super::inbox), and reconnects with
//! jittered backoff until the client stops or is replaced.

use std::sync::Arc;
use std::time::Duration;

use hush_protocol::ClientFrame;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::connection::Credentials;
use super::link::{self, Inbound, Link};
use super::state::{Shared, with_engine};
use crate::error::ClientError;
use crate::events::{ConnectionState, Event};

/// The background task: connects, reconnects, processes the inbox.
pub(super) struct Supervisor {
    pub(super) shared: Arc<Shared>,
    pub(super) url: String,
    pub(super) link_tx: watch::Sender<Option<Arc<Link>>>,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) stop: watch::Receiver<bool>,
}

impl Supervisor {
    pub(super) async fn run(mut self, first: Option<oneshot::Sender<Result<(), ClientError>>>) {
        let mut first = first;
        let mut attempt: u32 = 0;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_rng(&mut rand::rng());
        loop {
            if *self.stop.borrow() {
                break;
            }
            match self.connect_once().await {
                Ok((link, inbox, queued)) => {
                    attempt = 0;
                    if let Some(tx) = first.take() {
                        let _ = tx.send(Ok(()));
                    }
                    let _ = self.link_tx.send(Some(link.clone()));
                    self.emit(Event::Connection(ConnectionState::Connected))
                        .await;
                    let end = self.serve(&link, inbox, queued).await;
                    let _ = self.link_tx.send(None);
                    match end {
                        End::Stopped => {
                            link.close().await;
                            break;
                        }
                        End::Replaced => {
                            self.emit(Event::Connection(ConnectionState::Replaced))
                                .await;
                            break;
                        }
                        End::Lost(reason) => {
                            let retry_in = self.shared.config.backoff.delay(0, &mut rng);
                            info!(%reason, "connection to the relay lost");
                            self.emit(Event::Connection(ConnectionState::Disconnected {
                                reason,
                                retry_in,
                            }))
                            .await;
                            if self.pause(retry_in).await {
                                break;
                            }
                        }
                    }
                }
                Err(e) if !e.is_transient() => {
                    warn!(error = %e, "cannot connect to the relay; giving up");
                    match first.take() {
                        Some(tx) => {
                            let _ = tx.send(Err(e));
                        }
                        None => {
                            self.emit(Event::Connection(ConnectionState::Stopped {
                                reason: e.to_string(),
                            }))
                            .await
                        }
                    }
                    break;
                }
                Err(e) => {
                    attempt = attempt.saturating_add(1);
                    if first.is_some() && attempt >= self.shared.config.connect_attempts.max(1) {
                        if let Some(tx) = first.take() {
                            let _ = tx.send(Err(e));
                        }
                        break;
                    }
                    let retry_in = self.shared.config.backoff.delay(attempt, &mut rng);
                    debug!(error = %e, attempt, ?retry_in, "connection attempt failed");
                    if first.is_none() {
                        self.emit(Event::Connection(ConnectionState::Disconnected {
                            reason: e.to_string(),
                            retry_in,
                        }))
                        .await;
                    }
                    if self.pause(retry_in).await {
                        break;
                    }
                }
            }
        }
        if let Some(tx) = first.take() {
            let _ = tx.send(Err(ClientError::Stopped));
        }
    }

    /// Sleeps unless stopped first; returns whether the client was stopped.
    pub(super) async fn pause(&mut self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            _ = self.stop.wait_for(|s| *s) => true,
        }
    }

    pub(super) async fn emit(&self, event: Event) {
        let _ = self.events.send(event).await;
    }

    /// Connects, authenticates and brings our published keys up to date.
    /// Returns the link, the inbox and the id of the newest queued envelope.
    pub(super) async fn connect_once(
        &self,
    ) -> Result<(Arc<Link>, mpsc::Receiver<Inbound>, u64), ClientError> {
        let (user_id, identity_key, pinned_relay) = {
            let e = self
                .shared
                .engine
                .lock()
                .map_err(|_| ClientError::Internal("client state lock poisoned"))?;
            (
                e.user_id().clone(),
                e.identity_key(),
                e.profile().settings().relay_id.clone(),
            )
        };
        let engine = self.shared.engine.clone();
        let sign = move |m: &[u8]| -> [u8; 64] {
            match engine.lock() {
                Ok(e) => e.sign(m),
                // A poisoned lock means a bug elsewhere; an all-zero
                // signature simply fails authentication.
                Err(_) => [0; 64],
            }
        };
        let creds = Credentials {
            user_id: &user_id,
            identity_key,
            sign: &sign,
            relay_id: pinned_relay.as_deref(),
        };
        let (link, inbox, handshake) = link::open(
            &self.url,
            creds,
            self.shared.config.request_timeout,
            self.shared.config.max_frame_bytes,
            self.shared.config.ca_file.as_deref(),
        )
        .await?;
        let auth_ok = handshake.auth_ok;
        if pinned_relay.is_none() {
            // First connection of this profile (or one made before relay
            // ids were recorded): pin the relay it registered with.
            let relay_id = handshake.relay_id;
            with_engine(&self.shared.engine, move |e| {
                e.profile_mut()
                    .update_settings(|s| s.relay_id = Some(relay_id))
            })
            .await??;
        }
        if auth_ok.registered {
            // A mailbox created just now (first use, or the relay forgot us
            // after a reset or a memory relay's restart): its envelope ids
            // start over and must not match ids processed before.
            with_engine(&self.shared.engine, |e| e.forget_processed()).await??;
        }
        self.publish_keys(&link, auth_ok.has_keys, auth_ok.one_time_prekeys)
            .await?;
        // Peers' identities are checked against the directory once per
        // connection.
        self.shared.send_lock.lock().await.clear();
        Ok((link, inbox, auth_ok.last_queued))
    }

    pub(super) async fn publish_keys(
        &self,
        link: &Link,
        has_keys: bool,
        published: u32,
    ) -> Result<(), ClientError> {
        let now = self.shared.clock.now_ms();
        // The rid is assigned when the frame is queued; build with 0 here.
        let frame = with_engine(&self.shared.engine, move |e| {
            e.keys_to_publish(0, has_keys, published, now)
        })
        .await??;
        if let Some(frame) = frame {
            let count = frame.one_time_prekeys.len();
            link.request(move |rid| {
                ClientFrame::PublishKeys(hush_protocol::frame::PublishKeys { rid, ..frame })
            })
            .await?;
            info!(one_time_prekeys = count, "published keys");
        }
        Ok(())
    }
}

pub(super) enum End {
    Stopped,
    Replaced,
    Lost(String),
}
