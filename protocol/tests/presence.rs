//! The presence frames' exact wire shapes (docs/protocol.md, "Presence"),
//! the no-oracle rule at the encoding level, and their decoding errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use hush_protocol::frame::{
    Presence, PresenceAllow, PresenceAllowed, PresenceEntry, PresenceQuery, PresenceState,
    PresenceSubscribe,
};
use hush_protocol::{ClientFrame, ErrorCode, FrameError, Limits, ServerFrame, UserId};

fn u(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

#[test]
fn client_frames_have_the_documented_shape() {
    let allow = ClientFrame::PresenceAllow(PresenceAllow {
        rid: 1,
        users: vec![u("bob"), u("carol")],
    });
    assert_eq!(
        allow.encode(),
        r#"{"type":"presence_allow","rid":1,"users":["bob","carol"]}"#
    );
    assert_eq!(ClientFrame::decode(&allow.encode()).unwrap(), allow);
    let q = ClientFrame::decode(r#"{"type":"presence_query","rid":2,"users":["bob"]}"#).unwrap();
    assert_eq!(
        q,
        ClientFrame::PresenceQuery(PresenceQuery {
            rid: 2,
            users: vec![u("bob")]
        })
    );
    assert_eq!(q.type_name(), "presence_query");
    let s = ClientFrame::decode(r#"{"type":"presence_subscribe","rid":3,"users":[]}"#).unwrap();
    assert_eq!(
        s,
        ClientFrame::PresenceSubscribe(PresenceSubscribe {
            rid: 3,
            users: vec![]
        })
    );
    assert_eq!(s.rid(), 3);
}

#[test]
fn hidden_entry_is_the_same_bytes_whatever_the_reason() {
    // Not allowed, unknown user: the relay builds the same value, so the
    // same bytes.
    let hidden = ServerFrame::PresenceUpdate(PresenceEntry::hidden(u("bob"))).encode();
    assert_eq!(
        hidden,
        r#"{"type":"presence_update","user":"bob","visible":false}"#
    );
    let reply = ServerFrame::Presence(Presence {
        rid: 4,
        users: vec![
            PresenceEntry::hidden(u("bob")),
            PresenceEntry::hidden(u("nobody")),
        ],
    })
    .encode();
    assert_eq!(
        reply,
        r#"{"type":"presence","rid":4,"users":[{"user":"bob","visible":false},{"user":"nobody","visible":false}]}"#
    );
}

#[test]
fn visible_entries_carry_online_and_last_seen() {
    let online = PresenceEntry {
        user: u("bob"),
        state: Some(PresenceState {
            online: true,
            last_seen_ms: None,
        }),
    };
    let offline = PresenceEntry {
        user: u("carol"),
        state: Some(PresenceState {
            online: false,
            last_seen_ms: Some(1_764_100_000_000),
        }),
    };
    let f = ServerFrame::Presence(Presence {
        rid: 5,
        users: vec![online.clone(), offline.clone()],
    });
    let text = f.encode();
    assert_eq!(
        text,
        r#"{"type":"presence","rid":5,"users":[{"user":"bob","visible":true,"online":true,"last_seen_ms":null},{"user":"carol","visible":true,"online":false,"last_seen_ms":1764100000000}]}"#
    );
    assert_eq!(ServerFrame::decode(&text).unwrap(), f);
    let up = ServerFrame::PresenceUpdate(offline);
    assert_eq!(
        up.encode(),
        r#"{"type":"presence_update","user":"carol","visible":true,"online":false,"last_seen_ms":1764100000000}"#
    );
    assert_eq!(ServerFrame::decode(&up.encode()).unwrap(), up);
    let allowed = ServerFrame::PresenceAllowed(PresenceAllowed { rid: 6, count: 2 });
    assert_eq!(
        allowed.encode(),
        r#"{"type":"presence_allowed","rid":6,"count":2}"#
    );
    assert_eq!(ServerFrame::decode(&allowed.encode()).unwrap(), allowed);
}

#[test]
fn lenient_server_decoding_of_entries() {
    // A missing last_seen_ms on a visible entry reads as never seen; extra
    // fields on a hidden entry are ignored.
    let f = ServerFrame::decode(
        r#"{"type":"presence_update","user":"bob","visible":true,"online":false}"#,
    )
    .unwrap();
    assert_eq!(
        f,
        ServerFrame::PresenceUpdate(PresenceEntry {
            user: u("bob"),
            state: Some(PresenceState {
                online: false,
                last_seen_ms: None
            })
        })
    );
    let f = ServerFrame::decode(
        r#"{"type":"presence_update","user":"bob","visible":false,"online":true}"#,
    )
    .unwrap();
    assert_eq!(
        f,
        ServerFrame::PresenceUpdate(PresenceEntry::hidden(u("bob")))
    );
    // A visible entry without `online` is malformed.
    let e = ServerFrame::decode(r#"{"type":"presence_update","user":"bob","visible":true}"#)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadFrame);
}

#[test]
fn client_decode_errors_keep_rid_and_name_the_field() {
    let e = ClientFrame::decode(r#"{"type":"presence_query","rid":7,"users":["bob","Bad"]}"#)
        .unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::InvalidUserId {
                rid: Some(7),
                field: "users",
                ..
            }
        ),
        "{e:?}"
    );
    let e = ClientFrame::decode(r#"{"type":"presence_allow","rid":8}"#).unwrap_err();
    assert_eq!((e.code(), e.rid()), (ErrorCode::BadFrame, Some(8)));
    let e =
        ClientFrame::decode(r#"{"type":"presence_subscribe","rid":9,"users":"bob"}"#).unwrap_err();
    assert_eq!((e.code(), e.rid()), (ErrorCode::BadFrame, Some(9)));
}

#[test]
fn limits_have_presence_defaults() {
    let l = Limits::default();
    assert_eq!(l.max_presence_allow, 1000);
    assert_eq!(l.max_presence_query, 100);
    assert_eq!(l.max_presence_subscriptions, 256);
    assert_eq!((l.presence_rate_per_sec, l.presence_rate_burst), (5, 20));
    assert_eq!(ErrorCode::LimitExceeded.as_str(), "limit_exceeded");
}
