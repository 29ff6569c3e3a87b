//! Every failure a script can meet ends `hush` with its documented exit
//! code and one line on stderr (`hush: ...`), never a panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::time::Duration;

use hush_tests::{Hush, Output, Relay, RelayOptions, temp_dir, unused_local_port};

/// Fails unless `out` exited with `code` and printed exactly one stderr
/// line starting with `hush: ` and no trace of a panic.
#[track_caller]
fn assert_failure(out: &Output, code: i32) {
    out.assert_code(code);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("hush: "),
        "stderr should be one line starting with `hush: `\n{}",
        out.transcript()
    );
    for trace in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!out.stderr.contains(trace), "{}", out.transcript());
    }
}

#[test]
fn failures_have_documented_exit_codes() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    alice.init(&relay.url());
    let whoami = alice.run(&["whoami"]);
    whoami.assert_success();

    // 7: no profile in that home.
    let carol = Hush::new("carol");
    assert_failure(&carol.run(&["whoami"]), 7);
    assert_failure(&carol.run(&["send", "alice", "hi"]), 7);

    // 6: wrong passphrase, for an offline and an online command.
    for args in [&["whoami"][..], &["send", "alice", "hi"]] {
        let out = alice
            .cmd(args)
            .env("HUSH_PASSPHRASE", "not the passphrase")
            .run();
        assert_failure(&out, 6);
    }

    // 4: a recipient the relay does not know.
    assert_failure(&alice.run(&["send", "nobody", "hi"]), 4);

    // 11: init over an existing profile, which stays intact.
    assert_failure(&alice.try_init(&relay.url()), 11);
    let after = alice.run(&["whoami"]);
    after.assert_success();
    assert_eq!(
        after.stdout, whoami.stdout,
        "the existing profile is untouched"
    );

    // 10: the id is registered to another key; no half-made profile stays.
    let other_alice = Hush::new("alice");
    assert_failure(&other_alice.try_init(&relay.url()), 10);
    assert_failure(&other_alice.run(&["whoami"]), 7);

    // 2: a usage error, clap's included (its message folded into one line).
    assert_failure(&alice.run(&["send"]), 2);

    // 3: nothing listening, within a bounded time.
    relay.kill();
    let bound = Duration::from_secs(10);
    let out = alice.cmd(&["send", "alice", "hi"]).timeout(bound).run();
    assert_failure(&out, 3);
    let dave = Hush::new("dave");
    let nowhere = format!("ws://127.0.0.1:{}", unused_local_port());
    let out = dave.try_init(&nowhere);
    assert!(
        out.elapsed < bound,
        "init took {:?} to give up",
        out.elapsed
    );
    assert_failure(&out, 3);
    assert_failure(&dave.run(&["whoami"]), 7);
}

#[test]
fn full_mailbox_refuses_with_code_9_and_keeps_what_it_accepted() {
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start_with(
        data.path(),
        RelayOptions::new().arg("--mailbox-max-envelopes").arg("3"),
    );
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    for i in 0..3 {
        alice.send("bob", &format!("fits {i}"));
    }
    let out = alice.run(&["send", "bob", "one too many"]);
    assert_failure(&out, 9);
    assert_eq!(out.stdout, "", "no id: the message was not accepted");

    let out = bob.recv();
    assert_eq!(
        out.lines(),
        [
            "alice [message request]: fits 0",
            "alice [message request]: fits 1",
            "alice [message request]: fits 2"
        ]
    );
    // Drained, the mailbox takes messages again.
    alice.send("bob", "room again");
    assert_eq!(bob.recv().lines(), ["alice [message request]: room again"]);
}

#[test]
fn damaged_profile_fails_with_an_error_not_a_panic() {
    // A profile damaged on disk (bad sector, half-synced copy) is input
    // the user does not control: `hush` must say so in one line, with a
    // documented code, instead of crashing.
    const PAGE: usize = 4096;
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    alice.init(&relay.url());
    let files: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(alice.home())
        .unwrap_or_else(|e| panic!("cannot list the profile: {e}"))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {p:?}: {e}"));
            (p, bytes)
        })
        .collect();
    assert!(!files.is_empty(), "no profile files");

    let mut crashes = Vec::new();
    for (path, bytes) in &files {
        let name = path.file_name().unwrap_or_default();
        // One flipped byte at the start of every page, one copy each.
        for offset in (0..bytes.len()).step_by(PAGE) {
            let copy = temp_dir("hush-damaged-");
            for (other, other_bytes) in &files {
                let target = copy.path().join(other.file_name().unwrap_or_default());
                let mut content = other_bytes.clone();
                if other == path {
                    content[offset] ^= 0xff;
                }
                std::fs::write(&target, content)
                    .unwrap_or_else(|e| panic!("cannot write {target:?}: {e}"));
            }
            let out = hush_tests::hush(copy.path(), &["whoami"]);
            let one_line = out.stderr.lines().count() == 1 && out.stderr.starts_with("hush: ");
            let documented = matches!(out.code, Some(0..=11));
            if !documented || out.stderr.contains("panicked") || (!out.success() && !one_line) {
                crashes.push(format!(
                    "{} byte {offset}: exit {:?}, stderr: {}",
                    name.to_string_lossy(),
                    out.code,
                    out.stderr
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or_default()
                ));
            }
        }
    }
    assert!(
        crashes.is_empty(),
        "{} damaged profiles crashed `hush whoami`:\n{}",
        crashes.len(),
        crashes.join("\n")
    );
}
