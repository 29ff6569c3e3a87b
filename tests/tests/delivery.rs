//! Durability across relay crashes: what the relay accepted (a `hush send`
//! that printed an id) is delivered after SIGKILLs and restarts, exactly
//! once and in order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::time::Duration;

use hush_tests::{Hush, Relay, RelayOptions, temp_dir};
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
    // Bob's recv sees every message once, in order, across the crash
    // (checked by the scenario); his history and a second recv agree.
    let crashed = relay_crash_during_recv();
    let bob = &crashed.bob;
    assert_eq!(history_texts(bob, "alice"), crashed.texts);
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

/// The outcome of [`relay_crash_during_recv`].
struct Crashed {
    _relay: Relay,
    _data: tempfile::TempDir,
    alice: Hush,
    bob: Hush,
    texts: Vec<String>,
    /// How long bob's `recv` ran after the relay was back.
    took: Duration,
}

/// Bob drains `N` queued messages while the relay is SIGKILLed (after his
/// first message line) and restarted; he gets each exactly once.
fn relay_crash_during_recv() -> Crashed {
    const N: usize = 40;
    let (data, mut relay, alice, bob, texts) = queued_for_bob(N);
    let mut recv = bob.cmd(&["recv", "--json"]).spawn();
    recv.next_line(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("recv printed nothing"));
    relay.restart();
    let restarted = std::time::Instant::now();
    let out = recv.wait();
    let took = restarted.elapsed();
    out.assert_success();
    let lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    assert_eq!(
        message_texts(&lines),
        texts,
        "every message once, in order, across the crash\n{}",
        out.transcript()
    );
    Crashed {
        _relay: relay,
        _data: data,
        alice,
        bob,
        texts,
        took,
    }
}

#[test]
fn relay_crash_during_recv_does_not_stall_the_client() {
    // Far above a reconnect (backoff starts at 100 ms), below the client's
    // 10 s request timeout.
    const PROMPT: Duration = Duration::from_secs(5);
    let took = relay_crash_during_recv().took;
    assert!(
        took < PROMPT,
        "bob's recv needed {took:?} after the relay came back to finish its backlog"
    );
}

/// Alice's history statuses, oldest first, after she collected receipts.
fn statuses_at_alice(alice: &Hush) -> Vec<String> {
    alice.run(&["recv", "--json"]).assert_success();
    alice
        .run(&["history", "bob", "--json"])
        .json_lines()
        .iter()
        .filter_map(|e| e.get("status").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

#[test]
fn a_drained_backlog_is_reported_delivered() {
    let (_data, _relay, alice, bob, texts) = queued_for_bob(40);
    bob.recv();
    let statuses = statuses_at_alice(&alice);
    assert_eq!(statuses, vec!["delivered"; texts.len()]);
}

#[test]
fn relay_crash_during_recv_loses_no_delivery_receipts() {
    let crashed = relay_crash_during_recv();
    let (alice, texts) = (&crashed.alice, &crashed.texts);
    // Alice collects the receipts; every message bob stored is then
    // marked delivered in her history.
    let statuses = statuses_at_alice(alice);
    assert_eq!(statuses.len(), texts.len());
    let undelivered: Vec<&String> = texts
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| s.as_str() != "delivered")
        .map(|(t, _)| t)
        .collect();
    assert!(
        undelivered.is_empty(),
        "{} of {} messages bob stored are still `sent` at alice: {undelivered:?}",
        undelivered.len(),
        texts.len()
    );
}

/// Bob reads 3 messages, then the relay forgets him (`forget`), he comes
/// back with the same profile, and alice sends 3 more: he must get them.
fn messages_after_the_relay_forgot_bob(options: RelayOptions, forget: impl FnOnce(&mut Relay)) {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start_with(data.path(), options);
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    for i in 0..3 {
        alice.send("bob", &format!("before {i}"));
    }
    assert_eq!(bob.recv().lines().len(), 3);

    forget(&mut relay);
    // Bob's next connection registers him again, same key, new mailbox.
    bob.recv();
    let after: Vec<String> = (0..3).map(|i| format!("after {i}")).collect();
    for t in &after {
        alice.send("bob", t);
    }
    let out = bob.recv();
    let expected: Vec<String> = after
        .iter()
        .map(|t| format!("alice [message request]: {t}"))
        .collect();
    assert_eq!(
        out.lines(),
        expected,
        "accepted after the relay forgot bob, so they must reach him\n{}",
        out.transcript()
    );
}

#[test]
fn messages_after_an_admin_reset_of_a_returning_user_are_not_dropped() {
    messages_after_the_relay_forgot_bob(RelayOptions::new(), |relay| {
        relay.kill();
        relay.admin(&["reset-user", "bob"]).assert_success();
        relay.restart();
    });
}

#[test]
fn messages_after_a_memory_relay_restart_are_not_dropped() {
    // A fixed relay id: clients pin it, and a memory relay's own is random
    // per process.
    messages_after_the_relay_forgot_bob(
        RelayOptions::new()
            .arg("--store")
            .arg("memory")
            .arg("--relay-id")
            .arg("memory-test-relay"),
        Relay::restart,
    );
}
