//! Sending and receiving through real `hush` processes and a real relay:
//! the text arrives exactly, the history keeps it, the `--json` forms carry
//! their documented fields, and `recv` stops by itself once drained.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hush_tests::{Hush, Relay, message_id, temp_dir};
use serde_json::{Map, Value};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn str_field<'a>(line: &'a Map<String, Value>, key: &str) -> &'a str {
    line.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("field {key:?} missing or not a string in {line:?}"))
}

fn u64_field(line: &Map<String, Value>, key: &str) -> u64 {
    line.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("field {key:?} missing or not an integer in {line:?}"))
}

/// The `message` events of a `recv --json` run, asserting their fields.
fn received_messages(out: &hush_tests::Output) -> Vec<Map<String, Value>> {
    out.json_lines()
        .into_iter()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("message"))
        .collect()
}

#[test]
fn alice_sends_bob_receives_exactly_the_text() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    let init = alice.init(&relay.url());
    let init_lines = init.lines();
    assert_eq!(
        init_lines.first(),
        Some(&"user: alice"),
        "{}",
        init.transcript()
    );
    assert!(
        init_lines
            .get(1)
            .is_some_and(|l| l.starts_with("fingerprint: ")),
        "{}",
        init.transcript()
    );
    bob.init(&relay.url());

    // Plain text: `recv` prints exactly `alice: TEXT`.
    let text = "Hello Bob! Ünïcödé, quotes \" and a colon: fine";
    let started = now_ms();
    let first_id = alice.send("bob", text);
    let out = bob.recv();
    assert_eq!(
        out.stdout,
        format!("alice [message request]: {text}\n"),
        "{}",
        out.transcript()
    );

    let history = bob.run(&["history", "alice"]);
    history.assert_success();
    let lines = history.lines();
    assert_eq!(lines.len(), 1, "{}", history.transcript());
    assert!(
        lines[0].ends_with(&format!(" alice: {text}")),
        "{}",
        history.transcript()
    );

    // `recv --json`: one object per message with the documented fields.
    let second = "second message, read as JSON";
    let second_id = alice.send("bob", second);
    let out = bob.run(&["recv", "--json"]);
    out.assert_success();
    let msgs = received_messages(&out);
    assert_eq!(msgs.len(), 1, "{}", out.transcript());
    let m = &msgs[0];
    assert_eq!(str_field(m, "type"), "message");
    assert_eq!(str_field(m, "from"), "alice");
    assert_eq!(
        str_field(m, "id"),
        second_id,
        "recv shows the id send printed"
    );
    assert_eq!(str_field(m, "text"), second);
    let sent_at = u64_field(m, "sent_at");
    assert!(
        (started..=now_ms()).contains(&sent_at),
        "sent_at {sent_at} is not a unix time in ms during this test"
    );

    // `send bob -` reads the message from stdin (one trailing newline is
    // not part of it, inner newlines are).
    let out = alice
        .cmd(&["send", "bob", "-"])
        .stdin("line one\nline two\n")
        .run();
    out.assert_success();
    let stdin_id = message_id(&out);
    let out = bob.run(&["recv", "--json"]);
    out.assert_success();
    let msgs = received_messages(&out);
    assert_eq!(msgs.len(), 1, "{}", out.transcript());
    assert_eq!(str_field(&msgs[0], "text"), "line one\nline two");
    assert_eq!(str_field(&msgs[0], "id"), stdin_id);

    // Bob's history, as JSON: the three messages, in order, incoming.
    let expected = [
        (first_id.as_str(), text),
        (second_id.as_str(), second),
        (stdin_id.as_str(), "line one\nline two"),
    ];
    let out = bob.run(&["history", "alice", "--json"]);
    out.assert_success();
    let entries = out.json_lines();
    assert_eq!(entries.len(), 3, "{}", out.transcript());
    for (e, (id, text)) in entries.iter().zip(expected) {
        assert_eq!(str_field(e, "id"), id);
        assert_eq!(str_field(e, "direction"), "in");
        assert_eq!(str_field(e, "from"), "alice");
        assert_eq!(str_field(e, "to"), "bob");
        assert_eq!(str_field(e, "text"), text);
        assert!(
            e.contains_key("status"),
            "history has a status field: {e:?}"
        );
        u64_field(e, "sent_at");
    }

    // Alice's side: outgoing, and delivered once she has received Bob's
    // delivery receipts.
    let out = alice.run(&["recv", "--json"]);
    out.assert_success();
    let receipted: Vec<String> = out
        .json_lines()
        .iter()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("receipt"))
        .inspect(|l| assert_eq!(str_field(l, "from"), "bob"))
        .filter(|l| str_field(l, "kind") == "delivered")
        .flat_map(|l| {
            l.get("ids")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    for (id, _) in expected {
        assert!(
            receipted.iter().any(|r| r == id),
            "no delivery receipt for {id}\n{}",
            out.transcript()
        );
    }
    let out = alice.run(&["history", "bob", "--json"]);
    out.assert_success();
    let entries = out.json_lines();
    assert_eq!(entries.len(), 3, "{}", out.transcript());
    for (e, (id, text)) in entries.iter().zip(expected) {
        assert_eq!(str_field(e, "id"), id);
        assert_eq!(str_field(e, "direction"), "out");
        assert_eq!(str_field(e, "from"), "alice");
        assert_eq!(str_field(e, "to"), "bob");
        assert_eq!(str_field(e, "text"), text);
        assert_eq!(str_field(e, "status"), "delivered", "{}", out.transcript());
    }
}

#[test]
fn recv_drains_then_exits() {
    const N: usize = 7;
    // Generous for a few processes on a loaded 2-core machine, far below
    // "waits forever".
    const BOUND: Duration = Duration::from_secs(20);
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());

    // Nothing queued: exits at once, prints nothing.
    let out = bob.cmd(&["recv"]).timeout(BOUND).run();
    out.assert_success();
    assert_eq!(out.stdout, "", "{}", out.transcript());

    let texts: Vec<String> = (0..N).map(|i| format!("queued {i}")).collect();
    for t in &texts {
        alice.send("bob", t);
    }
    let out = bob.cmd(&["recv"]).timeout(BOUND).run();
    out.assert_success();
    let expected: Vec<String> = texts
        .iter()
        .map(|t| format!("alice [message request]: {t}"))
        .collect();
    assert_eq!(out.lines(), expected, "{}", out.transcript());

    // They were acknowledged: a second drain finds nothing.
    let out = bob.cmd(&["recv"]).timeout(BOUND).run();
    out.assert_success();
    assert_eq!(out.stdout, "", "{}", out.transcript());
}

