//! Every relay option in one table ([`OPTIONS`]): its TOML key, environment
//! variable, command-line flag, default and documentation. The binary builds
//! its flags from the table, `docs/operations.md` carries the same table
//! (a test compares them), and [`Settings::load`] resolves the values.
//!
//! Precedence, lowest first: built-in default < TOML file (`--config FILE`
//! or `HUSH_CONFIG`) < environment variable < command-line flag. Unknown
//! TOML keys are an error naming the key; an invalid value is an error
//! naming the option and where the value came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hush_protocol::Limits;

use crate::config::{Config, MAX_RELAY_ID_LEN, StoreConfig, TlsFiles};

/// One option: how it is named in each place, its default and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Key in the TOML file (also the id used everywhere else).
    pub key: &'static str,
    /// Long command-line flag, without the dashes.
    pub flag: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Placeholder for the value in `--help`.
    pub value_name: &'static str,
    /// The built-in default, as written in a file; `None`: unset.
    pub default: fn() -> Option<String>,
    /// One sentence for `--help` and the docs table.
    pub doc: &'static str,
    /// Also read by `hush-relay admin` subcommands.
    pub admin: bool,
}

/// The environment variable naming the configuration file (flag `--config`).
pub const CONFIG_ENV: &str = "HUSH_CONFIG";

fn none() -> Option<String> {
    None
}

fn lim() -> Limits {
    Limits::default()
}

macro_rules! opt {
    ($key:literal, $flag:literal, $env:literal, $vn:literal, $default:expr, $admin:literal, $doc:literal) => {
        Opt {
            key: $key,
            flag: $flag,
            env: $env,
            value_name: $vn,
            default: $default,
            doc: $doc,
            admin: $admin,
        }
    };
}

