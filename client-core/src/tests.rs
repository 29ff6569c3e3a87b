//! Crate-internal tests that need to see key material: the known-answer
//! vectors in `tests/vectors/`, the Debug hygiene check, and key-level
//! forward-secrecy checks.
//!
//! Regenerate the vectors (after an intentional format change) with
//! `HUSH_REGENERATE_VECTORS=1 cargo test -p hush-client-core --lib kat`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::identity::IdentityKeyPair;
use crate::message::Message;
use crate::peer_sessions::PeerSessions;
use crate::prekey::{PrekeyBundle, PrekeyStore};
use crate::ratchet::Session;
use crate::x3dh;

const NOW: u64 = 1_700_000_000_000;
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/x3dh_ratchet.json"
);

/// An RNG that replays a fixed script of bytes and records nothing else;
/// running out is a test bug.
pub(crate) struct Script(VecDeque<u8>);

impl Script {
    pub(crate) fn new(chunks: &[&[u8; 32]]) -> Self {
        Self(chunks.iter().flat_map(|c| c.iter().copied()).collect())
    }
}

impl TryRng for Script {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            *b = self.0.pop_front().expect("scripted RNG exhausted");
        }
        Ok(())
    }
}

impl TryCryptoRng for Script {}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

/// A fixed 32-byte secret: `SHA-256("hush-kat " || label)`.
pub(crate) fn secret(label: &str) -> [u8; 32] {
    Sha256::digest(format!("hush-kat {label}").as_bytes()).into()
}

const PT1: &[u8] = b"Hush known-answer test: first message";
const PT2: &[u8] = b"and the reply";

fn case(with_opk: bool) -> Value {
    let labels = [
        "alice sig",
        "alice dh",
        "bob sig",
        "bob dh",
        "bob spk",
        "bob opk",
        "alice ek",
        "alice ratchet",
        "bob ratchet",
    ];
    let s: Vec<[u8; 32]> = labels.iter().map(|l| secret(l)).collect();
    let alice = IdentityKeyPair::from_secret_bytes(&s[0], &s[1]);
    let bob = IdentityKeyPair::from_secret_bytes(&s[2], &s[3]);
    let mut bob_rng = Script::new(&[&s[4], &s[5]]);
    let mut prekeys = PrekeyStore::new(&mut bob_rng, &bob, NOW);
    let one_time_prekey = if with_opk {
        Some(prekeys.generate_one_time(&mut bob_rng, 1).unwrap()[0])
    } else {
        None
    };
    let bundle = PrekeyBundle {
        identity: bob.public(),
        signed_prekey: prekeys.signed_prekey(),
        one_time_prekey,
    };
    let init = x3dh::initiate(&mut Script::new(&[&s[6]]), &alice, &bundle).unwrap();

    let mut a = Session::initiate(&mut Script::new(&[&s[6], &s[7]]), &alice, &bundle).unwrap();
    let alice_root = *a.root_key().as_bytes();
    let ck0 = a.sending_chain().unwrap();
    let ck0_bytes = *ck0.as_bytes();
    let (mk0, ck1) = ck0.peek();
    let okm = mk0.expand();
    let m1 = a.encrypt(&mut Script::new(&[]), PT1).unwrap();

    let Ok(Message::Prekey(pm)) = Message::decode(&m1) else {
        panic!("first message is not a prekey message")
    };
    let (mut b, pt) = Session::respond(&bob, &mut prekeys, &pm, NOW).unwrap();
    assert_eq!(&pt[..], PT1);
    let bob_root_recv = *b.root_key().as_bytes();
    let bob_recv_ck = *b.receiving_chain().unwrap().as_bytes();
    let m2 = b.encrypt(&mut Script::new(&[&s[8]]), PT2).unwrap();
    let bob_root_send = *b.root_key().as_bytes();
    let bob_send_ck1 = *b.sending_chain().unwrap().as_bytes();
    assert_eq!(&a.decrypt(&m2).unwrap()[..], PT2);

    let inputs: serde_json::Map<String, Value> = labels
        .iter()
        .zip(&s)
        .map(|(l, v)| (format!("{}_secret", l.replace(' ', "_")), json!(hex(v))))
        .collect();
    json!({
        "with_one_time_prekey": with_opk,
        "inputs": {
            "secrets": inputs,
            "signed_prekey_id": bundle.signed_prekey.id,
            "one_time_prekey_id": bundle.one_time_prekey.map(|o| o.id),
            "plaintext_1": hex(PT1),
            "plaintext_2": hex(PT2),
        },
        "outputs": {
            "alice_identity_public": hex(&alice.public().to_bytes()),
            "bob_identity_public": hex(&bob.public().to_bytes()),
            "bob_signed_prekey_signature": hex(&bundle.signed_prekey.signature),
            "x3dh_ad": hex(&init.ad),
            "x3dh_sk": hex(init.sk.as_bytes()),
            "alice_root_key_1": hex(&alice_root),
            "alice_sending_chain_key_0": hex(&ck0_bytes),
            "alice_sending_chain_key_1": hex(ck1.as_ref()),
            "message_key_0": hex(mk0.as_bytes()),
            "aead_key_0": hex(&okm[..32]),
            "aead_nonce_0": hex(&okm[32..]),
            "message_1": hex(&m1),
            "bob_root_key_1": hex(&bob_root_recv),
            "bob_receiving_chain_key_1": hex(&bob_recv_ck),
            "bob_root_key_2": hex(&bob_root_send),
            "bob_sending_chain_key_1": hex(&bob_send_ck1),
            "message_2": hex(&m2),
        }
    })
}

