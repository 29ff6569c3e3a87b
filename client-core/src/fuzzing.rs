//! Invariant checkers shared by the fuzz targets in `fuzz/` (outside the
//! workspace) and the proptest mirrors in `tests/fuzz_mirror.rs`. Not part of
//! the API: hidden from the docs and free to change.
//!
//! Each `check_*` function feeds untrusted bytes to one decoder and panics
//! (the signal both libFuzzer and proptest understand) when an invariant the
//! user depends on does not hold. Living here rather than in a file
//! `include!`d by both sides means the checkers are compiled, linted and
//! formatted with the crate, and need only the public API plus the crate's
//! own dependencies.
//!
//! - [`check_message`]: [`Message::decode`] never panics and an accepted
//!   message re-encodes to exactly the input bytes.
//! - [`check_payload`]: [`Payload::decode`] never panics and an accepted
//!   payload re-encodes and decodes to the same value.
//! - [`check_store_header`]: opening a [`MemoryBackend`] profile whose header
//!   is the input never panics and never opens; the input is also tried with
//!   a correct checksum so the checks behind it are reached.
//! - [`check_sender_key`]: the sender-key message and distribution readers
//!   never panic; an accepted distribution re-encodes to its input; no
//!   message without the sender's signature decrypts.
//! - [`check_group_change`]: the group-change reader never panics, an
//!   accepted change re-encodes to its input, and no change applies to a
//!   group state without a member's signature.
//! - [`check_link`]: the link code reader, the request decoder behind the
//!   AEAD and the grant reader never panic; an accepted code or request
//!   re-encodes to its input; no grant and no sealed message made without
//!   the code's secret is ever accepted.
//! - [`interaction`]: a script of sends, deliveries, drops, duplicates,
//!   reorders, bit flips and pickle round trips between two parties.
// Panicking is how a broken invariant is reported to the fuzzer, the
// fixed parties' setup cannot fail on valid constants, and the checkers
// index buffers they built themselves.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use sha2::{Digest, Sha256};

use std::sync::OnceLock;

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use crate::group::{GroupChange, GroupState};
use crate::identity::IdentityKeyPair;
use crate::linking::{DeviceRequest, LinkCode, LinkOffer, PendingLink, seal_request};
use crate::message::{DevicePrekeyMessage, Message, PrekeyMessage, RatchetMessage};
use crate::payload::Payload;
use crate::sender_key::{OwnSenderKey, SenderKeyDistribution, SenderKeyMessage, SenderKeyRecord};
use crate::store::{
    Backend, KdfParams, MemoryBackend, ProfileStore, RawBatch, RawOp, StoreError, Table,
};

/// The sender-key decoders on arbitrary bytes (see the module docs).
pub fn check_sender_key(bytes: &[u8]) {
    let _ = SenderKeyMessage::decode(bytes);
    if let Ok(d) = SenderKeyDistribution::decode(bytes) {
        assert_eq!(
            d.encode().as_slice(),
            bytes,
            "a distribution does not re-encode to its input"
        );
    }
    let own = OwnSenderKey::generate(&mut StdRng::seed_from_u64(0x5e4d), [0; 16]);
    let mut record = SenderKeyRecord::new([0; 16]);
    record
        .add(&own.distribution())
        .expect("a generated distribution is accepted");
    assert!(
        record.decrypt(bytes).is_err(),
        "an unsigned sender-key message decrypted"
    );
}

/// [`GroupChange::decode`] on arbitrary bytes (see the module docs).
pub fn check_group_change(bytes: &[u8]) {
    let Ok(change) = GroupChange::decode(bytes) else {
        return;
    };
    assert_eq!(
        change.encode(),
        bytes,
        "a group change does not re-encode to its input"
    );
    let state = GroupState::empty(change.group_id);
    if let Ok(next) = state.apply(&change) {
        // Only a creation signed with the key it adds for its author applies.
        assert_eq!(next.version, 1);
    }
}

