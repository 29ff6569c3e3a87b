//! Cluster mode across real processes: three `hush-relay --redis` processes
//! on one real `redis-server`, and users running the `hush` CLI (end-to-end
//! encrypted) against different relays.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use hush_tests::{Hush, Redis, Relay, RelayOptions, temp_dir};
use serde_json::Value;

fn cluster_relay(redis: &Redis, data: &tempfile::TempDir) -> Relay {
    Relay::start_with(
        data.path(),
        RelayOptions::new()
            .arg("--redis")
            .arg(redis.url())
            .arg("--presence-ttl-secs")
            .arg("2"),
    )
}

fn received_texts(out: &hush_tests::Output) -> Vec<String> {
    out.json_lines()
        .iter()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("message"))
        .filter_map(|l| l.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Alice registered on relay 1, Bob on relay 2: a conversation in both
/// directions goes through different relays; relay 1 is SIGKILLed half-way
/// and Alice goes on through relay 3. Every message `hush send` reported
/// arrives once, in order, decrypted.
#[test]
fn conversation_across_relays_survives_a_relay_sigkill() {
    let redis = Redis::start();
    let dirs: Vec<_> = (0..3).map(|_| temp_dir("hush-relay-data-")).collect();
    let mut r1 = cluster_relay(&redis, &dirs[0]);
    let r2 = cluster_relay(&redis, &dirs[1]);
    let r3 = cluster_relay(&redis, &dirs[2]);
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&r1.url());
    bob.init(&r2.url());

    let texts: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
    for (i, t) in texts.iter().enumerate() {
        if i == 5 {
            r1.kill();
        }
        if i < 5 {
            alice.send("bob", t);
        } else {
            let out = alice.run(&["--relay", &r3.url(), "send", "bob", t]);
            out.assert_success();
        }
    }
    let out = bob.run(&["recv", "--json"]);
    out.assert_success();
    assert_eq!(received_texts(&out), texts, "{}", out.transcript());

    // And back: Bob (relay 2) answers, Alice reads through relay 3.
    bob.send("alice", "b0");
    let out = alice.run(&["--relay", &r3.url(), "recv", "--json"]);
    out.assert_success();
    assert_eq!(
        received_texts(&out),
        vec!["b0".to_owned()],
        "{}",
        out.transcript()
    );
    drop(r2);
}
