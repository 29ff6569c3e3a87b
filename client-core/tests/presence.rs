//! Presence, typing indicators and receipts between `Client`s through a real
//! `hush-relay` started in the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;
use std::time::Duration;

use hush_client_core::client::{
    Client, ClientConfig, Clock, Event, Events, PresenceEntry, Profile, SystemClock,
};
use hush_client_core::payload::{MessageId, ReceiptKind, TypingState};
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
    Profile::create_in_memory(&uid(name), relay, &mut *rng(seed), SystemClock.now_ms()).unwrap()
}

fn config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

async fn connect_with(p: Profile, seed: u64, config: ClientConfig) -> (Client, Events) {
    Client::connect(p, config, rng(seed), Arc::new(SystemClock))
        .await
        .unwrap()
}

async fn connect(p: Profile, seed: u64) -> (Client, Events) {
    connect_with(p, seed, config()).await
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

async fn next_presence(events: &mut Events, of: &str) -> PresenceEntry {
    next(events, |e| match e {
        Event::Presence(p) if p.user.as_str() == of => Some(p),
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

async fn receipt(events: &mut Events, kind: ReceiptKind) -> Vec<MessageId> {
    next(events, |e| match e {
        Event::Receipt {
            kind: k,
            message_ids,
            ..
        } if k == kind => Some(message_ids),
        _ => None,
    })
    .await
}

async fn status(client: &Client, peer: &str, id: MessageId) -> Option<DeliveryStatus> {
    let peer = uid(peer);
    let history = client
        .with_profile(move |p| p.history(&peer, None))
        .await
        .unwrap()
        .unwrap();
    history
        .iter()
        .find(|e| e.message_id.0 == id.0)
        .and_then(|e| e.status)
}

/// The wire form of an entry with its user id replaced, to compare answers
/// about different users byte for byte.
fn anonymised(e: &PresenceEntry) -> String {
    let mut e = e.clone();
    e.user = uid("x");
    serde_json::to_string(&e).unwrap()
}

#[tokio::test]
async fn presence_is_visible_to_an_allowed_user_only_and_hidden_looks_like_unknown() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    let (bob, _be) = connect(profile("bob", &url, 2), 12).await;
    let (carol, _ce) = connect(profile("carol", &url, 3), 13).await;

    // Nobody by default.
    let before = bob.query_presence(&[uid("alice")]).await.unwrap();
    assert_eq!(before, vec![PresenceEntry::hidden(uid("alice"))]);

    assert!(alice.allow_presence(&uid("bob")).await.unwrap());
    assert!(!alice.allow_presence(&uid("bob")).await.unwrap(), "once");
    assert_eq!(alice.presence_allowed().await.unwrap(), vec![uid("bob")]);

    let seen = bob.query_presence(&[uid("alice")]).await.unwrap();
    let state = seen[0].state.expect("bob is allowed");
    assert!(state.online);

    // carol: alice is exactly as invisible as a user who does not exist,
    // and as one who exists and allowed nobody (bob does not allow carol).
    let answer = carol
        .query_presence(&[uid("alice"), uid("nosuchuser"), uid("bob")])
        .await
        .unwrap();
    assert_eq!(answer.len(), 3);
    assert!(answer.iter().all(|e| e.state.is_none()), "{answer:?}");
    assert_eq!(anonymised(&answer[0]), anonymised(&answer[1]));
    assert_eq!(anonymised(&answer[0]), anonymised(&answer[2]));

    // Denied again: bob gets the hidden answer too.
    assert!(alice.deny_presence(&uid("bob")).await.unwrap());
    let after = bob.query_presence(&[uid("alice")]).await.unwrap();
    assert_eq!(after, vec![PresenceEntry::hidden(uid("alice"))]);

    for c in [alice, bob, carol] {
        c.close().await;
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_subscriber_sees_online_then_last_seen_after_disconnect() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let (bob, mut be) = connect(profile("bob", &url, 2), 12).await;
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    alice.allow_presence(&uid("bob")).await.unwrap();

    let snapshot = bob.subscribe_presence(vec![uid("alice")]).await.unwrap();
    assert!(snapshot[0].state.expect("allowed").online);

    let before = SystemClock.now_ms();
    alice.close().await;
    let gone = next_presence(&mut be, "alice").await;
    let after = SystemClock.now_ms();
    let state = gone.state.expect("still allowed");
    assert!(!state.online);
    let last_seen = state.last_seen_ms.expect("a disconnect was seen");
    assert!(
        (before..=after).contains(&last_seen),
        "last seen {last_seen} outside [{before}, {after}]"
    );
    // Asked again, the answer is the same.
    let asked = bob.query_presence(&[uid("alice")]).await.unwrap();
    assert_eq!(asked[0], gone);
    bob.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_deny_is_pushed_to_subscribers_as_hidden() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    let (bob, mut be) = connect(profile("bob", &url, 2), 12).await;
    let snapshot = bob.subscribe_presence(vec![uid("alice")]).await.unwrap();
    assert_eq!(snapshot, vec![PresenceEntry::hidden(uid("alice"))]);

    alice.allow_presence(&uid("bob")).await.unwrap();
    // (Skipping any repeat of the hidden entry: alice's connection
    // republishes her empty list concurrently with bob's subscribe.)
    let shown = next(&mut be, |e| match e {
        Event::Presence(p) if p.user.as_str() == "alice" && p.state.is_some() => Some(p),
        _ => None,
    })
    .await;
    assert!(shown.state.expect("allowed now").online);

    alice.deny_presence(&uid("bob")).await.unwrap();
    // (Skipping any repeat of the visible entry.)
    let hidden = next(&mut be, |e| match e {
        Event::Presence(p) if p.user.as_str() == "alice" && p.state.is_none() => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(hidden, PresenceEntry::hidden(uid("alice")));
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn allow_list_and_subscriptions_are_renewed_after_a_reconnect() {
    // A memory relay forgets everything when it restarts: only the
    // clients' republication brings the allow list and the subscription
    // back. (Its relay id is fixed, as clients pin it: a memory relay's own
    // is random per process.)
    let config = || Config::memory().with_relay_id("presence-test-relay");
    let relay = RelayHandle::start(config()).await.unwrap();
    let addr = relay.local_addr();
    let url = relay.ws_url();
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    let (bob, mut be) = connect(profile("bob", &url, 2), 12).await;
    alice.allow_presence(&uid("bob")).await.unwrap();
    bob.subscribe_presence(vec![uid("alice")]).await.unwrap();

    relay.shutdown().await.unwrap();
    let relay = RelayHandle::bind(config(), addr).await.unwrap();
    // Both reconnect by themselves, in either order: bob's renewed snapshot
    // shows alice if she republished first, else the relay pushes the
    // change when she does.
    let renewed = next(&mut be, |e| match e {
        Event::Presence(p) if p.user.as_str() == "alice" && p.state.is_some() => Some(p),
        _ => None,
    })
    .await;
    assert!(renewed.state.expect("visible").online);
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

/// alice and bob with a session both ways (bob received a message from
/// alice); bob's typing timeout is `typing_timeout`.
async fn pair(url: &str, typing_timeout: Duration) -> (Client, Events, Client, Events) {
    let (alice, ae) = connect(profile("alice", url, 1), 11).await;
    let bob_config = ClientConfig {
        typing_timeout,
        ..config()
    };
    let (bob, mut be) = connect_with(profile("bob", url, 2), 12, bob_config).await;
    alice.send_text(&uid("bob"), "hi").await.unwrap();
    next(&mut be, |e| matches!(e, Event::Message(_)).then_some(())).await;
    (alice, ae, bob, be)
}

#[tokio::test]
async fn typing_reaches_an_online_peer_and_refreshes_are_rate_limited() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let (alice, _ae, bob, mut be) = pair(&url, Duration::from_secs(60)).await;

    assert!(
        alice
            .send_typing(&uid("bob"), TypingState::Started)
            .await
            .unwrap()
    );
    assert_eq!(
        next_typing(&mut be).await,
        (uid("alice"), TypingState::Started)
    );
    // A second Started within the refresh interval does not leave.
    assert!(
        !alice
            .send_typing(&uid("bob"), TypingState::Started)
            .await
            .unwrap()
    );
    assert!(
        alice
            .send_typing(&uid("bob"), TypingState::Stopped)
            .await
            .unwrap()
    );
    assert!(
        !alice
            .send_typing(&uid("bob"), TypingState::Stopped)
            .await
            .unwrap(),
        "one Stopped per Started"
    );
    assert_eq!(
        next_typing(&mut be).await,
        (uid("alice"), TypingState::Stopped)
    );
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_typing_peer_that_never_says_stopped_is_cleared_by_the_timeout() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    // A short timeout so the test waits for the event, not for seconds.
    let (alice, _ae, bob, mut be) = pair(&url, Duration::from_millis(300)).await;
    assert!(
        alice
            .send_typing(&uid("bob"), TypingState::Started)
            .await
            .unwrap()
    );
    assert_eq!(
        next_typing(&mut be).await,
        (uid("alice"), TypingState::Started)
    );
    // From here on the test's clock only moves when every task waits: the
    // timeout fires without the test sleeping through it.
    tokio::time::pause();
    // alice never says Stopped (as if she crashed while typing).
    assert_eq!(
        next_typing(&mut be).await,
        (uid("alice"), TypingState::Stopped)
    );
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn typing_to_an_offline_peer_is_not_stored_and_costs_it_nothing() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let dir = tempfile::tempdir().unwrap();
    let bob_dir = dir.path().join("bob");
    let kdf = hush_client_core::store::KdfParams::insecure_for_tests();
    let bob_profile = Profile::create_in(
        &bob_dir,
        b"pw",
        kdf,
        &uid("bob"),
        &url,
        &mut *rng(2),
        SystemClock.now_ms(),
    )
    .unwrap();
    let (bob, mut be) = connect(bob_profile, 12).await;
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    alice.send_text(&uid("bob"), "first").await.unwrap();
    next(&mut be, |e| matches!(e, Event::Message(_)).then_some(())).await;
    bob.close().await;
    drop(bob);

    // Accepted by the relay, dropped: bob is offline.
    assert!(
        alice
            .send_typing(&uid("bob"), TypingState::Started)
            .await
            .unwrap()
    );
    assert!(
        alice
            .send_typing(&uid("bob"), TypingState::Stopped)
            .await
            .unwrap()
    );
    alice.send_text(&uid("bob"), "after typing").await.unwrap();

    let (bob, mut be) = connect(Profile::open_in(&bob_dir, b"pw").unwrap(), 13).await;
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            match be.recv().await.expect("event stream ended") {
                Event::Drained => break,
                e => seen.push(e),
            }
        }
    })
    .await
    .expect("bob's backlog drains");
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Typing { .. })),
        "a typing indicator was stored: {seen:?}"
    );
    let texts: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.text.as_str()),
            _ => None,
        })
        .collect();
    // The message after the dropped indicators decrypts (their keys are
    // skipped).
    assert_eq!(texts, vec!["after typing"]);
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn delivered_and_read_receipts_move_the_senders_status_forward() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let (alice, mut ae) = connect(profile("alice", &url, 1), 11).await;
    let (bob, mut be) = connect(profile("bob", &url, 2), 12).await;

    let id = alice.send_text(&uid("bob"), "read me").await.unwrap();
    // Bob is online and acknowledges on his own, so his delivered receipt
    // may already have landed; it can be no further than that.
    assert!(matches!(
        status(&alice, "bob", id).await,
        Some(DeliveryStatus::Sent | DeliveryStatus::Delivered)
    ));
    let m = next(&mut be, |e| match e {
        Event::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(receipt(&mut ae, ReceiptKind::Delivered).await, vec![id]);
    assert_eq!(
        status(&alice, "bob", id).await,
        Some(DeliveryStatus::Delivered)
    );

    // Alice wrote first: for Bob she is a message request, and no read
    // receipt goes to a request (nothing is even encrypted for it).
    let keys_used = |bob: &Client| {
        let bob = bob.clone();
        async move {
            bob.with_profile(|p| p.contact(&uid("alice")).unwrap().unwrap().keys_used)
                .await
                .unwrap()
        }
    };
    let before = keys_used(&bob).await;
    bob.send_read_receipt(&uid("alice"), vec![m.id])
        .await
        .unwrap();
    assert_eq!(
        keys_used(&bob).await,
        before,
        "a read receipt left for a request"
    );
    // Once Bob accepts (or replies), it goes.
    assert!(
        bob.with_profile(|p| p.accept(&uid("alice")))
            .await
            .unwrap()
            .unwrap()
    );
    bob.send_read_receipt(&uid("alice"), vec![m.id])
        .await
        .unwrap();
    assert_eq!(receipt(&mut ae, ReceiptKind::Read).await, vec![id]);
    assert_eq!(status(&alice, "bob", id).await, Some(DeliveryStatus::Read));
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_read_receipt_leaves_when_the_setting_is_off() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let (alice, mut ae) = connect(profile("alice", &url, 1), 11).await;
    let mut bob_profile = profile("bob", &url, 2);
    bob_profile
        .update_settings(|s| s.send_read_receipts = false)
        .unwrap();
    let (bob, mut be) = connect(bob_profile, 12).await;

    let first = alice.send_text(&uid("bob"), "one").await.unwrap();
    let m = next(&mut be, |e| match e {
        Event::Message(m) => Some(m),
        _ => None,
    })
    .await;
    bob.send_read_receipt(&uid("alice"), vec![m.id])
        .await
        .unwrap();
    // Receipts from bob arrive in the order bob sent them: once the
    // delivery receipt of a later message is in, a read receipt for the
    // first would have been too.
    let second = alice.send_text(&uid("bob"), "two").await.unwrap();
    let mut read = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            match ae.recv().await.expect("event stream ended") {
                Event::Receipt {
                    kind: ReceiptKind::Read,
                    message_ids,
                    ..
                } => read.extend(message_ids),
                Event::Receipt {
                    kind: ReceiptKind::Delivered,
                    message_ids,
                    ..
                } if message_ids.contains(&second) => break,
                _ => {}
            }
        }
    })
    .await
    .expect("the second delivery receipt arrives");
    assert!(read.is_empty(), "read receipts were sent: {read:?}");
    assert_eq!(
        status(&alice, "bob", first).await,
        Some(DeliveryStatus::Delivered)
    );
    alice.close().await;
    bob.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_presence_requests_are_refused_before_sending() {
    let relay = RelayHandle::start(Config::memory()).await.unwrap();
    let url = relay.ws_url();
    let (alice, _ae) = connect(profile("alice", &url, 1), 11).await;
    let many: Vec<UserId> = (0..=hush_client_core::limits::MAX_PRESENCE_QUERY)
        .map(|i| uid(&format!("u{i}")))
        .collect();
    let err = alice.query_presence(&many).await.unwrap_err();
    assert!(
        matches!(
            err,
            hush_client_core::client::ClientError::LimitExceeded { .. }
        ),
        "{err:?}"
    );
    let subs: Vec<UserId> = (0..=hush_client_core::limits::MAX_PRESENCE_SUBSCRIPTIONS)
        .map(|i| uid(&format!("u{i}")))
        .collect();
    let err = alice.subscribe_presence(subs).await.unwrap_err();
    assert!(
        matches!(
            err,
            hush_client_core::client::ClientError::LimitExceeded { .. }
        ),
        "{err:?}"
    );
    // Duplicates count once.
    let same = vec![uid("bob"); 2 * hush_client_core::limits::MAX_PRESENCE_QUERY];
    assert_eq!(alice.query_presence(&same).await.unwrap().len(), 1);
    let too_many: Vec<UserId> = (0..=hush_client_core::limits::MAX_PRESENCE_ALLOW)
        .map(|i| uid(&format!("u{i}")))
        .collect();
    let err = alice.set_presence_allowed(too_many).await.unwrap_err();
    assert!(
        matches!(
            err,
            hush_client_core::client::ClientError::LimitExceeded { .. }
        ),
        "{err:?}"
    );
    assert!(
        alice.presence_allowed().await.unwrap().is_empty(),
        "unchanged"
    );
    alice.close().await;
    relay.shutdown().await.unwrap();
}
