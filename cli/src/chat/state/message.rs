//! A message in the scrollback and the mark of one of ours: who wrote it,
//! its sanitised text and time, and how far it got (`sending`, `sent`,
//! `delivered`, `read` or `failed`; marks only move forward).

use hush_client_core::payload::{MessageId, ReceiptKind};
use hush_client_core::store::DeliveryStatus;

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

    pub(super) fn from_status(s: Option<DeliveryStatus>) -> Mark {
        match s {
            Some(DeliveryStatus::Read) => Mark::Read,
            Some(DeliveryStatus::Delivered) => Mark::Delivered,
            _ => Mark::Sent,
        }
    }

    pub(super) fn from_receipt(k: ReceiptKind) -> Mark {
        match k {
            ReceiptKind::Delivered => Mark::Delivered,
            ReceiptKind::Read => Mark::Read,
        }
    }

    /// `self` moved to `to` if that is forward.
    pub(super) fn advance(self, to: Mark) -> Mark {
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
