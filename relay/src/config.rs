//! Relay configuration: which store, which relay id, which limits.

use std::path::PathBuf;
use std::time::Duration;

use hush_protocol::Limits;

/// Which storage backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreConfig {
    /// Everything in memory; lost on exit; random relay id per process.
    Memory,
    /// Embedded durable redb database in `data_dir`.
    Redb {
        /// Directory holding `hush.redb` (created if missing).
        data_dir: PathBuf,
    },
    /// Shared Redis (cluster mode: several relays on one Redis).
    Redis {
        /// `redis://HOST:PORT[/DB]`.
        url: String,
    },
}

/// Everything [`crate::serve`] needs besides its listener.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Bounds enforced on peers.
    pub limits: Limits,
    /// The relay id clients sign in `auth`. `None`: the one persisted in the
    /// store (generated on first use; random per process for memory).
    pub relay_id: Option<String>,
    /// The storage backend.
    pub store: StoreConfig,
    /// How often expired envelopes are swept.
    pub sweep_interval: Duration,
    /// Cluster mode: how long a relay's presence entries outlive its last
    /// refresh (refreshed every third of it), so a killed relay's users stop
    /// being online.
    pub presence_ttl: Duration,
}

/// Longest accepted relay id, in bytes.
pub const MAX_RELAY_ID_LEN: usize = 255;

impl Config {
    /// Default limits, the given store.
    pub fn new(store: StoreConfig) -> Self {
        Self {
            limits: Limits::default(),
            relay_id: None,
            store,
            sweep_interval: Duration::from_secs(60),
            presence_ttl: Duration::from_secs(30),
        }
    }

    /// Default limits, in-memory store.
    pub fn memory() -> Self {
        Self::new(StoreConfig::Memory)
    }

    /// Default limits, redb store in `data_dir`.
    pub fn redb(data_dir: impl Into<PathBuf>) -> Self {
        Self::new(StoreConfig::Redb {
            data_dir: data_dir.into(),
        })
    }

    /// Default limits, Redis at `url` (cluster mode).
    pub fn redis(url: impl Into<String>) -> Self {
        Self::new(StoreConfig::Redis { url: url.into() })
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets a fixed relay id.
    pub fn with_relay_id(mut self, relay_id: impl Into<String>) -> Self {
        self.relay_id = Some(relay_id.into());
        self
    }
}
