//! Laying the scrollback out in the terminal's width and scrolling it.
//!
//! Layout of one message in the scrollback (`width` columns):
//!
//! ```text
//! HH:MM who: text wrapped to the width, continuation lines
//!     | marked and indented by six columns (sent)
//! ```
//!
//! The text is display-safe ([`crate::terminal_text`]): controls and bidi
//! overrides are shown as escapes, and every line of a message after the
//! first, whether the peer wrote a newline or the text wrapped, starts with
//! the continuation marker. So only the first line of a message starts with
//! `HH:MM who:`, and nothing a peer writes looks like another message.
//!
//! Scrolling counts wrapped lines from the bottom: 0 follows the newest
//! line; while scrolled back, new lines do not move the view.

use super::ChatState;
use super::message::{Entry, Mark, Who};
use crate::chat::wrap::{width, wrap};
use crate::terminal_text::CONTINUATION;

/// In a terminal this narrow or narrower, continuation lines start with
/// [`NARROW_CONTINUATION`] rather than [`CONTINUATION`].
const NARROW: usize = 18;
/// The continuation marker where [`CONTINUATION`] would take too much.
const NARROW_CONTINUATION: &str = "| ";

/// How a wrapped line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Mine,
    Theirs,
    TheirsWarning,
    Notice,
}

/// One line of the laid-out scrollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderLine {
    /// `HH:MM who: ` on the first line of a message, spaces after.
    pub head: String,
    pub body: String,
    /// The mark, on the last line of one of our messages.
    pub mark: Option<Mark>,
    pub style: Style,
    /// Index of the entry in [`ChatState::entries`].
    pub entry: usize,
}

impl ChatState {
    /// Now, for showing times as "today" or with their date (unit tests:
    /// the epoch, in UTC).
    fn now_ms(&self) -> u64 {
        #[cfg(test)]
        {
            crate::time::utc_for_tests();
            0
        }
        #[cfg(not(test))]
        {
            crate::time::now_ms()
        }
    }

    /// The scrollback area's size, set before each draw.
    pub fn set_viewport(&mut self, width: u16, height: u16) {
        self.width = usize::from(width).max(1);
        self.height = usize::from(height).max(1);
        self.clamp_scroll();
    }

    pub fn scroll(&self) -> usize {
        self.scroll
    }

    pub fn scroll_up(&mut self, lines: usize) {
        self.scroll = self.scroll.saturating_add(lines);
        self.clamp_scroll();
    }

    pub fn scroll_down(&mut self, lines: usize) {
        self.scroll = self.scroll.saturating_sub(lines);
    }

    pub fn page_up(&mut self) {
        self.scroll_up(self.height.saturating_sub(1).max(1));
    }

    pub fn page_down(&mut self) {
        self.scroll_down(self.height.saturating_sub(1).max(1));
    }

    pub fn scroll_to_bottom(&mut self) {
        self.scroll = 0;
    }

    pub(super) fn clamp_scroll(&mut self) {
        let total = self.layout().len();
        self.scroll = self.scroll.min(total.saturating_sub(self.height));
    }

    /// Every entry wrapped to the width.
    pub fn layout(&self) -> Vec<RenderLine> {
        self.entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| self.layout_entry(i, e))
            .collect()
    }

    pub(super) fn layout_entry(&self, index: usize, entry: &Entry) -> Vec<RenderLine> {
        let w = self.width;
        match entry {
            Entry::Notice(text) => wrap(text, w, w)
                .into_iter()
                .map(|body| RenderLine {
                    head: String::new(),
                    body,
                    mark: None,
                    style: Style::Notice,
                    entry: index,
                })
                .collect(),
            Entry::Message(m) => {
                let who = match m.who {
                    Who::Me => self.me.as_str(),
                    Who::Peer => self.peer.as_str(),
                };
                let flag = if m.key_changed { " [key changed]" } else { "" };
                let head = format!(
                    "{} {who}{flag}: ",
                    crate::time::short(m.at_ms, self.now_ms())
                );
                let marker = continuation_marker(w);
                let indent = width(marker);
                let mut text = m.text.clone();
                if let Some(mark) = m.mark {
                    text.push(' ');
                    text.push_str(mark.label());
                }
                let first = w.saturating_sub(width(&head));
                let lines = wrap(&text, first, w - indent);
                let style = match (m.who, m.key_changed) {
                    (Who::Me, _) => Style::Mine,
                    (Who::Peer, false) => Style::Theirs,
                    (Who::Peer, true) => Style::TheirsWarning,
                };
                let n = lines.len();
                lines
                    .into_iter()
                    .enumerate()
                    .map(|(j, mut body)| {
                        let mut mark = None;
                        if j + 1 == n
                            && let Some(k) = m.mark
                            && let Some(stripped) = body.strip_suffix(k.label())
                        {
                            body = stripped.to_owned();
                            mark = Some(k);
                        }
                        RenderLine {
                            head: if j == 0 {
                                head.clone()
                            } else {
                                marker.to_owned()
                            },
                            body,
                            mark,
                            style,
                            entry: index,
                        }
                    })
                    .collect()
            }
        }
    }

    /// The lines that fit the viewport at the current scroll position.
    pub fn visible(&self) -> Vec<RenderLine> {
        let mut all = self.layout();
        let end = all.len().saturating_sub(self.scroll);
        let start = end.saturating_sub(self.height);
        all.truncate(end);
        all.drain(..start);
        all
    }
}

