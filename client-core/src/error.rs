//! [`ClientError`]: everything that can go wrong in a client, offline
//! (store, profile, keys) or online (relay, connection), in one enum.

use hush_protocol::{ErrorCode, UserId, UserIdError};

use crate::store::StoreError;

/// What can go wrong in a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The local store failed (includes a wrong passphrase).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored secrets did not decode.
    #[error("profile data is corrupt: {0}")]
    Pickle(#[from] crate::pickle::PickleError),
    /// A profile without its identity or prekeys.
    #[error("profile is incomplete: no {what}")]
    ProfileIncomplete {
        /// What is missing.
        what: &'static str,
    },
    /// Not a valid user id.
    #[error(transparent)]
    InvalidUserId(#[from] UserIdError),
    /// The relay URL is not usable.
    #[error("invalid relay URL {url:?}: {reason}")]
    InvalidRelayUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection to the relay could be made.
    #[error("relay {url} unreachable: {reason}")]
    Unreachable {
        /// The relay's URL.
        url: String,
        /// The last failure.
        reason: String,
    },
    /// The relay refused our key for this user id.
    #[error("the relay refused authentication: {message}")]
    AuthRejected {
        /// The relay's explanation.
        message: String,
    },
    /// The recipient is not registered (or has no keys) on the relay.
    #[error("unknown user {user}")]
    UnknownUser {
        /// Who.
        user: String,
    },
    /// The peer's identity key changed and was not re-trusted.
    #[error("the identity key of {user} changed; compare safety numbers, then trust the new key")]
    IdentityChanged {
        /// The peer.
        user: UserId,
    },
    /// `trust` was asked while no key change is pending for this contact.
    #[error("no changed identity key is pending for {user}")]
    NoKeyChangePending {
        /// The peer.
        user: UserId,
    },
    /// The safety number given to `trust` is not the one of the pending
    /// key (a typo, the old number, or the pending key changed again).
    #[error(
        "that is not the safety number of the new key of {user}; compare again \
         (the number changes if the key changed again)"
    )]
    SafetyNumberMismatch {
        /// The peer.
        user: UserId,
    },
    /// The user blocked this peer.
    #[error("{user} is blocked; unblock them first")]
    Blocked {
        /// The peer.
        user: UserId,
    },
    /// The relay's challenge names another relay than the one this profile
    /// registered with: a relay passing another relay's challenge through
    /// (to get our signature for it), or a different relay at this address.
    #[error(
        "the relay says it is {presented:?} but this profile belongs to relay {pinned:?}; \
         refusing to authenticate"
    )]
    RelayIdMismatch {
        /// The relay id recorded in the profile.
        pinned: String,
        /// The relay id the challenge named.
        presented: String,
    },
    /// Messages to one's own user id are refused: with one device per
    /// user there is nobody to read them.
    #[error("you cannot send messages to yourself")]
    SelfRecipient,
    /// No contact of that name in the profile.
    #[error("no contact named {user}")]
    UnknownContact {
        /// Who.
        user: UserId,
    },
    /// Typing indicators to this peer are paused: the most that may go
    /// unanswered ([`MAX_EPHEMERAL_GAP`](crate::limits::MAX_EPHEMERAL_GAP))
    /// went since the last message or receipt to them. Sending one resumes
    /// them.
    #[error("typing indicators to {user} are paused until a message goes")]
    TypingPaused {
        /// The peer.
        user: UserId,
    },
    /// The recipient's mailbox is full.
    #[error("the recipient's mailbox is full")]
    MailboxFull,
    /// Too many requests.
    #[error("rate limited by the relay")]
    RateLimited,
    /// A request over one of its caps (presence allow list, query,
    /// subscriptions), refused before it was sent. (A relay configured
    /// with lower caps answers `limit_exceeded`: [`ClientError::Relay`].)
    #[error("too many {what} (at most {max})")]
    LimitExceeded {
        /// What.
        what: &'static str,
        /// The cap.
        max: usize,
    },
    /// Any other error the relay answered.
    #[error("relay error {code}: {message}")]
    Relay {
        /// The relay's error code.
        code: ErrorCode,
        /// Its explanation.
        message: String,
    },
    /// The relay broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection dropped before the reply came.
    #[error("disconnected from the relay")]
    Disconnected,
    /// No reply in time.
    #[error("the relay did not answer in time")]
    Timeout,
    /// Another connection of this user replaced this client.
    #[error("another connection of this user took over")]
    Replaced,
    /// The client has stopped.
    #[error("the client has stopped")]
    Stopped,
    /// Session setup failed (bad bundle signatures, non-contributory keys).
    #[error("session setup failed: {0}")]
    X3dh(#[from] crate::x3dh::X3dhError),
    /// Encryption failed.
    #[error("encryption failed: {0}")]
    Encrypt(#[from] crate::ratchet::EncryptError),
    /// A payload could not be encoded (text too long).
    #[error("message cannot be encoded: {0}")]
    Payload(#[from] crate::payload::PayloadError),
    /// Prekey generation failed.
    #[error("prekeys: {0}")]
    Prekey(#[from] crate::prekey::PrekeyError),
    /// A key presented by the relay's directory failed verification.
    #[error("directory key invalid: {0}")]
    Key(#[from] crate::identity::KeyError),
    /// The TLS set-up for a `wss://` relay is unusable (an unreadable CA
    /// file, no trusted roots at all).
    #[error("TLS: {0}")]
    Tls(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

#[cfg_attr(not(feature = "client"), allow(dead_code))]
impl ClientError {
    pub(crate) fn from_relay(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::MailboxFull => Self::MailboxFull,
            ErrorCode::RateLimited => Self::RateLimited,
            ErrorCode::UnknownUser => Self::UnknownUser { user: message },
            ErrorCode::AuthFailed => Self::AuthRejected { message },
            code => Self::Relay { code, message },
        }
    }

    /// Whether trying again later may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Disconnected | Self::Timeout | Self::Protocol(_)
        )
    }
}
