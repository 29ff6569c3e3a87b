//! Decoding client frames with errors precise enough to answer them.
//!
//! Decoding is two passes over the same text: first a lenient head
//! `{type, rid}` (every other field ignored, but the whole text must be one
//! valid JSON object), then the variant's private wire struct, whose string
//! fields are then validated one by one (base64, sizes, user ids). So an
//! error always knows the `rid` it answers when one parsed, and which field
//! was wrong.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::bytes::{Body, BytesError, PublicKeyBytes, SignatureBytes, decode_b64, decode_fixed};
use crate::error_code::ErrorCode;
use crate::frame::{
    Ack, Auth, ClientFrame, FetchBundle, Lookup, OneTimePrekey, Ping, PresenceAllow, PresenceQuery,
    PresenceSubscribe, PublishKeys, SendEnvelope, ServerFrame, SignedPrekey,
};
use crate::user_id::{UserId, UserIdError};

mod devices;

/// Why a text frame is not a valid frame. Each variant maps to one
/// [`ErrorCode`] ([`FrameError::code`]) and carries the frame's `rid` when one
/// parsed ([`FrameError::rid`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Not a single valid JSON object.
    #[error("malformed JSON: {detail}")]
    Malformed {
        /// The parser's explanation.
        detail: String,
    },
    /// A `type` this side does not know.
    #[error("unknown frame type {frame_type:?}")]
    UnknownType {
        /// The frame's `rid`, if it had a valid one.
        rid: Option<u64>,
        /// The type given (truncated to 64 bytes).
        frame_type: String,
    },
    /// A field is missing or has the wrong JSON type (including `type` itself).
    #[error("bad field: {detail}")]
    BadField {
        /// The frame's `rid`, if it had a valid one.
        rid: Option<u64>,
        /// The parser's explanation.
        detail: String,
    },
    /// A binary field is not standard padded base64.
    #[error("field `{field}` is not standard padded base64")]
    BadBase64 {
        /// The frame's `rid`.
        rid: Option<u64>,
        /// Which field.
        field: &'static str,
    },
    /// A fixed-size binary field has the wrong decoded length.
    #[error("field `{field}` must be {expected} bytes, got {got}")]
    BadSize {
        /// The frame's `rid`.
        rid: Option<u64>,
        /// Which field.
        field: &'static str,
        /// Required length.
        expected: usize,
        /// Decoded length.
        got: usize,
    },
    /// A user id field violates the user id syntax.
    #[error("field `{field}`: {source}")]
    InvalidUserId {
        /// The frame's `rid`.
        rid: Option<u64>,
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        source: UserIdError,
    },
}

impl FrameError {
    /// The `rid` of the offending frame, when one could be parsed.
    pub fn rid(&self) -> Option<u64> {
        match self {
            Self::Malformed { .. } => None,
            Self::UnknownType { rid, .. }
            | Self::BadField { rid, .. }
            | Self::BadBase64 { rid, .. }
            | Self::BadSize { rid, .. }
            | Self::InvalidUserId { rid, .. } => *rid,
        }
    }

    /// The error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed { .. } | Self::BadField { .. } => ErrorCode::BadFrame,
            Self::UnknownType { .. } => ErrorCode::UnknownType,
            Self::BadBase64 { .. } => ErrorCode::BadBase64,
            Self::BadSize { .. } => ErrorCode::BadSize,
            Self::InvalidUserId { .. } => ErrorCode::InvalidUserId,
        }
    }

    /// The `error` frame answering this error.
    pub fn to_error_frame(&self) -> ServerFrame {
        ServerFrame::error(self.rid(), self.code(), self.to_string())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MaybeU64 {
    U64(u64),
    #[allow(dead_code)]
    Other(IgnoredAny),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MaybeStr<'a> {
    Str(#[serde(borrow)] Cow<'a, str>),
    #[allow(dead_code)]
    Other(IgnoredAny),
}

/// The lenient first pass: only `type` and `rid`, each optional and of any
/// JSON type.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", default, borrow)]
    ty: Option<MaybeStr<'a>>,
    #[serde(default)]
    rid: Option<MaybeU64>,
}

struct Parsed<'a> {
    ty: Option<Cow<'a, str>>,
    rid: Option<u64>,
}