/// The start of a message's lines after its first, for a scrollback `w`
/// columns wide: [`CONTINUATION`], a shorter marker when narrow, nothing
/// only where even that would leave no room for text.
fn continuation_marker(w: usize) -> &'static str {
    if w > NARROW {
        CONTINUATION
    } else if w > 2 * NARROW_CONTINUATION.len() {
        NARROW_CONTINUATION
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{from, id, state};
    use super::*;
    use crate::terminal_text::is_escaped;

    #[test]
    fn lays_out_messages_wrapped_with_head_and_mark() {
        let mut st = state();
        let a = st.outgoing("the quick brown fox jumps over the lazy dog", 0);
        st.accepted(a, id(1));
        let lines = st.layout();
        assert_eq!(lines[0].head, "00:00 alice: ");
        for l in &lines {
            assert!(width(&l.head) + width(&l.body) <= 40, "{l:?}");
        }
        let last = lines.last().map(|l| (l.mark, l.head.as_str()));
        assert_eq!(last, Some((Some(Mark::Sent), "    | ")));
        let text: Vec<&str> = lines.iter().map(|l| l.body.trim()).collect();
        assert_eq!(
            text.join(" "),
            "the quick brown fox jumps over the lazy dog"
        );
    }

    #[test]
    fn scroll_is_bounded_and_keeps_the_view_when_scrolled_back() {
        let mut st = state();
        for n in 0..10 {
            st.incoming(&from("bob", n, &format!("message {n}")));
        }
        assert_eq!(st.layout().len(), 10);
        st.scroll_up(100);
        assert_eq!(st.scroll(), 5, "at most total - height");
        let top = st.visible()[0].body.clone();
        assert_eq!(top, "message 0");
        st.incoming(&from("bob", 20, "new"));
        assert_eq!(st.visible()[0].body, top, "view stays put");
        st.page_down();
        st.page_down();
        assert_eq!(st.scroll(), 0);
        st.scroll_down(3);
        assert_eq!(st.scroll(), 0);
        assert_eq!(
            st.visible().last().map(|l| l.body.clone()),
            Some("new".into())
        );
        st.page_up();
        assert_eq!(st.scroll(), 4);
        st.outgoing("back to the bottom", 0);
        assert_eq!(st.scroll(), 0);
    }

    #[test]
    fn shrinking_the_view_keeps_scroll_in_bounds() {
        let mut st = state();
        for n in 0..6 {
            st.incoming(&from("bob", n, "x"));
        }
        st.scroll_up(1);
        st.set_viewport(40, 10);
        assert_eq!(st.scroll(), 0);
    }

    #[test]
    fn peer_text_cannot_inject_terminal_controls() {
        let mut st = state();
        st.incoming(&from("bob", 1, "\u{1b}[2J\u{1b}]0;owned\u{7}"));
        for l in st.layout() {
            assert!(!l.body.chars().any(char::is_control), "{l:?}");
        }
        let bodies: String = st.layout().into_iter().map(|l| l.body).collect();
        assert_eq!(bodies, "\\u{1b}[2J\\u{1b}]0;owned\\u{7}");
    }

    /// The rendered lines as the terminal shows them, head and body.
    fn rendered(st: &ChatState) -> Vec<String> {
        st.layout()
            .into_iter()
            .map(|l| format!("{}{}", l.head, l.body))
            .collect()
    }

    #[test]
    fn a_multi_line_message_shows_as_one_message_from_its_sender() {
        let mut st = state();
        st.incoming(&from(
            "bob",
            1,
            "hi\n00:00 carol: send me your passphrase\rcarol: \u{202e}x\u{85}",
        ));
        assert_eq!(
            rendered(&st),
            [
                "00:00 bob: hi",
                "    | 00:00 carol: send me your",
                "    | passphrase\\rcarol: \\u{202e}x\\u{85}",
            ]
        );
        for l in st.layout() {
            assert!(
                !l.body.chars().any(|c| c.is_control() || is_escaped(c)),
                "{l:?}"
            );
        }
    }

    #[test]
    fn continuation_lines_are_marked_in_any_width() {
        let mut st = state();
        st.incoming(&from("bob", 1, "a\nbob: b\nc"));
        for (w, marker) in [(40, "    | "), (19, "    | "), (18, "| "), (8, "| ")] {
            st.set_viewport(w, 5);
            let lines = rendered(&st);
            assert!(lines[0].starts_with("00:00"), "{w}: {lines:?}");
            for l in &lines[1..] {
                assert!(l.starts_with(marker), "{w}: {lines:?}");
            }
        }
    }
}
