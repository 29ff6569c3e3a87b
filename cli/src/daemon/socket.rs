//! Where the daemon's socket is and how it is created.
//!
//! The socket is `daemon.sock` in the profile directory unless
//! `hush daemon --socket PATH` says otherwise; either way the daemon writes
//! its path into the note `daemon-socket` next to the profile, which is how
//! other `hush` commands find it. The socket file has mode 0600 from the
//! moment it exists: it is bound inside a fresh directory of mode 0700 that
//! nobody else can enter, set to 0600 and only then renamed into place
//! (which also replaces a stale socket left by a daemon that died).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use crate::exit::{CliError, Failure};

/// The socket's file name in the profile directory, by default.
pub const DEFAULT_SOCKET: &str = "daemon.sock";

/// The note (next to the profile) holding the running daemon's socket path.
const SOCKET_NOTE: &str = "daemon-socket";

/// The longest socket path the note may name (Linux's `sun_path` is 108
/// bytes).
const MAX_SOCKET_PATH: usize = 107;

/// The socket a daemon for the profile in `dir` listens on, as recorded in
/// the note, else the default.
pub fn recorded(dir: &Path) -> PathBuf {
    std::fs::read_to_string(dir.join(SOCKET_NOTE))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_owned())
        .filter(|s| !s.is_empty() && s.len() <= MAX_SOCKET_PATH && !s.contains('\n'))
        .map_or_else(|| dir.join(DEFAULT_SOCKET), PathBuf::from)
}

/// Connects to a daemon listening on `path`, if one does.
pub async fn connect(path: &Path) -> Option<UnixStream> {
    UnixStream::connect(path).await.ok()
}

/// A live daemon on `path` is refused; a stale socket is left for
/// [`bind`] to replace.
pub async fn refuse_if_live(path: &Path) -> Result<(), CliError> {
    if connect(path).await.is_some() {
        return Err(CliError::new(
            Failure::Other,
            format!(
                "a hush daemon is already running on {}: stop it first (SIGTERM or Ctrl-C)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Binds `path` with mode 0600, replacing a stale socket there, and
/// records it in the note of the profile in `dir`.
pub fn bind(path: &Path, dir: &Path) -> Result<UnixListener, CliError> {
    let fail = |what: &str, e: std::io::Error| {
        CliError::new(
            Failure::Other,
            format!("cannot {what} the daemon socket {}: {e}", path.display()),
        )
    };
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(CliError::usage(format!(
            "the socket path {} is longer than {MAX_SOCKET_PATH} bytes: choose a shorter one \
             with --socket",
            path.display()
        )));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A private directory beside the target, so that the rename stays on
    // one file system and the socket is never reachable with looser mode.
    let private = parent.join(format!(".hush-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| fail("prepare", e))?;
    let staged = private.join("s");
    let bound = (|| {
        let listener = std::os::unix::net::UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        Ok::<_, std::io::Error>(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    let listener = bound.map_err(|e| fail("create", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail("configure", e))?;
    let listener = UnixListener::from_std(listener).map_err(|e| fail("listen on", e))?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    std::fs::write(dir.join(SOCKET_NOTE), format!("{}\n", absolute.display()))
        .map_err(|e| fail("record", e))?;
    Ok(listener)
}

/// Removes the socket and the note (at shutdown).
pub fn remove(path: &Path, dir: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(dir.join(SOCKET_NOTE));
}
