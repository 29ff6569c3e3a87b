//! How the client's events change the conversation: our messages being
//! sent, accepted or failing, receipts (also those that overtake the
//! relay's `accepted`), incoming messages, typing, presence, identity key
//! changes and the connection.

use hush_client_core::client::{ConnectionState, IncomingMessage, PresenceEntry};
use hush_client_core::payload::{MessageId, ReceiptKind, TypingState};

use super::message::{ChatMessage, Entry, Mark, Who};
use super::{ChatState, Link};
use crate::terminal_text::{escape_lines, one_line};

/// Receipts remembered for messages whose id is not known yet (a receipt
/// can overtake the relay's `accepted`).
const MAX_EARLY_MARKS: usize = 1024;

impl ChatState {
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
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{from, id, mark_of, state};
    use super::*;
    use hush_client_core::UserId;
    use hush_client_core::client::PresenceState;

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
}
