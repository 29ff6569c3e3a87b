//! Protocol abuse: answers signed for another relay or replayed on another
//! connection, hostile JSON shapes and bytes that are not UTF-8. Each must
//! end in the documented error or close, and the relay must keep serving
//! everyone else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::*;
use futures_util::SinkExt;
use hush_protocol::frame::{Auth, Challenge};
use hush_protocol::{ClientFrame, ErrorCode, ServerFrame, close, signing};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn send_text(ws: &mut Ws, text: String) {
    within("send", ws.send(Message::Text(text.into())))
        .await
        .unwrap();
}

/// An auth frame whose signature covers `relay_id` instead of the relay's.
fn auth_for_relay(
    rid: u64,
    c: &Challenge,
    relay_id: &str,
    name: &str,
    key: &ed25519_dalek::SigningKey,
) -> ClientFrame {
    let msg = signing::auth_message(relay_id, &c.challenge.0, name).unwrap();
    ClientFrame::Auth(Auth {
        rid,
        user_id: user(name),
        identity_key: public(key),
        signature: sign(key, &msg),
    })
}

#[tokio::test]
async fn signature_for_another_relay_id_is_rejected() {
    let relay = Backend::memory().start().await;
    let key = new_key();
    let (mut ws, c) = connect(&relay).await;
    let other_relay = format!("{}-other", c.relay_id);
    send_text(
        &mut ws,
        auth_for_relay(1, &c, &other_relay, "alice", &key).encode(),
    )
    .await;
    let (frames, code) = raw_until_close(&mut ws).await;
    assert_eq!(error_code(&frames[0]), Some(ErrorCode::AuthFailed));
    assert_eq!(code, Some(close::AUTH_FAILED));
}

#[tokio::test]
async fn auth_answer_replayed_on_a_new_connection_is_rejected() {
    let relay = Backend::memory().start().await;
    let key = new_key();
    // A valid answer, captured from the first connection...
    let (mut first, c1) = connect(&relay).await;
    let answer = auth_frame(1, &c1, &user("alice"), &key).encode();
    send_text(&mut first, answer.clone()).await;
    drop(first);
    // ...is worthless on the next one: its challenge is fresh.
    let (mut second, c2) = connect(&relay).await;
    assert_ne!(c1.challenge.0, c2.challenge.0, "challenges must not repeat");
    send_text(&mut second, answer).await;
    let (frames, code) = raw_until_close(&mut second).await;
    assert_eq!(error_code(&frames[0]), Some(ErrorCode::AuthFailed));
    assert_eq!(code, Some(close::AUTH_FAILED));
}

