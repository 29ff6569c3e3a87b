//! Wire encoding of ratchet messages and prekey messages. Everything here
//! is untrusted input: every length is checked before use, the version
//! byte comes first, trailing data is impossible by construction (the
//! ciphertext runs to the end and its length is checked).
//!
//! Ratchet message (`type = 1`):
//!
//! | offset | len | field |
//! | --- | --- | --- |
//! | 0 | 1 | version = 1 |
//! | 1 | 1 | type = 1 |
//! | 2 | 32 | sender's ratchet public key |
//! | 34 | 4 | previous sending chain length `PN`, u32be |
//! | 38 | 4 | message number `N`, u32be |
//! | 42 | 64·k | ciphertext of the padded plaintext (k ≥ 1) |
//! | end-16 | 16 | Poly1305 tag |
//!
//! The 42 header bytes (version and type included) are the AEAD header.
//!
//! Prekey message (`type = 2`), sent by an initiator until a reply arrives:
//!
//! | offset | len | field |
//! | --- | --- | --- |
//! | 0 | 1 | version = 1 |
//! | 1 | 1 | type = 2 |
//! | 2 | 32 | initiator `IKsig` public |
//! | 34 | 32 | initiator `IKdh` public |
//! | 66 | 64 | initiator `dh_sig` |
//! | 130 | 32 | initiator ephemeral (base) key `EK_A` |
//! | 162 | 4 | responder signed prekey id, u32be |
//! | 166 | 1 | 1 if a one-time prekey was used, else 0 |
//! | 167 | 0 or 4 | responder one-time prekey id, u32be |
//! | 167/171 | rest | a complete ratchet message (type 1) |
//!
//! Device prekey message (`type = 4`), the same between two devices of
//! accounts that publish device lists (X3DH between devices, see
//! [`crate::x3dh`]):
//!
//! | offset | len | field |
//! | --- | --- | --- |
//! | 0 | 1 | version = 1 |
//! | 1 | 1 | type = 4 |
//! | 2 | 100 | initiator device: account key[32], device id u32be, device signing key[32], device `IKdh`[32] |
//! | 102 | 4 | responder device id, u32be |
//! | 106 | 32 | initiator ephemeral (base) key `EK_A` |
//! | 138 | 4 | responder signed prekey id, u32be |
//! | 142 | 1 | 1 if a one-time prekey was used, else 0 |
//! | 143 | 0 or 4 | responder one-time prekey id, u32be |
//! | 143/147 | rest | a complete ratchet message (type 1) |
//!
//! Type 3 is left unused so that a type byte never means two things to
//! readers of earlier drafts.

pub use crate::bytes::is_canonical_x25519;
use crate::bytes::take;
use crate::devices::DevicePublic;
use crate::identity::IdentityPublic;
use crate::limits::{MAX_MESSAGE_LEN, PADDING_BLOCK};

/// Length of the Poly1305 tag at the end of every message.
pub const TAG_LEN: usize = 16;

/// Version byte of every message this build writes and reads.
pub const MESSAGE_VERSION: u8 = 1;
/// Type byte of a ratchet message.
pub const TYPE_RATCHET: u8 = 1;
/// Type byte of a prekey message.
pub const TYPE_PREKEY: u8 = 2;
/// Length of the ratchet header, version and type bytes included.
pub const HEADER_LEN: usize = 42;
/// Length of the prekey wrapper before the inner ratchet message, without / with an OPK id.
pub const PREKEY_PREFIX_LEN: usize = 167;
/// Type byte of a device prekey message.
pub const TYPE_DEVICE_PREKEY: u8 = 4;
/// Length of the device prekey wrapper before the inner ratchet message, without an OPK id.
pub const DEVICE_PREKEY_PREFIX_LEN: usize = 143;

