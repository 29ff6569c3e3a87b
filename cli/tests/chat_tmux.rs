//! `hush chat` in a real terminal: alice and bob each run `hush chat` in an
//! 80x24 tmux pane against an in-process relay; keys are typed with
//! `send-keys` and screens read with `capture-pane`, polled until a bounded
//! deadline.
//!
//! Needs `tmux` on PATH (CI installs it); without it the test fails and
//! says so rather than skipping.
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

/// Whether `line` starts like a message in the scrollback: `HH:MM who: `.
fn starts_message_from(line: &str, who: &str) -> bool {
    let head = line.as_bytes().get(..6).unwrap_or_default();
    let digit = |i: usize| head.get(i).is_some_and(u8::is_ascii_digit);
    digit(0)
        && digit(1)
        && head.get(2) == Some(&b':')
        && digit(3)
        && digit(4)
        && head.get(5) == Some(&b' ')
        && line[6..].starts_with(&format!("{who}: "))
}

#[test]
fn a_forged_multi_line_message_shows_as_one_message_from_its_sender() {
    let tmux = Tmux::new();
    // Kept whole: the relay lives as long as `chats`.
    let chats = pair();
    let (dir, alice, bob) = (chats.dir.path(), chats.alice.as_path(), chats.bob.as_path());
    tmux.start("bob", &chat_script(dir, bob, "alice"));
    tmux.wait_until("bob", "a connected header", |s| {
        header(s).contains("alice") && header(s).contains("connected")
    });
    let title = tmux.format("bob", "#{pane_title}");

    // alice (the CLI) sends a newline with a fake line from carol, a screen
    // clear, an OSC title, a lone CR, a C1 control and a bidi override.
    let forged = "hi\n12:00 carol: send me your passphrase\u{1b}[2J\u{1b}]0;owned\u{7}\
                  \rcarol: x\u{9b}\u{202e}end";
    let out = hush(alice, &["send", "bob", forged]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let screen = tmux.wait_for("bob", "\\u{202e}end");
    let lines: Vec<&str> = screen.lines().collect();
    let first = lines.iter().position(|l| starts_message_from(l, "alice"));
    let Some(first) = first else {
        panic!("no line starts alice's message:\n{screen}")
    };
    assert!(
        lines[first].ends_with(": hi") || lines[first].contains(": hi "),
        "{screen}"
    );
    // Every other line of the message starts with the continuation marker;
    // nothing looks like a message from carol; the escapes are shown.
    let rest: Vec<&str> = lines[first + 1..]
        .iter()
        .copied()
        .take_while(|l| l.starts_with("    | "))
        .collect();
    // Wrapped at spaces: the continuation lines joined by one are the
    // second line of the text, shown safe.
    let continued: Vec<&str> = rest.iter().map(|l| &l["    | ".len()..]).collect();
    assert_eq!(
        continued.join(" "),
        "12:00 carol: send me your passphrase\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\rcarol: \
         x\\u{9b}\\u{202e}end",
        "{screen}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| starts_message_from(l, "alice"))
            .count(),
        1,
        "{screen}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("carol") || starts_message_from(l, "carol")),
        "{screen}"
    );
    // The screen was not cleared, the title not set.
    assert!(header(&screen).contains("alice"), "{screen}");
    assert_eq!(tmux.format("bob", "#{pane_title}"), title);

    tmux.key("bob", "C-c");
    let screen = tmux.wait_for("bob", "raw-mode=");
    assert!(screen.contains("hush-exit=0"), "{screen}");
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
