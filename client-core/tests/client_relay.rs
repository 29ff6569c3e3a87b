//! Two `Client`s talking through a real `hush-relay` started in the test:
//! online, offline then online, across a relay restart, identity changes
//! and delivery receipts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hush_client_core::client::{
    Client, ClientConfig, ClientError, Event, Events, IncomingMessage, Profile, SystemClock,
};
use hush_client_core::payload::ReceiptKind;
use hush_client_core::store::DeliveryStatus;
use hush_protocol::UserId;
use hush_relay::{Config, RelayHandle};
use rand::SeedableRng;
use rand::rngs::StdRng;

const WAIT: Duration = Duration::from_secs(15);

fn uid(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

fn rng(seed: u64) -> Box<StdRng> {
    Box::new(StdRng::seed_from_u64(seed))
}

fn profile(name: &str, relay: &str, seed: u64) -> Profile {
    Profile::create_in_memory(
        &uid(name),
        relay,
        &mut *rng(seed),
        SystemClock.now_ms_helper(),
    )
    .unwrap()
}

trait NowHelper {
    fn now_ms_helper(&self) -> u64;
}
impl NowHelper for SystemClock {
    fn now_ms_helper(&self) -> u64 {
        use hush_client_core::client::Clock;
        self.now_ms()
    }
}

fn config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

async fn connect(p: Profile, seed: u64) -> (Client, Events) {
    Client::connect(p, config(), rng(seed), Arc::new(SystemClock))
        .await
        .unwrap()
}

/// The next event matching `pick`, skipping others; fails after [`WAIT`].
async fn next<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("event stream ended");
            if let Some(t) = pick(e) {
                return t;
            }
        }
    })
    .await;
    found.expect("timed out waiting for an event")
}

async fn next_message(events: &mut Events) -> IncomingMessage {
    next(events, |e| match e {
        Event::Message(m) => Some(m),
        _ => None,
    })
    .await
}

async fn drained(events: &mut Events) {
    next(events, |e| matches!(e, Event::Drained).then_some(())).await
}

