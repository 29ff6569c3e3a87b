//! One WebSocket connection: challenge, authentication, then requests.
//!
//! Two tasks per connection: this reader, which handles one request at a
//! time in order (so replies come in request order), and a writer that owns
//! the socket's sending half and drains a bounded queue. Replies wait for
//! room in the queue (backpressure on this client only); pushes from other
//! connections never wait (see [`crate::delivery`]).
//!
//! Errors before authentication close the connection (4001, or 4002 for the
//! deadline); errors after it are answered and the connection stays open.
//!
//! | module | holds |
//! |---|---|
//! | this file | the connection's state and its read loop, frame decoding and rate limits |
//! | `writer` | the writer task (batching, close frames) |
//! | `liveness` | pings and the idle timeout |
//! | `auth` | the `auth` request |
//! | `reply` | replies in request order, and the one place a request completes |
//! | `requests` | keys, bundles, lookups, sends and acks |
//! | `presence_frames` | presence requests and ephemeral sends |
//! | `drain` | finishing the requests in flight at shutdown |

use std::future::Future;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use ed25519_dalek::VerifyingKey;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use hush_protocol::frame::{Challenge, PROTOCOL_VERSION, Pong};
use hush_protocol::{ChallengeBytes, ClientFrame, ErrorCode, ServerFrame, UserId, close};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::hub::{Hub, IpGuard};
use crate::rate::TokenBucket;
use crate::sessions::{Kill, Outbound, Session, kill};
use crate::store::Store;

mod auth;
mod copies;
mod devices;
mod drain;
mod liveness;
mod presence_frames;
mod reply;
mod requests;
mod writer;

use liveness::{Liveness, Verdict};
use reply::Done;
use writer::{CLOSE_GRACE, writer};

type Flow = ControlFlow<()>;

/// Most requests of one connection in flight (sends awaiting their commit).
/// Beyond it the connection's frames are not read until some complete.
const MAX_IN_FLIGHT: usize = 256;

type InFlight = Pin<Box<dyn Future<Output = Done> + Send>>;

struct Authed {
    /// The device's address (the account's id for device 1, see
    /// `UserId::device_address`): its session, mailbox and keys.
    user: UserId,
    /// The account (presence, quotas, device list).
    account: UserId,
    /// The device id.
    device: u32,
    /// The key it authenticated with: its device signing key (the account
    /// key for `auth`).
    key: VerifyingKey,
    /// Authenticated by `auth_device`: keys it publishes signed by another
    /// key are refused with `device_key_mismatch`.
    by_device_key: bool,
    /// This connection as the hub knows it (presence subscriptions).
    session: Arc<Session>,
}

struct Conn<S> {
    hub: Hub<S>,
    conn_id: u64,
    out: mpsc::Sender<Outbound>,
    kill: Kill,
    challenge: [u8; 32],
    /// The peer's address (registration quota).
    ip: IpAddr,
    authed: Option<Authed>,
    bucket: TokenBucket,
    /// Presence requests and ephemeral sends (see `presence_frames`).
    presence_bucket: TokenBucket,
    /// Bytes read (`byte_rate_per_sec`); with the address's shared byte
    /// bucket it decides `paused_until`.
    byte_bucket: TokenBucket,
    /// No frame is read before this instant: the connection, or its
    /// address, used up its byte budget (backpressure, not an error).
    paused_until: Option<Instant>,
    /// Body bytes of sends awaiting their commit (`max_in_flight_bytes`).
    in_flight_bytes: usize,
    /// Set once this side queued its own close frame.
    closing: bool,
    /// Requests still running, in arrival order; replies go out in this
    /// order (a reply that is ready early waits behind earlier ones).
    pending: FuturesOrdered<InFlight>,
}

