//! Sender keys: the chain's bounds, replays, order, forgery and replacement,
//! pickles, and the known-answer vector in `tests/vectors/sender_key.json`
//! (regenerate with `HUSH_REGENERATE_VECTORS=1 cargo test -p
//! hush-client-core --lib sender_key`).

use proptest::prelude::*;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::*;
use crate::tests::{Script, secret, unhex};

const GROUP: GroupId = [7; GROUP_ID_LEN];
const VECTOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/sender_key.json");

fn pair(seed: u64) -> (OwnSenderKey, SenderKeyRecord) {
    let own = OwnSenderKey::generate(&mut StdRng::seed_from_u64(seed), GROUP);
    let mut record = SenderKeyRecord::new(GROUP);
    record.add(&own.distribution()).unwrap();
    (own, record)
}

fn text(i: u32) -> Vec<u8> {
    format!("group message {i}").into_bytes()
}

#[test]
fn messages_decrypt_in_order_whatever_their_length() {
    let (mut own, mut record) = pair(1);
    for len in [0usize, 1, 63, 64, 65, 1000, MAX_PLAINTEXT_LEN] {
        let pt = vec![0x5a; len];
        let m = own.encrypt(&pt).unwrap();
        assert_eq!(
            m.len(),
            SENDER_KEY_HEADER_LEN + padded_len(len) + TAG_LEN + SIGNATURE_LEN
        );
        assert_eq!(record.decrypt(&m).unwrap(), pt);
    }
    assert!(matches!(
        own.encrypt(&vec![0; MAX_PLAINTEXT_LEN + 1]),
        Err(SenderKeyError::TooLarge(_))
    ));
}

#[test]
fn replays_are_refused_and_out_of_order_messages_decrypt_once() {
    let (mut own, mut record) = pair(2);
    let msgs: Vec<_> = (0..6).map(|i| own.encrypt(&text(i)).unwrap()).collect();
    assert_eq!(record.decrypt(&msgs[5]).unwrap(), text(5));
    assert_eq!(record.skipped_count(own.key_id()), 5);
    assert_eq!(record.decrypt(&msgs[2]).unwrap(), text(2));
    assert_eq!(record.decrypt(&msgs[0]).unwrap(), text(0));
    for i in [0, 2, 5] {
        assert_eq!(
            record.decrypt(&msgs[i]).unwrap_err(),
            SenderKeyError::Duplicate {
                key_id: own.key_id(),
                iteration: i as u32
            }
        );
    }
    assert_eq!(record.skipped_count(own.key_id()), 3);
    for i in [1, 3, 4] {
        assert_eq!(record.decrypt(&msgs[i]).unwrap(), text(i as u32));
    }
    assert_eq!(record.skipped_count(own.key_id()), 0);
}

#[test]
fn a_jump_beyond_the_skip_bound_is_refused_and_skipped_keys_stay_bounded() {
    let (mut own, mut record) = pair(3);
    let mut last = Vec::new();
    for _ in 0..=MAX_SENDER_KEY_SKIP {
        last = own.encrypt(b"x").unwrap();
    }
    // Exactly MAX_SENDER_KEY_SKIP ahead of the next expected: accepted.
    record.decrypt(&last).unwrap();
    assert_eq!(
        record.skipped_count(own.key_id()),
        MAX_SENDER_KEY_SKIP as usize
    );
    // One more than that: refused, and nothing changes.
    let next = MAX_SENDER_KEY_SKIP + 1;
    for _ in 0..=MAX_SENDER_KEY_SKIP {
        own.encrypt(b"x").unwrap();
    }
    let far = own.encrypt(b"far").unwrap();
    let before = record.pickle();
    assert_eq!(
        record.decrypt(&far).unwrap_err(),
        SenderKeyError::TooFarAhead {
            iteration: next + MAX_SENDER_KEY_SKIP + 1,
            next
        }
    );
    assert_eq!(record.pickle(), before);
    // Walking forward in allowed jumps, the store of skipped keys never
    // grows past its bound: the oldest are evicted and become duplicates.
    let (mut own, mut record) = pair(33);
    let first = own.encrypt(b"first").unwrap();
    for _ in 0..3 {
        let mut m = Vec::new();
        for _ in 0..MAX_SENDER_KEY_SKIP {
            m = own.encrypt(b"y").unwrap();
        }
        record.decrypt(&m).unwrap();
        assert!(record.skipped_count(own.key_id()) <= MAX_SKIPPED_SENDER_KEYS);
    }
    assert_eq!(record.skipped_count(own.key_id()), MAX_SKIPPED_SENDER_KEYS);
    assert_eq!(
        record.decrypt(&first).unwrap_err(),
        SenderKeyError::Duplicate {
            key_id: own.key_id(),
            iteration: 0
        }
    );
}

