//! Linking: the round trip, every way a code or message can be wrong, and
//! the known-answer vector in `tests/vectors/linking.json` (regenerate with
//! `HUSH_REGENERATE_VECTORS=1 cargo test -p hush-client-core --lib linking`).

use hush_protocol::PublicKeyBytes;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rand_core::Rng as _;
use serde_json::{Value, json};

use super::*;
use crate::devices::{DeviceEntry, sign};
use crate::tests::{Script, secret, unhex};

const NOW: u64 = 1_700_000_000_000;
const VECTOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/linking.json");

fn account() -> IdentityKeyPair {
    IdentityKeyPair::from_secret_bytes(&secret("alice sig"), &secret("alice dh"))
}

fn alice() -> UserId {
    UserId::try_from("alice").unwrap()
}

fn new_device_keys() -> IdentityKeyPair {
    IdentityKeyPair::from_secret_bytes(&secret("alice device 2 sig"), &secret("alice device 2 dh"))
}

fn request_for(keys: &IdentityKeyPair, name: &str) -> DeviceRequest {
    let p = keys.public();
    DeviceRequest {
        signing_key: p.sig_pub,
        identity_dh: p.dh_pub,
        identity_dh_sig: p.dh_sig,
        name: name.to_owned(),
    }
}

fn entry(id: u32, p: &IdentityPublic) -> DeviceEntry {
    DeviceEntry {
        id,
        signing_key: PublicKeyBytes(p.sig_pub),
        identity_dh: PublicKeyBytes(p.dh_pub),
    }
}

fn list_with_device_2(keys: &IdentityPublic) -> SignedDeviceList {
    let own = account().public();
    sign(
        &account(),
        &alice(),
        2,
        vec![entry(1, &own), entry(2, keys)],
    )
    .unwrap()
}

/// Runs the whole exchange with `rng`; returns the code text, the request
/// and grant bytes and the opened grant.
fn exchange(rng: &mut (impl CryptoRng + ?Sized)) -> (String, Vec<u8>, Vec<u8>, Grant) {
    let (offer, code) = LinkOffer::new(rng, NOW);
    let text = code.encode().to_string();
    let typed = LinkCode::parse(&text).unwrap();
    assert_eq!(typed.rendezvous_id(), offer.rendezvous_id());
    let keys = new_device_keys();
    let (request, pending) = seal_request(&typed, request_for(&keys, "laptop"), rng).unwrap();
    let opened = offer.open_request(&request, NOW + 1000).unwrap();
    assert_eq!(opened.device, request_for(&keys, "laptop"));
    let list = list_with_device_2(&keys.public());
    let grant = offer
        .seal_grant(&opened, &account(), &alice(), 2, &list, NOW + 2000)
        .unwrap();
    let granted = pending.open_grant(&grant).unwrap();
    (text, request, grant, granted)
}

#[test]
fn a_device_is_linked_end_to_end() {
    let mut rng = StdRng::seed_from_u64(1);
    let (text, _, _, grant) = exchange(&mut rng);
    assert_eq!(text.len(), 85);
    assert_eq!(grant.user, alice());
    assert_eq!(grant.device_id, 2);
    assert_eq!(*grant.account_secret, *account().signing_secret());
    assert_eq!(grant.device_list.version(), 2);
    assert_eq!(
        grant.device_list.device(2).unwrap().signing_key.0,
        new_device_keys().public().sig_pub
    );
}

#[test]
fn codes_survive_how_people_copy_them_and_catch_typos() {
    let mut rng = StdRng::seed_from_u64(2);
    let (offer, code) = LinkOffer::new(&mut rng, NOW);
    let text = code.encode().to_string();
    let grouped: String = text
        .to_lowercase()
        .as_bytes()
        .chunks(5)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("-");
    let parsed = LinkCode::parse(&format!("  {grouped}\n")).unwrap();
    assert_eq!(parsed.rendezvous_id(), offer.rendezvous_id());
    // Every single-character change is caught by the checksum or the
    // alphabet, never taken for another code.
    for i in 0..text.len() {
        let mut typo = text.clone().into_bytes();
        typo[i] = if typo[i] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(
            matches!(
                LinkCode::parse(&typo),
                Err(LinkError::BadCode | LinkError::BadKey)
            ),
            "position {i}"
        );
    }
    assert_eq!(
        LinkCode::parse(&text[..84]).unwrap_err(),
        LinkError::BadCode
    );
    assert_eq!(LinkCode::parse("").unwrap_err(), LinkError::BadCode);
    assert_eq!(
        LinkCode::parse("not a code!").unwrap_err(),
        LinkError::BadCode
    );
}