#[tokio::test]
async fn deeply_nested_json_never_crashes_and_the_connection_lives_on() {
    let relay = Backend::memory().start().await;
    let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
    // Far deeper than any parser stack should follow, still under the
    // frame size limit. As an unknown extra field it is skipped (unknown
    // fields are ignored for forward compatibility) without recursion...
    let depth = 50_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    c.send_raw(format!(r#"{{"type":"ping","rid":5,"x":{nested}}}"#))
        .await;
    assert!(matches!(c.next_frame().await, ServerFrame::Pong(p) if p.rid == 5));
    // ...and where a number is expected it is a typed error.
    let e = c
        .expect_error(format!(r#"{{"type":"ping","rid":{nested}}}"#), None)
        .await;
    assert_eq!(e.code, ErrorCode::BadFrame);
    c.ping().await;
}

#[tokio::test]
async fn invalid_utf8_closes_only_that_connection() {
    let relay = Backend::memory().start().await;
    let (mut bystander, _) = Client::login(&relay, "bob", &new_key()).await;
    let (mut ws, _) = connect(&relay).await;
    // A text frame must be UTF-8; these bytes are not. Sent as a raw frame
    // so the client library does not refuse to send them.
    let bytes = vec![b'{', 0xff, 0xfe, b'}'];
    let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        bytes,
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    within("send", ws.send(Message::Frame(frame)))
        .await
        .unwrap();
    let (_frames, code) = raw_until_close(&mut ws).await;
    assert!(
        matches!(code, None | Some(1002) | Some(1007) | Some(4001)),
        "unexpected close code {code:?}"
    );
    // Everyone else is unaffected.
    bystander.ping().await;
}

/// A loopback address other than 127.0.0.1: another "host" for the
/// per-address limits.
fn other_host() -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 0, 2])
}

fn is_http_status(e: &tokio_tungstenite::tungstenite::Error, status: u16) -> bool {
    matches!(e, tokio_tungstenite::tungstenite::Error::Http(r) if r.status().as_u16() == status)
}

fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Alice sends `n` envelopes to Bob one at a time; each latency is from the
/// send to Bob reading it. Bob acks each.
async fn one_at_a_time(
    alice: &mut Client,
    bob: &mut Client,
    n: usize,
    tag: &str,
) -> Vec<std::time::Duration> {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let body = format!("{tag}-{i}");
        let t0 = std::time::Instant::now();
        let id = alice.send_ok("bob", body.as_bytes()).await;
        let e = bob.next_envelope().await;
        lat.push(t0.elapsed());
        assert_eq!(
            (e.id, e.body.0.as_slice()),
            (Some(id), body.as_bytes()),
            "in order, intact"
        );
        assert_eq!(e.from.as_str(), "alice");
        assert!(matches!(bob.ack(vec![id]).await, ServerFrame::Acked(_)));
    }
    lat.sort();
    lat
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abusive_client_gets_typed_errors_while_a_good_pair_keeps_receiving() {
    const GOOD_MESSAGES: usize = 300;
    const FLOOD: usize = 5_000;
    let relay = Backend::memory()
        .start_with(|c| {
            c.limits.max_connections_per_ip = 8;
            c.limits.bundle_fetch_burst = 10;
            c.limits.bundle_fetches_per_hour = 60;
            c.limits.registration_burst = 5;
            c.limits.registrations_per_hour = 5;
        })
        .await;
    let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
    let bob_key = new_key();
    let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
    let rid = bob.rid();
    assert!(matches!(
        bob.request(publish_frame(rid, &bob_key, 1..=50)).await,
        ServerFrame::KeysPublished(_)
    ));

    // The flood's target: registered, offline.
    drop(Client::login(&relay, "sink", &new_key()).await);

    let quiet = one_at_a_time(&mut alice, &mut bob, GOOD_MESSAGES, "quiet").await;

    let abuse = async {
        // Mallory registers from another host: her first registration.
        let (ws, c) = connect_from(&relay, other_host()).await.unwrap();
        let mallory_key = new_key();
        let (mut mallory, _) = Client::login_on(ws, c, "mallory", &mallory_key).await;

        // 1. Flood: far more sends than the per-connection bucket holds,
        //    pipelined without waiting for replies.
        for i in 0..FLOOD {
            let rid = 10_000 + i as u64;
            mallory
                .send_raw(
                    ClientFrame::Send(hush_protocol::frame::SendEnvelope {
                        rid,
                        to: user("sink"),
                        body: hush_protocol::Body(vec![0; 64]),
                        ephemeral: false,
                    })
                    .encode(),
                )
                .await;
        }
        let (mut accepted, mut limited) = (0usize, 0usize);
        while accepted + limited < FLOOD {
            match mallory.next_frame().await {
                ServerFrame::Accepted(_) => accepted += 1,
                ServerFrame::Error(e) if e.code == ErrorCode::RateLimited => limited += 1,
                ServerFrame::Envelope(_) => {}
                other => panic!("unexpected reply to the flood: {other:?}"),
            }
        }
        assert!(limited > 0, "the flood was never rate limited");

        // 2. Prekey draining: bundle fetches beyond the quota are refused
        //    and leave Bob's one-time prekeys alone.
        //    The flood left her frame bucket empty: a fetch refused by the
        //    frame rate ("slow down") is sent again, as a client backing
        //    off would; only the fetch quota's refusals are counted.
        let mut bundles = 0;
        let mut fetch_limited = 0;
        let mut frame_limited = 0;
        let mut fetches = 0;
        while fetches < 60 {
            let rid = mallory.rid();
            match mallory
                .request(ClientFrame::FetchBundle(
                    hush_protocol::frame::FetchBundle {
                        rid,
                        user_id: user("bob"),
                    },
                ))
                .await
            {
                ServerFrame::Bundle(_) => bundles += 1,
                ServerFrame::Error(e)
                    if e.code == ErrorCode::RateLimited && e.message.contains("slow down") =>
                {
                    frame_limited += 1;
                    assert!(frame_limited < 100_000, "the frame bucket never refilled");
                    continue;
                }
                ServerFrame::Error(e) if e.code == ErrorCode::RateLimited => fetch_limited += 1,
                other => panic!("unexpected fetch reply: {other:?}"),
            }
            fetches += 1;
        }
        assert_eq!((bundles, fetch_limited), (10, 50), "the fetch burst is 10");

        // 3. Registrations: four more new ids from this host, then refused.
        let mut registered = 0;
        let mut refused = 0;
        for i in 0..10 {
            let (mut ws, c) = connect_from(&relay, other_host()).await.unwrap();
            let name = format!("sock{i}");
            send_text(
                &mut ws,
                auth_frame(1, &c, &user(&name), &new_key()).encode(),
            )
            .await;
            let (frames, code) = raw_until_close_or_first(&mut ws).await;
            match (&frames[0], code) {
                (ServerFrame::AuthOk(_), _) => registered += 1,
                (ServerFrame::Error(e), Some(close::AUTH_FAILED))
                    if e.code == ErrorCode::RateLimited =>
                {
                    refused += 1
                }
                other => panic!("unexpected registration outcome: {other:?}"),
            }
        }
        assert_eq!((registered, refused), (4, 6));
        // A returning user is never refused, quota or not.
        let (ws, c) = connect_from(&relay, other_host()).await.unwrap();
        let (_again, _) = Client::login_on(ws, c, "mallory", &mallory_key).await;

        // 4. Connections: the per-address cap answers HTTP 429 (Mallory
        //    holds one: her second login replaced the first; the cap is 8).
        drop(mallory);
        let mut held = Vec::new();
        let mut too_many = 0;
        for _ in 0..12 {
            match connect_from(&relay, other_host()).await {
                Ok(conn) => held.push(conn),
                Err(e) if is_http_status(&e, 429) => too_many += 1,
                Err(e) => panic!("unexpected connect error: {e}"),
            }
        }
        // Connections that ended above may still be closing on the relay's
        // side, so fewer than 7 may fit, never more.
        assert!(
            held.len() <= 7 && too_many >= 5,
            "{} held, {too_many} refused",
            held.len()
        );
        (accepted, limited, bundles, fetch_limited, too_many)
    };
    let good = one_at_a_time(&mut alice, &mut bob, GOOD_MESSAGES, "busy");
    let ((accepted, limited, bundles, fetch_limited, too_many), busy) = tokio::join!(abuse, good);

    // Bob still has the one-time prekeys the quota protected: 50 - 10.
    let rid = alice.rid();
    assert!(matches!(
        alice
            .request(ClientFrame::FetchBundle(hush_protocol::frame::FetchBundle {
                rid,
                user_id: user("bob"),
            }))
            .await,
        ServerFrame::Bundle(b) if b.one_time_prekey.is_some()
    ));
    eprintln!(
        "abuse: flood {accepted} accepted / {limited} rate_limited; fetches {bundles} ok / {fetch_limited} refused; \
         connections refused {too_many}; good pair one-at-a-time latency ms quiet p50 {:.3} p99 {:.3} max {:.3}, \
         under abuse p50 {:.3} p99 {:.3} max {:.3}",
        percentile(&quiet, 0.5).as_secs_f64() * 1e3,
        percentile(&quiet, 0.99).as_secs_f64() * 1e3,
        quiet[quiet.len() - 1].as_secs_f64() * 1e3,
        percentile(&busy, 0.5).as_secs_f64() * 1e3,
        percentile(&busy, 0.99).as_secs_f64() * 1e3,
        busy[busy.len() - 1].as_secs_f64() * 1e3,
    );
}

/// Reads until the first frame after which the relay either closes or
/// keeps going: returns the frames read and the close code if it closed.
async fn raw_until_close_or_first(ws: &mut Ws) -> (Vec<ServerFrame>, Option<u16>) {
    use futures_util::StreamExt;
    let first = match within("a frame", ws.next()).await {
        Some(Ok(Message::Text(t))) => ServerFrame::decode(t.as_str()).unwrap(),
        other => panic!("expected a frame, got {other:?}"),
    };
    if matches!(first, ServerFrame::AuthOk(_)) {
        return (vec![first], None);
    }
    let (mut rest, code) = raw_until_close(ws).await;
    rest.insert(0, first);
    (rest, code)
}

#[tokio::test]
async fn connections_beyond_the_total_cap_get_503() {
    let relay = Backend::memory()
        .start_with(|c| c.limits.max_connections = 3)
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&relay).await);
    }
    // Another host is refused too: the cap is global.
    let Err(e) = connect_from(&relay, other_host()).await else {
        panic!("a 4th connection was accepted");
    };
    assert!(is_http_status(&e, 503), "{e}");
    // A slot frees when a connection ends.
    let (ws, _) = held.pop().unwrap();
    drop(ws);
    let mut reconnected = None;
    for _ in 0..100 {
        match connect_from(&relay, other_host()).await {
            Ok(c) => {
                reconnected = Some(c);
                break;
            }
            Err(e) if is_http_status(&e, 503) => tokio::task::yield_now().await,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(reconnected.is_some(), "the freed slot was never reusable");
}

/// A TCP forwarder between a client and the relay that can freeze: it then
/// stops passing bytes either way (a cable pulled, a NAT entry gone) but
/// keeps both sockets open, and reports when the relay closes its side.
struct Forwarder {
    addr: std::net::SocketAddr,
    freeze: tokio::sync::watch::Sender<bool>,
    relay_closed: tokio::sync::oneshot::Receiver<usize>,
}

impl Forwarder {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (freeze, frozen) = tokio::sync::watch::channel(false);
        let (closed_tx, relay_closed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (client, _) = listener.accept().await.unwrap();
            let relay = tokio::net::TcpStream::connect(upstream).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut rr, mut rw) = relay.into_split();
            let up_frozen = frozen.clone();
            // Client -> relay: stops at the freeze (the client keeps its
            // socket; nothing it sends arrives).
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if *up_frozen.borrow() {
                        continue;
                    }
                    if rw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
            // Relay -> client: after the freeze, bytes are read and dropped
            // (counted); the relay closing its side ends the stream.
            let mut buf = [0u8; 4096];
            let mut dropped = 0usize;
            loop {
                let n = match rr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if *frozen.borrow() {
                    dropped += n;
                } else if cw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = closed_tx.send(dropped);
        });
        Self {
            addr,
            freeze,
            relay_closed,
        }
    }
}

