//! Presence through real `hush` processes and a real relay: `hush presence
//! allow/deny` edit and publish the allow list, `hush presence USER` answers
//! an allowed user with online / last seen and anyone else exactly as for a
//! user who does not exist, `hush recv --presence` reports changes, and
//! `hush settings` switches read receipts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hush_tests::{Hush, Relay, temp_dir};
use serde_json::{Map, Value};

/// How long a line from a running `hush recv` may take.
const LINE_WAIT: Duration = Duration::from_secs(20);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `hush presence USER... --json` for `asker`, one object per user.
fn presence(asker: &Hush, users: &[&str]) -> Vec<Map<String, Value>> {
    let mut args = vec!["presence"];
    args.extend_from_slice(users);
    args.push("--json");
    let out = asker.run(&args);
    out.assert_success();
    let lines = out.json_lines();
    assert_eq!(lines.len(), users.len(), "{}", out.transcript());
    lines
}

/// Asks until `subject` shows offline to `asker`: the relay notices a
/// disconnect a moment after the process that closed it exits. Bounded.
fn offline_entry(asker: &Hush, subject: &str) -> Map<String, Value> {
    for _ in 0..100 {
        let entry = presence(asker, &[subject]).remove(0);
        assert_eq!(entry["visible"], Value::Bool(true), "{entry:?}");
        if entry["online"] == Value::Bool(false) {
            return entry;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{subject} still shows online long after its last process exited");
}

fn without_user(mut entry: Map<String, Value>) -> Map<String, Value> {
    entry.remove("user");
    entry
}

#[test]
fn presence_is_shown_to_allowed_users_only_and_hidden_equals_unknown() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let (alice, bob, carol) = (Hush::new("alice"), Hush::new("bob"), Hush::new("carol"));
    for u in [&alice, &bob, &carol] {
        u.init(&relay.url());
    }

    // Nobody is allowed by default.
    let out = alice.run(&["presence"]);
    out.assert_success();
    assert_eq!(out.lines(), vec!["your presence is visible to nobody"]);
    assert_eq!(presence(&bob, &["alice"])[0]["visible"], Value::Bool(false));

    let before = now_ms();
    let out = alice.run(&["presence", "allow", "bob"]);
    out.assert_success();
    assert_eq!(out.lines(), vec!["your presence is visible to: bob"]);
    let out = alice.run(&["presence", "--json"]);
    out.assert_success();
    assert_eq!(out.stdout, "{\"user\":\"bob\"}\n");
    // Allowing again changes nothing; --json works after the subcommand.
    let out = alice.run(&["presence", "allow", "bob", "--json"]);
    out.assert_success();
    assert_eq!(out.stdout, "{\"user\":\"bob\"}\n");

    // alice is offline now; bob sees when she left (her `presence allow`
    // connection was her last).
    let seen = &offline_entry(&bob, "alice");
    let after = now_ms();
    assert_eq!(seen["type"], "presence");
    assert_eq!(seen["user"], "alice");
    assert_eq!(seen["visible"], Value::Bool(true));
    assert_eq!(seen["online"], Value::Bool(false));
    let last_seen = seen["last_seen"].as_u64().expect("last_seen is a time");
    assert!(
        (before..=after).contains(&last_seen),
        "last seen {last_seen} outside [{before}, {after}]"
    );
    let out = bob.run(&["presence", "alice"]);
    out.assert_success();
    assert!(
        out.stdout.starts_with("alice: offline, last seen "),
        "{}",
        out.transcript()
    );

    // carol: alice answers exactly like a user who does not exist.
    let answers = presence(&carol, &["alice", "nosuchuser"]);
    assert_eq!(answers[0]["visible"], Value::Bool(false));
    assert_eq!(
        without_user(answers[0].clone()),
        without_user(answers[1].clone())
    );
    let out = carol.run(&["presence", "alice"]);
    out.assert_success();
    let shown = out.stdout.replace("alice", "X");
    let out = carol.run(&["presence", "nosuchuser"]);
    assert_eq!(out.stdout.replace("nosuchuser", "X"), shown);

    // Denied: bob is back to the hidden answer.
    let out = alice.run(&["presence", "deny", "bob"]);
    out.assert_success();
    assert_eq!(out.lines(), vec!["your presence is visible to nobody"]);
    assert_eq!(
        without_user(presence(&bob, &["alice"])[0].clone()),
        without_user(answers[1].clone())
    );
}

#[test]
fn recv_reports_online_then_last_seen_when_the_watched_user_is_killed() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let (alice, bob) = (Hush::new("alice"), Hush::new("bob"));
    alice.init(&relay.url());
    bob.init(&relay.url());
    alice.run(&["presence", "allow", "bob"]).assert_success();
    offline_entry(&bob, "alice");

    let mut recv = bob
        .cmd(&["recv", "--json", "--wait", "60", "--presence", "alice"])
        .spawn();
    let mut next_presence = || recv.next_json_of_type("presence", LINE_WAIT);
    // The snapshot: offline since her `presence allow`.
    let first = next_presence();
    assert_eq!(first["user"], "alice");
    assert_eq!(first["online"], Value::Bool(false));

    // alice connects and stays (a receiving `hush recv`): bob sees her
    // online; her process is killed: bob sees her offline, last seen then.
    // Nothing else comes between: no repeated or earlier entry.
    let alice_recv = alice.cmd(&["recv", "--wait", "60"]).spawn();
    let online = next_presence();
    assert_eq!(online["online"], Value::Bool(true), "{online:?}");
    assert_eq!(online["visible"], Value::Bool(true), "{online:?}");
    let before = now_ms();
    alice_recv.kill();
    let offline = next_presence();
    assert_eq!(offline["online"], Value::Bool(false), "{offline:?}");
    let after = now_ms();
    let last_seen = offline["last_seen"].as_u64().expect("last_seen is a time");
    assert!((before..=after).contains(&last_seen), "{offline:?}");
    recv.kill();
}

#[test]
fn settings_switch_read_receipts_and_list_the_allowed() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    alice.init(&relay.url());
    let out = alice.run(&["settings", "--json"]);
    out.assert_success();
    let s = &out.json_lines()[0];
    assert_eq!(s["read_receipts"], Value::Bool(true));
    assert_eq!(s["presence_allowed"], serde_json::json!([]));

    let out = alice.run(&["settings", "--read-receipts", "off"]);
    out.assert_success();
    assert!(
        out.lines().contains(&"read-receipts: off"),
        "{}",
        out.transcript()
    );
    let out = alice.run(&["settings", "--read-receipts", "maybe"]);
    out.assert_code(2);

    let carol = Hush::new("carol");
    let out = carol.run(&[
        "init",
        "--user",
        "carol",
        "--relay",
        &relay.url(),
        "--kdf-memory-kib",
        "8",
        "--kdf-iterations",
        "1",
        "--no-read-receipts",
    ]);
    out.assert_success();
    let out = carol.run(&["settings", "--json"]);
    assert_eq!(out.json_lines()[0]["read_receipts"], Value::Bool(false));
}
