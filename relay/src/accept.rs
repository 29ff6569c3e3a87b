//! The relay's own accept loop and HTTP connection driver, in place of
//! `axum::serve` (which has no deadline for a request that never comes and
//! counts nothing before the handler runs).
//!
//! Every accepted TCP connection goes through, in order and all within one
//! deadline (`upgrade_timeout`, from the accept):
//!
//! 1. the PROXY protocol header, only from `proxy_protocol_from` networks
//!    ([`crate::proxy`]); it gives the client's address;
//! 2. admission against the caps, by that address: a slot of
//!    `max_connections_per_ip` and `max_connections` ([`Hub::ip_guard`]),
//!    held from here until the connection (or the WebSocket it becomes)
//!    closes. Over a cap, the connection takes one of [`REFUSAL_SLOTS`]
//!    refusal slots and is served with the upgrade refused (HTTP 429 for
//!    the address cap, 503 for the total); `/healthz`, `/readyz` and
//!    `/metrics` are still answered there, which keeps health checks
//!    working when the relay is full. With every refusal slot taken, it is
//!    closed at once, unanswered;
//! 3. the TLS handshake, when serving TLS;
//! 4. hyper's HTTP/1 server (upgrades on, one request per connection: a
//!    plain answer carries `Connection: close`) until the request is handed to its handler.
//!
//! A connection still short of step 4's hand-over when the deadline passes
//! is dropped (closed). The deadline is a timer around the connection's
//! future rather than a socket option, so it covers every step, however
//! slowly the peer trickles bytes. After the hand-over the handler runs: a
//! WebSocket upgrade becomes [`crate::connection::run`], bounded by
//! `auth_timeout` and `idle_timeout`; a plain answer must be written within
//! [`ANSWER_TIMEOUT`].
//!
//! File descriptors: at start the connection cap is lowered, if needed, to
//! fit `RLIMIT_NOFILE` less [`FD_HEADROOM`] (the store, listeners, Redis,
//! refusal slots and the metrics listener), so connections alone cannot
//! exhaust descriptors. If `accept` still fails for want of them
//! (EMFILE/ENFILE, e.g. a limit lowered behind the relay's back), the loop
//! backs off exponentially from [`BACKOFF_MIN`] to [`BACKOFF_MAX`] instead
//! of spinning, logs once per episode, and each time frees a spare
//! descriptor held for the purpose (`/dev/null`) to accept the connection
//! at the head of the queue and serve it as refused (its `/healthz` is
//! answered, an upgrade gets 503). The spare is taken again, and the
//! episode ends, as soon as descriptors are free.
//!
//! Shutdown: the loop stops accepting, connections not yet handed to a
//! handler are closed, answers in progress finish.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::{Hub, IpGuard, Refused};
use crate::proxy::TrustedProxies;
use crate::store::Store;

/// Connections over a cap that are still answered (HTTP 429/503, or the
/// health and metrics endpoints) at one time; more are closed at once.
pub(crate) const REFUSAL_SLOTS: usize = 32;
/// Connections of the separate metrics listener at one time.
pub(crate) const METRICS_SLOTS: usize = 16;
/// Descriptors kept out of the connection cap: store files, listeners,
/// Redis connections, the runtime's own, [`REFUSAL_SLOTS`] and
/// [`METRICS_SLOTS`].
pub(crate) const FD_HEADROOM: usize = 64 + REFUSAL_SLOTS + METRICS_SLOTS;
/// Longest time for a plain HTTP handler and the writing of its answer
/// (`/readyz` waits up to 2 s for the store).
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// First pause after `accept` failed for want of descriptors.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause between `accept` attempts while descriptors are short.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The peer address handlers see (`ConnectInfo<Peer>`): the client's, from
/// the PROXY header when there is one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// This connection's admission, put in the request for the upgrade
/// handler, which takes the slot into the WebSocket's task.
pub(crate) struct Admission<S>(Arc<Mutex<Option<Slot<S>>>>);

/// A connection slot under the caps, or the cap that refused one.
pub(crate) type Slot<S> = Result<IpGuard<S>, Refused>;

