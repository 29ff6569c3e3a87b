//! The known-answer vector of X3DH between devices
//! (`tests/vectors/x3dh_device.json`, described in docs/crypto.md), and
//! an independent recomputation of its `SK`, `AD` and first ciphertext
//! from the raw primitives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use hush_protocol::{PublicKeyBytes, UserId};
use serde_json::{Value, json};

use crate::devices::{self, DeviceEntry, DevicePublic};
use crate::identity::IdentityKeyPair;
use crate::message::Message;
use crate::prekey::{DeviceBundle, PrekeyStore};
use crate::ratchet::Session;
use crate::tests::{Script, secret, unhex};
use crate::x3dh;

const NOW: u64 = 1_700_000_000_000;
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/x3dh_device.json"
);
const PT1: &[u8] = b"Hush known-answer test: device to device";
const PT2: &[u8] = b"and the reply";
const LABELS: [&str; 9] = [
    "alice sig",
    "alice device 2 sig",
    "alice device 2 dh",
    "bob sig",
    "bob dh",
    "bob spk",
    "bob opk",
    "alice ek",
    "alice ratchet",
];

fn entry(id: u32, keys: &IdentityKeyPair) -> DeviceEntry {
    DeviceEntry {
        id,
        signing_key: PublicKeyBytes(keys.public().sig_pub),
        identity_dh: PublicKeyBytes(keys.public().dh_pub),
    }
}

/// Alice's device 2 starts a session with Bob's device 1 (a profile from
/// before devices: the account's own keys), with a one-time prekey.
fn case() -> Value {
    let s: Vec<[u8; 32]> = LABELS.iter().map(|l| secret(l)).collect();
    let alice_account = IdentityKeyPair::from_secret_bytes(&s[0], &secret("alice dh"));
    let alice_d2 = IdentityKeyPair::from_secret_bytes(&s[1], &s[2]);
    let bob = IdentityKeyPair::from_secret_bytes(&s[3], &s[4]);
    let (alice_user, bob_user) = (
        UserId::try_from("alice").unwrap(),
        UserId::try_from("bob").unwrap(),
    );
    let alice_list = devices::sign(
        &alice_account,
        &alice_user,
        2,
        vec![entry(1, &alice_account), entry(2, &alice_d2)],
    )
    .unwrap();
    let alice_list =
        devices::verify(&alice_account.public().sig_pub, &alice_user, alice_list).unwrap();
    let bob_list = devices::sign(&bob, &bob_user, 1, vec![entry(1, &bob)]).unwrap();
    let bob_list = devices::verify(&bob.public().sig_pub, &bob_user, bob_list).unwrap();
    let alice_device = alice_list.device_public(2).unwrap();
    let bob_device = DevicePublic::legacy(&bob.public());
    assert_eq!(bob_list.device_public(1), Some(bob_device));

    let mut bob_rng = Script::new(&[&s[5], &s[6]]);
    let mut prekeys = PrekeyStore::new(&mut bob_rng, &bob, NOW);
    let opk = prekeys.generate_one_time(&mut bob_rng, 1).unwrap()[0];
    let bundle = DeviceBundle {
        device_id: 1,
        signed_prekey: prekeys.signed_prekey(),
        one_time_prekey: Some(opk),
    };
    let (init, _) = x3dh::initiate_device(
        &mut Script::new(&[&s[7]]),
        &alice_d2,
        &alice_device,
        &bob_list,
        &bundle,
    )
    .unwrap();
    let mut a = Session::initiate_device(
        &mut Script::new(&[&s[7], &s[8]]),
        &alice_d2,
        &alice_device,
        &bob_list,
        &bundle,
    )
    .unwrap();
    let m1 = a.encrypt(&mut Script::new(&[]), PT1).unwrap();
    let Ok(Message::DevicePrekey(pm)) = Message::decode(&m1) else {
        panic!("first message is not a device prekey message")
    };
    let (mut b, pt) =
        Session::respond_device(&bob, &bob_device, &mut prekeys, &pm, &alice_list, NOW).unwrap();
    assert_eq!(&pt[..], PT1);
    let m2 = b
        .encrypt(&mut Script::new(&[&secret("bob ratchet")]), PT2)
        .unwrap();
    assert_eq!(&a.decrypt(&m2).unwrap()[..], PT2);

    let secrets: serde_json::Map<String, Value> = LABELS
        .iter()
        .chain(&["alice dh", "bob ratchet"])
        .map(|l| {
            (
                format!("{}_secret", l.replace(' ', "_")),
                json!(hex::encode(secret(l))),
            )
        })
        .collect();
    json!({
        "inputs": {
            "secrets": secrets,
            "alice_device_list_version": 2,
            "signed_prekey_id": bundle.signed_prekey.id,
            "one_time_prekey_id": opk.id,
            "plaintext_1": hex::encode(PT1),
            "plaintext_2": hex::encode(PT2),
        },
        "outputs": {
            "alice_device_2": hex::encode(alice_device.to_bytes()),
            "bob_device_1": hex::encode(bob_device.to_bytes()),
            "bob_signed_prekey_signature": hex::encode(bundle.signed_prekey.signature),
            "x3dh_ad": hex::encode(init.ad),
            "x3dh_sk": hex::encode(init.sk.as_bytes()),
            "message_1": hex::encode(&m1),
            "message_2": hex::encode(&m2),
        }
    })
}

