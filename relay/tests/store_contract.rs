//! The `Store` contract, checked directly against every backend (adding a
//! backend is one line at the bottom): id allocation, mailbox bounds and
//! byte accounting, one-time prekey popping, publish caps, reset and
//! retention sweep; device lists (only ever replaced by a newer version,
//! deleted with the user) and device addresses (`user/N`) kept like users.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use hush_protocol::devices::{DeviceEntry, SignedDeviceList};
use hush_protocol::frame::{OneTimePrekey, SignedPrekey};
use hush_protocol::{Body, PublicKeyBytes, SignatureBytes, UserId};
use hush_relay::Store;
use hush_relay::store::{
    AppendOutcome, AuthOutcome, DeviceListOutcome, MailboxLimits, NewEnvelope, PublishOutcome,
    PublishedKeys,
};

fn user(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

fn keys() -> PublishedKeys {
    PublishedKeys {
        identity_dh: PublicKeyBytes([1; 32]),
        identity_dh_sig: SignatureBytes([2; 64]),
        signed_prekey: SignedPrekey {
            id: 3,
            key: PublicKeyBytes([4; 32]),
            signature: SignatureBytes([5; 64]),
        },
    }
}

fn opks(ids: impl IntoIterator<Item = u32>) -> Vec<OneTimePrekey> {
    ids.into_iter()
        .map(|id| OneTimePrekey {
            id,
            key: PublicKeyBytes([id as u8; 32]),
        })
        .collect()
}

const ROOMY: MailboxLimits = MailboxLimits {
    max_envelopes: 1000,
    max_bytes: 1 << 20,
};

fn env(from: &str, at: u64, body: &[u8]) -> NewEnvelope {
    NewEnvelope {
        from: user(from),
        accepted_at: at,
        body: Body(body.to_vec()),
    }
}

async fn register<S: Store>(s: &S, name: &str) {
    let out = s
        .register_or_authenticate(&user(name), &PublicKeyBytes([9; 32]))
        .await
        .unwrap();
    assert!(matches!(out, AuthOutcome::Ok { .. }), "{out:?}");
}

async fn append_id<S: Store>(s: &S, to: &str, e: NewEnvelope, limits: MailboxLimits) -> u64 {
    match s.append(&user(to), e, limits).await.unwrap() {
        AppendOutcome::Appended(stored) => stored.id,
        other => panic!("not appended: {other:?}"),
    }
}

fn device_list(version: u64, ids: &[u32]) -> SignedDeviceList {
    SignedDeviceList {
        version,
        devices: ids
            .iter()
            .map(|&id| DeviceEntry {
                id,
                signing_key: PublicKeyBytes([id as u8; 32]),
                identity_dh: PublicKeyBytes([id as u8 + 100; 32]),
            })
            .collect(),
        signature: SignatureBytes([version as u8; 64]),
    }
}

mod contract {
    use super::*;

    pub async fn device_lists_only_move_forward<S: Store>(s: S) {
        register(&s, "alice").await;
        let alice = user("alice");
        assert_eq!(s.device_list(&alice).await.unwrap(), None);
        assert_eq!(
            s.identity_key(&alice).await.unwrap(),
            Some(PublicKeyBytes([9; 32]))
        );
        assert_eq!(s.identity_key(&user("nobody")).await.unwrap(), None);
        let v2 = device_list(2, &[1, 2]);
        assert_eq!(
            s.put_device_list(&alice, v2.clone()).await.unwrap(),
            DeviceListOutcome::Stored
        );
        assert_eq!(s.device_list(&alice).await.unwrap(), Some(v2.clone()));
        for older in [2, 1] {
            assert_eq!(
                s.put_device_list(&alice, device_list(older, &[1]))
                    .await
                    .unwrap(),
                DeviceListOutcome::Stale(v2.clone()),
                "version {older}"
            );
        }
        // Versions compare as numbers, not as text.
        let v10 = device_list(10, &[1, 3]);
        assert_eq!(
            s.put_device_list(&alice, v10.clone()).await.unwrap(),
            DeviceListOutcome::Stored
        );
        let big = device_list(u64::MAX, &[1]);
        assert_eq!(
            s.put_device_list(&alice, big.clone()).await.unwrap(),
            DeviceListOutcome::Stored
        );
        assert_eq!(s.device_list(&alice).await.unwrap(), Some(big));
        assert!(s.reset_user(&alice).await.unwrap());
        assert_eq!(s.device_list(&alice).await.unwrap(), None);
    }

    pub async fn device_addresses_are_kept_like_users<S: Store>(s: S) {
        register(&s, "alice").await;
        let dev2 = user("alice").device_address(2);
        let key = PublicKeyBytes([2; 32]);
        let out = s.register_or_authenticate(&dev2, &key).await.unwrap();
        assert!(
            matches!(
                out,
                AuthOutcome::Ok {
                    registered: true,
                    ..
                }
            ),
            "{out:?}"
        );
        let e = NewEnvelope {
            from: user("bob").device_address(3),
            accepted_at: 1,
            body: Body(b"copy".to_vec()),
        };
        let AppendOutcome::Appended(stored) = s.append(&dev2, e, ROOMY).await.unwrap() else {
            panic!("not appended")
        };
        assert_eq!(stored.id, 1);
        // Device 1's mailbox (the account's) is apart.
        assert_eq!(
            append_id(&s, "alice", env("bob", 1, b"one"), ROOMY).await,
            1
        );
        let got = s.mailbox_after(&dev2, 0, 10).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].from.as_str(), "bob/3");
        assert_eq!(got[0].body.0, b"copy");
        assert_eq!(s.ack(&dev2, vec![1]).await.unwrap(), 1);
        assert!(s.mailbox_after(&dev2, 0, 10).await.unwrap().is_empty());
        assert_eq!(
            s.mailbox_after(&user("alice"), 0, 10).await.unwrap().len(),
            1
        );
        assert!(s.reset_user(&dev2).await.unwrap());
        assert!(s.user_exists(&user("alice")).await.unwrap());
    }

    pub async fn presence_allow_list_and_last_seen<S: Store>(s: S) {
        register(&s, "bob").await;
        register(&s, "alice").await;
        register(&s, "carol").await;
        let (bob, alice, carol, ghost) = (user("bob"), user("alice"), user("carol"), user("ghost"));
        // Default: empty list, never seen; only oneself sees oneself.
        assert!(s.presence_allow_list(&bob).await.unwrap().is_empty());
        assert_eq!(
            s.presence_view(&alice, &[bob.clone(), alice.clone()])
                .await
                .unwrap(),
            vec![None, Some(None)]
        );
        s.set_presence_allow(&bob, vec![carol.clone(), alice.clone(), ghost.clone()])
            .await
            .unwrap();
        assert_eq!(
            s.presence_allow_list(&bob).await.unwrap(),
            vec![alice.clone(), carol.clone(), ghost.clone()]
        );
        s.set_last_seen(&bob, 1234).await.unwrap();
        // An unknown subject looks exactly like one that does not allow.
        assert_eq!(
            s.presence_view(&alice, &[bob.clone(), ghost.clone(), carol.clone()])
                .await
                .unwrap(),
            vec![Some(Some(1234)), None, None]
        );
        assert_eq!(
            s.presence_watchers(&bob, &[alice.clone(), bob.clone(), user("dave")])
                .await
                .unwrap(),
            (vec![true, true, false], Some(1234))
        );
        assert_eq!(
            s.presence_watchers(&ghost, std::slice::from_ref(&alice))
                .await
                .unwrap(),
            (vec![false], None)
        );
        // Replaced whole; last seen moves.
        s.set_presence_allow(&bob, vec![carol.clone()])
            .await
            .unwrap();
        s.set_last_seen(&bob, 5678).await.unwrap();
        assert_eq!(
            s.presence_allow_list(&bob).await.unwrap(),
            vec![carol.clone()]
        );
        assert_eq!(
            s.presence_view(&alice, std::slice::from_ref(&bob))
                .await
                .unwrap(),
            vec![None]
        );
        assert_eq!(
            s.presence_view(&carol, std::slice::from_ref(&bob))
                .await
                .unwrap(),
            vec![Some(Some(5678))]
        );
        s.set_presence_allow(&bob, Vec::new()).await.unwrap();
        assert!(s.presence_allow_list(&bob).await.unwrap().is_empty());
        // Another user's list is untouched by bob's.
        s.set_presence_allow(&alice, vec![bob.clone()])
            .await
            .unwrap();
        s.set_presence_allow(&bob, vec![alice.clone()])
            .await
            .unwrap();
        assert_eq!(
            s.presence_allow_list(&alice).await.unwrap(),
            vec![bob.clone()]
        );
        // Nothing is recorded for an unknown user.
        s.set_presence_allow(&ghost, vec![alice.clone()])
            .await
            .unwrap();
        s.set_last_seen(&ghost, 1).await.unwrap();
        assert!(s.presence_allow_list(&ghost).await.unwrap().is_empty());
        assert_eq!(
            s.presence_view(&alice, std::slice::from_ref(&ghost))
                .await
                .unwrap(),
            vec![None]
        );
        // A reset forgets both.
        assert!(s.reset_user(&bob).await.unwrap());
        register(&s, "bob").await;
        assert!(s.presence_allow_list(&bob).await.unwrap().is_empty());
        assert_eq!(
            s.presence_view(&bob, std::slice::from_ref(&bob))
                .await
                .unwrap(),
            vec![Some(None)]
        );
    }

    pub async fn registration_binds_the_key<S: Store>(s: S) {
        let u = user("alice");
        let k1 = PublicKeyBytes([1; 32]);
        let k2 = PublicKeyBytes([2; 32]);
        let first = s.register_or_authenticate(&u, &k1).await.unwrap();
        assert!(matches!(
            first,
            AuthOutcome::Ok {
                registered: true,
                ..
            }
        ));
        let again = s.register_or_authenticate(&u, &k1).await.unwrap();
        assert!(matches!(
            again,
            AuthOutcome::Ok {
                registered: false,
                ..
            }
        ));
        let other = s.register_or_authenticate(&u, &k2).await.unwrap();
        assert_eq!(other, AuthOutcome::KeyMismatch);
        assert!(s.user_exists(&u).await.unwrap());
        assert!(!s.user_exists(&user("bob")).await.unwrap());
    }

    pub async fn ids_start_at_one_and_increase<S: Store>(s: S) {
        register(&s, "bob").await;
        for i in 1..=5 {
            assert_eq!(append_id(&s, "bob", env("a", 1, b"x"), ROOMY).await, i);
        }
        s.ack(&user("bob"), vec![1, 2, 3, 4, 5]).await.unwrap();
        assert_eq!(
            append_id(&s, "bob", env("a", 1, b"x"), ROOMY).await,
            6,
            "ids are never reused"
        );
        let after = s.mailbox_after(&user("bob"), 0, 10).await.unwrap();
        assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), vec![6]);
    }

    pub async fn mailbox_after_pages_in_id_order<S: Store>(s: S) {
        register(&s, "bob").await;
        for i in 0..10u8 {
            append_id(&s, "bob", env("a", u64::from(i), &[i]), ROOMY).await;
        }
        let page = s.mailbox_after(&user("bob"), 3, 4).await.unwrap();
        assert_eq!(
            page.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![4, 5, 6, 7]
        );
        assert_eq!(page[0].body.0, vec![3]);
        assert_eq!(page[0].from.as_str(), "a");
        assert!(
            s.mailbox_after(&user("bob"), 10, 4)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.mailbox_after(&user("bob"), u64::MAX, 4)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.mailbox_after(&user("nobody"), 0, 4)
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn append_to_unknown_user_is_refused<S: Store>(s: S) {
        let out = s
            .append(&user("ghost"), env("a", 1, b"x"), ROOMY)
            .await
            .unwrap();
        assert_eq!(out, AppendOutcome::UnknownUser);
    }

    pub async fn mailbox_bounds_count_depth_and_bytes<S: Store>(s: S) {
        register(&s, "bob").await;
        let limits = MailboxLimits {
            max_envelopes: 3,
            max_bytes: 10,
        };
        append_id(&s, "bob", env("a", 1, b"1234"), limits).await;
        append_id(&s, "bob", env("a", 1, b"1234"), limits).await;
        let full = s
            .append(&user("bob"), env("a", 1, b"123"), limits)
            .await
            .unwrap();
        assert_eq!(full, AppendOutcome::MailboxFull, "bytes");
        append_id(&s, "bob", env("a", 1, b"12"), limits).await;
        let full = s
            .append(&user("bob"), env("a", 1, b""), limits)
            .await
            .unwrap();
        assert_eq!(full, AppendOutcome::MailboxFull, "depth");
        // Acks give back both depth and bytes; unknown ids change nothing.
        assert_eq!(s.ack(&user("bob"), vec![1, 99]).await.unwrap(), 1);
        append_id(&s, "bob", env("a", 1, b"1234"), limits).await;
        let stats = s.stats().await.unwrap();
        assert_eq!((stats.envelopes, stats.envelope_bytes), (3, 10));
    }

    /// Acks in every shape a client or an attacker sends: a consecutive
    /// run, repeats, scattered ids far apart, ids never assigned, another
    /// user's ids; each deletes exactly what it names in the acker's own
    /// mailbox and gives its bytes back.
    pub async fn acks_delete_exactly_what_they_name<S: Store>(s: S) {
        register(&s, "bob").await;
        register(&s, "carol").await;
        for i in 1..=40u8 {
            append_id(&s, "bob", env("a", 1, &vec![i; usize::from(i)]), ROOMY).await;
        }
        let carol_id = append_id(&s, "carol", env("a", 1, b"carol's"), ROOMY).await;
        let bytes = |ids: &[u64]| ids.iter().sum::<u64>();
        let mut left = bytes(&(1..=40).collect::<Vec<u64>>());
        // A consecutive run with a repeat: ids 3..=10.
        let run: Vec<u64> = (3..=10).chain([5, 10]).collect();
        assert_eq!(s.ack(&user("bob"), run).await.unwrap(), 8);
        left -= bytes(&(3..=10).collect::<Vec<u64>>());
        // Scattered ids, one already gone, one never assigned.
        assert_eq!(
            s.ack(&user("bob"), vec![40, 1, 25, 4, 1_000_000])
                .await
                .unwrap(),
            3
        );
        left -= 40 + 1 + 25;
        // Carol's id, acked by bob, stays in carol's mailbox.
        s.ack(&user("bob"), vec![carol_id]).await.unwrap();
        let stats = s.stats().await.unwrap();
        assert_eq!(
            (stats.envelopes, stats.envelope_bytes),
            (40 - 11 + 1, left + 7)
        );
        let remaining: Vec<u64> = s
            .mailbox_after(&user("bob"), 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        let expected: Vec<u64> = (1..=40)
            .filter(|i| !(3..=10).contains(i) && ![1, 25, 40].contains(i))
            .collect();
        assert_eq!(remaining, expected);
        assert_eq!(
            s.mailbox_after(&user("carol"), 0, 10).await.unwrap().len(),
            1
        );
    }

    pub async fn fetch_pops_lowest_prekey_once<S: Store>(s: S) {
        register(&s, "bob").await;
        assert_eq!(
            s.fetch_bundle(&user("bob")).await.unwrap(),
            None,
            "no keys yet"
        );
        let out = s
            .publish_keys(&user("bob"), keys(), opks([30, 10, 20]), 500)
            .await
            .unwrap();
        assert_eq!(
            out,
            PublishOutcome::Published {
                one_time_prekeys: 3
            }
        );
        let mut got = Vec::new();
        for _ in 0..4 {
            let b = s.fetch_bundle(&user("bob")).await.unwrap().unwrap();
            assert_eq!(b.keys, keys());
            assert_eq!(b.identity_key, PublicKeyBytes([9; 32]));
            got.push((b.one_time_prekey.map(|o| o.id), b.remaining));
        }
        assert_eq!(
            got,
            vec![(Some(10), 2), (Some(20), 1), (Some(30), 0), (None, 0)]
        );
        let (ik, k) = s.lookup_identity(&user("bob")).await.unwrap().unwrap();
        assert_eq!((ik, k), (PublicKeyBytes([9; 32]), keys()));
    }

    pub async fn publish_cap_refuses_the_whole_upload<S: Store>(s: S) {
        register(&s, "bob").await;
        s.publish_keys(&user("bob"), keys(), opks(1..=4), 5)
            .await
            .unwrap();
        // Replacing existing ids does not count against the cap.
        let out = s
            .publish_keys(&user("bob"), keys(), opks(1..=5), 5)
            .await
            .unwrap();
        assert_eq!(
            out,
            PublishOutcome::Published {
                one_time_prekeys: 5
            }
        );
        let out = s
            .publish_keys(&user("bob"), keys(), opks(5..=6), 5)
            .await
            .unwrap();
        assert_eq!(
            out,
            PublishOutcome::TooManyPrekeys {
                would_store: 6,
                max: 5
            }
        );
        let b = s.fetch_bundle(&user("bob")).await.unwrap().unwrap();
        assert_eq!(b.remaining, 4, "refused upload stored nothing");
        let out = s
            .publish_keys(&user("ghost"), keys(), vec![], 5)
            .await
            .unwrap();
        assert_eq!(out, PublishOutcome::UnknownUser);
    }

    pub async fn reset_user_deletes_everything<S: Store>(s: S) {
        register(&s, "bob").await;
        register(&s, "carol").await;
        s.publish_keys(&user("bob"), keys(), opks(1..=3), 500)
            .await
            .unwrap();
        append_id(&s, "bob", env("a", 1, b"x"), ROOMY).await;
        append_id(&s, "bob", env("a", 1, b"y"), ROOMY).await;
        append_id(&s, "carol", env("a", 1, b"z"), ROOMY).await;
        assert!(s.reset_user(&user("bob")).await.unwrap());
        assert!(!s.reset_user(&user("bob")).await.unwrap());
        assert!(!s.user_exists(&user("bob")).await.unwrap());
        assert_eq!(s.fetch_bundle(&user("bob")).await.unwrap(), None);
        assert!(
            s.mailbox_after(&user("bob"), 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Re-registered: a fresh counter, no old prekeys.
        let out = s
            .register_or_authenticate(&user("bob"), &PublicKeyBytes([7; 32]))
            .await
            .unwrap();
        assert!(matches!(
            out,
            AuthOutcome::Ok {
                registered: true,
                one_time_prekeys: 0,
                has_keys: false,
                last_queued: 0
            }
        ));
        assert_eq!(append_id(&s, "bob", env("a", 1, b"x"), ROOMY).await, 1);
        // Others untouched.
        assert_eq!(
            s.mailbox_after(&user("carol"), 0, 10).await.unwrap().len(),
            1
        );
    }

    pub async fn sweep_deletes_only_expired<S: Store>(s: S) {
        register(&s, "bob").await;
        register(&s, "carol").await;
        append_id(&s, "bob", env("a", 100, b"old"), ROOMY).await;
        append_id(&s, "bob", env("a", 200, b"new"), ROOMY).await;
        append_id(&s, "carol", env("a", 150, b"old"), ROOMY).await;
        assert_eq!(s.sweep_expired(180).await.unwrap(), 2);
        let bob = s.mailbox_after(&user("bob"), 0, 10).await.unwrap();
        assert_eq!(bob.iter().map(|e| e.id).collect::<Vec<_>>(), vec![2]);
        assert!(
            s.mailbox_after(&user("carol"), 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let stats = s.stats().await.unwrap();
        assert_eq!(
            (stats.users, stats.envelopes, stats.envelope_bytes),
            (2, 1, 3)
        );
    }

    pub async fn concurrent_appends_get_distinct_consecutive_ids<S: Store>(s: S) {
        let s = std::sync::Arc::new(s);
        register(&*s, "bob").await;
        let mut tasks = Vec::new();
        for t in 0..8u8 {
            let s = std::sync::Arc::clone(&s);
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..25u8 {
                    ids.push(append_id(&*s, "bob", env("a", 1, &[t, i]), ROOMY).await);
                }
                ids
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            let ids = t.await.unwrap();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "one task's ids increase"
            );
            all.extend(ids);
        }
        all.sort_unstable();
        assert_eq!(all, (1..=200).collect::<Vec<u64>>());
    }
}

macro_rules! contract_tests {
    ($m:ident, $make:expr) => {
        mod $m {
            use super::*;
            contract_tests!(@each $make;
                registration_binds_the_key,
                presence_allow_list_and_last_seen,
                ids_start_at_one_and_increase,
                mailbox_after_pages_in_id_order,
                append_to_unknown_user_is_refused,
                mailbox_bounds_count_depth_and_bytes,
                acks_delete_exactly_what_they_name,
                fetch_pops_lowest_prekey_once,
                publish_cap_refuses_the_whole_upload,
                reset_user_deletes_everything,
                sweep_deletes_only_expired,
                concurrent_appends_get_distinct_consecutive_ids,
                device_lists_only_move_forward,
                device_addresses_are_kept_like_users,
            );
        }
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                #[allow(unused_variables)]
                let dir = tempfile::tempdir().unwrap();
                let make = $make;
                // `_server` keeps a backend process (Redis) alive.
                let (_server, store) = make(dir.path().to_owned()).await;
                contract::$name(store).await;
            }
        )*
    };
}

// One line per backend.
contract_tests!(memory, |_| async {
    ((), hush_relay::MemoryStore::new().unwrap())
});
contract_tests!(redb, |p: std::path::PathBuf| async move {
    ((), hush_relay::RedbStore::open(&p).unwrap())
});
contract_tests!(redis, |_| async {
    let server = common::redis::RedisServer::start();
    let store = hush_relay::RedisStore::connect(&server.url())
        .await
        .unwrap();
    (server, store)
});

/// Redis forgets its scripts (a restart without persistence, `SCRIPT
/// FLUSH`): the next appends reload `append.lua` and succeed, with no error
/// to the sender and no gap in the ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_appends_go_on_after_a_script_flush() {
    let server = common::redis::RedisServer::start();
    let store = hush_relay::RedisStore::connect(&server.url())
        .await
        .unwrap();
    register(&store, "bob").await;
    assert_eq!(append_id(&store, "bob", env("a", 1, b"x"), ROOMY).await, 1);
    let mut conn = ::redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = ::redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(append_id(&store, "bob", env("a", 2, b"y"), ROOMY).await, 2);
    // And a batch of concurrent appends after another flush.
    let () = ::redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let bob = user("bob");
    let appends = (0..20u8).map(|i| store.append(&bob, env("a", 3, &[i]), ROOMY));
    let mut ids = Vec::new();
    for r in futures_util::future::join_all(appends).await {
        match r.unwrap() {
            AppendOutcome::Appended(e) => ids.push(e.id),
            other => panic!("append refused: {other:?}"),
        }
    }
    assert_eq!(ids, (3..=22).collect::<Vec<u64>>());
}
