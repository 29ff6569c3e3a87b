//! Relay configuration: which store, which relay id, which limits, TLS.
//! How a process fills it from files, environment and flags: [`crate::settings`].

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

/// The PEM files of a TLS listener (`--tls-cert`, `--tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key.
    pub key: PathBuf,
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
    /// Longest graceful shutdown: after it, [`crate::serve`] returns even if
    /// connections or commits are still running.
    pub shutdown_timeout: Duration,
    /// Serve TLS (`wss://`) with these files; `None`: plain `ws://`.
    pub tls: Option<TlsFiles>,
    /// Serve `/metrics`, `/healthz` and `/readyz` on this separate
    /// plain-HTTP address instead of the main listener.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Load balancers trusted to send a PROXY protocol header: connections
    /// from these networks must start with one, and the address it names
    /// is the client's. Empty: PROXY protocol disabled.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
}

/// Longest PROXY protocol v1 header, CRLF included (HAProxy's
/// specification: 107 bytes).
pub const PROXY_V1_MAX_BYTES: usize = 107;
/// Longest PROXY protocol v2 header read, the 16 fixed bytes included. The
/// format allows 16 + 65535; addresses take at most 216 and the TLVs that
/// load balancers add (TLS details, unique ids, cloud endpoint ids) fit well
/// within this.
pub const PROXY_V2_MAX_BYTES: usize = 1024;

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
            shutdown_timeout: Duration::from_secs(10),
            tls: None,
            metrics_listen: None,
            proxy_protocol_from: Vec::new(),
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

    /// Serves TLS with these PEM files.
    pub fn with_tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Sets a fixed relay id.
    pub fn with_relay_id(mut self, relay_id: impl Into<String>) -> Self {
        self.relay_id = Some(relay_id.into());
        self
    }
}

/// A Redis URL without its credentials, for messages and logs:
/// `scheme://***@host...` when it has a user or password, unchanged when it
/// has none, and `<invalid URL>` when it has no scheme (nothing in it can
/// then be told apart from a password).
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => "<invalid URL>".to_owned(),
    }
}