#[test]
fn device_known_answer_vector_matches() {
    let computed = json!({
        "description": "Hush X3DH between devices (v2) known-answer vector; see docs/crypto.md",
        "cases": [case()],
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

/// Recomputes `D_A`, `D_B`, `AD`, `SK` and the first ciphertext's key
/// schedule from the documented layouts with raw X25519, Ed25519 and
/// HKDF, independently of the session code.
#[test]
fn device_vector_agrees_with_an_independent_computation() {
    use chacha20poly1305::aead::AeadInOut;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
    use ed25519_dalek::SigningKey;
    use hkdf::Hkdf;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};

    let v = case();
    let i = &v["inputs"]["secrets"];
    let o = &v["outputs"];
    let arr = |k: &str| -> [u8; 32] { unhex(&i[k]).try_into().unwrap() };
    let public = |k: &[u8; 32]| x25519(*k, X25519_BASEPOINT_BYTES);
    let ed = |k: &[u8; 32]| SigningKey::from_bytes(k).verifying_key().to_bytes();

    let mut d_a = ed(&arr("alice_sig_secret")).to_vec();
    d_a.extend(2u32.to_be_bytes());
    d_a.extend(ed(&arr("alice_device_2_sig_secret")));
    d_a.extend(public(&arr("alice_device_2_dh_secret")));
    assert_eq!(hex::encode(&d_a), o["alice_device_2"].as_str().unwrap());
    let mut d_b = ed(&arr("bob_sig_secret")).to_vec();
    d_b.extend(1u32.to_be_bytes());
    d_b.extend(ed(&arr("bob_sig_secret")));
    d_b.extend(public(&arr("bob_dh_secret")));
    assert_eq!(hex::encode(&d_b), o["bob_device_1"].as_str().unwrap());
    let ad = [d_a.clone(), d_b].concat();
    assert_eq!(hex::encode(&ad), o["x3dh_ad"].as_str().unwrap());

    let spk = public(&arr("bob_spk_secret"));
    let ek = arr("alice_ek_secret");
    let mut ikm = vec![0xFFu8; 32];
    ikm.extend(x25519(arr("alice_device_2_dh_secret"), spk));
    ikm.extend(x25519(ek, public(&arr("bob_dh_secret"))));
    ikm.extend(x25519(ek, spk));
    ikm.extend(x25519(ek, public(&arr("bob_opk_secret"))));
    let mut sk = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&[0u8; 32]), &ikm)
        .expand(b"Hush X3DH v2", &mut sk)
        .unwrap();
    assert_eq!(hex::encode(sk), o["x3dh_sk"].as_str().unwrap());

    // The wrapper: 0x01 0x04 D_A u32be(1) EK_A u32be(spk) 0x01 u32be(opk).
    let m1 = unhex(&o["message_1"]);
    let mut wrapper = vec![1u8, 4];
    wrapper.extend(&d_a);
    wrapper.extend(1u32.to_be_bytes());
    wrapper.extend(public(&ek));
    wrapper.extend(1u32.to_be_bytes());
    wrapper.push(1);
    wrapper.extend(1u32.to_be_bytes());
    assert_eq!(&m1[..wrapper.len()], &wrapper[..]);

    // First message: RK, CKs from DH(A1, SPK_B); MK_0; AEAD over AD || header.
    let dh = x25519(arr("alice_ratchet_secret"), spk);
    let mut rk_ck = [0u8; 64];
    Hkdf::<Sha256>::new(Some(&sk), &dh)
        .expand(b"Hush ratchet v1", &mut rk_ck)
        .unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&rk_ck[32..]).unwrap();
    mac.update(&[1]);
    let mk = mac.finalize().into_bytes();
    let mut okm = [0u8; 44];
    Hkdf::<Sha256>::from_prk(&mk)
        .unwrap()
        .expand(b"Hush message keys v1", &mut okm)
        .unwrap();
    let inner = &m1[wrapper.len()..];
    let header = &inner[..42];
    let mut body = PT1.to_vec();
    body.push(0x80);
    body.resize(64, 0);
    let aad = [ad, header.to_vec()].concat();
    let key: [u8; 32] = okm[..32].try_into().unwrap();
    let nonce: [u8; 12] = okm[32..].try_into().unwrap();
    let tag = ChaCha20Poly1305::new(&key.into())
        .encrypt_inout_detached(&nonce.into(), &aad, body.as_mut_slice().into())
        .unwrap();
    assert_eq!(&inner[42..106], &body[..]);
    assert_eq!(&inner[106..], &tag[..]);
}
