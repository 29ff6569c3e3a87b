//! Device lists: the known-answer vector in `tests/vectors/device_list.json`
//! (regenerate with `HUSH_REGENERATE_VECTORS=1 cargo test -p
//! hush-client-core --lib devices`), and the acceptance rules.

use ed25519_dalek::{Signer as _, SigningKey};
use hush_protocol::{PublicKeyBytes, SignatureBytes};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::tests::{secret, unhex};

const VECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/device_list.json"
);

fn account() -> IdentityKeyPair {
    IdentityKeyPair::from_secret_bytes(&secret("alice sig"), &secret("alice dh"))
}

fn alice() -> UserId {
    UserId::try_from("alice").unwrap()
}

/// A device whose keys come from `label`'s fixed secrets.
fn device(id: u32, label: &str) -> DeviceEntry {
    let keys = IdentityKeyPair::from_secret_bytes(
        &secret(&format!("{label} sig")),
        &secret(&format!("{label} dh")),
    )
    .public();
    DeviceEntry {
        id,
        signing_key: PublicKeyBytes(keys.sig_pub),
        identity_dh: PublicKeyBytes(keys.dh_pub),
    }
}

/// Device 1 is the account's own identity (a profile from before devices),
/// device 2 a linked one.
fn vector_devices() -> Vec<DeviceEntry> {
    let own = account().public();
    vec![
        DeviceEntry {
            id: 1,
            signing_key: PublicKeyBytes(own.sig_pub),
            identity_dh: PublicKeyBytes(own.dh_pub),
        },
        device(2, "alice device 2"),
    ]
}

fn signed(version: u64, devices: Vec<DeviceEntry>) -> SignedDeviceList {
    sign(&account(), &alice(), version, devices).unwrap()
}

fn verified(version: u64, devices: Vec<DeviceEntry>) -> VerifiedDeviceList {
    verify(
        &account().public().sig_pub,
        &alice(),
        signed(version, devices),
    )
    .unwrap()
}

#[test]
fn known_answer_vector_matches() {
    let list = signed(2, vector_devices());
    let message = device_list_message("alice", 2, &list.devices).unwrap();
    let computed = json!({
        "description": "Hush device list known-answer vector; see docs/crypto.md",
        "inputs": {
            "account_sig_secret": hex::encode(secret("alice sig")),
            "user_id": "alice",
            "version": 2,
            "device_2_sig_secret": hex::encode(secret("alice device 2 sig")),
            "device_2_dh_secret": hex::encode(secret("alice device 2 dh")),
        },
        "signed_message": hex::encode(&message),
        "signature": hex::encode(list.signature.0),
        "json": serde_json::to_value(&list).unwrap(),
    });
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

/// Rebuilds the vector's signed bytes from the layout in docs/crypto.md
/// and signs them with raw ed25519-dalek, independently of the module.
#[test]
fn vector_agrees_with_an_independent_computation() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(VECTOR).unwrap()).unwrap();
    let account = SigningKey::from_bytes(
        &unhex(&v["inputs"]["account_sig_secret"])
            .try_into()
            .unwrap(),
    );
    let d2 = SigningKey::from_bytes(
        &unhex(&v["inputs"]["device_2_sig_secret"])
            .try_into()
            .unwrap(),
    );
    let d2_dh = x25519_dalek::x25519(
        unhex(&v["inputs"]["device_2_dh_secret"])
            .try_into()
            .unwrap(),
        x25519_dalek::X25519_BASEPOINT_BYTES,
    );
    let own_dh = account_dh_public();
    let mut m = b"HUSH-DEVICES-V1\0".to_vec();
    m.extend_from_slice(&[0, 5]);
    m.extend_from_slice(b"alice");
    m.extend_from_slice(&2u64.to_be_bytes());
    m.extend_from_slice(&[0, 2]);
    m.extend_from_slice(&1u32.to_be_bytes());
    m.extend_from_slice(account.verifying_key().as_bytes());
    m.extend_from_slice(&own_dh);
    m.extend_from_slice(&2u32.to_be_bytes());
    m.extend_from_slice(d2.verifying_key().as_bytes());
    m.extend_from_slice(&d2_dh);
    assert_eq!(hex::encode(&m), v["signed_message"].as_str().unwrap());
    assert_eq!(
        hex::encode(account.sign(&m).to_bytes()),
        v["signature"].as_str().unwrap()
    );
    let list: SignedDeviceList = serde_json::from_value(v["json"].clone()).unwrap();
    verify(account.verifying_key().as_bytes(), &alice(), list).unwrap();
}

fn account_dh_public() -> [u8; 32] {
    x25519_dalek::x25519(secret("alice dh"), x25519_dalek::X25519_BASEPOINT_BYTES)
}

#[test]
fn a_list_verifies_only_for_its_account_and_user() {
    let list = signed(1, vector_devices());
    let key = account().public().sig_pub;
    verify(&key, &alice(), list.clone()).unwrap();
    let bob = UserId::try_from("bob").unwrap();
    assert_eq!(
        verify(&key, &bob, list.clone()),
        Err(DeviceListError::BadSignature)
    );
    let other = device(9, "mallory").signing_key.0;
    assert_eq!(
        verify(&other, &alice(), list),
        Err(DeviceListError::BadSignature)
    );
}

