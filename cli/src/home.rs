//! Where the profile lives and how its passphrase is obtained.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use hush_client_core::client::Profile;

use crate::exit::{CliError, Failure};

/// Environment variable holding the passphrase (for scripts and tests).
pub const PASSPHRASE_ENV: &str = "HUSH_PASSPHRASE";

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
pub fn passphrase(confirm: bool) -> Result<String, CliError> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "no passphrase: set {PASSPHRASE_ENV} or run on a terminal"
        )));
    }
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| CliError::new(Failure::Other, format!("cannot read the passphrase: {e}")))
    };
    let first = read("Passphrase: ")?;
    if confirm && read("Repeat passphrase: ")? != first {
        return Err(CliError::usage("the passphrases differ"));
    }
    Ok(first)
}

/// Opens the profile in `dir`, asking for its passphrase.
pub fn open(dir: &Path) -> Result<Profile, CliError> {
    if !dir.join(hush_client_core::store::PROFILE_FILE).exists() {
        return Err(CliError::new(
            Failure::ProfileMissing,
            format!(
                "no profile at {}: create one with `hush init --user NAME --relay URL`",
                dir.display()
            ),
        ));
    }
    let pass = passphrase(false)?;
    Ok(Profile::open_in(dir, pass.as_bytes())?)
}

/// Whether progress should be shown (stderr is a terminal).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}
