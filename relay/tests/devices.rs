//! Multi-device accounts (protocol section 16), against the memory and redb
//! stores: signed device lists (publish, fetch, rollback and forgery
//! refused), devices authenticating with their own keys, removal (4005,
//! no more auth, mailbox emptied), per-device keys, and `send_copies`
//! refused unless it names exactly the current devices, then delivered
//! once per device, offline copies on connect, acks per device. Legacy
//! clients keep working beside them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::devices::*;
use common::*;
use hush_protocol::frame::{Bundle, CopiesAccepted, CopyId, FetchDeviceBundle};
use hush_protocol::{ClientFrame, ErrorCode, ServerFrame, close};

/// Runs each scenario against the memory and the redb store.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Backend::memory()).await;
            })*
        }
        mod redb {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Backend::redb()).await;
            })*
        }
    };
}

on_both_stores!(
    a_list_is_published_and_fetched,
    an_older_or_equal_version_is_refused_with_the_current_list,
    a_list_not_signed_by_the_account_key_is_refused,
    a_removed_device_is_closed_cannot_authenticate_and_gets_nothing,
    copies_must_name_exactly_the_current_devices,
    offline_copies_arrive_on_connect_and_acks_are_per_device,
    legacy_clients_keep_working_beside_devices,
    device_keys_and_bundles_are_per_device,
    a_send_copies_may_exceed_max_frame_bytes_up_to_its_own_bound,
    ephemeral_copies_reach_online_devices_and_are_never_stored,
);

async fn a_list_is_published_and_fetched(b: Backend) {
    let relay = b.start().await;
    let (a1, d2) = (new_key(), new_key());
    let (mut alice, _) = Client::login(&relay, "alice", &a1).await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    // A legacy account: no list (device 1 = the account keys).
    match fetch_devices(&mut bob, "alice").await {
        ServerFrame::Devices(d) => {
            assert_eq!(d.account.user_id, user("alice"));
            assert_eq!(d.account.list, None);
        }
        other => panic!("{other:?}"),
    }
    let list = signed_list(&a1, "alice", 1, &[(1, &a1), (2, &d2)]);
    publish_ok(&mut alice, list.clone()).await;
    match fetch_devices(&mut bob, "alice").await {
        ServerFrame::Devices(d) => assert_eq!(d.account.list, Some(list.clone())),
        other => panic!("{other:?}"),
    }
    // The connected devices of the account are pushed the new list.
    let pushed = loop {
        if let ServerFrame::DeviceList(p) = alice.next_frame().await {
            break p;
        }
    };
    assert_eq!(pushed.list, list);
    let (_dev2, ok) = device(&relay, "alice", 2, &d2).await;
    assert_eq!(ok.user_id, user("alice"));
    // auth_device as device 1 of a legacy account, with the account key
    // (device 1's address is the account's: it replaces bob's connection).
    let b1 = new_key();
    let (_carol, _) = Client::login(&relay, "carol", &b1).await;
    let (_carol1, ok) = device(&relay, "carol", 1, &b1).await;
    assert!(!ok.registered);
    // An unknown account cannot be registered by auth_device.
    let (ws, c) = connect(&relay).await;
    let (mut nobody, reply) = Client::device_on(ws, c, "nobody", 1, &new_key()).await;
    assert_eq!(error_code(&reply), Some(ErrorCode::UnknownUser));
    assert_eq!(nobody.expect_close().await, Some(close::AUTH_FAILED));
}

async fn an_older_or_equal_version_is_refused_with_the_current_list(b: Backend) {
    let relay = b.start().await;
    let (a1, d2) = (new_key(), new_key());
    let (mut alice, _) = Client::login(&relay, "alice", &a1).await;
    let current = signed_list(&a1, "alice", 5, &[(1, &a1)]);
    publish_ok(&mut alice, current.clone()).await;
    for version in [5, 4, 0] {
        let older = signed_list(&a1, "alice", version, &[(1, &a1), (2, &d2)]);
        match publish(&mut alice, older).await {
            ServerFrame::Error(e) => {
                assert_eq!(e.code, ErrorCode::StaleDeviceList, "version {version}");
                assert_eq!(e.lists.len(), 1);
                assert_eq!(e.lists[0].list, Some(current.clone()));
            }
            other => panic!("{other:?}"),
        }
    }
    publish_ok(
        &mut alice,
        signed_list(&a1, "alice", 6, &[(1, &a1), (2, &d2)]),
    )
    .await;
}

