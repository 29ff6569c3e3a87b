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
use hush_client_core::client::connection::{ConnectOptions, Connection, Credentials};
use hush_client_core::{ClientError, IdentityKeyPair, UserId};
use serde::Deserialize;

use super::BenchError;

/// One client connection: client-core's low-level relay connection.
pub(crate) type Ws = Connection;

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
    let options = ConnectOptions {
        timeout: CONNECT_TIMEOUT,
        max_frame_bytes: 1 << 20,
        connect_to: Some(ep.addr),
        source,
        // tungstenite zero-fills the free read buffer before every read;
        // the default 128 KiB would dominate the load generator's CPU.
        read_buffer_size: Some(4096),
        ..ConnectOptions::default()
    };
    Connection::open(&ep.url, &options)
        .await
        .map_err(|e| match e {
            ClientError::Unreachable { reason, .. } if reason == "connection timed out" => {
                BenchError::Relay(format!("connecting to {} timed out", ep.url))
            }
            ClientError::Unreachable { reason, .. } => BenchError::Unreachable(reason),
            e => BenchError::Relay(format!("WebSocket handshake: {e}")),
        })
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
    let sign = |m: &[u8]| identity.sign(m);
    let creds = Credentials {
        user_id: user,
        identity_key: identity.public().sig_pub,
        sign: &sign,
        relay_id: None,
    };
    match ws.authenticate(&creds, CONNECT_TIMEOUT).await {
        Ok(_) => Ok(ws),
        Err(ClientError::AuthRejected { message }) => Err(BenchError::Relay(format!(
            "authentication of {user} refused: {message}"
        ))),
        Err(ClientError::Timeout) => Err(BenchError::Relay("relay did not answer in time".into())),
        Err(e) => Err(BenchError::Relay(format!("authentication of {user}: {e}"))),
    }
}

/// A setup request's outcome as a bench error, with what was asked.
pub(crate) fn setup_error(what: &str) -> impl Fn(ClientError) -> BenchError + '_ {
    move |e| match e {
        ClientError::Timeout => BenchError::Relay("relay did not answer in time".into()),
        e => BenchError::Relay(format!("{what}: {e}")),
    }
}

/// Runs a setup request under the connect timeout.
pub(crate) async fn within<T>(
    what: &str,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, BenchError> {
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| BenchError::Relay("relay did not answer in time".into()))?
        .map_err(setup_error(what))
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
    use hush_client_core::client::connection::ClientFrame;

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
