//! Display-safe text: what a peer wrote, made safe to print on a terminal.
//!
//! A message's text is chosen by the peer. Printed as is, it could carry
//! escape sequences (clear the screen, set the window title, recolour),
//! move the cursor back over the sender's name (`\r`, backspace), reorder
//! what is shown (bidi overrides), or contain a newline followed by
//! `carol: ...`, which would look like a message from carol. The rule here
//! makes one message always show as one message from one sender:
//!
//! * Escaped, visibly, in the form `\u{HEX}` (lowercase hex, no leading
//!   zeros; the same as Rust's `char::escape_unicode`): every C0 control
//!   character U+0000–U+001F other than newline, DEL (U+007F), every C1
//!   control (U+0080–U+009F), the bidi marks and overrides that reorder what
//!   the terminal shows (U+061C, U+200E, U+200F, U+202A–U+202E,
//!   U+2066–U+2069) and the line and paragraph separators U+2028, U+2029.
//!   Two controls get a short form: tab is `\t` and carriage return is
//!   `\r`.
//! * A backslash is shown as `\\`, so an escape can never be faked by
//!   typing one: `\u{1b}` on screen is an ESC, `\\u{1b}` is the literal
//!   text. The escaping is reversible, hence distinct texts show distinctly.
//! * A newline stays a line break, but every line after the first starts
//!   with [`CONTINUATION`] (`    | `), so a line of output that starts with
//!   `name:` is always the start of a real message ([`message_text`]). Where
//!   a text must stay on one line (an error reason), the newline is escaped
//!   as `\n` instead ([`one_line`]).
//!
//! Everything else (letters, emoji, combining marks, wide characters) is
//! shown unchanged. `--json` output does not go through here: it carries
//! the exact text.

use std::fmt::Write as _;

/// The start of every line of a message after its first.
pub const CONTINUATION: &str = "    | ";

/// Whether `c` is shown as an escape (`\u{..}`, or `\t` / `\r`) rather
/// than passed to the terminal. Newline is not: each caller decides how to
/// show line breaks.
pub fn is_escaped(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{9}'
        | '\u{b}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// Appends `c` to `out` as the rule shows it; `\n` is escaped too (callers
/// that keep line breaks handle it before).
fn push_shown(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        c if is_escaped(c) => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// `text` with every character shown by the rule and newlines kept as line
/// breaks (no continuation marker): for a caller that lays out the lines
/// itself, as the chat scrollback does.
pub fn escape_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\n' {
            out.push('\n');
        } else {
            push_shown(&mut out, c);
        }
    }
    out
}

/// `text` on one line: every character shown by the rule, newline as `\n`.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_shown(&mut out, c);
    }
    out
}

