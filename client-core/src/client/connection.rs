//! One authenticated WebSocket connection to a relay: the handshake, a
//! writer task, a reader task that routes replies to their requests by
//! `rid` and everything unsolicited (envelopes, `prekeys_low`, the close)
//! to the client's inbox, in the order the relay sent it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hush_protocol::frame::{Auth, AuthOk, Envelope, PresenceEntry};
use hush_protocol::{
    ClientFrame, ErrorCode, PublicKeyBytes, ServerFrame, SignatureBytes, UserId, close, signing,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tracing::{debug, warn};

use super::ClientError;

/// Unsolicited things the relay sends, in order.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// An envelope pushed from our mailbox (or an ephemeral one).
    Envelope(Envelope),
    /// Our published one-time prekeys run low.
    PrekeysLow(u32),
    /// A subscribed user's presence changed.
    Presence(PresenceEntry),
    /// The connection ended; `code` is the WebSocket close code if one came.
    Closed { code: Option<u16>, reason: String },
}

/// Requests waiting for their reply; `None` once the connection ended, so a
/// request queued after that fails at once instead of waiting for a reply
/// that cannot come.
type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<ServerFrame>>>>>;

/// The sending half of a live connection, shared by every request.
#[derive(Debug)]
pub(crate) struct Link {
    out: mpsc::Sender<WsMessage>,
    pending: Pending,
    next_rid: AtomicU64,
    request_timeout: Duration,
}

/// A reply that will arrive for a request already queued on the socket.
#[derive(Debug)]
pub(crate) struct ReplyFuture {
    rx: oneshot::Receiver<ServerFrame>,
    timeout: Duration,
}

impl ReplyFuture {
    /// Waits for the reply. An `error` frame becomes a [`ClientError`].
    pub async fn wait(self) -> Result<ServerFrame, ClientError> {
        match tokio::time::timeout(self.timeout, self.rx).await {
            Err(_) => Err(ClientError::Timeout),
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Ok(Ok(ServerFrame::Error(e))) => Err(ClientError::from_relay(e.code, e.message)),
            Ok(Ok(frame)) => Ok(frame),
        }
    }
}

impl Link {
    fn rid(&self) -> u64 {
        self.next_rid.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues the request built by `build` (given its `rid`) on the socket
    /// and returns a future for its reply. Frames queued by one task reach
    /// the relay in the order they were queued.
    pub async fn enqueue(
        &self,
        build: impl FnOnce(u64) -> ClientFrame,
    ) -> Result<ReplyFuture, ClientError> {
        let rid = self.rid();
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| ClientError::Internal("pending-request map poisoned"))?
            .as_mut()
            .ok_or(ClientError::Disconnected)?
            .insert(rid, tx);
        let text = build(rid).encode();
        if self.out.send(WsMessage::text(text)).await.is_err() {
            self.forget(rid);
            return Err(ClientError::Disconnected);
        }
        Ok(ReplyFuture {
            rx,
            timeout: self.request_timeout,
        })
    }

    /// Sends a request and waits for its reply.
    pub async fn request(
        &self,
        build: impl FnOnce(u64) -> ClientFrame,
    ) -> Result<ServerFrame, ClientError> {
        self.enqueue(build).await?.wait().await
    }

    /// Sends a request whose reply nobody waits for (acknowledgements).
    pub async fn send_only(
        &self,
        build: impl FnOnce(u64) -> ClientFrame,
    ) -> Result<(), ClientError> {
        let text = build(self.rid()).encode();
        self.out
            .send(WsMessage::text(text))
            .await
            .map_err(|_| ClientError::Disconnected)
    }

    /// Closes the connection normally.
    pub async fn close(&self) {
        let frame = CloseFrame {
            code: close::NORMAL.into(),
            reason: "client closing".into(),
        };
        let _ = self.out.send(WsMessage::Close(Some(frame))).await;
    }

    fn forget(&self, rid: u64) {
        if let Ok(mut p) = self.pending.lock()
            && let Some(p) = p.as_mut()
        {
            p.remove(&rid);
        }
    }
}

