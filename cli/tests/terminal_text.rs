//! What the terminal shows cannot be forged by a peer: alice sends bob
//! texts with a newline and a fake `carol:` line, ANSI escapes, a lone CR,
//! C1 controls and a bidi override (through the real `hush` binary, against
//! an in-process relay). Bob's `hush recv` and `hush history alice` text
//! output shows each as one message from alice, with no control byte; the
//! `--json` forms carry the exact original texts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::path::Path;

use common::{hush, pair};
use serde_json::Value;

/// Continuation lines of a message start with this (the CLI's
/// `terminal_text::CONTINUATION`).
const CONTINUATION: &str = "    | ";

/// What alice sends, and what bob's text output must show for it.
const TEXTS: &[(&str, &str)] = &[
    (
        "hi\ncarol: send me your passphrase",
        "hi\n    | carol: send me your passphrase",
    ),
    ("clear\u{1b}[2Jscreen", "clear\\u{1b}[2Jscreen"),
    (
        "title\u{1b}]0;title\u{7}done",
        "title\\u{1b}]0;title\\u{7}done",
    ),
    ("over\rcarol: overwritten", "over\\rcarol: overwritten"),
    ("c1 \u{9b}2J \u{85}next", "c1 \\u{9b}2J \\u{85}next"),
    (
        "bidi \u{202e}dlrow\u{202c} end",
        "bidi \\u{202e}dlrow\\u{202c} end",
    ),
    ("typed \\u{1b} backslash", "typed \\\\u{1b} backslash"),
    (
        "two\n\ncarol: hi\n2025-01-01 00:00:00 carol: x",
        "two\n    | \n    | carol: hi\n    | 2025-01-01 00:00:00 carol: x",
    ),
];

fn ok_stdout(home: &Path, args: &[&str]) -> String {
    let out = hush(home, args);
    assert!(
        out.status.success(),
        "hush {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match String::from_utf8(out.stdout) {
        Ok(s) => s,
        Err(e) => panic!("hush {args:?} printed invalid UTF-8: {e}"),
    }
}

fn send_all(alice: &Path) {
    for (text, _) in TEXTS {
        ok_stdout(alice, &["send", "bob", text]);
    }
}

/// No ESC, CR, BEL, other C0 control but newline, DEL, C1 control or bidi
/// override anywhere in `out`.
fn assert_no_controls(out: &str) {
    let bad = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}')
    };
    if let Some((i, c)) = out.char_indices().find(|&(_, c)| bad(c)) {
        panic!("output has {c:?} at byte {i}:\n{out}");
    }
}

/// Splits text output into messages: a line that does not start with
/// [`CONTINUATION`] starts one. Each message is returned with its lines.
fn messages(out: &str) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for line in out.lines() {
        match all.last_mut() {
            Some(last) if line.starts_with(CONTINUATION) => {
                last.push('\n');
                last.push_str(line);
            }
            _ => all.push(line.to_owned()),
        }
    }
    all
}

/// The texts of the `"type":"message"` (or history) objects in JSON lines.
fn json_texts(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|line| match serde_json::from_str::<Value>(line) {
            Ok(v) => match v["type"].as_str() {
                None | Some("message") => v["text"].as_str().map(str::to_owned),
                Some(_) => None,
            },
            Err(e) => panic!("not JSON: {line:?}: {e}"),
        })
        .collect()
}

fn originals() -> Vec<String> {
    TEXTS.iter().map(|(t, _)| (*t).to_owned()).collect()
}

#[test]
fn recv_and_history_show_each_forged_text_as_one_message_from_alice() {
    // Kept whole: the relay lives as long as `p`.
    let p = pair();
    let (alice, bob) = (p.alice.as_path(), p.bob.as_path());

    // Text output of recv: one `alice:` message per text, shown safe.
    send_all(alice);
    let recv = ok_stdout(bob, &["recv"]);
    assert_no_controls(&recv);
    let shown = messages(&recv);
    let expected: Vec<String> = TEXTS
        .iter()
        .map(|(_, safe)| format!("alice [message request]: {safe}"))
        .collect();
    assert_eq!(shown, expected, "recv printed:\n{recv}");
    assert!(!recv.lines().any(|l| l.starts_with("carol")), "{recv}");

    // recv --json: the exact texts.
    send_all(alice);
    let recv_json = ok_stdout(bob, &["recv", "--json"]);
    assert_eq!(json_texts(&recv_json), originals(), "{recv_json}");

    // History text: every message once per sending, timestamped, from
    // alice; everything else is a continuation line.
    // (`--utc`: the timestamp is `YYYY-MM-DD HH:MM:SS +00:00 `.)
    let history = ok_stdout(bob, &["--utc", "history", "alice"]);
    assert_no_controls(&history);
    let entries = messages(&history);
    assert_eq!(entries.len(), 2 * TEXTS.len(), "{history}");
    for (entry, (_, safe)) in entries.iter().zip(TEXTS.iter().chain(TEXTS)) {
        let (when, rest) = entry.split_at_checked(27).unwrap_or(("", entry));
        assert!(
            when.len() == 27 && when.as_bytes()[4] == b'-' && when.ends_with(" +00:00 "),
            "not a timestamped history line: {entry:?}\n{history}"
        );
        assert_eq!(rest, format!("alice: {safe}"), "{history}");
    }
    assert!(
        !history
            .lines()
            .any(|l| l.starts_with("carol") || l.get(27..).is_some_and(|r| r.starts_with("carol"))),
        "{history}"
    );

    // History --json: the exact texts, both sendings.
    let history_json = ok_stdout(bob, &["history", "alice", "--json"]);
    let mut twice = originals();
    twice.extend(originals());
    assert_eq!(json_texts(&history_json), twice, "{history_json}");
    drop(p);
}
