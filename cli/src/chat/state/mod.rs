//! The conversation as a pure state machine: messages and their marks,
//! notices, the header's facts (connection, typing, trust), the status
//! line, the scroll position and which incoming messages were displayed.
//! The terminal loop feeds it events; [`super::ui`] draws it. Nothing here
//! does I/O, so every rule is unit-tested.
//!
//! | module | holds |
//! | --- | --- |
//! | this one | [`ChatState`]: opening with the stored history, appending entries, which shown messages count as read |
//! | [`message`] | a scrollback entry, one message and the [`Mark`] of ours |
//! | [`header`] | the relay [`Link`], the peer's [`Trust`], the status line |
//! | [`events`] | the client's events applied to the state (sending, receipts, incoming, typing, presence, connection) |
//! | [`layout`] | wrapping to the terminal's width, the continuation marker, scrolling |

mod events;
mod header;
mod layout;
mod message;
#[cfg(test)]
mod test_support;

use std::collections::{HashMap, HashSet, VecDeque};

use hush_client_core::client::PresenceState;
use hush_client_core::payload::MessageId;
use hush_client_core::store::{Direction, HistoryEntry};

pub use header::{Link, Status, Trust};
pub use layout::{RenderLine, Style};
pub use message::{ChatMessage, Entry, Mark, Who};

use super::input::LineEditor;
use super::typing::{OurTyping, PeerTyping};
use crate::terminal_text::{escape_lines, one_line};

/// Entries kept in memory; older ones leave the scrollback (they stay in
/// the stored history).
pub const MAX_ENTRIES: usize = 2000;

/// The whole conversation screen.
#[derive(Debug)]
pub struct ChatState {
    pub me: String,
    pub peer: String,
    entries: VecDeque<Entry>,
    next_local: u64,
    early_marks: HashMap<MessageId, Mark>,
    /// Lines scrolled back from the bottom.
    scroll: usize,
    width: usize,
    height: usize,
    pub link: Link,
    pub trust: Trust,
    pub peer_typing: PeerTyping,
    pub our_typing: OurTyping,
    /// The peer's presence: `None` until known or when the peer does not
    /// let us see it.
    pub presence: Option<PresenceState>,
    pub status: Option<Status>,
    /// Whether the terminal has focus (assumed until told otherwise).
    pub focused: bool,
    /// Incoming messages (from the loaded history or live) not yet
    /// reported read.
    unread: HashSet<MessageId>,
    pub input: LineEditor,
}

impl ChatState {
    /// Carries over from the conversation `prev` what belongs to the
    /// session rather than to a peer (`/chat USER`): the connection state,
    /// focus, the viewport and the numbering of typed messages (so a late
    /// result for the previous peer's message matches nothing here).
    pub fn continue_from(&mut self, prev: &ChatState) {
        self.link = prev.link.clone();
        self.focused = prev.focused;
        self.next_local = prev.next_local;
        self.width = prev.width;
        self.height = prev.height;
    }

    /// The screen for `me` talking to `peer`, with the stored history
    /// (oldest first).
    pub fn new(me: &str, peer: &str, history: Vec<HistoryEntry>, trust: Trust) -> Self {
        let mut st = ChatState {
            me: me.to_owned(),
            peer: peer.to_owned(),
            entries: VecDeque::new(),
            next_local: 0,
            early_marks: HashMap::new(),
            scroll: 0,
            width: 80,
            height: 21,
            link: Link::Connected,
            trust,
            peer_typing: PeerTyping::default(),
            our_typing: OurTyping::default(),
            presence: None,
            status: None,
            focused: true,
            unread: HashSet::new(),
            input: LineEditor::default(),
        };
        for e in history {
            if e.unconfirmed_key.is_some() {
                // Sent under a key that was not the pinned one: never shown
                // as the peer's.
                st.notice(format!(
                    "! from a key that was not {peer}'s pinned key, not shown as theirs: {}",
                    one_line(&e.text)
                ));
                continue;
            }
            let (who, mark) = match e.direction {
                Direction::Incoming => {
                    // Stored before this chat opened (by `hush recv`, or a
                    // chat that never showed it with focus): it counts as
                    // read once shown here, like a live one. A receipt sent
                    // again for a message read before is harmless: the
                    // sender's status only moves forward. None for a key
                    // not trusted yet (see `take_read`).
                    if !e.flags.from_changed_key {
                        st.unread.insert(MessageId(e.message_id.0));
                    }
                    (Who::Peer, None)
                }
                Direction::Outgoing => (Who::Me, Some(Mark::from_status(e.status))),
            };
            st.push(Entry::Message(ChatMessage {
                // The store's id type holds the same 16 bytes.
                id: Some(MessageId(e.message_id.0)),
                local: 0,
                who,
                text: escape_lines(&e.text),
                at_ms: e.sent_at_ms,
                mark,
                key_changed: e.flags.from_changed_key,
            }));
        }
        st
    }