async fn a_list_not_signed_by_the_account_key_is_refused(b: Backend) {
    let relay = b.start().await;
    let (a1, d2, mallory) = (new_key(), new_key(), new_key());
    let (mut alice, _) = Client::login(&relay, "alice", &a1).await;
    let (_dev2_before, _) = (0, 0);
    publish_ok(
        &mut alice,
        signed_list(&a1, "alice", 1, &[(1, &a1), (2, &d2)]),
    )
    .await;
    let (mut dev2, _) = device(&relay, "alice", 2, &d2).await;
    let bad = [
        // Another key's signature.
        signed_list(&mallory, "alice", 2, &[(1, &a1), (2, &d2)]),
        // Signed for another account.
        signed_list(&a1, "bob", 2, &[(1, &a1), (2, &d2)]),
        // Not in ascending order.
        signed_list(&a1, "alice", 2, &[(2, &d2), (1, &a1)]),
        // The publishing device (2) dropped.
        signed_list(&a1, "alice", 2, &[(1, &a1)]),
        // A device signing key signing the list (the account key must).
        signed_list(&d2, "alice", 2, &[(1, &a1), (2, &d2)]),
    ];
    for list in bad {
        let f = publish(&mut dev2, list).await;
        assert_eq!(error_code(&f), Some(ErrorCode::BadDeviceList), "{f:?}");
    }
    match fetch_devices(&mut alice, "alice").await {
        ServerFrame::Devices(d) => assert_eq!(d.account.list.unwrap().version, 1),
        other => panic!("{other:?}"),
    }
}

async fn a_removed_device_is_closed_cannot_authenticate_and_gets_nothing(b: Backend) {
    let relay = b.start().await;
    let (a1, d2, d3) = (new_key(), new_key(), new_key());
    let (mut alice, _) = Client::login(&relay, "alice", &a1).await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    publish_ok(
        &mut alice,
        signed_list(&a1, "alice", 1, &[(1, &a1), (2, &d2), (3, &d3)]),
    )
    .await;
    let (mut dev2, _) = device(&relay, "alice", 2, &d2).await;
    // Device 3 is offline and has mail waiting.
    let f = send_copies(&mut bob, "alice", &[(1, "x1"), (2, "x2"), (3, "x3")], &[]).await;
    assert!(matches!(f, ServerFrame::CopiesAccepted(_)), "{f:?}");
    // Device 2 removes device 3; device 1 too, a moment later, removes 2.
    publish_ok(
        &mut dev2,
        signed_list(&a1, "alice", 2, &[(1, &a1), (2, &d2)]),
    )
    .await;
    publish_ok(&mut alice, signed_list(&a1, "alice", 3, &[(1, &a1)])).await;
    let (frames, code) = dev2.frames_until_close().await;
    assert_eq!(code, Some(close::DEVICE_REMOVED));
    let last_list = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::DeviceList(p) => Some(p.list.version),
            _ => None,
        })
        .max();
    assert_eq!(last_list, Some(3), "the removed device is told why");
    for (id, key) in [(2, &d2), (3, &d3)] {
        let (ws, c) = connect(&relay).await;
        let (mut gone, reply) = Client::device_on(ws, c, "alice", id, key).await;
        assert_eq!(error_code(&reply), Some(ErrorCode::UnknownDevice));
        assert_eq!(gone.expect_close().await, Some(close::AUTH_FAILED));
    }
    // Sends to it are refused; re-adding id 3 with a new key starts empty.
    let f = send_copies(&mut bob, "alice", &[(1, "y1"), (3, "y3")], &[]).await;
    let want = vec![("alice".to_owned(), Some(3)), ("bob".to_owned(), None)];
    assert_eq!(mismatch_lists(&f), want, "a legacy account's list is null");
    let d3b = new_key();
    publish_ok(
        &mut alice,
        signed_list(&a1, "alice", 4, &[(1, &a1), (3, &d3b)]),
    )
    .await;
    let (_, ok) = device(&relay, "alice", 3, &d3b).await;
    assert_eq!(
        ok.last_queued, 0,
        "the removed device's mailbox was emptied"
    );
}

