//! Relay behaviour, end to end: the relay runs in-process on port 0 and is
//! driven over real WebSockets with real Ed25519 keys. Every scenario runs
//! against every store backend (see `backends!` at the bottom: adding a
//! backend is one line).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use hush_protocol::frame::*;
use hush_protocol::{Body, ClientFrame, ErrorCode, ServerFrame, close};
use tokio_tungstenite::tungstenite::Message;

mod scenarios {
    use super::*;

    pub async fn registration(b: Backend) {
        let relay = b.start().await;
        let key = new_key();
        let (_c, ok) = Client::login(&relay, "alice", &key).await;
        assert!(ok.registered, "first auth registers");
        assert_eq!((ok.one_time_prekeys, ok.has_keys), (0, false));
        assert_eq!(ok.user_id.as_str(), "alice");
        drop(_c);
        let (_c, ok) = Client::login(&relay, "alice", &key).await;
        assert!(!ok.registered, "second auth only authenticates");
    }

    pub async fn wrong_key_rejected(b: Backend) {
        let relay = b.start().await;
        let _ = Client::login(&relay, "alice", &new_key()).await;
        let (mut ws, c) = connect(&relay).await;
        let f = auth_frame(7, &c, &user("alice"), &new_key());
        within(
            "send",
            futures_util::SinkExt::send(&mut ws, Message::Text(f.encode().into())),
        )
        .await
        .unwrap();
        let (frames, code) = raw_until_close(&mut ws).await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(error_code(&frames[0]), Some(ErrorCode::AuthFailed));
        assert_eq!(rid_of(&frames[0]), Some(7));
        assert_eq!(code, Some(close::AUTH_FAILED));
    }

    pub async fn bad_auth_signature_rejected(b: Backend) {
        let relay = b.start().await;
        let (mut ws, c) = connect(&relay).await;
        let key = new_key();
        // Signed over another challenge: a replayed or forged answer.
        let mut other = c.clone();
        other.challenge.0[0] ^= 1;
        let f = auth_frame(3, &other, &user("alice"), &key);
        within(
            "send",
            futures_util::SinkExt::send(&mut ws, Message::Text(f.encode().into())),
        )
        .await
        .unwrap();
        let (frames, code) = raw_until_close(&mut ws).await;
        assert_eq!(error_code(&frames[0]), Some(ErrorCode::AuthFailed));
        assert_eq!(code, Some(close::AUTH_FAILED));
        // And the id was not registered by the failed attempt.
        let (_c, ok) = Client::login(&relay, "alice", &new_key()).await;
        assert!(ok.registered);
    }

    pub async fn unauthenticated_frame_rejected(b: Backend) {
        let relay = b.start().await;
        let (mut ws, _) = connect(&relay).await;
        let ping = ClientFrame::Ping(Ping { rid: 11 }).encode();
        within(
            "send",
            futures_util::SinkExt::send(&mut ws, Message::Text(ping.into())),
        )
        .await
        .unwrap();
        let (frames, code) = raw_until_close(&mut ws).await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(error_code(&frames[0]), Some(ErrorCode::NotAuthenticated));
        assert_eq!(rid_of(&frames[0]), Some(11));
        assert_eq!(code, Some(close::AUTH_FAILED));
    }

    pub async fn auth_deadline_closes_connection(b: Backend) {
        let relay = b
            .start_with(|c| c.limits.auth_timeout = Duration::from_millis(150))
            .await;
        let (mut ws, _) = connect(&relay).await;
        let (frames, code) = raw_until_close(&mut ws).await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(error_code(&frames[0]), Some(ErrorCode::AuthTimeout));
        assert_eq!(rid_of(&frames[0]), None);
        assert_eq!(code, Some(close::AUTH_TIMEOUT));
    }

    pub async fn authenticated_connection_outlives_auth_deadline(b: Backend) {
        // Generous numbers so a loaded machine still logs in in time; the
        // sleep checks that nothing happens when the deadline passes.
        let relay = b
            .start_with(|c| c.limits.auth_timeout = Duration::from_secs(2))
            .await;
        let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        c.ping().await;
    }