/// How to sign in: the user id and a signer for the auth message.
pub(crate) struct Credentials<'a> {
    pub user_id: &'a UserId,
    pub identity_key: [u8; 32],
    pub sign: &'a (dyn Fn(&[u8]) -> [u8; 64] + Sync),
    /// The relay id this profile registered with, if recorded: a challenge
    /// naming another relay is refused before anything is signed.
    pub relay_id: Option<&'a str>,
}

/// What an authenticated connection learned in its handshake.
#[derive(Debug)]
pub(crate) struct Handshake {
    pub auth_ok: AuthOk,
    /// The relay id its challenge named (signed over in `auth`).
    pub relay_id: String,
}

/// The normalised WebSocket URL for a relay address: `ws://host:port` gets
/// the protocol path appended.
pub fn ws_url(relay: &str) -> Result<String, ClientError> {
    let bad = |reason: &str| ClientError::InvalidRelayUrl {
        url: relay.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = relay
        .strip_prefix("ws://")
        .or_else(|| relay.strip_prefix("wss://"))
        .ok_or_else(|| bad("must start with ws:// or wss://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("no host"));
    }
    match rest.find('/') {
        None => Ok(format!("{}{}", relay, hush_protocol::frame::WS_PATH)),
        Some(i) if &rest[i..] == "/" => Ok(format!(
            "{}{}",
            relay.trim_end_matches('/'),
            hush_protocol::frame::WS_PATH
        )),
        Some(_) => Ok(relay.to_owned()),
    }
}

/// The port a relay listens on unless told otherwise (`hush-relay
/// --listen`), named when a URL without a port was refused.
pub const DEFAULT_RELAY_PORT: u16 = 7070;

/// Whether `url` (`ws://` or `wss://`) names a port.
fn has_port(url: &str) -> bool {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    // `[v6]:port`, or `host:port`; a bare IPv6 literal has no port.
    let after_host = match authority.rfind(']') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    after_host
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The host part of `url`'s authority, as written (IPv6 with brackets).
fn host_of(url: &str) -> &str {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

/// Why a WebSocket connection could not be opened, in words a user can act
/// on: a refused connection to a URL without a port names the port tried
/// and the relay's default; a `wss://` URL answered by a plain (non-TLS)
/// relay says so instead of the TLS library's "corrupt message".
fn connect_failure(url: &str, e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let tls = url.starts_with("wss://");
    if let WsError::Io(io) = e {
        if tls && io_is_plain_text_reply(io) {
            return format!(
                "the relay does not speak TLS here; use ws://{} ({e})",
                host_of(url)
            );
        }
        if io.kind() == std::io::ErrorKind::ConnectionRefused && !has_port(url) {
            let (tried, scheme) = if tls { (443, "wss") } else { (80, "ws") };
            return format!(
                "connection refused; no port given, so port {tried} was tried; the relay's \
                 default is {DEFAULT_RELAY_PORT} ({scheme}://{}:{DEFAULT_RELAY_PORT})",
                host_of(url)
            );
        }
    }
    if tls && e.to_string().contains("InvalidContentType") {
        return format!(
            "the relay does not speak TLS here; use ws://{} ({e})",
            host_of(url)
        );
    }
    e.to_string()
}

/// A TLS handshake answered with something that is not TLS at all (an
/// HTTP reply from a plain WebSocket server).
fn io_is_plain_text_reply(io: &std::io::Error) -> bool {
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
            )
        })
}

/// The system's trusted roots, read once per process.
fn system_roots() -> &'static [rustls_pki_types::CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<rustls_pki_types::CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            debug!(error = %e, "a system root certificate could not be read");
        }
        found.certs
    })
}

