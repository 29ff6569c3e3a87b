//! `hush chat` beside a running `hush daemon`: alice's daemon holds her
//! profile, her chat goes through it (messages both ways, read marks,
//! bob's typing), and `hush send` from a script works at the same time.
//!
//! Needs `tmux` on PATH, as `chat_tmux.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{HUSH, PASSPHRASE, Tmux, chat_script, hush, pair, type_and_send, wait_connected};

/// A `hush daemon` child, stopped with SIGTERM on drop.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
fn chat_runs_beside_the_daemon_and_goes_through_it() {
    let tmux = Tmux::new();
    let chats = pair();
    let (dir, alice, bob) = (chats.dir.path(), chats.alice.as_path(), chats.bob.as_path());
    let mut child = Command::new(HUSH)
        .arg("--home")
        .arg(alice)
        .arg("daemon")
        .env("HUSH_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let daemon = Daemon(child);
    // Blocks until the daemon listens (or ends, closing its stdout).
    let mut ready = String::new();
    BufReader::new(stdout).read_line(&mut ready).unwrap();
    assert!(ready.starts_with("listening on "), "{ready:?}");

    tmux.start("alice", &chat_script(dir, alice, "bob"));
    tmux.start("bob", &chat_script(dir, bob, "alice"));
    wait_connected(&tmux, "alice", "bob");
    wait_connected(&tmux, "bob", "alice");

    // Both ways, with typing and read marks: alice's side through the
    // daemon's requests and its event stream.
    // (Typing needs a session: the first message starts it.)
    tmux.type_text("alice", "hello via the daemon");
    tmux.key("alice", "Enter");
    tmux.wait_for("alice", "alice: hello via the daemon (read)");
    type_and_send(&tmux, "bob", "alice", "hi alice");
    type_and_send(&tmux, "alice", "bob", "typed through the daemon");

    // A script sends while the chat is open: both go through the daemon.
    let sent = hush(alice, &["send", "bob", "from a script"]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    tmux.wait_for("bob", "alice: from a script");

    tmux.key("alice", "C-c");
    let screen = tmux.wait_for("alice", "raw-mode=");
    assert!(screen.contains("hush-exit=0"), "{screen}");
    drop(daemon);
}