/// One fixed offer and the new device's pending link, made once.
fn link_pair() -> &'static (LinkOffer, PendingLink) {
    static PAIR: OnceLock<(LinkOffer, PendingLink)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(0x11_4b);
        let (offer, code) = LinkOffer::new(&mut rng, 0);
        let keys = IdentityKeyPair::generate(&mut rng).public();
        let device = DeviceRequest {
            signing_key: keys.sig_pub,
            identity_dh: keys.dh_pub,
            identity_dh_sig: keys.dh_sig,
            name: "fuzz".to_owned(),
        };
        let (_, pending) =
            seal_request(&code, device, &mut rng).expect("a generated device makes a request");
        (offer, pending)
    })
}

/// The linking decoders on arbitrary bytes (see the module docs).
pub fn check_link(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(code) = LinkCode::parse(&text) {
        let canonical: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        assert_eq!(
            *code.encode(),
            canonical,
            "a code does not re-encode to its input"
        );
    }
    if let Ok(request) = DeviceRequest::decode(bytes) {
        assert_eq!(
            request.encode().ok().as_deref(),
            Some(bytes),
            "a request does not re-encode to its input"
        );
    }
    let (offer, pending) = link_pair();
    assert!(
        pending.parse_grant(bytes).is_err(),
        "a grant with no account signature was accepted"
    );
    assert!(
        offer.open_request(bytes, 0).is_err(),
        "a forged request opened"
    );
    assert!(pending.open_grant(bytes).is_err(), "a forged grant opened");
}

/// Re-encodes a decoded message from its fields.
fn reencode(msg: &Message<'_>) -> Vec<u8> {
    fn ids(out: &mut Vec<u8>, signed_prekey_id: u32, one_time_prekey_id: Option<u32>) {
        out.extend_from_slice(&signed_prekey_id.to_be_bytes());
        match one_time_prekey_id {
            Some(id) => {
                out.push(1);
                out.extend_from_slice(&id.to_be_bytes());
            }
            None => out.push(0),
        }
    }
    fn ratchet(out: &mut Vec<u8>, m: &RatchetMessage<'_>) {
        out.extend_from_slice(&m.header.encode());
        out.extend_from_slice(m.ciphertext);
        out.extend_from_slice(m.tag);
    }
    let mut out = Vec::new();
    match msg {
        Message::Ratchet(m) => ratchet(&mut out, m),
        Message::Prekey(PrekeyMessage {
            initiator,
            base_key,
            signed_prekey_id,
            one_time_prekey_id,
            message,
        }) => {
            out.extend_from_slice(&[crate::message::MESSAGE_VERSION, crate::message::TYPE_PREKEY]);
            out.extend_from_slice(&initiator.sig_pub);
            out.extend_from_slice(&initiator.dh_pub);
            out.extend_from_slice(&initiator.dh_sig);
            out.extend_from_slice(base_key);
            ids(&mut out, *signed_prekey_id, *one_time_prekey_id);
            ratchet(&mut out, message);
        }
        Message::DevicePrekey(DevicePrekeyMessage {
            initiator,
            responder_device,
            base_key,
            signed_prekey_id,
            one_time_prekey_id,
            message,
        }) => {
            out.extend_from_slice(&[
                crate::message::MESSAGE_VERSION,
                crate::message::TYPE_DEVICE_PREKEY,
            ]);
            out.extend_from_slice(&initiator.account_key);
            out.extend_from_slice(&initiator.id.to_be_bytes());
            out.extend_from_slice(&initiator.signing_key);
            out.extend_from_slice(&initiator.identity_dh);
            out.extend_from_slice(&responder_device.to_be_bytes());
            out.extend_from_slice(base_key);
            ids(&mut out, *signed_prekey_id, *one_time_prekey_id);
            ratchet(&mut out, message);
        }
    }
    out
}

/// [`Message::decode`] on arbitrary bytes: no panic; an accepted message
/// re-encodes to the same bytes (so no byte is ignored by the parser) and its
/// header bytes are exactly the encoded header.
pub fn check_message(bytes: &[u8]) {
    let Ok(msg) = Message::decode(bytes) else {
        return;
    };
    assert_eq!(
        reencode(&msg),
        bytes,
        "message does not re-encode to its bytes"
    );
    let inner = msg.ratchet();
    assert_eq!(inner.header_bytes, &inner.header.encode()[..]);
    assert_eq!(
        Message::decode(&reencode(&msg)).as_ref(),
        Ok(&msg),
        "re-encoded message decodes differently"
    );
}