/// The rustls client configuration for `wss://`: TLS 1.2 and 1.3 with the
/// `ring` provider, trusting the system's roots plus the certificates of
/// `ca_file` (PEM), if given.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = ca_file {
        let bad = |e: &dyn std::fmt::Display| {
            ClientError::Tls(format!("CA file {}: {e}", path.display()))
        };
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        if certs.is_empty() {
            return Err(bad(&"no CERTIFICATE block in the file"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(&e))?;
        }
    }
    if roots.is_empty() {
        return Err(ClientError::Tls(
            "no trusted root certificates (none in the system store, no CA file given)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens and authenticates a connection. Returns the link, the inbox of
/// unsolicited frames and what the handshake learned. A `wss://` URL is
/// verified against the system's roots and `ca_file`. A challenge naming a
/// relay id other than `creds.relay_id` is refused with
/// [`ClientError::RelayIdMismatch`] and nothing is signed.
pub(crate) async fn open(
    url: &str,
    creds: Credentials<'_>,
    request_timeout: Duration,
    max_frame_bytes: usize,
    ca_file: Option<&Path>,
) -> Result<(Arc<Link>, mpsc::Receiver<Inbound>, Handshake), ClientError> {
    let mut ws_config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    ws_config.max_message_size = Some(max_frame_bytes);
    ws_config.max_frame_size = Some(max_frame_bytes);
    let connector = if url.starts_with("wss://") {
        Some(tokio_tungstenite::Connector::Rustls(tls_config(ca_file)?))
    } else {
        None
    };
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(ws_config), true, connector);
    let (ws, _response) = tokio::time::timeout(request_timeout, connect)
        .await
        .map_err(|_| ClientError::Unreachable {
            url: url.to_owned(),
            reason: "connection timed out".into(),
        })?
        .map_err(|e| ClientError::Unreachable {
            url: url.to_owned(),
            reason: connect_failure(url, &e),
        })?;
    let (mut sink, mut stream) = ws.split();

    // Handshake: challenge, auth, auth_ok, all under the request timeout.
    let handshake = async {
        let challenge = match next_frame(&mut stream).await? {
            ServerFrame::Challenge(c) => c,
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected a challenge first, got {other:?}"
                )));
            }
        };
        if let Some(pinned) = creds.relay_id
            && pinned != challenge.relay_id
        {
            return Err(ClientError::RelayIdMismatch {
                pinned: pinned.to_owned(),
                presented: challenge.relay_id,
            });
        }
        let message = signing::auth_message(
            &challenge.relay_id,
            &challenge.challenge.0,
            creds.user_id.as_str(),
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let auth = ClientFrame::Auth(Auth {
            rid: 0,
            user_id: creds.user_id.clone(),
            identity_key: PublicKeyBytes(creds.identity_key),
            signature: SignatureBytes((creds.sign)(&message)),
        });
        sink.send(WsMessage::text(auth.encode()))
            .await
            .map_err(|_| ClientError::Disconnected)?;
        match next_frame(&mut stream).await? {
            ServerFrame::AuthOk(auth_ok) => Ok(Handshake {
                auth_ok,
                relay_id: challenge.relay_id,
            }),
            ServerFrame::Error(e) if e.code == ErrorCode::AuthFailed => {
                Err(ClientError::AuthRejected { message: e.message })
            }
            ServerFrame::Error(e) => Err(ClientError::from_relay(e.code, e.message)),
            other => Err(ClientError::Protocol(format!(
                "expected auth_ok, got {other:?}"
            ))),
        }
    };
    let handshake = tokio::time::timeout(request_timeout, handshake)
        .await
        .map_err(|_| ClientError::Timeout)??;

    let (out_tx, mut out_rx) = mpsc::channel::<WsMessage>(256);
    let (inbox_tx, inbox_rx) = mpsc::channel::<Inbound>(1024);
    let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));

    tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            let closing = matches!(msg, WsMessage::Close(_));
            if sink.send(msg).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let reader_pending = pending.clone();
    tokio::spawn(async move {
        let (code, reason) = read_loop(&mut stream, &reader_pending, &inbox_tx).await;
        // Fail every request still waiting, and every one queued from now
        // on: their replies will never come.
        if let Ok(mut p) = reader_pending.lock() {
            *p = None;
        }
        let _ = inbox_tx.send(Inbound::Closed { code, reason }).await;
    });

    let link = Arc::new(Link {
        out: out_tx,
        pending,
        next_rid: AtomicU64::new(1),
        request_timeout,
    });
    Ok((link, inbox_rx, handshake))
}

type WsStream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

