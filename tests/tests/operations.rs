//! Operating a relay, as an operator and users see it: the `hush` CLI over
//! `wss://` to a relay with a certificate generated here, `/metrics` as
//! Prometheus text whose counters follow a conversation, `/readyz` while
//! Redis is down, configuration errors, JSON logs, and the admin commands.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hush_tests::prometheus::{self, Scrape};
use hush_tests::{
    Cmd, Hush, Output, Redis, Relay, RelayOptions, TestPki, bin, http_get, temp_dir,
    unused_local_port,
};

fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    prometheus::parse(&body).unwrap_or_else(|e| panic!("/metrics is not Prometheus text: {e}"))
}

/// `hush-relay ARGS` run to completion, without a configuration from the
/// environment.
fn relay_cmd(args: &[&str]) -> Output {
    Cmd::new(bin(hush_tests::bins::HUSH_RELAY))
        .args(args)
        .env_remove("HUSH_CONFIG")
        .env_remove("HUSH_LISTEN")
        .timeout(Duration::from_secs(30))
        .run()
}

#[test]
fn hush_client_talks_to_a_tls_relay_over_wss() {
    let pki = TestPki::new();
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start_with(
        data.path(),
        RelayOptions::new()
            .arg("--tls-cert")
            .arg(pki.cert().display().to_string())
            .arg("--tls-key")
            .arg(pki.key().display().to_string()),
    );
    let url = format!("wss://127.0.0.1:{}", relay.addr().port());
    let ca = pki.ca().display().to_string();
    let init = |h: &Hush| {
        h.cmd(&[
            "init",
            "--user",
            h.user(),
            "--relay",
            &url,
            "--kdf-memory-kib",
            "8",
            "--kdf-iterations",
            "1",
        ])
    };
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    init(&alice).env("HUSH_CA_FILE", &ca).run().assert_success();
    // The flag works as well as the variable.
    bob.cmd(&[
        "init",
        "--user",
        "bob",
        "--relay",
        &url,
        "--ca-file",
        &ca,
        "--kdf-memory-kib",
        "8",
        "--kdf-iterations",
        "1",
    ])
    .run()
    .assert_success();
    alice
        .cmd(&["send", "bob", "over TLS"])
        .env("HUSH_CA_FILE", &ca)
        .run()
        .assert_success();
    let got = bob.cmd(&["recv"]).env("HUSH_CA_FILE", &ca).run();
    got.assert_success();
    assert_eq!(
        got.lines(),
        ["alice [message request]: over TLS"],
        "{}",
        got.transcript()
    );

    // Without the CA, the system roots do not know this certificate.
    let carol = Hush::new("carol");
    let out = init(&carol).run();
    assert!(!out.success(), "{}", out.transcript());
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "the failure names the certificate\n{}",
        out.transcript()
    );
}