#[test]
fn known_answer_vectors_match() {
    let computed = json!({
        "description": "Hush X3DH + Double Ratchet known-answer vectors; see docs/crypto.md",
        "cases": [case(true), case(false)],
    });
    if std::env::var_os("HUSH_REGENERATE_VECTORS").is_some() {
        std::fs::write(
            VECTORS,
            serde_json::to_string_pretty(&computed).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(VECTORS)
            .expect("vectors file (regenerate with HUSH_REGENERATE_VECTORS=1)"),
    )
    .unwrap();
    assert_eq!(computed, committed);
}

pub(crate) fn unhex(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn arr(v: &Value) -> [u8; 32] {
    unhex(v).try_into().unwrap()
}

/// Recomputes the first message of each vector with the primitives alone
/// (raw X25519, HKDF, HMAC, ChaCha20-Poly1305), independently of the
/// session code, and checks both sides agree on root and chain keys.
#[test]
fn vectors_agree_with_an_independent_computation() {
    use chacha20poly1305::aead::AeadInOut;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
    use hkdf::Hkdf;
    use hmac::{Hmac, Mac};
    use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};

    for v in [case(true), case(false)] {
        let i = &v["inputs"]["secrets"];
        let o = &v["outputs"];
        let public = |k: &[u8; 32]| x25519(*k, X25519_BASEPOINT_BYTES);
        let spk = public(&arr(&i["bob_spk_secret"]));
        let ek = arr(&i["alice_ek_secret"]);
        let mut ikm = vec![0xFFu8; 32];
        ikm.extend(x25519(arr(&i["alice_dh_secret"]), spk));
        ikm.extend(x25519(ek, public(&arr(&i["bob_dh_secret"]))));
        ikm.extend(x25519(ek, spk));
        if v["with_one_time_prekey"].as_bool().unwrap() {
            ikm.extend(x25519(ek, public(&arr(&i["bob_opk_secret"]))));
        }
        let mut sk = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&[0u8; 32]), &ikm)
            .expand(b"Hush X3DH v1", &mut sk)
            .unwrap();
        assert_eq!(hex(&sk), o["x3dh_sk"].as_str().unwrap());

        let dh = x25519(arr(&i["alice_ratchet_secret"]), spk);
        let mut rk_ck = [0u8; 64];
        Hkdf::<Sha256>::new(Some(&sk), &dh)
            .expand(b"Hush ratchet v1", &mut rk_ck)
            .unwrap();
        assert_eq!(hex(&rk_ck[..32]), o["alice_root_key_1"].as_str().unwrap());
        assert_eq!(
            hex(&rk_ck[32..]),
            o["alice_sending_chain_key_0"].as_str().unwrap()
        );
        let hmac = |k: &[u8], d: u8| {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(k).unwrap();
            m.update(&[d]);
            m.finalize().into_bytes().to_vec()
        };
        let mk = hmac(&rk_ck[32..], 1);
        assert_eq!(hex(&mk), o["message_key_0"].as_str().unwrap());
        assert_eq!(
            hex(&hmac(&rk_ck[32..], 2)),
            o["alice_sending_chain_key_1"].as_str().unwrap()
        );
        let mut okm = [0u8; 44];
        Hkdf::<Sha256>::from_prk(&mk)
            .unwrap()
            .expand(b"Hush message keys v1", &mut okm)
            .unwrap();
        assert_eq!(hex(&okm[..32]), o["aead_key_0"].as_str().unwrap());
        assert_eq!(hex(&okm[32..]), o["aead_nonce_0"].as_str().unwrap());

        let m1 = unhex(&o["message_1"]);
        let inner = m1.len() - (42 + 64 + 16);
        let header = &m1[inner..inner + 42];
        let mut body = unhex(&v["inputs"]["plaintext_1"]);
        body.push(0x80);
        body.resize(64, 0);
        let mut aad = unhex(&o["x3dh_ad"]);
        aad.extend_from_slice(header);
        let key: [u8; 32] = okm[..32].try_into().unwrap();
        let nonce: [u8; 12] = okm[32..].try_into().unwrap();
        let tag = ChaCha20Poly1305::new(&key.into())
            .encrypt_inout_detached(&nonce.into(), &aad, body.as_mut_slice().into())
            .unwrap();
        assert_eq!(&m1[inner + 42..inner + 106], &body[..]);
        assert_eq!(&m1[inner + 106..], &tag[..]);

        assert_eq!(o["alice_root_key_1"], o["bob_root_key_1"]);
        assert_eq!(
            o["alice_sending_chain_key_1"],
            o["bob_receiving_chain_key_1"]
        );
    }
}

