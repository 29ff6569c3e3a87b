//! Why a session refused a message: [`DecryptError`] for incoming ones,
//! [`EncryptError`] for outgoing ones.

use crate::keys::NonContributory;
use crate::message::MessageError;
use crate::padding::BadPadding;
use crate::prekey::PrekeyError;
use crate::x3dh::X3dhError;

/// Why an incoming message was not decrypted. In every case the session
/// state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The bytes are not a well-formed message (version, type, length).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The prekey message's handshake was refused.
    #[error(transparent)]
    X3dh(#[from] X3dhError),
    /// This message number in this chain was already decrypted (or its
    /// skipped key was evicted): a replay or a duplicate delivery.
    #[error("duplicate message {message_number} (already decrypted)")]
    Duplicate {
        /// The duplicate's message number.
        message_number: u32,
    },
    /// The message would skip more keys in one chain than [`MAX_SKIP`](crate::limits::MAX_SKIP).
    #[error("message skips {skip} keys in one chain; at most {max} allowed")]
    SkipTooLarge {
        /// Keys that would have been skipped.
        skip: u32,
        /// The limit.
        max: u32,
    },
    /// The message belongs to a receiving chain that was forgotten (more than
    /// `MAX_RECEIVING_CHAINS` ratchet steps ago) and has no stored key.
    #[error("message {message_number} belongs to a forgotten receiving chain")]
    ChainForgotten {
        /// Its message number.
        message_number: u32,
    },
    /// The AEAD tag did not verify: wrong session, forged or modified bytes.
    #[error("message authentication failed")]
    AuthFailed,
    /// The tag verified but the padding is malformed (sender is not Hush).
    #[error(transparent)]
    BadPadding(#[from] BadPadding),
    /// The peer's ratchet key is of low order.
    #[error(transparent)]
    NonContributory(#[from] NonContributory),
    /// A ratchet message arrived for a peer with no session.
    #[error("no session with this peer")]
    NoSession,
    /// A prekey message of an inbound session that has been dropped (a
    /// replay, or a very late copy); it must not create a new session.
    #[error("prekey message of a forgotten session")]
    SessionForgotten,
    /// A prekey message was handed to a session of another X3DH run.
    #[error("prekey message does not belong to this session")]
    WrongSession,
}

impl From<PrekeyError> for DecryptError {
    fn from(e: PrekeyError) -> Self {
        DecryptError::X3dh(X3dhError::Prekey(e))
    }
}

/// Why a message could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The plaintext exceeds [`MAX_PLAINTEXT_LEN`](crate::limits::MAX_PLAINTEXT_LEN).
    #[error("plaintext of {len} bytes exceeds the limit of {max}")]
    PlaintextTooLong {
        /// Actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The sending chain has produced 2^32 - 1 messages.
    #[error("sending chain exhausted")]
    ChainExhausted,
    /// No session with this peer (start one with a prekey bundle).
    #[error("no session with this peer")]
    NoSession,
    /// The peer's ratchet key is of low order.
    #[error(transparent)]
    NonContributory(#[from] NonContributory),
}
