//! A real `hush-relay` process on 127.0.0.1 with its logs captured.
//!
//! [`Relay::start`] spawns `hush-relay --listen 127.0.0.1:0 --data-dir DIR`
//! (the default, durable redb store) and waits for its first stdout line,
//! `listening on 127.0.0.1:PORT`. Stdout and stderr of every run go to
//! files (`stdout-N.log`, `stderr-N.log`, N = run number) in a temp dir
//! owned by the [`Relay`], so tests can assert on them. [`Relay::kill`] is
//! a SIGKILL followed by a wait; [`Relay::restart`] starts a new process on
//! the same data dir and the same port, so profiles that stored the URL
//! keep working. Dropping the [`Relay`] kills its process: no test leaves
//! one behind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::bins::{HUSH_RELAY, bin};
use crate::process::{Cmd, Output, runtime};

/// How long a relay may take to print `listening on ...`.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Extra arguments and environment for a relay (beyond `--listen` and
/// `--data-dir`). Logging defaults to `RUST_LOG=info`.
#[derive(Debug, Clone, Default)]
pub struct RelayOptions {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl RelayOptions {
    /// No extra arguments, `RUST_LOG=info`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a command-line argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable (e.g. `RUST_LOG=debug`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// One running relay process (or a stopped one that can be restarted).
#[derive(Debug)]
pub struct Relay {
    data_dir: PathBuf,
    options: RelayOptions,
    addr: SocketAddr,
    logs: tempfile::TempDir,
    /// Runs started so far; names the log files.
    runs: u32,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    child: tokio::process::Child,
    /// Copies stdout to its log file; ends when the process's stdout closes.
    stdout_pump: JoinHandle<()>,
}

/// Why one start attempt failed.
enum StartError {
    /// The process exited before printing its address (e.g. the port was
    /// still taken).
    Exited(String),
}

impl Relay {
    /// Starts a relay on a free port with its store in `data_dir`.
    ///
    /// # Panics
    ///
    /// When the relay does not print `listening on ADDR` within
    /// [`START_TIMEOUT`].
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, RelayOptions::new())
    }

    /// [`Relay::start`] with extra arguments or environment.
    pub fn start_with(data_dir: &Path, options: RelayOptions) -> Self {
        let logs = tempfile::Builder::new()
            .prefix("hush-relay-logs")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a log directory: {e}"));
        let mut relay = Self {
            data_dir: data_dir.to_owned(),
            options,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            logs,
            runs: 0,
            running: None,
        };
        let requested = relay.addr;
        match relay.spawn(requested) {
            Ok(addr) => relay.addr = addr,
            Err(StartError::Exited(why)) => panic!("hush-relay failed to start: {why}"),
        }
        relay
    }