/// Serves one upgraded WebSocket until it closes.
pub(crate) async fn run<S: Store>(
    hub: Hub<S>,
    socket: WebSocket,
    ip_slot: IpGuard<S>,
    shutdown: CancellationToken,
    _token: TaskTrackerToken,
) {
    let limits = hub.limits().clone();
    let conn_id = hub.next_conn_id();
    let _gauge = crate::metrics::connection_opened();
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::channel(limits.outbound_queue.max(1));
    let (kill_tx, mut kill_rx) = watch::channel(None);
    let kill_tx: Kill = Arc::new(kill_tx);
    let writer = tokio::spawn(writer(sink, out_rx, kill_rx.clone()));

    let challenge = match hub.challenge() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "OS RNG failed");
            kill(&kill_tx, close::INTERNAL_ERROR);
            let _ = writer.await;
            return;
        }
    };
    let mut conn = Conn {
        hub,
        conn_id,
        out,
        kill: kill_tx,
        challenge,
        ip: ip_slot.ip(),
        authed: None,
        bucket: TokenBucket::new(limits.rate_per_sec, limits.rate_burst, Instant::now()),
        presence_bucket: TokenBucket::new(
            limits.presence_rate_per_sec,
            limits.presence_rate_burst,
            Instant::now(),
        ),
        byte_bucket: TokenBucket::new(
            limits.byte_rate_per_sec,
            limits.byte_rate_burst,
            Instant::now(),
        ),
        paused_until: None,
        in_flight_bytes: 0,
        closing: false,
        pending: FuturesOrdered::new(),
    };
    tracing::debug!(conn = conn_id, "connection opened");
    let hello = ServerFrame::Challenge(Challenge {
        v: PROTOCOL_VERSION,
        relay_id: conn.hub.relay_id().to_owned(),
        challenge: ChallengeBytes(challenge),
    });
    let mut go_on = conn.send(&hello).await.is_continue();

    let deadline = tokio::time::sleep(limits.auth_timeout);
    tokio::pin!(deadline);
    let mut liveness = Liveness::new(limits.ping_interval, limits.idle_timeout);
    let check = tokio::time::sleep_until(liveness.next_check);
    tokio::pin!(check);
    // Built once, not once per frame: either ends the loop when it fires.
    let killed = kill_rx.changed();
    tokio::pin!(killed);
    let stopping = shutdown.cancelled();
    tokio::pin!(stopping);
    // The peer closed, vanished or broke the socket: no closing handshake.
    let mut peer_gone = false;
    while go_on {
        tokio::select! {
            biased;
            _ = &mut killed => break,
            () = &mut check => {
                match liveness.check(Instant::now()) {
                    Verdict::Dead => {
                        peer_gone = true;
                        tracing::info!(conn = conn_id, "no frame or pong within idle_timeout; dropping half-open connection");
                        kill(&conn.kill, close::IDLE_TIMEOUT);
                        conn.closing = true;
                        break;
                    }
                    Verdict::Ping => {
                        // A full queue already means the peer is behind;
                        // the slow-consumer rule handles that.
                        let _ = conn.out.try_send(Outbound::Ping);
                    }
                    Verdict::Quiet => {}
                }
                check.as_mut().reset(liveness.next_check);
            }
            () = &mut stopping => {
                conn.finish_in_flight_and_close().await;
                break;
            }
            () = &mut deadline, if conn.authed.is_none() => {
                conn.fail(None, ErrorCode::AuthTimeout, "authentication deadline passed", close::AUTH_TIMEOUT).await;
                break;
            }
            Some(done) = conn.pending.next(), if !conn.pending.is_empty() => {
                go_on = conn.complete(done).await.is_continue();
            }
            () = sleep_until_some(conn.paused_until), if conn.paused_until.is_some() => {
                conn.paused_until = None;
            }
            msg = stream.next(), if conn.may_read(limits.max_in_flight_bytes) => {
                liveness.heard(Instant::now());
                go_on = match msg {
                    Some(Ok(Message::Text(text))) => conn.on_text(text).await.is_continue(),
                    Some(Ok(Message::Binary(_))) => {
                        conn.close(close::UNSUPPORTED_DATA, "binary frames are not accepted").await;
                        false
                    }
                    Some(Ok(Message::Close(_))) => {
                        // RFC 6455 5.5.1: the WebSocket layer has queued the
                        // answer (the same code, or 1002 for a reserved or
                        // invalid one); the read after the loop sends it.
                        // No close of our own follows it.
                        conn.closing = true;
                        false
                    }
                    None => {
                        peer_gone = true;
                        false
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => true,
                    Some(Err(e)) => {
                        peer_gone = true;
                        tracing::debug!(conn = conn_id, error = %e, "read failed");
                        // The WebSocket layer refuses frames over its hard cap
                        // (twice max_frame_bytes) with a capacity error; other
                        // errors are protocol violations or a dead socket.
                        if e.to_string().contains("Space limit exceeded") {
                            conn.close(close::MESSAGE_TOO_BIG, "frame too large").await;
                        } else {
                            conn.close(close::PROTOCOL_ERROR, "WebSocket protocol error").await;
                        }
                        false
                    }
                };
            }
        }
    }

    if let Some(a) = &conn.authed {
        conn.hub.presence().forget(conn_id);
        conn.hub.deactivate(&a.user, conn_id);
    }
    if !conn.closing {
        kill(&conn.kill, close::NORMAL);
    }
    let Conn { out, authed, .. } = conn;
    drop(out);
    drop(authed);
    let _ = writer.await;
    if !peer_gone {
        // Our close frame is out: read (and drop) what the peer still sends
        // until its close reply or EOF, as RFC 6455 section 7.1.1 asks.
        // Closing a socket with unread input resets it, and a reset can
        // destroy our last replies and close frame in the peer's receive
        // buffer (seen with sends pipelined into a shutdown).
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    drop(ip_slot);
    tracing::debug!(conn = conn_id, "connection closed");
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl<S: Store> Conn<S> {
    /// Whether the next frame may be read: not too many requests or body
    /// bytes awaiting their commit, and no byte budget overdrawn.
    fn may_read(&self, max_in_flight_bytes: usize) -> bool {
        self.pending.len() < MAX_IN_FLIGHT
            && self.in_flight_bytes < max_in_flight_bytes
            && self.paused_until.is_none()
    }

    /// Charges a frame of `len` bytes to this connection's and its
    /// address's byte budgets; an overdrawn budget pauses reading until it
    /// is paid back.
    fn charge_bytes(&mut self, len: usize) {
        let now = Instant::now();
        let wait = self
            .byte_bucket
            .charge(len, now)
            .max(self.hub.quotas().charge_bytes(&self.ip, len));
        if !wait.is_zero() {
            self.paused_until = Some(now + wait);
        }
    }

    async fn on_text(&mut self, text: Utf8Bytes) -> Flow {
        let limits = self.hub.limits();
        let (max_frame, max_send) = (limits.max_frame_bytes, limits.max_send_frame_bytes);
        if text.len() > max_frame.max(max_send) {
            self.close(close::MESSAGE_TOO_BIG, "frame larger than max_frame_bytes")
                .await;
            return Flow::Break(());
        }
        let frame = ClientFrame::decode(text.as_str());
        // Only a `send_copies` may exceed max_frame_bytes (up to
        // max_send_frame_bytes).
        if text.len() > max_frame && !matches!(frame, Ok(ClientFrame::SendCopies(_))) {
            self.close(close::MESSAGE_TOO_BIG, "frame larger than max_frame_bytes")
                .await;
            return Flow::Break(());
        }
        if self.authed.is_none() {
            return match frame {
                Ok(ClientFrame::Auth(a)) => Box::pin(self.authenticate(a)).await,
                Ok(ClientFrame::AuthDevice(a)) => Box::pin(self.authenticate_device(a)).await,
                Ok(other) => {
                    self.fail(
                        Some(other.rid()),
                        ErrorCode::NotAuthenticated,
                        "authenticate first",
                        close::AUTH_FAILED,
                    )
                    .await;
                    Flow::Break(())
                }
                Err(e) => {
                    self.fail(e.rid(), e.code(), &e.to_string(), close::AUTH_FAILED)
                        .await;
                    Flow::Break(())
                }
            };
        }
        self.charge_bytes(text.len());
        let limited = if !self.bucket.try_take(Instant::now()) {
            Some("too many frames; slow down")
        } else if !self.hub.quotas().take_frame(&self.ip) {
            Some("too many frames from this address; slow down")
        } else {
            None
        };
        if let Some(message) = limited {
            let rid = match &frame {
                Ok(f) => Some(f.rid()),
                Err(e) => e.rid(),
            };
            return self.error(rid, ErrorCode::RateLimited, message).await;
        }
        match frame {
            Err(e) => self.send(&e.to_error_frame()).await,
            Ok(f) => self.handle(f).await,
        }
    }

    async fn handle(&mut self, frame: ClientFrame) -> Flow {
        match frame {
            ClientFrame::Auth(a) => {
                self.error(
                    Some(a.rid),
                    ErrorCode::AlreadyAuthenticated,
                    "already authenticated",
                )
                .await
            }
            // The hot paths run inline; the rest are boxed so their larger
            // state is allocated only while they run, not reserved in every
            // idle connection's task (docs/benchmarks.md, idle memory).
            ClientFrame::Send(s) => self.send_envelope(s).await,
            ClientFrame::Ack(a) => self.ack(a).await,
            ClientFrame::Ping(p) => self.send(&ServerFrame::Pong(Pong { rid: p.rid })).await,
            ClientFrame::PublishKeys(p) => Box::pin(self.publish_keys(p)).await,
            ClientFrame::FetchBundle(f) => Box::pin(self.fetch_bundle(f)).await,
            ClientFrame::Lookup(l) => Box::pin(self.lookup(l)).await,
            ClientFrame::PresenceAllow(p) => Box::pin(self.presence_allow(p)).await,
            ClientFrame::PresenceQuery(p) => Box::pin(self.presence_query(p)).await,
            ClientFrame::PresenceSubscribe(p) => Box::pin(self.presence_subscribe(p)).await,
            ClientFrame::SendCopies(s) => Box::pin(self.send_copies(s)).await,
            ClientFrame::PublishDeviceList(p) => Box::pin(self.publish_device_list(p)).await,
            ClientFrame::FetchDevices(f) => Box::pin(self.fetch_devices(f)).await,
            ClientFrame::FetchDeviceBundle(f) => Box::pin(self.fetch_device_bundle(f)).await,
            ClientFrame::AuthDevice(a) => {
                self.error(
                    Some(a.rid),
                    ErrorCode::AlreadyAuthenticated,
                    "already authenticated",
                )
                .await
            }
            other => {
                self.error(
                    Some(other.rid()),
                    ErrorCode::UnknownType,
                    "frame type not handled by this relay",
                )
                .await
            }
        }
    }
}