#[test]
fn online_recipient_gets_each_message_as_it_arrives() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());

    // Bob's first message line is printed only after he is connected and
    // drained; it arrives while he listens.
    let mut listening = bob.cmd(&["recv", "--wait", "60"]).spawn();
    for i in 0..3 {
        let text = format!("live {i}");
        alice.send("bob", &text);
        let line = listening.next_line(Duration::from_secs(15));
        assert_eq!(
            line.as_deref(),
            Some(format!("alice [message request]: {text}").as_str())
        );
    }
    listening.kill();
    // Shown once: a later recv does not show them again.
    let out = bob.recv();
    assert_eq!(out.stdout, "", "{}", out.transcript());
    assert_eq!(bob.run(&["history", "alice"]).lines().len(), 3);
}

#[test]
fn concurrent_senders_are_all_delivered_in_per_sender_order() {
    const SENDERS: [&str; 3] = ["ann", "ben", "cat"];
    const EACH: usize = 8;
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let bob = Hush::new("bob");
    bob.init(&relay.url());
    let senders: Vec<Hush> = SENDERS.iter().map(|u| Hush::new(u)).collect();
    for s in &senders {
        s.init(&relay.url());
    }
    std::thread::scope(|scope| {
        for s in &senders {
            scope.spawn(|| {
                for i in 0..EACH {
                    s.send("bob", &format!("{} {i}", s.user()));
                }
            });
        }
    });
    let out = bob.run(&["recv", "--json"]);
    out.assert_success();
    let msgs = received_messages(&out);
    assert_eq!(msgs.len(), SENDERS.len() * EACH, "{}", out.transcript());
    for user in SENDERS {
        let texts: Vec<&str> = msgs
            .iter()
            .filter(|m| str_field(m, "from") == user)
            .map(|m| str_field(m, "text"))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("{user} {i}")).collect();
        assert_eq!(texts, expected, "{user}'s messages, in order");
    }
}

#[test]
fn a_message_to_yourself_is_refused_or_delivered() {
    // `send` printing an id means "accepted for delivery": a message the
    // sender's own `recv` then never shows is lost without a word.
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    alice.init(&relay.url());
    let out = alice.run(&["send", "alice", "a note to self"]);
    if out.success() {
        let got = alice.recv();
        assert_eq!(
            got.stdout,
            "alice: a note to self\n",
            "`hush send alice` (to oneself) printed id {} and exited 0, but the message \
             never arrived",
            out.stdout.trim()
        );
    } else {
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("hush: "),
            "a refusal is one `hush: ` line\n{}",
            out.transcript()
        );
    }
}
