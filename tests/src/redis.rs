//! A real `redis-server` process ([`Redis`]): started from the binary on PATH on a
//! free port of 127.0.0.1, AOF on with `appendfsync always`, data in a temp
//! dir, killed (by its PID) when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one; retries on another port if the chosen one was taken.
    ///
    /// # Panics
    ///
    /// When redis-server is not on PATH or does not come up.
    pub fn start() -> Self {
        let dir = crate::temp_dir("hush-redis-");
        for _ in 0..10 {
            let port = crate::unused_local_port();
            if let Some(child) = spawn(port, dir.path()) {
                return Self {
                    child: Some(child),
                    port,
                    dir,
                };
            }
        }
        panic!("redis-server did not start (is it on PATH?)");
    }

    /// `redis://127.0.0.1:PORT`, what `hush-relay --redis` takes.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port and data dir (the AOF is replayed).
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..100 {
            if let Some(child) = spawn(self.port, self.dir.path()) {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }
}

/// Spawns redis-server and waits for "Ready to accept connections" on its
/// stdout; `None` if it exited first (port taken).
fn spawn(port: u16, dir: &std::path::Path) -> Option<Child> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-server (install it: apt-get install redis-server): {e}")
        });
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("Ready to accept connections")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(()) => Some(child),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
