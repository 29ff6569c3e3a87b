//! The option table: every relay option ([`OPTIONS`]) with its TOML key,
//! environment variable, command-line flag, default and documentation. The
//! binary builds its flags from it, [`super::docs`] renders it for
//! `docs/operations.md`, and the resolver reads values by its keys.

use hush_protocol::Limits;

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
        "max_send_frame_bytes",
        "max-send-frame-bytes",
        "HUSH_MAX_SEND_FRAME_BYTES",
        "BYTES",
        || Some(lim().max_send_frame_bytes.to_string()),
        false,
        "Largest `send_copies` frame read (one body per device); larger ones close with 1009. At least `max_frame_bytes`."
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
