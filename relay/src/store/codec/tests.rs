//! Golden bytes of every record, and round trips with truncation. The
//! bytes are the layouts both stores wrote before the codec was shared
//! (`relay/tests/store_format.rs` checks them in real redb and Redis).

use hush_protocol::frame::{OneTimePrekey, SignedPrekey};
use hush_protocol::{Body, PublicKeyBytes, SignatureBytes, UserId};

use super::*;
use crate::store::{NewEnvelope, PublishedKeys};

fn seq<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

const USER_REC: &str = "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\
                        000000000000000300000000000000020000000000000007";
const KEYS: &str = "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
                    808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
                    a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\
                    01020304\
                    c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf\
                    e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\
                    000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OPK_MEMBER: &str = "0a0b0c0df0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";
const TAIL: &str = "0102030405060708\
                    03626f62\
                    68656c6c6f";
const MEMBER: &str = "0000000000000005\
                      0102030405060708\
                      03626f62\
                      68656c6c6f";

fn keys() -> PublishedKeys {
    PublishedKeys {
        identity_dh: PublicKeyBytes(seq(0x60)),
        identity_dh_sig: SignatureBytes(seq(0x80)),
        signed_prekey: SignedPrekey {
            id: 0x0102_0304,
            key: PublicKeyBytes(seq(0xc0)),
            signature: SignatureBytes(seq(0xe0)),
        },
    }
}

fn envelope() -> NewEnvelope {
    NewEnvelope {
        from: UserId::try_from("bob").unwrap(),
        accepted_at: 0x0102_0304_0506_0708,
        body: Body(b"hello".to_vec()),
    }
}

#[test]
fn user_record_golden_and_round_trip() {
    let rec = UserRec {
        identity_key: seq(0x10),
        last_id: 3,
        count: 2,
        bytes: 7,
    };
    let bytes = rec.encode();
    assert_eq!(hex::encode(bytes), USER_REC);
    assert_eq!(UserRec::decode(&bytes).unwrap(), rec);
    for cut in 0..UserRec::LEN {
        assert!(UserRec::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert!(UserRec::decode(&long).is_err());
}

#[test]
fn published_keys_golden_and_round_trip() {
    let bytes = encode_keys(&keys());
    assert_eq!(hex::encode(bytes), KEYS);
    assert_eq!(decode_keys(&bytes).unwrap(), keys());
    for cut in 0..KEYS_LEN {
        assert!(decode_keys(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn one_time_prekey_golden_and_round_trip() {
    let o = OneTimePrekey {
        id: 0x0a0b_0c0d,
        key: PublicKeyBytes(seq(0xf0)),
    };
    let m = encode_opk_member(&o);
    assert_eq!(hex::encode(m), OPK_MEMBER);
    assert_eq!(decode_opk_member(&m).unwrap(), o);
    for cut in 0..OPK_MEMBER_LEN {
        assert!(decode_opk_member(&m[..cut]).is_err(), "cut at {cut}");
    }
    // redb keeps the bare key (the id is in the table key).
    assert_eq!(decode_opk_key(&o.key.0).unwrap(), o.key);
    assert!(decode_opk_key(&m).is_err());
}

#[test]
fn envelope_tail_and_member_golden_and_round_trip() {
    let tail = encode_envelope_tail(&envelope());
    assert_eq!(hex::encode(&tail), TAIL);
    let (at, from, body) = split_envelope_tail(&tail).unwrap();
    assert_eq!(
        (at, from, body),
        (0x0102_0304_0506_0708, "bob", &b"hello"[..])
    );
    let e = decode_envelope(5, &tail).unwrap();
    assert_eq!(
        (e.id, e.from.as_str(), e.body.0.as_slice()),
        (5, "bob", &b"hello"[..])
    );
    for cut in 0..12 {
        assert!(split_envelope_tail(&tail[..cut]).is_err(), "cut at {cut}");
    }

    let mut member = 5u64.to_be_bytes().to_vec();
    member.extend_from_slice(&tail);
    assert_eq!(hex::encode(&member), MEMBER);
    let d = decode_member(&member).unwrap();
    assert_eq!(d, e);
    for cut in 0..20 {
        assert!(decode_member(&member[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn sender_that_is_not_a_user_id_is_corrupt() {
    let mut tail = encode_envelope_tail(&envelope());
    // `bob` -> `b\xffb`: not UTF-8.
    tail[10] = 0xff;
    assert!(decode_envelope(1, &tail).is_err());
}
