//! `hush chat` and what was received before it opened: messages already in
//! the history (stored by `hush recv`), never shown with focus, become
//! `read` at the sender once the chat shows them; the footer line is whole
//! at 80x24.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::time::Instant;

use common::{DEADLINE, POLL, Tmux, chat_script, header, hush, pair};

fn status_of(home: &std::path::Path, peer: &str, text: &str) -> Option<String> {
    let out = hush(home, &["recv"]);
    assert!(out.status.success(), "{out:?}");
    let out = hush(home, &["history", peer, "--json"]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["text"] == text)
        .and_then(|v| v["status"].as_str().map(str::to_owned))
}

fn wait_status(home: &std::path::Path, peer: &str, text: &str, want: &str) {
    let start = Instant::now();
    loop {
        let got = status_of(home, peer, text);
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{text:?} stayed {got:?}, never {want}"
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn backlog_shown_in_chat_becomes_read_and_the_footer_fits_80_columns() {
    let tmux = Tmux::new();
    let p = pair();
    for text in ["backlog one", "backlog two"] {
        let out = hush(&p.alice, &["send", "bob", text]);
        assert!(out.status.success(), "{out:?}");
    }
    // bob receives them outside the chat: stored, delivered, not read.
    let out = hush(&p.bob, &["recv"]);
    assert!(out.status.success(), "{out:?}");
    wait_status(&p.alice, "bob", "backlog two", "delivered");
    assert_eq!(
        status_of(&p.alice, "bob", "backlog one").as_deref(),
        Some("delivered")
    );

    tmux.start("bob", &chat_script(p.dir.path(), &p.bob, "alice"));
    let screen = tmux.wait_until("bob", "the backlog, connected", |s| {
        header(s).contains("connected") && s.contains("alice: backlog two")
    });
    // The footer (status/help line, the 23rd row) is whole at 80 columns.
    let rows: Vec<&str> = screen.lines().collect();
    assert_eq!(
        rows.get(22).map(|r| r.trim_end()),
        Some("Enter send · PgUp/PgDn scroll · /help · Ctrl-C quit"),
        "{screen}"
    );
    assert_eq!(
        tmux.format("bob", "#{window_width}x#{window_height}"),
        "80x24"
    );

    wait_status(&p.alice, "bob", "backlog one", "read");
    wait_status(&p.alice, "bob", "backlog two", "read");
    tmux.key("bob", "C-c");
    tmux.wait_for("bob", "hush-exit=0");
}

#[test]
fn no_read_marks_for_the_backlog_with_read_receipts_off() {
    let tmux = Tmux::new();
    let p = pair();
    let out = hush(&p.bob, &["settings", "--read-receipts", "off"]);
    assert!(out.status.success(), "{out:?}");
    let out = hush(&p.alice, &["send", "bob", "quiet one"]);
    assert!(out.status.success(), "{out:?}");
    let out = hush(&p.bob, &["recv"]);
    assert!(out.status.success(), "{out:?}");
    wait_status(&p.alice, "bob", "quiet one", "delivered");

    tmux.start("bob", &chat_script(p.dir.path(), &p.bob, "alice"));
    tmux.wait_until("bob", "the backlog, connected", |s| {
        header(s).contains("connected") && s.contains("alice: quiet one")
    });
    // A message bob answers with goes after any receipt his chat would
    // send: once alice has it, a read receipt would have come first.
    tmux.type_text("bob", "answer");
    tmux.key("bob", "Enter");
    tmux.wait_for("bob", "bob: answer (sent)");
    tmux.key("bob", "C-c");
    tmux.wait_for("bob", "hush-exit=0");
    let out = hush(&p.alice, &["recv"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bob: answer"),
        "{out:?}"
    );
    assert_eq!(
        status_of(&p.alice, "bob", "quiet one").as_deref(),
        Some("delivered")
    );
}