async fn next_frame(stream: &mut WsStream) -> Result<ServerFrame, ClientError> {
    loop {
        match stream.next().await {
            None => return Err(ClientError::Disconnected),
            Some(Err(e)) => return Err(ClientError::Protocol(e.to_string())),
            Some(Ok(WsMessage::Text(t))) => {
                return ServerFrame::decode(t.as_str())
                    .map_err(|e| ClientError::Protocol(e.to_string()));
            }
            Some(Ok(WsMessage::Close(frame))) => {
                let reason = frame
                    .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                    .unwrap_or_default();
                return Err(ClientError::Protocol(format!(
                    "relay closed the connection during the handshake: {reason}"
                )));
            }
            Some(Ok(_)) => continue,
        }
    }
}

async fn read_loop(
    stream: &mut WsStream,
    pending: &Pending,
    inbox: &mpsc::Sender<Inbound>,
) -> (Option<u16>, String) {
    loop {
        let text = match stream.next().await {
            None => return (None, "connection lost".into()),
            Some(Err(e)) => return (None, e.to_string()),
            Some(Ok(WsMessage::Text(t))) => t,
            Some(Ok(WsMessage::Close(frame))) => {
                return match frame {
                    Some(f) => (Some(f.code.into()), f.reason.to_string()),
                    None => (None, "closed without a code".into()),
                };
            }
            Some(Ok(_)) => continue,
        };
        let frame = match ServerFrame::decode(text.as_str()) {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "ignoring a frame the relay sent that does not parse");
                continue;
            }
        };
        let forward = match frame {
            ServerFrame::Envelope(env) => Inbound::Envelope(env),
            ServerFrame::PrekeysLow(low) => Inbound::PrekeysLow(low.one_time_prekeys),
            ServerFrame::PresenceUpdate(entry) => Inbound::Presence(entry),
            reply => {
                match reply_rid(&reply) {
                    Some(rid) => {
                        let waiter = pending
                            .lock()
                            .ok()
                            .and_then(|mut p| p.as_mut().and_then(|p| p.remove(&rid)));
                        match waiter {
                            Some(tx) => {
                                let _ = tx.send(reply);
                            }
                            None => debug!(rid, "reply nobody waits for"),
                        }
                    }
                    None => warn!(?reply, "unsolicited frame from the relay"),
                }
                continue;
            }
        };
        if inbox.send(forward).await.is_err() {
            return (None, "client stopped".into());
        }
    }
}

fn reply_rid(frame: &ServerFrame) -> Option<u64> {
    match frame {
        ServerFrame::AuthOk(f) => Some(f.rid),
        ServerFrame::KeysPublished(f) => Some(f.rid),
        ServerFrame::Bundle(f) => Some(f.rid),
        ServerFrame::Identity(f) => Some(f.rid),
        ServerFrame::Accepted(f) => Some(f.rid),
        ServerFrame::Acked(f) => Some(f.rid),
        ServerFrame::Pong(f) => Some(f.rid),
        ServerFrame::PresenceAllowed(f) => Some(f.rid),
        ServerFrame::Presence(f) => Some(f.rid),
        ServerFrame::Error(f) => f.rid,
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_appends_the_protocol_path() {
        assert_eq!(
            ws_url("ws://127.0.0.1:7070").unwrap(),
            "ws://127.0.0.1:7070/v1/ws"
        );
        assert_eq!(ws_url("ws://h:1/").unwrap(), "ws://h:1/v1/ws");
        assert_eq!(ws_url("wss://h/custom/ws").unwrap(), "wss://h/custom/ws");
    }

    #[test]
    fn a_port_is_seen_in_every_url_form() {
        assert!(has_port("ws://h:7070/v1/ws"));
        assert!(has_port("wss://[::1]:443/v1/ws"));
        assert!(!has_port("ws://h/v1/ws"));
        assert!(!has_port("ws://[::1]/v1/ws"));
        assert!(!has_port("ws://h:/v1/ws"));
        assert_eq!(host_of("ws://h:1/v1/ws"), "h:1");
    }

    #[test]
    fn ws_url_rejects_other_schemes_and_empty_hosts() {
        assert!(matches!(
            ws_url("http://h"),
            Err(ClientError::InvalidRelayUrl { .. })
        ));
        assert!(matches!(
            ws_url("ws://"),
            Err(ClientError::InvalidRelayUrl { .. })
        ));
        assert!(matches!(
            ws_url("ws:///x"),
            Err(ClientError::InvalidRelayUrl { .. })
        ));
    }
}
