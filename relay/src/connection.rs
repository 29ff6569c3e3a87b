//! One WebSocket connection: challenge, authentication, then requests.
//!
//! Two tasks per connection: this reader, which handles one request at a
//! time in order (so replies come in request order), and a writer that owns
//! the socket's sending half and drains a bounded queue. Replies wait for
//! room in the queue (backpressure on this client only); pushes from other
//! connections never wait (see [`crate::hub`]).
//!
//! Errors before authentication close the connection (4001, or 4002 for the
//! deadline); errors after it are answered and the connection stays open.

use std::future::Future;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use ed25519_dalek::{Signature, VerifyingKey};
use futures_util::stream::{FuturesOrdered, SplitSink};
use futures_util::{SinkExt, StreamExt};
use hush_protocol::frame::{
    Accepted, Ack, Acked, AuthOk, Bundle, Challenge, FetchBundle, Identity, KeysPublished, Lookup,
    PROTOCOL_VERSION, Pong, PrekeysLow, PublishKeys, SendEnvelope,
};
use hush_protocol::{ChallengeBytes, ClientFrame, ErrorCode, ServerFrame, UserId, close, signing};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::hub::{Hub, IpGuard, Kill, Outbound, Session, TaskToken, kill};
use crate::random::os_bytes;
use crate::rate::TokenBucket;
use crate::store::{
    AppendOutcome, AuthOutcome, NewEnvelope, PublishOutcome, PublishedKeys, Store, StoredEnvelope,
};

mod presence_frames;

mod drain;

/// How long a close frame may take to go out before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

type Flow = ControlFlow<()>;

/// Most requests of one connection in flight (sends awaiting their commit).
/// Beyond it the connection's frames are not read until some complete.
const MAX_IN_FLIGHT: usize = 256;

/// A request that completed: its reply, and an envelope to push to its
/// recipient first (a committed send).
struct Done {
    frame: ServerFrame,
    deliver: Option<(UserId, StoredEnvelope)>,
    /// Body bytes this request held in flight (a send), released now.
    bytes: usize,
}

type InFlight = Pin<Box<dyn Future<Output = Done> + Send>>;

struct Authed {
    user: UserId,
    key: VerifyingKey,
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Serves one upgraded WebSocket until it closes.
pub(crate) async fn run<S: Store>(
    hub: Hub<S>,
    socket: WebSocket,
    ip_slot: IpGuard<S>,
    mut shutdown: watch::Receiver<bool>,
    _token: TaskToken,
) {
    let limits = hub.limits.clone();
    let conn_id = hub.next_conn_id();
    let _gauge = crate::metrics::connection_opened();
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::channel(limits.outbound_queue.max(1));
    let (kill_tx, mut kill_rx) = watch::channel(None);
    let kill_tx: Kill = Arc::new(kill_tx);
    let writer = tokio::spawn(writer(sink, out_rx, kill_rx.clone()));

    let challenge = match os_bytes::<32>() {
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
        relay_id: conn.hub.relay_id.clone(),
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
    let stopping = shutdown.changed();
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
            _ = &mut stopping => {
                conn.finish_in_flight_and_close().await;
                break;
            }
            () = &mut deadline, if conn.authed.is_none() => {
                conn.fail(None, ErrorCode::AuthTimeout, "authentication deadline passed", close::AUTH_TIMEOUT).await;
                break;
            }
            Some(done) = conn.pending.next(), if !conn.pending.is_empty() => {
                conn.in_flight_bytes = conn.in_flight_bytes.saturating_sub(done.bytes);
                if let Some((to, env)) = &done.deliver {
                    conn.hub.deliver(to, env);
                }
                go_on = conn.send_now(&done.frame).await.is_continue();
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
        conn.hub.presence_forget(conn_id);
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

/// Most queued frames written before one flush.
const WRITE_BATCH: usize = 64;

/// Owns the sending half: drains the queue in order, writing whatever is
/// already queued before flushing once; a kill preempts it.
async fn writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    mut kill_rx: watch::Receiver<Option<u16>>,
) {
    let code = loop {
        let first = tokio::select! {
            biased;
            _ = kill_rx.changed() => break *kill_rx.borrow(),
            item = rx.recv() => item,
        };
        let mut then_close = None;
        let text = match first {
            Some(Outbound::Text(t)) => Message::Text(t),
            Some(Outbound::Close(code, reason)) => {
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_msg(code, reason))).await;
                return;
            }
            Some(Outbound::Ping) => Message::Ping(Default::default()),
            None => return,
        };
        let write = async {
            sink.feed(text).await?;
            for _ in 1..WRITE_BATCH {
                match rx.try_recv() {
                    Ok(Outbound::Text(t)) => sink.feed(Message::Text(t)).await?,
                    Ok(Outbound::Ping) => sink.feed(Message::Ping(Default::default())).await?,
                    Ok(Outbound::Close(code, reason)) => {
                        then_close = Some((code, reason));
                        break;
                    }
                    Err(_) => break,
                }
            }
            sink.flush().await
        };
        tokio::select! {
            biased;
            _ = kill_rx.changed() => break *kill_rx.borrow(),
            r = write => if r.is_err() { return },
        }
        if let Some((code, reason)) = then_close {
            let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_msg(code, reason))).await;
            return;
        }
    };
    let code = code.unwrap_or(close::NORMAL);
    let reason = match code {
        close::REPLACED => "replaced by a newer connection",
        close::SLOW_CONSUMER => "slow consumer",
        close::GOING_AWAY => "relay shutting down",
        close::IDLE_TIMEOUT => "idle timeout",
        close::INTERNAL_ERROR => "internal error",
        _ => "",
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_msg(code, reason))).await;
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the liveness timer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Heard from recently; nothing to do.
    Quiet,
    /// Quiet for `ping_interval`: send a ping.
    Ping,
    /// Nothing for `idle_timeout`: half-open or dead.
    Dead,
}

