//! The conversation as a pure state machine: messages and their marks,
//! notices, the header's facts (connection, typing, trust), the status
//! line, the scroll position and which incoming messages were displayed.
//! The terminal loop feeds it events; [`super::ui`] draws it. Nothing here
//! does I/O, so every rule is unit-tested.
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

use std::collections::{HashMap, HashSet, VecDeque};

use hush_client_core::client::{ConnectionState, IncomingMessage, PresenceEntry, PresenceState};
use hush_client_core::payload::{MessageId, ReceiptKind, TypingState};
use hush_client_core::store::{Contact, DeliveryStatus, Direction, HistoryEntry};

use super::input::LineEditor;
use super::typing::{OurTyping, PeerTyping};
use super::wrap::{width, wrap};
use crate::terminal_text::{CONTINUATION, escape_lines, one_line};

/// Entries kept in memory; older ones leave the scrollback (they stay in
/// the stored history).
pub const MAX_ENTRIES: usize = 2000;
/// Receipts remembered for messages whose id is not known yet (a receipt
/// can overtake the relay's `accepted`).
const MAX_EARLY_MARKS: usize = 1024;
/// In a terminal this narrow or narrower, continuation lines start with
/// [`NARROW_CONTINUATION`] rather than [`CONTINUATION`].
const NARROW: usize = 18;
/// The continuation marker where [`CONTINUATION`] would take too much.
const NARROW_CONTINUATION: &str = "| ";

/// The state of one of our messages. Marks only move forward, in this
/// order; `Failed` only replaces `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// Not yet accepted by the relay.
    Pending,
    /// Not sent; the status line said why.
    Failed,
    /// Accepted by the relay, queued for the peer.
    Sent,
    /// On the peer's device.
    Delivered,
    /// Displayed by the peer.
    Read,
}

impl Mark {
    /// The mark shown after the text (also in `/help`).
    pub fn label(self) -> &'static str {
        match self {
            Mark::Pending => "(sending)",
            Mark::Failed => "(failed)",
            Mark::Sent => "(sent)",
            Mark::Delivered => "(delivered)",
            Mark::Read => "(read)",
        }
    }

    fn from_status(s: Option<DeliveryStatus>) -> Mark {
        match s {
            Some(DeliveryStatus::Read) => Mark::Read,
            Some(DeliveryStatus::Delivered) => Mark::Delivered,
            _ => Mark::Sent,
        }
    }

    fn from_receipt(k: ReceiptKind) -> Mark {
        match k {
            ReceiptKind::Delivered => Mark::Delivered,
            ReceiptKind::Read => Mark::Read,
        }
    }

    /// `self` moved to `to` if that is forward.
    fn advance(self, to: Mark) -> Mark {
        match (self, to) {
            (Mark::Pending, _) => to,
            (Mark::Failed, _) | (_, Mark::Pending | Mark::Failed) => self,
            _ => self.max(to),
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Me,
    Peer,
}

/// One message in the scrollback.
#[derive(Debug, Clone)]
pub struct ChatMessage {
    /// Known once accepted (ours) or always (theirs).
    pub id: Option<MessageId>,
    /// Our number for a message being sent, to match the send's result.
    pub local: u64,
    pub who: Who,
    /// Sanitised text.
    pub text: String,
    pub at_ms: u64,
    /// Ours only.
    pub mark: Option<Mark>,
    /// Theirs: received under a changed, not yet trusted identity key.
    pub key_changed: bool,
}

/// A scrollback entry.
#[derive(Debug, Clone)]
pub enum Entry {
    Message(ChatMessage),
    /// A line from hush itself (help, warnings).
    Notice(String),
}

/// The relay connection as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Not connected yet since the chat opened: history is shown, typed
    /// messages wait (`sending`) for the connection.
    Connecting,
    Connected,
    Reconnecting,
    /// The client stopped (replaced or given up); the chat can only quit.
    Stopped(String),
}

