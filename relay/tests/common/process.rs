//! A `hush-relay` process in cluster mode, for tests that SIGKILL a relay
//! (an in-process `RelayHandle` cannot die without closing its sockets).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::redis::RedisServer;

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
