//! Relay URLs as a new user gets them wrong: no port, `wss://` against a
//! plain relay, and moving a profile to another relay with `hush settings
//! --relay URL`. Runs the real binary against in-process relays.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::process::Output;

use common::{hush, init, init_args, relay};

fn first_stderr_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn a_url_without_a_port_that_is_refused_names_port_80_and_the_default() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on 127.0.0.1:80 here (the test fails loudly if
    // something does: the connection would not be refused).
    let out = hush(
        &dir.path().join("carol"),
        &init_args("ws://127.0.0.1", "carol"),
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let line = first_stderr_line(&out);
    assert!(
        line.starts_with("hush: relay ws://127.0.0.1/v1/ws unreachable: "),
        "{line}"
    );
    assert!(
        line.ends_with(
            "connection refused; no port given, so port 80 was tried; the relay's default is \
             7070 (ws://127.0.0.1:7070)"
        ),
        "{line}"
    );
}

#[test]
fn wss_against_a_plain_relay_says_to_use_ws() {
    let relay = relay();
    let dir = tempfile::tempdir().unwrap();
    let hostport = relay.url.strip_prefix("ws://").unwrap();
    let wss = format!("wss://{hostport}");
    let out = hush(&dir.path().join("carol"), &init_args(&wss, "carol"));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let line = first_stderr_line(&out);
    assert!(
        line.starts_with(&format!(
            "hush: relay {wss}/v1/ws unreachable: the relay does not speak TLS here; use \
             ws://{hostport} ("
        )),
        "{line}"
    );
}

#[test]
fn settings_relay_moves_the_profile_and_the_new_relay_is_pinned_anew() {
    let (a, b, c) = (relay(), relay(), relay());
    let dir = tempfile::tempdir().unwrap();
    let alice = init(dir.path(), "alice", &a.url);

    // Not a relay URL: a usage error, nothing stored.
    let out = hush(&alice, &["settings", "--relay", "http://x:7070"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        first_stderr_line(&out).starts_with("hush: invalid relay URL \"http://x:7070\""),
        "{out:?}"
    );

    // To relay b: stored, and the next connection registers there and
    // pins b's id (a's pinned id would refuse b's challenge).
    let out = hush(&alice, &["settings", "--relay", &b.url, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["relay"], b.url.as_str());
    let out = hush(&alice, &["recv"]);
    assert!(out.status.success(), "recv on b: {out:?}");
    let out = hush(&alice, &["whoami"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("relay: {}", b.url)),
        "{out:?}"
    );

    // Back to a: b's pinned id is forgotten, a's is pinned again.
    let out = hush(&alice, &["settings", "--relay", &a.url]);
    assert!(out.status.success(), "{out:?}");
    let out = hush(&alice, &["recv"]);
    assert!(out.status.success(), "recv back on a: {out:?}");

    // Relay c already has an "alice" with another key: the connection
    // says so, with the documented exit code.
    let other = tempfile::tempdir().unwrap();
    init(other.path(), "alice", &c.url);
    let out = hush(&alice, &["settings", "--relay", &c.url]);
    assert!(out.status.success(), "{out:?}");
    let out = hush(&alice, &["recv"]);
    assert_eq!(out.status.code(), Some(10), "{out:?}");
    let first = first_stderr_line(&out);
    assert!(
        first.starts_with(
            "hush: the relay refused this profile: its user id is registered there to another key"
        ),
        "{first}"
    );
}
