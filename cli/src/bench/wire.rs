//! The lean side of the relay protocol that `hush bench` speaks: open a
//! WebSocket (optionally from a chosen 127.0.0.x source address), answer
//! the challenge, and write/read the few frames a load generator needs
//! without building full frame values per message.
//!
//! Outgoing `send` and `ack` frames are formatted straight into a reused
//! `String`; incoming frames are parsed into [`Incoming`], which borrows
//! every string from the frame text (no copy of the base64 body).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use hush_client_core::IdentityKeyPair;
use hush_protocol::frame::Auth;
use hush_protocol::{ClientFrame, PublicKeyBytes, ServerFrame, SignatureBytes, UserId, signing};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::BenchError;

/// One client connection.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// How long connecting and authenticating may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A relay endpoint: its WebSocket URL and socket address.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub url: String,
    pub addr: SocketAddr,
}

impl Endpoint {
    /// Parses `ws://HOST:PORT[/path]` (the path defaults to `/v1/ws`).
    /// HOST must be an IP address or `localhost`: the bench only targets
    /// relays it can reach without DNS.
    pub fn parse(relay: &str) -> Result<Self, BenchError> {
        let url = hush_client_core::client::ws_url(relay)
            .map_err(|e| BenchError::Usage(e.to_string()))?;
        let rest = url.strip_prefix("ws://").ok_or_else(|| {
            BenchError::Usage(format!("{relay}: only ws:// relays can be benchmarked"))
        })?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let hostport = hostport.replacen("localhost", "127.0.0.1", 1);
        let addr: SocketAddr = hostport
            .parse()
            .map_err(|_| BenchError::Usage(format!("{relay}: expected ws://IP:PORT")))?;
        Ok(Self { url, addr })
    }
}

/// Opens a WebSocket to `ep`, from `source` if given (to spread many
/// connections over several loopback addresses).
pub(crate) async fn open(ep: &Endpoint, source: Option<IpAddr>) -> Result<Ws, BenchError> {
    let fut = async {
        let socket = if ep.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| BenchError::io("socket", e))?;
        if let Some(ip) = source {
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| BenchError::io("bind source address", e))?;
        }
        let tcp = socket
            .connect(ep.addr)
            .await
            .map_err(|e| BenchError::io("connect", e))?;
        tcp.set_nodelay(true)
            .map_err(|e| BenchError::io("nodelay", e))?;
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(1 << 20);
        config.max_frame_size = Some(1 << 20);
        // tungstenite zero-fills the free read buffer before every read;
        // the default 128 KiB would dominate the load generator's CPU.
        config.read_buffer_size = 4096;
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(ep.url.as_str(), tcp, Some(config))
                .await
                .map_err(|e| BenchError::Relay(format!("WebSocket handshake: {e}")))?;
        Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| BenchError::Relay(format!("connecting to {} timed out", ep.url)))?
}

/// Reads the next server frame (skipping control frames).
pub(crate) async fn next_frame(ws: &mut Ws) -> Result<ServerFrame, BenchError> {
    loop {
        let msg = tokio::time::timeout(CONNECT_TIMEOUT, ws.next())
            .await
            .map_err(|_| BenchError::Relay("relay did not answer in time".into()))?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                return ServerFrame::decode(t.as_str())
                    .map_err(|e| BenchError::Relay(format!("bad frame from relay: {e}")));
            }
            Some(Ok(Message::Close(c))) => {
                return Err(BenchError::Relay(format!(
                    "relay closed the connection: {c:?}"
                )));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(BenchError::Relay(format!("read: {e}"))),
            None => return Err(BenchError::Relay("connection closed".into())),
        }
    }
}

/// Sends a full frame (setup only; the hot path formats its own).
pub(crate) async fn send_frame(ws: &mut Ws, frame: &ClientFrame) -> Result<(), BenchError> {
    ws.send(Message::text(frame.encode()))
        .await
        .map_err(|e| BenchError::Relay(format!("write: {e}")))
}