#[test]
fn a_request_made_with_another_code_or_by_the_relay_does_not_open() {
    let mut rng = StdRng::seed_from_u64(3);
    let (offer, _) = LinkOffer::new(&mut rng, NOW);
    let (_, other_code) = LinkOffer::new(&mut rng, NOW);
    let (request, _) =
        seal_request(&other_code, request_for(&new_device_keys(), "x"), &mut rng).unwrap();
    assert_eq!(
        offer.open_request(&request, NOW).unwrap_err(),
        LinkError::NotAuthentic
    );
    // The relay knows the rendezvous id and the offer's public key, not the
    // secret: a request of its own, with its own device, does not open.
    let (_, code) = LinkOffer::new(&mut StdRng::seed_from_u64(3), NOW);
    let forged_code = LinkCode {
        ephemeral: code.ephemeral,
        secret: Zeroizing::new([0u8; LINK_SECRET_LEN]),
    };
    let mallory = IdentityKeyPair::generate(&mut rng);
    let (forged, _) =
        seal_request(&forged_code, request_for(&mallory, "relay's"), &mut rng).unwrap();
    assert_eq!(
        offer.open_request(&forged, NOW).unwrap_err(),
        LinkError::NotAuthentic
    );
    assert_eq!(
        offer.open_request(&[1, 2, 3], NOW).unwrap_err(),
        LinkError::NotAuthentic
    );
    // The offer stays usable for the genuine request.
    let (_, genuine_code) = LinkOffer::new(&mut StdRng::seed_from_u64(3), NOW);
    let (genuine, _) = seal_request(
        &genuine_code,
        request_for(&new_device_keys(), "ok"),
        &mut rng,
    )
    .unwrap();
    assert_eq!(offer.open_request(&genuine, NOW).unwrap().device.name, "ok");
}

#[test]
fn every_byte_of_the_request_and_grant_is_authenticated() {
    let mut rng = StdRng::seed_from_u64(4);
    let (offer, code) = LinkOffer::new(&mut rng, NOW);
    let keys = new_device_keys();
    let (request, pending) = seal_request(&code, request_for(&keys, "laptop"), &mut rng).unwrap();
    for i in 0..request.len() {
        let mut bad = request.clone();
        bad[i] ^= 0x01;
        assert!(offer.open_request(&bad, NOW).is_err(), "request byte {i}");
    }
    let opened = offer.open_request(&request, NOW).unwrap();
    let grant = offer
        .seal_grant(
            &opened,
            &account(),
            &alice(),
            2,
            &list_with_device_2(&keys.public()),
            NOW,
        )
        .unwrap();
    for i in 0..grant.len() {
        let mut bad = grant.clone();
        bad[i] ^= 0x80;
        assert_eq!(
            pending.open_grant(&bad).unwrap_err(),
            LinkError::NotAuthentic,
            "grant byte {i}"
        );
    }
    pending.open_grant(&grant).unwrap();
}

#[test]
fn an_offer_expires() {
    let mut rng = StdRng::seed_from_u64(5);
    let (offer, code) = LinkOffer::new(&mut rng, NOW);
    let keys = new_device_keys();
    let (request, _) = seal_request(&code, request_for(&keys, "laptop"), &mut rng).unwrap();
    assert!(offer.open_request(&request, NOW + LINK_CODE_TTL_MS).is_ok());
    assert_eq!(
        offer
            .open_request(&request, NOW + LINK_CODE_TTL_MS + 1)
            .unwrap_err(),
        LinkError::Expired
    );
    let opened = offer.open_request(&request, NOW).unwrap();
    let list = list_with_device_2(&keys.public());
    assert_eq!(
        offer
            .seal_grant(
                &opened,
                &account(),
                &alice(),
                2,
                &list,
                NOW + LINK_CODE_TTL_MS + 1
            )
            .unwrap_err(),
        LinkError::Expired
    );
}

