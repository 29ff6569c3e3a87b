//! The HTTP side: `GET /v1/ws` (WebSocket upgrade), `GET /healthz` (the
//! process serves), `GET /readyz` (the store answers), `GET /metrics`
//! (Prometheus text, see [`crate::metrics`]), optionally over TLS
//! ([`crate::tls`]) and with the last three on a separate address; the
//! retention sweeper; and graceful shutdown. [`serve`] is what the binary
//! runs; [`RelayHandle`] starts the same thing in-process for tests.
//!
//! Shutdown: once the shutdown future resolves, the listener stops
//! accepting (new upgrades that slip in get 503), `/readyz` answers 503,
//! every connection stops reading, finishes its requests in flight (their
//! commits and replies) and closes with 1001, presence is released, and the
//! store is closed. All of it is bounded by `Config::shutdown_timeout`;
//! past it `serve` returns anyway (nothing accepted is lost: `accepted` is
//! only ever sent after the commit).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, routing::MethodRouter};
use hush_protocol::frame::{HEALTH_PATH, WS_PATH};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::accept::{Admission, Gate, Peer, Site};
use crate::bus::{Bus, LocalBus, RedisBus};
use crate::config::{Config, MAX_RELAY_ID_LEN, StoreConfig};
use crate::hub::{Env, Hub};
use crate::metrics::Snapshot;
use crate::proxy::TrustedProxies;
use crate::store::{MemoryStore, RedbStore, RedisStore, Store, StoreError};
use crate::tls::TlsError;

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
    /// The TLS certificate or key cannot be used.
    #[error("invalid configuration: {0}")]
    Tls(#[from] TlsError),
    /// The relay task panicked or was cancelled.
    #[error("relay task failed: {0}")]
    Task(String),
}

struct App<S> {
    hub: Hub<S>,
    shutdown: CancellationToken,
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
            serve_inner(store, local_bus(), config, listener, shutdown, ready).await
        }
        StoreConfig::Redb { data_dir } => {
            let store = open_redb(data_dir).await?;
            serve_inner(store, local_bus(), config, listener, shutdown, ready).await
        }
        StoreConfig::Redis { url } => {
            let store = RedisStore::connect(&url).await?;
            let bus = redis_bus(&store, &config);
            serve_inner(store, bus, config, listener, shutdown, ready).await
        }
    }
}

/// The bus of a relay alone.
fn local_bus() -> Arc<dyn Bus> {
    Arc::new(LocalBus)
}

/// The bus of relays sharing `store`'s Redis.
fn redis_bus(store: &RedisStore, config: &Config) -> Arc<dyn Bus> {
    Arc::new(RedisBus::new(store.clone(), config.presence_ttl))
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
    serve_inner(store, local_bus(), config, listener, shutdown, |_| {}).await
}

async fn serve_inner<S: Store>(
    store: S,
    bus: Arc<dyn Bus>,
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
    let tls = config
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
            RelayError::Config(format!(
                "option `metrics_listen`: cannot listen on {addr}: {e}"
            ))
        })?),
        None => None,
    };
    crate::metrics::install();
    let mut limits = config.limits.clone();
    limits.max_connections = crate::accept::fit_fd_limit(limits.max_connections);
    let upgrade_timeout = limits.upgrade_timeout;
    // The WebSocket layer's own cap is a hard memory bound; frames between
    // the frame caps and it are read and refused with close 1009.
    let ws_cap = limits
        .max_frame_bytes
        .max(limits.max_send_frame_bytes)
        .saturating_mul(2)
        .max(4096);
    let env = Env::system();
    let tasks = env.tasks.clone();
    let hub = Hub::new(store, limits, relay_id, bus, env);
    let stop = CancellationToken::new();
    hub.spawn_bus(stop.clone());

    let sweeper = {
        let hub = hub.clone();
        let stop = stop.clone();
        let interval = config.sweep_interval.max(Duration::from_millis(10));
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => sweep(&hub).await,
                }
            }
        })
    };

    let app = App {
        hub: hub.clone(),
        shutdown: stop.clone(),
    };
    let ops = Router::new()
        .route(HEALTH_PATH, get(|| async { "ok" }))
        .route(READY_PATH, get(readyz::<S>))
        .route(METRICS_PATH, get(metrics::<S>));
    let ws_route: MethodRouter<App<S>> = get(
        move |State(app): State<App<S>>,
              ConnectInfo(peer): ConnectInfo<Peer>,
              Extension(admission): Extension<Admission<S>>,
              ws: WebSocketUpgrade| { upgrade(app, peer.0, admission, ws, ws_cap) },
    );
    let ws = Router::new().route(WS_PATH, ws_route);
    let (router, metrics_task) = match metrics_listener {
        None => (ws.merge(ops).with_state(app), None),
        Some(metrics_listener) => {
            let addr = metrics_listener.local_addr()?;
            tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
            let site = Site {
                hub: hub.clone(),
                router: ops.with_state(app.clone()),
                tls: None,
                proxies: TrustedProxies::default(),
                gate: Gate::Slots(Arc::new(Semaphore::new(crate::accept::METRICS_SLOTS))),
                timeout: upgrade_timeout,
                tasks: tasks.clone(),
            };
            let task = tokio::spawn(crate::accept::serve(metrics_listener, site, stop.clone()));
            // The main listener keeps /healthz for load balancers.
            let ws = ws
                .route(HEALTH_PATH, get(|| async { "ok" }))
                .route(READY_PATH, get(readyz::<S>));
            (ws.with_state(app), Some(task))
        }
    };
    let site = Site {
        hub: hub.clone(),
        router,
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        proxies: TrustedProxies::new(config.proxy_protocol_from.clone()),
        gate: Gate::Capped {
            refusals: Arc::new(Semaphore::new(crate::accept::REFUSAL_SLOTS)),
        },
        timeout: upgrade_timeout,
        tasks: tasks.clone(),
    };
    let local_addr = listener.local_addr()?;
    // `ready` first: on a terminal (stdout and stderr on one screen) the
    // first line shown is then `listening on ADDR`, as documented.
    ready(local_addr);
    tracing::info!(relay_id = %hub.relay_id(), tls = site.tls.is_some(), "relay serving");

    let shutdown_timeout = config.shutdown_timeout;
    let stopping = stop.clone();
    let stop_signal = {
        let stop = stop.clone();
        async move {
            shutdown.await;
            tracing::info!(
                timeout_secs = shutdown_timeout.as_secs(),
                "shutting down: closing connections (1001) after their requests in flight"
            );
            stop.cancel();
        }
    };
    tokio::spawn(stop_signal);
    let run = async {
        crate::accept::serve(listener, site, stop.clone()).await;
        tasks.close();
        tasks.wait().await;
        Ok::<(), std::io::Error>(())
    };
    tokio::pin!(run);
    let deadline = async {
        stopping.cancelled().await;
        tokio::time::sleep(shutdown_timeout).await;
    };
    let served = tokio::select! {
        served = &mut run => served,
        () = deadline => {
            tracing::warn!(
                timeout_secs = shutdown_timeout.as_secs(),
                "shutdown timeout reached; exiting with connections or commits still open"
            );
            Ok(())
        }
    };
    let _ = sweeper.await;
    if let Some(task) = metrics_task {
        task.abort();
    }
    drop(hub);
    tracing::info!("relay stopped");
    served.map_err(RelayError::from)
}