#[test]
fn a_new_member_cannot_read_what_was_sent_before_it_joined() {
    let (mut own, _) = pair(4);
    let before: Vec<_> = (0..3).map(|i| own.encrypt(&text(i)).unwrap()).collect();
    let mut newcomer = SenderKeyRecord::new(GROUP);
    newcomer.add(&own.distribution()).unwrap();
    for (i, m) in before.iter().enumerate() {
        assert_eq!(
            newcomer.decrypt(m).unwrap_err(),
            SenderKeyError::Duplicate {
                key_id: own.key_id(),
                iteration: i as u32
            }
        );
    }
    assert_eq!(
        newcomer.decrypt(&own.encrypt(&text(3)).unwrap()).unwrap(),
        text(3)
    );
}

#[test]
fn a_removed_member_keeping_its_keys_cannot_read_the_replacement() {
    let (mut old, mut removed) = pair(5);
    removed.decrypt(&old.encrypt(b"before").unwrap()).unwrap();
    // The sender replaces its key and gives it only to remaining members.
    let mut new = OwnSenderKey::generate(&mut StdRng::seed_from_u64(55), GROUP);
    let mut remaining = SenderKeyRecord::new(GROUP);
    remaining.add(&old.distribution()).unwrap();
    remaining.add(&new.distribution()).unwrap();
    let after = new.encrypt(b"after").unwrap();
    assert_eq!(remaining.decrypt(&after).unwrap(), b"after");
    assert_eq!(
        removed.decrypt(&after).unwrap_err(),
        SenderKeyError::UnknownKey {
            key_id: new.key_id()
        }
    );
    // A message still in flight under the old key stays readable.
    assert_eq!(
        remaining.decrypt(&old.encrypt(b"late").unwrap()).unwrap(),
        b"late"
    );
}

#[test]
fn a_member_with_the_chain_key_cannot_forge_the_sender() {
    let (mut own, mut record) = pair(6);
    // A member knows the chain key (from the distribution) and the key id,
    // but not the signing secret: it builds the same chain with its own
    // signing key.
    let mut pickle = own.pickle().to_vec();
    let n = pickle.len();
    pickle[n - 32..].copy_from_slice(&[9; 32]);
    let mut forger = OwnSenderKey::unpickle(&pickle).unwrap();
    let forged = forger.encrypt(b"I am the sender").unwrap();
    let before = record.pickle();
    assert_eq!(
        record.decrypt(&forged).unwrap_err(),
        SenderKeyError::BadSignature
    );
    assert_eq!(
        record.pickle(),
        before,
        "a refused message changed the state"
    );
    assert_eq!(
        record.decrypt(&own.encrypt(b"genuine").unwrap()).unwrap(),
        b"genuine"
    );
}

#[test]
fn every_byte_is_covered_and_failures_change_nothing() {
    let (mut own, mut record) = pair(7);
    let m = own.encrypt(b"covered").unwrap();
    let before = record.pickle();
    for i in 0..m.len() {
        let mut bad = m.clone();
        bad[i] ^= 0x10;
        assert!(record.decrypt(&bad).is_err(), "byte {i}");
        assert_eq!(record.pickle(), before, "byte {i}");
    }
    assert!(record.decrypt(&m[..m.len() - 1]).is_err());
    assert_eq!(record.decrypt(&m).unwrap(), b"covered");
}

#[test]
fn wrong_groups_unknown_keys_and_malformed_input_are_typed_errors() {
    let (mut own, _) = pair(8);
    let m = own.encrypt(b"x").unwrap();
    let mut other = SenderKeyRecord::new([1; GROUP_ID_LEN]);
    assert_eq!(other.decrypt(&m).unwrap_err(), SenderKeyError::WrongGroup);
    assert_eq!(
        other.add(&own.distribution()).unwrap_err(),
        SenderKeyError::WrongGroup
    );
    let mut empty = SenderKeyRecord::new(GROUP);
    assert_eq!(
        empty.decrypt(&m).unwrap_err(),
        SenderKeyError::UnknownKey {
            key_id: own.key_id()
        }
    );
    for bad in [&[][..], &[1, 3], &m[..100]] {
        assert!(matches!(
            empty.decrypt(bad),
            Err(SenderKeyError::Malformed(_))
        ));
    }
    let mut d = own.distribution().encode().to_vec();
    assert!(SenderKeyDistribution::decode(&d[..88]).is_err());
    d[0] = 2;
    assert!(SenderKeyDistribution::decode(&d).is_err());
    let mut weak = own.distribution().encode().to_vec();
    weak[57..].copy_from_slice(&[0; 32]);
    weak[57] = 1;
    assert!(SenderKeyDistribution::decode(&weak).is_err());
}