/// Every option of `hush-relay`, in the order of `--help` and the docs.
pub const OPTIONS: &[Opt] = &[
    opt!(
        "listen",
        "listen",
        "HUSH_LISTEN",
        "ADDR",
        || Some("127.0.0.1:7070".into()),
        false,
        "Address of the WebSocket endpoint (`/v1/ws`) and of `/healthz`, `/readyz` and `/metrics` (unless `metrics_listen` is set); port 0 picks a free port."
    ),
    opt!(
        "metrics_listen",
        "metrics-listen",
        "HUSH_METRICS_LISTEN",
        "ADDR",
        none,
        false,
        "Serve `/metrics`, `/healthz` and `/readyz` on this separate plain-HTTP address instead of `listen`."
    ),
    opt!(
        "tls_cert",
        "tls-cert",
        "HUSH_TLS_CERT",
        "FILE",
        none,
        false,
        "PEM certificate chain: serve `wss://` and `https://` with rustls (needs `tls_key`)."
    ),
    opt!(
        "tls_key",
        "tls-key",
        "HUSH_TLS_KEY",
        "FILE",
        none,
        false,
        "PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`."
    ),
    opt!(
        "store",
        "store",
        "HUSH_STORE",
        "redb|memory",
        || Some("redb".into()),
        false,
        "Storage backend without `redis_url`: `redb` (durable, in `data_dir`) or `memory` (lost on exit)."
    ),
    opt!(
        "data_dir",
        "data-dir",
        "HUSH_DATA_DIR",
        "DIR",
        || Some("./hush-data".into()),
        true,
        "Directory of the embedded redb database, created if missing."
    ),
    opt!(
        "redis_url",
        "redis",
        "HUSH_REDIS_URL",
        "URL",
        none,
        true,
        "Cluster mode: `redis://[:PASSWORD@]HOST:PORT[/DB]` shared by several relays; the embedded store is not used."
    ),
    opt!(
        "presence_ttl_secs",
        "presence-ttl-secs",
        "HUSH_PRESENCE_TTL_SECS",
        "SECS",
        || Some("30".into()),
        false,
        "Cluster mode: seconds a relay's presence entries outlive its last refresh."
    ),
    opt!(
        "relay_id",
        "relay-id",
        "HUSH_RELAY_ID",
        "ID",
        none,
        false,
        "Relay id that clients sign (1 to 255 bytes); unset: generated once and kept in the store."
    ),
    opt!(
        "sweep_interval_secs",
        "sweep-interval-secs",
        "HUSH_SWEEP_INTERVAL_SECS",
        "SECS",
        || Some("60".into()),
        false,
        "Seconds between retention sweeps."
    ),
    opt!(
        "shutdown_timeout_secs",
        "shutdown-timeout-secs",
        "HUSH_SHUTDOWN_TIMEOUT_SECS",
        "SECS",
        || Some("10".into()),
        false,
        "Longest graceful shutdown after SIGTERM or Ctrl-C (closing connections, finishing commits) before the relay exits anyway."
    ),
    opt!(
        "log_format",
        "log-format",
        "HUSH_LOG_FORMAT",
        "text|json",
        || Some("text".into()),
        true,
        "Log format on stderr: `text` (colour on a terminal) or `json` (one object per line). The filter is `RUST_LOG` (default `info`)."
    ),
    opt!(
        "max_frame_bytes",
        "max-frame-bytes",
        "HUSH_MAX_FRAME_BYTES",
        "BYTES",
        || Some(lim().max_frame_bytes.to_string()),
        false,
        "Largest text frame read; larger ones close with 1009."
    ),
    opt!(
        "max_envelope_bytes",
        "max-envelope-bytes",
        "HUSH_MAX_ENVELOPE_BYTES",
        "BYTES",
        || Some(lim().max_envelope_bytes.to_string()),
        false,
        "Largest envelope body in decoded bytes (`envelope_too_large`)."
    ),
    opt!(
        "max_prekeys_per_upload",
        "max-prekeys-per-upload",
        "HUSH_MAX_PREKEYS_PER_UPLOAD",
        "N",
        || Some(lim().max_prekeys_per_upload.to_string()),
        false,
        "Most one-time prekeys per upload (`too_many_prekeys`)."
    ),
    opt!(
        "max_prekeys_stored",
        "max-prekeys-stored",
        "HUSH_MAX_PREKEYS_STORED",
        "N",
        || Some(lim().max_prekeys_stored.to_string()),
        false,
        "Most one-time prekeys stored per user (`too_many_prekeys`)."
    ),
    opt!(
        "prekey_low_threshold",
        "prekey-low-threshold",
        "HUSH_PREKEY_LOW_THRESHOLD",
        "N",
        || Some(lim().prekey_low_threshold.to_string()),
        false,
        "Send `prekeys_low` to the owner when fewer one-time prekeys remain."
    ),
    opt!(
        "mailbox_max_envelopes",
        "mailbox-max-envelopes",
        "HUSH_MAILBOX_MAX_ENVELOPES",
        "N",
        || Some(lim().mailbox_max_envelopes.to_string()),
        false,
        "Most envelopes waiting per mailbox (`mailbox_full`)."
    ),
    opt!(
        "mailbox_max_bytes",
        "mailbox-max-bytes",
        "HUSH_MAILBOX_MAX_BYTES",
        "BYTES",
        || Some(lim().mailbox_max_bytes.to_string()),
        false,
        "Most body bytes waiting per mailbox (`mailbox_full`)."
    ),
    opt!(
        "retention_secs",
        "retention-secs",
        "HUSH_RETENTION_SECS",
        "SECS",
        || Some(lim().retention.as_secs().to_string()),
        true,
        "Seconds an unacknowledged envelope is kept (also what `admin purge-expired` uses)."
    ),
    opt!(
        "rate_per_sec",
        "rate-per-sec",
        "HUSH_RATE_PER_SEC",
        "N",
        || Some(lim().rate_per_sec.to_string()),
        false,
        "Frames per second per connection, sustained (`rate_limited`)."
    ),
    opt!(
        "rate_burst",
        "rate-burst",
        "HUSH_RATE_BURST",
        "N",
        || Some(lim().rate_burst.to_string()),
        false,
        "Frames per connection in a burst."
    ),
    opt!(
        "max_connections_per_ip",
        "max-connections-per-ip",
        "HUSH_MAX_CONNECTIONS_PER_IP",
        "N",
        || Some(lim().max_connections_per_ip.to_string()),
        false,
        "Most simultaneous connections per IP address, counted from the TCP accept (HTTP 429 beyond)."
    ),
    opt!(
        "max_connections",
        "max-connections",
        "HUSH_MAX_CONNECTIONS",
        "N",
        || Some(lim().max_connections.to_string()),
        false,
        "Most simultaneous connections in all, counted from the TCP accept (HTTP 503 beyond); lowered at start to fit the process's file descriptor limit."
    ),
    opt!(
        "upgrade_timeout_ms",
        "upgrade-timeout-ms",
        "HUSH_UPGRADE_TIMEOUT_MS",
        "MS",
        || Some(lim().upgrade_timeout.as_millis().to_string()),
        false,
        "Milliseconds from the TCP accept to the WebSocket upgrade, or to a plain HTTP request being read (PROXY header and TLS handshake included); slower connections are closed."
    ),
    opt!(
        "proxy_protocol_from",
        "proxy-protocol-from",
        "HUSH_PROXY_PROTOCOL_FROM",
        "CIDR[,CIDR...]",
        none,
        false,
        "Networks of trusted load balancers: connections from them must start with a PROXY protocol v1 or v2 header, whose source address then counts for every per-address limit; unset: disabled."
    ),
    opt!(
        "ping_interval_secs",
        "ping-interval-secs",
        "HUSH_PING_INTERVAL_SECS",
        "SECS",
        || Some(lim().ping_interval.as_secs().to_string()),
        false,
        "Seconds of silence from a peer before the relay sends it a WebSocket ping."
    ),
    opt!(
        "idle_timeout_secs",
        "idle-timeout-secs",
        "HUSH_IDLE_TIMEOUT_SECS",
        "SECS",
        || Some(lim().idle_timeout.as_secs().to_string()),
        false,
        "Seconds of silence (no frame, no pong) before a connection is dropped as half-open (4004); more than `ping_interval_secs`."
    ),
    opt!(
        "bundle_fetch_burst",
        "bundle-fetch-burst",
        "HUSH_BUNDLE_FETCH_BURST",
        "N",
        || Some(lim().bundle_fetch_burst.to_string()),
        false,
        "`fetch_bundle` requests per user in a burst (`rate_limited`; 0: no cap)."
    ),
    opt!(
        "bundle_fetches_per_hour",
        "bundle-fetches-per-hour",
        "HUSH_BUNDLE_FETCHES_PER_HOUR",
        "N",
        || Some(lim().bundle_fetches_per_hour.to_string()),
        false,
        "`fetch_bundle` requests per user per hour, sustained."
    ),
    opt!(
        "registration_burst",
        "registration-burst",
        "HUSH_REGISTRATION_BURST",
        "N",
        || Some(lim().registration_burst.to_string()),
        false,
        "New registrations per IP address in a burst (`rate_limited`, close 4001; 0: no cap)."
    ),
    opt!(
        "registrations_per_hour",
        "registrations-per-hour",
        "HUSH_REGISTRATIONS_PER_HOUR",
        "N",
        || Some(lim().registrations_per_hour.to_string()),
        false,
        "New registrations per IP address per hour, sustained."
    ),
    opt!(
        "max_presence_allow",
        "max-presence-allow",
        "HUSH_MAX_PRESENCE_ALLOW",
        "N",
        || Some(lim().max_presence_allow.to_string()),
        false,
        "Most user ids on one user's presence allow list (`limit_exceeded`)."
    ),
    opt!(
        "max_presence_query",
        "max-presence-query",
        "HUSH_MAX_PRESENCE_QUERY",
        "N",
        || Some(lim().max_presence_query.to_string()),
        false,
        "Most user ids in one `presence_query` (`limit_exceeded`)."
    ),
    opt!(
        "max_presence_subscriptions",
        "max-presence-subscriptions",
        "HUSH_MAX_PRESENCE_SUBSCRIPTIONS",
        "N",
        || Some(lim().max_presence_subscriptions.to_string()),
        false,
        "Most presence subscriptions per user (`limit_exceeded`)."
    ),
    opt!(
        "presence_rate_per_sec",
        "presence-rate-per-sec",
        "HUSH_PRESENCE_RATE_PER_SEC",
        "N",
        || Some(lim().presence_rate_per_sec.to_string()),
        false,
        "Presence requests and ephemeral sends per second per connection, sustained (`rate_limited`)."
    ),
    opt!(
        "presence_rate_burst",
        "presence-rate-burst",
        "HUSH_PRESENCE_RATE_BURST",
        "N",
        || Some(lim().presence_rate_burst.to_string()),
        false,
        "Presence requests and ephemeral sends per connection in a burst."
    ),
    opt!(
        "ip_rate_per_sec",
        "ip-rate-per-sec",
        "HUSH_IP_RATE_PER_SEC",
        "N",
        || Some(lim().ip_rate_per_sec.to_string()),
        false,
        "Frames per second per IP address over all its connections, sustained (`rate_limited`)."
    ),
    opt!(
        "ip_rate_burst",
        "ip-rate-burst",
        "HUSH_IP_RATE_BURST",
        "N",
        || Some(lim().ip_rate_burst.to_string()),
        false,
        "Frames per IP address in a burst, over all its connections (0: no per-address rate)."
    ),
    opt!(
        "byte_rate_per_sec",
        "byte-rate-per-sec",
        "HUSH_BYTE_RATE_PER_SEC",
        "BYTES",
        || Some(lim().byte_rate_per_sec.to_string()),
        false,
        "Bytes per second one connection may send, sustained; beyond it the relay stops reading from it until the budget is back (0: no limit)."
    ),
    opt!(
        "byte_rate_burst",
        "byte-rate-burst",
        "HUSH_BYTE_RATE_BURST",
        "BYTES",
        || Some(lim().byte_rate_burst.to_string()),
        false,
        "Bytes one connection may send in a burst."
    ),
    opt!(
        "ip_byte_rate_per_sec",
        "ip-byte-rate-per-sec",
        "HUSH_IP_BYTE_RATE_PER_SEC",
        "BYTES",
        || Some(lim().ip_byte_rate_per_sec.to_string()),
        false,
        "Bytes per second per IP address over all its connections, sustained; beyond it its connections are not read until the budget is back (0: no limit)."
    ),
    opt!(
        "ip_byte_rate_burst",
        "ip-byte-rate-burst",
        "HUSH_IP_BYTE_RATE_BURST",
        "BYTES",
        || Some(lim().ip_byte_rate_burst.to_string()),
        false,
        "Bytes per IP address in a burst, over all its connections (0: no per-address byte rate)."
    ),
    opt!(
        "max_in_flight_bytes",
        "max-in-flight-bytes",
        "HUSH_MAX_IN_FLIGHT_BYTES",
        "BYTES",
        || Some(lim().max_in_flight_bytes.to_string()),
        false,
        "Most envelope body bytes of one connection's sends awaiting their commit; beyond it nothing more is read from the connection until some complete."
    ),
    opt!(
        "auth_timeout_ms",
        "auth-timeout-ms",
        "HUSH_AUTH_TIMEOUT_MS",
        "MS",
        || Some(lim().auth_timeout.as_millis().to_string()),
        false,
        "Milliseconds from connecting to a successful `auth` (close 4002)."
    ),
    opt!(
        "max_ack_ids",
        "max-ack-ids",
        "HUSH_MAX_ACK_IDS",
        "N",
        || Some(lim().max_ack_ids.to_string()),
        false,
        "Most ids per `ack` (`too_many_ids`)."
    ),
    opt!(
        "outbound_queue",
        "outbound-queue",
        "HUSH_OUTBOUND_QUEUE",
        "FRAMES",
        || Some(lim().outbound_queue.to_string()),
        false,
        "Frames queued per connection before it is closed as a slow consumer (4003)."
    ),
];

