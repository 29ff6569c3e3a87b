//! The client library across a cluster: two `hush-relay --redis` processes
//! on one real `redis-server`, alice on one, bob on the other, both
//! `hush_client_core::Client`s. Presence subscribed through
//! `ClientConfig::presence` and typing indicators cross the relays, and a
//! sender that vanishes mid-"typing" is cleared by the receiver's timeout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hush_client_core::client::{
    Client, ClientConfig, Clock, Event, Events, PresenceEntry, Profile, SystemClock,
};
use hush_client_core::payload::TypingState;
use hush_protocol::UserId;
use hush_tests::{Redis, Relay, RelayOptions, temp_dir};
use rand::SeedableRng;
use rand::rngs::StdRng;

const WAIT: Duration = Duration::from_secs(20);

fn uid(s: &str) -> UserId {
    UserId::try_from(s).expect("valid user id")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn cluster_relay(redis: &Redis, data: &tempfile::TempDir) -> Relay {
    Relay::start_with(
        data.path(),
        RelayOptions::new().arg("--redis").arg(redis.url()),
    )
}

async fn connect(name: &str, url: &str, seed: u64, config: ClientConfig) -> (Client, Events) {
    let mut rng = StdRng::seed_from_u64(seed);
    let profile = Profile::create_in_memory(&uid(name), url, &mut rng, SystemClock.now_ms())
        .expect("profile");
    let config = ClientConfig {
        request_timeout: Duration::from_secs(5),
        ..config
    };
    Client::connect(
        profile,
        config,
        Box::new(StdRng::seed_from_u64(seed + 1000)),
        Arc::new(SystemClock),
    )
    .await
    .expect("connect")
}

/// The next event `pick` takes, skipping others; fails after [`WAIT`].
async fn next<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("event stream ended");
            if let Some(t) = pick(e) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

async fn next_presence(events: &mut Events) -> PresenceEntry {
    next(events, |e| match e {
        Event::Presence(p) => Some(p),
        _ => None,
    })
    .await
}

async fn next_typing(events: &mut Events) -> (UserId, TypingState) {
    next(events, |e| match e {
        Event::Typing { from, state } => Some((from, state)),
        _ => None,
    })
    .await
}

#[test]
fn presence_and_typing_cross_relays_between_clients() {
    let redis = Redis::start();
    let dirs: Vec<_> = (0..2).map(|_| temp_dir("hush-relay-data-")).collect();
    let r1 = cluster_relay(&redis, &dirs[0]);
    let r2 = cluster_relay(&redis, &dirs[1]);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(clients_across(&r1.url(), &r2.url()));
}

async fn clients_across(r1: &str, r2: &str) {
    let (alice, _ae) = connect("alice", r1, 1, ClientConfig::default()).await;
    assert!(alice.allow_presence(&uid("bob")).await.expect("allow"));
    // bob watches alice from his first connection on: the snapshot comes
    // as an event, then only changes.
    let bob_config = ClientConfig {
        presence: vec![uid("alice")],
        typing_timeout: Duration::from_millis(500),
        ..ClientConfig::default()
    };
    let (bob, mut be) = connect("bob", r2, 2, bob_config).await;
    let snapshot = next_presence(&mut be).await;
    assert_eq!(snapshot.user, uid("alice"));
    assert!(snapshot.state.is_some_and(|s| s.online), "{snapshot:?}");

    // A session, then typing from r1 reaches bob on r2.
    alice.send_text(&uid("bob"), "hi").await.expect("send");
    next(&mut be, |e| matches!(e, Event::Message(_)).then_some(())).await;
    assert!(
        alice
            .send_typing(&uid("bob"), TypingState::Started)
            .await
            .expect("typing")
    );
    assert_eq!(
        next_typing(&mut be).await,
        (uid("alice"), TypingState::Started)
    );
    // alice vanishes while "typing": bob's indicator clears by itself,
    // and bob sees her offline with the time she left (nothing between).
    let before = now_ms();
    alice.close().await;
    let (mut stopped, mut gone) = (None, None);
    while stopped.is_none() || gone.is_none() {
        let event = next(&mut be, |e| match e {
            Event::Typing { .. } | Event::Presence(_) => Some(e),
            _ => None,
        })
        .await;
        match event {
            Event::Typing { from, state } => {
                assert!(stopped.is_none(), "a second typing event: {state:?}");
                stopped = Some((from, state));
            }
            Event::Presence(p) => {
                assert!(gone.is_none(), "a second presence entry: {p:?}");
                gone = Some(p);
            }
            _ => {}
        }
    }
    assert_eq!(stopped, Some((uid("alice"), TypingState::Stopped)));
    let gone = gone.expect("presence entry");
    let state = gone.state.expect("still visible");
    assert!(!state.online, "{gone:?}");
    let last_seen = state.last_seen_ms.expect("last seen");
    assert!((before..=now_ms()).contains(&last_seen), "{gone:?}");
    bob.close().await;
}
