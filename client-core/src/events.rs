//! What the application is told: [`Event`]s with the [`IncomingMessage`]
//! and [`ConnectionState`] they carry. Produced by the synchronous
//! `engine` (messages, receipts, typing) and by the async
//! client (connection state, presence).

use std::time::Duration;

use hush_protocol::UserId;
use hush_protocol::frame::PresenceEntry;

use crate::payload::{MessageId, ReceiptKind, TypingState};
use crate::store::MessageFlags;

/// A text message received and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// Sender, as authenticated by the relay and by the session.
    pub from: UserId,
    /// Sender-chosen message id (receipts refer to it).
    pub id: MessageId,
    /// The text.
    pub text: String,
    /// Sender's clock (ms).
    pub sent_at_ms: u64,
    /// When the relay accepted it (ms, relay clock).
    pub accepted_at_ms: u64,
    /// The relay's envelope id.
    pub envelope_id: Option<u64>,
    /// Warnings: unverified sender, sender's key changed.
    pub flags: MessageFlags,
}

/// What a connection state change was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Authenticated to the relay.
    Connected,
    /// The connection ended; the client will retry after `retry_in`.
    Disconnected {
        /// Why, as far as known.
        reason: String,
        /// When the next attempt starts.
        retry_in: Duration,
    },
    /// Another connection of this user took over (close code 4000); the
    /// client stopped.
    Replaced,
    /// The client stopped for good.
    Stopped {
        /// Why.
        reason: String,
    },
}

/// Something the application is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A text message, already stored in the history.
    Message(IncomingMessage),
    /// A typing indicator: `Started` when a peer starts typing (a refresh
    /// is not repeated), then exactly one `Stopped`, sent by the peer or
    /// after the client's `typing_timeout` (`ClientConfig`) without a refresh, or when the
    /// connection is lost.
    Typing {
        /// Who is typing.
        from: UserId,
        /// Started or stopped.
        state: TypingState,
    },
    /// A delivery or read receipt for messages we sent.
    Receipt {
        /// Who sent the receipt.
        from: UserId,
        /// Delivered or read.
        kind: ReceiptKind,
        /// Which of our messages.
        message_ids: Vec<MessageId>,
    },
    /// A subscribed user's presence as we may see it: the snapshot after
    /// each (re)subscription, then every change the relay pushes.
    Presence(PresenceEntry),
    /// A text decrypted by a session whose identity is not the one pinned
    /// for `message.from`: a new key not yet trusted, or one the user
    /// rejected. It is stored (marked) but must never be shown as a message
    /// from that contact: anyone who controls the relay can produce one.
    UnconfirmedMessage {
        /// The message, as the unconfirmed key sent it.
        message: IncomingMessage,
        /// Fingerprint of the identity that sent it.
        fingerprint: String,
        /// Whether the user rejected that key (`reject`).
        rejected: bool,
    },
    /// A peer presented an identity key different from the pinned one.
    /// Sending to them stops until the user re-trusts.
    IdentityChanged {
        /// The peer.
        user: UserId,
    },
    /// An envelope that could not be decrypted or parsed (forged, corrupted,
    /// or from a session this device no longer has). It is acknowledged and
    /// never shown as a message.
    Undecryptable {
        /// The relay-stamped sender.
        from: UserId,
        /// The relay's envelope id.
        envelope_id: Option<u64>,
        /// What failed.
        reason: String,
    },
    /// Connection state.
    Connection(ConnectionState),
    /// Every envelope that was queued when the client connected has been
    /// processed.
    Drained,
}
