//! The typed content that travels inside the ciphertext. The relay sees only
//! padded ciphertext and cannot tell a text from a typing indicator or a
//! receipt.
//!
//! | field | bytes |
//! | --- | --- |
//! | version = 1 | 1 |
//! | kind: 1 text, 2 typing, 3 receipt | 1 |
//! | message id | 16 |
//! | sender timestamp, unix ms, u64be | 8 |
//! | text: `u32be len \|\| UTF-8` (len ≤ [`MAX_TEXT_LEN`]) | |
//! | typing: 1 started / 0 stopped | 1 |
//! | receipt: kind (1 delivered, 2 read) `u8 \|\| u16be n \|\| n × id[16]` (n ≤ [`MAX_RECEIPT_IDS`]) | |
//!
//! Decoding is bounded and total: any malformed input is a typed error,
//! trailing bytes are rejected.

use std::fmt;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::limits::{MAX_RECEIPT_IDS, MAX_TEXT_LEN};

/// Version byte of payloads this build writes.
pub const PAYLOAD_VERSION: u8 = 1;

const KIND_TEXT: u8 = 1;
const KIND_TYPING: u8 = 2;
const KIND_RECEIPT: u8 = 3;

/// Why a decrypted payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The input ended early.
    #[error("payload truncated")]
    Truncated,
    /// Unknown payload version.
    #[error("unknown payload version {0}")]
    UnknownVersion(u8),
    /// Unknown payload kind.
    #[error("unknown payload kind {0}")]
    UnknownKind(u8),
    /// Text longer than [`MAX_TEXT_LEN`].
    #[error("text of {len} bytes exceeds the limit of {max}")]
    TextTooLong {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Text is not valid UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// More receipt ids than [`MAX_RECEIPT_IDS`].
    #[error("receipt with {count} ids exceeds the limit of {max}")]
    TooManyReceiptIds {
        /// Announced count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A flag or enum byte holds an undefined value.
    #[error("invalid value {value} for {field}")]
    InvalidValue {
        /// Which field.
        field: &'static str,
        /// The byte found.
        value: u8,
    },
    /// Bytes remain after the payload.
    #[error("{0} trailing bytes after payload")]
    TrailingData(usize),
}

/// 16 random bytes naming a message (receipts refer to it), chosen by the
/// sender and carried inside the ciphertext; the store keeps it too (as a
/// JSON array of 16 numbers, through serde).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A fresh random id.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Typing indicator state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypingState {
    /// The sender started typing.
    Started,
    /// The sender stopped typing.
    Stopped,
}

/// Which receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// The messages reached the recipient's device.
    Delivered,
    /// The recipient displayed the messages.
    Read,
}

/// What a payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadBody {
    /// A text message.
    Text {
        /// The text, at most [`MAX_TEXT_LEN`] bytes of UTF-8.
        text: String,
    },
    /// A typing indicator.
    Typing {
        /// Started or stopped.
        state: TypingState,
    },
    /// Delivery or read receipt for earlier messages.
    Receipt {
        /// Delivered or read.
        kind: ReceiptKind,
        /// The ids of the messages it acknowledges.
        message_ids: Vec<MessageId>,
    },
}

/// A payload with its id and sender timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// This payload's id.
    pub id: MessageId,
    /// Sender's clock, unix milliseconds.
    pub sent_at_ms: u64,
    /// The content.
    pub body: PayloadBody,
}

impl Payload {
    /// A text payload with a fresh id.
    pub fn text<R: CryptoRng + ?Sized>(rng: &mut R, now_ms: u64, text: impl Into<String>) -> Self {
        Self {
            id: MessageId::random(rng),
            sent_at_ms: now_ms,
            body: PayloadBody::Text { text: text.into() },
        }
    }

