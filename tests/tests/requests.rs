//! Message requests and blocking, as a user meets them: a stranger's first
//! message is marked as a request (in `recv`, `recv --json` and
//! `contacts`) until the user replies or accepts; `hush block` drops
//! everything from a user unread; `hush unblock` undoes it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use hush_tests::{Hush, Relay, temp_dir};
use serde_json::Value;

fn contact(h: &Hush, user: &str) -> serde_json::Map<String, Value> {
    let out = h.run(&["contacts", "--json"]);
    out.assert_success();
    out.json_lines()
        .into_iter()
        .find(|c| c.get("user").and_then(Value::as_str) == Some(user))
        .unwrap_or_else(|| panic!("{user} is not in the contacts\n{}", out.transcript()))
}

#[test]
fn a_strangers_first_message_is_a_request_until_accepted() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let (bob, carol) = (Hush::new("bob"), Hush::new("carol"));
    bob.init(&relay.url());
    carol.init(&relay.url());
    carol.send("bob", "hi, we have not met");
    let out = bob.run(&["recv", "--json"]);
    out.assert_success();
    let m = &out.json_lines()[0];
    assert_eq!(m["type"], "message");
    assert_eq!(m["request"], true, "{}", out.transcript());
    assert_eq!(contact(&bob, "carol")["request"], true);
    let listed = bob.run(&["contacts"]);
    assert!(
        listed.stdout.contains("carol") && listed.stdout.contains("message request"),
        "{}",
        listed.transcript()
    );

    bob.run(&["accept", "carol"]).assert_success();
    assert_eq!(contact(&bob, "carol")["request"], false);
    carol.send("bob", "thanks");
    assert_eq!(bob.recv().lines(), ["carol: thanks"]);
}

#[test]
fn replying_to_a_request_accepts_it() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let (bob, carol) = (Hush::new("bob"), Hush::new("carol"));
    bob.init(&relay.url());
    carol.init(&relay.url());
    carol.send("bob", "hello");
    assert_eq!(bob.recv().lines(), ["carol [message request]: hello"]);
    bob.send("carol", "hello yourself");
    assert_eq!(contact(&bob, "carol")["request"], false);
    carol.send("bob", "good");
    assert_eq!(bob.recv().lines(), ["carol: good"]);
}

#[test]
fn a_blocked_user_is_dropped_unread_until_unblocked() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let (bob, carol) = (Hush::new("bob"), Hush::new("carol"));
    bob.init(&relay.url());
    carol.init(&relay.url());
    carol.send("bob", "first");
    bob.recv();
    bob.run(&["block", "carol"]).assert_success();
    assert_eq!(contact(&bob, "carol")["blocked"], true);
    // Carol's send is accepted by the relay (it cannot tell); Bob drops it.
    carol.send("bob", "let me in");
    let out = bob.recv();
    assert_eq!(out.stdout, "", "{}", out.transcript());
    // Nothing goes to a blocked user either.
    let refused = bob.run(&["send", "carol", "hi"]);
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("blocked"),
        "{}",
        refused.transcript()
    );
    let history = bob.run(&["history", "carol", "--json"]);
    assert_eq!(history.json_lines().len(), 1, "{}", history.transcript());

    bob.run(&["unblock", "carol"]).assert_success();
    bob.send("carol", "sorry");
    carol.recv();
    carol.send("bob", "welcome back");
    assert_eq!(bob.recv().lines(), ["carol: welcome back"]);
}
