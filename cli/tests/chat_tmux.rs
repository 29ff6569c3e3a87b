//! `hush chat` in a real terminal: alice and bob each run `hush chat` in an
//! 80x24 tmux pane against an in-process relay; keys are typed with
//! `send-keys` and screens read with `capture-pane`, polled until a bounded
//! deadline.
//!
//! Needs `tmux` on PATH (CI installs it); without it the test fails and
//! says so rather than skipping.

mod common;

use common::{Tmux, chat_script, header, hush, pair};

#[test]
fn two_chats_exchange_messages_with_typing_and_read_marks_then_quit_cleanly() {
    let tmux = Tmux::new();
    // Kept whole: the relay lives as long as `chats`.
    let chats = pair();
    let (dir, alice, bob) = (chats.dir.path(), chats.alice.as_path(), chats.bob.as_path());

    tmux.start("alice", &chat_script(dir, alice, "bob"));
    tmux.start("bob", &chat_script(dir, bob, "alice"));
    tmux.wait_until("alice", "a connected header", |s| {
        header(s).contains("bob") && header(s).contains("connected")
    });
    tmux.wait_until("bob", "a connected header", |s| {
        header(s).contains("alice") && header(s).contains("connected")
    });
    let screen = tmux.screen("alice");
    assert!(header(&screen).contains("unverified"), "{screen}");
    assert_eq!(screen.lines().count(), 24, "{screen}");

    // alice writes; bob's chat shows it live, and since bob's pane displays
    // it, alice's mark moves to read.
    tmux.type_text("alice", "hello from alice");
    tmux.key("alice", "Enter");
    tmux.wait_for("bob", "alice: hello from alice");
    tmux.wait_for("alice", "alice: hello from alice (read)");

    // bob types: alice sees "typing…" in her header before the message.
    tmux.type_text("bob", "hi alice");
    tmux.wait_until("alice", "bob typing in the header", |s| {
        header(s).contains("typing")
    });
    tmux.key("bob", "Enter");
    tmux.wait_for("alice", "bob: hi alice");
    // The message ends the indicator (well before its 6 s timeout).
    tmux.wait_until("alice", "the typing indicator cleared", |s| {
        s.contains("bob: hi alice") && !header(s).contains("typing")
    });
    tmux.wait_for("bob", "bob: hi alice (read)");

    // Cursor editing on the input line: "wrld", Left x3, insert "o".
    tmux.type_text("alice", "wrld");
    for _ in 0..3 {
        tmux.key("alice", "Left");
    }
    tmux.type_text("alice", "o");
    tmux.key("alice", "End");
    tmux.type_text("alice", "!");
    tmux.key("alice", "Enter");
    tmux.wait_for("bob", "alice: world!");

    // Ctrl-C leaves with status 0 and the terminal restored.
    tmux.key("alice", "C-c");
    let screen = tmux.wait_for("alice", "raw-mode=");
    assert!(screen.contains("hush-exit=0"), "{screen}");
    assert!(screen.contains("raw-mode=off"), "{screen}");
    assert_eq!(
        tmux.format("alice", "#{alternate_on}"),
        "0",
        "alternate screen left"
    );
    assert_eq!(tmux.format("alice", "#{cursor_flag}"), "1", "cursor shown");

    // /quit does the same.
    tmux.type_text("bob", "/quit");
    tmux.key("bob", "Enter");
    let screen = tmux.wait_for("bob", "raw-mode=");
    assert!(screen.contains("hush-exit=0"), "{screen}");
    assert!(screen.contains("raw-mode=off"), "{screen}");
    assert_eq!(tmux.format("bob", "#{alternate_on}"), "0");

    // Everything shown was stored.
    let out = hush(alice, &["history", "bob"]);
    let history = String::from_utf8_lossy(&out.stdout);
    assert!(history.contains("hello from alice"), "{history}");
    assert!(history.contains("hi alice"), "{history}");
    assert!(history.contains("world!"), "{history}");
    drop(chats);
}

#[test]
fn chat_without_a_terminal_is_a_usage_error() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let out = hush(dir.path(), &["chat", "bob"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a terminal"));
}
