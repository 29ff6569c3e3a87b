//! The relay binary as an operator runs it: its first stdout line, its
//! health endpoint, its logs, its shutdown on SIGTERM, and the admin
//! command that frees a user id.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::time::Duration;

use hush_tests::{Hush, Relay, RelayOptions, http_get, temp_dir};

#[test]
fn relay_prints_its_address_first_and_answers_healthz() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let first = relay.stdout().lines().next().unwrap_or_default().to_owned();
    assert_eq!(first, format!("listening on {}", relay.addr()));
    assert_ne!(relay.addr().port(), 0, "port 0 resolves to a real port");
    assert_eq!(http_get(relay.addr(), "/healthz").0, 200);
    relay.restart();
    assert_eq!(http_get(relay.addr(), "/healthz").0, 200);
}

#[test]
fn relay_stops_cleanly_on_sigterm_and_keeps_its_data() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    alice.send("bob", "before the shutdown");
    assert_eq!(relay.terminate(Duration::from_secs(10)), Some(0));
    relay.restart();
    assert_eq!(
        bob.recv().lines(),
        ["alice [message request]: before the shutdown"]
    );
}

#[test]
fn reset_user_refuses_a_running_relay() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());

    let out = relay.admin(&["reset-user", "bob"]);
    assert!(
        !out.success() && out.stderr.contains("in use"),
        "reset-user must refuse a database a relay has open\n{}",
        out.transcript()
    );
    // Nothing was deleted: bob is still bob.
    alice.send("bob", "still there");
    assert_eq!(bob.recv().lines(), ["alice [message request]: still there"]);

    relay.kill();
    let out = relay.admin(&["reset-user", "nobody"]);
    out.assert_success();
    assert!(out.stdout.contains("nothing to do"), "{}", out.transcript());
}

#[test]
fn relay_logs_are_plain_text_when_not_a_terminal() {
    // Log files and journald get the text, not terminal colour codes.
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start_with(data.path(), RelayOptions::new().env("NO_COLOR", ""));
    Hush::new("alice").init(&relay.url());
    relay.kill();
    let logs = relay.stderr();
    assert!(
        logs.contains("alice"),
        "the relay logged the registration:\n{logs}"
    );
    assert!(
        !logs.contains('\u{1b}'),
        "relay logs written to a file contain ANSI escape codes:\n{logs:?}"
    );
}
