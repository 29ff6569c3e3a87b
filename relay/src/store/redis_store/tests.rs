use hush_protocol::{Body, UserId};

use super::*;
use crate::store::NewEnvelope;
use crate::store::codec::encode_envelope_tail;

#[test]
fn redact_hides_credentials_only() {
    assert_eq!(
        redact("redis://:pw@10.0.0.5:6379/2"),
        "redis://***@10.0.0.5:6379/2"
    );
    assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    assert_eq!(redact("nonsense"), "<invalid URL>");
}

#[test]
fn member_round_trip_and_truncation() {
    let e = NewEnvelope {
        from: UserId::try_from("alice").unwrap(),
        accepted_at: 42,
        body: Body(vec![9; 10]),
    };
    let mut m = 3u64.to_be_bytes().to_vec();
    m.extend_from_slice(&encode_envelope_tail(&e));
    let d = decode_member(&m).unwrap();
    assert_eq!((d.id, d.accepted_at, d.from.as_str()), (3, 42, "alice"));
    assert_eq!(d.body.0, vec![9; 10]);
    for cut in 0..22 {
        assert!(decode_member(&m[..cut]).is_err(), "cut at {cut}");
    }
}
