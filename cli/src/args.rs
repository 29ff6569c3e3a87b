//! Command-line interface. The names and behaviours here are a contract
//! with scripts and tests: keep them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::duration::{self, Wait};

/// End-to-end encrypted chat over a Hush relay.
///
/// Every command works on one profile (`--home`), sealed with a passphrase
/// taken from HUSH_PASSPHRASE or asked on the terminal. A new passphrase
/// (`init`, `passphrase`) may not be empty and needs at least 8 characters
/// unless --weak-passphrase is given.
///
/// Exit codes: 0 success; 1 other failure; 2 usage error; 3 relay
/// unreachable; 4 unknown user; 5 identity key changed; 6 wrong passphrase;
/// 7 profile missing; 8 rate limited; 9 mailbox full; 10 user id taken on
/// the relay (authentication refused); 11 profile already exists.
#[derive(Debug, Parser)]
#[command(name = "hush", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options for every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Profile directory (default: the user's data directory, e.g.
    /// ~/.local/share/hush).
    #[arg(long, env = "HUSH_HOME", hide_env_values = true, global = true)]
    pub home: Option<PathBuf>,
    /// Relay URL (ws://HOST:PORT or wss://HOST:PORT; a relay listens on
    /// 7070 unless told otherwise, a URL without a port means 80 or 443).
    /// With `init` (required there): the relay to register with, stored in
    /// the profile. With `settings`: a new relay to store in the profile.
    /// With a command that contacts the relay: used instead of the
    /// profile's relay, for this run only.
    #[arg(long, global = true, value_name = "URL")]
    pub relay: Option<String>,
    /// A PEM file of extra CA certificates trusted for a wss:// relay,
    /// besides the system's roots (e.g. a self-signed test relay).
    #[arg(
        long,
        env = "HUSH_CA_FILE",
        hide_env_values = true,
        global = true,
        value_name = "FILE"
    )]
    pub ca_file: Option<PathBuf>,
    /// Show times in UTC instead of local time (the TZ environment
    /// variable, else the system's zone). JSON keeps Unix milliseconds.
    #[arg(long, global = true)]
    pub utc: bool,
    /// Log to stderr: -v for progress, -vv for debugging.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a profile: generate the identity and prekeys, register the
    /// user id with the relay and publish the keys.
    Init(InitArgs),
    /// Show the user id, relay and fingerprint of the profile.
    Whoami,
    /// Change the passphrase sealing the profile.
    ///
    /// The current passphrase comes from HUSH_PASSPHRASE or the terminal,
    /// the new one from HUSH_NEW_PASSPHRASE or the terminal (asked twice).
    /// A fresh key replaces the profile's key and every stored record is
    /// sealed again under it, in one atomic step; then the file is
    /// compacted. Afterwards the old passphrase opens nothing in the
    /// profile, not even with a copy of its old header. Copies of the
    /// profile made before the change (backups) still open with the old
    /// passphrase: delete them. Refused while another hush process uses
    /// the profile.
    Passphrase(PassphraseArgs),
    /// Encrypt and send a message; prints its id once the relay accepted it.
    ///
    /// The text is at most 32 KiB (32768 bytes of UTF-8) and not empty or
    /// only whitespace; anything else is refused as a usage error (exit 2)
    /// before connecting.
    Send(SendArgs),
    /// Receive queued messages (and, with --wait, what arrives meanwhile),
    /// store them in the history and print them.
    Recv(RecvArgs),
    /// Show the stored conversation with a user.
    History(HistoryArgs),
    /// List known users: whether verified, whether their key changed,
    /// message requests (strangers who wrote first) and blocked users.
    Contacts(JsonArg),
    /// Show the safety number to compare with a contact out of band. While
    /// the contact's identity key changed and is not yet trusted, both
    /// numbers are shown, labelled: the pinned key's and the new key's.
    SafetyNumber(SafetyNumberArgs),
    /// Mark a contact verified after comparing safety numbers.
    Verify(UserArg),
    /// Accept a contact's changed identity key, after comparing the NEW
    /// key's safety number (`hush safety-number USER`) with USER out of
    /// band. The number is given with --safety-number, or typed at the
    /// prompt on a terminal; only the key with that number is trusted.
    Trust(TrustArgs),
    /// Refuse a contact's changed identity key: the pinned key stays,
    /// sending to the contact resumes, and messages that came under the
    /// rejected key stay marked as not from the contact.
    Reject(UserArg),
    /// Block a user: everything they send is dropped unread and without a
    /// receipt, and nothing can be sent to them.
    Block(UserArg),
    /// Unblock a user.
    Unblock(UserArg),
    /// Accept a message request (a stranger who wrote first): they get
    /// delivery and read receipts from then on. Replying accepts too.
    Accept(UserArg),
    /// Open an interactive conversation with a user (needs a terminal).
    ///
    /// Shows the last 200 messages with USER and what arrives live, with a
    /// header (connection, "online" or "last seen" if USER allows you,
    /// "typing…", "unverified" or "KEY CHANGED") and an
    /// input line. Enter sends; Left/Right, Home/End, Backspace, Delete
    /// edit; Ctrl-U clears the line; PgUp/PgDn and Up/Down scroll, Esc
    /// returns to the newest; Ctrl-C, Ctrl-D or /quit leave; /chat USER
    /// switches to another conversation; /help lists the keys. The chat
    /// opens even when the relay is down: the header says "connecting…",
    /// and messages typed meanwhile wait (sending) until it answers.
    /// Marks after your messages: (sending) not yet accepted by the relay, (sent) queued for USER, (delivered) on USER's device,
    /// (read) USER displayed it, (failed) not sent (the status line says
    /// why). Messages from other users are stored and announced in the
    /// status line. Times are local (today's as HH:MM, others with the
    /// date), their zone in the header; --utc shows UTC. Reading a message
    /// request from USER here accepts it (read receipts go from then on),
    /// as replying does.
    Chat(UserArg),
    /// Who may see whether you are online and when you were last seen, and
    /// what you may see of others.
    ///
    /// `hush presence` lists the users you allow (nobody by default);
    /// `hush presence allow USER...` and `hush presence deny USER...` edit
    /// that list (stored in the profile and published to the relay);
    /// `hush presence USER...` asks the relay for their presence: online,
    /// or offline and last seen, or "not visible" for a user who did not
    /// allow you (the same answer as for a user who does not exist).
    Presence(PresenceArgs),
    /// Show or change profile settings.
    ///
    /// `hush settings --read-receipts off` stops `hush chat` from telling
    /// peers that you displayed their messages (delivery receipts are still
    /// sent); `on` turns them back on. `hush settings --relay URL` moves the
    /// profile to another relay: the URL is checked and stored, and the
    /// relay identity recorded at the first connection is forgotten, so the
    /// next connection records the new relay's (and fails with exit 10 if
    /// the user id is registered to another key there).
    Settings(SettingsArgs),
    /// Load-test a relay: P sender/receiver pairs with throw-away
    /// identities, M messages each; checks exactly-once in-order delivery
    /// and reports throughput and latency (and, with --relay-pid, the
    /// relay's CPU per message and RSS). --relay takes one URL, or several
    /// separated by commas (pair i sends via relay 2i mod n and receives via
    /// relay 2i+1 mod n). Needs no profile.
    Bench(BenchArgs),
    /// Hold the profile open and connected, and serve JSON-RPC 2.0 to
    /// other processes over a Unix socket (mode 0600, the profile owner's
    /// only): `send`, `receive`, `history`, `contacts`, `presence`,
    /// `trust`, `safety_number` (see the README, "Daemon"). While it runs,
    /// `hush send`, `recv`, `history`, `contacts`, `presence`,
    /// `safety-number`, `trust` and `chat` go through it (without asking
    /// for the passphrase) instead of failing with "profile in use". Prints
    /// `listening on PATH` once ready; SIGTERM or Ctrl-C stop it and
    /// remove the socket.
    Daemon(DaemonArgs),
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The socket to listen on (default: daemon.sock in the profile
    /// directory). Other hush commands find it through a note next to the
    /// profile.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// User id to register (1-32 of a-z 0-9 . _ -, starting with a letter
    /// or digit).
    #[arg(long)]
    pub user: String,
    #[command(flatten)]
    pub kdf: KdfArgs,
    #[command(flatten)]
    pub weak: WeakPassphraseArg,
    /// Never send read receipts (`hush settings --read-receipts on` turns
    /// them on later).
    #[arg(long)]
    pub no_read_receipts: bool,
}