/// Looks an option up by its key.
pub fn option(key: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.key == key)
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(&'static str),
    /// This command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the built-in default"),
            Self::File(p) => write!(f, "the configuration file {}", p.display()),
            Self::Env(v) => write!(f, "the environment variable {v}"),
            Self::Flag(flag) => write!(f, "the flag --{flag}"),
        }
    }
}

/// Why the configuration is unusable. Every variant names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value does not parse or is out of range.
    #[error("invalid value {value:?} for option `{option}` (from {origin}): {reason}")]
    Invalid {
        /// The option's key.
        option: &'static str,
        /// The value as given.
        value: String,
        /// Where it came from.
        origin: Source,
        /// What is wrong with it.
        reason: String,
    },
    /// A key in the TOML file that is not an option.
    #[error("unknown option `{key}` in the configuration file {}", file.display())]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        file: PathBuf,
    },
    /// The configuration file cannot be read or is not TOML.
    #[error("cannot use the configuration file {} (option `config`): {reason}", file.display())]
    File {
        /// The file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// Two options that only make sense together.
    #[error("option `{option}` needs option `{needs}` too")]
    Missing {
        /// The option given.
        option: &'static str,
        /// The option missing.
        needs: &'static str,
    },
}

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

/// Reads the TOML file: a flat table of option keys to strings, integers
/// or booleans.
fn read_file(path: &Path) -> Result<Vec<(&'static str, String)>, SettingsError> {
    let file_err = |reason: String| SettingsError::File {
        file: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_err(e.to_string().trim_end().to_owned()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let Some(opt) = option(&key) else {
            return Err(SettingsError::UnknownKey {
                key,
                file: path.to_owned(),
            });
        };
        let v = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(SettingsError::Invalid {
                    option: opt.key,
                    value: other.to_string(),
                    origin: Source::File(path.to_owned()),
                    reason: format!(
                        "expected a string or an integer, found a {}",
                        other.type_str()
                    ),
                });
            }
        };
        out.push((opt.key, v));
    }
    Ok(out)
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
                value: crate::store::redis_store::redact(url),
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

