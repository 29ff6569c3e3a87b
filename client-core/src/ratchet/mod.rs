//! The Double Ratchet (Signal's spec) on top of X3DH.
//!
//! * `KDF_RK`: [`root_key`] — `HKDF-SHA256(salt = RK, ikm = DH, info = "Hush ratchet v1")`.
//! * `KDF_CK`: [`chain_key`] — `HMAC-SHA256(CK, 0x01)` / `HMAC-SHA256(CK, 0x02)`.
//! * message keys to ChaCha20-Poly1305 key and nonce: [`message_key`].
//! * receiving chains and skipped keys, bounded: `receiver_chain`.
//! * the session state machine: [`session`], the same with an account or
//!   with one device ([`peer`], [`device_session`]); why it refuses a message:
//!   `error` ([`DecryptError`], [`EncryptError`]).

pub mod chain_key;
pub mod device_session;
mod error;
pub mod message_key;
pub mod peer;
pub(crate) mod receiver_chain;
pub mod root_key;
pub mod session;

pub use chain_key::ChainKey;
pub use device_session::DeviceSession;
pub use message_key::{MessageKey, TAG_LEN};
pub use peer::SessionPeer;
pub use root_key::RootKey;
pub use session::{DecryptError, EncryptError, Session};
