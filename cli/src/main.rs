//! `hush`, the Hush command-line client: a thin layer over
//! `hush-client-core`. This file parses flags, sets up logging and maps
//! failures to the documented exit codes; the commands live in
//! [`commands`].
//!
//! | module | what it holds |
//! |---|---|
//! | `args` | every flag and subcommand (clap) |
//! | `ops` | the operations both a command and the daemon run (history, contacts, trust, send, presence), returning the `--json` form |
//! | `daemon` | `hush daemon`: the socket, JSON-RPC, the event fan-out, and the client side the commands use |
//! | `commands` | one file per group of subcommands: `init`, `messaging` (`send`, `recv`), `offline` (what reads or changes only the local profile: history, contacts, trust), `passphrase`, `presence` (and `settings`); `backend` picks the daemon or the profile |
//! | `chat` | `hush chat`: the event loop in `mod.rs`; pure rules in `state/` (messages, header, events, layout), `input`, `typing`, `wrap`; drawing in `ui`; the terminal guard in `terminal` |
//! | `bench` | `hush bench`: options and the run in `mod.rs`, one pair's loop in `pair`, frames over client-core's `Connection` in `wire`, end-to-end crypto in `crypto`, percentiles in `stats`, the relay's CPU and RSS in `procfs` |
//! | `output` | human and `--json` output |
//! | `exit` | [`exit::CliError`] and the documented exit codes |
//! | `home`, `time`, `duration`, `user_id`, `terminal_text` | the profile directory and passphrases, the clock and local times, durations in flags, user ids as typed, escaping what peers wrote |
//!
//! The CLI speaks to relays only through `hush-client-core` (it depends on
//! neither `hush-protocol` nor a WebSocket crate; `.ci/run` checks).

mod args;
mod bench;
mod chat;
mod commands;
mod daemon;
mod duration;
mod exit;
mod home;
mod ops;
mod output;
mod terminal_text;
mod time;
mod user_id;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_tracing(cli.global.verbose);
    time::init(cli.global.utc);
    quiet_panics(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hush: cannot start the async runtime: {e}");
            return ExitCode::from(exit::Failure::Other as u8);
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(commands::run(cli))
    }));
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("hush: {}", e.message);
            ExitCode::from(e.failure as u8)
        }
        Err(_) => {
            eprintln!("hush: internal error (a bug; run with -v for details)");
            ExitCode::from(exit::Failure::Other as u8)
        }
    }
}

/// Parses the command line. `--help` and `--version` print as usual (to
/// stdout, exit 0); every argument error becomes one `hush: ` line on
/// stderr with clap's suggestion folded into it, and exit 2.
fn parse() -> Result<args::Cli, ExitCode> {
    let matches = args::Cli::command().try_get_matches();
    let parsed = matches.and_then(|m| {
        home::set_command_name(m.subcommand_name());
        args::Cli::from_arg_matches(&m)
    });
    parsed.map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                ExitCode::SUCCESS
            }
            _ => {
                eprintln!("hush: {}", one_line(&e.render().to_string()));
                ExitCode::from(exit::Failure::Usage as u8)
            }
        }
    })
}

/// clap's multi-line error text as one line: the error, its tips and the
/// usage, joined with "; " (a list under a line ending in `:` is joined
/// with ", ").
fn one_line(rendered: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut listing = false;
    let mut usage = None;
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(line) = lines.next() {
        if line.starts_with("For more information") {
            continue;
        }
        if let Some(first) = line.strip_prefix("Usage:") {
            // A usage can span lines (one per alternative).
            let mut u = first.trim().to_owned();
            for more in lines.by_ref() {
                if more.starts_with("For more information") {
                    break;
                }
                u.push_str(" | ");
                u.push_str(more);
            }
            usage = Some(u);
            break;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        match parts.last_mut() {
            Some(last) if last.ends_with(':') => {
                last.push(' ');
                last.push_str(line);
                listing = true;
            }
            Some(last) if listing && (line.starts_with('<') || line.starts_with('-')) => {
                last.push_str(", ");
                last.push_str(line);
            }
            _ => {
                listing = false;
                parts.push(line.to_owned());
            }
        }
    }
    parts.push(match usage {
        Some(u) => format!("usage: {u} (try --help)"),
        None => "try --help".to_owned(),
    });
    parts.join("; ")
}

/// A bug must still end in one line on stderr and a documented exit code:
/// the panic message and location are printed only with `-v`.
fn quiet_panics(verbose: u8) {
    if verbose == 0 {
        std::panic::set_hook(Box::new(|_| {}));
    }
}

/// Logs go to stderr, and only with `-v` (info) or `-vv` (debug);
/// `RUST_LOG` overrides.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "off",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn clap_errors_fold_into_one_line() {
        let missing = "error: the following required arguments were not provided:\n  <USER>\n  \
                       <MESSAGE>\n\nUsage: hush send <USER> <MESSAGE>\n\nFor more information, \
                       try '--help'.\n";
        assert_eq!(
            one_line(missing),
            "the following required arguments were not provided: <USER>, <MESSAGE>; usage: hush \
             send <USER> <MESSAGE> (try --help)"
        );
        let typo = "error: unrecognized subcommand 'sendd'\n\n  tip: a similar subcommand \
                    exists: 'send'\n\nUsage: hush [OPTIONS] <COMMAND>\n\nFor more information, \
                    try '--help'.\n";
        assert_eq!(
            one_line(typo),
            "unrecognized subcommand 'sendd'; tip: a similar subcommand exists: 'send'; usage: \
             hush [OPTIONS] <COMMAND> (try --help)"
        );
    }
}
