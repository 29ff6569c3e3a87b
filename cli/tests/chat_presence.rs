//! `hush chat` shows the peer's presence when the peer allows it: "last
//! seen" while they are away, "online" while they are connected, and their
//! read receipts end up as `status: read` in `hush history --json`. Runs
//! both chats in 80x24 tmux panes against an in-process relay (see
//! `common`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::{Tmux, chat_script, header, hush, pair};

#[test]
fn chat_header_shows_an_allowing_peer_online_then_last_seen_and_reads_become_status() {
    let tmux = Tmux::new();
    // Kept whole: the relay lives as long as `chats`.
    let chats = pair();
    let (dir, alice, bob) = (chats.dir.path(), chats.alice.as_path(), chats.bob.as_path());
    let out = hush(alice, &["presence", "allow", "bob"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // alice is away: bob sees when she was last connected.
    tmux.start("bob", &chat_script(dir, bob, "alice"));
    tmux.wait_until("bob", "alice last seen in the header", |s| {
        header(s).contains("last seen")
    });

    // alice opens her chat: bob sees her online. bob does not allow alice,
    // so her header shows nothing about him.
    tmux.start("alice", &chat_script(dir, alice, "bob"));
    tmux.wait_until("bob", "alice online in the header", |s| {
        header(s).contains("online")
    });
    let screen = tmux.wait_until("alice", "a connected header", |s| {
        header(s).contains("connected")
    });
    assert!(
        !header(&screen).contains("online") && !header(&screen).contains("last seen"),
        "{screen}"
    );

    // alice writes; bob's pane displays it, so it is read.
    tmux.type_text("alice", "are you there");
    tmux.key("alice", "Enter");
    tmux.wait_for("bob", "alice: are you there");
    tmux.wait_for("alice", "alice: are you there (read)");

    // alice leaves: bob sees her last seen again.
    tmux.key("alice", "C-c");
    let screen = tmux.wait_for("alice", "raw-mode=");
    assert!(screen.contains("hush-exit=0"), "{screen}");
    tmux.wait_until("bob", "alice last seen after she left", |s| {
        header(s).contains("last seen") && !header(s).contains("online")
    });

    // The read receipt is recorded: history --json says so.
    let out = hush(alice, &["history", "bob", "--json"]);
    let history = String::from_utf8_lossy(&out.stdout);
    let entry: serde_json::Value = match history.lines().next().map(serde_json::from_str) {
        Some(Ok(v)) => v,
        other => panic!("no history entry: {other:?}\n{history}"),
    };
    assert_eq!(entry["text"], "are you there", "{history}");
    assert_eq!(entry["status"], "read", "{history}");

    tmux.key("bob", "C-c");
    tmux.wait_for("bob", "raw-mode=");
    drop(chats);
}
