//! Pinned identities: when a contact's identity key changes (the operator
//! freed the id and someone registered it with a new key), sending stops
//! with exit code 5 until the user runs `hush trust` with the new key's
//! safety number (or `hush reject`s it). Messages under the new key are
//! never shown as the contact's until then.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use hush_tests::{Hush, Relay, temp_dir};
use serde_json::Value;

fn key_changed(alice: &Hush, user: &str) -> bool {
    let out = alice.run(&["contacts", "--json"]);
    out.assert_success();
    out.json_lines()
        .iter()
        .find(|c| c.get("user").and_then(Value::as_str) == Some(user))
        .unwrap_or_else(|| panic!("{user} is not in the contacts\n{}", out.transcript()))
        .get("key_changed")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| panic!("no boolean key_changed\n{}", out.transcript()))
}

fn safety_number(alice: &Hush, user: &str) -> String {
    let out = alice.run(&["safety-number", user]);
    out.assert_success();
    out.stdout.trim().to_owned()
}

/// (pinned, pending) from `hush safety-number --json`.
fn safety_numbers(alice: &Hush, user: &str) -> (String, Option<String>) {
    let out = alice.run(&["safety-number", user, "--json"]);
    out.assert_success();
    let v = &out.json_lines()[0];
    let pinned = v["pinned"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", out.transcript()));
    (pinned.to_owned(), v["pending"].as_str().map(str::to_owned))
}

/// `hush trust USER --safety-number` with the pending key's number.
fn trust_pending(alice: &Hush, user: &str) {
    let (pinned, pending) = safety_numbers(alice, user);
    let pending = pending.unwrap_or_else(|| panic!("no pending key for {user}"));
    assert_ne!(pending, pinned);
    // Both numbers are shown, labelled, in text form too.
    let shown = alice.run(&["safety-number", user]);
    shown.assert_success();
    assert_eq!(
        shown.lines(),
        [
            format!("pinned key: {pinned}").as_str(),
            format!("new key:    {pending}").as_str()
        ],
        "{}",
        shown.transcript()
    );
    // Without a terminal, the number is required; the old one is refused.
    alice.run(&["trust", user]).assert_code(2);
    alice
        .run(&["trust", user, "--safety-number", &pinned])
        .assert_code(2);
    assert!(
        key_changed(alice, user),
        "nothing trusted by a wrong number"
    );
    alice
        .run(&["trust", user, "--safety-number", &pending])
        .assert_success();
}

#[test]
fn changed_identity_blocks_send_until_trust() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    alice.send("bob", "hello old bob");
    assert_eq!(
        bob.recv().stdout,
        "alice [message request]: hello old bob\n"
    );
    bob.send("alice", "hello alice");
    assert_eq!(alice.recv().stdout, "bob: hello alice\n");
    assert!(!key_changed(&alice, "bob"));
    let number_before = safety_number(&alice, "bob");

    // The operator frees "bob" on the stopped relay; a new key claims it.
    relay.kill();
    let reset = relay.admin(&["reset-user", "bob"]);
    reset.assert_success();
    relay.restart();
    let new_bob = Hush::new("bob");
    new_bob.init(&relay.url());

    for attempt in 1..=2 {
        let out = alice.run(&["send", "bob", "must not be sent"]);
        out.assert_code(5);
        assert_eq!(
            out.stdout,
            "",
            "no message id: nothing was sent\n{}",
            out.transcript()
        );
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("hush: ") && lines[0].contains("hush trust"),
            "attempt {attempt}: stderr should be one line naming `hush trust`\n{}",
            out.transcript()
        );
        assert!(
            key_changed(&alice, "bob"),
            "contacts should flag the change"
        );
    }

    trust_pending(&alice, "bob");
    assert!(!key_changed(&alice, "bob"));
    assert_ne!(
        safety_number(&alice, "bob"),
        number_before,
        "the safety number covers the new key"
    );

    alice.send("bob", "hello new bob");
    let out = new_bob.recv();
    assert_eq!(
        out.lines(),
        ["alice [message request]: hello new bob"],
        "the new bob gets the trusted message and nothing that was blocked\n{}",
        out.transcript()
    );
}

