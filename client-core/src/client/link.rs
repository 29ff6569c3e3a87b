//! The connection the async client runs on: one authenticated
//! [`Connection`] split into a writer task and a reader task that routes
//! replies to their requests by `rid` and everything unsolicited
//! (envelopes, `prekeys_low`, presence updates, the close) to the client's
//! inbox, in the order the relay sent it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hush_protocol::frame::{Envelope, PresenceEntry};
use hush_protocol::{ClientFrame, ServerFrame, close};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tracing::{debug, warn};

use super::ClientError;
use super::connection::{ConnectOptions, Connection, Credentials, Handshake, WsStream};

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

/// Opens and authenticates a connection ([`Connection::open`],
/// [`Connection::authenticate`]) and splits it into a writer and a reader
/// task. Returns the link, the inbox of unsolicited frames and what the
/// handshake learned.
pub(crate) async fn open(
    url: &str,
    creds: Credentials<'_>,
    request_timeout: Duration,
    max_frame_bytes: usize,
    ca_file: Option<&Path>,
) -> Result<(Arc<Link>, mpsc::Receiver<Inbound>, Handshake), ClientError> {
    let options = ConnectOptions {
        timeout: request_timeout,
        max_frame_bytes,
        ca_file: ca_file.map(Path::to_path_buf),
        ..ConnectOptions::default()
    };
    let mut connection = Connection::open(url, &options).await?;
    let handshake = connection.authenticate(&creds, request_timeout).await?;
    let (mut sink, mut stream) = connection.split();

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
