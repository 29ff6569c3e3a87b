//! Running a relay for real: TLS (`wss://` with a certificate made here),
//! `/metrics`, `/readyz` against a Redis that goes away, graceful shutdown
//! on SIGTERM under traffic (the binary), and the options table of
//! `docs/operations.md` against the code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::{Client, TIMEOUT, auth_frame, new_key, user, within};
use futures_util::{SinkExt, StreamExt};
use hush_protocol::frame::{Accepted, SendEnvelope};
use hush_protocol::{Body, ClientFrame, ServerFrame, close};
use hush_relay::{Config, RelayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_hush-relay");

/// `GET path` over plain HTTP: (status code, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = within("tcp", tokio::net::TcpStream::connect(addr))
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    within("http response", s.read_to_string(&mut out))
        .await
        .unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {out:?}"));
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// The value of an unlabelled sample (or the sum over its label sets).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let metric = series.split('{').next()?;
            (metric == name).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

// ------------------------------------------------------------------ TLS

struct TestPki {
    dir: tempfile::TempDir,
    ca_der: rustls_pki_types::CertificateDer<'static>,
}

impl TestPki {
    /// A CA and a certificate for `localhost` and 127.0.0.1 signed by it,
    /// written as `cert.pem` and `key.pem`.
    fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Hush test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cert.pem"),
            format!("{}{}", cert.pem(), ca.pem()),
        )
        .unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Self {
            dir,
            ca_der: ca.der().clone(),
        }
    }

    fn cert(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> std::path::PathBuf {
        self.dir.path().join("key.pem")
    }

    fn connector(&self, trust_ca: bool) -> tokio_tungstenite::Connector {
        let mut roots = rustls::RootCertStore::empty();
        if trust_ca {
            roots.add(self.ca_der.clone()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_tungstenite::Connector::Rustls(Arc::new(config))
    }
}

#[tokio::test]
async fn tls_relay_serves_wss_with_a_generated_certificate() {
    let pki = TestPki::new();
    let relay = RelayHandle::start(Config::memory().with_tls(pki.cert(), pki.key()))
        .await
        .unwrap();
    let url = relay.ws_url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");

    let (mut ws, _) = within(
        "wss connect",
        tokio_tungstenite::connect_async_tls_with_config(
            &url,
            None,
            true,
            Some(pki.connector(true)),
        ),
    )
    .await
    .unwrap();
    let Some(Ok(Message::Text(t))) = within("challenge", ws.next()).await else {
        panic!("no challenge over TLS")
    };
    let ServerFrame::Challenge(c) = ServerFrame::decode(t.as_str()).unwrap() else {
        panic!("first frame is not a challenge: {t}")
    };
    let key = new_key();
    let auth = auth_frame(1, &c, &user("alice"), &key);
    ws.send(Message::text(auth.encode())).await.unwrap();
    let Some(Ok(Message::Text(t))) = within("auth_ok", ws.next()).await else {
        panic!("no reply to auth over TLS")
    };
    assert!(
        matches!(
            ServerFrame::decode(t.as_str()).unwrap(),
            ServerFrame::AuthOk(_)
        ),
        "{t}"
    );

    // A client that does not trust the CA is refused by its own TLS layer.
    let untrusted = within(
        "wss connect",
        tokio_tungstenite::connect_async_tls_with_config(
            &url,
            None,
            true,
            Some(pki.connector(false)),
        ),
    )
    .await;
    let Err(err) = untrusted else {
        panic!("a certificate from an unknown CA was accepted")
    };
    assert!(err.to_string().contains("certificate"), "{err}");

    // Plain WebSocket on the TLS port does not get a WebSocket.
    let plain = url.replacen("wss://", "ws://", 1);
    assert!(
        within("ws connect", tokio_tungstenite::connect_async(&plain))
            .await
            .is_err()
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn unusable_tls_files_are_refused_at_start_naming_the_option() {
    let pki = TestPki::new();
    let missing = pki.dir.path().join("nope.pem");
    let e = RelayHandle::start(Config::memory().with_tls(&missing, pki.key()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls_cert") && e.contains("nope.pem"), "{e}");
    // A certificate where the key should be.
    let e = RelayHandle::start(Config::memory().with_tls(pki.cert(), pki.cert()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls_key"), "{e}");
}

// -------------------------------------------------------------- metrics

#[tokio::test]
async fn metrics_counters_move_when_messages_flow() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let addr = relay.local_addr();
    let (status, before) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "hush_relay_users_online",
        "hush_relay_registered_users",
        "hush_relay_mailbox_envelopes",
        "hush_relay_mailbox_bytes",
        "hush_relay_process_cpu_seconds_total",
        "hush_relay_process_resident_memory_bytes",
    ] {
        assert!(
            before.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{before}"
        );
    }

    let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    let mut ids = Vec::new();
    for i in 0..5u8 {
        ids.push(alice.send_ok("bob", &[i; 40]).await);
    }
    for _ in 0..5 {
        bob.next_envelope().await;
    }
    // Three stay queued: a mailbox of depth 3 and 120 bytes.
    assert!(matches!(
        bob.ack(ids[..2].to_vec()).await,
        ServerFrame::Acked(_)
    ));
    let (_, after) = http_get(addr, "/metrics").await;
    let moved = |name: &str| sample(&after, name) - sample(&before, name);
    assert!(
        moved("hush_relay_envelopes_accepted_total") >= 5.0,
        "{after}"
    );
    assert!(
        moved("hush_relay_envelopes_delivered_total") >= 5.0,
        "{after}"
    );
    assert!(
        moved("hush_relay_envelopes_acknowledged_total") >= 2.0,
        "{after}"
    );
    assert!(
        moved("hush_relay_delivery_latency_seconds_count") >= 5.0,
        "{after}"
    );
    assert!(
        moved("hush_relay_store_commit_seconds_count") >= 5.0,
        "{after}"
    );
    assert!(
        moved("hush_relay_connections_opened_total") >= 2.0,
        "{after}"
    );
    assert_eq!(sample(&after, "hush_relay_registered_users"), 2.0);
    assert_eq!(sample(&after, "hush_relay_mailbox_envelopes"), 3.0);
    assert_eq!(sample(&after, "hush_relay_mailbox_bytes"), 120.0);
    assert!(
        after.contains("hush_relay_mailbox_depth_bucket{le=\"10\"} 1"),
        "{after}"
    );
    assert!(
        after.contains("hush_relay_mailbox_depth_count 1"),
        "{after}"
    );

    // An error frame is counted by its code.
    let rid = alice.rid();
    alice
        .request(ClientFrame::Send(SendEnvelope {
            rid,
            to: user("nobody"),
            body: Body(vec![1]),
            ephemeral: false,
        }))
        .await;
    let (_, later) = http_get(addr, "/metrics").await;
    assert!(
        later.contains("hush_relay_errors_total{code=\"unknown_user\"}"),
        "{later}"
    );
    relay.shutdown().await.unwrap();
}

// ------------------------------------------------------------- readiness

#[tokio::test]
async fn readyz_fails_while_redis_is_down_and_recovers() {
    let mut redis = RedisServer::start();
    let relay = RelayHandle::start(Config::redis(redis.url()))
        .await
        .unwrap();
    let addr = relay.local_addr();
    assert_eq!(http_get(addr, "/readyz").await.0, 200);

    redis.kill();
    let (status, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "store unavailable");
    assert_eq!(
        http_get(addr, "/healthz").await.0,
        200,
        "alive all the same"
    );
    // Scraping still works, and says the store is down.
    let (status, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&metrics, "hush_relay_store_up"), 0.0, "{metrics}");
    assert!(
        sample(&metrics, "hush_relay_redis_errors_total") >= 1.0,
        "{metrics}"
    );

    redis.restart();
    // The connection manager reconnects on the next request.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if http_get(addr, "/readyz").await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.shutdown().await.unwrap();
}

// -------------------------------------------------------------- shutdown

/// Starts the binary; returns it with its port.
async fn start_binary(args: &[&str]) -> (Child, u16) {
    common::process::start_binary(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("HUSH_CONFIG"),
    )
    .await
}

#[tokio::test]
async fn sigterm_under_traffic_loses_no_accepted_envelope_and_closes_with_1001() {
    const SENDS: u64 = 3000;
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let args = [
        "--data-dir",
        &data_dir,
        "--rate-burst",
        "100000",
        "--rate-per-sec",
        "100000",
    ];
    let (mut child, port) = start_binary(&args).await;
    let url = format!("ws://127.0.0.1:{port}/v1/ws");
    let bob_key = new_key();
    let (mut alice, _) = Client::login_url(&url, "alice", &new_key()).await;
    let (mut bob, _) = Client::login_url(&url, "bob", &bob_key).await;
    alice.send_ok("bob", b"first").await;

    // Pipeline many sends without waiting, then SIGTERM while they are
    // being committed.
    for i in 0..SENDS {
        let rid = alice.rid();
        let f = ClientFrame::Send(SendEnvelope {
            rid,
            to: user("bob"),
            body: Body(i.to_be_bytes().to_vec()),
            ephemeral: false,
        });
        alice.send_raw(f.encode()).await;
    }
    let pid = child.id().unwrap();
    let sent_term = Instant::now();
    let kill = within(
        "kill",
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status(),
    )
    .await
    .unwrap();
    assert!(kill.success());

    let (frames, code) = alice.frames_until_close().await;
    let (bob_frames, bob_code) = bob.frames_until_close().await;
    let status = within("exit", child.wait()).await.unwrap();
    let shutdown_time = sent_term.elapsed();
    assert_eq!(code, Some(close::GOING_AWAY), "sender sees 1001");
    assert_eq!(bob_code, Some(close::GOING_AWAY), "recipient sees 1001");
    assert!(status.success(), "exit status {status:?}");

    let mut accepted: BTreeSet<u64> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Accepted(Accepted { id: Some(id), .. }) => Some(*id),
            _ => None,
        })
        .collect();
    accepted.insert(1); // "first"
    let pushed_live = bob_frames
        .iter()
        .filter(|f| matches!(f, ServerFrame::Envelope(_)))
        .count();

    // Everything accepted is in bob's mailbox after a restart.
    let (_child, port) = start_binary(&args).await;
    let url = format!("ws://127.0.0.1:{port}/v1/ws");
    let (mut bob, ok) = Client::login_url(&url, "bob", &bob_key).await;
    let mut stored = BTreeSet::new();
    while stored.last().copied() != Some(ok.last_queued) {
        let e = bob.next_envelope().await;
        stored.insert(e.id.unwrap());
    }
    let lost: Vec<_> = accepted.difference(&stored).collect();
    assert!(lost.is_empty(), "accepted but lost: {lost:?}");
    // Every request the relay had read before the signal was answered: what
    // is stored is exactly what was accepted.
    assert_eq!(stored, accepted, "stored but never answered `accepted`");
    eprintln!(
        "figures: {} sends offered, {} accepted before the close, {} pushed live to bob, \
         {} in bob's mailbox after restart; SIGTERM to exit {:?}",
        SENDS + 1,
        accepted.len(),
        pushed_live,
        stored.len(),
        shutdown_time
    );
}

// ------------------------------------------------------------------ docs

#[test]
fn operations_doc_has_the_options_table_of_the_code() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/operations.md"
    ))
    .unwrap();
    let table = hush_relay::settings::markdown_table();
    assert!(
        doc.contains(&table),
        "docs/operations.md must contain this table, generated from \
         hush_relay::settings::OPTIONS:\n\n{table}"
    );
}
