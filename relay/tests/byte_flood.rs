//! Fairness by bytes: one address floods the relay with large bodies,
//! entirely within the frame rates, over several connections; a
//! well-behaved pair on another address keeps its latency. The latency
//! figures are printed for `docs/benchmarks.md` (never asserted: timing is
//! the machine's); what is asserted is the mechanism: the flooding address
//! gets no more bytes through than its byte budget allows, and no error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use hush_protocol::frame::SendEnvelope;
use hush_protocol::{Body, ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::Message;

/// Flooding connections, all from one address.
const FLOODERS: usize = 4;
/// Body of each flood envelope (under `max_envelope_bytes`).
const FLOOD_BODY: usize = 60_000;
/// Most envelopes one flooder sends (bounds the test's disk use).
const FLOOD_MAX: usize = 1_000;
/// Messages the good pair times, one at a time, unloaded.
const GOOD: usize = 200;
/// How long the good pair is timed under the flood (while it lasts).
const FLOOD_WINDOW: Duration = Duration::from_secs(2);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Alice sends envelopes to Bob one at a time and Bob acks each, `n` of
/// them or until `until` says stop; the latency of each is from the send to
/// Bob reading it.
async fn good_pair(
    alice: &mut Client,
    bob: &mut Client,
    n: usize,
    tag: &str,
    until: impl Fn() -> bool,
) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n.min(4096));
    for i in 0..n {
        if until() {
            break;
        }
        let body = format!("{tag}-{i}");
        let t0 = Instant::now();
        let id = alice.send_ok("bob", body.as_bytes()).await;
        let e = bob.next_envelope().await;
        lat.push(t0.elapsed());
        assert_eq!(e.id, Some(id));
        assert!(matches!(bob.ack(vec![id]).await, ServerFrame::Acked(_)));
    }
    lat.sort();
    lat
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_flood_from_one_address_is_slowed_and_a_good_pair_keeps_its_latency() {
    // HUSH_FLOOD_BASELINE=1: the byte limits off, as the relay was before
    // them (for the "before" figure in docs/benchmarks.md).
    let baseline = std::env::var_os("HUSH_FLOOD_BASELINE").is_some();
    let backend = Backend::redb();
    let relay = backend
        .start_with(|c| {
            // Room for the whole flood: no `mailbox_full` ends it early.
            c.limits.mailbox_max_bytes = 1 << 31;
            c.limits.mailbox_max_envelopes = 1_000_000;
            if baseline {
                c.limits.byte_rate_per_sec = 0;
                c.limits.ip_byte_rate_per_sec = 0;
                c.limits.max_in_flight_bytes = usize::MAX;
            }
        })
        .await;
    let limits = hush_protocol::Limits::default();
    let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    drop(Client::login(&relay, "sink", &new_key()).await);

    let quiet = good_pair(&mut alice, &mut bob, GOOD, "quiet", || false).await;

    let stop = Arc::new(AtomicBool::new(false));
    let floods_done = Arc::new(AtomicU64::new(0));
    let accepted_bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let flood_start = Instant::now();
    let mut flooders = Vec::new();
    for f in 0..FLOODERS {
        let (ws, c) = connect_from(&relay, std::net::IpAddr::from([127, 0, 0, 2]))
            .await
            .unwrap();
        let (client, _) = Client::login_on(ws, c, &format!("flood{f}"), &new_key()).await;
        let (mut tx, mut rx) = client.into_ws().split();
        let stop = stop.clone();
        let sent = Arc::new(AtomicU64::new(0));
        let sent2 = sent.clone();
        let sender = tokio::spawn(async move {
            for i in 0..FLOOD_MAX {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let frame = ClientFrame::Send(SendEnvelope {
                    rid: 1_000 + i as u64,
                    to: user("sink"),
                    body: Body(vec![0xAB; FLOOD_BODY]),
                    ephemeral: false,
                });
                if tx.send(Message::Text(frame.encode().into())).await.is_err() {
                    break;
                }
                sent2.fetch_add(1, Ordering::Relaxed);
            }
            tx
        });
        let (accepted, errors) = (accepted_bytes.clone(), errors.clone());
        let done = floods_done.clone();
        let reader = tokio::spawn(async move {
            let mut replies = 0u64;
            while let Some(Ok(m)) = rx.next().await {
                let Message::Text(t) = m else { continue };
                match ServerFrame::decode(t.as_str()).unwrap() {
                    ServerFrame::Accepted(_) => {
                        accepted.fetch_add(FLOOD_BODY as u64, Ordering::Relaxed);
                        replies += 1;
                    }
                    ServerFrame::Error(e) => {
                        eprintln!("flood error: {e:?}");
                        errors.fetch_add(1, Ordering::Relaxed);
                        replies += 1;
                    }
                    _ => {}
                }
                if replies >= FLOOD_MAX as u64 {
                    break;
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
            rx
        });
        flooders.push((sender, reader, sent));
    }

    // Timed for FLOOD_WINDOW, or until every flooder had all its replies.
    let window_end = Instant::now() + FLOOD_WINDOW;
    let flooded = good_pair(&mut alice, &mut bob, 50_000, "flood", || {
        Instant::now() >= window_end || floods_done.load(Ordering::Relaxed) == FLOODERS as u64
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = flood_start.elapsed();
    assert!(
        !flooded.is_empty(),
        "the flood was over before the good pair sent"
    );
    let through = accepted_bytes.load(Ordering::Relaxed);
    for (sender, reader, _) in flooders {
        sender.abort();
        reader.abort();
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "byte flood (redb, {FLOODERS} connections x {FLOOD_BODY} B bodies from one address, \
         good pair one message at a time): quiet ({GOOD}) p50 {:.3} ms p99 {:.3} ms; under \
         the flood ({} messages) p50 {:.3} ms p99 {:.3} ms ({:.1}x); flood accepted {:.1} MB \
         in {:.2} s ({:.2} MB/s)",
        ms(percentile(&quiet, 0.5)),
        ms(percentile(&quiet, 0.99)),
        flooded.len(),
        ms(percentile(&flooded, 0.5)),
        ms(percentile(&flooded, 0.99)),
        ms(percentile(&flooded, 0.99)) / ms(percentile(&quiet, 0.99)),
        through as f64 / 1e6,
        elapsed.as_secs_f64(),
        through as f64 / 1e6 / elapsed.as_secs_f64(),
    );
    assert_eq!(
        errors.load(Ordering::Relaxed),
        0,
        "the flood was slowed, not refused"
    );
    if baseline {
        return;
    }
    // The address got no more through than its byte budget: the burst,
    // then the rate (each accepted envelope is one frame of a little more
    // than its body).
    let budget = limits.ip_byte_rate_burst as f64
        + limits.ip_byte_rate_per_sec as f64 * elapsed.as_secs_f64();
    assert!(
        (through as f64) <= budget * 1.05 + (FLOODERS * FLOOD_BODY) as f64,
        "the flooding address got {through} bytes through in {elapsed:?}, over its budget {budget}"
    );
}
