//! Writes the committed seed corpus: `cargo run --manifest-path
//! fuzz/Cargo.toml --example seeds` (from the repository root). Seeds are
//! deterministic, so re-running only rewrites the same files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use hush_client_core::payload::{MessageId, Payload, PayloadBody, ReceiptKind, TypingState};
use hush_client_core::{IdentityKeyPair, PeerSessions, PrekeyBundle, PrekeyStore};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NOW: u64 = 1_700_000_000_000;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

const FRAMES: &[&str] = &[
    r#"{"type":"auth","rid":1,"user_id":"alice","identity_key":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc=","signature":"GAoaE41qHsCqq7KtF/LcKavGzeYnM/3k3W1gYibdypwkcfJUrQ4nk8wlJfdNw+x8j8o85Q/JIZWTd2Yo4mgrCw=="}"#,
    r#"{"type":"publish_keys","rid":2,"identity_dh":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc=","identity_dh_sig":"GAoaE41qHsCqq7KtF/LcKavGzeYnM/3k3W1gYibdypwkcfJUrQ4nk8wlJfdNw+x8j8o85Q/JIZWTd2Yo4mgrCw==","signed_prekey":{"id":7,"key":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc=","signature":"GAoaE41qHsCqq7KtF/LcKavGzeYnM/3k3W1gYibdypwkcfJUrQ4nk8wlJfdNw+x8j8o85Q/JIZWTd2Yo4mgrCw=="},"one_time_prekeys":[{"id":100,"key":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc="}]}"#,
    r#"{"type":"fetch_bundle","rid":3,"user_id":"bob"}"#,
    r#"{"type":"lookup","rid":4,"user_id":"bob"}"#,
    r#"{"type":"send","rid":5,"to":"bob","body":"AQID","ephemeral":false}"#,
    r#"{"type":"ack","rid":6,"ids":[1,2,3]}"#,
    r#"{"type":"ping","rid":7}"#,
    r#"{"type":"challenge","v":1,"relay_id":"relay.example","challenge":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#,
    r#"{"type":"auth_ok","rid":1,"user_id":"alice","registered":true,"one_time_prekeys":0,"has_keys":false,"last_queued":0}"#,
    r#"{"type":"keys_published","rid":2,"one_time_prekeys":1}"#,
    r#"{"type":"accepted","rid":5,"id":42}"#,
    r#"{"type":"envelope","id":42,"from":"alice","accepted_at":1764100000000,"body":"AQID"}"#,
    r#"{"type":"envelope","from":"alice","accepted_at":1764100000001,"body":"BA==","ephemeral":true}"#,
    r#"{"type":"error","rid":5,"code":"mailbox_full","message":"recipient's mailbox is full"}"#,    // Multi-device frames (protocol section 16).
    r#"{"type":"auth_device","rid":1,"user_id":"alice","device":2,"device_key":"oJql9HpnWYAv+VX43C0qFKXJnSO+l/hkEn/5ODRVpPA=","signature":"626+uF4VVRDCU2u6SSIr2Ty4WgE8yo26I57WwljBv7V0L4Kj8JAOsqNzddSKXes5U5XuE8YyLETaUWoCV9evAA=="}"#,
    r#"{"type":"publish_device_list","rid":2,"list":{"version":3,"devices":[{"id":1,"signing_key":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc=","identity_dh":"oJql9HpnWYAv+VX43C0qFKXJnSO+l/hkEn/5ODRVpPA="},{"id":2,"signing_key":"oJql9HpnWYAv+VX43C0qFKXJnSO+l/hkEn/5ODRVpPA=","identity_dh":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc="}],"signature":"626+uF4VVRDCU2u6SSIr2Ty4WgE8yo26I57WwljBv7V0L4Kj8JAOsqNzddSKXes5U5XuE8YyLETaUWoCV9evAA=="}}"#,
    r#"{"type":"fetch_devices","rid":3,"user_id":"bob"}"#,
    r#"{"type":"fetch_device_bundle","rid":4,"user_id":"bob","device":7}"#,
    r#"{"type":"send_copies","rid":5,"to":"bob","copies":[{"device":1,"body":"AQID"},{"device":7,"body":"BA=="}],"self_copies":[{"device":2,"body":"BQY="}]}"#,
    r#"{"type":"send_copies","rid":6,"to":"bob","copies":[{"device":1,"body":"AQID"}],"ephemeral":true}"#,
    r#"{"type":"device_list_published","rid":2,"version":3}"#,
    r#"{"type":"devices","rid":3,"user_id":"bob","list":null}"#,
    r#"{"type":"device_list","user_id":"alice","list":{"version":3,"devices":[{"id":1,"signing_key":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc=","identity_dh":"oJql9HpnWYAv+VX43C0qFKXJnSO+l/hkEn/5ODRVpPA="},{"id":2,"signing_key":"oJql9HpnWYAv+VX43C0qFKXJnSO+l/hkEn/5ODRVpPA=","identity_dh":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc="}],"signature":"626+uF4VVRDCU2u6SSIr2Ty4WgE8yo26I57WwljBv7V0L4Kj8JAOsqNzddSKXes5U5XuE8YyLETaUWoCV9evAA=="}}"#,
    r#"{"type":"copies_accepted","rid":5,"copies":[{"device":1,"id":41},{"device":7,"id":3}],"self_copies":[{"device":2,"id":18}]}"#,
    r#"{"type":"envelope","id":41,"from":"alice","from_device":2,"accepted_at":1764100000000,"body":"AQID"}"#,
    r#"{"type":"error","rid":5,"code":"device_list_mismatch","message":"devices differ","lists":[{"user_id":"bob","list":null},{"user_id":"alice","list":{"version":3,"devices":[{"id":1,"signing_key":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc=","identity_dh":"oJql9HpnWYAv+VX43C0qFKXJnSO+l/hkEn/5ODRVpPA="},{"id":2,"signing_key":"oJql9HpnWYAv+VX43C0qFKXJnSO+l/hkEn/5ODRVpPA=","identity_dh":"0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc="}],"signature":"626+uF4VVRDCU2u6SSIr2Ty4WgE8yo26I57WwljBv7V0L4Kj8JAOsqNzddSKXes5U5XuE8YyLETaUWoCV9evAA=="}}]}"#,
];

