//! Round-trip property tests: every frame encodes to JSON that decodes back
//! to the same frame, through the precise client decoder and through serde.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use hush_protocol::frame::*;
use hush_protocol::{
    Body, ClientFrame, ErrorCode, PublicKeyBytes, ServerFrame, SignatureBytes, UserId,
};
use proptest::prelude::*;

fn user_id() -> impl Strategy<Value = UserId> {
    "[a-z0-9][a-z0-9._-]{0,31}".prop_map(|s| UserId::try_from(s).unwrap())
}
fn key() -> impl Strategy<Value = PublicKeyBytes> {
    any::<[u8; 32]>().prop_map(PublicKeyBytes)
}
fn sig() -> impl Strategy<Value = SignatureBytes> {
    prop::collection::vec(any::<u8>(), 64)
        .prop_map(|v| SignatureBytes(<[u8; 64]>::try_from(v.as_slice()).unwrap()))
}
fn body() -> impl Strategy<Value = Body> {
    prop::collection::vec(any::<u8>(), 0..300).prop_map(Body)
}
fn spk() -> impl Strategy<Value = SignedPrekey> {
    (any::<u32>(), key(), sig()).prop_map(|(id, key, signature)| SignedPrekey {
        id,
        key,
        signature,
    })
}
fn opk() -> impl Strategy<Value = OneTimePrekey> {
    (any::<u32>(), key()).prop_map(|(id, key)| OneTimePrekey { id, key })
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (any::<u64>(), user_id(), key(), sig()).prop_map(
            |(rid, user_id, identity_key, signature)| {
                ClientFrame::Auth(Auth {
                    rid,
                    user_id,
                    identity_key,
                    signature,
                })
            }
        ),
        (
            any::<u64>(),
            key(),
            sig(),
            spk(),
            prop::collection::vec(opk(), 0..5)
        )
            .prop_map(
                |(rid, identity_dh, identity_dh_sig, signed_prekey, one_time_prekeys)| {
                    ClientFrame::PublishKeys(PublishKeys {
                        rid,
                        identity_dh,
                        identity_dh_sig,
                        signed_prekey,
                        one_time_prekeys,
                    })
                }
            ),
        (any::<u64>(), user_id())
            .prop_map(|(rid, user_id)| ClientFrame::FetchBundle(FetchBundle { rid, user_id })),
        (any::<u64>(), user_id())
            .prop_map(|(rid, user_id)| ClientFrame::Lookup(Lookup { rid, user_id })),
        (any::<u64>(), user_id(), body(), any::<bool>()).prop_map(|(rid, to, body, ephemeral)| {
            ClientFrame::Send(SendEnvelope {
                rid,
                to,
                body,
                ephemeral,
            })
        }),
        (any::<u64>(), prop::collection::vec(any::<u64>(), 0..20))
            .prop_map(|(rid, ids)| ClientFrame::Ack(Ack { rid, ids })),
        any::<u64>().prop_map(|rid| ClientFrame::Ping(Ping { rid })),
        (any::<u64>(), users())
            .prop_map(|(rid, users)| ClientFrame::PresenceAllow(PresenceAllow { rid, users })),
        (any::<u64>(), users())
            .prop_map(|(rid, users)| ClientFrame::PresenceQuery(PresenceQuery { rid, users })),
        (any::<u64>(), users()).prop_map(|(rid, users)| {
            ClientFrame::PresenceSubscribe(PresenceSubscribe { rid, users })
        }),
    ]
}

fn users() -> impl Strategy<Value = Vec<UserId>> {
    prop::collection::vec(user_id(), 0..8)
}

