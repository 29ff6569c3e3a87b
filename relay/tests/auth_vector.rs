//! The worked authentication example in docs/protocol.md, as a test vector:
//! a fixed key, relay id, challenge and user id give fixed signed bytes and a
//! fixed (deterministic Ed25519) signature, which the relay's check accepts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use ed25519_dalek::{Signature, Signer, SigningKey};
use hush_protocol::bytes::encode_b64;
use hush_protocol::signing;

const SEED: [u8; 32] = [0x11; 32];
const RELAY_ID: &str = "relay.example";
const USER: &str = "alice";

fn challenge() -> [u8; 32] {
    core::array::from_fn(|i| i as u8)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn documented_auth_example_holds() {
    let key = SigningKey::from_bytes(&SEED);
    let msg = signing::auth_message(RELAY_ID, &challenge(), USER).unwrap();
    let sig = key.sign(&msg);
    if std::env::var_os("PRINT_VECTOR").is_some() {
        println!(
            "identity_key b64 {}",
            encode_b64(key.verifying_key().as_bytes())
        );
        println!("challenge b64 {}", encode_b64(&challenge()));
        println!("message hex {}", hex(&msg));
        println!("signature b64 {}", encode_b64(&sig.to_bytes()));
    }
    assert_eq!(
        hex(&msg),
        concat!(
            "485553482d415554482d563100", // "HUSH-AUTH-V1\0"
            "000d",                       // len("relay.example") = 13
            "72656c61792e6578616d706c65", // "relay.example"
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "0005",       // len("alice")
            "616c696365", // "alice"
        )
    );
    assert_eq!(encode_b64(key.verifying_key().as_bytes()), IDENTITY_KEY_B64);
    assert_eq!(encode_b64(&sig.to_bytes()), SIGNATURE_B64);
    let decoded = Signature::from_bytes(&sig.to_bytes());
    assert!(key.verifying_key().verify_strict(&msg, &decoded).is_ok());
}

const IDENTITY_KEY_B64: &str = "0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc=";
const SIGNATURE_B64: &str =
    "GAoaE41qHsCqq7KtF/LcKavGzeYnM/3k3W1gYibdypwkcfJUrQ4nk8wlJfdNw+x8j8o85Q/JIZWTd2Yo4mgrCw==";

/// The device authentication example of docs/protocol.md section 16.8:
/// device 2 of `alice`, whose device signing key has the seed 32 × 0x22,
/// answers the same challenge with `auth_device`.
#[test]
fn documented_device_auth_example_holds() {
    let key = SigningKey::from_bytes(&[0x22; 32]);
    let msg = signing::auth_message_v2(RELAY_ID, &challenge(), USER, 2).unwrap();
    let sig = key.sign(&msg);
    if std::env::var_os("PRINT_VECTOR").is_some() {
        println!(
            "device_key b64 {}",
            encode_b64(key.verifying_key().as_bytes())
        );
        println!("message hex {}", hex(&msg));
        println!("signature b64 {}", encode_b64(&sig.to_bytes()));
    }
    assert_eq!(
        hex(&msg),
        concat!(
            "485553482d415554482d563200", // "HUSH-AUTH-V2\0"
            "000d",                       // len("relay.example") = 13
            "72656c61792e6578616d706c65", // "relay.example"
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "0005",       // len("alice")
            "616c696365", // "alice"
            "00000002",   // device 2, u32 big-endian
        )
    );
    assert_eq!(encode_b64(key.verifying_key().as_bytes()), DEVICE_KEY_B64);
    assert_eq!(encode_b64(&sig.to_bytes()), DEVICE_SIGNATURE_B64);
    let decoded = Signature::from_bytes(&sig.to_bytes());
    assert!(key.verifying_key().verify_strict(&msg, &decoded).is_ok());
}

const DEVICE_KEY_B64: &str = "oJql9HpnWYAv+VX43C0qFKXJnSO+l/hkEn/5ODRVpPA=";
const DEVICE_SIGNATURE_B64: &str =
    "626+uF4VVRDCU2u6SSIr2Ty4WgE8yo26I57WwljBv7V0L4Kj8JAOsqNzddSKXes5U5XuE8YyLETaUWoCV9evAA==";
