//! `hush-relay`: flags and environment, tracing, then [`hush_relay::serve`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use hush_protocol::{Limits, UserId};
use hush_relay::{Config, StoreConfig};

/// Hush relay: authenticates users by their identity keys, keeps their
/// published prekeys, and queues end-to-end encrypted envelopes until the
/// recipient acknowledges them. Every option can also be set by the
/// environment variable shown. Logs go to stderr, filtered by RUST_LOG
/// (default `info`).
#[derive(Debug, Parser)]
#[command(name = "hush-relay", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Address to listen on (HTTP: `GET /healthz`, WebSocket: `/v1/ws`).
    /// Port 0 picks a free port. The first stdout line is exactly
    /// `listening on ADDR`.
    #[arg(long, env = "HUSH_LISTEN", default_value = "127.0.0.1:7070")]
    listen: std::net::SocketAddr,

    /// Directory of the embedded database (redb store), created if missing.
    #[arg(
        long,
        env = "HUSH_DATA_DIR",
        default_value = "./hush-data",
        global = true
    )]
    data_dir: PathBuf,

    /// Storage backend: `redb` (durable, in --data-dir) or `memory` (lost on
    /// exit).
    #[arg(long, env = "HUSH_STORE", value_enum, default_value_t = StoreKind::Redb)]
    store: StoreKind,

    /// Cluster mode: keep the directory, prekeys, mailboxes and presence in
    /// this Redis (`redis://HOST:PORT[/DB]`) shared by several relays; the
    /// embedded store is not used. Startup fails if Redis does not answer.
    /// Also where `admin reset-user` works when given.
    #[arg(long, env = "HUSH_REDIS_URL", global = true)]
    redis: Option<String>,

    /// Cluster mode: seconds a relay's presence entries outlive its last
    /// refresh (a killed relay's users stop being online after this).
    #[arg(long, env = "HUSH_PRESENCE_TTL_SECS", default_value_t = 30)]
    presence_ttl_secs: u64,

    /// Relay id that clients sign during authentication. Default: generated
    /// once and kept in the data directory (memory store: random per run).
    #[arg(long, env = "HUSH_RELAY_ID")]
    relay_id: Option<String>,

    /// Seconds between retention sweeps.
    #[arg(long, env = "HUSH_SWEEP_INTERVAL_SECS", default_value_t = 60)]
    sweep_interval_secs: u64,

    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    Redb,
    Memory,
}

/// Limits (defaults are the protocol's).
#[derive(Debug, Args)]
struct LimitArgs {
    /// Largest text frame read, in bytes; larger ones close with 1009.
    #[arg(long, env = "HUSH_MAX_FRAME_BYTES", default_value_t = Limits::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// Largest envelope body in decoded bytes (`envelope_too_large`).
    #[arg(long, env = "HUSH_MAX_ENVELOPE_BYTES", default_value_t = Limits::default().max_envelope_bytes)]
    max_envelope_bytes: usize,
    /// Most one-time prekeys per upload (`too_many_prekeys`).
    #[arg(long, env = "HUSH_MAX_PREKEYS_PER_UPLOAD", default_value_t = Limits::default().max_prekeys_per_upload)]
    max_prekeys_per_upload: usize,
    /// Most one-time prekeys stored per user (`too_many_prekeys`).
    #[arg(long, env = "HUSH_MAX_PREKEYS_STORED", default_value_t = Limits::default().max_prekeys_stored)]
    max_prekeys_stored: usize,
    /// Send `prekeys_low` to the owner when fewer one-time prekeys remain.
    #[arg(long, env = "HUSH_PREKEY_LOW_THRESHOLD", default_value_t = Limits::default().prekey_low_threshold)]
    prekey_low_threshold: u32,
    /// Most envelopes waiting per mailbox (`mailbox_full`).
    #[arg(long, env = "HUSH_MAILBOX_MAX_ENVELOPES", default_value_t = Limits::default().mailbox_max_envelopes)]
    mailbox_max_envelopes: u64,
    /// Most body bytes waiting per mailbox (`mailbox_full`).
    #[arg(long, env = "HUSH_MAILBOX_MAX_BYTES", default_value_t = Limits::default().mailbox_max_bytes)]
    mailbox_max_bytes: u64,
    /// Seconds an unacknowledged envelope is kept.
    #[arg(long, env = "HUSH_RETENTION_SECS", default_value_t = Limits::default().retention.as_secs())]
    retention_secs: u64,
    /// Frames per second per connection, sustained (`rate_limited`).
    #[arg(long, env = "HUSH_RATE_PER_SEC", default_value_t = Limits::default().rate_per_sec)]
    rate_per_sec: u32,
    /// Frames per connection in a burst.
    #[arg(long, env = "HUSH_RATE_BURST", default_value_t = Limits::default().rate_burst)]
    rate_burst: u32,
    /// Most simultaneous connections per IP address (HTTP 429 beyond).
    #[arg(long, env = "HUSH_MAX_CONNECTIONS_PER_IP", default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// Most simultaneous connections in all (HTTP 503 beyond).
    #[arg(long, env = "HUSH_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Seconds of silence from a peer before the relay pings it.
    #[arg(long, env = "HUSH_PING_INTERVAL_SECS", default_value_t = Limits::default().ping_interval.as_secs())]
    ping_interval_secs: u64,
    /// Seconds of silence (no frame, no pong) before a connection is
    /// dropped as half-open (close 4004).
    #[arg(long, env = "HUSH_IDLE_TIMEOUT_SECS", default_value_t = Limits::default().idle_timeout.as_secs())]
    idle_timeout_secs: u64,
    /// `fetch_bundle` requests per user in a burst (0: no cap).
    #[arg(long, env = "HUSH_BUNDLE_FETCH_BURST", default_value_t = Limits::default().bundle_fetch_burst)]
    bundle_fetch_burst: u32,
    /// `fetch_bundle` requests per user per hour, sustained.
    #[arg(long, env = "HUSH_BUNDLE_FETCHES_PER_HOUR", default_value_t = Limits::default().bundle_fetches_per_hour)]
    bundle_fetches_per_hour: u32,
    /// New registrations per IP address in a burst (0: no cap).
    #[arg(long, env = "HUSH_REGISTRATION_BURST", default_value_t = Limits::default().registration_burst)]
    registration_burst: u32,
    /// New registrations per IP address per hour, sustained.
    #[arg(long, env = "HUSH_REGISTRATIONS_PER_HOUR", default_value_t = Limits::default().registrations_per_hour)]
    registrations_per_hour: u32,
    /// Milliseconds from connecting to a successful `auth` (close 4002).
    #[arg(long, env = "HUSH_AUTH_TIMEOUT_MS", default_value_t = 10_000)]
    auth_timeout_ms: u64,
    /// Most ids per `ack` (`too_many_ids`).
    #[arg(long, env = "HUSH_MAX_ACK_IDS", default_value_t = Limits::default().max_ack_ids)]
    max_ack_ids: usize,
    /// Frames queued per connection before it is closed as a slow consumer
    /// (4003).
    #[arg(long, env = "HUSH_OUTBOUND_QUEUE", default_value_t = Limits::default().outbound_queue)]
    outbound_queue: usize,
}

