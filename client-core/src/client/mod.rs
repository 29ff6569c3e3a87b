//! The async client: a [`Profile`] taken online (cargo feature `client`,
//! on by default).
//!
//! [`Client::connect`] opens a WebSocket to the relay, authenticates,
//! registers and publishes keys on first use, and then keeps the connection
//! up in a background task, reconnecting with jittered exponential backoff.
//! That task processes pushed envelopes strictly in the relay's order:
//! decrypt, commit (session, history, envelope id) and only then acknowledge,
//! emitting [`Event`]s on the channel returned by `connect`.
//!
//! Presence: the allow list lives in the profile and is published on every
//! connection; presence subscriptions are renewed on every connection (the
//! snapshot is emitted as [`Event::Presence`], as are the relay's updates).
//! Typing indicators are rate-limited on the way out and time out on the
//! way in (`typing`).
//!
//! The cryptographic and storage work is synchronous
//! (`engine`) and runs on tokio's blocking pool; this
//! module is the only async part of the crate. Its files:
//!
//! | module | holds |
//! |---|---|
//! | `config` | [`ClientConfig`], the background task's intervals, request caps |
//! | `state` | what the handle's clones and the supervisor share; engine calls on the blocking pool |
//! | `handle` | [`Client`]: connect, profile access, close |
//! | `send` | text and typing payloads, session setup from a fetched bundle |
//! | `supervisor` | the background task: connect, reconnect with backoff |
//! | `inbox` | the serve loop of one connection: envelopes, acks, timers |
//! | `receipts` | read receipts, and the delivery receipts owed |
//! | `presence` | allow list, queries, subscriptions and their renewal |
//! | `typing` | typing rate limit (out) and timeouts (in) |
//! | [`connection`] | the low-level relay connection: handshake, frames, bundles, keys |
//! | `link` | the multiplexed connection the client runs on (replies by `rid`) |
//! | `tls` | rustls for `wss://`, and why a connection could not be opened |
//! | `url` | [`ws_url`] and what a relay URL says about host and port |

mod config;
pub mod connection;
mod handle;
mod inbox;
mod link;
mod presence;
mod receipts;
mod send;
mod state;
mod supervisor;
mod tls;
mod typing;
mod url;

pub use config::ClientConfig;
pub use connection::{DEFAULT_RELAY_PORT, ws_url};
pub use handle::{Client, Events};
pub use hush_protocol::Backoff;
pub use hush_protocol::frame::{PresenceEntry, PresenceState};
pub use typing::{TYPING_REFRESH, TYPING_TIMEOUT};

pub use crate::clock::{Clock, SystemClock};
pub use crate::error::ClientError;
pub use crate::events::{ConnectionState, Event, IncomingMessage};
pub use crate::profile::{Profile, SafetyNumbers};
pub use crate::random::SystemRandom;
