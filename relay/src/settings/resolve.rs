//! The resolver: defaults < TOML file < environment < flags, then every
//! value parsed and checked into [`Settings`] (and its [`Config`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hush_protocol::Limits;

use super::error::{SettingsError, Source};
use super::file::read_file;
use super::options::{CONFIG_ENV, OPTIONS, option};
use crate::config::{Config, MAX_RELAY_ID_LEN, StoreConfig, TlsFiles};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colour only on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// Resolved settings of a relay process.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Where the WebSocket endpoint listens.
    pub listen: SocketAddr,
    /// Where `/metrics` is served, if not on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Log format on stderr.
    pub log_format: LogFormat,
    /// Everything `serve` needs.
    pub config: Config,
    /// The data directory (also for `admin`).
    pub data_dir: PathBuf,
    /// Cluster mode's Redis (also for `admin`).
    pub redis_url: Option<String>,
}

/// Raw values by key, with their source, before parsing.
#[derive(Debug, Default)]
struct Raw(BTreeMap<&'static str, (String, Source)>);

impl Raw {
    fn get(&self, key: &'static str) -> Option<(&str, &Source)> {
        self.0.get(key).map(|(v, s)| (v.as_str(), s))
    }

    fn invalid(&self, key: &'static str, reason: impl Into<String>) -> SettingsError {
        let (value, source) = self
            .0
            .get(key)
            .cloned()
            .unwrap_or((String::new(), Source::Default));
        SettingsError::Invalid {
            option: key,
            value,
            origin: source,
            reason: reason.into(),
        }
    }

    fn parse<T: std::str::FromStr>(&self, key: &'static str) -> Result<Option<T>, SettingsError>
    where
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some((v, _)) => v
                .parse::<T>()
                .map(Some)
                .map_err(|e| self.invalid(key, e.to_string())),
        }
    }

    /// A number that must be given (it has a default) and at least `min`.
    fn num<T>(&self, key: &'static str, min: T) -> Result<T, SettingsError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
        T::Err: fmt::Display,
    {
        let v = self
            .parse::<T>(key)?
            .ok_or_else(|| self.invalid(key, "missing"))?;
        if v < min {
            return Err(self.invalid(key, format!("must be at least {min}")));
        }
        Ok(v)
    }

    fn string(&self, key: &'static str) -> Option<String> {
        self.get(key).map(|(v, _)| v.to_owned())
    }
}

impl Settings {
    /// Resolves every option: defaults, then the TOML file (`config_file`,
    /// else the `HUSH_CONFIG` variable), then environment variables (read
    /// through `env`; an empty value counts as unset), then `flags` (option
    /// key and value, as given on the command line).
    pub fn load(
        config_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(&'static str, String)],
    ) -> Result<Self, SettingsError> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let mut raw = Raw::default();
        for o in OPTIONS {
            if let Some(d) = (o.default)() {
                raw.0.insert(o.key, (d, Source::Default));
            }
        }
        let file = config_file
            .map(Path::to_owned)
            .or_else(|| env(CONFIG_ENV).map(PathBuf::from));
        if let Some(path) = &file {
            for (key, v) in read_file(path)? {
                raw.0.insert(key, (v, Source::File(path.clone())));
            }
        }
        for o in OPTIONS {
            if let Some(v) = env(o.env) {
                raw.0.insert(o.key, (v, Source::Env(o.env)));
            }
        }
        for (key, v) in flags {
            if let Some(o) = option(key) {
                raw.0.insert(o.key, (v.clone(), Source::Flag(o.flag)));
            }
        }
        Self::resolve(&raw)
    }

    fn resolve(raw: &Raw) -> Result<Self, SettingsError> {
        let listen = raw
            .parse::<SocketAddr>("listen")?
            .ok_or_else(|| raw.invalid("listen", "missing"))?;
        let metrics_listen = raw.parse::<SocketAddr>("metrics_listen")?;
        let log_format = match raw.get("log_format").map(|(v, _)| v) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(raw.invalid("log_format", "expected `text` or `json`")),
        };
        let data_dir = PathBuf::from(raw.string("data_dir").unwrap_or_default());
        let redis_url = raw.string("redis_url");
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            // Shown without the rest of the URL: it may hold a password.
            return Err(SettingsError::Invalid {
                option: "redis_url",
                value: crate::config::redact_url(url),
                origin: raw
                    .get("redis_url")
                    .map(|(_, s)| s.clone())
                    .unwrap_or(Source::Default),
                reason: "expected redis://HOST:PORT[/DB]".into(),
            });
        }
        let store = match (&redis_url, raw.get("store").map(|(v, _)| v)) {
            (Some(url), _) => StoreConfig::Redis { url: url.clone() },
            (None, None | Some("redb")) => StoreConfig::Redb {
                data_dir: data_dir.clone(),
            },
            (None, Some("memory")) => StoreConfig::Memory,
            (None, Some(_)) => return Err(raw.invalid("store", "expected `redb` or `memory`")),
        };
        let relay_id = raw.string("relay_id");
        if let Some(id) = &relay_id
            && (id.is_empty() || id.len() > MAX_RELAY_ID_LEN)
        {
            return Err(raw.invalid("relay_id", format!("must be 1 to {MAX_RELAY_ID_LEN} bytes")));
        }
        let tls = match (raw.string("tls_cert"), raw.string("tls_key")) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(SettingsError::Missing {
                    option: "tls_cert",
                    needs: "tls_key",
                });
            }
            (None, Some(_)) => {
                return Err(SettingsError::Missing {
                    option: "tls_key",
                    needs: "tls_cert",
                });
            }
        };

        let mut limits = Limits::default();
        limits.max_frame_bytes = raw.num("max_frame_bytes", 1024usize)?;
        limits.max_send_frame_bytes = raw
            .num("max_send_frame_bytes", 1024usize)?
            .max(limits.max_frame_bytes);
        limits.max_envelope_bytes = raw.num("max_envelope_bytes", 1usize)?;
        limits.max_prekeys_per_upload = raw.num("max_prekeys_per_upload", 1usize)?;
        limits.max_prekeys_stored = raw.num("max_prekeys_stored", 1usize)?;
        limits.prekey_low_threshold = raw.num("prekey_low_threshold", 0u32)?;
        limits.mailbox_max_envelopes = raw.num("mailbox_max_envelopes", 1u64)?;
        limits.mailbox_max_bytes = raw.num("mailbox_max_bytes", 1u64)?;
        limits.retention = Duration::from_secs(raw.num("retention_secs", 1u64)?);
        limits.rate_per_sec = raw.num("rate_per_sec", 1u32)?;
        limits.rate_burst = raw.num("rate_burst", 1u32)?;
        limits.max_connections_per_ip = raw.num("max_connections_per_ip", 1usize)?;
        limits.max_connections = raw.num("max_connections", 1usize)?;
        limits.upgrade_timeout = Duration::from_millis(raw.num("upgrade_timeout_ms", 1u64)?);
        let ping = raw.num("ping_interval_secs", 1u64)?;
        let idle = raw.num("idle_timeout_secs", 1u64)?;
        if idle <= ping {
            return Err(raw.invalid(
                "idle_timeout_secs",
                format!("must be more than ping_interval_secs ({ping})"),
            ));
        }
        limits.ping_interval = Duration::from_secs(ping);
        limits.idle_timeout = Duration::from_secs(idle);
        limits.bundle_fetch_burst = raw.num("bundle_fetch_burst", 0u32)?;
        limits.bundle_fetches_per_hour = raw.num("bundle_fetches_per_hour", 0u32)?;
        limits.registration_burst = raw.num("registration_burst", 0u32)?;
        limits.registrations_per_hour = raw.num("registrations_per_hour", 0u32)?;
        limits.max_presence_allow = raw.num("max_presence_allow", 0usize)?;
        limits.max_presence_query = raw.num("max_presence_query", 1usize)?;
        limits.max_presence_subscriptions = raw.num("max_presence_subscriptions", 0usize)?;
        limits.presence_rate_per_sec = raw.num("presence_rate_per_sec", 1u32)?;
        limits.presence_rate_burst = raw.num("presence_rate_burst", 1u32)?;
        limits.ip_rate_per_sec = raw.num("ip_rate_per_sec", 0u32)?;
        limits.ip_rate_burst = raw.num("ip_rate_burst", 0u32)?;
        limits.byte_rate_per_sec = raw.num("byte_rate_per_sec", 0u32)?;
        limits.byte_rate_burst = raw.num("byte_rate_burst", 1u32)?;
        limits.ip_byte_rate_per_sec = raw.num("ip_byte_rate_per_sec", 0u32)?;
        limits.ip_byte_rate_burst = raw.num("ip_byte_rate_burst", 0u32)?;
        limits.max_in_flight_bytes = raw.num("max_in_flight_bytes", 1usize)?;
        limits.auth_timeout = Duration::from_millis(raw.num("auth_timeout_ms", 1u64)?);
        limits.max_ack_ids = raw.num("max_ack_ids", 1usize)?;
        limits.outbound_queue = raw.num("outbound_queue", 1usize)?;

        let mut config = Config::new(store).with_limits(limits);
        config.relay_id = relay_id;
        config.sweep_interval = Duration::from_secs(raw.num("sweep_interval_secs", 1u64)?);
        config.presence_ttl = Duration::from_secs(raw.num("presence_ttl_secs", 1u64)?);
        config.shutdown_timeout = Duration::from_secs(raw.num("shutdown_timeout_secs", 1u64)?);
        config.tls = tls;
        config.metrics_listen = metrics_listen;
        config.proxy_protocol_from = match raw.get("proxy_protocol_from") {
            None => Vec::new(),
            Some((v, _)) => parse_networks(v).map_err(|e| raw.invalid("proxy_protocol_from", e))?,
        };
        Ok(Self {
            listen,
            metrics_listen,
            log_format,
            config,
            data_dir,
            redis_url,
        })
    }
}

/// A comma-separated list of networks (`10.0.0.0/8`, `fd00::/8`); a bare
/// address stands for itself alone.
fn parse_networks(v: &str) -> Result<Vec<ipnet::IpNet>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    format!("`{p}` is not a network (CIDR such as 10.0.0.0/8) or an address")
                })
        })
        .collect()
}