/// Why bytes are not a well-formed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The input ends before the fixed-size fields do.
    #[error("message truncated: need at least {needed} bytes, got {got}")]
    Truncated {
        /// Minimum length for this message type.
        needed: usize,
        /// Actual length.
        got: usize,
    },
    /// The version byte names a format this build does not know.
    #[error("unknown message version {0}")]
    UnknownVersion(u8),
    /// The type byte is neither a ratchet nor a prekey message.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// The input is larger than [`MAX_MESSAGE_LEN`].
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The ciphertext is not a whole number of padding blocks plus a tag.
    #[error("ciphertext length {0} is not 64·k + 16")]
    BadCiphertextLength(usize),
    /// The one-time-prekey flag is neither 0 nor 1.
    #[error("invalid one-time prekey flag {0}")]
    BadFlag(u8),
    /// An X25519 public key is not in canonical form (`u ≥ 2^255 − 19`).
    /// X25519 ignores the top bit, so accepting it would make the key
    /// malleable outside the AEAD's associated data.
    #[error("non-canonical X25519 public key")]
    NonCanonicalKey,
}

/// Ratchet header: `(DH_s public, PN, N)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatchetHeader {
    /// The sender's current ratchet public key.
    pub ratchet_key: [u8; 32],
    /// Number of messages in the sender's previous sending chain.
    pub previous_chain_length: u32,
    /// Number of this message in the current sending chain.
    pub message_number: u32,
}

impl RatchetHeader {
    /// The 42 header bytes, version and type first.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = MESSAGE_VERSION;
        out[1] = TYPE_RATCHET;
        out[2..34].copy_from_slice(&self.ratchet_key);
        out[34..38].copy_from_slice(&self.previous_chain_length.to_be_bytes());
        out[38..42].copy_from_slice(&self.message_number.to_be_bytes());
        out
    }
}

/// A parsed ratchet message borrowing its ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatchetMessage<'a> {
    /// The decoded header.
    pub header: RatchetHeader,
    /// The exact header bytes (authenticated as AEAD associated data).
    pub header_bytes: &'a [u8; HEADER_LEN],
    /// Ciphertext without the tag.
    pub ciphertext: &'a [u8],
    /// The Poly1305 tag.
    pub tag: &'a [u8; TAG_LEN],
}

/// A parsed prekey message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrekeyMessage<'a> {
    /// The initiator's identity as it claims it (check pinning before accepting).
    pub initiator: IdentityPublic,
    /// The initiator's ephemeral key `EK_A`; identifies the X3DH run.
    pub base_key: [u8; 32],
    /// Which of our signed prekeys was used.
    pub signed_prekey_id: u32,
    /// Which of our one-time prekeys was used, if any.
    pub one_time_prekey_id: Option<u32>,
    /// The first (or a further) ratchet message of the new session.
    pub message: RatchetMessage<'a>,
}

/// A parsed device prekey message (X3DH between devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePrekeyMessage<'a> {
    /// The initiating device as it claims itself (check it against the
    /// initiator account's verified device list before accepting).
    pub initiator: DevicePublic,
    /// The device id the initiator addressed.
    pub responder_device: u32,
    /// The initiator's ephemeral key `EK_A`; identifies the X3DH run.
    pub base_key: [u8; 32],
    /// Which of our signed prekeys was used.
    pub signed_prekey_id: u32,
    /// Which of our one-time prekeys was used, if any.
    pub one_time_prekey_id: Option<u32>,
    /// The first (or a further) ratchet message of the new session.
    pub message: RatchetMessage<'a>,
}