    pub async fn online_delivery(b: Backend) {
        let relay = b.start().await;
        let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        // A `from` added by the client is ignored: the relay stamps the sender.
        let rid = alice.rid();
        alice
            .send_raw(format!(
                r#"{{"type":"send","rid":{rid},"to":"bob","body":"aGVsbG8=","from":"mallory"}}"#
            ))
            .await;
        let ServerFrame::Accepted(Accepted { id: Some(id), .. }) = alice.reply_to(rid).await else {
            panic!("not accepted")
        };
        assert_eq!(id, 1, "ids start at 1");
        let e = bob.next_envelope().await;
        assert_eq!(e.id, Some(1));
        assert_eq!(e.from.as_str(), "alice");
        assert_eq!(e.body.0, b"hello");
        assert!(!e.ephemeral);
        assert!(e.accepted_at > 1_600_000_000_000, "unix ms");
    }

    pub async fn offline_delivery_on_connect(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        drop(Client::login(&relay, "bob", &bob_key).await);
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        assert_eq!(alice.send_ok("bob", b"one").await, 1);
        assert_eq!(alice.send_ok("bob", b"two").await, 2);
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        let e1 = bob.next_envelope().await;
        let e2 = bob.next_envelope().await;
        assert_eq!((e1.id, e1.body.0.as_slice()), (Some(1), &b"one"[..]));
        assert_eq!((e2.id, e2.body.0.as_slice()), (Some(2), &b"two"[..]));
    }

    pub async fn unacknowledged_envelopes_redelivered_after_reconnect(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        alice.send_ok("bob", b"one").await;
        alice.send_ok("bob", b"two").await;
        assert_eq!(bob.next_envelope().await.id, Some(1));
        assert_eq!(bob.next_envelope().await.id, Some(2));
        drop(bob);
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(bob.next_envelope().await.id, Some(1));
        assert_eq!(bob.next_envelope().await.id, Some(2));
    }

    pub async fn acknowledged_envelopes_not_redelivered(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        alice.send_ok("bob", b"one").await;
        alice.send_ok("bob", b"two").await;
        alice.send_ok("bob", b"three").await;
        for _ in 0..3 {
            bob.next_envelope().await;
        }
        assert!(matches!(bob.ack(vec![1, 2]).await, ServerFrame::Acked(_)));
        drop(bob);
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        let e = bob.next_envelope().await;
        assert_eq!((e.id, e.body.0.as_slice()), (Some(3), &b"three"[..]));
        bob.ack(vec![3]).await;
        drop(bob);
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(bob.first_envelope_before_marker().await, None);
    }