/// What we know about the peer's identity key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trust {
    /// A contact exists (keys pinned).
    pub known: bool,
    /// The safety number was compared.
    pub verified: bool,
    /// A different key was presented and not re-trusted.
    pub key_changed: bool,
    /// A message request: the peer wrote first and was not answered or
    /// accepted yet (no read receipts go to them).
    pub request: bool,
    /// The user blocked the peer.
    pub blocked: bool,
}

impl Trust {
    pub fn of(contact: Option<&Contact>) -> Self {
        match contact {
            None => Trust::default(),
            Some(c) => Trust {
                known: true,
                verified: c.verified,
                key_changed: c.has_pending_key_change(),
                request: c.request,
                blocked: c.blocked,
            },
        }
    }
}

/// The status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

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
            crate::commands::now_ms()
        }
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

    /// Shows our message as pending; returns its local number for
    /// [`Self::accepted`] / [`Self::failed`]. Scrolls to the bottom.
    pub fn outgoing(&mut self, text: &str, now_ms: u64) -> u64 {
        self.next_local += 1;
        let local = self.next_local;
        self.scroll = 0;
        self.push(Entry::Message(ChatMessage {
            id: None,
            local,
            who: Who::Me,
            text: escape_lines(text),
            at_ms: now_ms,
            mark: Some(Mark::Pending),
            key_changed: false,
        }));
        local
    }

    fn mine_mut(&mut self, local: u64) -> Option<&mut ChatMessage> {
        self.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Message(m) if m.who == Who::Me && m.local == local && local != 0 => Some(m),
            _ => None,
        })
    }

    /// The relay accepted our message `local` as `id`.
    pub fn accepted(&mut self, local: u64, id: MessageId) {
        let early = self.early_marks.remove(&id);
        self.trust.known = true;
        if let Some(m) = self.mine_mut(local) {
            m.id = Some(id);
            let mut mark = m.mark.unwrap_or(Mark::Pending).advance(Mark::Sent);
            if let Some(e) = early {
                mark = mark.advance(e);
            }
            m.mark = Some(mark);
        }
    }

    /// Sending `local` failed with `why`.
    pub fn failed(&mut self, local: u64, why: String) {
        if let Some(m) = self.mine_mut(local) {
            m.mark = Some(m.mark.unwrap_or(Mark::Pending).advance(Mark::Failed));
        }
        self.set_status(format!("not sent: {why}"), true);
    }

    /// A receipt from `from` for our messages `ids`.
    pub fn receipt(&mut self, from: &str, kind: ReceiptKind, ids: &[MessageId]) {
        if from != self.peer {
            return;
        }
        let to = Mark::from_receipt(kind);
        for id in ids {
            let mut found = false;
            for e in self.entries.iter_mut() {
                if let Entry::Message(m) = e
                    && m.who == Who::Me
                    && m.id.as_ref() == Some(id)
                {
                    m.mark = m.mark.map(|k| k.advance(to));
                    found = true;
                }
            }
            if !found {
                if self.early_marks.len() >= MAX_EARLY_MARKS {
                    self.early_marks.clear();
                }
                let e = self.early_marks.entry(*id).or_insert(to);
                *e = (*e).max(to);
            }
        }
    }

    /// An incoming message: shown if it is from the peer (once, even if it
    /// was already in the loaded history); otherwise a notice in the status
    /// line. Returns whether it was added to the scrollback.
    pub fn incoming(&mut self, m: &IncomingMessage) -> bool {
        if m.from.as_str() != self.peer {
            self.set_status(
                format!("new message from {} (/chat {})", m.from, m.from),
                false,
            );
            return false;
        }
        self.peer_typing.message();
        if m.flags.from_changed_key {
            self.trust.key_changed = true;
        }
        self.unread.insert(m.id);
        let seen = self
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Message(x) if x.who == Who::Peer && x.id == Some(m.id)));
        if seen {
            return false;
        }
        self.push(Entry::Message(ChatMessage {
            id: Some(m.id),
            local: 0,
            who: Who::Peer,
            text: escape_lines(&m.text),
            at_ms: m.sent_at_ms,
            mark: None,
            key_changed: m.flags.from_changed_key,
        }));
        true
    }

    /// A message decrypted under a key that is not the peer's pinned one:
    /// a notice, never a message from the peer.
    pub fn unconfirmed(&mut self, m: &IncomingMessage, fingerprint: &str, rejected: bool) {
        if m.from.as_str() != self.peer {
            self.set_status(
                format!(
                    "a message under an unconfirmed key claims to be from {}",
                    m.from
                ),
                true,
            );
            return;
        }
        let whose = if rejected {
            "a key you REJECTED"
        } else {
            "an UNCONFIRMED key"
        };
        self.notice(format!(
            "! from {whose} claiming to be {p} (fingerprint {fingerprint}), not shown as theirs: {}",
            one_line(&m.text),
            p = self.peer
        ));
    }

    pub fn typing(&mut self, from: &str, state: TypingState) {
        if from == self.peer {
            self.peer_typing.indicator(state);
        }
    }

    /// A presence snapshot or change; only the peer's is shown.
    pub fn presence(&mut self, entry: &PresenceEntry) {
        if entry.user.as_str() == self.peer {
            self.presence = entry.state;
        }
    }

    /// The peer presented a new identity key.
    pub fn identity_changed(&mut self, user: &str) {
        if user == self.peer {
            self.trust.key_changed = true;
            self.notice(format!(
                "! the identity key of {p} changed: sending stops. Quit, compare the new \
                 safety number (`hush safety-number {p}`) with {p} out of band, then \
                 `hush trust {p} --safety-number DIGITS` or `hush reject {p}`",
                p = self.peer
            ));
        } else {
            self.set_status(format!("the identity key of {user} changed"), true);
        }
    }

    pub fn connection(&mut self, state: &ConnectionState) {
        match state {
            ConnectionState::Connected => {
                if self.link == Link::Reconnecting {
                    self.set_status("connected again", false);
                } else if self.link == Link::Connecting
                    && self.status.as_ref().is_some_and(|s| s.error)
                {
                    self.set_status("connected", false);
                }
                self.link = Link::Connected;
            }
            ConnectionState::Disconnected { reason, retry_in } if self.link == Link::Connecting => {
                self.set_status(
                    format!(
                        "relay unreachable ({}); retrying in {}s, messages wait until then",
                        one_line(reason),
                        retry_in.as_secs().max(1)
                    ),
                    true,
                );
            }
            ConnectionState::Disconnected { reason, .. } => {
                // Unknown until the renewed subscription says again.
                self.presence = None;
                self.link = Link::Reconnecting;
                self.set_status(
                    format!("connection lost ({}); reconnecting", one_line(reason)),
                    true,
                );
            }
            ConnectionState::Replaced => {
                self.presence = None;
                self.link = Link::Stopped("replaced".into());
                self.notice("! another hush session of this user took over; /quit to leave");
            }
            ConnectionState::Stopped { reason } => {
                self.presence = None;
                self.link = Link::Stopped("stopped".into());
                self.notice(format!(
                    "! disconnected for good: {}; /quit to leave",
                    one_line(reason)
                ));
            }
            _ => {}
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

    fn clamp_scroll(&mut self) {
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

    fn layout_entry(&self, index: usize, entry: &Entry) -> Vec<RenderLine> {
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
    use super::*;
    use crate::terminal_text::is_escaped;
    use hush_client_core::UserId;
    use hush_client_core::store::MessageFlags;

    fn id(n: u8) -> MessageId {
        MessageId([n; 16])
    }

    fn stored_id(n: u8) -> hush_client_core::store::MessageId {
        hush_client_core::store::MessageId([n; 16])
    }

    fn state() -> ChatState {
        let mut st = ChatState::new("alice", "bob", Vec::new(), Trust::default());
        st.set_viewport(40, 5);
        st
    }

    fn from(user: &str, n: u8, text: &str) -> IncomingMessage {
        IncomingMessage {
            from: UserId::try_from(user).unwrap_or_else(|e| panic!("{e}")),
            id: id(n),
            text: text.to_owned(),
            sent_at_ms: 0,
            accepted_at_ms: 0,
            envelope_id: None,
            flags: MessageFlags::default(),
        }
    }

    fn mark_of(st: &ChatState, local: u64) -> Option<Mark> {
        st.entries().find_map(|e| match e {
            Entry::Message(m) if m.local == local => m.mark,
            _ => None,
        })
    }

    #[test]
    fn marks_only_move_forward() {
        let mut st = state();
        let a = st.outgoing("hi", 0);
        assert_eq!(mark_of(&st, a), Some(Mark::Pending));
        st.accepted(a, id(1));
        assert_eq!(mark_of(&st, a), Some(Mark::Sent));
        st.receipt("bob", ReceiptKind::Read, &[id(1)]);
        assert_eq!(mark_of(&st, a), Some(Mark::Read));
        st.receipt("bob", ReceiptKind::Delivered, &[id(1)]);
        assert_eq!(mark_of(&st, a), Some(Mark::Read), "read never goes back");
        st.accepted(a, id(1));
        assert_eq!(mark_of(&st, a), Some(Mark::Read));
    }

    #[test]
    fn receipt_before_accepted_is_applied_on_accept() {
        let mut st = state();
        let a = st.outgoing("hi", 0);
        st.receipt("bob", ReceiptKind::Delivered, &[id(7)]);
        assert_eq!(mark_of(&st, a), Some(Mark::Pending));
        st.accepted(a, id(7));
        assert_eq!(mark_of(&st, a), Some(Mark::Delivered));
    }

    #[test]
    fn receipts_from_others_are_ignored_and_failures_stick() {
        let mut st = state();
        let a = st.outgoing("hi", 0);
        st.accepted(a, id(1));
        st.receipt("carol", ReceiptKind::Read, &[id(1)]);
        assert_eq!(mark_of(&st, a), Some(Mark::Sent));
        let b = st.outgoing("again", 0);
        st.failed(b, "rate limited by the relay".into());
        assert_eq!(mark_of(&st, b), Some(Mark::Failed));
        assert!(st.status.as_ref().is_some_and(|s| s.error));
        st.receipt("bob", ReceiptKind::Read, &[id(2)]);
        assert_eq!(mark_of(&st, b), Some(Mark::Failed));
        assert_eq!(st.pending(), 0);
    }

    #[test]
    fn messages_from_others_only_raise_a_notice() {
        let mut st = state();
        assert!(!st.incoming(&from("carol", 1, "psst")));
        assert_eq!(st.entries().count(), 0);
        assert!(
            st.status
                .as_ref()
                .is_some_and(|s| s.text.contains("new message from carol"))
        );
        assert!(st.incoming(&from("bob", 2, "hello")));
        assert!(!st.incoming(&from("bob", 2, "hello")), "shown once");
        assert_eq!(st.entries().count(), 1);
    }

    #[test]
    fn a_message_from_the_peer_ends_their_typing() {
        let mut st = state();
        st.typing("bob", TypingState::Started);
        assert!(st.peer_typing.is_typing());
        st.incoming(&from("bob", 1, "done"));
        assert!(!st.peer_typing.is_typing());
        st.typing("carol", TypingState::Started);
        assert!(!st.peer_typing.is_typing());
    }

    #[test]
    fn only_the_peers_presence_is_kept() {
        let mut st = state();
        let visible = PresenceState {
            online: true,
            last_seen_ms: None,
        };
        st.presence(&PresenceEntry {
            user: UserId::try_from("carol").unwrap_or_else(|e| panic!("{e}")),
            state: Some(visible),
        });
        assert_eq!(st.presence, None);
        let bob = UserId::try_from("bob").unwrap_or_else(|e| panic!("{e}"));
        st.presence(&PresenceEntry {
            user: bob.clone(),
            state: Some(visible),
        });
        assert_eq!(st.presence, Some(visible));
        st.presence(&PresenceEntry::hidden(bob.clone()));
        assert_eq!(st.presence, None, "hidden again after a deny");
        st.presence(&PresenceEntry {
            user: bob,
            state: Some(visible),
        });
        st.connection(&ConnectionState::Disconnected {
            reason: "lost".into(),
            retry_in: std::time::Duration::from_secs(1),
        });
        assert_eq!(st.presence, None, "not shown while we cannot know");
    }

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
