//! Payload codec: round trips, bounds, and total decoding of junk.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use hush_client_core::limits::{MAX_RECEIPT_IDS, MAX_TEXT_LEN};
use hush_client_core::{MessageId, Payload, PayloadBody, PayloadError, ReceiptKind, TypingState};
use proptest::prelude::*;

fn body() -> impl Strategy<Value = PayloadBody> {
    prop_oneof![
        ".{0,200}".prop_map(|text| PayloadBody::Text { text }),
        any::<bool>().prop_map(|s| PayloadBody::Typing {
            state: if s {
                TypingState::Started
            } else {
                TypingState::Stopped
            }
        }),
        (
            any::<bool>(),
            proptest::collection::vec(any::<[u8; 16]>(), 0..20)
        )
            .prop_map(|(read, ids)| {
                PayloadBody::Receipt {
                    kind: if read {
                        ReceiptKind::Read
                    } else {
                        ReceiptKind::Delivered
                    },
                    message_ids: ids.into_iter().map(MessageId).collect(),
                }
            }),
    ]
}

proptest! {
    #[test]
    fn payload_round_trips(id in any::<[u8; 16]>(), sent_at_ms in any::<u64>(), body in body()) {
        let p = Payload { id: MessageId(id), sent_at_ms, body };
        let bytes = p.encode().unwrap();
        prop_assert_eq!(Payload::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn payload_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Payload::decode(&bytes);
    }

    #[test]
    fn truncated_payload_is_rejected(id in any::<[u8; 16]>(), body in body()) {
        let bytes = Payload { id: MessageId(id), sent_at_ms: 5, body }.encode().unwrap();
        for len in 0..bytes.len() {
            prop_assert!(Payload::decode(&bytes[..len]).is_err());
        }
    }
}

#[test]
fn payload_with_trailing_data_is_rejected() {
    let mut bytes = Payload {
        id: MessageId([1; 16]),
        sent_at_ms: 1,
        body: PayloadBody::Typing {
            state: TypingState::Started,
        },
    }
    .encode()
    .unwrap()
    .to_vec();
    bytes.push(0);
    assert_eq!(Payload::decode(&bytes), Err(PayloadError::TrailingData(1)));
}

#[test]
fn payload_unknown_version_and_kind_are_rejected() {
    let good = Payload {
        id: MessageId([1; 16]),
        sent_at_ms: 1,
        body: PayloadBody::Typing {
            state: TypingState::Stopped,
        },
    }
    .encode()
    .unwrap()
    .to_vec();
    let mut v = good.clone();
    v[0] = 2;
    assert_eq!(Payload::decode(&v), Err(PayloadError::UnknownVersion(2)));
    let mut k = good.clone();
    k[1] = 7;
    assert_eq!(Payload::decode(&k), Err(PayloadError::UnknownKind(7)));
    let mut s = good;
    s[26] = 2;
    assert!(matches!(
        Payload::decode(&s),
        Err(PayloadError::InvalidValue { .. })
    ));
}

#[test]
fn overlong_text_is_rejected_both_ways() {
    let text = "x".repeat(MAX_TEXT_LEN + 1);
    let p = Payload {
        id: MessageId([0; 16]),
        sent_at_ms: 0,
        body: PayloadBody::Text { text },
    };
    assert!(matches!(p.encode(), Err(PayloadError::TextTooLong { .. })));
    // A forged length prefix beyond the bound is refused before reading.
    let mut bytes = vec![1u8, 1];
    bytes.extend_from_slice(&[0; 24]);
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Payload::decode(&bytes),
        Err(PayloadError::TextTooLong { .. })
    ));
    let ok = Payload {
        id: MessageId([0; 16]),
        sent_at_ms: 0,
        body: PayloadBody::Text {
            text: "y".repeat(MAX_TEXT_LEN),
        },
    };
    assert_eq!(Payload::decode(&ok.encode().unwrap()).unwrap(), ok);
}

#[test]
fn invalid_utf8_and_too_many_receipt_ids_are_rejected() {
    let mut bytes = vec![1u8, 1];
    bytes.extend_from_slice(&[0; 24]);
    bytes.extend_from_slice(&2u32.to_be_bytes());
    bytes.extend_from_slice(&[0xC3, 0x28]);
    assert_eq!(Payload::decode(&bytes), Err(PayloadError::InvalidUtf8));
    let p = Payload {
        id: MessageId([0; 16]),
        sent_at_ms: 0,
        body: PayloadBody::Receipt {
            kind: ReceiptKind::Read,
            message_ids: vec![MessageId([3; 16]); MAX_RECEIPT_IDS + 1],
        },
    };
    assert!(matches!(
        p.encode(),
        Err(PayloadError::TooManyReceiptIds { .. })
    ));
}

#[test]
fn message_id_hex_round_trips() {
    let id = MessageId([0xAB; 16]);
    assert_eq!(id.to_hex(), "ab".repeat(16));
    assert_eq!(MessageId::from_hex(&id.to_hex()), Some(id));
    assert_eq!(MessageId::from_hex("zz"), None);
}
