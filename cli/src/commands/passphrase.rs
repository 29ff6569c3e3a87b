//! `hush passphrase`: change the passphrase (and the key) sealing the
//! profile.

use super::init::kdf_params;
use crate::args::{Global, PassphraseArgs};
use crate::exit::CliError;
use crate::home;

pub fn run(g: &Global, a: PassphraseArgs) -> Result<(), CliError> {
    let dir = home::profile_dir(g.home.as_ref())?;
    home::require_profile(&dir)?;
    let old = home::passphrase(false)?;
    let new = home::new_passphrase()?;
    // Before the (slow) key derivations.
    home::check_new_passphrase(&new, a.weak.weak_passphrase)?;
    let kdf = kdf_params(&a.kdf);
    let mut profile = home::open_with(&dir, &old)?;
    if home::interactive() {
        eprintln!("sealing the profile again under the new passphrase...");
    }
    profile.change_passphrase(old.as_bytes(), new.as_bytes(), kdf)?;
    println!("passphrase changed");
    Ok(())
}
