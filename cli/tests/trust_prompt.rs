//! `hush trust USER` on a terminal: it shows the NEW key's safety number
//! and asks; only "y" trusts, and what it trusts is that very key. A key
//! change is made for real: the relay (redb, in process) is stopped, the
//! operator frees "bob", and a new key registers the id.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{PASSPHRASE, Tmux, hush, init};

const HUSH: &str = env!("CARGO_BIN_EXE_hush");

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A pane script running `hush trust bob`, reporting its exit status.
fn trust_script(dir: &Path, home: &Path) -> PathBuf {
    let path = dir.join("trust.sh");
    let script = format!(
        "#!/bin/sh\n\
         export HUSH_PASSPHRASE='{PASSPHRASE}'\n\
         unset RUST_LOG\n\
         '{HUSH}' --home '{home}' trust bob\n\
         echo \"hush-exit=$?\"\n\
         exec sleep 600\n",
        home = home.display(),
    );
    std::fs::write(&path, script).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    path
}

fn pending_number(alice: &Path) -> Option<String> {
    let out = ok(
        &hush(alice, &["safety-number", "bob", "--json"]),
        "safety-number",
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}"));
    v["pending"].as_str().map(str::to_owned)
}

#[test]
fn trust_on_a_terminal_shows_the_new_number_and_trusts_only_on_yes() {
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let relay = rt
        .block_on(hush_relay::RelayHandle::start(hush_relay::Config::redb(
            data.path(),
        )))
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = relay.local_addr();
    let url = format!("ws://{addr}");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let alice = init(dir.path(), "alice", &url);
    let bob = init(dir.path(), "bob", &url);
    ok(&hush(&alice, &["send", "bob", "hi"]), "send");
    ok(&hush(&bob, &["recv"]), "recv");

    // The operator frees "bob"; a new key registers it and writes.
    rt.block_on(relay.shutdown())
        .unwrap_or_else(|e| panic!("{e}"));
    let bob_id = hush_client_core::UserId::try_from("bob").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        rt.block_on(hush_relay::admin::reset_user(data.path(), &bob_id))
            .unwrap_or_else(|e| panic!("{e}"))
    );
    let _relay = rt
        .block_on(hush_relay::RelayHandle::bind(
            hush_relay::Config::redb(data.path()),
            addr,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let new_home = dir.path().join("new");
    std::fs::create_dir_all(&new_home).unwrap_or_else(|e| panic!("{e}"));
    let new_bob = init(&new_home, "bob", &url);
    ok(&hush(&new_bob, &["send", "alice", "new key here"]), "send");
    ok(&hush(&alice, &["recv"]), "recv");
    let pending = pending_number(&alice).unwrap_or_else(|| panic!("no key change pending"));

    let tmux = Tmux::new();
    // "n": nothing is trusted.
    tmux.start("no", &trust_script(dir.path(), &alice));
    let screen = tmux.wait_for("no", "[y/N]");
    // The number may wrap at the pane's width.
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    assert!(
        squeeze(&screen).contains(&squeeze(&format!("new safety number of bob: {pending}"))),
        "{screen}"
    );
    tmux.type_text("no", "n");
    tmux.key("no", "Enter");
    let screen = tmux.wait_for("no", "hush-exit=");
    assert!(
        screen.contains("nothing trusted") && screen.contains("hush-exit=0"),
        "{screen}"
    );
    assert_eq!(pending_number(&alice).as_deref(), Some(pending.as_str()));

    // "y": the key whose number was shown is trusted.
    tmux.start("yes", &trust_script(dir.path(), &alice));
    tmux.wait_for("yes", "[y/N]");
    tmux.type_text("yes", "y");
    tmux.key("yes", "Enter");
    let screen = tmux.wait_for("yes", "hush-exit=");
    assert!(
        screen.contains("is trusted") && screen.contains("hush-exit=0"),
        "{screen}"
    );
    assert_eq!(pending_number(&alice), None);
    ok(&hush(&alice, &["send", "bob", "to the new key"]), "send");
    let got = ok(&hush(&new_bob, &["recv"]), "recv");
    assert!(got.contains("to the new key"), "{got}");
}
