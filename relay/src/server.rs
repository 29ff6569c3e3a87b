//! The HTTP side: `GET /healthz`, `GET /v1/ws` (WebSocket upgrade), the
//! retention sweeper, and orderly shutdown. [`serve`] is what the binary
//! runs; [`RelayHandle`] starts the same thing in-process for tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use hush_protocol::frame::{HEALTH_PATH, WS_PATH};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, LocalSessions};
use crate::config::{Config, MAX_RELAY_ID_LEN, StoreConfig};
use crate::hub::{Hub, Tracker};
use crate::store::{MemoryStore, RedbStore, RedisStore, Store, StoreError};

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Listening or serving failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The relay task panicked or was cancelled.
    #[error("relay task failed: {0}")]
    Task(String),
}

struct App<S> {
    hub: Hub<S>,
    shutdown: watch::Receiver<bool>,
}

impl<S> Clone for App<S> {
    fn clone(&self) -> Self {
        Self {
            hub: self.hub.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

/// Runs the relay described by `config` on `listener` until `shutdown`
/// resolves; then closes every connection (1001), waits for them, and closes
/// the store before returning.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    serve_with_ready(config, listener, shutdown, |_| {}).await
}

/// [`serve`], calling `ready` with the listening address once the store is
/// open and the relay is about to accept connections (the binary prints its
/// `listening on` line there, so that line means "ready").
pub async fn serve_with_ready(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr) + Send,
) -> Result<(), RelayError> {
    match config.store.clone() {
        StoreConfig::Memory => {
            let store = MemoryStore::new()?;
            serve_inner(store, Cluster::local(), config, listener, shutdown, ready).await
        }
        StoreConfig::Redb { data_dir } => {
            let store = open_redb(data_dir).await?;
            serve_inner(store, Cluster::local(), config, listener, shutdown, ready).await
        }
        StoreConfig::Redis { url } => {
            let store = RedisStore::connect(&url).await?;
            let cluster = Cluster::redis(store.clone(), config.presence_ttl);
            serve_inner(store, cluster, config, listener, shutdown, ready).await
        }
    }
}

async fn resolve_relay_id<S: Store>(config: &Config, store: &S) -> Result<String, RelayError> {
    match &config.relay_id {
        Some(id) => Ok(id.clone()),
        None => Ok(store.relay_id().await?),
    }
}

async fn open_redb(data_dir: std::path::PathBuf) -> Result<RedbStore, RelayError> {
    tokio::task::spawn_blocking(move || RedbStore::open(&data_dir))
        .await
        .map_err(|e| RelayError::Task(e.to_string()))?
        .map_err(RelayError::from)
}

/// [`serve`] with an already opened store (any backend). `config.store` is
/// ignored.
pub async fn serve_with_store<S: Store>(
    store: S,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    serve_inner(store, Cluster::local(), config, listener, shutdown, |_| {}).await
}

async fn serve_inner<S: Store>(
    store: S,
    cluster: Cluster,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr) + Send,
) -> Result<(), RelayError> {
    let relay_id = resolve_relay_id(&config, &store).await?;
    if relay_id.is_empty() || relay_id.len() > MAX_RELAY_ID_LEN {
        return Err(RelayError::Config(format!(
            "relay id must be 1..={MAX_RELAY_ID_LEN} bytes"
        )));
    }
    let limits = config.limits.clone();
    // The WebSocket layer's own cap is a hard memory bound; frames between
    // max_frame_bytes and it are read and refused with close 1009.
    let ws_cap = limits.max_frame_bytes.saturating_mul(2).max(4096);
    let tracker = Arc::new(Tracker::default());
    let hub = Hub::new(store, limits, relay_id, cluster, Arc::clone(&tracker));
    let (stop_tx, stop_rx) = watch::channel(false);
    let sessions: Arc<dyn LocalSessions> = Arc::new(hub.clone());
    hub.cluster.spawn(sessions, stop_rx.clone(), &tracker);

    let sweeper = {
        let hub = hub.clone();
        let mut stop = stop_rx.clone();
        let interval = config.sweep_interval.max(Duration::from_millis(10));
        let token = tracker.token();
        tokio::spawn(async move {
            let _token = token;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tick.tick() => sweep(&hub).await,
                }
            }
        })
    };

    let app = App {
        hub: hub.clone(),
        shutdown: stop_rx,
    };
    let router = Router::new()
        .route(HEALTH_PATH, get(|| async { "ok" }))
        .route(
            WS_PATH,
            get(
                move |State(app): State<App<S>>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      ws: WebSocketUpgrade| { upgrade(app, peer, ws, ws_cap) },
            ),
        )
        .with_state(app);
    tracing::info!(relay_id = %hub.relay_id, "relay serving");
    ready(listener.local_addr()?);
    // TCP_NODELAY: replies and pushes are small frames written once per
    // batch; with Nagle's algorithm each one would wait for the peer's
    // delayed ACK (~40 ms on Linux) whenever an earlier one is unacked.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    tracker.wait_idle().await;
    let _ = sweeper.await;
    drop(hub);
    tracing::info!("relay stopped");
    served.map_err(RelayError::from)
}

