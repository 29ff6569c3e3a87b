//! The `hush-relay` binary as a process: started from a command with the
//! port read from its first line, or in cluster mode for tests that SIGKILL
//! a relay (an in-process `RelayHandle` cannot die without closing its
//! sockets).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use tokio::io::AsyncBufReadExt;

use super::redis::RedisServer;
use super::within;

/// Starts `cmd` (the relay binary listening on `127.0.0.1:0`) with stdout
/// piped and returns the child with the port its first line names.
pub async fn start_binary(cmd: &mut tokio::process::Command) -> (tokio::process::Child, u16) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    within(
        "first line",
        tokio::io::BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .unwrap();
    let port = line
        .trim_end()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, port)
}

/// The relay binary on a free port of 127.0.0.1, on `redis`; SIGKILLed
/// when dropped.
pub struct RelayProcess {
    child: Child,
    /// Its WebSocket URL.
    pub url: String,
}

impl RelayProcess {
    pub fn start(redis: &RedisServer, ttl_secs: u64) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hush-relay"))
            .args(["--listen", "127.0.0.1:0", "--redis", &redis.url()])
            .args(["--presence-ttl-secs", &ttl_secs.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            child,
            url: format!("ws://{addr}/v1/ws"),
        }
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