/// Every way a 32-byte secret could leak into a Debug string.
fn leaks(out: &str, secret: &[u8; 32]) -> bool {
    let h = hex(&secret[..8]);
    let dec = format!("{}, {}, {}, {}", secret[0], secret[1], secret[2], secret[3]);
    out.contains(&h) || out.contains(&h.to_uppercase()) || out.contains(&dec)
}

#[test]
fn debug_output_contains_no_secret_material() {
    let s: Vec<[u8; 32]> = (0..8).map(|i| secret(&format!("debug {i}"))).collect();
    let alice = IdentityKeyPair::from_secret_bytes(&s[0], &s[1]);
    let bob = IdentityKeyPair::from_secret_bytes(&s[2], &s[3]);
    let mut prekeys = PrekeyStore::new(&mut Script::new(&[&s[4]]), &bob, NOW);
    prekeys
        .generate_one_time(&mut Script::new(&[&s[5]]), 1)
        .unwrap();
    let bundle = PrekeyBundle {
        identity: bob.public(),
        signed_prekey: prekeys.signed_prekey(),
        one_time_prekey: None,
    };
    let init = x3dh::initiate(&mut Script::new(&[&s[6]]), &alice, &bundle).unwrap();
    let mut sessions = PeerSessions::new("alice", "bob");
    sessions
        .initiate(&mut Script::new(&[&s[6], &s[7]]), &alice, &bundle)
        .unwrap();
    let session = sessions.current().unwrap();
    let root = session.root_key();
    let chain = session.sending_chain().unwrap();
    let (mk, next) = chain.peek();
    let mut secrets: Vec<[u8; 32]> = s.clone();
    secrets.extend([
        *init.sk.as_bytes(),
        *root.as_bytes(),
        *chain.as_bytes(),
        *mk.as_bytes(),
        *next,
    ]);
    let opk = prekeys.take_one_time(1).unwrap();
    let outputs = [
        format!("{alice:?}"),
        format!("{alice:#?}"),
        format!("{prekeys:?}"),
        format!("{prekeys:#?}"),
        format!("{opk:?}"),
        format!("{:?}", init.sk),
        format!("{init:?}"),
        format!("{root:?}"),
        format!("{chain:?}"),
        format!("{mk:?}"),
        format!("{session:?}"),
        format!("{session:#?}"),
        format!("{sessions:?}"),
    ];
    for out in &outputs {
        for secret in &secrets {
            assert!(!leaks(out, secret), "secret leaked in Debug output: {out}");
        }
    }
    // Snapshot of the shapes: only public or structural fields.
    assert_eq!(format!("{root:?}"), "RootKey { .. }");
    assert_eq!(format!("{chain:?}"), "ChainKey { index: 0, .. }");
    assert_eq!(format!("{mk:?}"), "MessageKey { index: 0, .. }");
    assert_eq!(format!("{:?}", init.sk), "SharedKey { .. }");
}

#[test]
fn used_message_keys_are_not_in_the_persisted_state() {
    let s: Vec<[u8; 32]> = (0..8).map(|i| secret(&format!("fs {i}"))).collect();
    let alice = IdentityKeyPair::from_secret_bytes(&s[0], &s[1]);
    let bob = IdentityKeyPair::from_secret_bytes(&s[2], &s[3]);
    let mut prekeys = PrekeyStore::new(&mut Script::new(&[&s[4]]), &bob, NOW);
    let bundle = PrekeyBundle {
        identity: bob.public(),
        signed_prekey: prekeys.signed_prekey(),
        one_time_prekey: None,
    };
    let mut a = Session::initiate(&mut Script::new(&[&s[5], &s[6]]), &alice, &bundle).unwrap();
    let (mk0, _) = a.sending_chain().unwrap().peek();
    let ck0 = *a.sending_chain().unwrap().as_bytes();
    let m0 = a.encrypt(&mut Script::new(&[]), b"m0").unwrap();
    // The sender forgot the key and the chain key it came from.
    let sender_state = a.pickle();
    assert!(
        !sender_state
            .windows(32)
            .any(|w| w == mk0.as_bytes() || w == ck0)
    );
    let Ok(Message::Prekey(pm)) = Message::decode(&m0) else {
        panic!("not a prekey message")
    };
    let (b, _) = Session::respond(&bob, &mut prekeys, &pm, NOW).unwrap();
    let receiver_state = b.pickle();
    assert!(
        !receiver_state
            .windows(32)
            .any(|w| w == mk0.as_bytes() || w == ck0)
    );
}

