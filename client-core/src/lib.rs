//! Hush client library: identities, prekeys, X3DH, Double Ratchet, a sealed
//! local store and (later) an async `Client` that talks to a relay.
#![deny(clippy::unwrap_used, clippy::expect_used)]
