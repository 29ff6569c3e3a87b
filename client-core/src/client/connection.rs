//! The low-level relay connection, frame by frame: open a WebSocket
//! (`ws://` or `wss://`, optionally to a given address from a given source
//! address), answer the challenge ([`Connection::authenticate`]), then
//! write and read frames. No background task, no routing of replies by
//! `rid`, no reconnection: that is the [`Client`](super::Client)'s job,
//! which runs on one of these. Used as is by load generators (`hush
//! bench`): [`Connection::feed_text`] and [`Connection::recv`] let a hot
//! loop write pre-formatted frames and parse replies lazily.
//!
//! Bundle conversion and the `publish_keys` request are in
//! [`wire`](crate::wire), re-exported here.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hush_protocol::frame::{Auth, AuthOk, FetchBundle, PublishKeys};
use hush_protocol::{ErrorCode, PublicKeyBytes, SignatureBytes, UserId, signing};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::ClientError;
use super::tls::{connect_failure, tls_config};
pub use super::url::{DEFAULT_RELAY_PORT, ws_url};
use crate::prekey::PrekeyBundle;
pub use crate::wire::{bundle_from_frame, identity_from_frame, publish_keys_frame};
pub use hush_protocol::{ClientFrame, ServerFrame, frame};

/// The WebSocket under a [`Connection`].
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The reading half of a split [`Connection`].
pub(crate) type WsStream = futures_util::stream::SplitStream<Ws>;

/// The writing half of a split [`Connection`].
pub(crate) type WsSink = futures_util::stream::SplitSink<Ws, WsMessage>;

/// How to sign in: the user id and a signer for the auth message.
pub struct Credentials<'a> {
    /// Who signs in.
    pub user_id: &'a UserId,
    /// The Ed25519 identity key the relay checks the signature with.
    pub identity_key: [u8; 32],
    /// Signs the auth message with the identity key.
    pub sign: &'a (dyn Fn(&[u8]) -> [u8; 64] + Sync),
    /// The relay id this profile registered with, if recorded: a challenge
    /// naming another relay is refused before anything is signed.
    pub relay_id: Option<&'a str>,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .field("relay_id", &self.relay_id)
            .finish_non_exhaustive()
    }
}

/// What an authenticated connection learned in its handshake.
#[derive(Debug)]
pub struct Handshake {
    /// The relay's `auth_ok`: registered now, keys published, queue size.
    pub auth_ok: AuthOk,
    /// The relay id its challenge named (signed over in `auth`).
    pub relay_id: String,
}

/// How to open a [`Connection`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// How long connecting (TCP, TLS, WebSocket upgrade) may take.
    pub timeout: Duration,
    /// Largest frame accepted from the relay.
    pub max_frame_bytes: usize,
    /// A PEM file of extra CA certificates for `wss://` (see
    /// [`ClientConfig::ca_file`](super::ClientConfig::ca_file)).
    pub ca_file: Option<PathBuf>,
    /// Connect to this address instead of resolving the URL's host (the
    /// URL still names the host in the upgrade request).
    pub connect_to: Option<SocketAddr>,
    /// Bind the socket to this local address first (with `connect_to`
    /// only): spreads many connections over several loopback addresses.
    pub source: Option<IpAddr>,
    /// The WebSocket read buffer, when not the library's default (which
    /// is zero-filled before every read: a small one is cheaper for a
    /// load generator).
    pub read_buffer_size: Option<usize>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_frame_bytes: hush_protocol::Limits::default().max_frame_bytes,
            ca_file: None,
            connect_to: None,
            source: None,
            read_buffer_size: None,
        }
    }
}

/// A text frame as the relay sent it, undecoded.
#[derive(Debug, Clone)]
pub struct TextFrame(Utf8Bytes);

