//! Where a command runs: through a running `hush daemon` of the profile,
//! or directly on the profile (opened here, with its passphrase). Either
//! way the result is the command's `--json` form from [`crate::ops`], so
//! the output is the same; only a daemon needs no passphrase (its socket
//! is the owner's alone) and no new relay connection.

use std::path::PathBuf;

use hush_client_core::UserId;
use hush_client_core::client::{Client, Events, Profile};
use serde_json::{Value, json};

use crate::args::Global;
use crate::daemon::client::{self as daemon, DaemonClient};
use crate::exit::{CliError, Failure};
use crate::{home, ops};

pub enum Backend {
    Daemon(DaemonClient),
    Direct {
        dir: PathBuf,
        /// Opened on first use, then kept for the command's next step.
        profile: Option<Box<Profile>>,
    },
}

/// A field of a daemon result that must be there.
fn field(mut result: Value, name: &str) -> Result<Value, CliError> {
    result.get_mut(name).map(Value::take).ok_or_else(|| {
        CliError::new(
            Failure::Other,
            format!("the hush daemon's reply has no `{name}`"),
        )
    })
}

/// A daemon result field that is a list.
fn list(result: Value, name: &str) -> Result<Vec<Value>, CliError> {
    match field(result, name)? {
        Value::Array(items) => Ok(items),
        _ => Err(CliError::new(
            Failure::Other,
            format!("the hush daemon's `{name}` is not a list"),
        )),
    }
}

impl Backend {
    /// The profile's daemon if one runs, else the profile itself.
    pub async fn pick(g: &Global) -> Result<Self, CliError> {
        let dir = home::profile_dir(g.home.as_ref())?;
        Ok(match daemon::find(&dir).await {
            Some(d) => Backend::Daemon(d),
            None => Backend::Direct { dir, profile: None },
        })
    }

    fn profile(dir: &std::path::Path, profile: &mut Option<Box<Profile>>) -> Result<(), CliError> {
        if profile.is_none() {
            *profile = Some(Box::new(home::open(dir)?));
        }
        Ok(())
    }

    /// Runs `direct` on the opened profile, or `method` on the daemon.
    async fn offline<T>(
        &mut self,
        method: &str,
        params: Value,
        direct: impl FnOnce(&mut Profile) -> Result<T, CliError>,
        from_daemon: impl FnOnce(Value) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        match self {
            Backend::Daemon(d) => from_daemon(d.call(method, params).await?),
            Backend::Direct { dir, profile } => {
                Self::profile(dir, profile)?;
                match profile.as_mut() {
                    Some(p) => direct(p),
                    None => Err(CliError::new(Failure::Other, "the profile is not open")),
                }
            }
        }
    }

    pub async fn history(
        &mut self,
        peer: &UserId,
        limit: Option<usize>,
    ) -> Result<Vec<Value>, CliError> {
        self.offline(
            "history",
            json!({ "peer": peer.as_str(), "limit": limit }),
            |p| ops::history(p, peer, limit),
            |r| list(r, "messages"),
        )
        .await
    }

    pub async fn contacts(&mut self) -> Result<Vec<Value>, CliError> {
        self.offline(
            "contacts",
            json!({}),
            |p| ops::contacts(p),
            |r| list(r, "contacts"),
        )
        .await
    }

    pub async fn safety_number(&mut self, peer: &UserId) -> Result<Value, CliError> {
        self.offline(
            "safety_number",
            json!({ "peer": peer.as_str() }),
            |p| ops::safety_number(p, peer),
            Ok,
        )
        .await
    }

    pub async fn trust(&mut self, peer: &UserId, number: &str) -> Result<bool, CliError> {
        let now = crate::time::now_ms();
        self.offline(
            "trust",
            json!({ "peer": peer.as_str(), "safety_number": number }),
            |p| ops::trust(p, peer, number, now),
            |r| Ok(field(r, "trusted")?.as_bool().unwrap_or(false)),
        )
        .await
    }

    /// The presence allow list, as user ids.
    pub async fn presence_allowed(&mut self) -> Result<Vec<String>, CliError> {
        self.offline(
            "presence",
            json!({}),
            |p| Ok(p.presence_allowed().iter().map(|u| u.to_string()).collect()),
            allowed_names,
        )
        .await
    }

    /// Runs `direct` on a fresh client of the profile (connected without
    /// receiving, closed afterwards), or `method` on the daemon.
    pub async fn online<T>(
        self,
        g: &Global,
        method: &str,
        params: Value,
        direct: impl AsyncFnOnce(&Client) -> Result<T, CliError>,
        from_daemon: impl FnOnce(Value) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        match self {
            Backend::Daemon(mut d) => from_daemon(d.call(method, params).await?),
            Backend::Direct { dir, .. } => {
                let (client, _events): (Client, Events) =
                    ops::open_and_connect(&dir, g, false, Vec::new()).await?;
                let out = direct(&client).await;
                client.close().await;
                out
            }
        }
    }
}

/// The `allowed` list of a daemon's `presence` result.
pub fn allowed_names(r: Value) -> Result<Vec<String>, CliError> {
    Ok(list(r, "allowed")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}