    pub async fn fifo_order_many_envelopes(b: Backend) {
        let relay = b.start().await;
        let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let n = 300u64;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < n as usize {
                got.push(bob.next_envelope().await);
            }
            got
        });
        for i in 1..=n {
            assert_eq!(alice.send_ok("bob", format!("m{i}").as_bytes()).await, i);
        }
        let got = within("all envelopes", reader).await.unwrap();
        for (i, e) in got.iter().enumerate() {
            let i = i as u64 + 1;
            assert_eq!(e.id, Some(i));
            assert_eq!(e.body.0, format!("m{i}").into_bytes());
        }
    }

    /// A client need not wait for each reply: requests sent back to back are
    /// answered in request order, and the sends are committed and delivered
    /// in that order.
    pub async fn pipelined_requests_answered_in_order(b: Backend) {
        let relay = b.start().await;
        let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let n = 100u64;
        for rid in 1000..1000 + n {
            let f = if rid == 1050 {
                ClientFrame::Ping(Ping { rid })
            } else {
                ClientFrame::Send(SendEnvelope {
                    rid,
                    to: user("bob"),
                    body: Body(rid.to_be_bytes().to_vec()),
                    ephemeral: false,
                })
            };
            alice.send_raw(f.encode()).await;
        }
        let mut next_id = 1;
        for rid in 1000..1000 + n {
            let reply = alice.next_frame().await;
            assert_eq!(rid_of(&reply), Some(rid), "replies out of order: {reply:?}");
            match reply {
                ServerFrame::Pong(_) => assert_eq!(rid, 1050),
                ServerFrame::Accepted(Accepted { id: Some(id), .. }) => {
                    assert_eq!(id, next_id);
                    next_id += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        for id in 1..next_id {
            let e = bob.next_envelope().await;
            assert_eq!(e.id, Some(id));
            let rid = u64::from_be_bytes(e.body.0.try_into().unwrap());
            assert_eq!(rid, 999 + id + u64::from(id >= 51), "sender order kept");
        }
    }

    /// The recipient connects while several senders are sending: its backlog
    /// read races live pushes. Every envelope must arrive exactly once, in id
    /// order, with no gap.
    pub async fn connect_during_concurrent_sends_skips_nothing(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        drop(Client::login(&relay, "bob", &bob_key).await);
        let senders = 3;
        let per_sender = 150u64;
        let mut clients = Vec::new();
        for s in 0..senders {
            let (mut c, _) = Client::login(&relay, &format!("sender{s}"), &new_key()).await;
            // A backlog before bob connects.
            for i in 0..per_sender / 3 {
                c.send_ok("bob", format!("{s}:{i}").as_bytes()).await;
            }
            clients.push(c);
        }
        let mut tasks = Vec::new();
        for (s, mut c) in clients.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                for i in per_sender / 3..per_sender {
                    c.send_ok("bob", format!("{s}:{i}").as_bytes()).await;
                }
            }));
        }
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        let total = senders as u64 * per_sender;
        let mut last_per_sender = vec![None::<u64>; senders];
        for expected in 1..=total {
            let e = bob.next_envelope().await;
            assert_eq!(e.id, Some(expected), "gap, duplicate or reorder");
            let text = String::from_utf8(e.body.0).unwrap();
            let (s, i) = text.split_once(':').unwrap();
            let (s, i): (usize, u64) = (s.parse().unwrap(), i.parse().unwrap());
            assert!(
                last_per_sender[s].is_none_or(|last| i == last + 1),
                "sender order"
            );
            last_per_sender[s] = Some(i);
        }
        for t in tasks {
            within("senders", t).await.unwrap();
        }
        assert_eq!(
            bob.first_envelope_before_marker().await,
            None,
            "nothing extra"
        );
    }

    pub async fn one_time_prekey_handed_out_once_under_concurrent_fetches(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        let opks = 40u32;
        let rid = bob.rid();
        let ServerFrame::KeysPublished(kp) =
            bob.request(publish_frame(rid, &bob_key, 1..=opks)).await
        else {
            panic!("publish failed")
        };
        assert_eq!(kp.one_time_prekeys, opks);
        let fetchers = 8;
        let per = 10;
        let mut tasks = Vec::new();
        for f in 0..fetchers {
            let (mut c, _) = Client::login(&relay, &format!("fetcher{f}"), &new_key()).await;
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..per {
                    let rid = c.rid();
                    match c
                        .request(ClientFrame::FetchBundle(FetchBundle {
                            rid,
                            user_id: user("bob"),
                        }))
                        .await
                    {
                        ServerFrame::Bundle(b) => got.push(b.one_time_prekey.map(|o| o.id)),
                        other => panic!("fetch failed: {other:?}"),
                    }
                }
                got
            }));
        }
        let mut handed = Vec::new();
        let mut none = 0;
        for t in tasks {
            for o in within("fetchers", t).await.unwrap() {
                match o {
                    Some(id) => handed.push(id),
                    None => none += 1,
                }
            }
        }
        let unique: HashSet<u32> = handed.iter().copied().collect();
        assert_eq!(
            unique.len(),
            handed.len(),
            "a one-time prekey was handed out twice"
        );
        assert_eq!(unique, (1..=opks).collect::<HashSet<_>>());
        assert_eq!(none, fetchers * per - opks as usize);
    }

    pub async fn newest_connection_wins(b: Backend) {
        let relay = b.start().await;
        let key = new_key();
        let (mut old, _) = Client::login(&relay, "alice", &key).await;
        let (mut new, _) = Client::login(&relay, "alice", &key).await;
        assert_eq!(old.expect_close().await, Some(close::REPLACED));
        new.ping().await;
        // Deliveries go to the new connection.
        let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
        bob.send_ok("alice", b"hi").await;
        assert_eq!(new.next_envelope().await.body.0, b"hi");
    }

    /// A recipient that stops reading is closed with 4003 once its outbound
    /// queue is full, and loses nothing: its envelopes stay queued.
    pub async fn slow_consumer_closed_4003_and_loses_nothing(b: Backend) {
        let relay = b.start_with(|c| c.limits.outbound_queue = 4).await;
        let bob_key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let n = 200u64;
        let body = vec![7u8; 32 * 1024];
        for i in 1..=n {
            assert_eq!(alice.send_ok("bob", &body).await, i);
        }
        // Only now does bob read: the socket buffers and then the queue
        // filled up long before.
        let (frames, code) = bob.frames_until_close().await;
        assert_eq!(code, Some(close::SLOW_CONSUMER));
        assert!(
            (frames.len() as u64) < n,
            "closed before everything was pushed"
        );
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        for i in 1..=n {
            let e = bob.next_envelope().await;
            assert_eq!(e.id, Some(i));
            assert_eq!(e.body.0.len(), body.len());
        }
    }

    pub async fn publish_keys_with_bad_signature_rejected(b: Backend) {
        let relay = b.start().await;
        let key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &key).await;
        let rid = bob.rid();
        // Signed by another key than the registered one.
        let f = publish_frame(rid, &new_key(), [1, 2]);
        let reply = bob.request(f).await;
        assert_eq!(error_code(&reply), Some(ErrorCode::BadSignature));
        // A valid identity_dh signature with a tampered signed prekey.
        let rid = bob.rid();
        let ClientFrame::PublishKeys(mut p) = publish_frame(rid, &key, [1]) else {
            unreachable!()
        };
        p.signed_prekey.id += 1;
        let reply = bob.request(ClientFrame::PublishKeys(p)).await;
        assert_eq!(error_code(&reply), Some(ErrorCode::BadSignature));
        assert_eq!(rid_of(&reply), Some(rid));
        // Nothing was stored.
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let rid = alice.rid();
        let reply = alice
            .request(ClientFrame::FetchBundle(FetchBundle {
                rid,
                user_id: user("bob"),
            }))
            .await;
        assert_eq!(error_code(&reply), Some(ErrorCode::UnknownUser));
    }

    pub async fn fetched_bundle_carries_published_keys(b: Backend) {
        let relay = b.start().await;
        let key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &key).await;
        let rid = bob.rid();
        let ClientFrame::PublishKeys(p) = publish_frame(rid, &key, [5]) else {
            unreachable!()
        };
        bob.request(ClientFrame::PublishKeys(p.clone())).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let rid = alice.rid();
        let ServerFrame::Bundle(bundle) = alice
            .request(ClientFrame::FetchBundle(FetchBundle {
                rid,
                user_id: user("bob"),
            }))
            .await
        else {
            panic!("no bundle")
        };
        assert_eq!(bundle.identity_key, public(&key));
        assert_eq!(bundle.identity_dh, p.identity_dh);
        assert_eq!(bundle.identity_dh_sig, p.identity_dh_sig);
        assert_eq!(bundle.signed_prekey, p.signed_prekey);
        assert_eq!(bundle.one_time_prekey, Some(p.one_time_prekeys[0].clone()));
        // Too many in one upload is refused whole.
        let rid = bob.rid();
        let reply = bob.request(publish_frame(rid, &key, 1..=101)).await;
        assert_eq!(error_code(&reply), Some(ErrorCode::TooManyPrekeys));
    }

    pub async fn lookup_returns_identity_without_taking_a_prekey(b: Backend) {
        let relay = b.start().await;
        let key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &key).await;
        let rid = bob.rid();
        let ClientFrame::PublishKeys(p) = publish_frame(rid, &key, [9]) else {
            unreachable!()
        };
        bob.request(ClientFrame::PublishKeys(p.clone())).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let rid = alice.rid();
        let reply = alice
            .request(ClientFrame::Lookup(Lookup {
                rid,
                user_id: user("bob"),
            }))
            .await;
        assert_eq!(
            reply,
            ServerFrame::Identity(Identity {
                rid,
                user_id: user("bob"),
                identity_key: public(&key),
                identity_dh: p.identity_dh,
                identity_dh_sig: p.identity_dh_sig,
            })
        );
        let rid = alice.rid();
        let ServerFrame::Bundle(bundle) = alice
            .request(ClientFrame::FetchBundle(FetchBundle {
                rid,
                user_id: user("bob"),
            }))
            .await
        else {
            panic!("no bundle")
        };
        assert_eq!(
            bundle.one_time_prekey.map(|o| o.id),
            Some(9),
            "lookup took no prekey"
        );
        let rid = alice.rid();
        let reply = alice
            .request(ClientFrame::Lookup(Lookup {
                rid,
                user_id: user("nobody"),
            }))
            .await;
        assert_eq!(error_code(&reply), Some(ErrorCode::UnknownUser));
    }

    pub async fn auth_ok_reports_newest_queued_id(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        let (_bob, ok) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(ok.last_queued, 0);
        drop(_bob);
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        alice.send_ok("bob", b"1").await;
        alice.send_ok("bob", b"2").await;
        let (mut bob, ok) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(ok.last_queued, 2);
        bob.next_envelope().await;
        bob.next_envelope().await;
        bob.ack(vec![1, 2]).await;
        drop(bob);
        let (_bob, ok) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(ok.last_queued, 0, "empty mailbox");
    }

    pub async fn prekeys_low_sent_to_owner(b: Backend) {
        let relay = b.start().await;
        let key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &key).await;
        let rid = bob.rid();
        bob.request(publish_frame(rid, &key, 1..=3)).await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let rid = alice.rid();
        alice
            .request(ClientFrame::FetchBundle(FetchBundle {
                rid,
                user_id: user("bob"),
            }))
            .await;
        match bob.next_frame().await {
            ServerFrame::PrekeysLow(p) => assert_eq!(p.one_time_prekeys, 2),
            other => panic!("expected prekeys_low, got {other:?}"),
        }
        drop(bob);
        let (_bob, ok) = Client::login(&relay, "bob", &key).await;
        assert_eq!((ok.one_time_prekeys, ok.has_keys), (2, true));
    }

    pub async fn mailbox_full_refused_to_sender(b: Backend) {
        let relay = b
            .start_with(|c| {
                c.limits.mailbox_max_envelopes = 2;
                c.limits.mailbox_max_bytes = 10;
            })
            .await;
        let bob_key = new_key();
        drop(Client::login(&relay, "bob", &bob_key).await);
        drop(Client::login(&relay, "carol", &new_key()).await);
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        alice.send_ok("bob", b"1").await;
        alice.send_ok("bob", b"2").await;
        let reply = alice.send_to("bob", b"3").await;
        assert_eq!(error_code(&reply), Some(ErrorCode::MailboxFull));
        // Bytes bound.
        alice.send_ok("carol", b"12345678").await;
        let reply = alice.send_to("carol", b"123").await;
        assert_eq!(error_code(&reply), Some(ErrorCode::MailboxFull));
        // Acking makes room; the refused envelope was never stored.
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(bob.next_envelope().await.id, Some(1));
        assert_eq!(bob.next_envelope().await.id, Some(2));
        bob.ack(vec![1, 2]).await;
        assert_eq!(alice.send_ok("bob", b"4").await, 3);
        let e = bob.next_envelope().await;
        assert_eq!((e.id, e.body.0.as_slice()), (Some(3), &b"4"[..]));
    }

    pub async fn ephemeral_never_stored_and_reply_hides_presence(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        drop(Client::login(&relay, "bob", &bob_key).await);
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        let send = |rid| {
            ClientFrame::Send(SendEnvelope {
                rid,
                to: user("bob"),
                body: Body(b"typing".to_vec()),
                ephemeral: true,
            })
        };
        let offline_reply = alice.request(send(50)).await;
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        assert_eq!(
            bob.first_envelope_before_marker().await,
            None,
            "ephemeral was stored"
        );
        let online_reply = alice.request(send(50)).await;
        assert_eq!(offline_reply, online_reply, "reply reveals presence");
        assert_eq!(
            online_reply,
            ServerFrame::Accepted(Accepted { rid: 50, id: None })
        );
        let e = bob.next_envelope().await;
        assert!(e.ephemeral);
        assert_eq!(e.id, None);
        assert_eq!(e.from.as_str(), "alice");
        assert_eq!(e.body.0, b"typing");
    }

    pub async fn ack_of_foreign_or_unknown_id_has_no_effect(b: Backend) {
        let relay = b.start().await;
        let bob_key = new_key();
        drop(Client::login(&relay, "bob", &bob_key).await);
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        assert_eq!(alice.send_ok("bob", b"keep me").await, 1);
        assert!(matches!(
            alice.ack(vec![1, 999]).await,
            ServerFrame::Acked(_)
        ));
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        assert!(matches!(bob.ack(vec![999]).await, ServerFrame::Acked(_)));
        let e = bob.next_envelope().await;
        assert_eq!((e.id, e.body.0.as_slice()), (Some(1), &b"keep me"[..]));
    }

    pub async fn too_many_ack_ids_rejected(b: Backend) {
        let relay = b.start_with(|c| c.limits.max_ack_ids = 3).await;
        let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
        let reply = c.ack(vec![1, 2, 3, 4]).await;
        assert_eq!(error_code(&reply), Some(ErrorCode::TooManyIds));
    }

    pub async fn envelope_too_large_rejected(b: Backend) {
        let relay = b.start_with(|c| c.limits.max_envelope_bytes = 16).await;
        let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
        let reply = c.send_to("alice", &[0u8; 17]).await;
        assert_eq!(error_code(&reply), Some(ErrorCode::EnvelopeTooLarge));
        c.send_ok("alice", &[0u8; 16]).await;
    }

    // ---- bad input after authentication: answered, connection stays open

    async fn bad_input(b: Backend, text: &str, rid: Option<u64>, code: ErrorCode) {
        let relay = b.start().await;
        drop(Client::login(&relay, "bob", &new_key()).await);
        let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
        let e = c.expect_error(text.to_owned(), rid).await;
        assert_eq!(e.code, code, "{e:?}");
        assert_eq!(e.rid, rid);
        c.ping().await; // still open
    }

    pub async fn malformed_json_is_bad_frame(b: Backend) {
        bad_input(b, r#"{"type":"ping","rid":5"#, None, ErrorCode::BadFrame).await;
    }

    pub async fn unknown_type_is_unknown_type(b: Backend) {
        bad_input(
            b,
            r#"{"type":"subscribe","rid":5}"#,
            Some(5),
            ErrorCode::UnknownType,
        )
        .await;
    }

    pub async fn missing_field_is_bad_frame(b: Backend) {
        bad_input(
            b,
            r#"{"type":"send","rid":5,"to":"bob"}"#,
            Some(5),
            ErrorCode::BadFrame,
        )
        .await;
    }

    pub async fn bad_base64_is_bad_base64(b: Backend) {
        bad_input(
            b,
            r#"{"type":"send","rid":5,"to":"bob","body":"%%%"}"#,
            Some(5),
            ErrorCode::BadBase64,
        )
        .await;
    }

    pub async fn wrong_size_is_bad_size(b: Backend) {
        let short = hush_protocol::bytes::encode_b64(&[1u8; 31]);
        let sig = hush_protocol::bytes::encode_b64(&[1u8; 64]);
        let text = format!(
            r#"{{"type":"publish_keys","rid":5,"identity_dh":"{short}","identity_dh_sig":"{sig}",
                "signed_prekey":{{"id":1,"key":"{short}","signature":"{sig}"}}}}"#
        );
        bad_input(b, &text, Some(5), ErrorCode::BadSize).await;
    }

    pub async fn invalid_user_id_is_invalid_user_id(b: Backend) {
        bad_input(
            b,
            r#"{"type":"send","rid":5,"to":"Bob!","body":"aGk="}"#,
            Some(5),
            ErrorCode::InvalidUserId,
        )
        .await;
    }

    pub async fn unknown_recipient_is_unknown_user(b: Backend) {
        bad_input(
            b,
            r#"{"type":"send","rid":5,"to":"nobody","body":"aGk="}"#,
            Some(5),
            ErrorCode::UnknownUser,
        )
        .await;
    }

    pub async fn second_auth_is_already_authenticated(b: Backend) {
        let relay = b.start().await;
        let key = new_key();
        let (mut c, _) = Client::login(&relay, "alice", &key).await;
        let ch = Challenge {
            v: 1,
            relay_id: c.relay_id.clone(),
            challenge: c.challenge.into(),
        };
        let f = auth_frame(77, &ch, &user("alice"), &key);
        let reply = c.request(f).await;
        assert_eq!(error_code(&reply), Some(ErrorCode::AlreadyAuthenticated));
        c.ping().await;
    }

    pub async fn rate_over_limit_is_rate_limited(b: Backend) {
        let relay = b
            .start_with(|c| {
                // No refill: the outcome cannot depend on timing.
                c.limits.rate_per_sec = 0;
                c.limits.rate_burst = 3;
            })
            .await;
        let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
        for rid in 100..103 {
            c.send_raw(ClientFrame::Ping(Ping { rid }).encode()).await;
        }
        let e = c
            .expect_error(ClientFrame::Ping(Ping { rid: 103 }).encode(), Some(103))
            .await;
        assert_eq!(e.code, ErrorCode::RateLimited);
        for rid in 100..103 {
            assert!(matches!(c.reply_to(rid).await, ServerFrame::Pong(_)));
        }
    }

    pub async fn over_long_frame_closes_1009(b: Backend) {
        let relay = b.start_with(|c| c.limits.max_frame_bytes = 1024).await;
        let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
        let pad = "x".repeat(1100);
        c.send_raw(format!(r#"{{"type":"ping","rid":1,"pad":"{pad}"}}"#))
            .await;
        assert_eq!(c.expect_close().await, Some(close::MESSAGE_TOO_BIG));
    }

    pub async fn frame_over_hard_cap_closes_1009(b: Backend) {
        let relay = b.start_with(|c| c.limits.max_frame_bytes = 4096).await;
        let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
        // More than twice max_frame_bytes: refused by the WebSocket layer.
        let pad = "x".repeat(20_000);
        c.send_raw(format!(r#"{{"type":"ping","rid":1,"pad":"{pad}"}}"#))
            .await;
        assert_eq!(c.expect_close().await, Some(close::MESSAGE_TOO_BIG));
    }

    pub async fn binary_frame_closes_1003(b: Backend) {
        let relay = b.start().await;
        let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
        c.send_message(Message::Binary(vec![1, 2, 3].into())).await;
        assert_eq!(c.expect_close().await, Some(close::UNSUPPORTED_DATA));
    }

    pub async fn bad_frame_before_auth_closes_4001(b: Backend) {
        let relay = b.start().await;
        let (mut ws, _) = connect(&relay).await;
        within(
            "send",
            futures_util::SinkExt::send(&mut ws, Message::Text("not json".into())),
        )
        .await
        .unwrap();
        let (frames, code) = raw_until_close(&mut ws).await;
        assert_eq!(error_code(&frames[0]), Some(ErrorCode::BadFrame));
        assert_eq!(code, Some(close::AUTH_FAILED));
    }

    pub async fn connections_per_address_capped_with_http_429(b: Backend) {
        let relay = b.start_with(|c| c.limits.max_connections_per_ip = 2).await;
        let _one = connect(&relay).await;
        let _two = connect(&relay).await;
        let third = within("connect", tokio_tungstenite::connect_async(relay.ws_url())).await;
        match third {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 429);
            }
            other => panic!("third connection was not refused: {other:?}"),
        }
    }

    pub async fn healthz_answers_ok(b: Backend) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let relay = b.start().await;
        let mut s = within("tcp", tokio::net::TcpStream::connect(relay.local_addr()))
            .await
            .unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        within("healthz", s.read_to_string(&mut out)).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("ok"), "{out}");
    }

    pub async fn shutdown_closes_connections_1001(b: Backend) {
        let relay = b.start().await;
        let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
        let stop = tokio::spawn(relay.shutdown());
        assert_eq!(c.expect_close().await, Some(close::GOING_AWAY));
        within("shutdown", stop).await.unwrap().unwrap();
    }

    // ---- durable backends only

    pub async fn restart_keeps_directory_and_mailboxes(b: Backend) {
        let relay = b.start().await;
        let relay_id = relay.relay_id().to_owned();
        let bob_key = new_key();
        let alice_key = new_key();
        let (mut bob, _) = Client::login(&relay, "bob", &bob_key).await;
        let rid = bob.rid();
        bob.request(publish_frame(rid, &bob_key, 1..=5)).await;
        drop(bob);
        let (mut alice, _) = Client::login(&relay, "alice", &alice_key).await;
        for i in 1..=3u64 {
            assert_eq!(alice.send_ok("bob", format!("m{i}").as_bytes()).await, i);
        }
        drop(alice);
        within("shutdown", relay.shutdown()).await.unwrap();

        let relay = b.start().await;
        assert_eq!(relay.relay_id(), relay_id, "relay id persists");
        // The registered key still holds the id.
        let (mut ws, c) = connect(&relay).await;
        let f = auth_frame(1, &c, &user("bob"), &new_key());
        within(
            "send",
            futures_util::SinkExt::send(&mut ws, Message::Text(f.encode().into())),
        )
        .await
        .unwrap();
        assert_eq!(raw_until_close(&mut ws).await.1, Some(close::AUTH_FAILED));
        let (mut bob, ok) = Client::login(&relay, "bob", &bob_key).await;
        assert!(!ok.registered);
        assert_eq!((ok.one_time_prekeys, ok.has_keys), (5, true));
        for i in 1..=3u64 {
            let e = bob.next_envelope().await;
            assert_eq!(e.id, Some(i));
            assert_eq!(e.body.0, format!("m{i}").into_bytes());
            assert_eq!(e.from.as_str(), "alice");
        }
        // The id counter survived too: no id is reused.
        let (mut alice, _) = Client::login(&relay, "alice", &alice_key).await;
        assert_eq!(alice.send_ok("bob", b"m4").await, 4);
        assert_eq!(bob.next_envelope().await.id, Some(4));
    }

    pub async fn admin_reset_user_frees_the_id(b: Backend) {
        let dir = b.data_dir().expect("durable backend").to_owned();
        let relay = b.start().await;
        let (mut alice, _) = Client::login(&relay, "alice", &new_key()).await;
        alice.send_ok("alice", b"old mail").await;
        drop(alice);
        // Refused while the relay holds the data directory.
        let err = hush_relay::admin::reset_user(&dir, &user("alice"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, hush_relay::StoreError::Locked { .. }),
            "{err:?}"
        );
        within("shutdown", relay.shutdown()).await.unwrap();

        assert!(
            hush_relay::admin::reset_user(&dir, &user("alice"))
                .await
                .unwrap()
        );
        assert!(
            !hush_relay::admin::reset_user(&dir, &user("alice"))
                .await
                .unwrap()
        );

        let relay = b.start().await;
        let (mut alice, ok) = Client::login(&relay, "alice", &new_key()).await;
        assert!(ok.registered, "id is free for a new key");
        // Mailbox and counter are gone with it.
        assert_eq!(alice.first_envelope_before_marker().await, None);
    }
}

