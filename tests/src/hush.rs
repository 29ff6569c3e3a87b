//! Running the `hush` CLI as a user would: one profile directory (`--home`)
//! per user, the passphrase in `HUSH_PASSPHRASE`, a deadline on every run.
//! Profiles are created with the cheapest Argon2id parameters
//! (`--kdf-memory-kib 8 --kdf-iterations 1`) so tests stay fast.

use std::path::Path;

use crate::bins::{HUSH, bin};
use crate::process::{Cmd, Output};

/// The passphrase every test profile is sealed with.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// `hush --home HOME ARGS` with [`PASSPHRASE`], not yet run: add stdin,
/// environment or a deadline, then [`Cmd::run`]. `RUST_LOG` and
/// `HUSH_HOME` are removed from the environment so the CLI's output is
/// exactly what a user sees.
pub fn hush_cmd(home: &Path, args: &[&str]) -> Cmd {
    Cmd::new(bin(HUSH))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("HUSH_PASSPHRASE", PASSPHRASE)
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("HUSH_HOME")
}

/// Runs `hush --home HOME ARGS` with [`PASSPHRASE`] to completion.
pub fn hush(home: &Path, args: &[&str]) -> Output {
    hush_cmd(home, args).run()
}

/// A user with a profile directory of their own (removed on drop).
#[derive(Debug)]
pub struct Hush {
    user: String,
    home: tempfile::TempDir,
}

impl Hush {
    /// A user named `user` with a fresh, empty home (no profile yet).
    pub fn new(user: &str) -> Self {
        let home = tempfile::Builder::new()
            .prefix(&format!("hush-home-{user}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a home for {user}: {e}"));
        Self {
            user: user.to_owned(),
            home,
        }
    }

    /// The user id.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The profile directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `hush init` against `relay_url`, without checking the outcome.
    pub fn try_init(&self, relay_url: &str) -> Output {
        self.run(&[
            "init",
            "--user",
            &self.user,
            "--relay",
            relay_url,
            "--kdf-memory-kib",
            "8",
            "--kdf-iterations",
            "1",
        ])
    }

    /// `hush init` against `relay_url`; fails the test unless it succeeds.
    #[track_caller]
    pub fn init(&self, relay_url: &str) -> Output {
        let out = self.try_init(relay_url);
        out.assert_success();
        out
    }

    /// Runs `hush ARGS` on this user's profile.
    pub fn run(&self, args: &[&str]) -> Output {
        hush(self.home(), args)
    }

    /// [`hush_cmd`] on this user's profile.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        hush_cmd(self.home(), args)
    }

    /// `hush send TO TEXT`; fails the test unless it succeeds and prints a
    /// message id (32 lowercase hex digits), which it returns.
    #[track_caller]
    pub fn send(&self, to: &str, text: &str) -> String {
        let out = self.run(&["send", to, text]);
        out.assert_success();
        message_id(&out)
    }

    /// `hush recv` (drains the queue, then exits); fails the test unless it
    /// succeeds.
    #[track_caller]
    pub fn recv(&self) -> Output {
        let out = self.run(&["recv"]);
        out.assert_success();
        out
    }
}

/// Alice and Bob with profiles on `relay_url` (`hush init` for each).
#[track_caller]
pub fn alice_and_bob(relay_url: &str) -> (Hush, Hush) {
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(relay_url);
    bob.init(relay_url);
    (alice, bob)
}

/// The message id `hush send` printed: its whole stdout, one line of 32
/// lowercase hex digits.
#[track_caller]
pub fn message_id(out: &Output) -> String {
    let id = out.stdout.trim_end_matches('\n');
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "`hush send` should print exactly a 32-hex-digit message id\n{}",
        out.transcript()
    );
    id.to_owned()
}
