//! Cluster mode: several relays on one real `redis-server` (AOF on,
//! `appendfsync always`). Relays run in-process, except where a relay is
//! SIGKILLed: there it is the `hush-relay` binary as a child process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use common::process::RelayProcess;
use common::redis::RedisServer;
use common::*;
use hush_protocol::frame::{Accepted, Envelope};
use hush_protocol::{ErrorCode, ServerFrame, close};
use hush_relay::{Config, RelayHandle};

async fn relays(redis: &RedisServer, n: usize) -> Vec<RelayHandle> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            within(
                "relay start",
                RelayHandle::start(Config::redis(redis.url())),
            )
            .await
            .unwrap(),
        );
    }
    out
}

async fn redis_conn(redis: &RedisServer) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Reads `n` envelopes, returning (sender, body) pairs; checks ids increase.
async fn read_n(c: &mut Client, n: usize) -> Vec<Envelope> {
    let mut got = Vec::new();
    while got.len() < n {
        got.push(c.next_envelope().await);
    }
    let ids: Vec<u64> = got.iter().map(|e| e.id.unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids out of order: {ids:?}"
    );
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_three_relays_exchange_messages_both_ways() {
    let redis = RedisServer::start();
    let r = relays(&redis, 3).await;
    assert!(
        r.iter().all(|x| x.relay_id() == r[0].relay_id()),
        "one relay id for the cluster"
    );
    let names = ["alice", "bob", "carol"];
    let mut clients = Vec::new();
    for (i, name) in names.iter().enumerate() {
        clients.push(Client::login(&r[i], name, &new_key()).await.0);
    }
    let per = 30usize;
    // Every user sends to both others, interleaved.
    for k in 0..per {
        for (i, c) in clients.iter_mut().enumerate() {
            for (j, to) in names.iter().enumerate() {
                if i != j {
                    c.send_ok(to, format!("{}:{k}", names[i]).as_bytes()).await;
                }
            }
        }
    }
    for c in &mut clients {
        let got = read_n(c, 2 * per).await;
        let mut next: HashMap<String, usize> = HashMap::new();
        for e in got {
            let text = String::from_utf8(e.body.0).unwrap();
            let (from, k) = text.split_once(':').unwrap();
            assert_eq!(from, e.from.as_str(), "relay stamps the sender");
            let want = next.entry(from.to_owned()).or_insert(0);
            assert_eq!(k.parse::<usize>().unwrap(), *want, "order per sender");
            *want += 1;
        }
        assert!(next.values().all(|n| *n == per), "{next:?}");
        assert_eq!(
            c.first_envelope_before_marker().await,
            None,
            "nothing extra"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_delivery_across_relays() {
    let redis = RedisServer::start();
    let r = relays(&redis, 3).await;
    let bob_key = new_key();
    drop(Client::login(&r[1], "bob", &bob_key).await);
    let (mut alice, _) = Client::login(&r[0], "alice", &new_key()).await;
    for i in 1..=3u64 {
        assert_eq!(alice.send_ok("bob", format!("m{i}").as_bytes()).await, i);
    }
    let (mut bob, ok) = Client::login(&r[2], "bob", &bob_key).await;
    assert_eq!(ok.last_queued, 3);
    let got = read_n(&mut bob, 3).await;
    let bodies: Vec<_> = got.iter().map(|e| e.body.0.clone()).collect();
    assert_eq!(bodies, vec![b"m1".to_vec(), b"m2".to_vec(), b"m3".to_vec()]);
    bob.ack(vec![1, 2, 3]).await;
    drop(bob);
    let (mut bob, ok) = Client::login(&r[0], "bob", &bob_key).await;
    assert_eq!(ok.last_queued, 0, "acknowledged on one relay, gone on all");
    assert_eq!(bob.first_envelope_before_marker().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_connection_wins_across_relays() {
    let redis = RedisServer::start();
    let r = relays(&redis, 3).await;
    let key = new_key();
    let (mut old, _) = Client::login(&r[0], "alice", &key).await;
    let (mut new, _) = Client::login(&r[1], "alice", &key).await;
    assert_eq!(old.expect_close().await, Some(close::REPLACED));
    new.ping().await;
    let (mut bob, _) = Client::login(&r[2], "bob", &new_key()).await;
    bob.send_ok("alice", b"hi").await;
    assert_eq!(new.next_envelope().await.body.0, b"hi");
    // And back on the first relay: the second one's connection is closed.
    let (mut newest, _) = Client::login(&r[0], "alice", &key).await;
    assert_eq!(new.expect_close().await, Some(close::REPLACED));
    bob.send_ok("alice", b"again").await;
    let e = newest.next_envelope().await;
    assert_eq!(e.body.0, b"hi", "unacknowledged, so redelivered first");
    assert_eq!(newest.next_envelope().await.body.0, b"again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_and_prekeys_low_reach_a_user_on_another_relay() {
    let redis = RedisServer::start();
    let r = relays(&redis, 2).await;
    let bob_key = new_key();
    let (mut bob, _) = Client::login(&r[1], "bob", &bob_key).await;
    let rid = bob.rid();
    bob.request(publish_frame(rid, &bob_key, 1..=3)).await;
    let (mut alice, _) = Client::login(&r[0], "alice", &new_key()).await;
    let rid = alice.rid();
    let reply = alice
        .request(hush_protocol::ClientFrame::Send(
            hush_protocol::frame::SendEnvelope {
                rid,
                to: user("bob"),
                body: hush_protocol::Body(b"typing".to_vec()),
                ephemeral: true,
            },
        ))
        .await;
    assert_eq!(reply, ServerFrame::Accepted(Accepted { rid, id: None }));
    let e = bob.next_envelope().await;
    assert!(e.ephemeral);
    assert_eq!(e.body.0, b"typing");
    let rid = alice.rid();
    alice
        .request(hush_protocol::ClientFrame::FetchBundle(
            hush_protocol::frame::FetchBundle {
                rid,
                user_id: user("bob"),
            },
        ))
        .await;
    match bob.next_frame().await {
        ServerFrame::PrekeysLow(p) => assert_eq!(p.one_time_prekeys, 2),
        other => panic!("expected prekeys_low, got {other:?}"),
    }
}

/// Redis goes away in the middle of traffic and comes back (AOF,
/// `appendfsync always`): sends meanwhile get `store_unavailable`, nothing
/// accepted is lost, and traffic resumes without restarting the relays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_traffic_loses_nothing_and_resumes() {
    let mut redis = RedisServer::start();
    let r = relays(&redis, 2).await;
    let (mut bob, _) = Client::login(&r[1], "bob", &new_key()).await;
    let (mut alice, _) = Client::login(&r[0], "alice", &new_key()).await;
    let mut accepted = Vec::new();
    for i in 0..20u32 {
        accepted.push((alice.send_ok("bob", &i.to_be_bytes()).await, i));
    }
    redis.kill();
    let mut refused = 0;
    for i in 20..25u32 {
        match alice.send_to("bob", &i.to_be_bytes()).await {
            ServerFrame::Error(e) => {
                assert_eq!(e.code, ErrorCode::StoreUnavailable);
                refused += 1;
            }
            other => panic!("accepted while Redis is down: {other:?}"),
        }
    }
    assert_eq!(refused, 5);
    redis.restart();
    // The relays reconnect by themselves; the first sends may still fail.
    let mut i = 25u32;
    let mut tries = 0;
    while accepted.len() < 40 {
        match alice.send_to("bob", &i.to_be_bytes()).await {
            ServerFrame::Accepted(Accepted { id: Some(id), .. }) => accepted.push((id, i)),
            ServerFrame::Error(e) if e.code == ErrorCode::StoreUnavailable => {
                tries += 1;
                assert!(tries < 100, "the relay did not recover");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
        i += 1;
    }
    // Bob, who stayed connected, gets every accepted envelope exactly once
    // and in order (a refused send may also have been stored: at most once).
    let mut seen = HashSet::new();
    let mut got = Vec::new();
    let want: HashSet<u64> = accepted.iter().map(|(id, _)| *id).collect();
    while !want.is_subset(&seen) {
        let e = bob.next_envelope().await;
        let id = e.id.unwrap();
        assert!(seen.insert(id), "envelope {id} delivered twice");
        got.push(u32::from_be_bytes(e.body.0.try_into().unwrap()));
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "order: {got:?}");
    let got: HashSet<u32> = got.into_iter().collect();
    assert!(accepted.iter().all(|(_, i)| got.contains(i)));
}

/// Alice sends to Bob, both on relay A, with sends in flight; relay A is
/// SIGKILLed; both reconnect to relay B. Every accepted message reaches Bob
/// exactly once after dropping duplicate envelope ids (as clients do), in
/// order; Carol, left behind on A, stops being present once the TTL passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_sigkill_loses_nothing_accepted_and_presence_expires() {
    let redis = RedisServer::start();
    let mut a = RelayProcess::start(&redis, 1);
    let b = RelayProcess::start(&redis, 1);
    let (alice_key, bob_key) = (new_key(), new_key());
    let (_carol, _) = Client::login_url(&a.url, "carol", &new_key()).await;
    let (mut bob, _) = Client::login_url(&a.url, "bob", &bob_key).await;
    let (mut alice, _) = Client::login_url(&a.url, "alice", &alice_key).await;
    let mut accepted: Vec<u32> = Vec::new();
    for i in 0..50u32 {
        let id = alice.send_ok("bob", &i.to_be_bytes()).await;
        assert!(id > 0);
        accepted.push(i);
    }
    // Pipelined sends, some of them in flight at the kill.
    for i in 50..100u32 {
        let rid = 10_000 + u64::from(i);
        alice
            .send_raw(
                hush_protocol::ClientFrame::Send(hush_protocol::frame::SendEnvelope {
                    rid,
                    to: user("bob"),
                    body: hush_protocol::Body(i.to_be_bytes().to_vec()),
                    ephemeral: false,
                })
                .encode(),
            )
            .await;
    }
    // Bob reads (and acknowledges) part of his mail before the kill.
    let mut delivered: Vec<u32> = Vec::new();
    let mut seen_ids = HashSet::new();
    for _ in 0..30 {
        let e = bob.next_envelope().await;
        seen_ids.insert(e.id.unwrap());
        delivered.push(u32::from_be_bytes(e.body.0.try_into().unwrap()));
    }
    bob.ack(seen_ids.iter().copied().collect()).await;
    a.kill();
    // Whatever replies alice got before the connection died count as accepted.
    let (frames, _) = alice.frames_until_close().await;
    for f in frames {
        if let ServerFrame::Accepted(Accepted { rid, id: Some(_) }) = f
            && rid >= 10_000
        {
            accepted.push(u32::try_from(rid - 10_000).unwrap());
        }
    }
    let (mut alice, _) = Client::login_url(&b.url, "alice", &alice_key).await;
    for i in 100..120u32 {
        alice.send_ok("bob", &i.to_be_bytes()).await;
        accepted.push(i);
    }
    let (mut bob, _) = Client::login_url(&b.url, "bob", &bob_key).await;
    let want: HashSet<u32> = accepted.iter().copied().collect();
    let mut have: HashSet<u32> = delivered.iter().copied().collect();
    while !want.is_subset(&have) {
        let e = bob.next_envelope().await;
        if !seen_ids.insert(e.id.unwrap()) {
            continue; // redelivered, dropped by id like a client does
        }
        let i = u32::from_be_bytes(e.body.0.try_into().unwrap());
        assert!(have.insert(i), "message {i} delivered twice");
        delivered.push(i);
    }
    assert!(
        delivered.windows(2).all(|w| w[0] < w[1]),
        "order per sender: {delivered:?}"
    );

    // Carol's presence pointed at the dead relay; it expires (TTL 1 s).
    let mut conn = redis_conn(&redis).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let exists: bool = ::redis::AsyncCommands::exists(&mut conn, "hush:presence:carol")
            .await
            .unwrap();
        if !exists {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "presence of a killed relay's user never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Alice and Bob, live on relay B, are still present (refreshed).
    let bob_here: bool = ::redis::AsyncCommands::exists(&mut conn, "hush:presence:bob")
        .await
        .unwrap();
    assert!(bob_here);
}

/// Startup with Redis down fails at once with a clear message (documented:
/// run the relay under a supervisor), and never shows the password.
#[test]
fn relay_binary_with_redis_down_exits_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_hush-relay"))
        .args(["--listen", "127.0.0.1:0", "--redis"])
        .arg(format!("redis://:hunter2@127.0.0.1:{port}/0"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach Redis at redis://***@127.0.0.1:{port}/0"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(out.stdout.is_empty(), "no `listening on` line");
}

/// A relay that is shut down (SIGTERM, `shutdown`) clears its users'
/// presence before it exits, instead of leaving it to the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_clears_presence_at_once() {
    let redis = RedisServer::start();
    let mut r = relays(&redis, 1).await;
    let (mut alice, _) = Client::login(&r[0], "alice", &new_key()).await;
    let mut conn = redis_conn(&redis).await;
    let present: bool = ::redis::AsyncCommands::exists(&mut conn, "hush:presence:alice")
        .await
        .unwrap();
    assert!(present);
    let relay = r.remove(0);
    let stop = tokio::spawn(relay.shutdown());
    assert_eq!(alice.expect_close().await, Some(close::GOING_AWAY));
    within("shutdown", stop).await.unwrap().unwrap();
    let present: bool = ::redis::AsyncCommands::exists(&mut conn, "hush:presence:alice")
        .await
        .unwrap();
    assert!(!present, "presence left behind by a clean shutdown");
}

/// A presence entry that expired although its connection lives (a relay
/// that could not refresh in time) hides new mail from pub/sub; the next
/// refresh sets it again and reads the mailbox, so the mail still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_sent_while_presence_was_missing_still_arrives() {
    let redis = RedisServer::start();
    let mut r = Vec::new();
    for _ in 0..2 {
        let mut config = Config::redis(redis.url());
        config.presence_ttl = Duration::from_millis(900);
        r.push(
            within("relay start", RelayHandle::start(config))
                .await
                .unwrap(),
        );
    }
    let (mut bob, _) = Client::login(&r[1], "bob", &new_key()).await;
    let (mut alice, _) = Client::login(&r[0], "alice", &new_key()).await;
    let mut conn = redis_conn(&redis).await;
    let _: () = ::redis::AsyncCommands::del(&mut conn, "hush:presence:bob")
        .await
        .unwrap();
    alice.send_ok("bob", b"unannounced").await;
    // Within a refresh period (300 ms) the relay notices and catches up.
    assert_eq!(bob.next_envelope().await.body.0, b"unannounced");
}
