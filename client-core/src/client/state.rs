//! The state every clone of a [`Client`](super::Client) and its background
//! task share, and [`with_engine`], which runs synchronous engine work on
//! tokio's blocking pool.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use hush_protocol::UserId;
use tokio::sync::watch;

use super::config::ClientConfig;
use super::link::Link;
use super::typing::TypingSender;
use crate::clock::Clock;
use crate::engine::Engine;
use crate::error::ClientError;
use crate::payload::MessageId;

/// What a client's clones and its supervisor share.
pub(super) struct Shared {
    pub(super) engine: Arc<Mutex<Engine>>,
    pub(super) link: watch::Receiver<Option<Arc<Link>>>,
    /// Serialises encryption and queueing so that per-peer ratchet order is
    /// queue order (and so concurrent first sends to one peer start one
    /// session, not two).
    pub(super) send_lock: tokio::sync::Mutex<HashSet<UserId>>,
    pub(super) config: ClientConfig,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) stop: watch::Sender<bool>,
    /// Delivery receipts (peer, message id) queued to the relay and not
    /// known to have failed; see [`Supervisor::flush_receipts`].
    pub(super) receipts_in_flight: Mutex<HashSet<(UserId, MessageId)>>,
    /// Tasks waiting for the relay to accept queued receipts.
    pub(super) receipt_tasks: Mutex<tokio::task::JoinSet<()>>,
    /// Which typing indicators may leave (rate limit per peer).
    pub(super) typing: Mutex<TypingSender>,
    /// Presence subjects we subscribed to; renewed on every connection.
    pub(super) presence_subscriptions: Mutex<Vec<UserId>>,
    /// Serialises allow-list changes with their publication, so the relay
    /// ends with the list the profile ends with.
    pub(super) presence_lock: tokio::sync::Mutex<()>,
}

pub(super) async fn with_engine<T: Send + 'static>(
    engine: &Arc<Mutex<Engine>>,
    f: impl FnOnce(&mut Engine) -> T + Send + 'static,
) -> Result<T, ClientError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = engine
            .lock()
            .map_err(|_| ClientError::Internal("client state lock poisoned"))?;
        Ok(f(&mut guard))
    })
    .await
    .map_err(|_| ClientError::Internal("client state task panicked"))?
}
