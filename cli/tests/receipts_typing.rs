//! Receipts and typing indicators as the `hush` CLI shows them: alice uses
//! the real binary, bob is a `hush-client-core` client on his own `hush
//! init` profile doing what `hush chat` does (typing, read receipts), both
//! against an in-process relay. `hush recv --json` reports bob's typing and
//! receipts, and `hush history --json` shows the status they set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use hush_client_core::UserId;
use hush_client_core::client::{Client, ClientConfig, Event, Events, Profile, SystemClock};
use hush_client_core::payload::{MessageId, TypingState};
use hush_relay::{Config, RelayHandle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

const HUSH: &str = env!("CARGO_BIN_EXE_hush");
const PASSPHRASE: &str = "receipts test passphrase";
const WAIT: Duration = Duration::from_secs(20);

fn hush(home: &Path) -> Command {
    let mut c = Command::new(HUSH);
    c.arg("--home")
        .arg(home)
        .env("HUSH_PASSPHRASE", PASSPHRASE)
        .env_remove("RUST_LOG")
        .env_remove("HUSH_HOME")
        .stdin(Stdio::null());
    c
}

fn run(home: &Path, args: &[&str]) -> Output {
    let out = hush(home).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "hush {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn init(home: &Path, user: &str, relay: &str) {
    run(
        home,
        &[
            "init",
            "--user",
            user,
            "--relay",
            relay,
            "--kdf-memory-kib",
            "8",
            "--kdf-iterations",
            "1",
        ],
    );
}

fn uid(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

async fn open_client(home: &Path) -> (Client, Events) {
    let profile = Profile::open_in(home, PASSPHRASE.as_bytes()).unwrap();
    Client::connect(
        profile,
        ClientConfig::default(),
        Box::new(StdRng::seed_from_u64(7)),
        Arc::new(SystemClock),
    )
    .await
    .unwrap()
}

async fn next_message(events: &mut Events) -> MessageId {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Message(m) = events.recv().await.expect("events ended") {
                return m.id;
            }
        }
    })
    .await
    .expect("a message arrives")
}

/// A running `hush recv --json`, its stdout lines on a channel.
struct Recv {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Recv {
    fn start(home: &Path) -> Self {
        let mut child = hush(home)
            .args(["recv", "--json", "--wait", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next JSON event matching `pick`; panics after [`WAIT`].
    fn next(&self, pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .expect("no matching event from hush recv in time");
            let v: Value = serde_json::from_str(&line).unwrap();
            if pick(&v) {
                return v;
            }
        }
    }
}

impl Drop for Recv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn history_status(home: &Path, peer: &str, id: &str) -> String {
    let out = run(home, &["history", peer, "--json"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["id"] == id)
        .and_then(|e| e["status"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{id} not in the history: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_json_shows_typing_and_receipts_and_history_shows_read() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let (a, b, u) = (alice.clone(), bob.clone(), url.clone());
    tokio::task::spawn_blocking(move || {
        init(&a, "alice", &u);
        init(&b, "bob", &u);
    })
    .await
    .unwrap();

    let a = alice.clone();
    let sent = tokio::task::spawn_blocking(move || {
        let out = run(&a, &["send", "bob", "read me"]);
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
    .await
    .unwrap();
    assert_eq!(history_status(&alice, "bob", &sent), "sent");

    // bob receives it (his client sends the delivery receipt) and says
    // hello, so alice's `recv` shows when it is live.
    let (bob_client, mut bob_events) = open_client(&bob).await;
    let read_id = next_message(&mut bob_events).await;
    assert_eq!(read_id.to_hex(), sent);

    let a = alice.clone();
    let recv = tokio::task::spawn_blocking(move || Recv::start(&a))
        .await
        .unwrap();
    bob_client.send_text(&uid("alice"), "hello").await.unwrap();
    let recv = tokio::task::spawn_blocking(move || {
        recv.next(|v| v["type"] == "message" && v["text"] == "hello");
        recv
    })
    .await
    .unwrap();

    // Live now: typing, then the read receipt `hush chat` would send.
    assert!(
        bob_client
            .send_typing(&uid("alice"), TypingState::Started)
            .await
            .unwrap()
    );
    bob_client
        .send_read_receipt(&uid("alice"), vec![read_id])
        .await
        .unwrap();
    assert!(
        bob_client
            .send_typing(&uid("alice"), TypingState::Stopped)
            .await
            .unwrap()
    );
    let sent2 = sent.clone();
    let recv = tokio::task::spawn_blocking(move || {
        let started = recv.next(|v| v["type"] == "typing");
        assert_eq!(started["from"], "bob");
        assert_eq!(started["state"], "started");
        // The stored receipt and the ephemeral Stopped may come in either
        // order.
        let (mut read, mut stopped) = (None, None);
        while read.is_none() || stopped.is_none() {
            let v = recv.next(|v| v["type"] == "typing" || v["type"] == "receipt");
            if v["type"] == "typing" {
                stopped = Some(v);
            } else if v["kind"] == "read" {
                read = Some(v);
            }
        }
        let (read, stopped) = (read.unwrap(), stopped.unwrap());
        assert_eq!(read["from"], "bob");
        assert_eq!(read["ids"], serde_json::json!([sent2]));
        assert_eq!(stopped["state"], "stopped");
        recv
    })
    .await
    .unwrap();
    drop(recv);
    bob_client.close().await;

    let a = alice.clone();
    let status = tokio::task::spawn_blocking(move || history_status(&a, "bob", &sent))
        .await
        .unwrap();
    assert_eq!(status, "read");
    relay.shutdown().await.unwrap();
}