/// Any message a peer can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A message within an established session.
    Ratchet(RatchetMessage<'a>),
    /// A message that (re)establishes a session between accounts.
    Prekey(PrekeyMessage<'a>),
    /// A message that (re)establishes a session between two devices.
    DevicePrekey(DevicePrekeyMessage<'a>),
}

impl<'a> Message<'a> {
    /// Parses untrusted bytes. No cryptography happens here.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, MessageError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(MessageError::TooLong {
                len: bytes.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let (version, kind) = match bytes {
            [] => return Err(MessageError::Truncated { needed: 2, got: 0 }),
            [v, ..] if *v != MESSAGE_VERSION => return Err(MessageError::UnknownVersion(*v)),
            [_] => return Err(MessageError::Truncated { needed: 2, got: 1 }),
            [v, k, ..] => (*v, *k),
        };
        debug_assert_eq!(version, MESSAGE_VERSION);
        match kind {
            TYPE_RATCHET => decode_ratchet(bytes).map(Message::Ratchet),
            TYPE_PREKEY => decode_prekey(bytes).map(Message::Prekey),
            TYPE_DEVICE_PREKEY => decode_device_prekey(bytes).map(Message::DevicePrekey),
            other => Err(MessageError::UnknownType(other)),
        }
    }

    /// The prekey wrapper's claimed initiator identity, if this is a prekey message.
    pub fn initiator(&self) -> Option<IdentityPublic> {
        match self {
            Message::Prekey(p) => Some(p.initiator),
            Message::Ratchet(_) | Message::DevicePrekey(_) => None,
        }
    }

    /// The ratchet message inside, whatever wraps it.
    pub fn ratchet(&self) -> &RatchetMessage<'a> {
        match self {
            Message::Ratchet(m) => m,
            Message::Prekey(p) => &p.message,
            Message::DevicePrekey(p) => &p.message,
        }
    }
}

const MIN_RATCHET_LEN: usize = HEADER_LEN + PADDING_BLOCK + TAG_LEN;

fn decode_ratchet(bytes: &[u8]) -> Result<RatchetMessage<'_>, MessageError> {
    let truncated = || MessageError::Truncated {
        needed: MIN_RATCHET_LEN,
        got: bytes.len(),
    };
    if bytes.len() < MIN_RATCHET_LEN {
        return Err(truncated());
    }
    let (header_bytes, rest) = bytes
        .split_first_chunk::<HEADER_LEN>()
        .ok_or_else(truncated)?;
    // version, type, DH_s (32), PN (4), N (4): the compiler checks the sizes.
    let [
        version,
        kind,
        ratchet_key @ ..,
        p0,
        p1,
        p2,
        p3,
        n0,
        n1,
        n2,
        n3,
    ] = *header_bytes;
    match (version, kind) {
        (MESSAGE_VERSION, TYPE_RATCHET) => {}
        (MESSAGE_VERSION, t) => return Err(MessageError::UnknownType(t)),
        (v, _) => return Err(MessageError::UnknownVersion(v)),
    }
    let (ciphertext, tag) = rest
        .split_last_chunk::<TAG_LEN>()
        .ok_or(MessageError::BadCiphertextLength(rest.len()))?;
    if ciphertext.len() % PADDING_BLOCK != 0 {
        return Err(MessageError::BadCiphertextLength(rest.len()));
    }
    if !is_canonical_x25519(&ratchet_key) {
        return Err(MessageError::NonCanonicalKey);
    }
    let header = RatchetHeader {
        ratchet_key,
        previous_chain_length: u32::from_be_bytes([p0, p1, p2, p3]),
        message_number: u32::from_be_bytes([n0, n1, n2, n3]),
    };
    Ok(RatchetMessage {
        header,
        header_bytes,
        ciphertext,
        tag,
    })
}

fn decode_prekey(bytes: &[u8]) -> Result<PrekeyMessage<'_>, MessageError> {
    let truncated = || MessageError::Truncated {
        needed: PREKEY_PREFIX_LEN + MIN_RATCHET_LEN,
        got: bytes.len(),
    };
    if bytes.len() < PREKEY_PREFIX_LEN {
        return Err(truncated());
    }
    let mut rest = bytes;
    // Version and type were checked by `Message::decode`.
    take::<2>(&mut rest).ok_or_else(truncated)?;
    let initiator = IdentityPublic::from_bytes(take::<128>(&mut rest).ok_or_else(truncated)?);
    let base_key = *take::<32>(&mut rest).ok_or_else(truncated)?;
    if !is_canonical_x25519(&base_key) || !is_canonical_x25519(&initiator.dh_pub) {
        return Err(MessageError::NonCanonicalKey);
    }
    let (signed_prekey_id, one_time_prekey_id, message) = decode_prekey_ids(rest, truncated)?;
    Ok(PrekeyMessage {
        initiator,
        base_key,
        signed_prekey_id,
        one_time_prekey_id,
        message,
    })
}