/// A message's text for line-oriented output (`hush recv`, `hush
/// history`): shown by the rule, each line after the first starting with
/// [`CONTINUATION`]. Contains no control character but `\n`.
pub fn message_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\n' {
            out.push('\n');
            out.push_str(CONTINUATION);
        } else {
            push_shown(&mut out, c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Undoes [`one_line`] (and [`escape_lines`], which keeps `\n`);
    /// `None` for anything the rule cannot have produced.
    fn unescape(shown: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = shown.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                if is_escaped(c) {
                    return None;
                }
                out.push(c);
                continue;
            }
            match chars.next()? {
                '\\' => out.push('\\'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'n' => out.push('\n'),
                'u' => {
                    if chars.next()? != '{' {
                        return None;
                    }
                    let hex: String = chars.by_ref().take_while(|&h| h != '}').collect();
                    let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                    if !is_escaped(c) || c == '\t' || c == '\r' {
                        return None;
                    }
                    out.push(c);
                }
                _ => return None,
            }
        }
        Some(out)
    }

    /// Undoes [`message_text`].
    fn from_message_text(shown: &str) -> Option<String> {
        let mut lines = shown.split('\n');
        let mut joined = lines.next()?.to_owned();
        for line in lines {
            joined.push('\n');
            joined.push_str(line.strip_prefix(CONTINUATION)?);
        }
        unescape(&joined)
    }

    #[test]
    fn plain_text_is_unchanged() {
        let text = "héllo wörld, 日本語 👋 e\u{301} (ok)";
        assert_eq!(message_text(text), text);
        assert_eq!(one_line(text), text);
    }

    #[test]
    fn a_newline_cannot_start_a_fake_message() {
        assert_eq!(
            message_text("hi\ncarol: send me your passphrase"),
            "hi\n    | carol: send me your passphrase"
        );
        assert_eq!(message_text("a\n\nb\n"), "a\n    | \n    | b\n    | ");
        assert_eq!(escape_lines("a\nb"), "a\nb");
        assert_eq!(one_line("a\nb"), "a\\nb");
    }

    #[test]
    fn escape_sequences_are_shown_not_run() {
        assert_eq!(message_text("\u{1b}[2Jx"), "\\u{1b}[2Jx");
        assert_eq!(message_text("\u{1b}]0;title\u{7}"), "\\u{1b}]0;title\\u{7}");
        assert_eq!(message_text("\u{9b}31m\u{85}"), "\\u{9b}31m\\u{85}");
        assert_eq!(message_text("a\u{8}\u{7f}\u{0}"), "a\\u{8}\\u{7f}\\u{0}");
    }

    #[test]
    fn carriage_return_and_tab_have_short_forms() {
        assert_eq!(message_text("over\rcarol: x"), "over\\rcarol: x");
        assert_eq!(message_text("a\tb"), "a\\tb");
    }

    #[test]
    fn bidi_overrides_and_separators_are_escaped() {
        let all = "\u{61c}\u{200e}\u{200f}\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\
                   \u{2066}\u{2067}\u{2068}\u{2069}\u{2028}\u{2029}";
        assert_eq!(
            message_text(all),
            "\\u{61c}\\u{200e}\\u{200f}\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}\
             \\u{2066}\\u{2067}\\u{2068}\\u{2069}\\u{2028}\\u{2029}"
        );
    }

    #[test]
    fn a_typed_escape_is_not_confusable_with_a_real_one() {
        assert_eq!(message_text("\\u{1b}"), "\\\\u{1b}");
        assert_ne!(message_text("\\u{1b}"), message_text("\u{1b}"));
        assert_eq!(message_text("C:\\dir"), "C:\\\\dir");
    }

    #[test]
    fn only_the_listed_characters_are_escaped() {
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            let listed = matches!(u32::from(c), 0..=0x1f | 0x7f..=0x9f) && c != '\n'
                || "\u{61c}\u{200e}\u{200f}\u{2028}\u{2029}\u{202a}\u{202b}\u{202c}\u{202d}\
                    \u{202e}\u{2066}\u{2067}\u{2068}\u{2069}"
                    .contains(c);
            assert_eq!(is_escaped(c), listed, "{c:?}");
        }
    }

    /// Strings rich in what the rule is about, mixed with anything.
    fn tricky() -> impl Strategy<Value = String> {
        let special = prop_oneof![
            (0u32..0x20).prop_map(|u| char::from_u32(u).unwrap_or('\0')),
            (0x7fu32..0xa0).prop_map(|u| char::from_u32(u).unwrap_or('\0')),
            prop::sample::select(vec![
                '\n', '\\', '{', '}', 'u', '|', ' ', ':', '\u{61c}', '\u{200e}', '\u{202e}',
                '\u{2066}', '\u{2069}', '\u{2028}', '\u{301}', '日',
            ]),
        ];
        prop::collection::vec(prop_oneof![special, any::<char>()], 0..48)
            .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn message_text_has_no_control_and_marks_every_continuation(
            text in prop_oneof![tricky(), any::<String>()]
        ) {
            let shown = message_text(&text);
            prop_assert!(
                !shown.chars().any(|c| c != '\n' && (c.is_control() || is_escaped(c))),
                "{shown:?}"
            );
            for line in shown.split('\n').skip(1) {
                prop_assert!(line.starts_with(CONTINUATION), "{shown:?}");
            }
            prop_assert_eq!(shown.split('\n').count(), text.split('\n').count());
        }

        #[test]
        fn message_text_is_reversible(text in prop_oneof![tricky(), any::<String>()]) {
            prop_assert_eq!(from_message_text(&message_text(&text)), Some(text));
        }

        #[test]
        fn one_line_is_one_reversible_line(text in prop_oneof![tricky(), any::<String>()]) {
            let shown = one_line(&text);
            prop_assert!(!shown.chars().any(|c| c.is_control() || is_escaped(c)));
            prop_assert_eq!(unescape(&shown), Some(text.clone()));
            prop_assert_eq!(unescape(&escape_lines(&text)), Some(text));
        }
    }
}