/// Initial read buffer per connection. tungstenite zero-fills the free
/// part of its read buffer (up to this size) before every read, and the
/// default 128 KiB made that memset ~8% of relay CPU under load and 128 KiB
/// of RSS per connection once touched. Larger frames still grow the buffer.
const READ_BUFFER: usize = 4096;

async fn upgrade<S: Store>(
    app: App<S>,
    peer: SocketAddr,
    ws: WebSocketUpgrade,
    ws_cap: usize,
) -> Response {
    if *app.shutdown.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "relay shutting down").into_response();
    }
    let ip_guard = match app.hub.ip_guard(peer.ip()) {
        Ok(guard) => guard,
        Err(crate::hub::Refused::PerAddress) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from this address",
            )
                .into_response();
        }
        Err(crate::hub::Refused::Total) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "relay at its connection limit",
            )
                .into_response();
        }
    };
    let token = app.hub.tracker.token();
    let hub = app.hub.clone();
    let shutdown = app.shutdown.clone();
    ws.max_message_size(ws_cap)
        .max_frame_size(ws_cap)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| crate::connection::run(hub, socket, ip_guard, shutdown, token))
}

async fn sweep<S: Store>(hub: &Hub<S>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let retention = u64::try_from(hub.limits.retention.as_millis()).unwrap_or(u64::MAX);
    let cutoff = now.saturating_sub(retention);
    match hub.store.sweep_expired(cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "swept expired envelopes"),
        Err(e) => tracing::error!(error = %e, "retention sweep failed"),
    }
}

/// A relay running in-process, for tests and embedding. Dropping the handle
/// also shuts the relay down (without waiting).
///
/// ```no_run
/// # async fn f() -> Result<(), hush_relay::RelayError> {
/// let relay = hush_relay::RelayHandle::start(hush_relay::Config::memory()).await?;
/// let url = relay.ws_url(); // ws://127.0.0.1:PORT/v1/ws
/// relay.shutdown().await?;  // store closed when this returns
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RelayHandle {
    local_addr: SocketAddr,
    relay_id: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RelayError>>>,
}

impl RelayHandle {
    /// Starts a relay on `127.0.0.1` with an OS-chosen port.
    pub async fn start(config: Config) -> Result<Self, RelayError> {
        Self::bind(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a relay on `addr`. Store errors (e.g. a locked data
    /// directory) are returned here, not later.
    pub async fn bind(config: Config, addr: SocketAddr) -> Result<Self, RelayError> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let (task, relay_id) = match config.store.clone() {
            StoreConfig::Memory => {
                let store = MemoryStore::new()?;
                let relay_id = resolve_relay_id(&config, &store).await?;
                let config = config.with_relay_id(relay_id.clone());
                let task = tokio::spawn(serve_with_store(store, config, listener, shutdown));
                (task, relay_id)
            }
            StoreConfig::Redb { data_dir } => {
                let store = open_redb(data_dir).await?;
                let relay_id = resolve_relay_id(&config, &store).await?;
                let config = config.with_relay_id(relay_id.clone());
                let task = tokio::spawn(serve_with_store(store, config, listener, shutdown));
                (task, relay_id)
            }
            StoreConfig::Redis { url } => {
                let store = RedisStore::connect(&url).await?;
                let relay_id = resolve_relay_id(&config, &store).await?;
                let cluster = Cluster::redis(store.clone(), config.presence_ttl);
                let config = config.with_relay_id(relay_id.clone());
                let task = tokio::spawn(async move {
                    serve_inner(store, cluster, config, listener, shutdown, |_| {}).await
                });
                (task, relay_id)
            }
        };
        Ok(Self {
            local_addr,
            relay_id,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://ADDR/v1/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.local_addr, WS_PATH)
    }

    /// The relay id clients sign in `auth`.
    pub fn relay_id(&self) -> &str {
        &self.relay_id
    }

    /// Stops accepting, closes every connection with 1001, waits for them and
    /// closes the store.
    pub async fn shutdown(mut self) -> Result<(), RelayError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| RelayError::Task(e.to_string()))?,
            None => Ok(()),
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
