//! Helpers for the `hush chat` tests in a real terminal: a private tmux
//! server, `hush` runs on a profile of its own, and pane scripts that run
//! `hush chat` and report how it exited.
//!
//! Needs `tmux` on PATH (CI installs it); without it a test fails and says
//! so rather than skipping.
#![allow(dead_code, clippy::new_without_default)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HUSH: &str = env!("CARGO_BIN_EXE_hush");
pub const PASSPHRASE: &str = "chat test passphrase";
/// How long any expected screen content may take to appear.
pub const DEADLINE: Duration = Duration::from_secs(30);
pub const POLL: Duration = Duration::from_millis(100);

/// A private tmux server (its own socket), killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn new() -> Self {
        match Command::new("tmux").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "tmux is not installed: this test runs `hush chat` in a real terminal and \
                 needs tmux on PATH (apt-get install tmux)"
            ),
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Self {
            socket: format!("hush-chat-test-{}-{nanos}", std::process::id()),
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) => o,
            Err(e) => panic!("tmux {args:?}: {e}"),
        }
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `script` in a detached 80x24 session named `name`.
    pub fn start(&self, name: &str, script: &Path) {
        let script = script.to_string_lossy();
        self.ok(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "80",
            "-y",
            "24",
            script.as_ref(),
        ]);
    }

    pub fn screen(&self, name: &str) -> String {
        self.ok(&["capture-pane", "-p", "-t", name])
    }

    /// Types `text` literally.
    pub fn type_text(&self, name: &str, text: &str) {
        self.ok(&["send-keys", "-t", name, "-l", text]);
    }

    /// Presses a key (tmux key name: Enter, C-c...).
    pub fn key(&self, name: &str, key: &str) {
        self.ok(&["send-keys", "-t", name, key]);
    }

    pub fn format(&self, name: &str, format: &str) -> String {
        self.ok(&["display-message", "-p", "-t", name, format])
            .trim()
            .to_owned()
    }

    /// Polls the screen of `name` until `pred` holds; returns that screen.
    pub fn wait_until(&self, name: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(name);
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{name}'s screen never showed {what} within {DEADLINE:?}; it shows:\n{screen}\n\
                 every pane:\n{}",
                self.all_screens()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Every session's screen, for failure messages.
    pub fn all_screens(&self) -> String {
        let names = self.ok(&["list-sessions", "-F", "#{session_name}"]);
        names
            .lines()
            .map(|n| format!("--- {n} ---\n{}", self.screen(n)))
            .collect()
    }

    pub fn wait_for(&self, name: &str, text: &str) -> String {
        self.wait_until(name, &format!("{text:?}"), |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

pub fn hush(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(HUSH)
        .arg("--home")
        .arg(home)
        .args(args)
        .env("HUSH_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => o,
        Err(e) => panic!("running hush {args:?}: {e}"),
    }
}

/// An in-process relay (memory store) and its runtime.
pub struct Relay {
    pub url: String,
    // Dropped in this order: the relay before its runtime.
    _relay: hush_relay::RelayHandle,
    _runtime: tokio::runtime::Runtime,
}

pub fn relay() -> Relay {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let relay = match runtime.block_on(hush_relay::RelayHandle::start(hush_relay::Config::memory()))
    {
        Ok(r) => r,
        Err(e) => panic!("relay: {e}"),
    };
    Relay {
        url: format!("ws://{}", relay.local_addr()),
        _relay: relay,
        _runtime: runtime,
    }
}

/// An in-process relay (memory store) with `alice` and `bob` initialised
/// against it, their homes in `dir`.
pub struct Pair {
    pub dir: tempfile::TempDir,
    pub alice: PathBuf,
    pub bob: PathBuf,
    pub relay: Relay,
}

pub fn pair() -> Pair {
    let relay = relay();
    let url = relay.url.clone();
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let alice = init(dir.path(), "alice", &url);
    let bob = init(dir.path(), "bob", &url);
    Pair {
        dir,
        alice,
        bob,
        relay,
    }
}

/// `hush init` arguments for `user` on `relay`, with cheap Argon2id costs.
pub fn init_args<'a>(relay: &'a str, user: &'a str) -> Vec<&'a str> {
    vec![
        "--relay",
        relay,
        "init",
        "--user",
        user,
        "--kdf-memory-kib",
        "8",
        "--kdf-iterations",
        "1",
    ]
}

pub fn init(dir: &Path, user: &str, relay: &str) -> PathBuf {
    let home = dir.join(user);
    let out = hush(&home, &init_args(relay, user));
    assert!(
        out.status.success(),
        "hush init {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    home
}

/// A script for a tmux pane: runs `hush chat PEER`, then reports its exit
/// status and whether the terminal was left in raw mode, and stays open so
/// the pane can be read.
pub fn chat_script(dir: &Path, home: &Path, peer: &str) -> PathBuf {
    chat_script_with(dir, home, peer, &[], &[])
}

/// [`chat_script`] with environment variables set and global options
/// (e.g. `--relay URL`) before `chat`.
pub fn chat_script_with(
    dir: &Path,
    home: &Path,
    peer: &str,
    env: &[(&str, &str)],
    options: &[&str],
) -> PathBuf {
    let me = home
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = dir.join(format!("chat-{me}-{peer}.sh"));
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    let options: String = options.iter().map(|o| format!(" '{o}'")).collect();
    let script = format!(
        "#!/bin/sh\n\
         export HUSH_PASSPHRASE='{PASSPHRASE}'\n\
         unset RUST_LOG\n\
         {exports}\
         '{HUSH}' --home '{home}'{options} chat {peer}\n\
         echo \"hush-exit=$?\"\n\
         case \"$(stty -a)\" in *-icanon*) echo 'raw-mode=on' ;; *) echo 'raw-mode=off' ;; esac\n\
         exec sleep 600\n",
        home = home.display(),
    );
    if let Err(e) = std::fs::write(&path, script) {
        panic!("writing {}: {e}", path.display());
    }
    let executable = std::fs::Permissions::from_mode(0o755);
    if let Err(e) = std::fs::set_permissions(&path, executable) {
        panic!("chmod {}: {e}", path.display());
    }
    path
}

/// Waits until pane `name`'s header shows the chat with `peer` connected.
pub fn wait_connected(tmux: &Tmux, name: &str, peer: &str) {
    tmux.wait_until(name, "a connected header", |s| {
        header(s).contains(peer) && header(s).contains("connected")
    });
}

/// In pane `from` (the user of that name), types `text`, which pane `to`
/// announces as typing in its header, then sends it; waits until `to`
/// shows it and `from` marks it read.
pub fn type_and_send(tmux: &Tmux, from: &str, to: &str, text: &str) {
    tmux.type_text(from, text);
    tmux.wait_until(to, &format!("{from} typing in the header"), |s| {
        header(s).contains("typing")
    });
    tmux.key(from, "Enter");
    tmux.wait_for(to, &format!("{from}: {text}"));
    tmux.wait_for(from, &format!("{from}: {text} (read)"));
}

/// The first screen line (the header).
pub fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}