/// The tail both prekey wrappers share: signed prekey id, one-time prekey
/// flag and id, and the inner ratchet message.
fn decode_prekey_ids(
    mut rest: &[u8],
    truncated: impl Fn() -> MessageError,
) -> Result<(u32, Option<u32>, RatchetMessage<'_>), MessageError> {
    let signed_prekey_id = u32::from_be_bytes(*take::<4>(&mut rest).ok_or_else(&truncated)?);
    let [flag] = *take::<1>(&mut rest).ok_or_else(&truncated)?;
    let one_time_prekey_id = match flag {
        0 => None,
        1 => Some(u32::from_be_bytes(
            *take::<4>(&mut rest).ok_or_else(&truncated)?,
        )),
        f => return Err(MessageError::BadFlag(f)),
    };
    if rest.len() < MIN_RATCHET_LEN {
        return Err(truncated());
    }
    Ok((signed_prekey_id, one_time_prekey_id, decode_ratchet(rest)?))
}

fn decode_device_prekey(bytes: &[u8]) -> Result<DevicePrekeyMessage<'_>, MessageError> {
    let truncated = || MessageError::Truncated {
        needed: DEVICE_PREKEY_PREFIX_LEN + MIN_RATCHET_LEN,
        got: bytes.len(),
    };
    if bytes.len() < DEVICE_PREKEY_PREFIX_LEN {
        return Err(truncated());
    }
    let mut rest = bytes;
    // Version and type were checked by `Message::decode`.
    take::<2>(&mut rest).ok_or_else(truncated)?;
    let initiator = DevicePublic::take_from(&mut rest).ok_or_else(truncated)?;
    let responder_device = u32::from_be_bytes(*take::<4>(&mut rest).ok_or_else(truncated)?);
    let base_key = *take::<32>(&mut rest).ok_or_else(truncated)?;
    if !is_canonical_x25519(&base_key) || !is_canonical_x25519(&initiator.identity_dh) {
        return Err(MessageError::NonCanonicalKey);
    }
    let (signed_prekey_id, one_time_prekey_id, message) = decode_prekey_ids(rest, truncated)?;
    Ok(DevicePrekeyMessage {
        initiator,
        responder_device,
        base_key,
        signed_prekey_id,
        one_time_prekey_id,
        message,
    })
}

/// The prekey wrapper an initiator puts before each ratchet message.
pub(crate) fn encode_prekey_prefix(
    initiator: &IdentityPublic,
    base_key: &[u8; 32],
    signed_prekey_id: u32,
    one_time_prekey_id: Option<u32>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREKEY_PREFIX_LEN + 4);
    out.push(MESSAGE_VERSION);
    out.push(TYPE_PREKEY);
    out.extend_from_slice(&initiator.to_bytes());
    out.extend_from_slice(base_key);
    push_prekey_ids(&mut out, signed_prekey_id, one_time_prekey_id);
    out
}

/// The device prekey wrapper an initiating device puts before each ratchet message.
pub(crate) fn encode_device_prekey_prefix(
    initiator: &DevicePublic,
    responder_device: u32,
    base_key: &[u8; 32],
    signed_prekey_id: u32,
    one_time_prekey_id: Option<u32>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(DEVICE_PREKEY_PREFIX_LEN + 4);
    out.push(MESSAGE_VERSION);
    out.push(TYPE_DEVICE_PREKEY);
    out.extend_from_slice(&initiator.to_bytes());
    out.extend_from_slice(&responder_device.to_be_bytes());
    out.extend_from_slice(base_key);
    push_prekey_ids(&mut out, signed_prekey_id, one_time_prekey_id);
    out
}

fn push_prekey_ids(out: &mut Vec<u8>, signed_prekey_id: u32, one_time_prekey_id: Option<u32>) {
    out.extend_from_slice(&signed_prekey_id.to_be_bytes());
    match one_time_prekey_id {
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id.to_be_bytes());
        }
        None => out.push(0),
    }
}