    /// `ws://127.0.0.1:PORT`, what `hush --relay` takes.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The address the relay listens on (the same across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relay's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether a relay process is running (started and not killed).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and waits
    /// for it and for its captured output. Does nothing when not running.
    pub fn kill(&mut self) {
        if let Some(mut running) = self.running.take() {
            runtime().block_on(async {
                let _ = running.child.kill().await;
                // The pump ends at EOF, which the dead process guarantees.
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), &mut running.stdout_pump).await;
            });
        }
    }

    /// Asks the process to stop with SIGTERM (sent by the `kill` utility to
    /// this process id only) and waits up to `timeout` for it to exit.
    /// Returns its exit code (`None`: ended by a signal).
    ///
    /// # Panics
    ///
    /// When not running, or still running at the deadline (it is then
    /// killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let mut running = self
            .running
            .take()
            .unwrap_or_else(|| panic!("terminate: the relay is not running"));
        let pid = running
            .child
            .id()
            .unwrap_or_else(|| panic!("terminate: the relay has already been reaped"));
        Cmd::new("kill")
            .args(["-TERM", &pid.to_string()])
            .run()
            .assert_success();
        let status = runtime().block_on(async {
            let status = tokio::time::timeout(timeout, running.child.wait()).await;
            if status.is_err() {
                let _ = running.child.kill().await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), &mut running.stdout_pump).await;
            status
        });
        match status {
            Ok(Ok(s)) => s.code(),
            Ok(Err(e)) => panic!("waiting for the relay failed: {e}"),
            Err(_) => panic!("the relay did not exit within {timeout:?} of SIGTERM; killed it"),
        }
    }

    /// Kills the process if running, then starts a new one on the same
    /// data dir and port. A port still held by the dead process's sockets
    /// is retried until [`START_TIMEOUT`].
    ///
    /// # Panics
    ///
    /// When no relay comes up on that port in time.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        let mut pause = Duration::from_millis(20);
        loop {
            match self.spawn(self.addr) {
                Ok(addr) => {
                    assert_eq!(addr, self.addr, "the relay came back on another address");
                    return;
                }
                Err(StartError::Exited(why)) => {
                    if Instant::now() + pause > deadline {
                        panic!("hush-relay did not restart on {}: {why}", self.addr);
                    }
                    // The bind failed (port in TIME_WAIT or not yet
                    // released): back off briefly and try again.
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// Runs `hush-relay admin ARGS --data-dir DIR` (the relay must be
    /// stopped: see [`Relay::kill`]).
    pub fn admin(&self, args: &[&str]) -> Output {
        Cmd::new(bin(HUSH_RELAY))
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("RUST_LOG", "info")
            .run()
    }

    /// Paths of every log file written so far (stdout and stderr of every
    /// run).
    pub fn log_files(&self) -> Vec<PathBuf> {
        (1..=self.runs)
            .flat_map(|n| {
                [
                    self.logs.path().join(format!("stdout-{n}.log")),
                    self.logs.path().join(format!("stderr-{n}.log")),
                ]
            })
            .collect()
    }

    /// Stderr (the logs) of every run so far, concatenated.
    pub fn stderr(&self) -> String {
        self.concat("stderr")
    }

    /// Stdout of every run so far, concatenated.
    pub fn stdout(&self) -> String {
        self.concat("stdout")
    }

    fn concat(&self, stream: &str) -> String {
        let mut all = String::new();
        for n in 1..=self.runs {
            let path = self.logs.path().join(format!("{stream}-{n}.log"));
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
        all
    }

    /// One start attempt on `addr`; returns the address printed.
    fn spawn(&mut self, addr: SocketAddr) -> Result<SocketAddr, StartError> {
        self.runs += 1;
        let n = self.runs;
        let stdout_path = self.logs.path().join(format!("stdout-{n}.log"));
        let stderr_path = self.logs.path().join(format!("stderr-{n}.log"));
        let stderr_file = std::fs::File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
        let mut cmd = tokio::process::Command::new(bin(HUSH_RELAY));
        cmd.arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.options.args)
            .env("RUST_LOG", "info")
            .env_remove("HUSH_LISTEN")
            .env_remove("HUSH_DATA_DIR")
            .env_remove("HUSH_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file))
            .kill_on_drop(true);
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        // Spawned inside the runtime, which then reaps the process.
        let mut child = runtime()
            .block_on(async { cmd.spawn() })
            .unwrap_or_else(|e| panic!("cannot start hush-relay: {e}"));
        let stdout = child.stdout.take();
        let (first_line_tx, first_line) = oneshot::channel();
        let stdout_pump = runtime().spawn(pump_stdout(stdout, stdout_path, first_line_tx));
        let line =
            runtime().block_on(async { tokio::time::timeout(START_TIMEOUT, first_line).await });
        let running = Running { child, stdout_pump };
        match line {
            Ok(Ok(line)) => {
                let printed = line
                    .trim_end()
                    .strip_prefix("listening on ")
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                    .unwrap_or_else(|| {
                        panic!("unexpected first stdout line of hush-relay: {line:?}")
                    });
                self.running = Some(running);
                Ok(printed)
            }
            // Stdout closed without a line: the process is exiting.
            Ok(Err(_)) => {
                let mut running = running;
                let status = runtime().block_on(running.child.wait());
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                Err(StartError::Exited(format!(
                    "exited ({status:?}) before printing its address; stderr:\n{stderr}"
                )))
            }
            Err(_) => {
                self.running = Some(running);
                self.kill();
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!(
                    "hush-relay printed no `listening on` line within {START_TIMEOUT:?}; \
                     stderr:\n{stderr}"
                );
            }
        }
    }
}

/// Copies the relay's stdout to `path`, handing the first line to `first`.
async fn pump_stdout(
    stdout: Option<tokio::process::ChildStdout>,
    path: PathBuf,
    first: oneshot::Sender<String>,
) {
    let Some(stdout) = stdout else { return };
    let Ok(mut file) = tokio::fs::File::create(&path).await else {
        return;
    };
    let mut reader = BufReader::new(stdout);
    let mut first = Some(first);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let _ = file.write_all(&line).await;
                let _ = file.flush().await;
                if let Some(tx) = first.take() {
                    let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                }
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Also on panic: the process never outlives its test.
        self.kill();
    }
}