#[tokio::test]
async fn online_message_arrives_and_is_stored() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    let (bob, mut be) = connect(profile("bob", &url, 2), 12).await;

    let id = alice.send_text(&uid("bob"), "hello bob").await.unwrap();
    let m = next_message(&mut be).await;
    assert_eq!(m.from, uid("alice"));
    assert_eq!(m.text, "hello bob");
    assert_eq!(m.id, id);
    assert!(!m.flags.from_changed_key);

    let history = bob
        .with_profile(|p| p.history(&uid("alice"), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].text, "hello bob");

    // And back, on the session bob now has.
    bob.send_text(&uid("alice"), "hi alice").await.unwrap();
    let mut ae = _ae;
    assert_eq!(next_message(&mut ae).await.text, "hi alice");
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn offline_messages_are_delivered_in_order_on_connect() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    // bob registers and publishes keys, then goes offline.
    let (bob, mut be) = connect(profile("bob", &url, 2), 12).await;
    drained(&mut be).await;
    bob.close().await;
    let bob_profile_gone = bob; // the client owns the profile; reconnect it below
    drop(bob_profile_gone);

    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    for i in 0..20 {
        alice
            .send_text(&uid("bob"), &format!("m{i}"))
            .await
            .unwrap();
    }
    alice.close().await;

    // A fresh client for bob needs bob's keys: reuse them through a disk
    // profile in the next test; here bob's in-memory profile is gone, so
    // the relay must refuse a new key for the same user id.
    let err = Client::connect(
        profile("bob", &url, 99),
        config(),
        rng(98),
        Arc::new(SystemClock),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::AuthRejected { .. }), "{err:?}");
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn offline_then_online_with_a_disk_profile() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let dir = tempfile::tempdir().unwrap();
    let bob_dir = dir.path().join("bob");
    let kdf = hush_client_core::store::KdfParams::insecure_for_tests();
    let bob_profile =
        Profile::create_in(&bob_dir, b"pw", kdf, &uid("bob"), &url, &mut *rng(2), 0).unwrap();
    let (bob, mut be) = connect(bob_profile, 12).await;
    drained(&mut be).await;
    bob.close().await;
    drop(bob);

    let (alice, mut ae) = connect(profile("alice", &url, 1), 11).await;
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(
            alice
                .send_text(&uid("bob"), &format!("m{i}"))
                .await
                .unwrap(),
        );
    }

    let (bob, mut be) = connect(Profile::open_in(&bob_dir, b"pw").unwrap(), 13).await;
    for (i, id) in sent.iter().enumerate() {
        let m = next_message(&mut be).await;
        assert_eq!((m.text.as_str(), m.id), (format!("m{i}").as_str(), *id));
    }
    drained(&mut be).await;

    // Delivery receipts come back and move the status forward.
    let mut delivered = std::collections::HashSet::new();
    while delivered.len() < sent.len() {
        let ids = next(&mut ae, |e| match e {
            Event::Receipt {
                kind: ReceiptKind::Delivered,
                message_ids,
                ..
            } => Some(message_ids),
            _ => None,
        })
        .await;
        delivered.extend(ids);
    }
    let history = alice
        .with_profile(|p| p.history(&uid("bob"), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.len(), 20);
    assert!(
        history
            .iter()
            .all(|e| e.status == Some(DeliveryStatus::Delivered))
    );

    // Reconnecting shows nothing twice: everything was acknowledged.
    bob.close().await;
    drop(bob);
    let (bob, mut be) = connect(Profile::open_in(&bob_dir, b"pw").unwrap(), 14).await;
    let again = tokio::time::timeout(WAIT, async {
        loop {
            match be.recv().await {
                Some(Event::Message(m)) => return Some(m),
                Some(Event::Drained) | None => return None,
                Some(_) => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(again, None, "a message was shown twice");
    bob.close().await;
    alice.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn clients_survive_a_relay_restart() {
    let data = tempfile::tempdir().unwrap();
    let relay = RelayHandle::start(Config::redb(data.path())).await.unwrap();
    let addr: SocketAddr = relay.local_addr();
    let url = relay.ws_url();
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    let (bob, mut be) = connect(profile("bob", &url, 2), 12).await;
    alice.send_text(&uid("bob"), "before").await.unwrap();
    assert_eq!(next_message(&mut be).await.text, "before");

    relay.shutdown().await.unwrap();
    let relay = RelayHandle::bind(Config::redb(data.path()), addr)
        .await
        .unwrap();

    // Both clients reconnect by themselves; the send waits for the link.
    alice.send_text(&uid("bob"), "after").await.unwrap();
    assert_eq!(next_message(&mut be).await.text, "after");
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_recipient_is_a_typed_error() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    let err = alice.send_text(&uid("nobody"), "hi").await.unwrap_err();
    assert!(matches!(err, ClientError::UnknownUser { .. }), "{err:?}");
    alice.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreachable_relay_fails_after_bounded_retries() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let config = ClientConfig {
        connect_attempts: 3,
        ..config()
    };
    let err = Client::connect(
        profile("alice", &url, 1),
        config,
        rng(1),
        Arc::new(SystemClock),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_due_signed_prekey_is_rotated_on_connect_and_still_answers() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    // bob's profile is eight days old: its signed prekey is due (weekly).
    let eight_days_ms = 8 * 24 * 3600 * 1000;
    let born = SystemClock.now_ms_helper() - eight_days_ms;
    let bob_profile = Profile::create_in_memory(&uid("bob"), &url, &mut *rng(2), born).unwrap();
    assert_eq!(bob_profile.signed_prekey_id(), 1);
    let (bob, mut be) = connect(bob_profile, 12).await;
    assert_eq!(bob.with_profile(|p| p.signed_prekey_id()).await.unwrap(), 2);

    // A new contact starts a session on the rotated prekey.
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    alice
        .send_text(&uid("bob"), "after rotation")
        .await
        .unwrap();
    assert_eq!(next_message(&mut be).await.text, "after rotation");
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

/// The relay id is pinned at the first connection: a relay (here a new one
/// at the same address) whose challenge names another id is refused before
/// anything is signed, so a relay cannot pass another relay's challenge
/// through to get our signature for it.
#[tokio::test]
async fn a_challenge_naming_another_relay_is_refused() {
    let relay = RelayHandle::start(Config::memory().with_relay_id("relay-a"))
        .await
        .unwrap();
    let addr = relay.local_addr();
    let url = relay.ws_url();
    let dir = tempfile::tempdir().unwrap();
    let kdf = hush_client_core::store::KdfParams::insecure_for_tests();
    let p =
        Profile::create_in(dir.path(), b"pw", kdf, &uid("alice"), &url, &mut *rng(1), 0).unwrap();
    let (alice, _e) = connect(p, 11).await;
    alice.close().await;
    drop(alice);
    relay.shutdown().await.unwrap();

    let other = RelayHandle::bind(Config::memory().with_relay_id("relay-b"), addr)
        .await
        .unwrap();
    let p = Profile::open_in(dir.path(), b"pw").unwrap();
    assert_eq!(p.settings().relay_id.as_deref(), Some("relay-a"));
    let err = Client::connect(p, config(), rng(12), Arc::new(SystemClock))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::RelayIdMismatch { pinned, presented }
            if pinned == "relay-a" && presented == "relay-b"),
        "{err:?}"
    );
    // Nothing was signed for the other relay: "alice" is still free there.
    let (someone, _e) = connect(profile("alice", &other.ws_url(), 99), 13).await;
    someone.close().await;
    other.shutdown().await.unwrap();
}