/// [`Payload::decode`] on arbitrary bytes: no panic; an accepted payload
/// encodes, and the encoding decodes to the same payload.
pub fn check_payload(bytes: &[u8]) {
    let Ok(payload) = Payload::decode(bytes) else {
        return;
    };
    let encoded = payload
        .encode()
        .unwrap_or_else(|e| panic!("decoded payload does not encode: {e:?}"));
    let back = Payload::decode(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded payload does not decode: {e:?}"));
    assert_eq!(back, payload, "payload round trip changed the value");
}

/// Byte range of the header body covered by its SHA-256 checksum.
const HEADER_BODY_LEN: usize = 111;
/// Offsets of m_cost, t_cost and p_cost in the header.
const HEADER_PARAMS_AT: [usize; 3] = [11, 15, 19];
/// Parameters cheap enough to hash on every fuzz input (Argon2 runs only if
/// everything else in a forged header checks out).
const CHEAP: KdfParams = KdfParams {
    m_cost_kib: 256,
    t_cost: 2,
    p_cost: 2,
};

/// The passphrase tried against forged headers.
pub const HEADER_PASSPHRASE: &[u8] = b"fuzz";

fn open_with_header(header: &[u8]) -> Result<(), StoreError> {
    let mut backend = MemoryBackend::new();
    backend
        .apply(RawBatch {
            ops: vec![RawOp::Put {
                table: Table::Meta,
                key: b"header".to_vec(),
                value: header.to_vec(),
            }],
        })
        .expect("the memory backend accepts a put");
    ProfileStore::open(Box::new(backend), HEADER_PASSPHRASE).map(|_| ())
}

/// Opens a profile whose header is `bytes` (and, when its parameters are
/// cheap, `bytes` with the checksum recomputed): no panic, never opens
/// (there is no settings record and the data key cannot be forged), and the
/// error is one a damaged or foreign header should give.
pub fn check_store_header(bytes: &[u8]) {
    let expect_refused = |r: Result<(), StoreError>| match r {
        Err(
            StoreError::Corrupt { .. }
            | StoreError::UnsupportedVersion { .. }
            | StoreError::InvalidKdfParams { .. }
            | StoreError::WrongPassphrase,
        ) => {}
        other => panic!("forged header gave {other:?}"),
    };
    expect_refused(open_with_header(bytes));
    if bytes.len() == HEADER_BODY_LEN + 32 {
        let param = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let [m, t, p] = HEADER_PARAMS_AT.map(param);
        // Out-of-bounds parameters are refused before hashing; in-bounds but
        // expensive ones would only measure Argon2, not the decoder.
        let cheap = m <= CHEAP.m_cost_kib && t <= CHEAP.t_cost && p <= CHEAP.p_cost;
        let absurd =
            m > KdfParams::MAX_M_COST_KIB || t > KdfParams::MAX_T_COST || p > KdfParams::MAX_P_COST;
        if cheap || absurd {
            let mut fixed = bytes.to_vec();
            let sum = Sha256::digest(&fixed[..HEADER_BODY_LEN]);
            fixed[HEADER_BODY_LEN..].copy_from_slice(&sum);
            expect_refused(open_with_header(&fixed));
        }
    }
}

/// A valid header (cheap parameters, passphrase [`HEADER_PASSPHRASE`]) for
/// seeding the corpus and the proptest mirror.
pub fn valid_store_header() -> Vec<u8> {
    let backend = MemoryBackend::new();
    let settings = crate::store::ProfileSettings::new("fuzz", "ws://127.0.0.1:1", 0);
    ProfileStore::create(
        Box::new(backend.clone()),
        HEADER_PASSPHRASE,
        KdfParams::insecure_for_tests(),
        &settings,
    )
    .expect("a fresh memory profile is created");
    backend
        .get(Table::Meta, b"header")
        .expect("the memory backend reads")
        .expect("create wrote a header")
}

pub mod interaction;
