//! Hush client library: identities, prekeys, X3DH, Double Ratchet, a sealed
//! local store, the synchronous engine that ties them together and an
//! async `Client` that talks to a relay.
//!
//! The crate has two layers, and the dependency points one way only: the
//! async client (the [`client`] module, cargo feature `client`, on by
//! default) uses the synchronous core; the core never imports the client,
//! and without the feature the crate compiles no tokio, WebSocket or TLS.
//!
//! The cryptographic core is pure (no I/O, no async; randomness and time
//! are passed in). `docs/crypto.md` specifies the construction and byte
//! layouts.
//!
//! | module | layer | holds |
//! |---|---|---|
//! | [`identity`], [`prekey`] | crypto | long-term and prekey secrets |
//! | [`x3dh`] | crypto | the first secret agreed from a prekey bundle |
//! | [`ratchet`], [`message`], [`padding`] | crypto | the Double Ratchet, its wire form, length hiding |
//! | [`peer_sessions`] | crypto | the sessions with one peer |
//! | [`payload`] | crypto | the typed content inside the ciphertext |
//! | [`trust`] | crypto | fingerprints, safety numbers, the TOFU decision |
//! | [`devices`] | crypto | an account's device list: signed by the account key, only moving forward |
//! | [`group`] | crypto | group membership: signed, versioned changes by admins and the fork choice that makes members converge |
//! | [`sender_key`] | crypto | group messages: one encryption per message under a signed sender-key chain |
//! | [`linking`] | crypto | the link code and the sealed request and grant that add a device to an account |
//! | [`limits`] | crypto | every bound a peer controls |
//! | [`pickle`] | crypto | secrets serialised for the store |
//! | [`store`] | store | the sealed local store (records, batches, backends) |
//! | [`profile`] | account | an opened store with its identity and prekeys: everything offline |
//! | `engine` | engine | payloads to ciphertext, envelopes to events, committed first |
//! | [`events`], [`error`] | engine | what the application is told; [`ClientError`] |
//! | [`clock`], [`random`] | core | injected time and randomness, with system defaults |
//! | [`wire`] | core | key types to and from protocol frames (bundles, `publish_keys`) |
//! | [`client`] | async | [`Client`], its reconnecting supervisor, and the low-level [`client::connection`] |
//! | `fuzzing` | tests | invariant checkers for `fuzz/` (feature `fuzzing`) |
//!
//! Protocol types the API takes or returns ([`UserId`], [`Backoff`],
//! [`PresenceEntry`]) are re-exported, so users need not depend on
//! `hush-protocol`.
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::cast_possible_truncation))]
pub mod store;

mod bytes;
pub mod clock;
// Only the async client drives the engine today.
pub mod devices;
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) mod engine;
pub mod error;
pub mod events;
pub mod group;
pub mod identity;
mod keys;
pub mod limits;
pub mod linking;
pub mod message;
pub mod padding;
pub mod payload;
pub mod peer_sessions;
pub mod pickle;
pub mod prekey;
pub mod profile;
pub mod random;
pub mod ratchet;
pub mod sender_key;
pub mod trust;
pub mod wire;
pub mod x3dh;

#[cfg(feature = "client")]
pub mod client;

/// Invariant checkers for `fuzz/` and `tests/fuzz_mirror.rs`; not API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod tests;

#[cfg(feature = "client")]
pub use client::Client;
pub use clock::{Clock, SystemClock};
pub use devices::{DevicePublic, VerifiedDeviceList};
pub use error::ClientError;
pub use events::{ConnectionState, Event, IncomingMessage};
pub use hush_protocol::frame::{PresenceEntry, PresenceState};
pub use hush_protocol::{Backoff, Limits, UserId, UserIdError};
pub use identity::{IdentityKeyPair, IdentityPublic, KeyError};
pub use keys::NonContributory;
pub use message::{DevicePrekeyMessage, Message, MessageError};
pub use payload::{MessageId, Payload, PayloadBody, PayloadError, ReceiptKind, TypingState};
pub use peer_sessions::PeerSessions;
pub use pickle::PickleError;
pub use prekey::{
    DeviceBundle, OneTimePrekey, OneTimePrekeyPublic, PrekeyBundle, PrekeyError, PrekeyStore,
    SignedPrekeyPublic,
};
pub use profile::{Profile, SafetyNumbers};
pub use random::SystemRandom;
pub use ratchet::{DecryptError, DeviceSession, EncryptError, Session, SessionPeer};
pub use trust::{TrustDecision, fingerprint, safety_number};
pub use x3dh::X3dhError;
