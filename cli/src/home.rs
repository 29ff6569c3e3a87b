//! Where the profile lives, how its passphrase is obtained and what a new
//! passphrase must be.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hush_client_core::client::{ClientError, Profile};
use hush_client_core::store::StoreError;
use zeroize::Zeroizing;

use crate::exit::{CliError, Failure};

/// Environment variable holding the passphrase (for scripts and tests).
pub const PASSPHRASE_ENV: &str = "HUSH_PASSPHRASE";

/// Environment variable holding the new passphrase for `hush passphrase`.
pub const NEW_PASSPHRASE_ENV: &str = "HUSH_NEW_PASSPHRASE";

/// The fewest characters (Unicode scalar values) a new passphrase may have
/// without `--weak-passphrase`.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// A passphrase, wiped from memory when dropped.
pub type Passphrase = Zeroizing<String>;

/// The profile directory: `--home`/`HUSH_HOME`, else `hush` under the
/// user's data directory.
pub fn profile_dir(home: Option<&PathBuf>) -> Result<PathBuf, CliError> {
    if let Some(h) = home {
        return Ok(h.clone());
    }
    directories::ProjectDirs::from("", "", "hush")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| {
            CliError::usage("cannot find a data directory for the profile; pass --home DIR")
        })
}

/// The passphrase: `HUSH_PASSPHRASE`, else asked on the terminal without
/// echo (twice when `confirm`).
pub fn passphrase(confirm: bool) -> Result<Passphrase, CliError> {
    read(
        PASSPHRASE_ENV,
        "Passphrase: ",
        confirm.then_some("Repeat passphrase: "),
    )
}

/// The new passphrase for `hush passphrase`: `HUSH_NEW_PASSPHRASE`, else
/// asked twice on the terminal without echo.
pub fn new_passphrase() -> Result<Passphrase, CliError> {
    read(
        NEW_PASSPHRASE_ENV,
        "New passphrase: ",
        Some("Repeat new passphrase: "),
    )
}

fn read(env: &str, prompt: &str, repeat: Option<&str>) -> Result<Passphrase, CliError> {
    if let Ok(p) = std::env::var(env) {
        return Ok(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "no passphrase: set {env} or run on a terminal"
        )));
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| CliError::new(Failure::Other, format!("cannot read the passphrase: {e}")))
    };
    let first = ask(prompt)?;
    if let Some(repeat) = repeat
        && *ask(repeat)? != *first
    {
        return Err(CliError::usage("the passphrases differ"));
    }
    Ok(first)
}

/// The rule for a new passphrase (at `init` and `hush passphrase`): never
/// empty, and at least [`MIN_PASSPHRASE_CHARS`] characters unless the user
/// accepted a weak one with `--weak-passphrase`. Cheap: call it before any
/// key derivation or relay contact.
pub fn check_new_passphrase(pass: &str, allow_weak: bool) -> Result<(), CliError> {
    if pass.is_empty() {
        return Err(CliError::usage(format!(
            "the passphrase is empty: choose one of at least {MIN_PASSPHRASE_CHARS} characters"
        )));
    }
    let chars = pass.chars().count();
    if chars < MIN_PASSPHRASE_CHARS && !allow_weak {
        return Err(CliError::usage(format!(
            "the passphrase is too short ({chars} characters, at least {MIN_PASSPHRASE_CHARS} \
             needed): choose a longer one, or pass --weak-passphrase to accept a weak one"
        )));
    }
    Ok(())
}

/// Fails with "profile missing" (exit 7) unless `dir` holds a profile.
pub fn require_profile(dir: &Path) -> Result<(), CliError> {
    if dir.join(hush_client_core::store::PROFILE_FILE).exists() {
        return Ok(());
    }
    Err(CliError::new(
        Failure::ProfileMissing,
        format!(
            "no profile at {}: create one with `hush init --user NAME --relay URL`",
            dir.display()
        ),
    ))
}

/// Opens the profile in `dir`, asking for its passphrase.
pub fn open(dir: &Path) -> Result<Profile, CliError> {
    require_profile(dir)?;
    let pass = passphrase(false)?;
    open_with(dir, &pass)
}

