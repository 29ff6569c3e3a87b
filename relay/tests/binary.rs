//! The `hush-relay` binary itself: its first stdout line, flags and
//! environment, `--help`, and `admin reset-user` against a live data dir.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::process::start_binary as start;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hush-relay");
const TIMEOUT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn healthz(port: u16) -> String {
    let mut s = within("tcp", tokio::net::TcpStream::connect(("127.0.0.1", port)))
        .await
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    within("healthz", s.read_to_string(&mut out)).await.unwrap();
    out
}

#[tokio::test]
async fn first_line_is_the_listen_address_and_healthz_answers() {
    let (mut child, port) =
        start(Command::new(BIN).args(["--listen", "127.0.0.1:0", "--store", "memory"])).await;
    assert_ne!(port, 0, "the real port is printed");
    let r = healthz(port).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn environment_variables_configure_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = start(
        Command::new(BIN)
            .env("HUSH_LISTEN", "127.0.0.1:0")
            .env("HUSH_DATA_DIR", dir.path())
            .env("HUSH_STORE", "redb"),
    )
    .await;
    assert!(healthz(port).await.starts_with("HTTP/1.1 200"));
    assert!(
        dir.path().join("hush.redb").exists(),
        "redb store in HUSH_DATA_DIR"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn help_explains_every_option() {
    let out = within("help", Command::new(BIN).arg("--help").output())
        .await
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "--listen",
        "HUSH_LISTEN",
        "--data-dir",
        "HUSH_DATA_DIR",
        "--store",
        "HUSH_STORE",
        "--relay-id",
        "HUSH_RELAY_ID",
        "--max-frame-bytes",
        "--max-envelope-bytes",
        "--max-prekeys-per-upload",
        "--max-prekeys-stored",
        "--prekey-low-threshold",
        "--mailbox-max-envelopes",
        "--mailbox-max-bytes",
        "--retention-secs",
        "--rate-per-sec",
        "--rate-burst",
        "--max-connections-per-ip",
        "--auth-timeout-ms",
        "--max-ack-ids",
        "--outbound-queue",
        "admin",
    ] {
        assert!(help.contains(opt), "--help does not mention {opt}");
    }
}

#[tokio::test]
async fn admin_reset_user_refuses_a_running_relays_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let (mut child, _) =
        start(Command::new(BIN).args(["--listen", "127.0.0.1:0", "--data-dir", &data_dir])).await;
    let out = within(
        "admin",
        Command::new(BIN)
            .args(["admin", "reset-user", "alice", "--data-dir", &data_dir])
            .output(),
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another process"), "{err}");
    child.kill().await.unwrap();
    child.wait().await.unwrap();
    let out = within(
        "admin",
        Command::new(BIN)
            .args(["admin", "reset-user", "alice", "--data-dir", &data_dir])
            .output(),
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn logs_to_a_pipe_are_plain_text() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--store", "memory"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    within("a log line", BufReader::new(stderr).read_line(&mut line))
        .await
        .unwrap();
    assert!(line.contains("relay serving"), "{line:?}");
    assert!(
        !line.contains('\u{1b}'),
        "ANSI escape in piped logs: {line:?}"
    );
    child.kill().await.unwrap();
}
