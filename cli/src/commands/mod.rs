//! The subcommands. Each opens the profile (or, for those listed in
//! `backend`, talks to a running `hush daemon` of it), does one thing and
//! returns; failures are [`CliError`]s with their exit code.

mod backend;
mod init;
mod messaging;
mod offline;
mod passphrase;
mod presence;

use crate::args::{Cli, Command};
use crate::exit::CliError;

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    match cli.command {
        Command::Init(a) => init::run(g, a).await,
        Command::Whoami => offline::whoami(g),
        Command::Passphrase(a) => passphrase::run(g, a),
        Command::Send(a) => messaging::send(g, a).await,
        Command::Recv(a) => messaging::recv(g, a).await,
        Command::History(a) => offline::history(g, a).await,
        Command::Contacts(a) => offline::contacts(g, a).await,
        Command::SafetyNumber(a) => offline::safety_number(g, a).await,
        Command::Verify(a) => offline::verify(g, a),
        Command::Trust(a) => offline::trust(g, a).await,
        Command::Reject(a) => offline::reject(g, a),
        Command::Block(a) => offline::block(g, a),
        Command::Unblock(a) => offline::unblock(g, a),
        Command::Accept(a) => offline::accept(g, a),
        Command::Chat(a) => crate::chat::run(g, a).await,
        Command::Presence(a) => presence::run(g, a).await,
        Command::Settings(a) => presence::settings(g, a),
        Command::Bench(a) => crate::bench::run(g, a).await,
        Command::Daemon(a) => crate::daemon::run(g, a).await,
    }
}
