//! Rough edges a new user met (issue #15): every one is checked on the real
//! binaries, by its exit code and the first line of stderr.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::time::Duration;

use hush_tests::bins::HUSH_RELAY;
use hush_tests::{Cmd, Hush, Output, Relay, bin, temp_dir};

/// How long a line we wait for may take.
const LINE: Duration = Duration::from_secs(20);

/// The first line of stderr.
fn first_err(out: &Output) -> &str {
    out.stderr.lines().next().unwrap_or("")
}

/// Fails unless `out` exited with `code` and its stderr is exactly one
/// line that starts with `start` (after `hush: `) and contains `contains`.
#[track_caller]
fn assert_one_line(out: &Output, code: i32, start: &str, contains: &[&str]) {
    out.assert_code(code);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one stderr line\n{}", out.transcript());
    let line = first_err(out);
    assert!(
        line.starts_with(&format!("hush: {start}")),
        "stderr should start with `hush: {start}`\n{}",
        out.transcript()
    );
    for part in contains {
        assert!(
            line.contains(part),
            "{part:?} missing\n{}",
            out.transcript()
        );
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.transcript());
}

/// A relay (durable store, so it can be restarted) with alice and bob.
fn alice_and_bob() -> (tempfile::TempDir, Relay, Hush, Hush) {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    alice.init(&relay.url());
    let bob = Hush::new("bob");
    bob.init(&relay.url());
    (data, relay, alice, bob)
}

/// Item 1: `--wait` takes any number without panicking (huge ones are
/// capped), `forever` keeps listening, and negative, NaN or infinite
/// values are usage errors.
#[test]
fn recv_wait_is_bounded_and_forever_listens() {
    let (_data, _relay, alice, bob) = alice_and_bob();

    for bad in ["-1", "NaN", "inf", "-inf", "soon"] {
        let out = bob.run(&["recv", "--wait", bad]);
        assert_one_line(&out, 2, "invalid value", &["--wait", "forever"]);
    }
    let out = bob.run(&["recv", "--wait", "-1"]);
    assert_one_line(&out, 2, "invalid value '-1'", &["negative"]);

    // A wait too long to compute a deadline from: it listens (the presence
    // snapshot arrives once connected) instead of panicking.
    for wait in ["1e19", "forever"] {
        let mut listener = bob
            .cmd(&["recv", "--json", "--wait", wait, "--presence", "alice"])
            .spawn();
        listener.next_json_of_type("presence", LINE);
        alice.send("bob", &format!("while waiting {wait}"));
        let m = listener.next_json_of_type("message", LINE);
        assert_eq!(
            m.get("text").and_then(|t| t.as_str()),
            Some(format!("while waiting {wait}").as_str())
        );
        let out = listener.kill();
        assert!(out.code.is_none(), "still running\n{}", out.transcript());
        assert!(out.stderr.is_empty(), "{}", out.transcript());
    }

    // bench's --stall-timeout is checked the same way (before anything
    // connects).
    let out = bob.run(&["bench", "--stall-timeout", "-3"]);
    assert_one_line(&out, 2, "invalid value '-3'", &["--stall-timeout"]);
}

/// Item 2: the 32 KiB limit and empty or whitespace-only text are usage
/// errors, refused before connecting (here: with the relay down).
#[test]
fn send_refuses_oversized_and_blank_text_before_connecting() {
    let (_data, mut relay, alice, _bob) = alice_and_bob();
    relay.kill();
    let big = "a".repeat(32 * 1024 + 1);
    let out = alice.run(&["send", "bob", &big]);
    assert_one_line(&out, 2, "the message is 32769 bytes", &["32768", "split"]);
    let out = alice
        .cmd(&["send", "bob", "-"])
        .stdin(format!("{}\n", "é".repeat(20_000)))
        .run();
    assert_one_line(&out, 2, "the message is 40000 bytes", &["32768"]);
    let out = alice.run(&["send", "bob", ""]);
    assert_one_line(&out, 2, "the message is empty", &[]);
    let out = alice.run(&["send", "bob", " \t\n "]);
    assert_one_line(&out, 2, "the message is only whitespace", &[]);
    let out = alice.cmd(&["send", "bob", "-"]).stdin("   \n").run();
    assert_one_line(&out, 2, "the message is only whitespace", &[]);
    // Exactly at the limit it is a message: it gets as far as connecting.
    let out = alice.run(&["send", "bob", &"a".repeat(32 * 1024)]);
    assert_one_line(&out, 3, "", &[]);

    let help = alice.run(&["send", "--help"]);
    help.assert_success();
    assert!(help.stdout.contains("32 KiB"), "{}", help.transcript());
}

