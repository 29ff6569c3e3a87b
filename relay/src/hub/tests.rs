//! Unit tests of [`super`]: the injected clock and randomness, and live
//! delivery through the session table.

use std::time::Duration;

use hush_protocol::{Body, PublicKeyBytes};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::bus::LocalBus;
use crate::sessions::Outbound;
use crate::store::{AppendOutcome, MemoryStore};

const T0: u64 = 1_764_000_000_000;

fn u(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

fn hub(clock: Clock, random: Random) -> Hub<MemoryStore> {
    let env = Env {
        clock,
        random,
        tasks: TaskTracker::new(),
    };
    let mut limits = Limits::default();
    limits.retention = Duration::from_secs(60);
    Hub::new(
        MemoryStore::new().unwrap(),
        limits,
        "relay".to_owned(),
        Arc::new(LocalBus),
        env,
    )
}

async fn register(hub: &Hub<MemoryStore>, user: &str) {
    hub.directory()
        .register_or_authenticate(&u(user), &PublicKeyBytes([7; 32]))
        .await
        .unwrap();
}

async fn submit(hub: &Hub<MemoryStore>, to: &str, body: u8) -> StoredEnvelope {
    match hub
        .delivery()
        .submit(&u("alice"), &u(to), Body(vec![body]))
        .await
        .unwrap()
    {
        AppendOutcome::Appended(env) => env,
        other => panic!("not appended: {other:?}"),
    }
}

#[tokio::test]
async fn the_injected_clock_stamps_envelopes_and_sets_the_retention_cutoff() {
    let clock = Clock::manual(T0);
    let hub = hub(clock.clone(), Random::seeded(1));
    register(&hub, "bob").await;
    let env = submit(&hub, "bob", 1).await;
    assert_eq!(env.accepted_at, T0);
    assert_eq!(hub.delivery().now_ms(), T0);
    clock.advance(60_000);
    assert_eq!(hub.sweep_expired().await.unwrap(), 0, "not older yet");
    clock.advance(1);
    assert_eq!(hub.sweep_expired().await.unwrap(), 1);
}

#[tokio::test]
async fn a_seeded_source_fixes_the_challenges() {
    let a = hub(Clock::manual(T0), Random::seeded(9));
    let b = hub(Clock::manual(T0), Random::seeded(9));
    let first = a.challenge().unwrap();
    assert_eq!(first, b.challenge().unwrap());
    assert_ne!(first, a.challenge().unwrap(), "a sequence, not a constant");
}

fn ids(rx: &mut mpsc::Receiver<Outbound>) -> Vec<u64> {
    let mut out = Vec::new();
    while let Ok(Outbound::Text(t)) = rx.try_recv() {
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        out.push(v["id"].as_u64().unwrap());
    }
    out
}

#[tokio::test]
async fn live_envelopes_follow_the_backlog_in_order() {
    let hub = hub(Clock::manual(T0), Random::seeded(1));
    register(&hub, "bob").await;
    submit(&hub, "bob", 1).await;
    let (tx, mut rx) = mpsc::channel(16);
    let kill = Arc::new(watch::channel(None).0);
    let session = Arc::new(Session::new(1, u("bob"), 0, tx, kill));
    hub.activate(session);
    hub.tasks().close();
    hub.tasks().wait().await;
    assert_eq!(ids(&mut rx), vec![1], "the backlog");
    let second = submit(&hub, "bob", 2).await;
    let third = submit(&hub, "bob", 3).await;
    hub.delivery().deliver(&u("bob"), &second);
    hub.delivery().deliver(&u("bob"), &second);
    hub.delivery().deliver(&u("bob"), &third);
    assert_eq!(ids(&mut rx), vec![2, 3], "live, once each");
    assert_eq!(hub.users_online(), 1);
    hub.deactivate(&u("bob"), 1);
    assert_eq!(hub.users_online(), 0);
}
