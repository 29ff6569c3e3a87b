//! Running a process under a deadline: [`Cmd`] builds the command,
//! [`Cmd::run`] returns its [`Output`] or kills it at the deadline and
//! fails the test; [`Cmd::spawn`] returns a [`Spawned`] process whose
//! stdout lines can be awaited one by one (to act at a precise point of
//! its run) before it is waited for or killed. Child processes are tokio processes on one shared
//! runtime ([`runtime`]), so waiting is a real await on the exit, never a
//! sleep; the harness API itself is synchronous (call it from plain
//! `#[test]` functions, not from inside an async runtime).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Default deadline of one CLI or admin process.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// The runtime that owns every child process and the proxies. Two workers
/// are plenty: the work is waiting on processes and copying bytes.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hush-tests")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the test runtime: {e}"))
    })
}

/// A command to run to completion.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Cmd {
    /// `program` with no arguments, stdin empty, [`PROCESS_TIMEOUT`].
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            stdin: None,
            timeout: PROCESS_TIMEOUT,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable (a later call for the same key wins).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Removes an inherited environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env_remove.push(key.as_ref().to_owned());
        self
    }

    /// Bytes written to the process's stdin (then closed). Default: empty.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Deadline for the whole run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How the command reads in failure messages.
    pub fn display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Runs the command to completion.
    ///
    /// # Panics
    ///
    /// When it cannot be started, or is still running at the deadline (it
    /// is killed first; the panic message carries what it printed).
    pub fn run(self) -> Output {
        self.spawn().wait()
    }

    /// Starts the command and returns at once: read its stdout line by
    /// line with [`Spawned::next_line`], then [`Spawned::wait`] or
    /// [`Spawned::kill`]. The deadline applies to [`Spawned::wait`].
    ///
    /// # Panics
    ///
    /// When it cannot be started.
    pub fn spawn(self) -> Spawned {
        let command = self.display();
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let input = self.stdin.unwrap_or_default();
        runtime().block_on(async move {
            let started = Instant::now();
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
            let stdin = child.stdin.take();
            // The writer runs on its own: a process that exits without
            // reading its stdin must not block anything.
            let writer = tokio::spawn(async move {
                if let Some(mut stdin) = stdin {
                    let _ = stdin.write_all(&input).await;
                    let _ = stdin.shutdown().await;
                }
            });
            let (line_tx, lines) = mpsc::unbounded_channel();
            let stdout = tokio::spawn(read_lines(child.stdout.take(), line_tx));
            let stderr = tokio::spawn(read_all(child.stderr.take()));
            Spawned {
                command,
                timeout: self.timeout,
                started,
                child,
                writer,
                lines,
                stdout,
                stderr,
            }
        })
    }
}

/// A running process started by [`Cmd::spawn`]; killed if dropped.
#[derive(Debug)]
pub struct Spawned {
    command: String,
    timeout: Duration,
    started: Instant,
    child: tokio::process::Child,
    writer: JoinHandle<()>,
    lines: mpsc::UnboundedReceiver<String>,
    /// Ends with everything printed on stdout.
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl Spawned {
    /// The next stdout line (without its newline), or `None` once stdout
    /// is closed.
    ///
    /// # Panics
    ///
    /// When no line comes within `timeout` (the process is killed first).
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let line =
            runtime().block_on(async { tokio::time::timeout(timeout, self.lines.recv()).await });
        match line {
            Ok(line) => line,
            Err(_) => {
                let command = self.command.clone();
                let out = self.finish(true);
                panic!(
                    "`{command}` printed no line within {timeout:?}; killed it.\n{}",
                    out.transcript()
                )
            }
        }
    }

