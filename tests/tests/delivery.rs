//! Durability across relay crashes: what the relay accepted (a `hush send`
//! that printed an id) is delivered after SIGKILLs and restarts, exactly
//! once and in order.

use std::time::Duration;

use hush_tests::{Hush, Relay, temp_dir};
use serde_json::Value;

#[test]
fn fifty_messages_survive_relay_kills_exactly_once_in_order() {
    const MESSAGES: usize = 50;
    const KILL_BEFORE: [usize; 2] = [17, 34];
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    // Bob registers, then stays offline until all 50 are sent.
    bob.init(&relay.url());

    let texts: Vec<String> = (0..MESSAGES).map(|i| format!("m{i:02}")).collect();
    let mut ids = Vec::with_capacity(MESSAGES);
    for (i, text) in texts.iter().enumerate() {
        if KILL_BEFORE.contains(&i) {
            relay.restart(); // SIGKILL, then a new process on the same port
        }
        ids.push(alice.send("bob", text));
    }
    // And once more right after the last accepted message.
    relay.restart();

    let out = bob.run(&["recv", "--json"]);
    out.assert_success();
    let messages: Vec<_> = out
        .json_lines()
        .into_iter()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("message"))
        .collect();
    let got_texts: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.get("text").and_then(Value::as_str))
        .collect();
    let got_ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .collect();
    assert_eq!(got_texts, texts, "all 50, once each, in order");
    assert_eq!(got_ids, ids, "the ids `hush send` printed");
    assert!(
        messages
            .iter()
            .all(|m| m.get("from").and_then(Value::as_str) == Some("alice")),
        "{}",
        out.transcript()
    );

    // Acknowledged: nothing is delivered a second time.
    let again = bob.run(&["recv", "--json"]);
    again.assert_success();
    assert!(
        again
            .json_lines()
            .iter()
            .all(|l| l.get("type").and_then(Value::as_str) != Some("message")),
        "a second recv delivered messages again\n{}",
        again.transcript()
    );
    let history = bob.run(&["history", "alice", "--json"]);
    history.assert_success();
    let stored: Vec<String> = history
        .json_lines()
        .iter()
        .filter_map(|e| e.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect();
    assert_eq!(stored, texts, "the history holds each message once");
}

/// Texts of the `message` events among JSON lines.
fn message_texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("type").and_then(Value::as_str) == Some("message"))
        .filter_map(|v| v.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn history_texts(user: &Hush, peer: &str) -> Vec<String> {
    let out = user.run(&["history", peer, "--json"]);
    out.assert_success();
    out.json_lines()
        .iter()
        .filter_map(|e| e.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Alice and Bob on a fresh relay, with `n` messages from Alice queued
/// for Bob (`q00`, `q01`, ...).
fn queued_for_bob(n: usize) -> (tempfile::TempDir, Relay, Hush, Hush, Vec<String>) {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    let texts: Vec<String> = (0..n).map(|i| format!("q{i:02}")).collect();
    for t in &texts {
        alice.send("bob", t);
    }
    (data, relay, alice, bob, texts)
}

#[test]
fn relay_killed_during_recv_redelivers_without_duplicates() {
    const N: usize = 40;
    let (_data, mut relay, _alice, bob, texts) = queued_for_bob(N);

    // -v: the client logs the lost connection and its reconnection.
    let mut recv = bob.cmd(&["recv", "--json", "-v"]).spawn();
    let first = recv
        .next_line(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("recv printed nothing"));
    // The relay dies while Bob is being served; he reconnects by himself.
    relay.restart();
    let out = recv.wait();
    out.assert_success();
    let lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines.first(), Some(&first));
    assert_eq!(
        message_texts(&lines),
        texts,
        "every message once, in order, across the crash\n{}",
        out.transcript()
    );
    assert_eq!(history_texts(&bob, "alice"), texts);
    let again = bob.run(&["recv", "--json"]);
    again.assert_success();
    assert_eq!(
        message_texts(&again.stdout.lines().map(str::to_owned).collect::<Vec<_>>()),
        Vec::<String>::new()
    );
}

#[test]
fn recv_killed_mid_delivery_loses_and_duplicates_nothing() {
    const N: usize = 40;
    let (_data, _relay, _alice, bob, texts) = queued_for_bob(N);

    let mut recv = bob.cmd(&["recv", "--json"]).spawn();
    recv.next_line(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("recv printed nothing"));
    // SIGKILL of the client in the middle of its backlog.
    let killed = recv.kill();
    let first: Vec<String> =
        message_texts(&killed.stdout.lines().map(str::to_owned).collect::<Vec<_>>());

    let out = bob.run(&["recv", "--json"]);
    out.assert_success();
    let second = message_texts(&out.stdout.lines().map(str::to_owned).collect::<Vec<_>>());

    // What was printed, over both runs, is in order and never twice (a
    // message stored just before the kill may not have been printed: the
    // history has it).
    let shown: Vec<&String> = first.iter().chain(&second).collect();
    let mut positions = shown.iter().map(|t| texts.iter().position(|x| x == *t));
    let mut last = None;
    for p in positions.by_ref() {
        let p = p.unwrap_or_else(|| panic!("an unknown message was shown: {shown:?}"));
        assert!(last < Some(p), "shown twice or out of order: {shown:?}");
        last = Some(p);
    }
    assert_eq!(
        history_texts(&bob, "alice"),
        texts,
        "the history has each message once"
    );
}