impl<S> Clone for Admission<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S> Admission<S> {
    /// The connection slot, or why there is none. `None` once taken.
    pub(crate) fn take(&self) -> Option<Slot<S>> {
        // Never poisoned: nothing panics while it is held.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// How a listener admits its connections.
#[derive(Debug)]
pub(crate) enum Gate {
    /// The WebSocket listener: caps per address and in all, with refusal
    /// slots beyond them.
    Capped { refusals: Arc<Semaphore> },
    /// The metrics listener: a fixed number of connections.
    Slots(Arc<Semaphore>),
}

/// One listener's serving setup.
pub(crate) struct Site<S> {
    pub(crate) hub: Hub<S>,
    pub(crate) router: Router,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) proxies: TrustedProxies,
    pub(crate) gate: Gate,
    pub(crate) timeout: Duration,
    pub(crate) tasks: TaskTracker,
}

/// What a connection was admitted as.
enum Admitted<S> {
    /// Counted under the caps.
    Slot(IpGuard<S>),
    /// Over a cap: answered, upgrade refused.
    Refused(Refused, OwnedSemaphorePermit),
    /// The metrics listener.
    Plain(OwnedSemaphorePermit),
}

/// The connection cap that fits the process's descriptor limit.
pub(crate) fn fit_fd_limit(max_connections: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .and_then(|l| usize::try_from(l).ok());
    let Some(limit) = limit else {
        return max_connections;
    };
    let usable = limit.saturating_sub(FD_HEADROOM).max(limit / 2).max(1);
    if max_connections > usable {
        tracing::warn!(
            max_connections,
            fd_limit = limit,
            using = usable,
            "max_connections does not fit the file descriptor limit (RLIMIT_NOFILE); lowered"
        );
        usable
    } else {
        max_connections
    }
}

fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(
            rustix::io::Errno::MFILE
                | rustix::io::Errno::NFILE
                | rustix::io::Errno::NOBUFS
                | rustix::io::Errno::NOMEM
        )
    )
}

/// A descriptor held in reserve for accepting while descriptors are out.
fn spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Accepts on `listener` until `stop` is cancelled; each connection in a
/// task of its own (tracked, so shutdown waits for it).
pub(crate) async fn serve<S: Store>(listener: TcpListener, site: Site<S>, stop: CancellationToken) {
    let site = Arc::new(site);
    let mut reserve = spare();
    // Some(pause) while descriptors are short (one episode).
    let mut backoff: Option<Duration> = None;
    let mut failures: u64 = 0;
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => {
                if backoff.take().is_some() {
                    tracing::info!(failures, "accepting again: file descriptors available");
                    failures = 0;
                }
                if reserve.is_none() {
                    reserve = spare();
                }
                spawn_connection(&site, tcp, peer, &stop, false);
            }
            Err(e) if out_of_descriptors(&e) => {
                failures += 1;
                let pause = match backoff {
                    None => {
                        tracing::warn!(error = %e, "accept failed: out of file descriptors; backing off (logged once until it recovers)");
                        BACKOFF_MIN
                    }
                    Some(p) => (p * 2).min(BACKOFF_MAX),
                };
                backoff = Some(pause);
                // The spare descriptor lets the connection at the head of
                // the queue in (answered as refused: health checks work),
                // so the queue moves instead of timing out.
                if reserve.take().is_some() {
                    let next = tokio::time::timeout(Duration::from_millis(1), listener.accept());
                    if let Ok(Ok((tcp, peer))) = next.await {
                        spawn_connection(&site, tcp, peer, &stop, true);
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                if reserve.is_none() {
                    reserve = spare();
                }
            }
            Err(e) => {
                // The peer gave up before we took it (ECONNABORTED) and
                // the like: nothing to wait for.
                tracing::debug!(error = %e, "accept failed");
            }
        }
    }
}

