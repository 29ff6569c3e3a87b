//! The passphrase rule at `hush init` and `hush passphrase`, and changing
//! the passphrase of a profile that has a history.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{HUSH, PASSPHRASE, pair, relay};
use hush_client_core::client::Profile;
use hush_client_core::store::PROFILE_FILE;

const NEW_PASSPHRASE: &str = "a new passphrase for bob";
const CHEAP_KDF: [&str; 4] = ["--kdf-memory-kib", "8", "--kdf-iterations", "1"];

/// `hush --home HOME ARGS` with exactly the passphrase variables given.
fn hush_with(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(HUSH);
    c.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("HUSH_PASSPHRASE")
        .env_remove("HUSH_NEW_PASSPHRASE")
        .env_remove("HUSH_HOME")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn init_with(home: &Path, relay: &str, pass: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--relay", relay, "init", "--user", "carol"];
    args.extend_from_slice(&CHEAP_KDF);
    args.extend_from_slice(extra);
    hush_with(home, &[("HUSH_PASSPHRASE", pass)], &args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_usage(o: &Output, wants: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in wants {
        assert!(err.contains(want), "{want:?} not in {err:?}");
    }
}

#[test]
fn init_refuses_an_empty_or_short_passphrase_before_contacting_the_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("carol");
    // Nothing listens on port 1: reaching the relay would be exit 3, so
    // exit 2 shows the rule was applied first.
    let nowhere = "ws://127.0.0.1:1";
    let o = init_with(&home, nowhere, "", &[]);
    assert_usage(&o, &["passphrase is empty", "at least 8 characters"]);
    let o = init_with(&home, nowhere, "", &["--weak-passphrase"]);
    assert_usage(&o, &["passphrase is empty"]);
    let o = init_with(&home, nowhere, "1234567", &[]);
    assert_usage(&o, &["too short", "7 characters", "--weak-passphrase"]);
    // Characters, not bytes: 7 characters in 14 bytes are too short.
    let o = init_with(&home, nowhere, "ééééééé", &[]);
    assert_usage(&o, &["7 characters", "--weak-passphrase"]);
    assert!(!home.join(PROFILE_FILE).exists(), "no profile was created");
}

#[test]
fn init_accepts_a_short_passphrase_with_weak_passphrase() {
    let relay = relay();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("carol");
    let o = init_with(&home, &relay.url, "1234567", &["--weak-passphrase"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = hush_with(&home, &[("HUSH_PASSPHRASE", "1234567")], &["whoami"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("carol"), "{}", stdout(&o));
    // 8 characters (9 bytes) need no flag.
    let home = tmp.path().join("dave");
    let mut args = vec!["--relay", relay.url.as_str(), "init", "--user", "dave"];
    args.extend_from_slice(&CHEAP_KDF);
    let o = hush_with(&home, &[("HUSH_PASSPHRASE", "1234567é")], &args);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn change(home: &Path, old: &str, new: &str, extra: &[&str]) -> Output {
    let mut args = vec!["passphrase"];
    args.extend_from_slice(&CHEAP_KDF);
    args.extend_from_slice(extra);
    hush_with(
        home,
        &[("HUSH_PASSPHRASE", old), ("HUSH_NEW_PASSPHRASE", new)],
        &args,
    )
}

#[test]
fn changed_passphrase_refuses_the_old_one_and_keeps_the_history() {
    let p = pair();
    let send = |text: &str| {
        let o = hush_with(
            &p.alice,
            &[("HUSH_PASSPHRASE", PASSPHRASE)],
            &["send", "bob", text],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    };
    send("before the change");
    let o = hush_with(&p.bob, &[("HUSH_PASSPHRASE", PASSPHRASE)], &["recv"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The rule applies to the new passphrase; nothing changes when refused.
    assert_usage(
        &change(&p.bob, PASSPHRASE, "", &[]),
        &["passphrase is empty"],
    );
    assert_usage(
        &change(&p.bob, PASSPHRASE, "short", &[]),
        &["5 characters", "--weak-passphrase"],
    );
    // A wrong current passphrase: exit 6.
    let o = change(&p.bob, "not the passphrase", NEW_PASSPHRASE, &[]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    // Refused while another process (here: this one) holds the profile.
    {
        let _held = Profile::open_in(&p.bob, PASSPHRASE.as_bytes()).unwrap();
        let o = change(&p.bob, PASSPHRASE, NEW_PASSPHRASE, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    }

    let o = change(&p.bob, PASSPHRASE, NEW_PASSPHRASE, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("passphrase changed"), "{}", stdout(&o));

    let old = [("HUSH_PASSPHRASE", PASSPHRASE)];
    let new = [("HUSH_PASSPHRASE", NEW_PASSPHRASE)];
    let o = hush_with(&p.bob, &old, &["history", "alice"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrong passphrase"), "{}", stderr(&o));
    let o = hush_with(&p.bob, &new, &["history", "alice"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("before the change"), "{}", stdout(&o));

    // The sessions moved too: bob still decrypts what alice sends.
    send("after the change");
    let o = hush_with(&p.bob, &new, &["recv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("after the change"), "{}", stdout(&o));

    // A weak new passphrase with the flag.
    let o = change(&p.bob, NEW_PASSPHRASE, "1234567", &["--weak-passphrase"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = hush_with(
        &p.bob,
        &[("HUSH_PASSPHRASE", "1234567")],
        &["history", "alice"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("before the change") && text.contains("after the change"),
        "{text}"
    );
}
