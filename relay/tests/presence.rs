//! Presence, last seen and ephemeral envelopes, end to end (docs/protocol.md
//! sections 14 and 15). Every scenario runs against every store backend
//! (see the bottom); cluster mode across two relays is at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use hush_protocol::frame::*;
use hush_protocol::{Body, ClientFrame, ErrorCode, ServerFrame, UserId};

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn entries(f: ServerFrame) -> Vec<PresenceEntry> {
    match f {
        ServerFrame::Presence(p) => p.users,
        other => panic!("expected presence, got {other:?}"),
    }
}

fn one(f: ServerFrame) -> PresenceEntry {
    let mut v = entries(f);
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

fn hidden(name: &str) -> PresenceEntry {
    PresenceEntry::hidden(user(name))
}

fn visible(name: &str, online: bool, last_seen_ms: Option<u64>) -> PresenceEntry {
    PresenceEntry {
        user: user(name),
        state: Some(PresenceState {
            online,
            last_seen_ms,
        }),
    }
}

fn allowed_count(f: ServerFrame) -> u32 {
    match f {
        ServerFrame::PresenceAllowed(a) => a.count,
        other => panic!("expected presence_allowed, got {other:?}"),
    }
}

fn ephemeral(rid: u64, to: &str, body: &[u8]) -> ClientFrame {
    ClientFrame::Send(SendEnvelope {
        rid,
        to: user(to),
        body: Body(body.to_vec()),
        ephemeral: true,
    })
}

fn query_text(rid: u64, users: &[&str]) -> String {
    ClientFrame::PresenceQuery(PresenceQuery {
        rid,
        users: users.iter().map(|u| user(u)).collect::<Vec<UserId>>(),
    })
    .encode()
}

/// Bytes that appear nowhere by chance.
fn marker(tag: &str) -> Vec<u8> {
    let mut m = format!("{tag}-").into_bytes();
    m.extend_from_slice(&rand::random::<[u8; 24]>());
    m
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

mod scenarios {
    use super::*;

    pub async fn allowed_sees_presence_others_get_the_unknown_user_answer(b: Backend) {
        let relay = b.start().await;
        let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let (mut carol, _) = Client::login(&relay, "carol", &new_key()).await;
        // Default: nobody is allowed.
        assert_eq!(one(alice.presence_query(&["bob"]).await), hidden("bob"));
        assert_eq!(
            allowed_count(bob.presence_allow(&["alice", "alice", "dave"]).await),
            2
        );
        assert_eq!(
            one(alice.presence_query(&["bob"]).await),
            visible("bob", true, None)
        );
        // Carol is not allowed: the exact bytes of the answer about bob are
        // the answer about an id nobody registered (names swapped).
        let about_bob = carol.request_text(query_text(77, &["bob"]), 77).await;
        let about_ghost = carol.request_text(query_text(77, &["ghost"]), 77).await;
        assert_eq!(about_bob.replace("\"bob\"", "\"ghost\""), about_ghost);
        assert_eq!(
            about_ghost,
            r#"{"type":"presence","rid":77,"users":[{"user":"ghost","visible":false}]}"#
        );
        // A registered user who allowed nobody, and one who allows others.
        let (_dave, _) = Client::login(&relay, "dave", &new_key()).await;
        let about_dave = carol.request_text(query_text(78, &["dave"]), 78).await;
        let about_ghost = carol.request_text(query_text(78, &["ghost"]), 78).await;
        assert_eq!(about_dave.replace("\"dave\"", "\"ghost\""), about_ghost);
        // Subscriptions give the same snapshot.
        assert_eq!(
            entries(carol.presence_subscribe(&["bob", "ghost"]).await),
            vec![hidden("bob"), hidden("ghost")]
        );
        // One entry per distinct id, in order of first mention; oneself is
        // always visible.
        assert_eq!(
            entries(
                alice
                    .presence_query(&["ghost", "bob", "ghost", "alice"])
                    .await
            ),
            vec![
                hidden("ghost"),
                visible("bob", true, None),
                visible("alice", true, None)
            ]
        );
    }

    pub async fn last_seen_updated_on_disconnect(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        bob.presence_allow(&["alice"]).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        assert_eq!(
            entries(alice.presence_subscribe(&["bob"]).await),
            vec![visible("bob", true, None)]
        );
        let before = now_ms();
        drop(bob);
        let gone = alice.next_presence_update().await;
        let after = now_ms();
        let seen = gone.state.and_then(|s| s.last_seen_ms).expect("last seen");
        assert!(
            before <= seen && seen <= after,
            "{before} <= {seen} <= {after}"
        );
        assert_eq!(gone, visible("bob", false, Some(seen)));
        assert_eq!(
            one(alice.presence_query(&["bob"]).await),
            visible("bob", false, Some(seen))
        );
        // Back online: last seen still says when the previous one closed.
        let (_bob, _) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(
            alice.next_presence_update().await,
            visible("bob", true, Some(seen))
        );
    }

    /// The subject re-publishes its allow list (a change every subscriber
    /// re-reads) and disconnects at once, many times: the update after
    /// "online" is always "offline, last seen" of *that* disconnect, never
    /// an entry that pairs offline with the last seen before it.
    pub async fn offline_never_carries_an_earlier_last_seen(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        bob.presence_allow(&["alice"]).await;
        assert_eq!(
            entries(alice.presence_subscribe(&["bob"]).await),
            vec![visible("bob", true, None)]
        );
        drop(bob);
        let mut seen = alice.next_presence_update().await;
        for round in 0..25 {
            let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
            let last = seen.state.and_then(|s| s.last_seen_ms);
            assert_eq!(
                alice.next_presence_update().await,
                visible("bob", true, last),
                "round {round}"
            );
            let before = now_ms();
            let rid = bob.rid();
            bob.send_raw(
                ClientFrame::PresenceAllow(PresenceAllow {
                    rid,
                    users: vec![user("alice")],
                })
                .encode(),
            )
            .await;
            drop(bob);
            seen = alice.next_presence_update().await;
            let at = seen.state.and_then(|s| s.last_seen_ms);
            assert!(
                at.is_some_and(|t| t >= before),
                "round {round}: {seen:?} after a disconnect at {before}"
            );
            assert_eq!(seen, visible("bob", false, at), "round {round}");
        }
    }

    pub async fn replacement_by_a_newer_connection_does_not_flap(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        let (mut bob1, _) = Client::login(&relay, "bob", &bob_key).await;
        bob1.presence_allow(&["alice"]).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        alice.presence_subscribe(&["bob"]).await;
        let (mut bob2, _) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(
            bob1.expect_close().await,
            Some(hush_protocol::close::REPLACED)
        );
        bob2.ping().await;
        drop(bob2);
        // The first update alice gets is the real disconnect: no offline
        // then online for the replacement before it.
        let u = alice.next_presence_update().await;
        assert!(
            matches!(
                u.state,
                Some(PresenceState {
                    online: false,
                    last_seen_ms: Some(_)
                })
            ),
            "{u:?}"
        );
        alice.ping().await;
        assert!(
            !alice
                .take_pending()
                .iter()
                .any(|f| matches!(f, ServerFrame::PresenceUpdate(_))),
            "more updates after the disconnect"
        );
    }

    pub async fn revoking_hides_and_stops_updates(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        bob.presence_allow(&["alice", "dave"]).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let (mut dave, _) = Client::login(&relay, "dave", &new_key()).await;
        assert_eq!(
            entries(alice.presence_subscribe(&["bob"]).await),
            vec![visible("bob", true, None)]
        );
        dave.presence_subscribe(&["bob"]).await;
        // Revoked: alice is told bob is now hidden, exactly like an unknown id.
        assert_eq!(allowed_count(bob.presence_allow(&["dave"]).await), 1);
        assert_eq!(alice.next_presence_update().await, hidden("bob"));
        assert_eq!(one(alice.presence_query(&["bob"]).await), hidden("bob"));
        // Bob goes offline: dave (still allowed) hears of it; alice nothing.
        drop(bob);
        let u = dave.next_presence_update().await;
        assert_eq!(u.state.map(|s| s.online), Some(false));
        // Both connections get their updates from one pass over bob's
        // subscribers, so alice's would be queued before this reply.
        alice.ping().await;
        assert!(
            !alice
                .take_pending()
                .iter()
                .any(|f| matches!(f, ServerFrame::PresenceUpdate(_))),
            "update after revocation"
        );
        // Allowed again: visible again, with the state.
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        bob.presence_allow(&["alice", "dave"]).await;
        let u = alice.next_presence_update().await;
        assert_eq!(u.state.map(|s| s.online), Some(true), "{u:?}");
    }

    pub async fn caps_are_limit_exceeded_and_change_nothing(b: Backend) {
        let relay = b
            .start_with(|c| {
                c.limits.max_presence_subscriptions = 3;
                c.limits.max_presence_query = 2;
                c.limits.max_presence_allow = 2;
            })
            .await;
        let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        assert_eq!(allowed_count(bob.presence_allow(&["alice"]).await), 1);
        let f = bob.presence_allow(&["x1", "x2", "x3"]).await;
        assert_eq!(error_code(&f), Some(ErrorCode::LimitExceeded));
        assert_eq!(
            one(alice.presence_query(&["bob"]).await),
            visible("bob", true, None),
            "refused allow list left the old one"
        );
        // Duplicates count once.
        assert_eq!(
            entries(alice.presence_subscribe(&["bob", "x1", "bob", "x2"]).await).len(),
            3
        );
        let f = alice.presence_subscribe(&["bob", "x1", "x2", "x3"]).await;
        assert_eq!(error_code(&f), Some(ErrorCode::LimitExceeded));
        let f = alice.presence_query(&["x1", "x2", "x3"]).await;
        assert_eq!(error_code(&f), Some(ErrorCode::LimitExceeded));
        // The refused subscribe kept the previous set: bob's disconnect is
        // still reported.
        drop(bob);
        let u = alice.next_presence_update().await;
        assert_eq!(u.user.as_str(), "bob");
        assert_eq!(u.state.map(|s| s.online), Some(false));
    }

    pub async fn presence_rate_is_its_own_bucket(b: Backend) {
        let relay = b
            .start_with(|c| {
                // No refill: the outcome cannot depend on timing.
                c.limits.presence_rate_per_sec = 0;
                c.limits.presence_rate_burst = 3;
            })
            .await;
        drop(Client::login(&relay, "bob", &new_key()).await);
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        assert!(matches!(
            alice.presence_query(&["bob"]).await,
            ServerFrame::Presence(_)
        ));
        assert!(matches!(
            alice.presence_allow(&["bob"]).await,
            ServerFrame::PresenceAllowed(_)
        ));
        let rid = alice.rid();
        assert!(matches!(
            alice.request(ephemeral(rid, "bob", b"t")).await,
            ServerFrame::Accepted(Accepted { id: None, .. })
        ));
        for f in [
            alice.presence_query(&["bob"]).await,
            alice.presence_subscribe(&["bob"]).await,
            alice.presence_allow(&[]).await,
            {
                let rid = alice.rid();
                alice.request(ephemeral(rid, "bob", b"t")).await
            },
        ] {
            assert_eq!(error_code(&f), Some(ErrorCode::RateLimited), "{f:?}");
        }
        // Other requests are not affected, and the connection stays open.
        alice.ping().await;
        assert_eq!(alice.send_ok("bob", b"stored").await, 1);
    }

    pub async fn ephemeral_forwarded_online_dropped_offline_same_reply(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        drop(Client::login(&relay, "bob", &bob_key).await);
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let offline = alice
            .request_text(ephemeral(40, "bob", &marker("typing")).encode(), 40)
            .await;
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(
            bob.first_envelope_before_marker().await,
            None,
            "an ephemeral envelope was stored"
        );
        let body = marker("typing");
        let online = alice
            .request_text(ephemeral(40, "bob", &body).encode(), 40)
            .await;
        assert_eq!(offline, online, "the reply reveals presence");
        assert_eq!(online, r#"{"type":"accepted","rid":40}"#);
        let e = bob.next_envelope().await;
        assert_eq!(
            (e.id, e.ephemeral, e.from.as_str(), e.body.0),
            (None, true, "alice", body)
        );
        // Unknown recipient: as for a stored send.
        let rid = alice.rid();
        let f = alice.request(ephemeral(rid, "ghost", b"t")).await;
        assert_eq!(error_code(&f), Some(ErrorCode::UnknownUser));
    }

    pub async fn subscribe_replaces_and_unsubscribes(b: Backend) {
        let relay = b.start().await;
        let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
        let (mut carol, _) = Client::login(&relay, "carol", &new_key()).await;
        bob.presence_allow(&["alice"]).await;
        carol.presence_allow(&["alice"]).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        alice.presence_subscribe(&["bob"]).await;
        assert_eq!(
            entries(alice.presence_subscribe(&["carol"]).await),
            vec![visible("carol", true, None)]
        );
        drop(bob);
        drop(carol);
        let u = alice.next_presence_update().await;
        assert_eq!(u.user.as_str(), "carol", "bob is no longer subscribed");
        assert!(entries(alice.presence_subscribe(&[]).await).is_empty());
    }
}

/// The store never sees an ephemeral body: the redb file and every Redis
/// value are searched for it, with a stored envelope as positive control.
mod stored_data {
    use super::*;

    async fn exchange(relay: &hush_relay::RelayHandle) -> (Vec<u8>, Vec<u8>) {
        let bob_key = new_key();
        drop(Client::login(relay, "bob", &bob_key).await);
        let (mut alice, _) = Client::login(relay, "alice", &new_key()).await;
        alice.presence_allow(&["bob"]).await;
        let (typing, stored) = (marker("typing"), marker("stored"));
        // Offline: dropped. Then online: forwarded.
        let rid = alice.rid();
        alice.request(ephemeral(rid, "bob", &typing)).await;
        let (mut bob, _) = Client::login(relay, "bob", &bob_key).await;
        bob.presence_subscribe(&["alice"]).await;
        let rid = alice.rid();
        alice.request(ephemeral(rid, "bob", &typing)).await;
        assert_eq!(bob.next_envelope().await.body.0, typing);
        alice.send_ok("bob", &stored).await;
        assert_eq!(bob.next_envelope().await.body.0, stored);
        drop(bob);
        drop(alice);
        (typing, stored)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redb_file_holds_no_ephemeral_body() {
        let b = Backend::redb();
        let relay = b.start().await;
        let (typing, stored) = exchange(&relay).await;
        relay.shutdown().await.unwrap();
        let file = std::fs::read(b.data_dir().unwrap().join("hush.redb")).unwrap();
        assert!(
            contains(&file, &stored),
            "control: stored body is in the file"
        );
        assert!(
            !contains(&file, &typing),
            "ephemeral body reached the store"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_holds_no_ephemeral_body_and_only_known_keys() {
        let b = Backend::redis();
        let relay = b.start().await;
        let (typing, stored) = exchange(&relay).await;
        relay.shutdown().await.unwrap();
        let Backend::Redis(server) = &b else {
            unreachable!()
        };
        let mut conn = ::redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        let known = [
            "hush:relay_id",
            "hush:users",
            "hush:nonempty",
            "hush:u:",
            "hush:opk:",
            "hush:mbox:",
            "hush:epoch:",
            "hush:presence:",
            "hush:pallow:",
        ];
        let mut all = Vec::new();
        for k in &keys {
            assert!(
                known
                    .iter()
                    .any(|p| k == p || (p.ends_with(':') && k.starts_with(p))),
                "unexpected key {k}"
            );
            let dump: Vec<u8> = ::redis::cmd("DUMP")
                .arg(k)
                .query_async(&mut conn)
                .await
                .unwrap();
            all.extend_from_slice(&dump);
            all.push(0);
        }
        assert!(contains(&all, &stored), "control: stored body is in Redis");
        assert!(!contains(&all, &typing), "ephemeral body reached Redis");
        // The allow list is there, durably, and nothing about typing.
        assert!(keys.iter().any(|k| k == "hush:pallow:alice"), "{keys:?}");
    }
}

/// Allow list and last seen survive a restart of a durable relay.
async fn presence_survives_restart(b: Backend) {
    let bob_key = new_key();
    let alice_key = new_key();
    let seen = {
        let relay = b.start().await;
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        bob.presence_allow(&["alice"]).await;
        let (mut alice, _) = Client::login(&relay, "alice", &alice_key).await;
        alice.presence_subscribe(&["bob"]).await;
        drop(bob);
        let u = alice.next_presence_update().await;
        drop(alice);
        relay.shutdown().await.unwrap();
        u.state.and_then(|s| s.last_seen_ms).expect("last seen")
    };
    let relay = b.start().await;
    let (mut alice, _) = Client::login(&relay, "alice", &alice_key).await;
    assert_eq!(
        one(alice.presence_query(&["bob"]).await),
        visible("bob", false, Some(seen))
    );
}

macro_rules! backends {
    ($backend:ident => [$($name:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::scenarios::$name(super::Backend::$backend()).await
            }
        )*
    };
}

macro_rules! all_backends_scenarios {
    ($m:ident, $backend:ident) => {
        mod $m {
            backends!($backend => [
                allowed_sees_presence_others_get_the_unknown_user_answer,
                last_seen_updated_on_disconnect,
                offline_never_carries_an_earlier_last_seen,
                replacement_by_a_newer_connection_does_not_flap,
                revoking_hides_and_stops_updates,
                caps_are_limit_exceeded_and_change_nothing,
                presence_rate_is_its_own_bucket,
                ephemeral_forwarded_online_dropped_offline_same_reply,
                subscribe_replaces_and_unsubscribes,
            ]);
        }
    };
}

all_backends_scenarios!(memory, memory);
all_backends_scenarios!(redb, redb);
all_backends_scenarios!(redis, redis);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_presence_survives_restart() {
    presence_survives_restart(Backend::redb()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_presence_survives_restart() {
    presence_survives_restart(Backend::redis()).await;
}

/// Two relays on one Redis: subscribers on one relay follow subjects on the
/// other.
mod cluster {
    use super::*;
    use common::process::RelayProcess;
    use common::redis::RedisServer;
    use hush_relay::{Config, RelayHandle};

    async fn relay(redis: &RedisServer) -> RelayHandle {
        within(
            "relay start",
            RelayHandle::start(Config::redis(redis.url())),
        )
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn presence_across_two_relays() {
        let redis = RedisServer::start();
        let (r1, r2) = (relay(&redis).await, relay(&redis).await);
        let bob_key = new_key();
        let (mut bob, _) = Client::login(&r1, "bob", &bob_key).await;
        bob.presence_allow(&["alice"]).await;
        let (mut alice, _) = Client::login(&r2, "alice", &new_key()).await;
        let (mut carol, _) = Client::login(&r2, "carol", &new_key()).await;
        assert_eq!(
            entries(alice.presence_subscribe(&["bob"]).await),
            vec![visible("bob", true, None)]
        );
        // Not allowed, on the other relay: the unknown-user answer.
        let about_bob = carol.request_text(query_text(5, &["bob"]), 5).await;
        let about_ghost = carol.request_text(query_text(5, &["ghost"]), 5).await;
        assert_eq!(about_bob.replace("\"bob\"", "\"ghost\""), about_ghost);

        // Offline on r1 is seen on r2, with last seen.
        let before = now_ms();
        drop(bob);
        let u = alice.next_presence_update().await;
        let seen = u.state.and_then(|s| s.last_seen_ms).expect("last seen");
        assert!(before <= seen && seen <= now_ms());
        assert_eq!(u, visible("bob", false, Some(seen)));

        // Online on r2, then replaced by a connection on r1: one update
        // (online), no flap for the replacement, then the real disconnect.
        let (_bob_r2, _) = Client::login(&r2, "bob", &bob_key).await;
        assert_eq!(
            alice.next_presence_update().await,
            visible("bob", true, Some(seen))
        );
        let (mut bob_r1, _) = Client::login(&r1, "bob", &bob_key).await;
        bob_r1.ping().await;
        // Revocation on r1 reaches the subscriber on r2.
        bob_r1.presence_allow(&[]).await;
        assert_eq!(alice.next_presence_update().await, hidden("bob"));
        // Allowed again from r1: visible and online (the replacement did not
        // make bob look offline).
        bob_r1.presence_allow(&["alice"]).await;
        assert_eq!(
            alice.next_presence_update().await,
            visible("bob", true, Some(seen))
        );
        // Ephemeral across relays reaches bob; to an offline user it is
        // dropped with the same reply.
        let rid = alice.rid();
        let reply = alice
            .request_text(ephemeral(rid, "bob", b"typing").encode(), rid)
            .await;
        let e = bob_r1.next_envelope().await;
        assert!(e.ephemeral && e.body.0 == b"typing");
        drop(Client::login(&r1, "dave", &new_key()).await);
        let offline = alice
            .request_text(ephemeral(rid, "dave", b"typing").encode(), rid)
            .await;
        assert_eq!(reply, offline);
    }

    /// A user's presence entry expires under a live connection (here: it is
    /// deleted): subscribers elsewhere see it offline, then online again
    /// once its relay re-creates the entry.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_recreated_by_its_relay_shows_online_again() {
        let redis = RedisServer::start();
        let start = |ttl_ms: u64| {
            let mut config = Config::redis(redis.url());
            config.presence_ttl = std::time::Duration::from_millis(ttl_ms);
            async move {
                within("relay start", RelayHandle::start(config))
                    .await
                    .unwrap()
            }
        };
        // r1 refreshes every 2 s, r2 re-checks every 100 ms.
        let (r1, r2) = (start(6000).await, start(300).await);
        let (mut bob, _) = Client::login(&r1, "bob", &new_key()).await;
        bob.presence_allow(&["alice"]).await;
        let (mut alice, _) = Client::login(&r2, "alice", &new_key()).await;
        alice.presence_subscribe(&["bob"]).await;
        let mut conn = ::redis::Client::open(redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let pttl = |mut c: ::redis::aio::MultiplexedConnection| async move {
            let t: i64 = ::redis::cmd("PTTL")
                .arg("hush:presence:bob")
                .query_async(&mut c)
                .await
                .unwrap();
            t
        };
        // Right after one of r1's refreshes (the TTL jumps back up), delete
        // the entry: r2 notices long before r1's next refresh.
        within("a refresh by r1", async {
            let mut last = pttl(conn.clone()).await;
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                let t = pttl(conn.clone()).await;
                if t > last {
                    break;
                }
                last = t;
            }
        })
        .await;
        let _: i64 = ::redis::cmd("DEL")
            .arg("hush:presence:bob")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            alice.next_presence_update().await,
            visible("bob", false, None)
        );
        assert_eq!(
            alice.next_presence_update().await,
            visible("bob", true, None)
        );
    }

    /// A relay that dies without closing its connections: its users'
    /// presence entries expire and subscribers elsewhere see them go
    /// offline (no last seen is recorded for them).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_of_a_killed_relay_go_offline_for_subscribers_elsewhere() {
        let redis = RedisServer::start();
        let mut config = Config::redis(redis.url());
        config.presence_ttl = std::time::Duration::from_millis(900);
        let r1 = within("relay start", RelayHandle::start(config))
            .await
            .unwrap();
        let r2 = RelayProcess::start(&redis, 1);
        let (mut bob, _) = Client::login_url(&r2.url, "bob", &new_key()).await;
        bob.presence_allow(&["alice"]).await;
        let (mut alice, _) = Client::login(&r1, "alice", &new_key()).await;
        assert_eq!(
            entries(alice.presence_subscribe(&["bob"]).await),
            vec![visible("bob", true, None)]
        );
        drop(r2);
        assert_eq!(
            alice.next_presence_update().await,
            visible("bob", false, None)
        );
    }
}
