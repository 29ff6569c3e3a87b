//! `hush daemon` with a real relay and real `hush` processes: commands run
//! beside it (through its socket) with the output they have without it;
//! many `hush send` processes at once deliver each message once and in
//! order; a daemon killed mid-traffic loses nothing the relay accepted; the
//! socket is the owner's only, a second daemon is refused, and malformed
//! requests get the documented JSON-RPC errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use hush_tests::{Hush, Relay, Spawned, alice_and_bob, temp_dir};
use serde_json::{Value, json};
use tempfile::TempDir;

/// How long a daemon may take to say it listens.
const READY: Duration = Duration::from_secs(30);

/// Starts `hush daemon` for `user` and waits for `listening on PATH`.
fn start_daemon(user: &Hush) -> (Spawned, PathBuf) {
    start_daemon_with(user, &[])
}

/// [`start_daemon`] with more arguments (`--socket PATH`).
fn start_daemon_with(user: &Hush, args: &[&str]) -> (Spawned, PathBuf) {
    let mut daemon = user
        .cmd(&[&["daemon"], args].concat())
        .timeout(Duration::from_secs(60))
        .spawn();
    let Some(line) = daemon.next_line(READY) else {
        panic!(
            "the daemon ended before listening:\n{}",
            daemon.kill().transcript()
        );
    };
    let path = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (daemon, PathBuf::from(path))
}

/// A relay (and its data directory) with two users who have exchanged a
/// message, so that each is the other's contact.
fn pair() -> (TempDir, Relay, Hush, Hush) {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let (alice, bob) = alice_and_bob(&relay.url());
    alice.send("bob", "first");
    bob.recv();
    (data, relay, alice, bob)
}