fn head(text: &str) -> Result<Parsed<'_>, FrameError> {
    match serde_json::from_str::<Head<'_>>(text) {
        Ok(h) => Ok(Parsed {
            ty: match h.ty {
                Some(MaybeStr::Str(s)) => Some(s),
                _ => None,
            },
            rid: match h.rid {
                Some(MaybeU64::U64(r)) => Some(r),
                _ => None,
            },
        }),
        Err(e) if e.is_data() => Err(FrameError::BadField {
            rid: None,
            detail: e.to_string(),
        }),
        Err(e) => Err(FrameError::Malformed {
            detail: e.to_string(),
        }),
    }
}

fn truncated(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    // `end` is a char boundary within `s` now, so this is never the default.
    s.get(..end).unwrap_or_default().to_owned()
}

#[derive(Deserialize)]
struct AuthWire<'a> {
    rid: u64,
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    identity_key: Cow<'a, str>,
    #[serde(borrow)]
    signature: Cow<'a, str>,
}

#[derive(Deserialize)]
struct SignedPrekeyWire<'a> {
    id: u32,
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    signature: Cow<'a, str>,
}

#[derive(Deserialize)]
struct OneTimePrekeyWire<'a> {
    id: u32,
    #[serde(borrow)]
    key: Cow<'a, str>,
}

#[derive(Deserialize)]
struct PublishKeysWire<'a> {
    rid: u64,
    #[serde(borrow)]
    identity_dh: Cow<'a, str>,
    #[serde(borrow)]
    identity_dh_sig: Cow<'a, str>,
    #[serde(borrow)]
    signed_prekey: SignedPrekeyWire<'a>,
    #[serde(default, borrow)]
    one_time_prekeys: Vec<OneTimePrekeyWire<'a>>,
}

/// `fetch_bundle` and `lookup` carry the same fields.
#[derive(Deserialize)]
struct FetchBundleWire<'a> {
    rid: u64,
    #[serde(borrow)]
    user_id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct SendWire<'a> {
    rid: u64,
    #[serde(borrow)]
    to: Cow<'a, str>,
    #[serde(borrow)]
    body: Cow<'a, str>,
    #[serde(default)]
    ephemeral: bool,
}

/// `presence_allow`, `presence_query` and `presence_subscribe` carry the
/// same fields.
#[derive(Deserialize)]
struct UsersWire<'a> {
    rid: u64,
    #[serde(borrow)]
    users: Vec<Cow<'a, str>>,
}

/// Validation context: the rid every error reports.
#[derive(Clone, Copy)]
struct Cx {
    rid: Option<u64>,
}

impl Cx {
    fn bytes_err(self, field: &'static str, e: BytesError) -> FrameError {
        match e {
            BytesError::BadBase64 => FrameError::BadBase64 {
                rid: self.rid,
                field,
            },
            BytesError::BadSize { expected, got } => FrameError::BadSize {
                rid: self.rid,
                field,
                expected,
                got,
            },
        }
    }

    fn key(self, field: &'static str, s: &str) -> Result<PublicKeyBytes, FrameError> {
        decode_fixed::<32>(s)
            .map(PublicKeyBytes)
            .map_err(|e| self.bytes_err(field, e))
    }

    fn sig(self, field: &'static str, s: &str) -> Result<SignatureBytes, FrameError> {
        decode_fixed::<64>(s)
            .map(SignatureBytes)
            .map_err(|e| self.bytes_err(field, e))
    }

    fn user(self, field: &'static str, s: Cow<'_, str>) -> Result<UserId, FrameError> {
        UserId::try_from(s.into_owned()).map_err(|source| FrameError::InvalidUserId {
            rid: self.rid,
            field,
            source,
        })
    }