/// Readiness: 200 once the store answers (Redis reachable, redb open),
/// 503 while it does not or while the relay shuts down.
const READY_PATH: &str = "/readyz";
/// Prometheus scrape endpoint.
const METRICS_PATH: &str = "/metrics";

async fn readyz<S: Store>(State(app): State<App<S>>) -> Response {
    if app.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let answered = tokio::time::timeout(READY_TIMEOUT, app.hub.store_answers())
        .await
        .unwrap_or(false);
    if answered {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
    }
}

/// How long `/readyz` waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

async fn metrics<S: Store>(State(app): State<App<S>>) -> Response {
    let store = tokio::time::timeout(crate::metrics::STATS_TIMEOUT, app.hub.store_stats())
        .await
        .ok()
        .and_then(Result::ok);
    let snapshot = Snapshot {
        users_online: app.hub.users_online(),
        store,
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&snapshot),
    )
        .into_response()
}

/// Initial read buffer per connection. tungstenite zero-fills the free
/// part of its read buffer (up to this size) before every read, and the
/// default 128 KiB made that memset ~8% of relay CPU under load and 128 KiB
/// of RSS per connection once touched. Larger frames still grow the buffer.
/// It stays allocated for the connection's life: 2 KiB instead of 4 KiB
/// saved 2 KiB per idle connection with no measurable cost per message;
/// 1 KiB cost 3-5% more CPU per message (docs/benchmarks.md).
const READ_BUFFER: usize = 2048;

async fn upgrade<S: Store>(
    app: App<S>,
    peer: SocketAddr,
    admission: Admission<S>,
    ws: WebSocketUpgrade,
    ws_cap: usize,
) -> Response {
    if app.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "relay shutting down").into_response();
    }
    // The slot was taken when the connection was accepted (crate::accept).
    let ip_guard = match admission.take() {
        Some(Ok(guard)) => guard,
        Some(Err(crate::hub::Refused::PerAddress)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from this address",
            )
                .into_response();
        }
        Some(Err(crate::hub::Refused::Total)) | None => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "relay at its connection limit",
            )
                .into_response();
        }
    };
    tracing::debug!(%peer, "WebSocket upgrade");
    let token = app.hub.tasks().token();
    let hub = app.hub.clone();
    let shutdown = app.shutdown.clone();
    ws.max_message_size(ws_cap)
        .max_frame_size(ws_cap)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| crate::connection::run(hub, socket, ip_guard, shutdown, token))
}

async fn sweep<S: Store>(hub: &Hub<S>) {
    match hub.sweep_expired().await {
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
    tls: bool,
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
        let tls = config.tls.is_some();
        if let Some(files) = &config.tls {
            // Refused here rather than by the spawned task.
            crate::tls::server_config(files)?;
        }
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
                let bus = redis_bus(&store, &config);
                let config = config.with_relay_id(relay_id.clone());
                let task = tokio::spawn(async move {
                    serve_inner(store, bus, config, listener, shutdown, |_| {}).await
                });
                (task, relay_id)
            }
        };
        Ok(Self {
            local_addr,
            relay_id,
            tls,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://ADDR/v1/ws` (`wss://` when serving TLS).
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.local_addr, WS_PATH)
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
