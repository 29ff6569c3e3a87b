//! What others can make a client spend: one-time prekeys fetched by a
//! stranger or reported missing by a lying relay, and chain keys used up by
//! sends the relay refused. However hard they try, the client keeps
//! connecting, keeps its prekey state bounded, and its next accepted
//! message is one the receiver decrypts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

#[path = "common/mitm.rs"]
mod mitm;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hush_client_core::IdentityKeyPair;
use hush_client_core::client::{
    Backoff, Client, ClientConfig, ClientError, Clock, ConnectionState, Event, Events, Profile,
    SystemClock,
};
use hush_client_core::limits::{
    MAX_ONE_TIME_PREKEYS_HELD, MAX_ONE_TIME_PREKEYS_PER_WINDOW, MAX_SKIP,
};
use hush_client_core::store::KdfParams;
use hush_protocol::frame::{Auth, FetchBundle};
use hush_protocol::{
    ClientFrame, Limits, PublicKeyBytes, ServerFrame, SignatureBytes, UserId, signing,
};
use hush_relay::{Config, RelayHandle};
use mitm::Mitm;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const WAIT: Duration = Duration::from_secs(30);

fn uid(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

fn now() -> u64 {
    SystemClock.now_ms()
}

fn config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(5),
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
        },
        delivery_receipts: false,
        ..ClientConfig::default()
    }
}

async fn user(url: &str, name: &str, seed: u64) -> (Client, watch::Receiver<Vec<Event>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let profile = Profile::create_in_memory(&uid(name), url, &mut rng, now()).unwrap();
    let (client, events) = Client::connect(
        profile,
        config(),
        Box::new(StdRng::seed_from_u64(seed + 1000)),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    (client, collect(events))
}

fn collect(mut events: Events) -> watch::Receiver<Vec<Event>> {
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            tx.send_modify(|all| all.push(e));
        }
    });
    rx
}

async fn until(
    log: &mut watch::Receiver<Vec<Event>>,
    what: &str,
    mut done: impl FnMut(&[Event]) -> bool,
) {
    let ok = tokio::time::timeout(WAIT, log.wait_for(|all| done(all)))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(
        ok,
        "timed out waiting for {what}: {:#?}",
        log.borrow().iter().rev().take(5).collect::<Vec<_>>()
    );
}

fn has_text(all: &[Event], text: &str) -> bool {
    all.iter()
        .any(|e| matches!(e, Event::Message(m) if m.text == text))
}

fn connections(all: &[Event]) -> usize {
    all.iter()
        .filter(|e| matches!(e, Event::Connection(ConnectionState::Connected)))
        .count()
}

/// A bare user on the relay that only fetches bundles, as a stranger
/// draining someone's prekeys would.
async fn fetch_bundles(relay_url: &str, name: &str, of: &UserId, n: u64) {
    let (mut ws, _) = tokio_tungstenite::connect_async(relay_url).await.unwrap();
    let challenge = loop {
        if let WsMessage::Text(t) = ws.next().await.unwrap().unwrap() {
            break ServerFrame::decode(&t).unwrap();
        }
    };
    let ServerFrame::Challenge(c) = challenge else {
        panic!("no challenge")
    };
    let key = IdentityKeyPair::generate(&mut StdRng::seed_from_u64(99));
    let user = uid(name);
    let msg = signing::auth_message(&c.relay_id, &c.challenge.0, user.as_str()).unwrap();
    let auth = ClientFrame::Auth(Auth {
        rid: 1,
        user_id: user,
        identity_key: PublicKeyBytes(key.public().sig_pub),
        signature: SignatureBytes(key.sign(&msg)),
    });
    ws.send(WsMessage::text(auth.encode())).await.unwrap();
    // Pipelined: every fetch, then every reply.
    for rid in 2..2 + n {
        let f = ClientFrame::FetchBundle(FetchBundle {
            rid,
            user_id: of.clone(),
        });
        ws.send(WsMessage::text(f.encode())).await.unwrap();
    }
    let mut bundles = 0;
    let mut replies = 0;
    while replies < n + 1 {
        let WsMessage::Text(t) = ws.next().await.unwrap().unwrap() else {
            continue;
        };
        match ServerFrame::decode(&t).unwrap() {
            ServerFrame::Bundle(_) => {
                bundles += 1;
                replies += 1;
            }
            ServerFrame::AuthOk(_) | ServerFrame::Error(_) => replies += 1,
            _ => {}
        }
    }
    assert_eq!(bundles, n, "every fetch answered with a bundle");
}

/// One-time prekeys a client published, over all its `publish_keys`.
fn published_one_time(mitm: &Mitm, user: &UserId) -> usize {
    mitm.client_frames()
        .iter()
        .filter_map(|(u, f)| match f {
            ClientFrame::PublishKeys(p) if u.as_ref() == Some(user) => {
                Some(p.one_time_prekeys.len())
            }
            _ => None,
        })
        .sum()
}

