//! Pinned identities: when a contact's identity key changes (the operator
//! freed the id and someone registered it with a new key), sending stops
//! with exit code 5 until the user runs `hush trust`.

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

#[test]
fn changed_identity_blocks_send_until_trust() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    alice.send("bob", "hello old bob");
    assert_eq!(bob.recv().stdout, "alice: hello old bob\n");
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

    let trust = alice.run(&["trust", "bob"]);
    trust.assert_success();
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
        ["alice: hello new bob"],
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
    let msg = events
        .iter()
        .find(|e| e.get("type").and_then(Value::as_str) == Some("message"))
        .unwrap_or_else(|| panic!("the message is shown\n{}", out.transcript()));
    assert_eq!(
        msg.get("text").and_then(Value::as_str),
        Some("I am the new bob")
    );
    assert_eq!(msg.get("key_changed").and_then(Value::as_bool), Some(true));
    assert_eq!(msg.get("verified").and_then(Value::as_bool), Some(false));
    assert!(key_changed(&alice, "bob"));

    // Receiving from the new key is not trusting it.
    alice.run(&["send", "bob", "not yet"]).assert_code(5);
    alice.run(&["trust", "bob"]).assert_success();
    alice.send("bob", "now trusted");
    assert_eq!(new_bob.recv().lines(), ["alice: now trusted"]);
}