/// Opens the profile in `dir` with `pass`. While it is open this process
/// holds the store's lock; a note next to the profile says which process
/// that is, so that a second process refused with "in use" can name it.
pub fn open_with(dir: &Path, pass: &str) -> Result<Profile, CliError> {
    match Profile::open_in(dir, pass.as_bytes()) {
        Ok(profile) => {
            write_owner_note(dir);
            Ok(profile)
        }
        Err(ClientError::Store(StoreError::ProfileInUse)) => Err(in_use(dir)),
        Err(e) => Err(e.into()),
    }
}

/// The subcommand this process runs (`chat`, `recv`...), for the owner note.
static COMMAND_NAME: OnceLock<String> = OnceLock::new();

/// Records the subcommand this process runs (once, at start).
pub fn set_command_name(name: Option<&str>) {
    if let Some(name) = name {
        let _ = COMMAND_NAME.set(name.to_owned());
    }
}

/// The lock-owner note, next to the profile: `pid=N` and `command=NAME`
/// lines. Advisory: it is written after the lock is taken and never read
/// for correctness, only to word the "in use" message.
const OWNER_NOTE: &str = "lock-owner";

fn write_owner_note(dir: &Path) {
    let command = COMMAND_NAME.get().map_or("", String::as_str);
    let note = format!("pid={}\ncommand={command}\n", std::process::id());
    // Best effort: a note that cannot be written only makes the message
    // of a refused second process less specific.
    let _ = std::fs::write(dir.join(OWNER_NOTE), note);
}

/// The process named by the owner note, if the note is readable and (where
/// this can be checked) that process still runs: `(pid, command)`.
fn owner(dir: &Path) -> Option<(u32, String)> {
    let note = std::fs::read_to_string(dir.join(OWNER_NOTE)).ok()?;
    let mut pid = None;
    let mut command = String::new();
    for line in note.lines().take(8) {
        if let Some(p) = line.strip_prefix("pid=") {
            pid = p.trim().parse::<u32>().ok();
        } else if let Some(c) = line.strip_prefix("command=") {
            command = c.trim().to_owned();
        }
    }
    let pid = pid.filter(|p| *p != std::process::id())?;
    // A stale note (its process gone) names nobody. Where /proc is
    // missing the note is believed: it only words a message.
    let proc = Path::new("/proc");
    if proc.is_dir() && !proc.join(pid.to_string()).exists() {
        return None;
    }
    let known = command.len() <= 32 && command.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    Some((pid, if known { command } else { String::new() }))
}

/// "The profile is in use", naming the process holding it if known.
fn in_use(dir: &Path) -> CliError {
    let message = match owner(dir) {
        Some((pid, command)) if command == "daemon" => format!(
            "the profile is held by `hush daemon` (pid {pid}), and this command does not go \
             through it (send, recv, history, contacts, presence, safety-number and trust do): \
             stop the daemon (SIGTERM or Ctrl-C) first, then try again"
        ),
        Some((pid, command)) if !command.is_empty() => format!(
            "the profile is in use by another hush process (`hush {command}`, pid {pid}): \
             close `hush {command}` (pid {pid}) or wait for it to finish, then try again"
        ),
        Some((pid, _)) => format!(
            "the profile is in use by another hush process (pid {pid}): close it or wait for \
             it to finish, then try again"
        ),
        None => "the profile is in use by another hush process (such as `hush chat` or \
                 `hush recv --wait`): close it or wait for it to finish, then try again"
            .to_owned(),
    };
    CliError::new(Failure::Other, message)
}

/// Whether progress should be shown (stderr is a terminal).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passphrase_rule_counts_characters_not_bytes() {
        assert!(check_new_passphrase("", true).is_err());
        assert!(check_new_passphrase("", false).is_err());
        assert!(check_new_passphrase("1234567", false).is_err());
        assert!(check_new_passphrase("1234567", true).is_ok());
        assert!(check_new_passphrase("12345678", false).is_ok());
        // 7 characters, 14 bytes: too short.
        assert!(check_new_passphrase("ééééééé", false).is_err());
        // 8 characters, 16 bytes.
        assert!(check_new_passphrase("éééééééé", false).is_ok());
    }
}
