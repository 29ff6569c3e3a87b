//! Hush wire protocol: the frames exchanged between clients and relays, user
//! and envelope ids, every limit a peer controls, and the exact bytes that
//! get signed. No I/O, no async, no AEAD or X25519: the relay and the client
//! library both depend on this crate and on nothing of each other.
//!
//! The full specification is `docs/protocol.md`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod signing;