impl TextFrame {
    /// The frame's JSON text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// What [`Connection::recv`] read.
#[derive(Debug)]
pub enum Received {
    /// A frame (control frames are skipped).
    Text(TextFrame),
    /// The relay closed the connection, with its close code and reason if
    /// it gave them.
    Closed(Option<(u16, String)>),
}

/// One WebSocket to a relay, read and written frame by frame.
pub struct Connection {
    ws: Ws,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens a WebSocket to `url` (a `wss://` URL is verified against the
    /// system's roots and `opts.ca_file`). Failures, a timeout included,
    /// are [`ClientError::Unreachable`] (or [`ClientError::Tls`] for an
    /// unusable TLS set-up).
    pub async fn open(url: &str, opts: &ConnectOptions) -> Result<Self, ClientError> {
        let mut ws_config = WebSocketConfig::default();
        ws_config.max_message_size = Some(opts.max_frame_bytes);
        ws_config.max_frame_size = Some(opts.max_frame_bytes);
        if let Some(n) = opts.read_buffer_size {
            ws_config.read_buffer_size = n;
        }
        let connector = if url.starts_with("wss://") {
            Some(tokio_tungstenite::Connector::Rustls(tls_config(
                opts.ca_file.as_deref(),
            )?))
        } else {
            None
        };
        let unreachable = |reason: String| ClientError::Unreachable {
            url: url.to_owned(),
            reason,
        };
        let connect = async {
            let upgraded = match opts.connect_to {
                None => {
                    tokio_tungstenite::connect_async_tls_with_config(
                        url,
                        Some(ws_config),
                        true,
                        connector,
                    )
                    .await
                }
                Some(addr) => {
                    let tcp = connect_tcp(addr, opts.source)
                        .await
                        .map_err(|e| unreachable(e.to_string()))?;
                    tokio_tungstenite::client_async_tls_with_config(
                        url,
                        tcp,
                        Some(ws_config),
                        connector,
                    )
                    .await
                }
            };
            upgraded.map_err(|e| unreachable(connect_failure(url, &e)))
        };
        let (ws, _response) = tokio::time::timeout(opts.timeout, connect)
            .await
            .map_err(|_| unreachable("connection timed out".into()))??;
        Ok(Self { ws })
    }

    /// Answers the relay's challenge as `creds` and waits for `auth_ok`,
    /// all within `timeout`. A challenge naming a relay id other than
    /// `creds.relay_id` is refused with [`ClientError::RelayIdMismatch`]
    /// and nothing is signed.
    pub async fn authenticate(
        &mut self,
        creds: &Credentials<'_>,
        timeout: Duration,
    ) -> Result<Handshake, ClientError> {
        let handshake = async {
            let challenge = match self.handshake_frame().await? {
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
            self.send_frame(&auth).await?;
            match self.handshake_frame().await? {
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
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Writes one frame and flushes it.
    pub async fn send_frame(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        self.ws
            .send(WsMessage::text(frame.encode()))
            .await
            .map_err(|_| ClientError::Disconnected)
    }

    /// Queues one pre-formatted frame without flushing (see
    /// [`Connection::flush`]): a hot loop writes many, then flushes once.
    pub async fn feed_text(&mut self, text: String) -> Result<(), ClientError> {
        self.ws
            .feed(WsMessage::text(text))
            .await
            .map_err(|_| ClientError::Disconnected)
    }

    /// Flushes the frames queued by [`Connection::feed_text`].
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.ws.flush().await.map_err(|_| ClientError::Disconnected)
    }

    /// The next text frame or the close, undecoded; `None` once the
    /// connection is gone. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Received, ClientError>> {
        loop {
            return match self.ws.next().await? {
                Err(e) => Some(Err(ClientError::Protocol(e.to_string()))),
                Ok(WsMessage::Text(t)) => Some(Ok(Received::Text(TextFrame(t)))),
                Ok(WsMessage::Close(frame)) => Some(Ok(Received::Closed(
                    frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                ))),
                Ok(_) => continue,
            };
        }
    }

    /// The next frame, decoded. A close or the end of the connection is
    /// [`ClientError::Disconnected`]; an `error` frame is returned as is.
    pub async fn next_frame(&mut self) -> Result<ServerFrame, ClientError> {
        match self.recv().await {
            None | Some(Ok(Received::Closed(_))) => Err(ClientError::Disconnected),
            Some(Err(e)) => Err(e),
            Some(Ok(Received::Text(t))) => {
                ServerFrame::decode(t.as_str()).map_err(|e| ClientError::Protocol(e.to_string()))
            }
        }
    }

    /// Sends `frame` and reads the next frame as its reply (for a
    /// connection with nothing else in flight). An `error` reply is
    /// returned as the matching [`ClientError`].
    pub async fn request(&mut self, frame: &ClientFrame) -> Result<ServerFrame, ClientError> {
        self.send_frame(frame).await?;
        match self.next_frame().await? {
            ServerFrame::Error(e) => Err(ClientError::from_relay(e.code, e.message)),
            reply => Ok(reply),
        }
    }

    /// Publishes `keys` (see [`publish_keys_frame`]) and waits for
    /// `keys_published`.
    pub async fn publish_keys(&mut self, keys: PublishKeys) -> Result<(), ClientError> {
        match self.request(&ClientFrame::PublishKeys(keys)).await? {
            ServerFrame::KeysPublished(_) => Ok(()),
            other => Err(ClientError::Protocol(format!(
                "expected keys_published, got {other:?}"
            ))),
        }
    }

    /// Fetches `user`'s prekey bundle (consuming one of their one-time
    /// prekeys) as request `rid`.
    pub async fn fetch_bundle(
        &mut self,
        rid: u64,
        user: &UserId,
    ) -> Result<PrekeyBundle, ClientError> {
        let frame = ClientFrame::FetchBundle(FetchBundle {
            rid,
            user_id: user.clone(),
        });
        match self.request(&frame).await? {
            ServerFrame::Bundle(b) if b.user_id == *user => Ok(bundle_from_frame(&b)),
            ServerFrame::Bundle(_) => Err(ClientError::Protocol("bundle for another user".into())),
            other => Err(ClientError::Protocol(format!(
                "expected a bundle, got {other:?}"
            ))),
        }
    }

    /// Closes the connection normally (close code 1000).
    pub async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The writing and reading halves, for a writer and a reader task.
    pub(crate) fn split(self) -> (WsSink, WsStream) {
        self.ws.split()
    }

    /// A frame during the handshake: a close then is a protocol error that
    /// says so.
    async fn handshake_frame(&mut self) -> Result<ServerFrame, ClientError> {
        match self.recv().await {
            None => Err(ClientError::Disconnected),
            Some(Err(e)) => Err(e),
            Some(Ok(Received::Text(t))) => {
                ServerFrame::decode(t.as_str()).map_err(|e| ClientError::Protocol(e.to_string()))
            }
            Some(Ok(Received::Closed(frame))) => {
                let reason = frame
                    .map(|(code, reason)| format!("{code} {reason}"))
                    .unwrap_or_default();
                Err(ClientError::Protocol(format!(
                    "relay closed the connection during the handshake: {reason}"
                )))
            }
        }
    }
}

/// A TCP connection to `addr` (from `source`, if given), without Nagle.
async fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}