#[test]
fn message_from_a_changed_identity_is_flagged_and_sending_stays_blocked() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    alice.send("bob", "hi");
    bob.recv();
    bob.send("alice", "hey");
    assert_eq!(alice.recv().stdout, "bob: hey\n");

    relay.kill();
    relay.admin(&["reset-user", "bob"]).assert_success();
    relay.restart();
    let new_bob = Hush::new("bob");
    new_bob.init(&relay.url());
    // The new key writes first.
    new_bob.send("alice", "I am the new bob");

    let out = alice.run(&["recv", "--json"]);
    out.assert_success();
    let events = out.json_lines();
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e.get("type").and_then(Value::as_str))
        .collect();
    assert!(
        kinds.contains(&"identity_changed"),
        "alice is told bob's key changed\n{}",
        out.transcript()
    );
    assert!(
        !kinds.contains(&"message"),
        "a message under the new key is not shown as bob's\n{}",
        out.transcript()
    );
    let msg = events
        .iter()
        .find(|e| e.get("type").and_then(Value::as_str) == Some("unconfirmed_message"))
        .unwrap_or_else(|| panic!("the message is reported\n{}", out.transcript()));
    assert_eq!(
        msg.get("text").and_then(Value::as_str),
        Some("I am the new bob")
    );
    assert_eq!(msg.get("claimed_from").and_then(Value::as_str), Some("bob"));
    assert_eq!(msg.get("rejected").and_then(Value::as_bool), Some(false));
    assert!(key_changed(&alice, "bob"));
    let history = alice.run(&["history", "bob"]);
    history.assert_success();
    let last = history.lines().last().copied().unwrap_or_default();
    assert!(
        last.contains("UNCONFIRMED key claiming to be bob") && !last.contains(" bob: "),
        "{}",
        history.transcript()
    );

    // Receiving from the new key is not trusting it.
    alice.run(&["send", "bob", "not yet"]).assert_code(5);
    trust_pending(&alice, "bob");
    alice.send("bob", "now trusted");
    assert_eq!(new_bob.recv().lines(), ["alice: now trusted"]);
    // The message from before the trust stays marked as such.
    let history = alice.run(&["history", "bob", "--json"]);
    let entry = history
        .json_lines()
        .into_iter()
        .find(|e| e["text"] == "I am the new bob")
        .unwrap_or_else(|| panic!("{}", history.transcript()));
    assert_eq!(entry["unconfirmed_key"], "trusted_later");
}

/// `hush reject` keeps the pinned key: the impostor's message stays marked
/// as from a rejected key, the safety number stays the old one, and the
/// rejected key raises no new warning.
#[test]
fn rejecting_a_changed_key_keeps_the_pinned_one_and_marks_its_messages() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    alice.send("bob", "hi");
    bob.recv();
    let number_before = safety_number(&alice, "bob");

    relay.kill();
    relay.admin(&["reset-user", "bob"]).assert_success();
    relay.restart();
    let new_bob = Hush::new("bob");
    new_bob.init(&relay.url());
    new_bob.send("alice", "trust me");
    let out = alice.recv();
    assert!(
        out.lines()
            .iter()
            .any(|l| l.starts_with("! from an UNCONFIRMED key claiming to be bob")),
        "{}",
        out.transcript()
    );
    assert!(
        !out.lines().iter().any(|l| l.starts_with("bob")),
        "{}",
        out.transcript()
    );

    alice.run(&["reject", "bob"]).assert_success();
    assert!(!key_changed(&alice, "bob"));
    assert_eq!(
        safety_number(&alice, "bob"),
        number_before,
        "the old key stays"
    );
    let history = alice.run(&["history", "bob", "--json"]);
    let entry = history
        .json_lines()
        .into_iter()
        .find(|e| e["text"] == "trust me")
        .unwrap_or_else(|| panic!("{}", history.transcript()));
    assert_eq!(entry["unconfirmed_key"], "rejected");
    // More from the rejected key in the same session: its session was
    // dropped, so it is undecryptable, never a message, and raises no new
    // key-change warning.
    new_bob.send("alice", "really, trust me");
    let out = alice.run(&["recv", "--json"]);
    out.assert_success();
    let kinds: Vec<String> = out
        .json_lines()
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(kinds, ["undecryptable"], "{}", out.transcript());
    assert!(!key_changed(&alice, "bob"));
}