    /// The next stdout line that is a JSON object with `"type": kind`
    /// (`--json` output of `hush recv`), skipping other lines.
    ///
    /// # Panics
    ///
    /// When stdout closes first, a line is not JSON, or no line comes
    /// within `timeout`.
    #[track_caller]
    pub fn next_json_of_type(
        &mut self,
        kind: &str,
        timeout: Duration,
    ) -> serde_json::Map<String, serde_json::Value> {
        loop {
            let line = self
                .next_line(timeout)
                .unwrap_or_else(|| panic!("`{}` ended before a {kind} line", self.command));
            match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(serde_json::Value::Object(m))
                    if m.get("type").and_then(|t| t.as_str()) == Some(kind) =>
                {
                    return m;
                }
                Ok(_) => {}
                Err(e) => panic!("line {line:?} is not JSON: {e}"),
            }
        }
    }

    /// Waits for the process to exit (until the command's deadline).
    ///
    /// # Panics
    ///
    /// When it is still running at the deadline (it is killed first).
    pub fn wait(mut self) -> Output {
        let timeout = self.timeout;
        let status =
            runtime().block_on(async { tokio::time::timeout(timeout, self.child.wait()).await });
        match status {
            Ok(Ok(_)) => self.finish(false),
            Ok(Err(e)) => panic!("waiting for `{}` failed: {e}", self.command),
            Err(_) => {
                let out = self.finish(true);
                panic!(
                    "`{}` did not finish within {timeout:?}; killed it.\n{}",
                    out.command,
                    out.transcript()
                )
            }
        }
    }

    /// The process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends SIGTERM, then waits for the process to exit (until the
    /// command's deadline).
    ///
    /// # Panics
    ///
    /// When `kill` cannot be run, or the process outlives its deadline.
    pub fn terminate(self) -> Output {
        if let Some(pid) = self.pid() {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
            assert!(status.success(), "kill -TERM {pid} failed");
        }
        self.wait()
    }

    /// Kills the process with SIGKILL and returns what it printed
    /// (`code` is `None` unless it had already exited).
    pub fn kill(mut self) -> Output {
        self.finish(true)
    }

    /// Kills the process if asked, reaps it and collects its output.
    fn finish(&mut self, kill: bool) -> Output {
        runtime().block_on(async {
            if kill {
                let _ = self.child.kill().await;
            }
            let status = self.child.wait().await.ok();
            self.writer.abort();
            let stdout = (&mut self.stdout).await.unwrap_or_default();
            let stderr = (&mut self.stderr).await.unwrap_or_default();
            Output {
                command: self.command.clone(),
                code: status.and_then(|s| s.code()),
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
                elapsed: self.started.elapsed(),
            }
        })
    }
}

/// Reads `pipe` to its end, handing each complete line to `lines`;
/// returns every byte read.
async fn read_lines<R: tokio::io::AsyncRead + Unpin>(
    pipe: Option<R>,
    lines: mpsc::UnboundedSender<String>,
) -> Vec<u8> {
    let mut all = Vec::new();
    let Some(pipe) = pipe else { return all };
    let mut reader = tokio::io::BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                all.extend_from_slice(&line);
                let text = String::from_utf8_lossy(&line);
                let _ = lines.send(text.strip_suffix('\n').unwrap_or(&text).to_owned());
            }
        }
    }
    all
}

async fn read_all<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut buf).await;
    }
    buf
}

/// What a finished process did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for failure messages.
    pub command: String,
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Everything printed on stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything printed on stderr (lossy UTF-8).
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Output {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Command, exit code and both streams, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "$ {}\nexit code: {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Fails the test unless the process exited with 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "expected success\n{}", self.transcript());
        self
    }

    /// Fails the test unless the process exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}\n{}",
            self.transcript()
        );
        self
    }

    /// Non-empty stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.is_empty()).collect()
    }

    /// Every non-empty stdout line parsed as one JSON object.
    ///
    /// # Panics
    ///
    /// On a line that is not a JSON object.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.lines()
            .into_iter()
            .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
                Ok(serde_json::Value::Object(m)) => m,
                Ok(other) => panic!("not a JSON object: {other}\n{}", self.transcript()),
                Err(e) => panic!("line {l:?} is not JSON: {e}\n{}", self.transcript()),
            })
            .collect()
    }
}