/// Half-open detection. Reading a frame only stores the time (no timer is
/// reset per frame); the timer fires at most once per `ping_interval` and
/// decides from the time of the last frame.
#[derive(Debug)]
struct Liveness {
    ping_interval: Duration,
    idle_timeout: Duration,
    last_heard: Instant,
    next_check: Instant,
}

impl Liveness {
    fn new(ping_interval: Duration, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        let ping_interval = ping_interval.max(Duration::from_millis(10));
        Self {
            ping_interval,
            idle_timeout: idle_timeout.max(ping_interval),
            last_heard: now,
            next_check: now + ping_interval,
        }
    }

    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// Called when `next_check` is reached; sets the next one.
    fn check(&mut self, now: Instant) -> Verdict {
        let quiet = now.saturating_duration_since(self.last_heard);
        let dead_at = self.last_heard + self.idle_timeout;
        if quiet >= self.idle_timeout {
            return Verdict::Dead;
        }
        if quiet >= self.ping_interval {
            self.next_check = (now + self.ping_interval).min(dead_at);
            Verdict::Ping
        } else {
            self.next_check = (self.last_heard + self.ping_interval).min(dead_at);
            Verdict::Quiet
        }
    }
}

fn close_msg(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
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
            .max(self.hub.quotas.charge_bytes(&self.ip, len));
        if !wait.is_zero() {
            self.paused_until = Some(now + wait);
        }
    }

    /// Replies in request order: at once if nothing is in flight, else
    /// behind the requests still running.
    async fn send(&mut self, frame: &ServerFrame) -> Flow {
        if self.pending.is_empty() {
            self.send_now(frame).await
        } else {
            self.pending.push_back(Box::pin(std::future::ready(Done {
                frame: frame.clone(),
                deliver: None,
                bytes: 0,
            })));
            Flow::Continue(())
        }
    }

    async fn send_now(&mut self, frame: &ServerFrame) -> Flow {
        crate::metrics::frame_sent(frame);
        self.send_text(frame.encode()).await
    }

    async fn send_text(&mut self, text: String) -> Flow {
        match self.out.send(Outbound::Text(text.into())).await {
            Ok(()) => Flow::Continue(()),
            Err(_) => Flow::Break(()),
        }
    }

    async fn error(
        &mut self,
        rid: Option<u64>,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Flow {
        self.send(&ServerFrame::error(rid, code, message)).await
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        self.closing = true;
        let _ = self.out.send(Outbound::Close(code, reason)).await;
    }

    /// Answers an error, then closes.
    async fn fail(&mut self, rid: Option<u64>, code: ErrorCode, message: &str, close_code: u16) {
        let _ = self.error(rid, code, message).await;
        let reason = match close_code {
            close::AUTH_TIMEOUT => "authentication deadline passed",
            close::AUTH_FAILED => "authentication failed",
            _ => "closing",
        };
        self.close(close_code, reason).await;
    }

    async fn on_text(&mut self, text: Utf8Bytes) -> Flow {
        if text.len() > self.hub.limits.max_frame_bytes {
            self.close(close::MESSAGE_TOO_BIG, "frame larger than max_frame_bytes")
                .await;
            return Flow::Break(());
        }
        let frame = ClientFrame::decode(text.as_str());
        if self.authed.is_none() {
            return match frame {
                Ok(ClientFrame::Auth(a)) => Box::pin(self.authenticate(a)).await,
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
        } else if !self.hub.quotas.take_frame(&self.ip) {
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

    async fn authenticate(&mut self, a: hush_protocol::frame::Auth) -> Flow {
        let rid = Some(a.rid);
        let verified = VerifyingKey::from_bytes(&a.identity_key.0)
            .ok()
            .and_then(|key| {
                let msg =
                    signing::auth_message(&self.hub.relay_id, &self.challenge, a.user_id.as_str())
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
        if !self.hub.quotas.may_register(&self.ip) {
            // Out of registrations: only a returning user may go on.
            match self.hub.store.user_exists(&a.user_id).await {
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
            .store
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
        let epoch = match self.hub.cluster.claim(&a.user_id).await {
            Ok(e) => e,
            Err(e) => {
                return self.auth_store_failed(rid, &e).await;
            }
        };
        if registered {
            self.hub.quotas.registered(&self.ip);
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

    async fn store_error(&mut self, rid: u64, e: crate::store::StoreError) -> Flow {
        tracing::error!(error = %e, "store failed");
        self.error(
            Some(rid),
            ErrorCode::StoreUnavailable,
            "store unavailable; retry later",
        )
        .await
    }

    async fn publish_keys(&mut self, p: PublishKeys) -> Flow {
        let Some(authed) = &self.authed else {
            return Flow::Break(());
        };
        let limits = &self.hub.limits;
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
            return self
                .error(
                    Some(p.rid),
                    ErrorCode::BadSignature,
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
            .store
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

    async fn fetch_bundle(&mut self, f: FetchBundle) -> Flow {
        let allowed = self
            .authed
            .as_ref()
            .is_some_and(|a| self.hub.quotas.take_fetch(&a.user));
        if !allowed {
            return self
                .error(
                    Some(f.rid),
                    ErrorCode::RateLimited,
                    "bundle fetch quota exhausted; try later",
                )
                .await;
        }
        let fetched = match self.hub.store.fetch_bundle(&f.user_id).await {
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
        if popped && remaining < self.hub.limits.prekey_low_threshold {
            self.hub.push_to(
                &f.user_id,
                ServerFrame::PrekeysLow(PrekeysLow {
                    one_time_prekeys: remaining,
                })
                .encode(),
            );
        }
        self.send(&reply).await
    }

    async fn lookup(&mut self, l: Lookup) -> Flow {
        match self.hub.store.lookup_identity(&l.user_id).await {
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

    async fn send_envelope(&mut self, s: SendEnvelope) -> Flow {
        if s.ephemeral {
            return self.send_ephemeral(s).await;
        }
        let Some(authed) = &self.authed else {
            return Flow::Break(());
        };
        let max = self.hub.limits.max_envelope_bytes;
        if s.body.len() > max {
            let msg = format!("body is {} bytes; at most {max}", s.body.len());
            return self
                .error(Some(s.rid), ErrorCode::EnvelopeTooLarge, msg)
                .await;
        }
        let accepted_at = now_ms();
        let envelope = NewEnvelope {
            from: authed.user.clone(),
            accepted_at,
            body: s.body,
        };
        let limits = self.hub.mailbox_limits();
        // Submitted now (see `Store::append`); the reply follows the commit
        // while this connection goes on reading.
        let bytes = envelope.body.len();
        let committed =
            crate::metrics::timed_commit(self.hub.store.append(&s.to, envelope, limits));
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
                        deliver: Some((to, env)),
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
                deliver: None,
                bytes,
            }
        }));
        Flow::Continue(())
    }

    async fn ack(&mut self, a: Ack) -> Flow {
        let Some(authed) = &self.authed else {
            return Flow::Break(());
        };
        let max = self.hub.limits.max_ack_ids;
        if a.ids.len() > max {
            let msg = format!("{} ids in one ack; at most {max}", a.ids.len());
            return self.error(Some(a.rid), ErrorCode::TooManyIds, msg).await;
        }
        match self
            .hub
            .store
            .ack(&authed.user, a.ids)
            .await
            .inspect(|n| crate::metrics::envelopes_acked(*n))
        {
            Ok(_) => self.send(&ServerFrame::Acked(Acked { rid: a.rid })).await,
            Err(e) => self.store_error(a.rid, e).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: Duration = Duration::from_secs(30);
    const IDLE: Duration = Duration::from_secs(75);

    #[test]
    fn a_chatty_peer_is_never_pinged() {
        let mut l = Liveness::new(PING, IDLE);
        let t0 = l.last_heard;
        l.heard(t0 + Duration::from_secs(20));
        assert_eq!(l.check(t0 + PING), Verdict::Quiet);
        assert_eq!(l.next_check, t0 + Duration::from_secs(50));
    }

    #[test]
    fn a_quiet_peer_is_pinged_then_dropped_at_the_idle_timeout() {
        let mut l = Liveness::new(PING, IDLE);
        let t0 = l.last_heard;
        assert_eq!(l.check(t0 + PING), Verdict::Ping);
        assert_eq!(l.next_check, t0 + Duration::from_secs(60));
        assert_eq!(l.check(l.next_check), Verdict::Ping);
        assert_eq!(l.next_check, t0 + IDLE, "the last check is at the deadline");
        assert_eq!(l.check(l.next_check), Verdict::Dead);
    }

    #[test]
    fn a_pong_keeps_the_connection() {
        let mut l = Liveness::new(PING, IDLE);
        let t0 = l.last_heard;
        assert_eq!(l.check(t0 + PING), Verdict::Ping);
        l.heard(t0 + PING + Duration::from_millis(5));
        assert_eq!(l.check(l.next_check), Verdict::Quiet);
        assert_ne!(l.check(t0 + IDLE), Verdict::Dead);
    }
}