/// Opens a connection and authenticates as `user` (registering it on first
/// use). Returns the socket, ready for requests.
pub(crate) async fn connect_auth(
    ep: &Endpoint,
    source: Option<IpAddr>,
    user: &UserId,
    identity: &IdentityKeyPair,
) -> Result<Ws, BenchError> {
    let mut ws = open(ep, source).await?;
    let ServerFrame::Challenge(ch) = next_frame(&mut ws).await? else {
        return Err(BenchError::Relay("first frame was not a challenge".into()));
    };
    let msg = signing::auth_message(&ch.relay_id, &ch.challenge.0, user.as_str())
        .map_err(|e| BenchError::Relay(format!("relay id: {e}")))?;
    let auth = ClientFrame::Auth(Auth {
        rid: 0,
        user_id: user.clone(),
        identity_key: PublicKeyBytes(identity.public().sig_pub),
        signature: SignatureBytes(identity.sign(&msg)),
    });
    send_frame(&mut ws, &auth).await?;
    match next_frame(&mut ws).await? {
        ServerFrame::AuthOk(_) => Ok(ws),
        ServerFrame::Error(e) => Err(BenchError::Relay(format!(
            "authentication of {user} refused: {} ({})",
            e.code.as_str(),
            e.message
        ))),
        other => Err(BenchError::Relay(format!(
            "unexpected reply to auth: {other:?}"
        ))),
    }
}

/// Writes `{"type":"send","rid":R,"to":"TO","body":"B64"}` into `out`.
pub(crate) fn format_send(out: &mut String, rid: u64, to: &str, body: &[u8]) {
    out.clear();
    let _ = write!(out, r#"{{"type":"send","rid":{rid},"to":"{to}","body":""#);
    STANDARD.encode_string(body, out);
    out.push_str("\"}");
}

/// Writes `{"type":"ack","rid":R,"ids":[..]}` into `out`.
pub(crate) fn format_ack(out: &mut String, rid: u64, ids: &[u64]) {
    out.clear();
    let _ = write!(out, r#"{{"type":"ack","rid":{rid},"ids":["#);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out.push_str("]}");
}

/// The fields of a relay frame the load generator looks at.
#[derive(Debug, Deserialize)]
pub(crate) struct Incoming<'a> {
    #[serde(rename = "type")]
    pub ty: &'a str,
    #[serde(default)]
    pub rid: Option<u64>,
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub from: Option<&'a str>,
    #[serde(default)]
    pub body: Option<&'a str>,
    #[serde(default)]
    pub code: Option<&'a str>,
}

impl<'a> Incoming<'a> {
    pub fn parse(text: &'a str) -> Result<Self, BenchError> {
        serde_json::from_str(text).map_err(|e| BenchError::Relay(format!("bad frame: {e}")))
    }
}

/// Decodes standard base64 into `out` (cleared first).
pub(crate) fn decode_body(b64: &str, out: &mut Vec<u8>) -> Result<(), BenchError> {
    out.clear();
    STANDARD
        .decode_vec(b64, out)
        .map_err(|_| BenchError::Relay("envelope body is not base64".into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use hush_protocol::ClientFrame;

    #[test]
    fn formatted_frames_decode_as_protocol_frames() {
        let mut s = String::new();
        format_send(&mut s, 7, "bob", &[1, 2, 3, 250]);
        match ClientFrame::decode(&s) {
            Ok(ClientFrame::Send(f)) => {
                assert_eq!(f.rid, 7);
                assert_eq!(f.to.as_str(), "bob");
                assert_eq!(f.body.as_bytes(), &[1, 2, 3, 250]);
            }
            other => panic!("{other:?}"),
        }
        format_ack(&mut s, 9, &[1, 5, 6]);
        match ClientFrame::decode(&s) {
            Ok(ClientFrame::Ack(a)) => assert_eq!(a.ids, vec![1, 5, 6]),
            other => panic!("{other:?}"),
        }
    }
}
