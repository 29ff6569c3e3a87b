//! [`Client`], the handle an application holds: connecting (which spawns
//! the [`Supervisor`](super::supervisor)), the state every clone shares,
//! profile access and closing. Sending, receipts and presence are in their
//! own modules, as further `impl Client` blocks.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use hush_protocol::UserId;
use rand_core::CryptoRng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::config::{ClientConfig, RECEIPT_GRACE, check_presence_request};
use super::link::Link;
use super::state::{Shared, with_engine};
use super::supervisor::Supervisor;
use super::typing::TypingSender;
use super::ws_url;
use crate::clock::Clock;
use crate::engine::Engine;
use crate::error::ClientError;
use crate::events::Event;
use crate::profile::Profile;

/// A connected client. Cheap to clone; every clone drives the same
/// connection.
#[derive(Clone)]
pub struct Client {
    pub(super) shared: Arc<Shared>,
    pub(super) task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Events from a [`Client`], in the order they happened.
pub type Events = mpsc::Receiver<Event>;

impl Client {
    /// Connects `profile` to its relay (or `config.relay_url`), trying
    /// `config.connect_attempts` times, and returns the client with its
    /// event stream. Keys are published on first use and refilled when low.
    pub async fn connect(
        profile: Profile,
        config: ClientConfig,
        rng: Box<dyn CryptoRng + Send>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Client, Events), ClientError> {
        let url = ws_url(config.relay_url.as_deref().unwrap_or(profile.relay_url()))?;
        check_presence_request(
            &config.presence,
            "presence subscriptions",
            crate::limits::MAX_PRESENCE_SUBSCRIPTIONS,
        )?;
        let presence_subscriptions = Mutex::new(config.presence.clone());
        let mut engine = Engine::new(profile, rng);
        engine.set_record_receipts(config.delivery_receipts);
        let engine = Arc::new(Mutex::new(engine));
        let (link_tx, link_rx) = watch::channel(None);
        let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            engine,
            link: link_rx,
            send_lock: tokio::sync::Mutex::new(HashSet::new()),
            config,
            clock,
            stop: stop_tx,
            receipts_in_flight: Mutex::new(HashSet::new()),
            receipt_tasks: Mutex::new(tokio::task::JoinSet::new()),
            typing: Mutex::new(TypingSender::default()),
            presence_subscriptions,
            presence_lock: tokio::sync::Mutex::new(()),
        });
        let start_offline = shared.config.start_offline;
        let (first_tx, first_rx) = oneshot::channel();
        let supervisor = Supervisor {
            shared: shared.clone(),
            url,
            link_tx,
            events: events_tx,
            stop: stop_rx,
        };
        if start_offline {
            let task = tokio::spawn(supervisor.run(None));
            drop(first_tx);
            return Ok((
                Client {
                    shared,
                    task: Arc::new(Mutex::new(Some(task))),
                },
                events_rx,
            ));
        }
        let task = tokio::spawn(supervisor.run(Some(first_tx)));
        match first_rx.await {
            Ok(Ok(())) => Ok((
                Client {
                    shared,
                    task: Arc::new(Mutex::new(Some(task))),
                },
                events_rx,
            )),
            Ok(Err(e)) => {
                let _ = task.await;
                Err(e)
            }
            Err(_) => Err(ClientError::Internal("client task ended before connecting")),
        }
    }

    /// Runs `f` on the profile (history, contacts, safety numbers...).
    /// Sessions the profile changed are read back from the store afterwards.
    pub async fn with_profile<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Profile) -> T + Send + 'static,
    ) -> Result<T, ClientError> {
        self.with_engine(move |e| {
            let out = f(e.profile_mut());
            e.invalidate_sessions();
            out
        })
        .await
    }

    /// Trusts the pending new identity key of `peer`, given the safety
    /// number the user compared ([`Profile::trust`]).
    pub async fn trust(&self, peer: &UserId, safety_number: &str) -> Result<(), ClientError> {
        let (peer, number, now) = (
            peer.clone(),
            safety_number.to_owned(),
            self.shared.clock.now_ms(),
        );
        self.with_profile(move |p| p.trust(&peer, &number, now))
            .await?
    }

    /// Rejects the pending new identity key of `peer` ([`Profile::reject`]).
    pub async fn reject(&self, peer: &UserId) -> Result<bool, ClientError> {
        let peer = peer.clone();
        self.with_profile(move |p| p.reject(&peer)).await?
    }

    /// Stops the client: closes the connection and ends the background task.
    pub async fn close(&self) {
        // Delivery receipts already queued get a moment to be accepted, so
        // a short-lived client (`hush recv`) confirms what it received
        // before it goes; any not accepted stay pending in the profile and
        // are sent on the next connection.
        let receipts = self
            .shared
            .receipt_tasks
            .lock()
            .map(|mut set| std::mem::take(&mut *set))
            .ok();
        if let Some(mut receipts) = receipts {
            let all = async { while receipts.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(RECEIPT_GRACE, all).await;
        }
        let _ = self.shared.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    pub(super) async fn with_engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Result<T, ClientError> {
        with_engine(&self.shared.engine, f).await
    }

    /// Waits (up to the request timeout) for a live connection.
    pub(super) async fn link(&self) -> Result<Arc<Link>, ClientError> {
        let mut rx = self.shared.link.clone();
        let wait = rx.wait_for(|l| l.is_some());
        match tokio::time::timeout(self.shared.config.request_timeout, wait).await {
            Ok(Ok(guard)) => guard.clone().ok_or(ClientError::Disconnected),
            Ok(Err(_)) => Err(ClientError::Stopped),
            Err(_) => Err(ClientError::Disconnected),
        }
    }
}
