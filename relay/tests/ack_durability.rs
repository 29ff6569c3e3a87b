//! `acked` means what docs/protocol.md says: the deletion is durable. The
//! relay binary (redb) is SIGKILLed right after it answered `acked`; on
//! restart nothing acknowledged is pushed again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::process::start_binary;
use common::*;
use hush_protocol::ServerFrame;

const ROUNDS: usize = 4;
const PER_ROUND: usize = 40;

async fn relay_on(data: &std::path::Path) -> (tokio::process::Child, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hush-relay"));
    cmd.args(["--listen", "127.0.0.1:0", "--store", "redb", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn");
    let (child, port) = start_binary(&mut cmd).await;
    (child, format!("ws://127.0.0.1:{port}/v1/ws"))
}

#[tokio::test]
async fn nothing_acknowledged_is_pushed_again_after_a_sigkill_right_after_acked() {
    let data = tempfile::tempdir().unwrap();
    let (alice_key, bob_key) = (new_key(), new_key());
    for round in 0..ROUNDS {
        let (mut relay, url) = relay_on(data.path()).await;
        let (mut alice, _) = Client::login_url(&url, "alice", &alice_key).await;
        let (mut bob, ok) = Client::login_url(&url, "bob", &bob_key).await;
        assert_eq!(
            ok.last_queued, 0,
            "round {round}: an acknowledged envelope is back"
        );
        let mut ids = Vec::new();
        for i in 0..PER_ROUND {
            ids.push(
                alice
                    .send_ok("bob", format!("{round}-{i}").as_bytes())
                    .await,
            );
        }
        for id in &ids {
            assert_eq!(bob.next_envelope().await.id, Some(*id));
        }
        let acked = bob.ack(ids).await;
        assert!(matches!(acked, ServerFrame::Acked(_)), "{acked:?}");
        // At once, before anything else can be written and fsync'd.
        relay.start_kill().unwrap();
        relay.wait().await.unwrap();
    }
    let (_relay, url) = relay_on(data.path()).await;
    let (mut bob, ok) = Client::login_url(&url, "bob", &bob_key).await;
    assert_eq!(ok.last_queued, 0, "an acknowledged envelope is back");
    assert!(bob.first_envelope_before_marker().await.is_none());
}