    fn users(self, field: &'static str, v: Vec<Cow<'_, str>>) -> Result<Vec<UserId>, FrameError> {
        v.into_iter().map(|s| self.user(field, s)).collect()
    }

    fn wire<'a, T: Deserialize<'a>>(self, text: &'a str) -> Result<T, FrameError> {
        serde_json::from_str(text).map_err(|e| FrameError::BadField {
            rid: self.rid,
            detail: e.to_string(),
        })
    }
}

pub(crate) fn decode_client(text: &str) -> Result<ClientFrame, FrameError> {
    let h = head(text)?;
    let cx = Cx { rid: h.rid };
    let Some(ty) = h.ty else {
        return Err(FrameError::BadField {
            rid: h.rid,
            detail: "missing or non-string field `type`".to_owned(),
        });
    };
    Ok(match ty.as_ref() {
        "auth" => {
            let w: AuthWire<'_> = cx.wire(text)?;
            ClientFrame::Auth(Auth {
                rid: w.rid,
                user_id: cx.user("user_id", w.user_id)?,
                identity_key: cx.key("identity_key", &w.identity_key)?,
                signature: cx.sig("signature", &w.signature)?,
            })
        }
        "publish_keys" => {
            let w: PublishKeysWire<'_> = cx.wire(text)?;
            let signed_prekey = SignedPrekey {
                id: w.signed_prekey.id,
                key: cx.key("signed_prekey.key", &w.signed_prekey.key)?,
                signature: cx.sig("signed_prekey.signature", &w.signed_prekey.signature)?,
            };
            let one_time_prekeys = w
                .one_time_prekeys
                .iter()
                .map(|o| {
                    Ok(OneTimePrekey {
                        id: o.id,
                        key: cx.key("one_time_prekeys.key", &o.key)?,
                    })
                })
                .collect::<Result<Vec<_>, FrameError>>()?;
            ClientFrame::PublishKeys(PublishKeys {
                rid: w.rid,
                identity_dh: cx.key("identity_dh", &w.identity_dh)?,
                identity_dh_sig: cx.sig("identity_dh_sig", &w.identity_dh_sig)?,
                signed_prekey,
                one_time_prekeys,
            })
        }
        "fetch_bundle" => {
            let w: FetchBundleWire<'_> = cx.wire(text)?;
            ClientFrame::FetchBundle(FetchBundle {
                rid: w.rid,
                user_id: cx.user("user_id", w.user_id)?,
            })
        }
        "lookup" => {
            let w: FetchBundleWire<'_> = cx.wire(text)?;
            ClientFrame::Lookup(Lookup {
                rid: w.rid,
                user_id: cx.user("user_id", w.user_id)?,
            })
        }
        "send" => {
            let w: SendWire<'_> = cx.wire(text)?;
            ClientFrame::Send(SendEnvelope {
                rid: w.rid,
                to: cx.user("to", w.to)?,
                body: Body(decode_b64(&w.body).map_err(|e| cx.bytes_err("body", e))?),
                ephemeral: w.ephemeral,
            })
        }
        "ack" => ClientFrame::Ack(cx.wire::<Ack>(text)?),
        "ping" => ClientFrame::Ping(cx.wire::<Ping>(text)?),
        "presence_allow" => {
            let w: UsersWire<'_> = cx.wire(text)?;
            ClientFrame::PresenceAllow(PresenceAllow {
                rid: w.rid,
                users: cx.users("users", w.users)?,
            })
        }
        "presence_query" => {
            let w: UsersWire<'_> = cx.wire(text)?;
            ClientFrame::PresenceQuery(PresenceQuery {
                rid: w.rid,
                users: cx.users("users", w.users)?,
            })
        }
        "presence_subscribe" => {
            let w: UsersWire<'_> = cx.wire(text)?;
            ClientFrame::PresenceSubscribe(PresenceSubscribe {
                rid: w.rid,
                users: cx.users("users", w.users)?,
            })
        }
        other => {
            if let Some(frame) = devices::decode(other, text, cx) {
                return frame;
            }
            return Err(FrameError::UnknownType {
                rid: h.rid,
                frame_type: truncated(other),
            });
        }
    })
}