#[test]
fn every_field_is_covered_by_the_signature() {
    let key = account().public().sig_pub;
    let base = signed(4, vector_devices());
    let mut tampered = Vec::new();
    let mut l = base.clone();
    l.version = 5;
    tampered.push(l);
    let mut l = base.clone();
    l.devices[1].id = 3;
    tampered.push(l);
    let mut l = base.clone();
    l.devices[1].signing_key = device(2, "mallory").signing_key;
    tampered.push(l);
    let mut l = base.clone();
    l.devices[1].identity_dh = device(2, "mallory").identity_dh;
    tampered.push(l);
    let mut l = base.clone();
    l.devices.pop();
    tampered.push(l);
    let mut l = base.clone();
    l.devices.push(device(3, "mallory"));
    tampered.push(l);
    for l in tampered {
        assert_eq!(
            verify(&key, &alice(), l.clone()),
            Err(DeviceListError::BadSignature),
            "{l:?}"
        );
    }
    verify(&key, &alice(), base).unwrap();
}

#[test]
fn bad_keys_and_shapes_are_refused_before_the_signature() {
    let key = account().public().sig_pub;
    let mut weak = vector_devices();
    weak[1].signing_key = PublicKeyBytes([0; 32]);
    weak[1].signing_key.0[0] = 1; // the identity point: weak
    assert_eq!(
        verify(&key, &alice(), signed(1, weak)),
        Err(DeviceListError::InvalidDeviceKey { id: 2 })
    );
    let mut noncanonical = vector_devices();
    noncanonical[0].identity_dh = PublicKeyBytes([0xff; 32]);
    assert_eq!(
        verify(&key, &alice(), signed(1, noncanonical)),
        Err(DeviceListError::NonCanonicalDeviceKey { id: 1 })
    );
    let mut l = signed(1, vector_devices());
    l.devices.swap(0, 1);
    assert_eq!(
        verify(&key, &alice(), l),
        Err(DeviceListError::Shape(DeviceListShapeError::Unordered(
            1, 2
        )))
    );
    assert_eq!(
        sign(&account(), &alice(), 1, Vec::new()),
        Err(DeviceListError::Shape(DeviceListShapeError::Empty))
    );
    let mut weak_account = [0u8; 32];
    weak_account[0] = 1;
    assert_eq!(
        verify(&weak_account, &alice(), signed(1, vector_devices())),
        Err(DeviceListError::InvalidAccountKey)
    );
}

#[test]
fn lists_only_move_forward() {
    let v1 = verified(1, vec![vector_devices()[0]]);
    let v2 = verified(2, vector_devices());
    let v3 = verified(3, vec![vector_devices()[1]]);
    assert_eq!(
        advance(None, &v1),
        Ok(Update::Changed {
            added: vec![vector_devices()[0]],
            removed: vec![]
        })
    );
    assert_eq!(
        advance(Some(&v1), &v2),
        Ok(Update::Changed {
            added: vec![vector_devices()[1]],
            removed: vec![]
        })
    );
    assert_eq!(
        advance(Some(&v2), &v3),
        Ok(Update::Changed {
            added: vec![],
            removed: vec![vector_devices()[0]]
        })
    );
    assert_eq!(advance(Some(&v2), &v2.clone()), Ok(Update::Unchanged));
    assert_eq!(
        advance(Some(&v3), &v1),
        Err(DeviceListError::Rollback {
            known: 3,
            offered: 1
        })
    );
    let other_v2 = verified(2, vec![vector_devices()[0], device(5, "alice device 5")]);
    assert_eq!(
        advance(Some(&v2), &other_v2),
        Err(DeviceListError::Equivocation { version: 2 })
    );
}

#[test]
fn a_device_id_with_new_keys_is_removed_and_added() {
    let old = verified(1, vector_devices());
    let mut devices = vector_devices();
    devices[1] = device(2, "alice device 2 again");
    let new = verified(2, devices.clone());
    assert_eq!(
        advance(Some(&old), &new),
        Ok(Update::Changed {
            added: vec![devices[1]],
            removed: vec![vector_devices()[1]]
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single bit flipped in the signature makes the list fail.
    #[test]
    fn a_flipped_signature_bit_never_verifies(bit in 0usize..512) {
        let key = account().public().sig_pub;
        let mut l = signed(7, vector_devices());
        let mut sig = l.signature.0;
        sig[bit / 8] ^= 1 << (bit % 8);
        l.signature = SignatureBytes(sig);
        prop_assert!(verify(&key, &alice(), l).is_err());
    }

    /// Whatever the versions, `advance` accepts exactly the newer ones.
    #[test]
    fn advance_accepts_exactly_newer_versions(known in 0u64..1000, offered in 0u64..1000) {
        let k = verified(known, vector_devices());
        let o = verified(offered, vec![vector_devices()[0]]);
        let r = advance(Some(&k), &o);
        if offered > known {
            let changed = matches!(r, Ok(Update::Changed { .. }));
            prop_assert!(changed, "{:?}", r);
        } else if offered < known {
            prop_assert_eq!(r, Err(DeviceListError::Rollback { known, offered }));
        } else {
            prop_assert_eq!(r, Err(DeviceListError::Equivocation { version: known }));
        }
    }
}