#[test]
fn a_grant_must_name_this_device_under_the_account_key() {
    let mut rng = StdRng::seed_from_u64(6);
    let keys = new_device_keys();
    let other = IdentityKeyPair::generate(&mut rng);
    let cases = [
        // A list naming another device as 2.
        (2, list_with_device_2(&other.public())),
        // The right list, the wrong device id.
        (3, list_with_device_2(&keys.public())),
    ];
    for (id, list) in cases {
        let (offer, code) = LinkOffer::new(&mut rng, NOW);
        let (request, pending) =
            seal_request(&code, request_for(&keys, "laptop"), &mut rng).unwrap();
        let opened = offer.open_request(&request, NOW).unwrap();
        let grant = offer
            .seal_grant(&opened, &account(), &alice(), id, &list, NOW)
            .unwrap();
        assert!(matches!(
            pending.open_grant(&grant),
            Err(LinkError::BadGrant(_))
        ));
    }
    // A list signed by a key other than the account key handed over.
    let (offer, code) = LinkOffer::new(&mut rng, NOW);
    let (request, pending) = seal_request(&code, request_for(&keys, "laptop"), &mut rng).unwrap();
    let opened = offer.open_request(&request, NOW).unwrap();
    let own = other.public();
    let foreign = sign(
        &other,
        &alice(),
        2,
        vec![entry(1, &own), entry(2, &keys.public())],
    )
    .unwrap();
    let grant = offer
        .seal_grant(&opened, &account(), &alice(), 2, &foreign, NOW)
        .unwrap();
    assert!(matches!(
        pending.open_grant(&grant),
        Err(LinkError::BadGrant(_))
    ));
}

#[test]
fn requests_with_bad_names_or_keys_are_refused() {
    let mut rng = StdRng::seed_from_u64(7);
    let (_, code) = LinkOffer::new(&mut rng, NOW);
    let keys = new_device_keys();
    for name in ["", "a\nb", &"x".repeat(MAX_DEVICE_NAME_BYTES + 1)] {
        assert_eq!(
            seal_request(&code, request_for(&keys, name), &mut rng).unwrap_err(),
            LinkError::BadName
        );
    }
    seal_request(
        &code,
        request_for(&keys, &"é".repeat(MAX_DEVICE_NAME_BYTES / 2)),
        &mut rng,
    )
    .unwrap();
    let mut unsigned = request_for(&keys, "laptop");
    unsigned.identity_dh_sig[0] ^= 1;
    assert!(matches!(
        seal_request(&code, unsigned, &mut rng),
        Err(LinkError::Malformed(_))
    ));
}

#[test]
fn debug_output_shows_no_secret() {
    let mut rng = StdRng::seed_from_u64(8);
    let (text, _, _, grant) = exchange(&mut rng);
    let (offer, code) = LinkOffer::new(&mut StdRng::seed_from_u64(8), NOW);
    let secret_hex = hex::encode(*grant.account_secret);
    let all = format!("{offer:?} {code:?} {grant:?}");
    assert!(!all.contains(&secret_hex), "{all}");
    assert!(!all.contains(&text[..20]), "{all}");
    assert!(!all.contains(&hex::encode(*code.secret)), "{all}");
}