/// Waits until `user`'s history with bob holds `text` (the daemon stored
/// it). Nothing signals that to another process, so this asks, briefly
/// apart, for at most 30 s.
fn stored(user: &Hush, text: &str) {
    for _ in 0..300 {
        let out = user.run(&["history", "bob", "--json"]);
        if out.json_lines().iter().any(|m| m["text"] == text) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{text:?} never reached the history");
}

/// The texts of the `message` events of a `recv --json` run, in order.
fn texts(out: &hush_tests::Output) -> Vec<String> {
    out.json_lines()
        .into_iter()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("message"))
        .map(|l| l["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn commands_run_beside_the_daemon_with_the_same_output() {
    let (_data, _relay, alice, bob) = pair();
    let (daemon, socket) = start_daemon(&alice);
    assert_eq!(socket, alice.home().join("daemon.sock"));

    // A `recv` without --wait drains what is pending and ends by itself:
    // here, what the daemon received while nobody was receiving.
    bob.send("alice", "pending");
    stored(&alice, "pending");
    let drained = alice.run(&["recv"]);
    drained.assert_success();
    assert_eq!(drained.stdout, "bob: pending\n");

    // `recv --wait` and `send` at the same time as the daemon.
    let mut recv = alice
        .cmd(&["recv", "--wait", "60", "--json"])
        .timeout(Duration::from_secs(90))
        .spawn();
    alice.send("bob", "through the daemon");
    assert_eq!(
        texts(&bob.cmd(&["recv", "--json"]).run()),
        ["through the daemon"]
    );
    bob.send("alice", "answer");
    let got = recv.next_json_of_type("message", Duration::from_secs(30));
    assert_eq!(got["text"], "answer");
    assert_eq!(got["from"], "bob");
    recv.kill();

    // Presence through the daemon: the state of a user asked for comes
    // first, and the allow list is the profile's.
    let watched = alice.run(&["recv", "--presence", "bob", "--json"]);
    watched.assert_success();
    assert_eq!(
        watched.stdout,
        "{\"last_seen\":null,\"online\":null,\"type\":\"presence\",\"user\":\"bob\",\"visible\":false}\n"
    );
    let allowed = alice.run(&["presence", "allow", "bob"]);
    assert_eq!(allowed.stdout, "your presence is visible to: bob\n");

    let commands: [&[&str]; 9] = [
        &["history", "bob"],
        &["history", "bob", "--json", "--limit", "2"],
        &["contacts", "--json"],
        &["contacts"],
        &["safety-number", "bob", "--json"],
        &["presence"],
        &["presence", "bob"],
        &["history", "nobody"],
        &["trust", "bob", "--safety-number", "1"],
    ];
    let through: Vec<_> = commands.iter().map(|c| alice.run(c)).collect();
    let stopped = daemon.terminate();
    assert_eq!(stopped.code, Some(0), "{}", stopped.transcript());
    assert!(!socket.exists(), "the socket is removed on SIGTERM");
    for (args, via_daemon) in commands.iter().zip(&through) {
        let direct = alice.run(args);
        assert_eq!(
            (via_daemon.code, &via_daemon.stdout, &via_daemon.stderr),
            (direct.code, &direct.stdout, &direct.stderr),
            "`hush {}` differs through the daemon",
            args.join(" ")
        );
    }
    assert_eq!(through[7].code, Some(4), "unknown contact is exit 4");
    assert_eq!(through[8].stdout, "no changed key pending for bob\n");
    assert!(through[0].stdout.contains("bob: answer"));
}

/// Sends `per_lane` messages from each of `lanes` threads, one `hush send`
/// process after another within a lane; reports each success as (lane,
/// seq) on `done`.
fn send_lanes(
    alice: &Hush,
    lanes: usize,
    per_lane: usize,
    done: &mpsc::Sender<(usize, usize)>,
) -> Vec<(usize, usize, bool)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..lanes)
            .map(|lane| {
                let done = done.clone();
                s.spawn(move || {
                    (0..per_lane)
                        .map(|seq| {
                            let out =
                                alice.run(&["send", "bob", &format!("lane {lane} seq {seq}")]);
                            if out.success() {
                                let _ = done.send((lane, seq));
                            }
                            (lane, seq, out.success())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Checks bob's received texts: each sent one exactly once, at most once
/// for the others, and in order within a lane.
fn check_delivery(received: &[String], sent: &[(usize, usize, bool)]) {
    let mut seen = HashSet::new();
    let mut last: HashMap<usize, usize> = HashMap::new();
    for text in received {
        assert!(seen.insert(text.clone()), "{text:?} delivered twice");
        let mut words = text.split(' ');
        let (Some("lane"), Some(lane), Some("seq"), Some(seq)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (lane, seq): (usize, usize) = (lane.parse().unwrap(), seq.parse().unwrap());
        if let Some(prev) = last.insert(lane, seq) {
            assert!(prev < seq, "lane {lane}: seq {seq} after {prev}");
        }
    }
    for (lane, seq, ok) in sent {
        if *ok {
            assert!(
                seen.contains(&format!("lane {lane} seq {seq}")),
                "accepted lane {lane} seq {seq} was never delivered"
            );
        }
    }
}

#[test]
fn two_hundred_send_processes_through_one_daemon_deliver_once_in_order() {
    let (_data, _relay, alice, bob) = pair();
    let (daemon, _) = start_daemon(&alice);
    let (done, _rx) = mpsc::channel();
    // 40 concurrent lanes of 5 processes: 200 `hush send` processes.
    let sent = send_lanes(&alice, 40, 5, &done);
    let failed: Vec<_> = sent.iter().filter(|s| !s.2).collect();
    assert!(failed.is_empty(), "sends failed: {failed:?}");
    let received = texts(&bob.cmd(&["recv", "--json"]).run());
    assert_eq!(received.len(), 200);
    check_delivery(&received, &sent);
    daemon.terminate();
}

#[test]
fn daemon_killed_mid_traffic_loses_nothing_accepted() {
    let (_data, _relay, alice, bob) = pair();
    let (daemon, socket) = start_daemon(&alice);
    let (done, successes) = mpsc::channel();
    let sent = std::thread::scope(|s| {
        let lanes = s.spawn(|| send_lanes(&alice, 8, 12, &done));
        // SIGKILL once 30 sends were accepted, while the lanes go on.
        for _ in 0..30 {
            successes
                .recv_timeout(Duration::from_secs(60))
                .expect("sends through the daemon succeed");
        }
        daemon.kill();
        lanes.join().unwrap_or_default()
    });
    assert!(socket.exists(), "SIGKILL leaves a stale socket");
    // The stale socket is replaced by a new daemon, which serves again.
    let (daemon, _) = start_daemon(&alice);
    alice.send("bob", "after restart");
    daemon.terminate();
    let mut received = texts(&bob.cmd(&["recv", "--json"]).run());
    assert_eq!(received.pop().as_deref(), Some("after restart"));
    check_delivery(&received, &sent);
    assert!(sent.iter().filter(|s| s.2).count() >= 30);
}

/// Exit 1 with `text` in the error line.
#[track_caller]
fn fails_with(out: &hush_tests::Output, text: &str) {
    assert!(
        out.code == Some(1) && out.stderr.contains(text),
        "{}",
        out.transcript()
    );
}

/// One request line on `stream`, and the response line.
fn ask(stream: &mut UnixStream, reader: &mut BufReader<UnixStream>, line: &str) -> Value {
    stream.write_all(line.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
}

fn connect(socket: &Path) -> (UnixStream, BufReader<UnixStream>) {
    let stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn error_of(v: &Value) -> (i64, &str) {
    (
        v["error"]["code"].as_i64().unwrap_or(0),
        v["error"]["data"]["kind"].as_str().unwrap_or(""),
    )
}

#[test]
fn socket_is_private_a_second_daemon_is_refused_and_bad_requests_get_typed_errors() {
    let (_data, _relay, alice, _bob) = pair();
    let (daemon, socket) = start_daemon(&alice);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    fails_with(&alice.run(&["daemon"]), "already running");
    // A command that does not go through the daemon names it.
    fails_with(&alice.run(&["whoami"]), "held by `hush daemon` (pid ");

    let (mut stream, mut reader) = connect(&socket);
    let cases = [
        ("{not json", -32700, "parse_error"),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"contacts"}]"#,
            -32600,
            "invalid_request",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#,
            -32601,
            "method_not_found",
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"history","params":{"peer":5}}"#,
            -32602,
            "invalid_params",
        ),
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"history","params":{"peer":"nobody"}}"#,
            -32004,
            "unknown_user",
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"send","params":{"to":"bob","text":"  "}}"#,
            -32002,
            "usage",
        ),
    ];
    for (line, code, kind) in cases {
        let answer = ask(&mut stream, &mut reader, line);
        assert_eq!(error_of(&answer), (code, kind), "{line} -> {answer}");
    }
    let ok = ask(
        &mut stream,
        &mut reader,
        &json!({"jsonrpc":"2.0","id":"c","method":"contacts"}).to_string(),
    );
    assert_eq!(ok["id"], "c");
    assert_eq!(ok["result"]["contacts"][0]["user"], "bob");

    // A line over the limit is refused and ends the connection.
    let long = format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"send","params":{{"to":"bob","text":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    // The daemon may close before reading all of it: a failed write is
    // fine, the answer is already on its way.
    let _ = stream.write_all(long.as_bytes());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let answer: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(error_of(&answer), (-32600, "line_too_long"));
    let mut rest = String::new();
    assert_eq!(reader.read_line(&mut rest).unwrap_or(0), 0, "closed after");

    // The daemon still serves others.
    let (mut stream, mut reader) = connect(&socket);
    let ok = ask(
        &mut stream,
        &mut reader,
        r#"{"jsonrpc":"2.0","id":6,"method":"safety_number","params":{"peer":"bob"}}"#,
    );
    assert_eq!(ok["result"]["user"], "bob");
    let stopped = daemon.terminate();
    assert_eq!(stopped.code, Some(0), "{}", stopped.transcript());

    // Elsewhere with --socket: commands find it through the note beside
    // the profile, and both go when it stops.
    let elsewhere = temp_dir("hush-socket-");
    let path = elsewhere.path().join("d.sock");
    let (daemon, socket) = start_daemon_with(&alice, &["--socket", &path.to_string_lossy()]);
    assert_eq!(socket, path);
    let contacts = alice.cmd(&["contacts"]).env_remove("HUSH_PASSPHRASE").run();
    assert_eq!(
        contacts.stdout,
        "bob  unverified\n",
        "{}",
        contacts.transcript()
    );
    daemon.terminate();
    assert!(!path.exists() && !alice.home().join("daemon-socket").exists());
}