#[test]
fn metrics_are_prometheus_text_and_follow_a_conversation() {
    let data = temp_dir("hush-relay-data-");
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], unused_local_port()));
    let relay = Relay::start_with(
        data.path(),
        RelayOptions::new()
            .arg("--metrics-listen")
            .arg(metrics_addr.to_string()),
    );
    // Only on the separate address; the public one keeps its health checks.
    assert_eq!(http_get(relay.addr(), "/metrics").0, 404);
    assert_eq!(http_get(relay.addr(), "/healthz").0, 200);
    assert_eq!(http_get(metrics_addr, "/healthz").0, 200);

    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    let before = scrape(metrics_addr);
    for text in ["one", "two", "three"] {
        alice.send("bob", text);
    }
    assert_eq!(bob.recv().lines().len(), 3);
    let after = scrape(metrics_addr);
    let moved = |name: &str| after.total(name) - before.total(name);

    // Three messages (plus bob's delivery receipts to alice, which are
    // envelopes too).
    assert!(moved("hush_relay_envelopes_accepted_total") >= 3.0);
    assert!(moved("hush_relay_envelopes_delivered_total") >= 3.0);
    assert!(moved("hush_relay_envelopes_acknowledged_total") >= 3.0);
    assert!(moved("hush_relay_delivery_latency_seconds_count") >= 3.0);
    assert!(moved("hush_relay_store_commit_seconds_count") >= 3.0);
    assert!(moved("hush_relay_connections_opened_total") >= 4.0);
    assert_eq!(after.total("hush_relay_registered_users"), 2.0);
    assert_eq!(after.total("hush_relay_store_up"), 1.0);
    for (name, kind) in [
        ("hush_relay_connections", "gauge"),
        ("hush_relay_users_online", "gauge"),
        ("hush_relay_envelopes_accepted_total", "counter"),
        ("hush_relay_delivery_latency_seconds", "histogram"),
        ("hush_relay_store_commit_seconds", "histogram"),
        ("hush_relay_mailbox_envelopes", "gauge"),
        ("hush_relay_mailbox_bytes", "gauge"),
        ("hush_relay_mailbox_depth", "histogram"),
        ("hush_relay_mailbox_size_bytes", "histogram"),
        ("hush_relay_process_cpu_seconds_total", "counter"),
        ("hush_relay_process_resident_memory_bytes", "gauge"),
    ] {
        assert_eq!(
            after.types.get(name).map(String::as_str),
            Some(kind),
            "{name} should be a {kind}"
        );
    }
    assert!(after.total("hush_relay_process_resident_memory_bytes") > 1_000_000.0);

    // A send to nobody is counted by its error code.
    let out = alice.run(&["send", "nobody", "hello?"]);
    assert!(!out.success());
    let errors = scrape(metrics_addr);
    assert!(
        errors
            .get("hush_relay_errors_total", &[("code", "unknown_user")])
            .is_some_and(|n| n >= 1.0)
    );
}