/// How the passphrase is turned into the key sealing the profile.
#[derive(Debug, Args)]
pub struct KdfArgs {
    /// Argon2id memory for sealing the profile, in KiB (default 65536).
    /// Lower values make a stolen profile cheaper to brute-force.
    #[arg(long, default_value_t = 65536)]
    pub kdf_memory_kib: u32,
    /// Argon2id passes (default 3).
    #[arg(long, default_value_t = 3)]
    pub kdf_iterations: u32,
}

#[derive(Debug, Args)]
pub struct WeakPassphraseArg {
    /// Accept a new passphrase shorter than 8 characters (an empty one is
    /// never accepted).
    #[arg(long)]
    pub weak_passphrase: bool,
}

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    #[command(flatten)]
    pub kdf: KdfArgs,
    #[command(flatten)]
    pub weak: WeakPassphraseArg,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Recipient user id.
    pub user: String,
    /// The message, at most 32 KiB (32768 bytes of UTF-8); `-` reads it
    /// from standard input (one trailing newline is dropped).
    pub message: String,
}

#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Keep receiving for this many seconds, or `forever` (until Ctrl-C or
    /// SIGTERM); default: stop once the queued messages are drained.
    /// Values beyond 100 years are capped to it.
    #[arg(
        long,
        value_name = "SECS|forever",
        value_parser = duration::parse_wait,
        allow_hyphen_values = true
    )]
    pub wait: Option<Wait>,
    /// One JSON object per event and line.
    #[arg(long)]
    pub json: bool,
    /// Also report the presence of USER (repeatable): its state now, then
    /// every change while receiving (only if USER allowed you).
    #[arg(long = "presence", value_name = "USER")]
    pub presence: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The other user.
    pub user: String,
    /// Only the newest N messages.
    #[arg(long)]
    pub limit: Option<usize>,
    /// One JSON object per message and line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PresenceArgs {
    #[command(subcommand)]
    pub command: Option<PresenceCommand>,
    /// Users whose presence to ask for (at most 100); none lists the users
    /// you allow. (`hush presence -- allow` asks about a user named allow.)
    pub users: Vec<String>,
    /// One JSON object per line.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PresenceCommand {
    /// Let these users see your presence.
    Allow(UsersArg),
    /// Stop letting these users see your presence.
    Deny(UsersArg),
}

