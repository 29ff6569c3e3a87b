//! Harness for black-box tests across real processes: the `hush-relay` and
//! `hush` binaries that cargo built, run the way an operator and a user run
//! them, every process under a deadline and none outliving its test.
//!
//! - [`bins`] finds the binaries next to the test executable.
//! - [`process`] runs a command under a deadline, to completion or line
//!   by line ([`Cmd`], [`Output`], [`Spawned`]).
//! - [`relay`] runs a relay on 127.0.0.1 with captured logs, kills it with
//!   SIGKILL and restarts it on the same port and data dir ([`Relay`]).
//! - [`hush`] runs the CLI with a per-user home and passphrase ([`Hush`]).
//! - [`redis`] runs a real `redis-server` (AOF, `appendfsync always`) on a
//!   free port for cluster-mode relays ([`Redis`]).
//! - [`proxy`] forwards TCP to a relay and records both directions
//!   ([`RecordingProxy`]); [`websocket`] turns a recording back into
//!   unmasked frame payloads; [`leak`] searches bytes for a plaintext
//!   [`Marker`].
//! - [`http`] sends a plain `GET` to a relay's endpoints ([`http_get`]).
//! - [`prometheus`] parses `/metrics` strictly; [`tls`] makes a CA and a
//!   server certificate for `wss://` tests ([`TestPki`]).
//!
//! The API is synchronous, for plain `#[test]` functions; child processes
//! and the proxy live on one shared tokio runtime ([`process::runtime`]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

pub mod bins;
pub mod http;
pub mod hush;
pub mod leak;
pub mod process;
pub mod prometheus;
pub mod proxy;
pub mod redis;
pub mod relay;
pub mod tls;
pub mod websocket;

pub use bins::bin;
pub use http::http_get;
pub use hush::{Hush, PASSPHRASE, alice_and_bob, hush, hush_cmd, message_id};
pub use leak::Marker;
pub use process::{Cmd, Output, PROCESS_TIMEOUT, Spawned};
pub use proxy::{Recording, RecordingProxy};
pub use redis::Redis;
pub use relay::{Relay, RelayOptions};
pub use tls::TestPki;

/// A port on 127.0.0.1 where nothing listens (bound, then released): the
/// address of a relay that is down.
pub fn unused_local_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a probe socket: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("probe socket has no address: {e}"))
        .port()
}

/// A fresh temporary directory (removed on drop).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}