#[test]
fn a_record_keeps_the_newest_keys_only() {
    let mut record = SenderKeyRecord::new(GROUP);
    let keys: Vec<_> = (0..MAX_SENDER_KEY_STATES as u64 + 2)
        .map(|i| OwnSenderKey::generate(&mut StdRng::seed_from_u64(100 + i), GROUP))
        .collect();
    for k in &keys {
        record.add(&k.distribution()).unwrap();
    }
    let held = record.key_ids();
    assert_eq!(held.len(), MAX_SENDER_KEY_STATES);
    assert_eq!(
        held,
        keys[2..]
            .iter()
            .map(OwnSenderKey::key_id)
            .collect::<Vec<_>>()
    );
    // A key id already held is not moved back by a stale distribution.
    let (mut own, mut record) = pair(9);
    let stale = own.distribution();
    record.decrypt(&own.encrypt(b"0").unwrap()).unwrap();
    record.add(&stale).unwrap();
    assert_eq!(record.decrypt(&own.encrypt(b"1").unwrap()).unwrap(), b"1");
}

#[test]
fn pickles_round_trip_and_refuse_out_of_bound_counts() {
    let (mut own, mut record) = pair(10);
    let msgs: Vec<_> = (0..4).map(|i| own.encrypt(&text(i)).unwrap()).collect();
    record.decrypt(&msgs[3]).unwrap();
    let mut own2 = OwnSenderKey::unpickle(&own.pickle()).unwrap();
    let mut record2 = SenderKeyRecord::unpickle(&record.pickle()).unwrap();
    assert_eq!(record2.pickle(), record.pickle());
    assert_eq!(record2.decrypt(&msgs[1]).unwrap(), text(1));
    assert_eq!(
        record2.decrypt(&own2.encrypt(&text(4)).unwrap()).unwrap(),
        text(4)
    );
    assert_eq!(own2.iteration(), 5);
    let mut p = record.pickle().to_vec();
    // The key count sits after the 2-byte pickle header and the group id.
    p[2 + GROUP_ID_LEN..2 + GROUP_ID_LEN + 4]
        .copy_from_slice(&(MAX_SENDER_KEY_STATES as u32 + 1).to_be_bytes());
    assert!(SenderKeyRecord::unpickle(&p).is_err());
    assert!(OwnSenderKey::unpickle(&record.pickle()).is_err());
}