fn vector_case() -> Value {
    let link_secret = secret("link secret");
    let mut rng = Script::new(&[
        &secret("link offer ephemeral"),
        &link_secret,
        &secret("link request ephemeral"),
    ]);
    // The offer takes 32 bytes, then the first 16 of `link secret`; the
    // request's ephemeral key must start on a 32-byte boundary, so skip the
    // other 16.
    let (offer, code) = LinkOffer::new(&mut rng, NOW);
    let mut skip = [0u8; 16];
    rng.fill_bytes(&mut skip);
    let keys = new_device_keys();
    let (request, pending) = seal_request(&code, request_for(&keys, "laptop"), &mut rng).unwrap();
    let opened = offer.open_request(&request, NOW).unwrap();
    let list = list_with_device_2(&keys.public());
    let grant = offer
        .seal_grant(&opened, &account(), &alice(), 2, &list, NOW)
        .unwrap();
    pending.open_grant(&grant).unwrap();
    json!({
        "description": "Hush device link known-answer vector; see docs/crypto.md",
        "inputs": {
            "offer_ephemeral_secret": hex::encode(secret("link offer ephemeral")),
            "link_secret": hex::encode(&link_secret[..16]),
            "request_ephemeral_secret": hex::encode(secret("link request ephemeral")),
            "device_sig_secret": hex::encode(secret("alice device 2 sig")),
            "device_dh_secret": hex::encode(secret("alice device 2 dh")),
            "device_name": "laptop",
            "account_sig_secret": hex::encode(secret("alice sig")),
            "user_id": "alice",
            "device_id": 2,
            "device_list": serde_json::to_value(&list).unwrap(),
        },
        "code": code.encode().to_string(),
        "rendezvous_id": hex::encode(code.rendezvous_id()),
        "request": hex::encode(&request),
        "grant": hex::encode(&grant),
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

/// Recomputes the vector's rendezvous id and keys with raw HKDF and X25519
/// and opens both messages with raw ChaCha20-Poly1305, from the layout in
/// the module docs alone.
#[test]
fn vector_agrees_with_an_independent_computation() {
    use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};
    let v: Value = serde_json::from_str(&std::fs::read_to_string(VECTOR).unwrap()).unwrap();
    let i = &v["inputs"];
    let e: [u8; 32] = unhex(&i["offer_ephemeral_secret"]).try_into().unwrap();
    let n: [u8; 32] = unhex(&i["request_ephemeral_secret"]).try_into().unwrap();
    let s = unhex(&i["link_secret"]);
    let e_pub = x25519(e, X25519_BASEPOINT_BYTES);
    let n_pub = x25519(n, X25519_BASEPOINT_BYTES);

    let code = data_encoding::BASE32_NOPAD
        .decode(v["code"].as_str().unwrap().as_bytes())
        .unwrap();
    assert_eq!(code[0], 1);
    assert_eq!(&code[1..33], &e_pub);
    assert_eq!(&code[33..49], &s[..]);
    let sum = Sha256::digest(&code[..49]);
    assert_eq!(&code[49..], &sum[..4]);

    let mut rid = [0u8; 16];
    Hkdf::<Sha256>::new(None, &s)
        .expand(b"Hush link rendezvous v1", &mut rid)
        .unwrap();
    assert_eq!(hex::encode(rid), v["rendezvous_id"].as_str().unwrap());

    let shared = x25519(e, n_pub);
    assert_eq!(shared, x25519(n, e_pub));
    let mut info = b"Hush link v1".to_vec();
    info.extend_from_slice(&e_pub);
    info.extend_from_slice(&n_pub);
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(&s), &shared)
        .expand(&info, &mut okm)
        .unwrap();

    let request = unhex(&v["request"]);
    assert_eq!(&request[..32], &n_pub);
    let open = |key: &[u8], ad: &[u8], sealed: &[u8]| {
        let (body, tag) = sealed.split_at(sealed.len() - 16);
        let mut buf = body.to_vec();
        ChaCha20Poly1305::new(key.try_into().unwrap())
            .decrypt_inout_detached(
                &Nonce::default(),
                ad,
                buf.as_mut_slice().into(),
                tag.try_into().unwrap(),
            )
            .unwrap();
        buf
    };
    let plain = open(&okm[..32], b"HUSH-LINK-REQUEST-V1\0", &request[32..]);
    let device = IdentityKeyPair::from_secret_bytes(
        &unhex(&i["device_sig_secret"]).try_into().unwrap(),
        &unhex(&i["device_dh_secret"]).try_into().unwrap(),
    )
    .public();
    assert_eq!(&plain[..32], &device.sig_pub);
    assert_eq!(&plain[32..64], &device.dh_pub);
    assert_eq!(&plain[64..128], &device.dh_sig);
    assert_eq!(&plain[128..], b"\x06laptop");

    let grant = open(&okm[32..], b"HUSH-LINK-GRANT-V1\0", &unhex(&v["grant"]));
    assert_eq!(&grant[..7], b"\x00\x05alice");
    assert_eq!(&grant[7..11], &2u32.to_be_bytes());
    assert_eq!(
        hex::encode(&grant[11..43]),
        i["account_sig_secret"].as_str().unwrap()
    );
    let list_len = u32::from_be_bytes(grant[43..47].try_into().unwrap()) as usize;
    let list: Value = serde_json::from_slice(&grant[47..]).unwrap();
    assert_eq!(grant.len(), 47 + list_len);
    assert_eq!(list, i["device_list"]);
}