#[test]
fn compromised_sending_chain_cannot_open_messages_after_a_round_trip() {
    let s: Vec<[u8; 32]> = (0..10).map(|i| secret(&format!("pcs {i}"))).collect();
    let alice = IdentityKeyPair::from_secret_bytes(&s[0], &s[1]);
    let bob = IdentityKeyPair::from_secret_bytes(&s[2], &s[3]);
    let mut prekeys = PrekeyStore::new(&mut Script::new(&[&s[4]]), &bob, NOW);
    let bundle = PrekeyBundle {
        identity: bob.public(),
        signed_prekey: prekeys.signed_prekey(),
        one_time_prekey: None,
    };
    let mut a = Session::initiate(&mut Script::new(&[&s[5], &s[6]]), &alice, &bundle).unwrap();
    let m0 = a.encrypt(&mut Script::new(&[]), b"m0").unwrap();
    let Ok(Message::Prekey(pm)) = Message::decode(&m0) else {
        panic!("not a prekey message")
    };
    let (mut b, _) = Session::respond(&bob, &mut prekeys, &pm, NOW).unwrap();
    // The attacker steals Alice's state now.
    let stolen: Session = Session::unpickle(&a.pickle()).unwrap();
    let r = b.encrypt(&mut Script::new(&[&s[7]]), b"reply").unwrap();
    a.decrypt(&r).unwrap();
    let after = a
        .encrypt(&mut Script::new(&[&s[8]]), b"after the round trip")
        .unwrap();
    let Ok(Message::Ratchet(msg)) = Message::decode(&after) else {
        panic!("not a ratchet message")
    };
    // No key of the stolen sending chain opens it, nor does the stolen root
    // ratcheted with Bob's new public key (the attacker lacks Alice's new secret).
    let mut chain = stolen.sending_chain().unwrap().duplicate();
    for _ in 0..50 {
        let mk = chain.step();
        let mut buf = msg.ciphertext.to_vec();
        assert!(
            mk.open(stolen.ad(), msg.header_bytes, &mut buf, msg.tag)
                .is_err()
        );
    }
    assert_eq!(&b.decrypt(&after).unwrap()[..], b"after the round trip");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, .. proptest::prelude::ProptestConfig::default() })]

    /// For random identities and prekeys, with and without an OPK, the
    /// responder derives the initiator's AD and first root and chain keys
    /// (the root is `KDF_RK(SK, ·)`, so equal roots mean equal `SK`; the
    /// vectors check `SK` itself).
    #[test]
    fn random_parties_derive_the_same_secret_root_and_chain(seed in proptest::prelude::any::<u64>(), with_opk in proptest::prelude::any::<bool>()) {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let alice = IdentityKeyPair::generate(&mut rng);
        let bob = IdentityKeyPair::generate(&mut rng);
        let mut prekeys = PrekeyStore::new(&mut rng, &bob, NOW);
        let one_time_prekey = if with_opk {
            Some(prekeys.generate_one_time(&mut rng, 1).unwrap()[0])
        } else {
            None
        };
        let bundle = PrekeyBundle { identity: bob.public(), signed_prekey: prekeys.signed_prekey(), one_time_prekey };
        let mut a = Session::initiate(&mut rng, &alice, &bundle).unwrap();
        let m = a.encrypt(&mut rng, b"first").unwrap();
        let Ok(Message::Prekey(pm)) = Message::decode(&m) else { panic!("not a prekey message") };
        let responded = x3dh::respond(&bob, &prekeys, &pm, NOW).unwrap();
        let (b, pt) = Session::respond(&bob, &mut prekeys, &pm, NOW).unwrap();
        proptest::prop_assert_eq!(&pt[..], b"first");
        proptest::prop_assert_eq!(a.ad(), &responded.ad);
        proptest::prop_assert_eq!(b.ad(), a.ad());
        proptest::prop_assert_eq!(a.root_key().as_bytes(), b.root_key().as_bytes());
        proptest::prop_assert_eq!(a.sending_chain().unwrap().as_bytes(), b.receiving_chain().unwrap().as_bytes());
    }
}
