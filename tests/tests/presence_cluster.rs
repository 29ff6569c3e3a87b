//! Presence in cluster mode through real processes: two `hush-relay
//! --redis` on one real `redis-server`; alice uses one relay, bob and carol
//! the other. alice's allow list, online state and last seen reach bob
//! across relays; carol still gets the answer for a user who does not
//! exist.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hush_tests::{Hush, Redis, Relay, RelayOptions, temp_dir};
use serde_json::{Map, Value};

/// How long a line from a running `hush recv` may take.
const LINE_WAIT: Duration = Duration::from_secs(20);

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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn presence(asker: &Hush, user: &str) -> Map<String, Value> {
    let out = asker.run(&["presence", user, "--json"]);
    out.assert_success();
    out.json_lines().remove(0)
}

/// Asks until `subject` shows offline to `asker` (the relays learn of a
/// disconnect a moment after the process exits). Bounded.
fn offline_entry(asker: &Hush, subject: &str) -> Map<String, Value> {
    for _ in 0..100 {
        let entry = presence(asker, subject);
        assert_eq!(entry["visible"], Value::Bool(true), "{entry:?}");
        if entry["online"] == Value::Bool(false) {
            return entry;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{subject} still shows online long after its last process exited");
}

#[test]
fn presence_crosses_relays_and_stays_hidden_from_others() {
    let redis = Redis::start();
    let dirs: Vec<_> = (0..2).map(|_| temp_dir("hush-relay-data-")).collect();
    let r1 = cluster_relay(&redis, &dirs[0]);
    let r2 = cluster_relay(&redis, &dirs[1]);
    let (alice, bob, carol) = (Hush::new("alice"), Hush::new("bob"), Hush::new("carol"));
    alice.init(&r1.url());
    bob.init(&r2.url());
    carol.init(&r2.url());

    let before = now_ms();
    alice.run(&["presence", "allow", "bob"]).assert_success();
    let seen = offline_entry(&bob, "alice");
    let last_seen = seen["last_seen"].as_u64().expect("last_seen is a time");
    assert!((before..=now_ms()).contains(&last_seen), "{seen:?}");

    let hidden = presence(&carol, "alice");
    let mut unknown = presence(&carol, "nosuchuser");
    assert_eq!(hidden["visible"], Value::Bool(false));
    unknown.insert("user".into(), Value::from("alice"));
    assert_eq!(hidden, unknown);

    // bob watches from relay 2 while alice comes and goes on relay 1.
    let mut recv = bob
        .cmd(&["recv", "--json", "--wait", "60", "--presence", "alice"])
        .spawn();
    let mut next_presence = || recv.next_json_of_type("presence", LINE_WAIT);
    let snapshot = next_presence();
    assert_eq!(snapshot["online"], Value::Bool(false), "{snapshot:?}");
    // alice stays connected to relay 1 (a receiving `hush recv`), then her
    // process is killed: bob on relay 2 sees exactly online, then offline
    // with the time she left (no repeated or earlier entry between).
    let alice_recv = alice.cmd(&["recv", "--wait", "60"]).spawn();
    let online = next_presence();
    assert_eq!(online["online"], Value::Bool(true), "{online:?}");
    let before = now_ms();
    alice_recv.kill();
    let gone = next_presence();
    assert_eq!(gone["online"], Value::Bool(false), "{gone:?}");
    let last_seen = gone["last_seen"].as_u64().expect("last_seen is a time");
    assert!((before..=now_ms()).contains(&last_seen), "{gone:?}");
    recv.kill();

    // A deny on relay 1 hides alice from bob on relay 2.
    alice.run(&["presence", "deny", "bob"]).assert_success();
    assert_eq!(presence(&bob, "alice")["visible"], Value::Bool(false));
}