const SERVER_TYPES: &[&str] = &[
    "challenge",
    "auth_ok",
    "keys_published",
    "bundle",
    "identity",
    "accepted",
    "envelope",
    "acked",
    "pong",
    "prekeys_low",
    "error",
    "presence_allowed",
    "presence",
    "presence_update",
    "device_list_published",
    "devices",
    "device_list",
    "copies_accepted",
];

pub(crate) fn decode_server(text: &str) -> Result<ServerFrame, FrameError> {
    match serde_json::from_str::<ServerFrame>(text) {
        Ok(f) => Ok(f),
        Err(e) => {
            let h = head(text)?;
            match h.ty {
                Some(ty) if !SERVER_TYPES.contains(&ty.as_ref()) => Err(FrameError::UnknownType {
                    rid: h.rid,
                    frame_type: truncated(&ty),
                }),
                _ => Err(FrameError::BadField {
                    rid: h.rid,
                    detail: e.to_string(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::encode_b64;

    fn b64(n: usize) -> String {
        encode_b64(&vec![7u8; n])
    }

    fn auth_json(user: &str, key: &str, sig: &str) -> String {
        format!(
            r#"{{"type":"auth","rid":5,"user_id":"{user}","identity_key":"{key}","signature":"{sig}"}}"#
        )
    }

    #[test]
    fn valid_auth_decodes() {
        let f = ClientFrame::decode(&auth_json("alice", &b64(32), &b64(64))).unwrap();
        let ClientFrame::Auth(a) = f else {
            panic!("not auth: {f:?}")
        };
        assert_eq!(a.rid, 5);
        assert_eq!(a.user_id.as_str(), "alice");
        assert_eq!(a.identity_key.0, [7; 32]);
    }

    #[test]
    fn malformed_json_is_bad_frame_without_rid() {
        for text in [
            r#"{"type":"ping","rid":1"#,
            "nope",
            "",
            r#"{"type":"ping"} x"#,
        ] {
            let e = ClientFrame::decode(text).unwrap_err();
            assert!(matches!(e, FrameError::Malformed { .. }), "{text}: {e:?}");
            assert_eq!(e.code(), ErrorCode::BadFrame);
            assert_eq!(e.rid(), None);
        }
    }

    #[test]
    fn non_object_json_is_bad_frame() {
        for text in ["[1,2]", "5", "\"ping\"", "null"] {
            let e = ClientFrame::decode(text).unwrap_err();
            assert_eq!(e.code(), ErrorCode::BadFrame, "{text}");
        }
    }

    #[test]
    fn unknown_type_keeps_rid() {
        let e = ClientFrame::decode(r#"{"type":"subscribe","rid":9}"#).unwrap_err();
        assert_eq!(
            e,
            FrameError::UnknownType {
                rid: Some(9),
                frame_type: "subscribe".into()
            }
        );
        assert_eq!(e.code(), ErrorCode::UnknownType);
    }

    #[test]
    fn missing_type_is_bad_frame_with_rid() {
        let e = ClientFrame::decode(r#"{"rid":3}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadFrame);
        assert_eq!(e.rid(), Some(3));
        let e = ClientFrame::decode(r#"{"type":7,"rid":3}"#).unwrap_err();
        assert_eq!((e.code(), e.rid()), (ErrorCode::BadFrame, Some(3)));
    }

    #[test]
    fn missing_field_is_bad_frame_with_rid() {
        let e = ClientFrame::decode(r#"{"type":"send","rid":4,"to":"bob"}"#).unwrap_err();
        assert!(
            matches!(e, FrameError::BadField { rid: Some(4), .. }),
            "{e:?}"
        );
        assert_eq!(e.code(), ErrorCode::BadFrame);
    }

    #[test]
    fn ill_typed_field_is_bad_frame_with_rid() {
        let e = ClientFrame::decode(r#"{"type":"ack","rid":4,"ids":["one"]}"#).unwrap_err();
        assert!(
            matches!(e, FrameError::BadField { rid: Some(4), .. }),
            "{e:?}"
        );
    }

    #[test]
    fn missing_or_bad_rid_is_bad_frame_without_rid() {
        let e = ClientFrame::decode(r#"{"type":"ping"}"#).unwrap_err();
        assert!(matches!(e, FrameError::BadField { rid: None, .. }), "{e:?}");
        let e = ClientFrame::decode(r#"{"type":"ping","rid":-1}"#).unwrap_err();
        assert!(matches!(e, FrameError::BadField { rid: None, .. }), "{e:?}");
    }

    #[test]
    fn bad_base64_names_the_field() {
        let e = ClientFrame::decode(&auth_json("alice", "!!!!", &b64(64))).unwrap_err();
        assert_eq!(
            e,
            FrameError::BadBase64 {
                rid: Some(5),
                field: "identity_key"
            }
        );
        let e =
            ClientFrame::decode(r#"{"type":"send","rid":2,"to":"bob","body":"abc"}"#).unwrap_err();
        assert_eq!(
            e,
            FrameError::BadBase64 {
                rid: Some(2),
                field: "body"
            }
        );
    }

    #[test]
    fn wrong_size_names_the_field() {
        let e = ClientFrame::decode(&auth_json("alice", &b64(32), &b64(63))).unwrap_err();
        assert_eq!(
            e,
            FrameError::BadSize {
                rid: Some(5),
                field: "signature",
                expected: 64,
                got: 63
            }
        );
        assert_eq!(e.code(), ErrorCode::BadSize);
    }

    #[test]
    fn invalid_user_id_is_its_own_code() {
        let e = ClientFrame::decode(&auth_json("Alice", &b64(32), &b64(64))).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidUserId);
        assert_eq!(e.rid(), Some(5));
        let e = ClientFrame::decode(r#"{"type":"fetch_bundle","rid":8,"user_id":""}"#).unwrap_err();
        assert_eq!((e.code(), e.rid()), (ErrorCode::InvalidUserId, Some(8)));
    }

    #[test]
    fn prekey_errors_name_nested_fields() {
        let text = format!(
            r#"{{"type":"publish_keys","rid":1,"identity_dh":"{k}","identity_dh_sig":"{s}",
            "signed_prekey":{{"id":1,"key":"{k}","signature":"{s}"}},
            "one_time_prekeys":[{{"id":1,"key":"{k}"}},{{"id":2,"key":"{short}"}}]}}"#,
            k = b64(32),
            s = b64(64),
            short = b64(31)
        );
        let e = ClientFrame::decode(&text).unwrap_err();
        assert_eq!(
            e,
            FrameError::BadSize {
                rid: Some(1),
                field: "one_time_prekeys.key",
                expected: 32,
                got: 31
            }
        );
    }

    #[test]
    fn extra_fields_like_from_are_ignored() {
        let f = ClientFrame::decode(
            r#"{"type":"send","rid":1,"to":"bob","body":"aGk=","from":"mallory"}"#,
        )
        .unwrap();
        assert!(matches!(
            f,
            ClientFrame::Send(SendEnvelope {
                ephemeral: false,
                ..
            })
        ));
    }

    #[test]
    fn escaped_strings_decode() {
        let f = ClientFrame::decode(r#"{"type":"send","rid":1,"to":"b\u006fb","body":"a\/8="}"#)
            .unwrap();
        let ClientFrame::Send(s) = f else { panic!() };
        assert_eq!(s.to.as_str(), "bob");
        assert_eq!(s.body.0, vec![0x6b, 0xff]);
    }

    #[test]
    fn server_decode_reports_unknown_type() {
        let e = ServerFrame::decode(r#"{"type":"presents","rid":1}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownType);
        let e = ServerFrame::decode(r#"{"type":"pong"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadFrame);
    }
}
