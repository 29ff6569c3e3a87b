//! Hush relay: authenticates users by their Ed25519 identity keys, keeps a
//! directory of their published prekeys, and queues opaque envelopes in
//! durable per-user mailboxes until the recipient acknowledges them.
//!
//! ## Module map
//!
//! | module | what it holds |
//! |---|---|
//! | [`server`] | [`serve`] (what the binary runs), [`RelayHandle`] (the same relay in-process, for tests), the HTTP routes, the sweeper, graceful shutdown |
//! | `accept` | the accept loop: caps from the TCP accept, the pre-upgrade deadline, running out of file descriptors |
//! | [`proxy`] | PROXY protocol headers from trusted load balancers |
//! | `connection` | one WebSocket: its read loop; `writer`, `liveness`, `auth`, `reply` (the one completion path of a request), `requests`, `presence_frames`, `drain` |
//! | `hub` | the shared state: wires the services below together, connection caps, quotas, the injected clock/randomness/task tracker, and the hub's answers to the bus |
//! | `sessions` | the table of live sessions (user -> its connection) and each session's delivery cursor; depends on nothing else in the relay |
//! | `delivery` | mail: submit and ack, gap-free in-order live delivery and mailbox sync, pushes to a user here or elsewhere |
//! | `presence` | the presence service over the session table: visibility, subscriptions, last seen, the fan-out of changes |
//! | `directory` | registration, keys, bundles and lookups, as connections use them |
//! | `bus` | the `Bus` trait (cross-relay notification): `LocalBus` (one relay) and `RedisBus` (pub/sub, presence table, refresh; its message layout in `bus::redis::messages`) |
//! | `clock` | the injected wall clock (system, or manual in tests) |
//! | `random` | OS randomness, and the injected source of challenges (seedable in tests) |
//! | `quota`, `rate` | per-address/per-user quotas and the token buckets behind them |
//! | `wire` | hand-written encoding of envelope frames (the hot path) |
//! | [`store`] | the [`Store`] trait with [`MemoryStore`], [`RedbStore`] and [`RedisStore`] |
//! | [`admin`] | operator commands (`stats`, `reset-user`, `purge-expired`) on a stopped relay's data directory or on a cluster's Redis |
//! | [`config`], [`settings`] | the [`Config`] struct; every option of the binary in one table, resolved from defaults, a TOML file, environment variables and flags |
//! | [`metrics`] | the Prometheus metrics behind `GET /metrics` |
//! | [`stats`] | what stores count for monitoring ([`stats::StoreStats`], [`stats::MailboxCensus`]); a leaf both stores and metrics use |
//! | [`tls`] | rustls for `wss://` |
//!
//! Dependencies point one way: `connection` -> `hub` -> {`delivery`,
//! `presence`, `directory`} -> {`sessions`, `bus`, `store`, `clock`}; the
//! bus learns of this relay through the `BusEvents` trait the hub
//! implements.
//!
//! The protocol is specified in `docs/protocol.md`; the wire types live in
//! `hush-protocol`.
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

mod accept;
pub mod admin;
mod bus;
mod clock;
pub mod config;
mod connection;
mod delivery;
mod directory;
mod hub;
pub mod metrics;
mod presence;
pub mod proxy;
mod quota;
mod random;
mod rate;
pub mod server;
mod sessions;
pub mod settings;
pub mod stats;
pub mod store;
pub mod tls;
mod wire;

pub use config::{Config, StoreConfig, TlsFiles};
pub use server::{RelayError, RelayHandle, serve, serve_with_ready, serve_with_store};
pub use store::{MemoryStore, RedbStore, RedisStore, Store, StoreError};