#[derive(Debug, Args)]
pub struct UsersArg {
    /// User ids.
    #[arg(required = true)]
    pub users: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Send read receipts from `hush chat`: on or off.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub read_receipts: Option<bool>,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SafetyNumberArgs {
    /// The other user.
    pub user: String,
    /// One JSON object: `user`, `pinned`, `pending` (null unless a key
    /// change is pending).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The other user.
    pub user: String,
    /// The safety number of the new key, as compared out of band (60
    /// digits; spaces allowed). Required without a terminal.
    #[arg(long, value_name = "DIGITS")]
    pub safety_number: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserArg {
    /// The other user.
    pub user: String,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Sender/receiver pairs.
    #[arg(long, default_value_t = 10)]
    pub pairs: usize,
    /// Measured messages per pair.
    #[arg(long, default_value_t = 1000)]
    pub messages: u64,
    /// Message size in bytes (the body with --no-encrypt, the plaintext
    /// otherwise); at least 20.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Most messages in flight (sent, not yet delivered) per sender
    /// (default 32; 1024 with --rate).
    #[arg(long)]
    pub window: Option<usize>,
    /// Offered rate in messages per second over all pairs (open loop,
    /// still capped by the window).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open this many more authenticated idle connections first and hold
    /// them during the run (spread over 127.0.0.2, .3, ... on loopback).
    #[arg(long, default_value_t = 0)]
    pub idle_connections: usize,
    /// Encrypt end to end with X3DH + Double Ratchet (the default).
    #[arg(long, conflicts_with = "no_encrypt")]
    pub encrypt: bool,
    /// Send random bytes as ciphertext, so the relay alone is measured.
    #[arg(long)]
    pub no_encrypt: bool,
    /// Fill the receivers' mailboxes while they are offline, then reconnect
    /// them and time the drain.
    #[arg(long)]
    pub queued: bool,
    /// Unmeasured messages per pair sent first.
    #[arg(long, default_value_t = 20)]
    pub warmup: u64,
    /// The relay's process id (repeatable, or comma-separated, for a
    /// cluster): reads its CPU time and RSS from /proc (Linux only) around
    /// the measured window.
    #[arg(long, value_delimiter = ',')]
    pub relay_pid: Vec<u32>,
    /// The shared store's process id (a cluster's redis-server; repeatable
    /// or comma-separated): its CPU in the measured window is reported on
    /// its own, per delivered message.
    #[arg(long, value_delimiter = ',')]
    pub store_pid: Vec<u32>,
    /// Give up when nothing arrives for this many seconds (at least 0.5).
    #[arg(
        long,
        default_value = "30",
        value_name = "SECS",
        value_parser = duration::parse_seconds,
        allow_hyphen_values = true
    )]
    pub stall_timeout: std::time::Duration,
    /// Print one JSON summary object.
    #[arg(long)]
    pub json: bool,
}