fn spawn_connection<S: Store>(
    site: &Arc<Site<S>>,
    tcp: TcpStream,
    peer: SocketAddr,
    stop: &CancellationToken,
    starved: bool,
) {
    if let Err(e) = tcp.set_nodelay(true) {
        // Replies and pushes are small frames written once per batch; with
        // Nagle's algorithm each would wait for the peer's delayed ACK.
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let site = Arc::clone(site);
    let stop = stop.clone();
    let tasks = site.tasks.clone();
    tasks.spawn(handle(site, tcp, peer, stop, starved));
}

async fn handle<S: Store>(
    site: Arc<Site<S>>,
    mut tcp: TcpStream,
    tcp_peer: SocketAddr,
    stop: CancellationToken,
    starved: bool,
) {
    let deadline = Instant::now() + site.timeout;
    let mut peer = tcp_peer;
    let trusted = matches!(site.gate, Gate::Capped { .. }) && site.proxies.trusts(tcp_peer.ip());
    if trusted {
        match tokio::time::timeout_at(deadline, crate::proxy::read_header(&mut tcp)).await {
            Ok(Ok(Some(client))) => peer = client,
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::info!(proxy = %tcp_peer, error = %e, "refused a connection from a trusted proxy");
                return;
            }
            Err(_) => {
                tracing::debug!(proxy = %tcp_peer, "no PROXY header within upgrade_timeout");
                return;
            }
        }
    }
    let Some(admitted) = admit(&site, peer, starved) else {
        tracing::debug!(%peer, "over the connection caps with no refusal slot free; closed");
        return;
    };
    let (slot, _permit) = match admitted {
        Admitted::Slot(g) => (Some(Ok(g)), None),
        Admitted::Refused(r, p) => (Some(Err(r)), Some(p)),
        Admitted::Plain(p) => (None, Some(p)),
    };
    let admission = Admission(Arc::new(Mutex::new(slot)));
    match &site.tls {
        None => drive(&site, tcp, peer, admission, deadline, &stop).await,
        Some(acceptor) => {
            let handshake = tokio::select! {
                () = stop.cancelled() => return,
                h = tokio::time::timeout_at(deadline, acceptor.accept(tcp)) => h,
            };
            match handshake {
                Ok(Ok(tls)) => drive(&site, tls, peer, admission, deadline, &stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake not done within upgrade_timeout"),
            }
        }
    }
}

fn admit<S: Store>(site: &Site<S>, peer: SocketAddr, starved: bool) -> Option<Admitted<S>> {
    match &site.gate {
        Gate::Slots(slots) => Arc::clone(slots)
            .try_acquire_owned()
            .ok()
            .map(Admitted::Plain),
        Gate::Capped { refusals } => {
            let counted = if starved {
                // Taken with the spare descriptor: answered, never kept.
                Err(Refused::Total)
            } else {
                site.hub.ip_guard(peer.ip())
            };
            match counted {
                Ok(guard) => Some(Admitted::Slot(guard)),
                Err(why) => Arc::clone(refusals)
                    .try_acquire_owned()
                    .ok()
                    .map(|p| Admitted::Refused(why, p)),
            }
        }
    }
}

/// Serves one HTTP/1 request on `io`; closes it if the request has not
/// reached its handler by `deadline`.
async fn drive<S: Store, IO>(
    site: &Site<S>,
    io: IO,
    peer: SocketAddr,
    admission: Admission<S>,
    deadline: Instant,
    stop: &CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let dispatched = Arc::new(Notify::new());
    let service = {
        let dispatched = Arc::clone(&dispatched);
        let inner = TowerToHyperService::new(site.router.clone());
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            dispatched.notify_one();
            req.extensions_mut().insert(ConnectInfo(Peer(peer)));
            req.extensions_mut().insert(admission.clone());
            let answer = inner.call(req);
            async move {
                let mut response = answer.await?;
                // One request per connection: an answer that is not an
                // upgrade ends it (hyper's keep_alive(false) would also
                // spoil the upgrade's own `Connection: upgrade`).
                if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
                    response.headers_mut().insert(
                        hyper::header::CONNECTION,
                        hyper::header::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(site.timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        biased;
        r = conn.as_mut() => {
            finished(peer, r);
            return;
        }
        () = dispatched.notified() => {}
        () = stop.cancelled() => return,
        () = tokio::time::sleep_until(deadline) => {
            tracing::debug!(%peer, "no request within upgrade_timeout; closed");
            return;
        }
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, conn).await {
        Ok(r) => finished(peer, r),
        Err(_) => tracing::debug!(%peer, "answer not taken within {ANSWER_TIMEOUT:?}; closed"),
    }
}

fn finished(peer: SocketAddr, r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}