    /// Encodes the payload. Fails only for text beyond [`MAX_TEXT_LEN`] or
    /// receipts with more than [`MAX_RECEIPT_IDS`] ids.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
        let mut out = Zeroizing::new(Vec::with_capacity(32 + self.body_len()));
        out.push(PAYLOAD_VERSION);
        match &self.body {
            PayloadBody::Text { .. } => out.push(KIND_TEXT),
            PayloadBody::Typing { .. } => out.push(KIND_TYPING),
            PayloadBody::Receipt { .. } => out.push(KIND_RECEIPT),
        }
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.sent_at_ms.to_be_bytes());
        match &self.body {
            PayloadBody::Text { text } => {
                if text.len() > MAX_TEXT_LEN {
                    return Err(PayloadError::TextTooLong {
                        len: text.len(),
                        max: MAX_TEXT_LEN,
                    });
                }
                let len = u32::try_from(text.len()).map_err(|_| PayloadError::TextTooLong {
                    len: text.len(),
                    max: MAX_TEXT_LEN,
                })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            PayloadBody::Typing { state } => out.push(u8::from(*state == TypingState::Started)),
            PayloadBody::Receipt { kind, message_ids } => {
                if message_ids.len() > MAX_RECEIPT_IDS {
                    return Err(PayloadError::TooManyReceiptIds {
                        count: message_ids.len(),
                        max: MAX_RECEIPT_IDS,
                    });
                }
                out.push(match kind {
                    ReceiptKind::Delivered => 1,
                    ReceiptKind::Read => 2,
                });
                let count = u16::try_from(message_ids.len()).map_err(|_| {
                    PayloadError::TooManyReceiptIds {
                        count: message_ids.len(),
                        max: MAX_RECEIPT_IDS,
                    }
                })?;
                out.extend_from_slice(&count.to_be_bytes());
                for id in message_ids {
                    out.extend_from_slice(&id.0);
                }
            }
        }
        Ok(out)
    }

    fn body_len(&self) -> usize {
        match &self.body {
            PayloadBody::Text { text } => 4 + text.len(),
            PayloadBody::Typing { .. } => 1,
            PayloadBody::Receipt { message_ids, .. } => 3 + 16 * message_ids.len(),
        }
    }

    /// Decodes untrusted (decrypted) bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        let mut r = Cursor(bytes);
        let version = r.u8()?;
        if version != PAYLOAD_VERSION {
            return Err(PayloadError::UnknownVersion(version));
        }
        let kind = r.u8()?;
        if !matches!(kind, KIND_TEXT | KIND_TYPING | KIND_RECEIPT) {
            return Err(PayloadError::UnknownKind(kind));
        }
        let id = MessageId(r.array()?);
        let sent_at_ms = u64::from_be_bytes(r.array()?);
        let body = match kind {
            KIND_TEXT => {
                let len = u32::from_be_bytes(r.array()?) as usize;
                if len > MAX_TEXT_LEN {
                    return Err(PayloadError::TextTooLong {
                        len,
                        max: MAX_TEXT_LEN,
                    });
                }
                let text = std::str::from_utf8(r.take(len)?)
                    .map_err(|_| PayloadError::InvalidUtf8)?
                    .to_owned();
                PayloadBody::Text { text }
            }
            KIND_TYPING => PayloadBody::Typing {
                state: match r.u8()? {
                    1 => TypingState::Started,
                    0 => TypingState::Stopped,
                    value => {
                        return Err(PayloadError::InvalidValue {
                            field: "typing state",
                            value,
                        });
                    }
                },
            },
            _ => {
                let kind = match r.u8()? {
                    1 => ReceiptKind::Delivered,
                    2 => ReceiptKind::Read,
                    value => {
                        return Err(PayloadError::InvalidValue {
                            field: "receipt kind",
                            value,
                        });
                    }
                };
                let count = u16::from_be_bytes(r.array()?) as usize;
                if count > MAX_RECEIPT_IDS {
                    return Err(PayloadError::TooManyReceiptIds {
                        count,
                        max: MAX_RECEIPT_IDS,
                    });
                }
                let mut message_ids = Vec::with_capacity(count);
                for _ in 0..count {
                    message_ids.push(MessageId(r.array()?));
                }
                PayloadBody::Receipt { kind, message_ids }
            }
        };
        if !r.0.is_empty() {
            return Err(PayloadError::TrailingData(r.0.len()));
        }
        Ok(Self {
            id,
            sent_at_ms,
            body,
        })
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        let (a, b) = self.0.split_at_checked(n).ok_or(PayloadError::Truncated)?;
        self.0 = b;
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, PayloadError> {
        let (&b, rest) = self.0.split_first().ok_or(PayloadError::Truncated)?;
        self.0 = rest;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PayloadError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}