fn presence_entry() -> impl Strategy<Value = PresenceEntry> {
    (
        user_id(),
        prop::option::of((any::<bool>(), prop::option::of(any::<u64>()))),
    )
        .prop_map(|(user, state)| PresenceEntry {
            user,
            state: state.map(|(online, last_seen_ms)| PresenceState {
                online,
                last_seen_ms,
            }),
        })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(vec![
        ErrorCode::BadFrame,
        ErrorCode::UnknownType,
        ErrorCode::BadBase64,
        ErrorCode::BadSize,
        ErrorCode::InvalidUserId,
        ErrorCode::NotAuthenticated,
        ErrorCode::AlreadyAuthenticated,
        ErrorCode::AuthFailed,
        ErrorCode::AuthTimeout,
        ErrorCode::BadSignature,
        ErrorCode::UnknownUser,
        ErrorCode::TooManyPrekeys,
        ErrorCode::EnvelopeTooLarge,
        ErrorCode::MailboxFull,
        ErrorCode::TooManyIds,
        ErrorCode::RateLimited,
        ErrorCode::LimitExceeded,
        ErrorCode::StoreUnavailable,
        ErrorCode::Internal,
    ])
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (".{0,40}", any::<[u8; 32]>()).prop_map(|(relay_id, c)| ServerFrame::Challenge(
            Challenge {
                v: PROTOCOL_VERSION,
                relay_id,
                challenge: c.into(),
            }
        )),
        (
            any::<u64>(),
            user_id(),
            any::<bool>(),
            any::<u32>(),
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(
                |(rid, user_id, registered, one_time_prekeys, has_keys, last_queued)| {
                    ServerFrame::AuthOk(AuthOk {
                        rid,
                        user_id,
                        registered,
                        one_time_prekeys,
                        has_keys,
                        last_queued,
                    })
                }
            ),
        (any::<u64>(), user_id(), key(), key(), sig()).prop_map(
            |(rid, user_id, identity_key, identity_dh, identity_dh_sig)| {
                ServerFrame::Identity(Identity {
                    rid,
                    user_id,
                    identity_key,
                    identity_dh,
                    identity_dh_sig,
                })
            }
        ),
        (any::<u64>(), any::<u32>()).prop_map(|(rid, one_time_prekeys)| {
            ServerFrame::KeysPublished(KeysPublished {
                rid,
                one_time_prekeys,
            })
        }),
        (
            any::<u64>(),
            user_id(),
            key(),
            key(),
            sig(),
            spk(),
            prop::option::of(opk())
        )
            .prop_map(
                |(
                    rid,
                    user_id,
                    identity_key,
                    identity_dh,
                    identity_dh_sig,
                    signed_prekey,
                    one_time_prekey,
                )| {
                    ServerFrame::Bundle(Box::new(Bundle {
                        rid,
                        user_id,
                        identity_key,
                        identity_dh,
                        identity_dh_sig,
                        signed_prekey,
                        one_time_prekey,
                    }))
                }
            ),
        (any::<u64>(), prop::option::of(any::<u64>()))
            .prop_map(|(rid, id)| ServerFrame::Accepted(Accepted { rid, id })),
        (
            prop::option::of(any::<u64>()),
            user_id(),
            any::<u64>(),
            body()
        )
            .prop_map(|(id, from, accepted_at, body)| {
                ServerFrame::Envelope(Envelope {
                    id,
                    from,
                    from_device: None,
                    accepted_at,
                    body,
                    ephemeral: id.is_none(),
                })
            }),
        any::<u64>().prop_map(|rid| ServerFrame::Acked(Acked { rid })),
        any::<u64>().prop_map(|rid| ServerFrame::Pong(Pong { rid })),
        any::<u32>().prop_map(|n| ServerFrame::PrekeysLow(PrekeysLow {
            one_time_prekeys: n
        })),
        (prop::option::of(any::<u64>()), error_code(), ".{0,40}")
            .prop_map(|(rid, code, message)| ServerFrame::error(rid, code, message)),
        (any::<u64>(), any::<u32>())
            .prop_map(|(rid, count)| ServerFrame::PresenceAllowed(PresenceAllowed { rid, count })),
        (any::<u64>(), prop::collection::vec(presence_entry(), 0..6))
            .prop_map(|(rid, users)| ServerFrame::Presence(Presence { rid, users })),
        presence_entry().prop_map(ServerFrame::PresenceUpdate),
    ]
}

proptest! {
    #[test]
    fn client_frames_round_trip(f in client_frame()) {
        let text = f.encode();
        prop_assert_eq!(&ClientFrame::decode(&text).unwrap(), &f);
        prop_assert_eq!(&serde_json::from_str::<ClientFrame>(&text).unwrap(), &f);
    }

    #[test]
    fn server_frames_round_trip(f in server_frame()) {
        let text = f.encode();
        prop_assert_eq!(&ServerFrame::decode(&text).unwrap(), &f);
    }

    #[test]
    fn client_decode_never_panics(text in ".{0,200}") {
        let _ = ClientFrame::decode(&text);
    }
}

#[test]
fn wire_shapes_match_the_spec() {
    let accepted = ServerFrame::Accepted(Accepted { rid: 1, id: None }).encode();
    assert_eq!(accepted, r#"{"type":"accepted","rid":1}"#);
    let err = ServerFrame::error(None, ErrorCode::BadFrame, "x").encode();
    assert_eq!(
        err,
        r#"{"type":"error","rid":null,"code":"bad_frame","message":"x"}"#
    );
    let env = ServerFrame::Envelope(Envelope {
        id: Some(3),
        from: UserId::try_from("alice").unwrap(),
        from_device: None,
        accepted_at: 9,
        body: Body(b"hi".to_vec()),
        ephemeral: false,
    })
    .encode();
    assert_eq!(
        env,
        r#"{"type":"envelope","id":3,"from":"alice","accepted_at":9,"body":"aGk="}"#
    );
    let ping = ClientFrame::Ping(Ping { rid: 2 }).encode();
    assert_eq!(ping, r#"{"type":"ping","rid":2}"#);
}
