//! `hush chat` in a real terminal: alice and bob each run `hush chat` in an
//! 80x24 tmux pane against an in-process relay; keys are typed with
//! `send-keys` and screens read with `capture-pane`, polled until a bounded
//! deadline.
//!
//! Needs `tmux` on PATH (CI installs it); without it the test fails and
//! says so rather than skipping.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const HUSH: &str = env!("CARGO_BIN_EXE_hush");
const PASSPHRASE: &str = "chat test passphrase";
/// How long any expected screen content may take to appear.
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// A private tmux server (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Self {
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

    fn run(&self, args: &[&str]) -> Output {
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

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `script` in a detached 80x24 session named `name`.
    fn start(&self, name: &str, script: &Path) {
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

    fn screen(&self, name: &str) -> String {
        self.ok(&["capture-pane", "-p", "-t", name])
    }

    /// Types `text` literally.
    fn type_text(&self, name: &str, text: &str) {
        self.ok(&["send-keys", "-t", name, "-l", text]);
    }

    /// Presses a key (tmux key name: Enter, C-c...).
    fn key(&self, name: &str, key: &str) {
        self.ok(&["send-keys", "-t", name, key]);
    }

    fn format(&self, name: &str, format: &str) -> String {
        self.ok(&["display-message", "-p", "-t", name, format])
            .trim()
            .to_owned()
    }

    /// Polls the screen of `name` until `pred` holds; returns that screen.
    fn wait_until(&self, name: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
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
    fn all_screens(&self) -> String {
        let names = self.ok(&["list-sessions", "-F", "#{session_name}"]);
        names
            .lines()
            .map(|n| format!("--- {n} ---\n{}", self.screen(n)))
            .collect()
    }

    fn wait_for(&self, name: &str, text: &str) -> String {
        self.wait_until(name, &format!("{text:?}"), |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn hush(home: &Path, args: &[&str]) -> Output {
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

fn init(dir: &Path, user: &str, relay: &str) -> PathBuf {
    let home = dir.join(user);
    let out = hush(
        &home,
        &[
            "--relay",
            relay,
            "init",
            "--user",
            user,
            "--kdf-memory-kib",
            "8",
            "--kdf-iterations",
            "1",
        ],
    );
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
fn chat_script(dir: &Path, home: &Path, peer: &str) -> PathBuf {
    let path = dir.join(format!("chat-{peer}.sh"));
    let script = format!(
        "#!/bin/sh\n\
         export HUSH_PASSPHRASE='{PASSPHRASE}'\n\
         unset RUST_LOG\n\
         '{HUSH}' --home '{home}' chat {peer}\n\
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

/// The first screen line (the header).
fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

#[test]
fn two_chats_exchange_messages_with_typing_and_read_marks_then_quit_cleanly() {
    let tmux = Tmux::new();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let relay = match runtime.block_on(hush_relay::RelayHandle::start(hush_relay::Config::memory()))
    {
        Ok(r) => r,
        Err(e) => panic!("relay: {e}"),
    };
    let url = format!("ws://{}", relay.local_addr());
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let alice = init(dir.path(), "alice", &url);
    let bob = init(dir.path(), "bob", &url);

    tmux.start("alice", &chat_script(dir.path(), &alice, "bob"));
    tmux.start("bob", &chat_script(dir.path(), &bob, "alice"));
    tmux.wait_until("alice", "a connected header", |s| {
        header(s).contains("bob") && header(s).contains("connected")
    });
    tmux.wait_until("bob", "a connected header", |s| {
        header(s).contains("alice") && header(s).contains("connected")
    });
    let screen = tmux.screen("alice");
    assert!(header(&screen).contains("unverified"), "{screen}");
    assert_eq!(screen.lines().count(), 24, "{screen}");

    // alice writes; bob's chat shows it live, and since bob's pane displays
    // it, alice's mark moves to read.
    tmux.type_text("alice", "hello from alice");
    tmux.key("alice", "Enter");
    tmux.wait_for("bob", "alice: hello from alice");
    tmux.wait_for("alice", "alice: hello from alice (read)");

    // bob types: alice sees "typing…" in her header before the message.
    tmux.type_text("bob", "hi alice");
    tmux.wait_until("alice", "bob typing in the header", |s| {
        header(s).contains("typing")
    });
    tmux.key("bob", "Enter");
    tmux.wait_for("alice", "bob: hi alice");
    // The message ends the indicator (well before its 8 s timeout).
    tmux.wait_until("alice", "the typing indicator cleared", |s| {
        s.contains("bob: hi alice") && !header(s).contains("typing")
    });
    tmux.wait_for("bob", "bob: hi alice (read)");

    // Cursor editing on the input line: "wrld", Left x3, insert "o".
    tmux.type_text("alice", "wrld");
    for _ in 0..3 {
        tmux.key("alice", "Left");
    }
    tmux.type_text("alice", "o");
    tmux.key("alice", "End");
    tmux.type_text("alice", "!");
    tmux.key("alice", "Enter");
    tmux.wait_for("bob", "alice: world!");

    // Ctrl-C leaves with status 0 and the terminal restored.
    tmux.key("alice", "C-c");
    let screen = tmux.wait_for("alice", "raw-mode=");
    assert!(screen.contains("hush-exit=0"), "{screen}");
    assert!(screen.contains("raw-mode=off"), "{screen}");
    assert_eq!(
        tmux.format("alice", "#{alternate_on}"),
        "0",
        "alternate screen left"
    );
    assert_eq!(tmux.format("alice", "#{cursor_flag}"), "1", "cursor shown");

    // /quit does the same.
    tmux.type_text("bob", "/quit");
    tmux.key("bob", "Enter");
    let screen = tmux.wait_for("bob", "raw-mode=");
    assert!(screen.contains("hush-exit=0"), "{screen}");
    assert!(screen.contains("raw-mode=off"), "{screen}");
    assert_eq!(tmux.format("bob", "#{alternate_on}"), "0");

    // Everything shown was stored.
    let out = hush(&alice, &["history", "bob"]);
    let history = String::from_utf8_lossy(&out.stdout);
    assert!(history.contains("hello from alice"), "{history}");
    assert!(history.contains("hi alice"), "{history}");
    assert!(history.contains("world!"), "{history}");
    drop(relay);
}

#[test]
fn chat_without_a_terminal_is_a_usage_error() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let out = hush(dir.path(), &["chat", "bob"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a terminal"));
}
