//! `hush-relay`: options (defaults < TOML file < environment < flags, all
//! from [`hush_relay::settings::OPTIONS`]), tracing, then
//! [`hush_relay::serve`] or an admin command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Arg, ArgMatches, Command};
use hush_protocol::UserId;
use hush_relay::admin::{self, Target};
use hush_relay::settings::{CONFIG_ENV, LogFormat, OPTIONS, Settings};

/// mimalloc instead of glibc malloc: 11-12% less relay CPU per message
/// (docs/benchmarks.md); the relay allocates per frame and per envelope on
/// two worker threads, where glibc's arenas cost more.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for an unusable configuration (like a usage error).
const EXIT_CONFIG: u8 = 2;

fn cli() -> Command {
    let mut cmd = Command::new("hush-relay")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "Hush relay: authenticates users by their identity keys, keeps their published \
             prekeys, and queues end-to-end encrypted envelopes until the recipient \
             acknowledges them.",
        )
        .after_help(
            "Every option can be set, from lowest to highest precedence, by its default, by \
             its key in the TOML file given with --config (or HUSH_CONFIG), by its environment \
             variable, and by its flag. Logs go to stderr, filtered by RUST_LOG (default \
             `info`). SIGTERM or Ctrl-C shut the relay down gracefully (clients are closed \
             with 1001 after their requests in flight).",
        )
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .global(true)
                .value_parser(clap::value_parser!(PathBuf))
                .help(format!(
                    "TOML configuration file: option keys as in docs/operations.md [env: {CONFIG_ENV}]"
                )),
        );
    for o in OPTIONS {
        let default = (o.default)().unwrap_or_else(|| "unset".into());
        cmd = cmd.arg(
            Arg::new(o.key)
                .long(o.flag)
                .value_name(o.value_name)
                .global(o.admin)
                .help(format!(
                    "{} [env: {}] [default: {default}]",
                    o.doc.replace('`', ""),
                    o.env
                )),
        );
    }
    cmd.subcommand(
        Command::new("admin")
            .about(
                "Operator commands: on a stopped relay's --data-dir (the database is locked \
                 while a relay runs), or on a cluster's Redis (--redis) while relays run.",
            )
            .subcommand_required(true)
            .subcommand(
                Command::new("stats")
                    .about("Registered users, queued envelopes and their body bytes."),
            )
            .subcommand(
                Command::new("reset-user")
                    .about(
                        "Deletes a user with its keys, mailbox and envelope counter, so the \
                         id can be registered again (by any key).",
                    )
                    .arg(
                        Arg::new("user_id")
                            .required(true)
                            .help("The user id to free."),
                    ),
            )
            .subcommand(Command::new("purge-expired").about(
                "Deletes envelopes older than --retention-secs, as the relay's sweep does.",
            )),
    )
}

/// Every option flag given, by key, from every level of subcommand.
fn flags(matches: &ArgMatches) -> Vec<(&'static str, String)> {
    let mut levels = vec![matches];
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        levels.push(sub);
        m = sub;
    }
    let mut out = Vec::new();
    for o in OPTIONS {
        let given = levels
            .iter()
            .rev()
            .find_map(|l| l.try_get_one::<String>(o.key).ok().flatten());
        if let Some(v) = given {
            out.push((o.key, v.clone()));
        }
    }
    out
}

fn config_file(matches: &ArgMatches) -> Option<PathBuf> {
    let mut m = matches;
    let mut found = m.get_one::<PathBuf>("config").cloned();
    while let Some((_, sub)) = m.subcommand() {
        if let Ok(Some(p)) = sub.try_get_one::<PathBuf>("config") {
            found = Some(p.clone());
        }
        m = sub;
    }
    found
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        // JSON escapes every string; the text format escapes control
        // characters (ANSI sequences) in field values.
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => {
            // Colour only on a terminal (and not under NO_COLOR): log files
            // and journald get plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(ansi).init();
        }
    }
}

fn main() -> ExitCode {
    let matches = cli().get_matches();
    let settings = match Settings::load(
        config_file(&matches).as_deref(),
        |name| std::env::var(name).ok(),
        &flags(&matches),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hush-relay: invalid configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_tracing(settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(matches, settings));
    // Tasks still running past the shutdown timeout are not waited for.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(matches: ArgMatches, settings: Settings) -> anyhow::Result<()> {
    if let Some(("admin", admin)) = matches.subcommand() {
        return run_admin(admin, &settings).await;
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("option `listen`: cannot listen on {}", settings.listen))?;
    // The line is printed once the store is open: it means "ready".
    hush_relay::server::serve_with_ready(settings.config, listener, shutdown_signal(), |addr| {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {addr}");
        let _ = stdout.flush();
    })
    .await?;
    Ok(())
}

async fn run_admin(admin: &ArgMatches, settings: &Settings) -> anyhow::Result<()> {
    let target = match &settings.redis_url {
        Some(url) => Target::Redis(url),
        None => Target::DataDir(&settings.data_dir),
    };
    let place = match target {
        Target::Redis(url) => format!("Redis {}", hush_relay::config::redact_url(url)),
        Target::DataDir(dir) => dir.display().to_string(),
    };
    match admin.subcommand() {
        Some(("stats", _)) => {
            let s = admin::stats(target)
                .await
                .with_context(|| format!("cannot read stats from {place}"))?;
            println!("users: {}", s.users);
            println!("queued_envelopes: {}", s.envelopes);
            println!("queued_bytes: {}", s.envelope_bytes);
            println!("nonempty_mailboxes: {}", s.census.mailboxes);
        }
        Some(("reset-user", m)) => {
            let user_id = m
                .get_one::<String>("user_id")
                .context("reset-user needs a user id")?;
            let user = UserId::try_from(user_id.as_str())
                .with_context(|| format!("invalid user id {user_id:?}"))?;
            let existed = admin::reset_user_at(target, &user)
                .await
                .with_context(|| format!("cannot reset {user} in {place}"))?;
            if existed {
                println!("reset {user}: user, keys and mailbox deleted");
            } else {
                println!("{user} was not registered; nothing to do");
            }
        }
        Some(("purge-expired", _)) => {
            let retention = settings.config.limits.retention;
            let n = admin::purge_expired(target, retention)
                .await
                .with_context(|| format!("cannot purge expired envelopes in {place}"))?;
            println!("purged {n} envelopes older than {} s", retention.as_secs());
        }
        _ => anyhow::bail!("unknown admin command"),
    }
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
