//! `hush init`: create the profile and register with the relay.

use std::sync::Arc;

use hush_client_core::client::{Client, ClientConfig, ClientError, Profile, SystemClock, ws_url};
use hush_client_core::store::{KdfParams, PROFILE_FILE};

use crate::args::{Global, InitArgs, KdfArgs};
use crate::exit::{CliError, Failure, REGISTERED_TO_ANOTHER_KEY};
use crate::home;
use crate::ops::rng;
use crate::time::now_ms;
use crate::user_id::user_id;

pub async fn run(g: &Global, a: InitArgs) -> Result<(), CliError> {
    let relay = g
        .relay
        .as_deref()
        .ok_or_else(|| CliError::usage("init needs --relay ws://HOST:PORT"))?;
    ws_url(relay)?;
    let user = user_id(&a.user)?;
    let dir = home::profile_dir(g.home.as_ref())?;
    if dir.join(PROFILE_FILE).exists() {
        return Err(CliError::new(
            Failure::ProfileExists,
            format!("a profile already exists at {}", dir.display()),
        ));
    }
    let created_dir = !dir.exists();
    let pass = home::passphrase(true)?;
    // Before any key derivation or relay contact.
    home::check_new_passphrase(&pass, a.weak.weak_passphrase)?;
    let kdf = kdf_params(&a.kdf);
    progress("generating keys and sealing the profile");
    let profile = Profile::create_in(
        &dir,
        pass.as_bytes(),
        kdf,
        &user,
        relay,
        &mut rng(),
        now_ms(),
    )
    .map_err(|e| {
        remove_profile(&dir, created_dir);
        CliError::from(e)
    })?;
    let mut profile = profile;
    if a.no_read_receipts
        && let Err(e) = profile.update_settings(|s| s.send_read_receipts = false)
    {
        remove_profile(&dir, created_dir);
        return Err(e.into());
    }
    let fingerprint = profile.fingerprint();
    progress("registering with the relay and publishing keys");
    let config = ClientConfig {
        receive: false,
        ca_file: g.ca_file.clone(),
        ..ClientConfig::default()
    };
    match Client::connect(profile, config, Box::new(rng()), Arc::new(SystemClock)).await {
        Ok((client, _events)) => client.close().await,
        Err(e) => {
            // Nothing is registered: leave no half-made profile behind, so
            // `init` can simply be run again.
            remove_profile(&dir, created_dir);
            return Err(match e {
                ClientError::AuthRejected { message }
                    if message.contains(REGISTERED_TO_ANOTHER_KEY) =>
                {
                    CliError::new(
                        Failure::AuthRejected,
                        format!(
                            "the user id {user} is already registered on this relay (to another \
                             key): choose another user id, or, if the id is yours and you lost \
                             its profile, ask the relay's operator to free it (`hush-relay admin \
                             reset-user {user}`)"
                        ),
                    )
                }
                e => e.into(),
            });
        }
    }
    println!("user: {user}");
    println!("fingerprint: {fingerprint}");
    Ok(())
}

/// The Argon2id parameters chosen on the command line.
pub(super) fn kdf_params(a: &KdfArgs) -> KdfParams {
    KdfParams {
        m_cost_kib: a.kdf_memory_kib,
        t_cost: a.kdf_iterations,
        p_cost: 1,
    }
}

fn remove_profile(dir: &std::path::Path, created_dir: bool) {
    if created_dir {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        let _ = std::fs::remove_file(dir.join(PROFILE_FILE));
    }
}

fn progress(what: &str) {
    if home::interactive() {
        eprintln!("{what}...");
    }
}
