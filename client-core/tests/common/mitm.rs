//! A tampering WebSocket man in the middle between real `Client`s and a real
//! relay: the relay as an attacker who controls it (or the network) sees it.
//!
//! Every connection a client opens to [`Mitm::url`] is forwarded to the
//! relay. Frames from the client are decoded, recorded (with the user the
//! connection authenticated as) and passed on unchanged. Frames from the
//! relay are decoded and handed to the current [`Tamper`] hook, which returns
//! what the client gets instead: the frame itself, nothing (held or
//! dropped), an altered frame, or several frames (replays, a held batch
//! released in another order). Tests can also push forged frames into a
//! user's live connection ([`Mitm::inject`]) and cut every connection
//! ([`Mitm::disconnect_all`]) so clients reconnect.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use hush_protocol::{ClientFrame, ServerFrame, UserId};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// Decides what a client receives instead of `frame`, which the relay sent
/// on a connection of `user` (`None` before authentication).
pub type Tamper = Box<dyn FnMut(Option<&UserId>, ServerFrame) -> Vec<ServerFrame> + Send>;

/// Something pushed into a live connection by the test.
enum Inject {
    Frame(ServerFrame),
    Close,
}

#[derive(Default)]
struct Shared {
    tamper: Mutex<Option<Tamper>>,
    /// Live connections by authenticated user (the newest wins, as at the
    /// relay).
    live: Mutex<HashMap<UserId, mpsc::UnboundedSender<Inject>>>,
    /// Every frame a client sent, with the user its connection was
    /// authenticated as.
    from_clients: Mutex<Vec<(Option<UserId>, ClientFrame)>>,
}

/// The man in the middle; dropping it stops accepting connections.
pub struct Mitm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Mitm {
    /// Listens on 127.0.0.1 and forwards to `relay_ws_url`
    /// (`ws://127.0.0.1:PORT/v1/ws`).
    pub async fn start(relay_ws_url: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(forward(tcp, relay_ws_url.clone(), s.clone()));
            }
        });
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// What clients take as their relay URL.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Replaces the tamper hook (`None`: forward everything unchanged).
    pub fn set_tamper(&self, tamper: Option<Tamper>) {
        *self.shared.tamper.lock().unwrap() = tamper;
    }

    /// Sends `frame` to `user`'s live connection, as if the relay had.
    /// Returns false when `user` has none.
    pub fn inject(&self, user: &UserId, frame: ServerFrame) -> bool {
        self.shared
            .live
            .lock()
            .unwrap()
            .get(user)
            .is_some_and(|tx| tx.send(Inject::Frame(frame)).is_ok())
    }

    /// Closes every live connection (code 1001, "going away") in both
    /// directions; clients reconnect by themselves.
    pub fn disconnect_all(&self) {
        for (_, tx) in self.shared.live.lock().unwrap().drain() {
            let _ = tx.send(Inject::Close);
        }
    }

    /// Every frame clients have sent so far.
    pub fn client_frames(&self) -> Vec<(Option<UserId>, ClientFrame)> {
        self.shared.from_clients.lock().unwrap().clone()
    }

    /// The `send` frames `user` has sent so far.
    pub fn sends_by(&self, user: &UserId) -> Vec<hush_protocol::frame::SendEnvelope> {
        self.client_frames()
            .into_iter()
            .filter_map(|(u, f)| match f {
                ClientFrame::Send(s) if u.as_ref() == Some(user) => Some(s),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Mitm {
    fn drop(&mut self) {
        self.accept.abort();
        self.disconnect_all();
    }
}

/// One client connection: accepted from the client, opened to the relay,
/// forwarded until either side closes.
async fn forward(tcp: TcpStream, relay: String, shared: Arc<Shared>) {
    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let Ok((upstream, _)) = tokio_tungstenite::connect_async(relay).await else {
        return;
    };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_relay, mut from_relay) = upstream.split();
    let (inject_tx, mut inject_rx) = mpsc::unbounded_channel();
    let mut user: Option<UserId> = None;
    loop {
        tokio::select! {
            msg = from_client.next() => {
                let Some(Ok(msg)) = msg else { break };
                match msg {
                    WsMessage::Text(text) => {
                        if let Ok(frame) = ClientFrame::decode(text.as_str()) {
                            if let ClientFrame::Auth(auth) = &frame {
                                user = Some(auth.user_id.clone());
                                shared
                                    .live
                                    .lock()
                                    .unwrap()
                                    .insert(auth.user_id.clone(), inject_tx.clone());
                            }
                            shared.from_clients.lock().unwrap().push((user.clone(), frame));
                        }
                        if to_relay.send(WsMessage::Text(text)).await.is_err() {
                            break;
                        }
                    }
                    WsMessage::Close(frame) => {
                        let _ = to_relay.send(WsMessage::Close(frame)).await;
                        break;
                    }
                    // Pings are answered by each side's own WebSocket layer.
                    _ => {}
                }
            }
            msg = from_relay.next() => {
                let Some(Ok(msg)) = msg else { break };
                match msg {
                    WsMessage::Text(text) => {
                        let out = match ServerFrame::decode(text.as_str()) {
                            Ok(frame) => {
                                let mut tamper = shared.tamper.lock().unwrap();
                                match tamper.as_mut() {
                                    Some(t) => t(user.as_ref(), frame),
                                    None => vec![frame],
                                }
                            }
                            // Not ours to judge: pass it on as it came.
                            Err(_) => {
                                if to_client.send(WsMessage::Text(text)).await.is_err() {
                                    break;
                                }
                                continue;
                            }
                        };
                        let mut ok = true;
                        for frame in out {
                            ok &= to_client.send(WsMessage::text(frame.encode())).await.is_ok();
                        }
                        if !ok {
                            break;
                        }
                    }
                    WsMessage::Close(frame) => {
                        let _ = to_client.send(WsMessage::Close(frame)).await;
                        break;
                    }
                    _ => {}
                }
            }
            inject = inject_rx.recv() => {
                match inject {
                    Some(Inject::Frame(frame)) => {
                        if to_client.send(WsMessage::text(frame.encode())).await.is_err() {
                            break;
                        }
                    }
                    Some(Inject::Close) | None => {
                        let going_away = CloseFrame {
                            code: hush_protocol::close::GOING_AWAY.into(),
                            reason: "man in the middle hung up".into(),
                        };
                        let _ = to_client.send(WsMessage::Close(Some(going_away))).await;
                        let _ = to_relay.send(WsMessage::Close(None)).await;
                        break;
                    }
                }
            }
        }
    }
    if let Some(u) = &user {
        let mut live = shared.live.lock().unwrap();
        if live.get(u).is_some_and(|tx| tx.same_channel(&inject_tx)) {
            live.remove(u);
        }
    }
}