fn main() {
    for (i, f) in FRAMES.iter().enumerate() {
        write("relay_frame", &format!("frame-{i:02}.json"), f.as_bytes());
    }

    // A prekey message (with an OPK) and a ratchet message (Bob's reply).
    let mut rng = StdRng::seed_from_u64(1);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let mut bob_prekeys = PrekeyStore::new(&mut rng, &bob, NOW);
    let opk = bob_prekeys.generate_one_time(&mut rng, 1).unwrap()[0];
    let bundle = PrekeyBundle {
        identity: bob.public(),
        signed_prekey: bob_prekeys.signed_prekey(),
        one_time_prekey: Some(opk),
    };
    let mut a = PeerSessions::new("alice", "bob");
    let mut b = PeerSessions::new("bob", "alice");
    a.initiate(&mut rng, &alice, &bundle).unwrap();
    let text = Payload::text(&mut rng, NOW, "hello bob");
    let prekey_msg = a.encrypt(&mut rng, &text.encode().unwrap()).unwrap();
    b.decrypt(&bob, &mut bob_prekeys, NOW, &prekey_msg).unwrap();
    let ratchet_msg = b.encrypt(&mut rng, b"hi alice").unwrap();
    write("client_message", "prekey-message.bin", &prekey_msg);
    write("client_message", "ratchet-message.bin", &ratchet_msg);
    write(
        "client_message",
        "payload-text.bin",
        &text.encode().unwrap(),
    );
    let typing = Payload {
        id: MessageId([7; 16]),
        sent_at_ms: NOW,
        body: PayloadBody::Typing {
            state: TypingState::Started,
        },
    };
    write(
        "client_message",
        "payload-typing.bin",
        &typing.encode().unwrap(),
    );
    let receipt = Payload {
        id: MessageId([8; 16]),
        sent_at_ms: NOW,
        body: PayloadBody::Receipt {
            kind: ReceiptKind::Read,
            message_ids: vec![MessageId([1; 16]), MessageId([2; 16])],
        },
    };
    write(
        "client_message",
        "payload-receipt.bin",
        &receipt.encode().unwrap(),
    );

    write(
        "store_header",
        "valid-header.bin",
        &hush_client_core::fuzzing::valid_store_header(),
    );

    // Scripts: see `script_from_bytes` for the encoding.
    let scripts: &[(&str, &[u8])] = &[
        // Alice sends, Bob receives and replies, Alice receives.
        (
            "round-trip.bin",
            &[7, 1, 0x80, 10, 0x82, 0, 0x00, 5, 0x02, 0],
        ),
        // Three sends, reorder, flip a bit, deliver out of order, drop,
        // duplicate, persist both parties, reply with a flipped copy first.
        (
            "mixed.bin",
            &[
                3, 0, 0x80, 1, 0x80, 2, 0x80, 3, 0x85, 0, 2, 0x86, 1, 0, 200, 0x82, 1, 0x84, 0,
                0x82, 0, 0x8C, 0, 0x94, 0x00, 9, 0x06, 0, 1, 0, 0x02, 0, 0x14, 0x8E, 0, 0, 77,
            ],
        ),
        // Flip every region of the first prekey message before delivering it.
        (
            "flip-prekey.bin",
            &[
                9, 1, 0x80, 0, 0x86, 0, 0, 3, 0x86, 0, 1, 20, 0x86, 0, 2, 0, 0x86, 0, 4, 10, 0x86,
                0, 5, 30, 0x86, 0, 5, 60, 0x86, 0, 6, 0, 0x82, 0,
            ],
        ),
    ];
    for (name, s) in scripts {
        write("ratchet_interaction", name, s);
    }
}
