//! Hush relay: authenticates users by their Ed25519 identity keys, keeps a
//! directory of their published prekeys, and queues opaque envelopes in
//! durable per-user mailboxes until the recipient acknowledges them.
//!
//! - [`server`]: [`serve`] (what the binary runs) and [`RelayHandle`] (the
//!   same relay started in-process, for tests).
//! - `accept`: the accept loop: caps from the TCP accept, the pre-upgrade
//!   deadline, running out of file descriptors; [`proxy`]: PROXY protocol
//!   headers from trusted load balancers.
//! - `connection`: one WebSocket: challenge, auth, requests.
//! - `hub`: live sessions and gap-free in-order delivery.
//! - `cluster`: several relays on one Redis (presence, newest connection
//!   wins, new-mail notifications over pub/sub).
//! - `presence`: who may see whose presence, subscriptions, last seen and
//!   the fan-out of changes.
//! - [`store`]: the [`Store`] trait with [`MemoryStore`], [`RedbStore`] and
//!   [`RedisStore`].
//! - [`admin`]: operator commands (`stats`, `reset-user`, `purge-expired`)
//!   on a stopped relay's data directory or on a cluster's Redis.
//! - [`config`]: the [`Config`] struct; [`settings`]: every option of the
//!   binary in one table, resolved from defaults, a TOML file, environment
//!   variables and flags.
//! - [`metrics`]: the Prometheus metrics behind `GET /metrics`.
//! - [`tls`]: rustls for `wss://`.
//!
//! The protocol is specified in `docs/protocol.md`; the wire types live in
//! `hush-protocol`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod accept;
pub mod admin;
mod cluster;
pub mod config;
mod connection;
mod hub;
pub mod metrics;
mod presence;
pub mod proxy;
mod quota;
mod random;
mod rate;
pub mod server;
pub mod settings;
pub mod store;
pub mod tls;
mod wire;

pub use config::{Config, StoreConfig, TlsFiles};
pub use server::{RelayError, RelayHandle, serve, serve_with_ready, serve_with_store};
pub use store::{MemoryStore, RedbStore, RedisStore, Store, StoreError};