/// Item 4: unknown contacts, an id freed by the operator, a busy profile:
/// each failure says what to do next.
#[test]
fn failures_say_what_to_do_next() {
    let (_data, mut relay, alice, bob) = alice_and_bob();
    for cmd in ["history", "verify", "safety-number"] {
        let out = alice.run(&[cmd, "zed"]);
        assert_one_line(
            &out,
            4,
            "no contact named zed: exchange a message first",
            &[],
        );
    }

    // The profile is in use: the message names the process holding it.
    let mut listener = alice
        .cmd(&["recv", "--json", "--wait", "forever", "--presence", "bob"])
        .spawn();
    listener.next_json_of_type("presence", LINE);
    let out = alice.run(&["whoami"]);
    assert_one_line(
        &out,
        1,
        "the profile is in use by another hush process (`hush recv`, pid ",
        &["close `hush recv` (pid ", "or wait for it"],
    );
    listener.kill();
    alice.run(&["whoami"]).assert_success();

    // The operator frees alice's id and a new profile takes it: the old
    // profile is told what happened and what to do.
    relay.kill();
    relay.admin(&["reset-user", "alice"]).assert_success();
    relay.restart();
    let new_alice = Hush::new("alice");
    new_alice.init(&relay.url());
    let out = alice.run(&["send", "bob", "hi"]);
    assert_one_line(
        &out,
        10,
        "the relay refused this profile: its user id is registered there to another key",
        &["operator", "freed", "new profile with another user id"],
    );
    // And `init` with a taken id says to choose another.
    let third = Hush::new("alice");
    let out = third.try_init(&relay.url());
    assert_one_line(
        &out,
        10,
        "the user id alice is already registered on this relay",
        &["choose another user id"],
    );
    drop(bob);
}

/// Item 5: a bad user id states the rule and suggests the lowercase form.
#[test]
fn bad_user_ids_state_the_rule() {
    let home = Hush::new("alice");
    let rule = "1-32 of a-z 0-9 . _ -, starting with a letter or digit";
    // Parsed before the profile is needed: no profile here.
    for args in [
        &["send", "Carol", "hi"][..],
        &["history", "Carol"],
        &["presence", "allow", "Carol"],
        &["recv", "--presence", "Carol"],
    ] {
        let out = home.run(args);
        assert_one_line(
            &out,
            2,
            "\"Carol\" is not a user id",
            &[rule, "did you mean `carol`?"],
        );
    }
    let out = home.run(&["init", "--user", "Carol", "--relay", "ws://127.0.0.1:9"]);
    assert_one_line(&out, 2, "\"Carol\" is not a user id", &["`carol`"]);
    // No suggestion when the lowercase form is not valid either.
    let out = home.run(&["send", "Bad Name", "hi"]);
    assert_one_line(&out, 2, "\"Bad Name\" is not a user id", &[rule]);
    assert!(!out.stderr.contains("did you mean"), "{}", out.transcript());
}

/// Item 9: argument errors are one `hush: ` line (clap's tip kept), while
/// --help and --version print to stdout.
#[test]
fn argument_errors_are_one_line() {
    let home = Hush::new("alice");
    let out = home.run(&["sendd"]);
    assert_one_line(
        &out,
        2,
        "unrecognized subcommand 'sendd'",
        &["tip: a similar subcommand exists: 'send'", "usage: hush"],
    );
    let out = home.run(&["send"]);
    assert_one_line(
        &out,
        2,
        "the following required arguments were not provided: <USER>, <MESSAGE>",
        &["usage: hush send"],
    );
    let out = home.run(&["recv", "--bogus"]);
    assert_one_line(&out, 2, "unexpected argument '--bogus' found", &[]);
    let out = home.run(&[]);
    assert_one_line(&out, 2, "'hush' requires a subcommand", &[]);

    for args in [&["--help"][..], &["send", "--help"], &["--version"]] {
        let out = home.run(args);
        out.assert_success();
        assert!(out.stderr.is_empty(), "{}", out.transcript());
        assert!(!out.stdout.is_empty(), "{}", out.transcript());
    }
}

/// Item 10: help shows no empty env values and a `--relay` text that fits
/// every command; the relay's first line on a shared terminal-like stream
/// is `listening on ADDR`, logs after it on stderr.
#[test]
fn help_and_relay_output_match_the_docs() {
    let home = Hush::new("alice");
    for args in [&["--help"][..], &["send", "--help"], &["history", "--help"]] {
        let out = home
            .cmd(args)
            .env("HUSH_HOME", "/secret/place")
            .env("HUSH_CA_FILE", "/secret/ca.pem")
            .run();
        out.assert_success();
        assert!(out.stdout.contains("[env: HUSH_HOME]"), "{}", out.stdout);
        assert!(!out.stdout.contains("HUSH_HOME="), "{}", out.stdout);
        assert!(!out.stdout.contains("/secret"), "{}", out.stdout);
        assert!(!out.stdout.contains("required by `init`"), "{}", out.stdout);
        assert!(out.stdout.contains("With `init`"), "{}", out.stdout);
    }

    // stdout and stderr on one stream, as on a terminal.
    let relay = bin(HUSH_RELAY);
    let mut spawned = Cmd::new("/bin/sh")
        .arg("-c")
        .arg("exec \"$0\" --listen 127.0.0.1:0 --store memory 2>&1")
        .arg(&relay)
        .env("RUST_LOG", "info")
        .spawn();
    let first = spawned.next_line(LINE).unwrap_or_default();
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first:?}");
    let second = spawned.next_line(LINE).unwrap_or_default();
    assert!(second.contains("relay serving"), "{second:?}");
    // Apart, stdout holds only that line and stderr only logs.
    let mut apart = Cmd::new(&relay)
        .args(["--listen", "127.0.0.1:0", "--store", "memory"])
        .env("RUST_LOG", "info")
        .spawn();
    let line = apart.next_line(LINE).unwrap_or_default();
    assert!(line.starts_with("listening on "), "{line:?}");
    let out = apart.kill();
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.transcript());
    assert!(!out.stderr.contains("listening on"), "{}", out.transcript());
    spawned.kill();
}