#[tokio::test]
async fn a_half_open_connection_is_pinged_then_dropped_and_mail_waits_in_the_mailbox() {
    let relay = Backend::memory()
        .start_with(|c| {
            c.limits.ping_interval = std::time::Duration::from_millis(100);
            c.limits.idle_timeout = std::time::Duration::from_millis(400);
        })
        .await;
    let fwd = Forwarder::start(relay.local_addr()).await;
    let bob_key = new_key();
    let (mut bob, _) =
        Client::login_url(&format!("ws://{}/v1/ws", fwd.addr), "bob", &bob_key).await;
    bob.ping().await;
    fwd.freeze.send(true).unwrap();
    // Bob's side is now silent; the relay pings, hears nothing, and drops
    // the connection by itself.
    let dropped = within(
        "the relay dropping the half-open connection",
        fwd.relay_closed,
    )
    .await
    .unwrap();
    assert!(
        dropped > 0,
        "the relay sent nothing (no ping) before dropping"
    );
    // Bob is offline again: mail for him is queued, not pushed into the void.
    let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
    let id = alice.send_ok("bob", b"while you were away").await;
    drop(bob);
    let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
    let e = bob.next_envelope().await;
    assert_eq!(
        (e.id, e.body.0.as_slice()),
        (Some(id), &b"while you were away"[..])
    );
}

