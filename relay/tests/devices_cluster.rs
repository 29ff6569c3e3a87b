//! Multi-device accounts across two relays on one real `redis-server`:
//! a copy sent through relay B reaches a device connected to relay A, and
//! a device-list change made on one relay is pushed to devices on the
//! other, closing a removed one there with 4005.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::devices::*;
use common::redis::RedisServer;
use common::*;
use hush_protocol::{ErrorCode, ServerFrame, close};
use hush_relay::{Config, RelayHandle};

async fn two_relays(redis: &RedisServer) -> (RelayHandle, RelayHandle) {
    let a = within(
        "relay start",
        RelayHandle::start(Config::redis(redis.url())),
    )
    .await
    .unwrap();
    let b = within(
        "relay start",
        RelayHandle::start(Config::redis(redis.url())),
    )
    .await
    .unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_and_device_lists_cross_relays() {
    let redis = RedisServer::start();
    let (ra, rb) = two_relays(&redis).await;
    let (a1, a2, a3) = (new_key(), new_key(), new_key());
    let (mut alice1, _) = Client::login(&ra, "alice", &a1).await;
    let (mut bob, _) = Client::login(&rb, "bob", &new_key()).await;
    publish_ok(
        &mut alice1,
        signed_list(&a1, "alice", 1, &[(1, &a1), (2, &a2), (3, &a3)]),
    )
    .await;
    let (mut alice2, _) = device(&rb, "alice", 2, &a2).await;
    let (mut alice3, _) = device(&rb, "alice", 3, &a3).await;
    // Through relay B to device 1 on relay A, and to devices 2, 3 on B.
    let f = send_copies(
        &mut bob,
        "alice",
        &[(1, "to one"), (2, "to two"), (3, "to three")],
        &[],
    )
    .await;
    assert!(matches!(f, ServerFrame::CopiesAccepted(_)), "{f:?}");
    let e = alice1.next_envelope().await;
    assert_eq!((e.from.as_str(), body(&e).as_str()), ("bob", "to one"));
    assert_eq!(body(&alice2.next_envelope().await), "to two");
    assert_eq!(body(&alice3.next_envelope().await), "to three");
    // From device 2 on B: its transcript reaches device 1 on A.
    let f = send_copies(
        &mut alice2,
        "bob",
        &[(1, "hi bob")],
        &[(1, "t1"), (3, "t3")],
    )
    .await;
    assert!(matches!(f, ServerFrame::CopiesAccepted(_)), "{f:?}");
    let e = alice1.next_envelope().await;
    assert_eq!((e.from_device, body(&e).as_str()), (Some(2), "t1"));
    let e = bob.next_envelope().await;
    assert_eq!((e.from_device, body(&e).as_str()), (Some(2), "hi bob"));
    // Device 1 on A removes device 3 on B: B pushes the list to 2 and 3,
    // and closes 3 with 4005.
    let list = signed_list(&a1, "alice", 2, &[(1, &a1), (2, &a2)]);
    publish_ok(&mut alice1, list.clone()).await;
    let pushed = loop {
        if let ServerFrame::DeviceList(p) = alice2.next_frame().await {
            break p;
        }
    };
    assert_eq!(pushed.list, list);
    let (frames, code) = alice3.frames_until_close().await;
    assert_eq!(code, Some(close::DEVICE_REMOVED));
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::DeviceList(p) if p.list.version == 2)),
        "{frames:?}"
    );
    // Refused on either relay from now on.
    for r in [&ra, &rb] {
        let (ws, c) = connect(r).await;
        let (_, reply) = Client::device_on(ws, c, "alice", 3, &a3).await;
        assert_eq!(error_code(&reply), Some(ErrorCode::UnknownDevice));
    }
}
