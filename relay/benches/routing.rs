//! Routing through a whole in-process relay (memory store): a sender
//! pipelines 64 `send`s, the relay appends, routes each to the receiver's
//! live session and encodes the `envelope`; the receiver reads the 64
//! envelopes and acknowledges them. One iteration = 64 messages routed end
//! to end over loopback WebSockets (both clients in this process, so
//! client costs are included).
//!
//! `cargo bench -p hush-relay --bench routing`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, SigningKey};
use futures_util::{SinkExt as _, StreamExt as _};
use hush_protocol::frame::Auth;
use hush_protocol::{ClientFrame, PublicKeyBytes, ServerFrame, SignatureBytes, UserId, signing};
use hush_relay::{Config, RelayHandle};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
const BATCH: usize = 64;

async fn next(ws: &mut Ws) -> ServerFrame {
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => return ServerFrame::decode(t.as_str()).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

async fn login(url: &str, name: &str, seed: u8) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let ServerFrame::Challenge(ch) = next(&mut ws).await else {
        panic!("no challenge")
    };
    let key = SigningKey::from_bytes(&[seed; 32]);
    let user = UserId::try_from(name).unwrap();
    let msg = signing::auth_message(&ch.relay_id, &ch.challenge.0, name).unwrap();
    let auth = ClientFrame::Auth(Auth {
        rid: 1,
        user_id: user,
        identity_key: PublicKeyBytes(key.verifying_key().to_bytes()),
        signature: SignatureBytes(key.sign(&msg).to_bytes()),
    });
    ws.send(Message::text(auth.encode())).await.unwrap();
    assert!(matches!(next(&mut ws).await, ServerFrame::AuthOk(_)));
    ws
}

fn bench_routing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut limits = hush_protocol::Limits::default();
    limits.rate_per_sec = 10_000_000;
    limits.rate_burst = 10_000_000;
    // Both connections come from 127.0.0.1: without this the per-address
    // frame rate refuses sends after its burst and the bench waits forever
    // for envelopes that were never accepted.
    limits.ip_rate_burst = 0;
    let (relay, mut tx, mut rx) = rt.block_on(async {
        let relay = RelayHandle::start(Config::memory().with_limits(limits))
            .await
            .unwrap();
        let rx = login(&relay.ws_url(), "bob", 2).await;
        let tx = login(&relay.ws_url(), "alice", 1).await;
        (relay, tx, rx)
    });
    let body = STANDARD.encode([0x5au8; 256]);
    let mut g = c.benchmark_group("routing");
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("send_route_deliver_ack_64x256B", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    for rid in 0..BATCH {
                        let text =
                            format!(r#"{{"type":"send","rid":{rid},"to":"bob","body":"{body}"}}"#);
                        tx.feed(Message::text(text)).await.unwrap();
                    }
                    tx.flush().await.unwrap();
                    let mut ids = Vec::with_capacity(BATCH);
                    while ids.len() < BATCH {
                        if let ServerFrame::Envelope(e) = next(&mut rx).await {
                            ids.push(e.id.unwrap());
                        }
                    }
                    let ack = ClientFrame::Ack(hush_protocol::frame::Ack { rid: 0, ids });
                    rx.send(Message::text(ack.encode())).await.unwrap();
                    let mut accepted = 0;
                    while accepted < BATCH {
                        if let ServerFrame::Accepted(_) = next(&mut tx).await {
                            accepted += 1;
                        }
                    }
                }
                t.elapsed()
            })
        });
    });
    g.finish();
    rt.block_on(async {
        drop((tx, rx));
        relay.shutdown().await.unwrap();
    });
}

criterion_group!(benches, bench_routing);
criterion_main!(benches);
