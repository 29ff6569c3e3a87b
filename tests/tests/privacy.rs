//! The relay only ever sees ciphertext: a random marker sent in messages
//! both ways shows up at the other endpoint, and nowhere the relay could
//! read it: not in the bytes on its sockets (either direction, raw and with
//! the WebSocket masking removed), not in its data directory, not in its
//! debug logs. Client profiles on disk are sealed too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::Path;

use hush_tests::leak::files_under;
use hush_tests::websocket::{decode_stream, find};
use hush_tests::{Hush, Marker, RecordingProxy, Relay, RelayOptions, temp_dir};
use serde_json::Value;

/// Fails the test if `marker` is in `data`, naming `what`.
#[track_caller]
fn assert_absent(marker: &Marker, what: &str, data: &[u8]) {
    if let Some(hit) = marker.find_in(data) {
        let from = hit.offset.saturating_sub(80);
        let to = (hit.offset + 120).min(data.len());
        panic!(
            "the plaintext marker ({}) is in {what} at byte {}: …{}…",
            hit.encoding,
            hit.offset,
            String::from_utf8_lossy(&data[from..to])
        );
    }
}

/// The text of the single message a `recv --json` printed.
fn only_message_text(out: &hush_tests::Output) -> String {
    out.assert_success();
    let texts: Vec<String> = out
        .json_lines()
        .iter()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("message"))
        .filter_map(|l| l.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect();
    assert_eq!(texts.len(), 1, "{}", out.transcript());
    texts.into_iter().next().unwrap_or_default()
}

#[test]
fn relay_never_sees_plaintext() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start_with(data.path(), RelayOptions::new().env("RUST_LOG", "debug"));
    let proxy = RecordingProxy::start(relay.addr());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&proxy.url());
    bob.init(&proxy.url());

    let marker = Marker::random();
    let to_bob = format!("the secret is {} - keep it", marker.text());
    let to_alice = format!("got it: {}", marker.text());
    alice.send("bob", &to_bob);
    assert_eq!(only_message_text(&bob.run(&["recv", "--json"])), to_bob);
    bob.send("alice", &to_alice);
    assert_eq!(only_message_text(&alice.run(&["recv", "--json"])), to_alice);
    // Bob collects the receipt for his reply: every client has now both
    // sent and received through the proxy.
    bob.run(&["recv"]).assert_success();

    // Stop the relay so its logs are complete, then look everywhere.
    relay.kill();
    let recordings = proxy.recordings();
    assert!(
        recordings.len() >= 7,
        "expected every CLI run to go through the proxy, saw {} connections",
        recordings.len()
    );
    let (mut saw_send, mut saw_envelope) = (false, false);
    for (i, r) in recordings.iter().enumerate() {
        assert_absent(
            &marker,
            &format!("connection {i}, client to relay (raw)"),
            &r.to_relay,
        );
        assert_absent(
            &marker,
            &format!("connection {i}, relay to client (raw)"),
            &r.from_relay,
        );
        let up = decode_stream(&r.to_relay);
        let down = decode_stream(&r.from_relay);
        assert!(
            !up.compressed && !down.compressed,
            "connection {i} uses a compression extension; the payload check below would be blind"
        );
        assert_absent(
            &marker,
            &format!("connection {i}, client frames (unmasked)"),
            &up.payloads,
        );
        assert_absent(
            &marker,
            &format!("connection {i}, relay frames"),
            &down.payloads,
        );
        saw_send |= find(&up.payloads, br#""type":"send""#).is_some();
        saw_envelope |= find(&down.payloads, br#""type":"envelope""#).is_some();
    }
    // The checks above read the real frames, not noise.
    assert!(
        saw_send,
        "no `send` frame found in the unmasked client traffic"
    );
    assert!(
        saw_envelope,
        "no `envelope` frame found in the relay traffic"
    );

    let files = files_under(relay.data_dir());
    assert!(
        files.iter().any(|(_, bytes)| !bytes.is_empty()),
        "the relay's data dir holds no data at all"
    );
    for (path, bytes) in &files {
        assert_absent(
            &marker,
            &format!("relay data file {}", path.display()),
            bytes,
        );
    }

    let stderr = relay.stderr();
    assert!(
        stderr.contains("DEBUG"),
        "the relay did not log at debug level:\n{stderr}"
    );
    for path in relay.log_files() {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert_absent(&marker, &format!("relay log {}", path.display()), &bytes);
    }
}

#[test]
fn profiles_keep_history_sealed_at_rest() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    let marker = Marker::random();
    let text = format!("kept in history: {}", marker.text());
    alice.send("bob", &text);
    assert_eq!(only_message_text(&bob.run(&["recv", "--json"])), text);

    for user in [&alice, &bob] {
        let peer = if user.user() == "alice" {
            "bob"
        } else {
            "alice"
        };
        let out = user.run(&["history", peer]);
        out.assert_success();
        assert!(out.stdout.contains(marker.text()), "{}", out.transcript());
        check_home(&marker, user.home());
    }
}

fn check_home(marker: &Marker, home: &Path) {
    let files = files_under(home);
    assert!(!files.is_empty(), "no profile files in {}", home.display());
    for (path, bytes) in &files {
        assert_absent(marker, &format!("profile file {}", path.display()), bytes);
    }
}

#[test]
fn relay_learns_message_lengths_only_to_the_padding_block() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    // Every message from alice is a prekey message until bob answers, so
    // the headers are alike and only the padded text differs.
    let proxy = RecordingProxy::start(relay.addr());
    let texts = [
        "a",
        "bb",
        "a bit longer text",
        "twenty-four bytes long!!",
        &"x".repeat(200),
    ];
    for t in texts {
        let out = alice.run(&["--relay", &proxy.url(), "send", "bob", t]);
        out.assert_success();
    }
    let mut body_lens = Vec::new();
    for r in proxy.recordings() {
        let frames = decode_stream(&r.to_relay).messages;
        let sends: Vec<usize> = frames
            .iter()
            .filter_map(|m| serde_json::from_slice::<Value>(m).ok())
            .filter(|v| v.get("type").and_then(Value::as_str) == Some("send"))
            .filter_map(|v| v.get("body").and_then(Value::as_str).map(str::len))
            .collect();
        assert_eq!(sends.len(), 1, "one send frame per `hush send`: {sends:?}");
        body_lens.push(sends[0]);
    }
    assert_eq!(body_lens.len(), texts.len());
    let short = &body_lens[..4];
    assert!(
        short.iter().all(|l| *l == short[0]),
        "texts of 1 to 24 bytes must look alike on the wire, body sizes (base64): {body_lens:?}"
    );
    assert!(
        body_lens[4] > short[0],
        "a 200-byte text needs more blocks: {body_lens:?}"
    );
    // Still delivered, each exactly.
    let out = bob.run(&["recv", "--json"]);
    out.assert_success();
    let got: Vec<String> = out
        .json_lines()
        .iter()
        .filter_map(|l| l.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect();
    assert_eq!(got, texts);
}