#[test]
fn debug_output_shows_no_secret() {
    let (own, record) = pair(11);
    let d = own.distribution();
    let all = format!("{own:?} {record:?} {d:?}");
    assert!(!all.contains(&hex::encode(*d.chain_key)), "{all}");
    assert!(
        !all.contains(&hex::encode(&own.pickle()[own.pickle().len() - 32..])),
        "{all}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any delivery order with duplicates: each message decrypts exactly
    /// once, to what was sent; every other delivery is a `Duplicate`.
    #[test]
    fn any_order_decrypts_each_message_once(
        seed in any::<u64>(),
        order in proptest::collection::vec(0usize..40, 1..120),
    ) {
        let (mut own, mut record) = pair(seed);
        let msgs: Vec<_> = (0..40).map(|i| own.encrypt(&text(i)).unwrap()).collect();
        let mut seen = std::collections::HashSet::new();
        for i in order {
            match record.decrypt(&msgs[i]) {
                Ok(pt) => {
                    prop_assert!(seen.insert(i), "message {} decrypted twice", i);
                    prop_assert_eq!(pt, text(i as u32));
                }
                Err(SenderKeyError::Duplicate { iteration, .. }) => {
                    prop_assert_eq!(iteration as usize, i);
                    prop_assert!(seen.contains(&i), "message {} refused before it was read", i);
                }
                Err(e) => prop_assert!(false, "message {}: {:?}", i, e),
            }
        }
        prop_assert!(record.skipped_count(own.key_id()) <= MAX_SKIPPED_SENDER_KEYS);
    }
}

fn vector_case() -> Value {
    let mut rng = Script::new(&[
        &secret("sender chain"),
        &secret("sender signing"),
        &secret("sender key id"),
    ]);
    let group: GroupId = secret("group id")[..16].try_into().unwrap();
    let mut own = OwnSenderKey::generate(&mut rng, group);
    let distribution = own.distribution().encode();
    let m0 = own.encrypt(b"hello group").unwrap();
    let m1 = own.encrypt(b"second").unwrap();
    let mut record = SenderKeyRecord::new(group);
    record
        .add(&SenderKeyDistribution::decode(&distribution).unwrap())
        .unwrap();
    assert_eq!(record.decrypt(&m1).unwrap(), b"second");
    assert_eq!(record.decrypt(&m0).unwrap(), b"hello group");
    json!({
        "description": "Hush sender-key known-answer vector; see docs/crypto.md",
        "inputs": {
            "chain_key_0": hex::encode(secret("sender chain")),
            "signing_seed": hex::encode(secret("sender signing")),
            "key_id_bytes_le": hex::encode(&secret("sender key id")[..4]),
            "group_id": hex::encode(group),
            "plaintext_0": "hello group",
            "plaintext_1": "second",
        },
        "key_id": own.key_id(),
        "distribution": hex::encode(&distribution),
        "message_0": hex::encode(&m0),
        "message_1": hex::encode(&m1),
    })
}

#[test]
fn known_answer_vector_matches() {
    let computed = vector_case();
    if std::env::var_os("HUSH_REGENERATE_VECTORS").is_some() {
        std::fs::write(
            VECTOR,
            serde_json::to_string_pretty(&computed).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(VECTOR)
            .expect("vector file (regenerate with HUSH_REGENERATE_VECTORS=1)"),
    )
    .unwrap();
    assert_eq!(computed, committed);
}

/// Rebuilds message 1 of the vector from the layout in docs/crypto.md with
/// raw HMAC, HKDF, ChaCha20-Poly1305 and Ed25519.
#[test]
fn vector_agrees_with_an_independent_computation() {
    use ed25519_dalek::Signer as _;
    use hmac::{Hmac, Mac};
    type HmacSha256 = Hmac<Sha256>;
    let v: Value = serde_json::from_str(&std::fs::read_to_string(VECTOR).unwrap()).unwrap();
    let i = &v["inputs"];
    let step = |ck: &[u8], b: u8| -> [u8; 32] {
        let mut m = <HmacSha256 as hmac::KeyInit>::new_from_slice(ck).unwrap();
        m.update(&[b]);
        m.finalize().into_bytes().into()
    };
    let ck0 = unhex(&i["chain_key_0"]);
    let ck1 = step(&ck0, 0x02);
    let mk1 = step(&ck1, 0x01);
    let mut okm = [0u8; 44];
    Hkdf::<Sha256>::from_prk(&mk1)
        .unwrap()
        .expand(b"Hush sender keys v1", &mut okm)
        .unwrap();
    let key_id = u32::from_le_bytes(unhex(&i["key_id_bytes_le"]).try_into().unwrap());
    assert_eq!(v["key_id"].as_u64().unwrap(), u64::from(key_id));
    let mut header = vec![0x01, 0x03];
    header.extend_from_slice(&unhex(&i["group_id"]));
    header.extend_from_slice(&key_id.to_be_bytes());
    header.extend_from_slice(&1u32.to_be_bytes());
    let mut body = b"second".to_vec();
    body.push(0x80);
    body.resize(64, 0);
    let tag = ChaCha20Poly1305::new_from_slice(&okm[..32])
        .unwrap()
        .encrypt_inout_detached(
            okm[32..].try_into().unwrap(),
            &header,
            body.as_mut_slice().into(),
        )
        .unwrap();
    let mut m = header;
    m.extend_from_slice(&body);
    m.extend_from_slice(&tag);
    let signing = SigningKey::from_bytes(&unhex(&i["signing_seed"]).try_into().unwrap());
    let sig = signing.sign(&m);
    m.extend_from_slice(&sig.to_bytes());
    assert_eq!(hex::encode(&m), v["message_1"].as_str().unwrap());
    let mut d = vec![0x01];
    d.extend_from_slice(&unhex(&i["group_id"]));
    d.extend_from_slice(&key_id.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    d.extend_from_slice(&ck0);
    d.extend_from_slice(signing.verifying_key().as_bytes());
    assert_eq!(hex::encode(&d), v["distribution"].as_str().unwrap());
}
