//! `hush`, the Hush command-line client: a thin layer over
//! `hush-client-core`. This file parses flags, sets up logging and maps
//! failures to the documented exit codes; the commands live in
//! [`commands`].

mod args;
mod bench;
mod chat;
mod commands;
mod exit;
mod home;
mod output;
mod terminal_text;
mod time;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
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
