//! Durability across relay crashes: what the relay accepted (a `hush send`
//! that printed an id) is delivered after SIGKILLs and restarts, exactly
//! once and in order.

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
