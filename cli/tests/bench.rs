//! `hush bench` against an in-process relay: tiny runs must deliver every
//! message exactly once and print a parseable JSON summary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use hush_relay::{Config, RelayHandle};

async fn bench(relay: &RelayHandle, extra: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hush"))
        .args(["bench", "--relay", &relay.ws_url(), "--json"])
        .args(extra)
        .arg("--relay-pid")
        .arg(std::process::id().to_string())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run hush bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hush bench failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON object on stdout")
}

fn u(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("field {k} missing or not an integer: {v}"))
}

fn f(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("field {k} missing or not a number: {v}"))
}

fn assert_all_delivered(v: &serde_json::Value, expected: u64) {
    assert_eq!(u(v, "sent"), expected);
    assert_eq!(u(v, "delivered"), expected);
    assert_eq!(u(v, "lost"), 0);
    assert_eq!(u(v, "duplicated"), 0);
    assert!(f(v, "throughput") > 0.0);
    for k in ["p50_ms", "p99_ms", "p999_ms", "max_ms"] {
        assert!(f(v, k) >= 0.0);
    }
    assert!(f(v, "p50_ms") <= f(v, "max_ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unencrypted_run_delivers_every_message_once() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let v = bench(
        &relay,
        &["--pairs", "2", "--messages", "20", "--no-encrypt"],
    )
    .await;
    assert_all_delivered(&v, 40);
    assert_eq!(v["encrypt"], false);
    // --relay-pid pointed at this process (which hosts the relay).
    assert!(v["server_us_per_msg"].as_f64().is_some());
    assert!(u(&v, "server_rss_kib") > 0);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_run_with_idle_connections_delivers_every_message_once() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let v = bench(
        &relay,
        &[
            "--pairs",
            "2",
            "--messages",
            "20",
            "--idle-connections",
            "5",
            "--window",
            "4",
        ],
    )
    .await;
    assert_all_delivered(&v, 40);
    assert_eq!(v["encrypt"], true);
    assert_eq!(u(&v, "idle_connections"), 5);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_backlog_is_drained_after_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayHandle::start(Config::redb(dir.path())).await.unwrap();
    let v = bench(
        &relay,
        &[
            "--pairs",
            "2",
            "--messages",
            "30",
            "--queued",
            "--no-encrypt",
        ],
    )
    .await;
    assert_all_delivered(&v, 60);
    assert!(f(&v, "drain_ms") > 0.0);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_larger_than_a_read_batch_is_delivered_whole() {
    // The relay pushes a backlog back to back, so the bench reads hundreds
    // of frames per wake-up: none may be dropped between batches.
    let mut limits = hush_client_core::Limits::default();
    limits.rate_per_sec = 1_000_000;
    limits.rate_burst = 1_000_000;
    let relay = RelayHandle::start(Config::memory().with_limits(limits))
        .await
        .unwrap();
    let v = bench(
        &relay,
        &[
            "--pairs",
            "1",
            "--messages",
            "1500",
            "--queued",
            "--no-encrypt",
        ],
    )
    .await;
    assert_all_delivered(&v, 1500);
    assert_eq!(u(&v, "out_of_order"), 0);
    relay.shutdown().await.unwrap();
}