#[tokio::test]
async fn a_live_but_quiet_client_answers_pings_and_stays_connected() {
    let relay = Backend::memory()
        .start_with(|c| {
            c.limits.ping_interval = std::time::Duration::from_millis(50);
            c.limits.idle_timeout = std::time::Duration::from_millis(200);
        })
        .await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    // Reading (which answers pings with pongs) but sending nothing of its
    // own for five idle timeouts: the relay must not drop it.
    let quiet = tokio::time::timeout(std::time::Duration::from_secs(1), bob.next_incoming()).await;
    assert!(
        quiet.is_err(),
        "the relay sent a frame or closed: {quiet:?}"
    );
    bob.ping().await;
}

#[tokio::test]
async fn connections_from_one_address_share_one_frame_rate() {
    const PINGS: usize = 150;
    let relay = Backend::memory()
        .start_with(|c| {
            c.limits.ip_rate_per_sec = 1;
            c.limits.ip_rate_burst = 200;
        })
        .await;
    // Two connections from one host, each well under its own per-connection
    // bucket (2,000), together over the address's burst of 200 (their two
    // auth frames are not counted: the bucket applies after `auth_ok`).
    let mut host = Vec::new();
    for name in ["m1", "m2"] {
        let (ws, c) = connect_from(&relay, other_host()).await.unwrap();
        host.push(Client::login_on(ws, c, name, &new_key()).await.0);
    }
    let mut limited = 0;
    let mut answered = 0;
    for c in &mut host {
        for i in 0..PINGS {
            c.send_raw(
                ClientFrame::Ping(hush_protocol::frame::Ping {
                    rid: 100 + i as u64,
                })
                .encode(),
            )
            .await;
        }
        for _ in 0..PINGS {
            match c.next_frame().await {
                ServerFrame::Pong(_) => answered += 1,
                ServerFrame::Error(e) if e.code == ErrorCode::RateLimited => limited += 1,
                other => panic!("unexpected reply: {other:?}"),
            }
        }
    }
    // The burst, and at most a token or two of refill during the test.
    assert!((200..=203).contains(&answered), "{answered} answered");
    assert_eq!(answered + limited, 2 * PINGS);
    // Another address is not affected.
    let (mut other, _) = Client::login(&relay, "bystander", &new_key()).await;
    other.ping().await;
}
