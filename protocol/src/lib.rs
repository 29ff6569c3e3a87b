//! Hush wire protocol: the frames exchanged between clients and relays, user
//! and envelope ids, every limit a peer controls, and the exact bytes that
//! get signed. No I/O, no async, no AEAD or X25519: the relay and the client
//! library both depend on this crate and on nothing of each other.
//!
//! - [`frame`]: [`ClientFrame`] and [`ServerFrame`], one JSON text frame each;
//!   [`ClientFrame::decode`] reports a precise [`FrameError`]. The
//!   multi-device frames (`auth_device`, device lists, `send_copies`) are
//!   in `frame::devices`, re-exported from [`frame`].
//! - [`bytes`]: base64 binary fields ([`PublicKeyBytes`], [`SignatureBytes`],
//!   [`Body`]).
//! - [`user_id`]: the validated [`UserId`].
//! - [`limits`]: [`Limits`], every bound a peer controls, with defaults.
//! - [`error_code`]: [`ErrorCode`] and the WebSocket [`close`] codes.
//! - [`signing`]: the exact bytes signed by identity keys.
//! - [`devices`]: [`devices::SignedDeviceList`], an account's devices as
//!   its account key certifies them, and their structural rules.
//! - [`backoff`]: [`Backoff`], the jittered reconnection delays clients and
//!   relays use.
//! - `decode`: the two-pass decoding behind [`ClientFrame::decode`].
//!
//! The full specification is `docs/protocol.md`.
// clippy::panic, indexing_slicing and cast_possible_truncation come from
// the workspace lints.
#![warn(missing_docs)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::cast_possible_truncation
    )
)]

pub mod backoff;
pub mod bytes;
mod decode;
pub mod devices;
pub mod error_code;
pub mod frame;
pub mod limits;
pub mod signing;
pub mod user_id;

pub use backoff::Backoff;
pub use bytes::{Body, BytesError, ChallengeBytes, PublicKeyBytes, SignatureBytes};
pub use decode::FrameError;
pub use error_code::{ErrorCode, close};
pub use frame::{ClientFrame, ServerFrame};
pub use limits::Limits;
pub use user_id::{UserId, UserIdError};
