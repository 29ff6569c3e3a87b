//! Hush client library: identities, prekeys, X3DH, Double Ratchet, a sealed
//! local store and (later) an async `Client` that talks to a relay.
//!
//! The cryptographic core is pure (no I/O, no async; randomness and time
//! are passed in): [`identity`] and [`prekey`] hold the long-term and
//! prekey secrets, [`x3dh`] agrees a first secret from a prekey bundle,
//! [`ratchet`] runs the Double Ratchet over it ([`message`] is its wire
//! form, [`padding`] hides lengths), [`peer_sessions`] keeps the sessions
//! with one peer, [`payload`] is the typed content inside the ciphertext,
//! [`trust`] gives fingerprints, safety numbers and the TOFU decision, and
//! [`limits`] lists every bound a peer controls. `docs/crypto.md` specifies
//! the construction and byte layouts.
#![deny(clippy::unwrap_used, clippy::expect_used)]
pub mod store;

pub mod identity;
mod keys;
pub mod limits;
pub mod message;
pub mod padding;
pub mod payload;
pub mod peer_sessions;
pub mod pickle;
pub mod prekey;
pub mod ratchet;
pub mod trust;
pub mod x3dh;

pub mod client;

/// Invariant checkers for `fuzz/` and `tests/fuzz_mirror.rs`; not API.
#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod tests;

pub use identity::{IdentityKeyPair, IdentityPublic, KeyError};
pub use keys::NonContributory;
pub use message::{Message, MessageError};
pub use payload::{MessageId, Payload, PayloadBody, PayloadError, ReceiptKind, TypingState};
pub use peer_sessions::PeerSessions;
pub use pickle::PickleError;
pub use prekey::{
    OneTimePrekey, OneTimePrekeyPublic, PrekeyBundle, PrekeyError, PrekeyStore, SignedPrekeyPublic,
};
pub use ratchet::{DecryptError, EncryptError, Session};
pub use trust::{TrustDecision, fingerprint, safety_number};
pub use x3dh::X3dhError;
