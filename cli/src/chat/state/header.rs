//! The facts shown around the scrollback: the relay connection and what we
//! know of the peer's identity key (header), and the status line.

use hush_client_core::store::Contact;

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
