//! `hush daemon`: one process that holds the profile, stays connected to
//! the relay and serves JSON-RPC 2.0 to other `hush` commands (and to
//! scripts) over a Unix socket readable only by the profile's owner. The
//! methods and their errors are documented in the README ("Daemon").
//!
//! | module | holds |
//! |---|---|
//! | `limits` | every bound: connections, line length, queue depths, in-flight requests |
//! | `rpc` | the JSON-RPC framing, error codes and kinds |
//! | `socket` | where the socket is, creating it with mode 0600, the note that names it |
//! | `hub` | the client's events fanned out to `receive` subscribers, the backlog |
//! | `methods` | each method, through [`crate::ops`] |
//! | `server` | the accept loop and one connection |
//! | `client` | the other side: how `hush send`, `recv`... talk to a running daemon |

pub mod client;
mod hub;
mod limits;
mod methods;
mod rpc;
mod server;
mod socket;

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use crate::args::{DaemonArgs, Global};
use crate::exit::{CliError, Failure};
use crate::{home, ops};

/// Runs the daemon until SIGTERM or Ctrl-C; the socket and its note are
/// removed on the way out.
pub async fn run(g: &Global, a: DaemonArgs) -> Result<(), CliError> {
    let dir = home::profile_dir(g.home.as_ref())?;
    home::require_profile(&dir)?;
    let path = a.socket.unwrap_or_else(|| dir.join(socket::DEFAULT_SOCKET));
    socket::refuse_if_live(&path).await?;
    socket::refuse_if_live(&socket::recorded(&dir)).await?;
    let profile = home::open(&dir)?;
    let (client, events) = ops::connect_profile(profile, g, true, Vec::new()).await?;
    let listener = match socket::bind(&path, &dir) {
        Ok(l) => l,
        Err(e) => {
            client.close().await;
            return Err(e);
        }
    };
    let owner_uid = match std::fs::metadata(&path) {
        Ok(m) => m.uid(),
        Err(e) => {
            socket::remove(&path, &dir);
            client.close().await;
            return Err(CliError::new(
                Failure::Other,
                format!("cannot read the daemon socket {}: {e}", path.display()),
            ));
        }
    };
    println!("listening on {}", path.display());
    let _ = std::io::stdout().flush();
    let daemon = methods::Daemon {
        client: client.clone(),
        hub: hub::Hub::default(),
    };
    let outcome = server::serve(listener, daemon, events, owner_uid).await;
    socket::remove(&path, &dir);
    client.close().await;
    outcome
}