/// The options table of `docs/operations.md`, generated from [`OPTIONS`].
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| TOML key | flag | environment | default | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for o in OPTIONS {
        let default = (o.default)().map_or_else(|| "unset".to_owned(), |d| format!("`{d}`"));
        out.push_str(&format!(
            "| `{}` | `--{}` | `{}` | {} | {} |\n",
            o.key,
            o.flag,
            o.env,
            default,
            o.doc.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_match_the_protocol_limits() {
        let s = Settings::load(None, no_env, &[]).unwrap();
        assert_eq!(s.config.limits, Limits::default());
        assert_eq!(s.listen, "127.0.0.1:7070".parse().unwrap());
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(
            s.config.store,
            StoreConfig::Redb {
                data_dir: "./hush-data".into()
            }
        );
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(
            &file,
            "max_ack_ids = 7\nrate_burst = 8\nrate_per_sec = 9\nlisten = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "HUSH_RATE_BURST" => Some("80".to_owned()),
            "HUSH_RATE_PER_SEC" => Some("90".to_owned()),
            _ => None,
        };
        let s = Settings::load(Some(&file), env, &[("rate_per_sec", "900".into())]).unwrap();
        assert_eq!(s.config.limits.max_ack_ids, 7, "file over default");
        assert_eq!(s.config.limits.rate_burst, 80, "env over file");
        assert_eq!(s.config.limits.rate_per_sec, 900, "flag over env");
        assert_eq!(s.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(
            s.config.limits.max_frame_bytes,
            Limits::default().max_frame_bytes
        );
    }

    #[test]
    fn config_file_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(&file, "store = \"memory\"\n").unwrap();
        let path = file.display().to_string();
        let env = move |name: &str| (name == CONFIG_ENV).then(|| path.clone());
        let s = Settings::load(None, env, &[]).unwrap();
        assert_eq!(s.config.store, StoreConfig::Memory);
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(&file, "max_frame_byte = 10\n").unwrap();
        let e = Settings::load(Some(&file), no_env, &[]).unwrap_err();
        assert!(matches!(&e, SettingsError::UnknownKey { key, .. } if key == "max_frame_byte"));
        assert!(
            e.to_string().contains("unknown option `max_frame_byte`"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_option_and_source() {
        let env = |name: &str| (name == "HUSH_MAX_FRAME_BYTES").then(|| "lots".to_owned());
        let e = Settings::load(None, env, &[]).unwrap_err().to_string();
        assert!(e.contains("`max_frame_bytes`"), "{e}");
        assert!(e.contains("HUSH_MAX_FRAME_BYTES"), "{e}");

        let e = Settings::load(None, no_env, &[("outbound_queue", "0".into())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`outbound_queue`") && e.contains("--outbound-queue"),
            "{e}"
        );
        assert!(e.contains("at least 1"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(&file, "listen = [1, 2]\n").unwrap();
        let e = Settings::load(Some(&file), no_env, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`listen`") && e.contains("relay.toml"), "{e}");

        let e = Settings::load(None, no_env, &[("log_format", "xml".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`log_format`"), "{e}");
    }

    #[test]
    fn idle_timeout_must_exceed_the_ping_interval() {
        let e = Settings::load(
            None,
            no_env,
            &[
                ("ping_interval_secs", "30".into()),
                ("idle_timeout_secs", "30".into()),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`idle_timeout_secs`"), "{e}");
    }

    #[test]
    fn tls_needs_both_files() {
        let e = Settings::load(None, no_env, &[("tls_cert", "c.pem".into())]).unwrap_err();
        assert_eq!(
            e,
            SettingsError::Missing {
                option: "tls_cert",
                needs: "tls_key"
            }
        );
    }

    #[test]
    fn empty_env_counts_as_unset_and_redis_password_is_hidden() {
        let env = |name: &str| (name == "HUSH_LISTEN").then(String::new);
        assert!(Settings::load(None, env, &[]).is_ok());
        let e = Settings::load(None, no_env, &[("redis_url", "http://:secret@h".into())])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn proxy_networks_parse_and_bad_ones_are_named() {
        let s = Settings::load(
            None,
            no_env,
            &[(
                "proxy_protocol_from",
                "10.0.0.0/8, 127.0.0.2,fd00::/8".into(),
            )],
        )
        .unwrap();
        let nets: Vec<String> = s
            .config
            .proxy_protocol_from
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.2/32", "fd00::/8"]);
        let e = Settings::load(None, no_env, &[("proxy_protocol_from", "10.0.0/8".into())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`proxy_protocol_from`") && e.contains("10.0.0/8"),
            "{e}"
        );
        let s = Settings::load(None, no_env, &[]).unwrap();
        assert!(
            s.config.proxy_protocol_from.is_empty(),
            "disabled by default"
        );
    }

    #[test]
    fn every_option_has_distinct_names() {
        let mut keys: Vec<_> = OPTIONS.iter().map(|o| o.key).collect();
        let mut envs: Vec<_> = OPTIONS.iter().map(|o| o.env).collect();
        let mut flags: Vec<_> = OPTIONS.iter().map(|o| o.flag).collect();
        for v in [&mut keys, &mut envs, &mut flags] {
            let n = v.len();
            v.sort_unstable();
            v.dedup();
            assert_eq!(v.len(), n);
        }
    }
}