    #[cfg(test)]
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Appends an entry, keeping the view still if scrolled back.
    fn push(&mut self, entry: Entry) {
        if self.scroll > 0 {
            self.scroll += self.layout_entry(self.entries.len(), &entry).len();
        }
        self.entries.push_back(entry);
        if self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
        }
        if self.scroll > 0 {
            self.clamp_scroll();
        }
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        self.push(Entry::Notice(text.into()));
    }

    pub fn set_status(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status {
            text: text.into(),
            error,
        });
    }

    /// Ids of incoming messages now on screen while the terminal has
    /// focus: they count as read (once). Messages received under a changed,
    /// not yet trusted key get no receipt.
    pub fn take_read(&mut self) -> Vec<MessageId> {
        if !self.focused || self.unread.is_empty() {
            return Vec::new();
        }
        let shown: HashSet<usize> = self.visible().iter().map(|l| l.entry).collect();
        let mut read = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if let Entry::Message(m) = e
                && m.who == Who::Peer
                && let Some(id) = m.id
                && shown.contains(&i)
                && self.unread.remove(&id)
                // Like delivery receipts, none for a key not trusted yet.
                && !m.key_changed
            {
                read.push(id);
            }
        }
        // Unread ids whose entry left memory are dropped.
        if self.unread.len() > MAX_ENTRIES {
            self.unread.clear();
        }
        read
    }

    /// Messages of ours not yet accepted by the relay.
    pub fn pending(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Message(m) if m.mark == Some(Mark::Pending)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{from, id, state, stored_id};
    use super::*;
    use hush_client_core::store::DeliveryStatus;

    #[test]
    fn read_receipts_for_displayed_messages_while_focused_history_too() {
        let mut st = ChatState::new(
            "alice",
            "bob",
            vec![HistoryEntry::incoming(stored_id(99), "old", 0, 0)],
            Trust::default(),
        );
        st.set_viewport(40, 2);
        st.focused = false;
        st.incoming(&from("bob", 1, "one"));
        assert!(st.take_read().is_empty(), "not focused");
        st.focused = true;
        st.incoming(&from("bob", 2, "two"));
        st.incoming(&from("bob", 3, "three"));
        // Only "two" and "three" fit the 2-line view.
        let mut read = st.take_read();
        read.sort();
        assert_eq!(read, vec![id(2), id(3)]);
        assert!(st.take_read().is_empty(), "once");
        st.scroll_up(1);
        assert_eq!(st.take_read(), vec![id(1)]);
        // The message from the history, never marked read: once shown.
        st.scroll_up(1);
        assert_eq!(st.take_read(), vec![id(99)]);
        assert!(st.take_read().is_empty(), "once");
    }

    #[test]
    fn no_read_receipt_for_a_message_under_a_changed_key() {
        let mut st = state();
        let mut m = from("bob", 1, "trust me");
        m.flags.from_changed_key = true;
        st.incoming(&m);
        assert!(st.trust.key_changed);
        assert!(st.take_read().is_empty());
        st.incoming(&from("bob", 2, "ok"));
        assert_eq!(st.take_read(), vec![id(2)]);
    }

    #[test]
    fn history_sets_marks_and_trust_follows_key_changes() {
        let mut out = HistoryEntry::outgoing(stored_id(5), "old", 0);
        out.status = Some(DeliveryStatus::Delivered);
        let mut st = ChatState::new("alice", "bob", vec![out], Trust::default());
        assert!(
            st.entries()
                .any(|e| matches!(e, Entry::Message(m) if m.mark == Some(Mark::Delivered)))
        );
        st.identity_changed("bob");
        assert!(st.trust.key_changed);
        assert!(
            matches!(st.entries().last(), Some(Entry::Notice(n)) if n.contains("hush trust bob"))
        );
    }
}