async fn copies_must_name_exactly_the_current_devices(b: Backend) {
    let relay = b.start().await;
    let (a1, a2, b1, b3) = (new_key(), new_key(), new_key(), new_key());
    let (mut alice1, _) = Client::login(&relay, "alice", &a1).await;
    let (mut bob1, _) = Client::login(&relay, "bob", &b1).await;
    publish_ok(
        &mut alice1,
        signed_list(&a1, "alice", 1, &[(1, &a1), (2, &a2)]),
    )
    .await;
    publish_ok(&mut bob1, signed_list(&b1, "bob", 7, &[(1, &b1), (3, &b3)])).await;
    let (mut alice2, _) = device(&relay, "alice", 2, &a2).await;
    let (mut bob3, _) = device(&relay, "bob", 3, &b3).await;
    let both = vec![("alice".to_owned(), Some(1)), ("bob".to_owned(), Some(7))];
    // A recipient device missing, an extra one, a self copy missing, a
    // device named twice, a copy for the sending device itself.
    type Named<'a> = &'a [(u32, &'a str)];
    let wrong: [(Named, Named); 5] = [
        (&[(1, "a1")], &[(3, "b3")]),
        (&[(1, "a1"), (2, "a2"), (4, "a4")], &[(3, "b3")]),
        (&[(1, "a1"), (2, "a2")], &[]),
        (&[(1, "a1"), (2, "a2"), (2, "a2")], &[(3, "b3")]),
        (&[(1, "a1"), (2, "a2")], &[(1, "b1"), (3, "b3")]),
    ];
    for (to, own) in wrong {
        let f = send_copies(&mut bob1, "alice", to, own).await;
        assert_eq!(mismatch_lists(&f), both, "{to:?} {own:?}");
    }
    // Corrected: accepted, one id per copy.
    let f = send_copies(&mut bob1, "alice", &[(2, "a2"), (1, "a1")], &[(3, "b3")]).await;
    let ServerFrame::CopiesAccepted(CopiesAccepted {
        copies,
        self_copies,
        ..
    }) = f
    else {
        panic!("{f:?}")
    };
    assert_eq!(copies.iter().map(|c| c.device).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(self_copies, vec![CopyId { device: 3, id: 1 }]);
    // Each device gets its own copy, once, stamped with the sender's device.
    for (c, want) in [(&mut alice1, "a1"), (&mut alice2, "a2"), (&mut bob3, "b3")] {
        let e = c.next_envelope().await;
        assert_eq!(
            (e.from.as_str(), e.from_device, body(&e).as_str()),
            ("bob", None, want)
        );
        c.ping().await;
        assert!(
            !c.take_pending()
                .iter()
                .any(|f| matches!(f, ServerFrame::Envelope(_))),
            "{want} delivered twice"
        );
    }
    // From device 3: from_device 3; to one's own account: the other devices.
    let f = send_copies(&mut bob3, "alice", &[(1, "c1"), (2, "c2")], &[(1, "t1")]).await;
    assert!(matches!(f, ServerFrame::CopiesAccepted(_)), "{f:?}");
    let e = alice2.next_envelope().await;
    assert_eq!((e.from_device, body(&e).as_str()), (Some(3), "c2"));
    let e = bob1.next_envelope().await;
    assert_eq!((e.from_device, body(&e).as_str()), (Some(3), "t1"));
    let f = send_copies(&mut bob3, "bob", &[(1, "note")], &[]).await;
    assert!(matches!(f, ServerFrame::CopiesAccepted(_)), "{f:?}");
    let f = send_copies(&mut bob3, "bob", &[(1, "n"), (3, "n")], &[]).await;
    assert_eq!(mismatch_lists(&f), vec![("bob".to_owned(), Some(7))]);
}

async fn offline_copies_arrive_on_connect_and_acks_are_per_device(b: Backend) {
    let relay = b.start().await;
    let (a1, a2) = (new_key(), new_key());
    let (mut alice1, _) = Client::login(&relay, "alice", &a1).await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    publish_ok(
        &mut alice1,
        signed_list(&a1, "alice", 1, &[(1, &a1), (2, &a2)]),
    )
    .await;
    for i in 0..3 {
        let (one, two) = (format!("m{i}.1"), format!("m{i}.2"));
        let f = send_copies(&mut bob, "alice", &[(1, &one), (2, &two)], &[]).await;
        assert!(matches!(f, ServerFrame::CopiesAccepted(_)), "{f:?}");
    }
    let mut ids1 = Vec::new();
    for i in 0..3 {
        let e = alice1.next_envelope().await;
        assert_eq!(body(&e), format!("m{i}.1"));
        ids1.push(e.id.unwrap());
    }
    alice1.ack(ids1).await;
    // Device 2 was offline: its copies wait for it, untouched by 1's acks.
    let (mut alice2, ok) = device(&relay, "alice", 2, &a2).await;
    assert_eq!(ok.last_queued, 3);
    let mut ids2 = Vec::new();
    for i in 0..3 {
        let e = alice2.next_envelope().await;
        assert_eq!(body(&e), format!("m{i}.2"));
        ids2.push(e.id.unwrap());
    }
    // Unacknowledged: delivered again on the next connection.
    drop(alice2);
    let (mut alice2, ok) = device(&relay, "alice", 2, &a2).await;
    assert_eq!(ok.last_queued, 3);
    assert_eq!(body(&alice2.next_envelope().await), "m0.2");
    alice2.ack(ids2).await;
    drop(alice2);
    let (_alice2, ok) = device(&relay, "alice", 2, &a2).await;
    assert_eq!(ok.last_queued, 0);
}

async fn legacy_clients_keep_working_beside_devices(b: Backend) {
    let relay = b.start().await;
    let (a1, a2) = (new_key(), new_key());
    let (mut alice, _) = Client::login(&relay, "alice", &a1).await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    let (mut carol, _) = Client::login(&relay, "carol", &new_key()).await;
    // Single-device accounts: legacy sends, and send_copies to device 1.
    bob.send_ok("carol", b"legacy").await;
    assert_eq!(body(&carol.next_envelope().await), "legacy");
    let f = send_copies(&mut bob, "carol", &[(1, "copy")], &[]).await;
    assert!(matches!(f, ServerFrame::CopiesAccepted(_)), "{f:?}");
    assert_eq!(body(&carol.next_envelope().await), "copy");
    // A list of device 1 alone is still a single-device account.
    publish_ok(&mut alice, signed_list(&a1, "alice", 1, &[(1, &a1)])).await;
    bob.send_ok("alice", b"still one device").await;
    assert_eq!(body(&alice.next_envelope().await), "still one device");
    // Once alice has two devices, a legacy send to her is refused.
    publish_ok(
        &mut alice,
        signed_list(&a1, "alice", 2, &[(1, &a1), (2, &a2)]),
    )
    .await;
    let f = bob.send_to("alice", b"one body for two devices").await;
    assert_eq!(mismatch_lists(&f), vec![("alice".to_owned(), Some(2))]);
    // Legacy auth is device 1's; once device 1 is removed it is refused.
    let (mut dev2, _) = device(&relay, "alice", 2, &a2).await;
    publish_ok(&mut dev2, signed_list(&a1, "alice", 3, &[(2, &a2)])).await;
    let (ws, c) = connect(&relay).await;
    let (_, ch) = (0, c.clone());
    let mut ws = ws;
    use futures_util::SinkExt as _;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        auth_frame(1, &ch, &user("alice"), &a1).encode().into(),
    ))
    .await
    .unwrap();
    let (frames, code) = raw_until_close(&mut ws).await;
    assert_eq!(error_code(&frames[0]), Some(ErrorCode::UnknownDevice));
    assert_eq!(code, Some(close::AUTH_FAILED));
}

async fn device_keys_and_bundles_are_per_device(b: Backend) {
    let relay = b.start().await;
    let (a1, a2) = (new_key(), new_key());
    let (mut alice, _) = Client::login(&relay, "alice", &a1).await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    publish_ok(
        &mut alice,
        signed_list(&a1, "alice", 1, &[(1, &a1), (2, &a2)]),
    )
    .await;
    let rid = alice.rid();
    assert!(matches!(
        alice.request(publish_frame(rid, &a1, [1, 2])).await,
        ServerFrame::KeysPublished(_)
    ));
    let (mut dev2, _) = device(&relay, "alice", 2, &a2).await;
    // Keys a device signs with another key than its own: refused.
    let rid = dev2.rid();
    let f = dev2.request(publish_frame(rid, &a1, [1])).await;
    assert_eq!(error_code(&f), Some(ErrorCode::DeviceKeyMismatch));
    let rid = dev2.rid();
    let f = dev2.request(publish_frame(rid, &a2, [7, 8, 9])).await;
    assert!(
        matches!(f, ServerFrame::KeysPublished(ref k) if k.one_time_prekeys == 3),
        "{f:?}"
    );
    let mut fetch = async |device| {
        let rid = bob.rid();
        bob.request(ClientFrame::FetchDeviceBundle(FetchDeviceBundle {
            rid,
            user_id: user("alice"),
            device,
        }))
        .await
    };
    match fetch(2).await {
        ServerFrame::Bundle(b) => {
            let Bundle {
                identity_key,
                one_time_prekey,
                ..
            } = *b;
            assert_eq!(identity_key, public(&a2));
            assert_eq!(one_time_prekey.unwrap().id, 7);
        }
        other => panic!("{other:?}"),
    }
    match fetch(1).await {
        ServerFrame::Bundle(b) => {
            assert_eq!(b.identity_key, public(&a1));
            assert_eq!(b.one_time_prekey.unwrap().id, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(error_code(&fetch(5).await), Some(ErrorCode::UnknownDevice));
}

async fn a_send_copies_may_exceed_max_frame_bytes_up_to_its_own_bound(b: Backend) {
    let relay = b
        .start_with(|c| {
            c.limits.max_frame_bytes = 4096;
            c.limits.max_send_frame_bytes = 16_384;
        })
        .await;
    let (a1, a2) = (new_key(), new_key());
    let (mut alice, _) = Client::login(&relay, "alice", &a1).await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    publish_ok(
        &mut alice,
        signed_list(&a1, "alice", 1, &[(1, &a1), (2, &a2)]),
    )
    .await;
    // Two 3,000-byte bodies: about 8 KB of JSON, over max_frame_bytes.
    let big = "x".repeat(3000);
    let f = send_copies(&mut bob, "alice", &[(1, &big), (2, &big)], &[]).await;
    assert!(matches!(f, ServerFrame::CopiesAccepted(_)), "{f:?}");
    // Over max_send_frame_bytes: closed with 1009.
    let huge = "x".repeat(7000);
    let rid = bob.rid();
    let frame = ClientFrame::SendCopies(hush_protocol::frame::SendCopies {
        rid,
        to: user("alice"),
        copies: copies(&[(1, &huge), (2, &huge)]),
        self_copies: Vec::new(),
        ephemeral: false,
    });
    bob.send_raw(frame.encode()).await;
    assert_eq!(bob.expect_close().await, Some(close::MESSAGE_TOO_BIG));
    // Any other frame over max_frame_bytes: 1009 as before.
    let (mut carol, _) = Client::login(&relay, "carol", &new_key()).await;
    carol
        .send_raw(format!(r#"{{"type":"ping","rid":1,"pad":"{big}{big}"}}"#))
        .await;
    assert_eq!(carol.expect_close().await, Some(close::MESSAGE_TOO_BIG));
}

async fn ephemeral_copies_reach_online_devices_and_are_never_stored(b: Backend) {
    let relay = b.start().await;
    let (a1, a2) = (new_key(), new_key());
    let (mut alice1, _) = Client::login(&relay, "alice", &a1).await;
    let (mut bob, _) = Client::login(&relay, "bob", &new_key()).await;
    publish_ok(
        &mut alice1,
        signed_list(&a1, "alice", 1, &[(1, &a1), (2, &a2)]),
    )
    .await;
    let rid = bob.rid();
    let f = bob
        .request(ClientFrame::SendCopies(hush_protocol::frame::SendCopies {
            rid,
            to: user("alice"),
            copies: copies(&[(1, "typing"), (2, "typing")]),
            self_copies: Vec::new(),
            ephemeral: true,
        }))
        .await;
    let ServerFrame::CopiesAccepted(a) = f else {
        panic!("{f:?}")
    };
    assert!(a.copies.is_empty() && a.self_copies.is_empty());
    let e = alice1.next_envelope().await;
    assert!(e.ephemeral && e.id.is_none());
    assert_eq!(body(&e), "typing");
    // Device 2 was offline: nothing waits for it.
    let (_, ok) = device(&relay, "alice", 2, &a2).await;
    assert_eq!(ok.last_queued, 0);
}