/// 2,000 bundle fetches by another user, then a relay that claims the
/// victim has no prekeys on 20 connections in a row: the victim still
/// connects every time, holds at most the bound of secrets, generates no
/// more than its refill budget, and receives from an honest sender.
#[tokio::test]
async fn prekey_draining_and_a_relay_claiming_none_never_lock_the_victim_out() {
    let mut limits = Limits::default();
    limits.bundle_fetch_burst = 5_000;
    limits.bundle_fetches_per_hour = 5_000;
    limits.rate_per_sec = 100_000;
    limits.rate_burst = 100_000;
    limits.ip_rate_per_sec = 0;
    let relay = RelayHandle::start(Config::memory().with_limits(limits))
        .await
        .unwrap();
    let mitm = Mitm::start(relay.ws_url()).await;
    let (victim, mut vl) = user(&mitm.url(), "victim", 1).await;

    fetch_bundles(&relay.ws_url(), "eve", &uid("victim"), 2_000).await;
    // The relay told the victim its prekeys ran low (many times); its
    // refills are bounded by the budget, whatever it was told.

    // Now the relay lies on every connection: no keys at all.
    mitm.set_tamper(Some(Box::new(|user, frame| match frame {
        ServerFrame::AuthOk(mut ok) if user.is_none() || user == Some(&uid("victim")) => {
            ok.has_keys = false;
            ok.one_time_prekeys = 0;
            vec![ServerFrame::AuthOk(ok)]
        }
        other => vec![other],
    })));
    for n in 2..=21 {
        mitm.disconnect_all();
        until(&mut vl, &format!("connection #{n}"), |all| {
            connections(all) >= n
        })
        .await;
    }
    let held = victim
        .with_profile(|p| p.one_time_prekeys_held())
        .await
        .unwrap();
    assert!(held <= MAX_ONE_TIME_PREKEYS_HELD, "{held} secrets held");
    let generated = published_one_time(&mitm, &uid("victim"));
    assert!(
        generated <= MAX_ONE_TIME_PREKEYS_PER_WINDOW,
        "{generated} one-time prekeys generated within one window"
    );

    // An honest sender still gets through.
    let (carol, _cl) = user(&relay.ws_url(), "carol", 3).await;
    carol
        .send_text(&uid("victim"), "hello from carol")
        .await
        .unwrap();
    until(&mut vl, "carol's message", |all| {
        has_text(all, "hello from carol")
    })
    .await;
    carol.close().await;
    victim.close().await;
    relay.shutdown().await.unwrap();
}

/// A full mailbox refuses 1,001 sends, each of which used a chain key;
/// then the mailbox drains and the next message is accepted: the receiver
/// decrypts it (the sender started a new session before the gap could pass
/// the receiver's skip limit).
#[tokio::test]
async fn after_a_full_mailbox_and_1001_refused_sends_the_next_message_decrypts() {
    let mut limits = Limits::default();
    limits.mailbox_max_envelopes = 3;
    limits.rate_per_sec = 100_000;
    limits.rate_burst = 100_000;
    limits.ip_rate_per_sec = 0;
    let relay = RelayHandle::start(Config::memory().with_limits(limits))
        .await
        .unwrap();
    let url = relay.ws_url();
    // Bob's profile on disk, so that he can come back to it.
    let dir = tempfile::tempdir().unwrap();
    let open_bob = |create: bool| {
        let dir = dir.path().to_owned();
        let url = url.clone();
        async move {
            let profile = if create {
                Profile::create_in(
                    &dir,
                    b"bob's passphrase",
                    KdfParams::insecure_for_tests(),
                    &uid("bob"),
                    &url,
                    &mut StdRng::seed_from_u64(2),
                    now(),
                )
                .unwrap()
            } else {
                Profile::open_in(&dir, b"bob's passphrase").unwrap()
            };
            let (client, events) = Client::connect(
                profile,
                config(),
                Box::new(StdRng::seed_from_u64(1002)),
                Arc::new(SystemClock),
            )
            .await
            .unwrap();
            (client, collect(events))
        }
    };
    let (bob, _) = open_bob(true).await;
    bob.close().await;
    drop(bob);

    let (alice, _al) = user(&url, "alice", 1).await;
    for i in 0..3 {
        alice
            .send_text(&uid("bob"), &format!("queued {i}"))
            .await
            .unwrap();
    }
    let mut refused = 0;
    while refused <= MAX_SKIP {
        match alice.send_text(&uid("bob"), "refused").await {
            Err(ClientError::MailboxFull) => refused += 1,
            other => panic!("expected mailbox_full, got {other:?}"),
        }
    }

    // Bob comes back and drains his mailbox.
    let (bob, mut bl) = open_bob(false).await;
    until(&mut bl, "the queued messages", |all| {
        has_text(all, "queued 2")
    })
    .await;
    until(&mut bl, "the backlog drained", |all| {
        all.iter().any(|e| matches!(e, Event::Drained))
    })
    .await;
    alice
        .send_text(&uid("bob"), "accepted at last")
        .await
        .unwrap();
    until(&mut bl, "the message after the refused ones", |all| {
        has_text(all, "accepted at last")
    })
    .await;
    let undecryptable = bl
        .borrow()
        .iter()
        .filter(|e| matches!(e, Event::Undecryptable { .. }))
        .count();
    assert_eq!(undecryptable, 0);
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}