#[test]
fn readyz_fails_while_redis_is_down() {
    let mut redis = Redis::start();
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start_with(
        data.path(),
        RelayOptions::new().arg("--redis").arg(redis.url()),
    );
    assert_eq!(http_get(relay.addr(), "/readyz"), (200, "ready".into()));
    redis.kill();
    assert_eq!(
        http_get(relay.addr(), "/readyz"),
        (503, "store unavailable".into())
    );
    assert_eq!(http_get(relay.addr(), "/healthz").0, 200);
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while http_get(relay.addr(), "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "/readyz never recovered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_configuration_fails_at_start_naming_the_option_and_its_source() {
    let dir = temp_dir("hush-relay-conf-");
    let file = dir.path().join("relay.toml");

    let out = Cmd::new(bin(hush_tests::bins::HUSH_RELAY))
        .env("HUSH_MAX_FRAME_BYTES", "lots")
        .env_remove("HUSH_CONFIG")
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains(
            "invalid configuration: invalid value \"lots\" for option `max_frame_bytes` \
             (from the environment variable HUSH_MAX_FRAME_BYTES)"
        ),
        "{}",
        out.transcript()
    );

    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nmax_frame_byte = 1\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let conf = file.display().to_string();
    let out = relay_cmd(&["--config", &conf]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("unknown option `max_frame_byte` in the configuration file"),
        "{}",
        out.transcript()
    );

    let out = relay_cmd(&["--listen", "nowhere"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("`listen` (from the flag --listen)"),
        "{}",
        out.transcript()
    );

    let out = relay_cmd(&["--tls-key", "key.pem"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("option `tls_key` needs option `tls_cert`"),
        "{}",
        out.transcript()
    );

    // A flag overrides a bad file value: precedence, end to end.
    std::fs::write(&file, "store = \"floppy\"\nlisten = \"127.0.0.1:0\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = relay_cmd(&["--config", &conf]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("`store` (from the configuration file"),
        "{}",
        out.transcript()
    );
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start_with(
        data.path(),
        RelayOptions::new()
            .arg("--config")
            .arg(&conf)
            .arg("--store")
            .arg("memory"),
    );
    assert_eq!(http_get(relay.addr(), "/healthz").0, 200);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start_with(
        data.path(),
        RelayOptions::new().env("HUSH_LOG_FORMAT", "json"),
    );
    Hush::new("alice").init(&relay.url());
    relay.kill();
    let logs = relay.stderr();
    let mut registered = false;
    for line in logs.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line {line:?} is not JSON: {e}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
        registered |= v["fields"]["user"] == "alice";
    }
    assert!(registered, "the registration is logged:\n{logs}");
}

#[test]
fn admin_stats_and_purge_expired_on_redb_and_redis() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    alice.send("bob", "queued");
    alice.send("bob", "queued too");

    // redb: refused while the relay holds the database.
    let out = relay.admin(&["stats"]);
    assert!(
        !out.success() && out.stderr.contains("in use by another process"),
        "{}",
        out.transcript()
    );
    relay.kill();
    let out = relay.admin(&["stats"]);
    out.assert_success();
    assert!(out.stdout.contains("users: 2\n"), "{}", out.transcript());
    assert!(
        out.stdout.contains("queued_envelopes: 2\n"),
        "{}",
        out.transcript()
    );
    // Nothing is a day old yet.
    let out = relay.admin(&["purge-expired", "--retention-secs", "86400"]);
    out.assert_success();
    assert!(out.stdout.contains("purged 0 "), "{}", out.transcript());
    // The envelopes age past a one-second retention.
    std::thread::sleep(Duration::from_millis(1100));
    let out = relay.admin(&["purge-expired", "--retention-secs", "1"]);
    out.assert_success();
    assert!(out.stdout.contains("purged 2 "), "{}", out.transcript());
    let out = relay.admin(&["stats"]);
    assert!(
        out.stdout.contains("queued_envelopes: 0\n"),
        "{}",
        out.transcript()
    );

    // Redis: works while relays run.
    let redis = Redis::start();
    let data = temp_dir("hush-relay-data-");
    let relay = Relay::start_with(
        data.path(),
        RelayOptions::new().arg("--redis").arg(redis.url()),
    );
    let carol = Hush::new("carol");
    let dave = Hush::new("dave");
    carol.init(&relay.url());
    dave.init(&relay.url());
    carol.send("dave", "in redis");
    let out = relay_cmd(&["admin", "stats", "--redis", &redis.url()]);
    out.assert_success();
    assert!(
        out.stdout.contains("users: 2\n") && out.stdout.contains("queued_envelopes: 1\n"),
        "{}",
        out.transcript()
    );
    let out = relay_cmd(&["admin", "purge-expired", "--redis", &redis.url()]);
    out.assert_success();
    assert!(out.stdout.contains("purged 0 "), "{}", out.transcript());
    assert_eq!(dave.recv().lines(), ["carol [message request]: in redis"]);
}

#[test]
fn a_client_sees_1001_on_sigterm_and_reconnects_to_the_restarted_relay() {
    let data = temp_dir("hush-relay-data-");
    let mut relay = Relay::start(data.path());
    let alice = Hush::new("alice");
    let bob = Hush::new("bob");
    alice.init(&relay.url());
    bob.init(&relay.url());
    alice.send("bob", "before");
    let mut recv = bob
        .cmd(&["-v", "recv", "--wait", "30"])
        .timeout(Duration::from_secs(60))
        .spawn();
    assert_eq!(
        recv.next_line(Duration::from_secs(15)).as_deref(),
        Some("alice [message request]: before")
    );
    let stopped = Instant::now();
    assert_eq!(relay.terminate(Duration::from_secs(15)), Some(0));
    let shutdown = stopped.elapsed();
    relay.restart();
    alice.send("bob", "after");
    // The same `hush recv` process reconnected by itself.
    assert_eq!(
        recv.next_line(Duration::from_secs(20)).as_deref(),
        Some("alice [message request]: after")
    );
    let out = recv.kill();
    assert!(
        out.stderr.contains("1001") && out.stderr.contains("relay shutting down"),
        "the client saw the close code\n{}",
        out.transcript()
    );
    eprintln!("figures: SIGTERM to exit with one idle client: {shutdown:?}");
}
