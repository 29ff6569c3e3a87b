//! Test client: a real WebSocket (tokio-tungstenite) and real Ed25519 keys.
//! Every await has a timeout, so a bug fails the test instead of hanging it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod devices;
pub mod process;
pub mod redis;

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use hush_protocol::frame::*;
use hush_protocol::{
    Body, ClientFrame, ErrorCode, PublicKeyBytes, ServerFrame, SignatureBytes, UserId, signing,
};
use hush_relay::{Config, RelayHandle};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Awaits `f` or fails the test after [`TIMEOUT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A store backend the scenarios run against.
pub enum Backend {
    Memory,
    Redb(tempfile::TempDir),
    /// A real redis-server of the test's own (cluster mode).
    Redis(redis::RedisServer),
}

impl Backend {
    pub fn memory() -> Self {
        Backend::Memory
    }

    pub fn redb() -> Self {
        Backend::Redb(tempfile::tempdir().unwrap())
    }

    pub fn redis() -> Self {
        Backend::Redis(redis::RedisServer::start())
    }

    pub fn config(&self) -> Config {
        match self {
            Backend::Memory => Config::memory(),
            Backend::Redb(dir) => Config::redb(dir.path()),
            Backend::Redis(server) => Config::redis(server.url()),
        }
    }

    pub fn data_dir(&self) -> Option<&std::path::Path> {
        match self {
            Backend::Memory | Backend::Redis(_) => None,
            Backend::Redb(dir) => Some(dir.path()),
        }
    }

    pub async fn start(&self) -> RelayHandle {
        self.start_with(|_| {}).await
    }

    pub async fn start_with(&self, tweak: impl FnOnce(&mut Config)) -> RelayHandle {
        let mut config = self.config();
        tweak(&mut config);
        within("relay start", RelayHandle::start(config))
            .await
            .unwrap()
    }
}

pub fn user(name: &str) -> UserId {
    UserId::try_from(name).unwrap()
}

pub fn new_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

pub fn public(key: &SigningKey) -> PublicKeyBytes {
    PublicKeyBytes(key.verifying_key().to_bytes())
}

pub fn sign(key: &SigningKey, msg: &[u8]) -> SignatureBytes {
    SignatureBytes(key.sign(msg).to_bytes())
}

/// A `publish_keys` frame correctly signed by `key`, with these OPK ids.
pub fn publish_frame(
    rid: u64,
    key: &SigningKey,
    opk_ids: impl IntoIterator<Item = u32>,
) -> ClientFrame {
    let identity_dh = PublicKeyBytes(rand::random());
    let spk = PublicKeyBytes(rand::random());
    ClientFrame::PublishKeys(PublishKeys {
        rid,
        identity_dh,
        identity_dh_sig: sign(key, &signing::identity_dh_message(&identity_dh.0)),
        signed_prekey: SignedPrekey {
            id: 1,
            key: spk,
            signature: sign(key, &signing::signed_prekey_message(1, &spk.0)),
        },
        one_time_prekeys: opk_ids
            .into_iter()
            .map(|id| OneTimePrekey {
                id,
                key: PublicKeyBytes(rand::random()),
            })
            .collect(),
    })
}

pub fn rid_of(f: &ServerFrame) -> Option<u64> {
    match f {
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
        ServerFrame::DeviceListPublished(f) => Some(f.rid),
        ServerFrame::Devices(f) => Some(f.rid),
        ServerFrame::CopiesAccepted(f) => Some(f.rid),
        _ => None,
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What came off the socket.
#[derive(Debug)]
pub enum Incoming {
    Frame(ServerFrame),
    Closed(Option<u16>),
}

pub struct Client {
    ws: Ws,
    pub user: UserId,
    pub key: SigningKey,
    pub relay_id: String,
    pub challenge: [u8; 32],
    next_rid: u64,
    /// Unsolicited frames (envelopes, prekeys_low) read while awaiting a reply.
    pending: VecDeque<ServerFrame>,
}

/// Opens a WebSocket and reads the challenge.
pub async fn connect(relay: &RelayHandle) -> (Ws, Challenge) {
    connect_url(&relay.ws_url()).await
}

/// [`connect`] to a relay by its WebSocket URL (e.g. a relay process).
pub async fn connect_url(url: &str) -> (Ws, Challenge) {
    let (mut ws, _) = within("connect", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    let first = within("challenge", ws.next()).await.unwrap().unwrap();
    let Message::Text(t) = first else {
        panic!("expected challenge, got {first:?}")
    };
    let ServerFrame::Challenge(c) = ServerFrame::decode(t.as_str()).unwrap() else {
        panic!("first frame is not a challenge: {t}")
    };
    (ws, c)
}

/// [`connect`] from a chosen loopback source address (127.0.0.x), so a
/// test can stand for several hosts against the per-address limits.
pub async fn connect_from(
    relay: &RelayHandle,
    source: std::net::IpAddr,
) -> Result<(Ws, Challenge), tokio_tungstenite::tungstenite::Error> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    let tcp = within("tcp connect", socket.connect(relay.local_addr())).await?;
    let (mut ws, _) = within(
        "websocket handshake",
        tokio_tungstenite::client_async(relay.ws_url(), MaybeTlsStream::Plain(tcp)),
    )
    .await?;
    let first = within("challenge", ws.next()).await.unwrap()?;
    let Message::Text(t) = first else {
        panic!("expected challenge, got {first:?}")
    };
    let ServerFrame::Challenge(c) = ServerFrame::decode(t.as_str()).unwrap() else {
        panic!("first frame is not a challenge: {t}")
    };
    Ok((ws, c))
}

/// An auth frame for this challenge.
pub fn auth_frame(rid: u64, c: &Challenge, user: &UserId, key: &SigningKey) -> ClientFrame {
    let msg = signing::auth_message(&c.relay_id, &c.challenge.0, user.as_str()).unwrap();
    ClientFrame::Auth(Auth {
        rid,
        user_id: user.clone(),
        identity_key: public(key),
        signature: sign(key, &msg),
    })
}

impl Client {
    /// Connects and authenticates; panics unless `auth_ok`.
    pub async fn login(relay: &RelayHandle, name: &str, key: &SigningKey) -> (Client, AuthOk) {
        Self::login_url(&relay.ws_url(), name, key).await
    }

    /// [`Client::login`] by WebSocket URL.
    pub async fn login_url(url: &str, name: &str, key: &SigningKey) -> (Client, AuthOk) {
        let (ws, c) = connect_url(url).await;
        Self::login_on(ws, c, name, key).await
    }

    /// Authenticates on an open socket whose challenge was read; panics
    /// unless `auth_ok`.
    pub async fn login_on(ws: Ws, c: Challenge, name: &str, key: &SigningKey) -> (Client, AuthOk) {
        let mut client = Client {
            ws,
            user: user(name),
            key: key.clone(),
            relay_id: c.relay_id.clone(),
            challenge: c.challenge.0,
            next_rid: 1,
            pending: VecDeque::new(),
        };
        let rid = client.rid();
        let f = auth_frame(rid, &c, &client.user, key);
        match client.request(f).await {
            ServerFrame::AuthOk(ok) => (client, ok),
            other => panic!("auth failed: {other:?}"),
        }
    }

    /// Authenticates as device `device` of `name` with `auth_device` on an
    /// open socket; returns the client and the reply (`auth_ok` or error).
    pub async fn device_on(
        ws: Ws,
        c: Challenge,
        name: &str,
        device: u32,
        key: &SigningKey,
    ) -> (Client, ServerFrame) {
        let mut client = Client {
            ws,
            user: user(name),
            key: key.clone(),
            relay_id: c.relay_id.clone(),
            challenge: c.challenge.0,
            next_rid: 1,
            pending: VecDeque::new(),
        };
        let rid = client.rid();
        let msg =
            signing::auth_message_v2(&c.relay_id, &c.challenge.0, client.user.as_str(), device)
                .unwrap();
        let f = ClientFrame::AuthDevice(AuthDevice {
            rid,
            user_id: client.user.clone(),
            device,
            device_key: public(key),
            signature: sign(key, &msg),
        });
        let reply = client.request(f).await;
        (client, reply)
    }

    /// A fresh request id.
    pub fn rid(&mut self) -> u64 {
        self.next_rid += 1;
        self.next_rid
    }

    pub async fn send_raw(&mut self, text: String) {
        within("send", self.ws.send(Message::Text(text.into())))
            .await
            .unwrap();
    }

    pub async fn send_message(&mut self, m: Message) {
        within("send", self.ws.send(m)).await.unwrap();
    }

    /// Next thing off the socket, including a close.
    pub async fn next_incoming(&mut self) -> Incoming {
        loop {
            let m = within("a frame", self.ws.next()).await;
            match m {
                None | Some(Err(_)) => return Incoming::Closed(None),
                Some(Ok(Message::Text(t))) => {
                    return Incoming::Frame(
                        ServerFrame::decode(t.as_str())
                            .unwrap_or_else(|e| panic!("relay sent an invalid frame {t}: {e}")),
                    );
                }
                Some(Ok(Message::Close(c))) => {
                    return Incoming::Closed(c.map(|c| u16::from(c.code)));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Next frame; panics on close.
    pub async fn next_frame(&mut self) -> ServerFrame {
        if let Some(f) = self.pending.pop_front() {
            return f;
        }
        match self.next_incoming().await {
            Incoming::Frame(f) => f,
            Incoming::Closed(code) => {
                panic!("connection closed ({code:?}) while waiting for a frame")
            }
        }
    }

    /// Reads until the reply with `rid`, keeping other frames for later.
    pub async fn reply_to(&mut self, rid: u64) -> ServerFrame {
        if let Some(i) = self.pending.iter().position(|f| rid_of(f) == Some(rid))
            && let Some(f) = self.pending.remove(i)
        {
            return f;
        }
        loop {
            let f = match self.next_incoming().await {
                Incoming::Frame(f) => f,
                Incoming::Closed(code) => panic!("closed ({code:?}) before reply to rid {rid}"),
            };
            if rid_of(&f) == Some(rid) {
                return f;
            }
            self.pending.push_back(f);
        }
    }

    /// Sends a frame and returns its reply.
    pub async fn request(&mut self, f: ClientFrame) -> ServerFrame {
        let rid = f.rid();
        self.send_raw(f.encode()).await;
        self.reply_to(rid).await
    }

    /// Sends raw text and returns the exact text of the reply with `rid`
    /// (other frames are kept for later).
    pub async fn request_text(&mut self, text: String, rid: u64) -> String {
        self.send_raw(text).await;
        loop {
            let m = within("a frame", self.ws.next()).await;
            match m {
                Some(Ok(Message::Text(t))) => {
                    let f = ServerFrame::decode(t.as_str())
                        .unwrap_or_else(|e| panic!("relay sent an invalid frame {t}: {e}"));
                    if rid_of(&f) == Some(rid) {
                        return t.as_str().to_owned();
                    }
                    self.pending.push_back(f);
                }
                Some(Ok(Message::Close(c))) => panic!("closed ({c:?}) before reply to {rid}"),
                None | Some(Err(_)) => panic!("connection lost before reply to {rid}"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Frames read earlier and not yet consumed (pushes seen while waiting
    /// for replies).
    pub fn take_pending(&mut self) -> Vec<ServerFrame> {
        self.pending.drain(..).collect()
    }

    /// Replaces the allow list; returns the reply.
    pub async fn presence_allow(&mut self, users: &[&str]) -> ServerFrame {
        let rid = self.rid();
        self.request(ClientFrame::PresenceAllow(PresenceAllow {
            rid,
            users: users.iter().map(|u| user(u)).collect(),
        }))
        .await
    }

    /// Queries; returns the reply.
    pub async fn presence_query(&mut self, users: &[&str]) -> ServerFrame {
        let rid = self.rid();
        self.request(ClientFrame::PresenceQuery(PresenceQuery {
            rid,
            users: users.iter().map(|u| user(u)).collect(),
        }))
        .await
    }

    /// Subscribes; returns the reply.
    pub async fn presence_subscribe(&mut self, users: &[&str]) -> ServerFrame {
        let rid = self.rid();
        self.request(ClientFrame::PresenceSubscribe(PresenceSubscribe {
            rid,
            users: users.iter().map(|u| user(u)).collect(),
        }))
        .await
    }

    /// Next `presence_update` pushed to this client (envelopes and other
    /// unsolicited frames in between are skipped).
    pub async fn next_presence_update(&mut self) -> PresenceEntry {
        loop {
            if let ServerFrame::PresenceUpdate(e) = self.next_frame().await {
                return e;
            }
        }
    }

    /// Sends raw text carrying `rid` and returns the error frame answering it.
    pub async fn expect_error(&mut self, text: String, rid: Option<u64>) -> ErrorFrame {
        self.send_raw(text).await;
        loop {
            match self.next_incoming().await {
                Incoming::Frame(ServerFrame::Error(e)) if e.rid == rid => return e,
                Incoming::Frame(f) => self.pending.push_back(f),
                Incoming::Closed(code) => panic!("closed ({code:?}) before error for {rid:?}"),
            }
        }
    }

    /// Sends an envelope; returns the reply (`accepted` or `error`).
    pub async fn send_to(&mut self, to: &str, body: &[u8]) -> ServerFrame {
        let rid = self.rid();
        self.request(ClientFrame::Send(SendEnvelope {
            rid,
            to: user(to),
            body: Body(body.to_vec()),
            ephemeral: false,
        }))
        .await
    }

    /// Sends and expects `accepted` with an id.
    pub async fn send_ok(&mut self, to: &str, body: &[u8]) -> u64 {
        match self.send_to(to, body).await {
            ServerFrame::Accepted(Accepted { id: Some(id), .. }) => id,
            other => panic!("send not accepted: {other:?}"),
        }
    }

    pub async fn ack(&mut self, ids: Vec<u64>) -> ServerFrame {
        let rid = self.rid();
        self.request(ClientFrame::Ack(Ack { rid, ids })).await
    }

    /// The WebSocket, for a test that drives it by hand.
    pub fn into_ws(self) -> Ws {
        self.ws
    }

    pub async fn ping(&mut self) {
        let rid = self.rid();
        match self.request(ClientFrame::Ping(Ping { rid })).await {
            ServerFrame::Pong(_) => {}
            other => panic!("expected pong, got {other:?}"),
        }
    }

    /// Next envelope pushed to this client (other unsolicited frames are
    /// skipped).
    pub async fn next_envelope(&mut self) -> Envelope {
        loop {
            if let ServerFrame::Envelope(e) = self.next_frame().await {
                return e;
            }
        }
    }

    /// Sends a marker envelope to itself and returns the first envelope that
    /// arrives: since delivery is in id order, anything queued before the
    /// marker arrives first. `None` when the marker is the first.
    pub async fn first_envelope_before_marker(&mut self) -> Option<Envelope> {
        let me = self.user.as_str().to_owned();
        let id = self.send_ok(&me, b"marker").await;
        let e = self.next_envelope().await;
        if e.id == Some(id) && e.body.0 == b"marker" {
            None
        } else {
            Some(e)
        }
    }

    /// Reads until the connection closes; returns the close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            if let Incoming::Closed(code) = self.next_incoming().await {
                return code;
            }
        }
    }

    /// Reads frames until close; returns (frames, code).
    pub async fn frames_until_close(&mut self) -> (Vec<ServerFrame>, Option<u16>) {
        let mut frames: Vec<ServerFrame> = self.pending.drain(..).collect();
        loop {
            match self.next_incoming().await {
                Incoming::Frame(f) => frames.push(f),
                Incoming::Closed(code) => return (frames, code),
            }
        }
    }
}

/// Reads until close on a raw socket; returns frames and the close code.
pub async fn raw_until_close(ws: &mut Ws) -> (Vec<ServerFrame>, Option<u16>) {
    let mut frames = Vec::new();
    loop {
        match within("a frame or close", ws.next()).await {
            None | Some(Err(_)) => return (frames, None),
            Some(Ok(Message::Text(t))) => frames.push(ServerFrame::decode(t.as_str()).unwrap()),
            Some(Ok(Message::Close(c))) => return (frames, c.map(|c| u16::from(c.code))),
            Some(Ok(_)) => {}
        }
    }
}

pub fn error_code(f: &ServerFrame) -> Option<ErrorCode> {
    match f {
        ServerFrame::Error(e) => Some(e.code),
        _ => None,
    }
}