impl LimitArgs {
    fn to_limits(&self) -> Limits {
        let mut l = Limits::default();
        l.max_frame_bytes = self.max_frame_bytes;
        l.max_envelope_bytes = self.max_envelope_bytes;
        l.max_prekeys_per_upload = self.max_prekeys_per_upload;
        l.max_prekeys_stored = self.max_prekeys_stored;
        l.prekey_low_threshold = self.prekey_low_threshold;
        l.mailbox_max_envelopes = self.mailbox_max_envelopes;
        l.mailbox_max_bytes = self.mailbox_max_bytes;
        l.retention = Duration::from_secs(self.retention_secs);
        l.rate_per_sec = self.rate_per_sec;
        l.rate_burst = self.rate_burst;
        l.max_connections_per_ip = self.max_connections_per_ip;
        l.max_connections = self.max_connections;
        l.ping_interval = Duration::from_secs(self.ping_interval_secs.max(1));
        l.idle_timeout = Duration::from_secs(self.idle_timeout_secs.max(1));
        l.bundle_fetch_burst = self.bundle_fetch_burst;
        l.bundle_fetches_per_hour = self.bundle_fetches_per_hour;
        l.registration_burst = self.registration_burst;
        l.registrations_per_hour = self.registrations_per_hour;
        l.auth_timeout = Duration::from_millis(self.auth_timeout_ms);
        l.max_ack_ids = self.max_ack_ids;
        l.outbound_queue = self.outbound_queue;
        l
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Operator commands on a stopped relay's data directory.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Debug, Subcommand)]
enum Admin {
    /// Deletes a user with its keys, mailbox and envelope counter, so the id
    /// can be registered again (by any key). The relay must be stopped.
    ResetUser {
        /// The user id to free.
        user_id: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Colour only on a terminal (and not under NO_COLOR): log files and
    // journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    if let Some(Command::Admin(Admin::ResetUser { user_id })) = &cli.command {
        let user = UserId::try_from(user_id.as_str())
            .with_context(|| format!("invalid user id {user_id:?}"))?;
        let existed = match &cli.redis {
            Some(url) => {
                use hush_relay::Store as _;
                let store = hush_relay::RedisStore::connect(url).await?;
                store
                    .reset_user(&user)
                    .await
                    .with_context(|| format!("cannot reset {user} in Redis"))?
            }
            None => hush_relay::admin::reset_user(&cli.data_dir, &user)
                .await
                .with_context(|| format!("cannot reset {user} in {}", cli.data_dir.display()))?,
        };
        if existed {
            println!("reset {user}: user, keys and mailbox deleted");
        } else {
            println!("{user} was not registered; nothing to do");
        }
        return Ok(());
    }

    let store = match (&cli.redis, cli.store) {
        (Some(url), _) => StoreConfig::Redis { url: url.clone() },
        (None, StoreKind::Redb) => StoreConfig::Redb {
            data_dir: cli.data_dir.clone(),
        },
        (None, StoreKind::Memory) => StoreConfig::Memory,
    };
    let mut config = Config::new(store).with_limits(cli.limits.to_limits());
    config.relay_id = cli.relay_id.clone();
    config.sweep_interval = Duration::from_secs(cli.sweep_interval_secs.max(1));
    config.presence_ttl = Duration::from_secs(cli.presence_ttl_secs.max(1));

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    // The line is printed once the store is open: it means "ready".
    hush_relay::server::serve_with_ready(config, listener, shutdown_signal(), |addr| {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {addr}");
        let _ = stdout.flush();
    })
    .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested");
}