/// Instantiates each scenario once per backend.
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
                registration,
                wrong_key_rejected,
                bad_auth_signature_rejected,
                unauthenticated_frame_rejected,
                auth_deadline_closes_connection,
                authenticated_connection_outlives_auth_deadline,
                online_delivery,
                offline_delivery_on_connect,
                unacknowledged_envelopes_redelivered_after_reconnect,
                acknowledged_envelopes_not_redelivered,
                fifo_order_many_envelopes,
                pipelined_requests_answered_in_order,
                connect_during_concurrent_sends_skips_nothing,
                one_time_prekey_handed_out_once_under_concurrent_fetches,
                newest_connection_wins,
                slow_consumer_closed_4003_and_loses_nothing,
                publish_keys_with_bad_signature_rejected,
                fetched_bundle_carries_published_keys,
                prekeys_low_sent_to_owner,
                lookup_returns_identity_without_taking_a_prekey,
                auth_ok_reports_newest_queued_id,
                mailbox_full_refused_to_sender,
                ephemeral_never_stored_and_reply_hides_presence,
                ack_of_foreign_or_unknown_id_has_no_effect,
                too_many_ack_ids_rejected,
                envelope_too_large_rejected,
                malformed_json_is_bad_frame,
                unknown_type_is_unknown_type,
                missing_field_is_bad_frame,
                bad_base64_is_bad_base64,
                wrong_size_is_bad_size,
                invalid_user_id_is_invalid_user_id,
                unknown_recipient_is_unknown_user,
                second_auth_is_already_authenticated,
                rate_over_limit_is_rate_limited,
                over_long_frame_closes_1009,
                frame_over_hard_cap_closes_1009,
                binary_frame_closes_1003,
                bad_frame_before_auth_closes_4001,
                healthz_answers_ok,
                connections_per_address_capped_with_http_429,
                shutdown_closes_connections_1001,
            ]);
        }
    };
}

macro_rules! durable_backend_scenarios {
    ($m:ident, $backend:ident) => {
        mod $m {
            backends!($backend => [
                restart_keeps_directory_and_mailboxes,
                admin_reset_user_frees_the_id,
            ]);
        }
    };
}

// One line per backend.
all_backends_scenarios!(memory, memory);
all_backends_scenarios!(redb, redb);
all_backends_scenarios!(redis, redis);
durable_backend_scenarios!(redb_durable, redb);
mod redis_durable {
    // `admin reset-user` on a data directory does not apply to Redis.
    backends!(redis => [restart_keeps_directory_and_mailboxes]);
}
