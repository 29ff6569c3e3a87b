//! A throughput probe, not a pass/fail test: `cargo test --release -p
//! hush-relay --test load -- --ignored --nocapture`. Pairs of clients; each
//! sender sends sequentially (waiting for `accepted`), each receiver acks in
//! batches. Prints delivered messages per second per backend.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::time::Instant;

use common::*;

async fn run(b: Backend, label: &str) {
    let pairs = 32;
    let per_sender = 500u64;
    let body = vec![0u8; 200];
    let relay = b.start().await;
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for p in 0..pairs {
        receivers.push(Client::login(&relay, &format!("r{p}"), &new_key()).await.0);
        senders.push(Client::login(&relay, &format!("s{p}"), &new_key()).await.0);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (p, mut r) in receivers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..per_sender {
                ids.push(r.next_envelope().await.id.unwrap());
                if ids.len() == 100 {
                    r.ack(std::mem::take(&mut ids)).await;
                }
            }
            p
        }));
    }
    for (p, mut s) in senders.into_iter().enumerate() {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let to = format!("r{p}");
            for _ in 0..per_sender {
                s.send_ok(&to, &body).await;
            }
            p
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let total = pairs as f64 * per_sender as f64;
    println!(
        "{label}: {total} messages in {secs:.2} s = {:.0} msg/s ({pairs} sequential senders)",
        total / secs
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "throughput probe; run explicitly in release"]
async fn throughput_probe() {
    run(Backend::memory(), "memory").await;
    run(Backend::redb(), "redb").await;
}
