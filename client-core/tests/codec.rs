//! Message codec: total decoding of junk, exact field round trips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::{Party, rng};
use hush_client_core::message::{HEADER_LEN, RatchetHeader};
use hush_client_core::{Message, MessageError, PeerSessions};
use proptest::prelude::*;

proptest! {
    #[test]
    fn message_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn message_decode_never_panics_past_the_type_byte(kind in 0u8..4, rest in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = vec![1u8, kind];
        bytes.extend(rest);
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn ratchet_header_round_trips(mut key in any::<[u8; 32]>(), pn in any::<u32>(), n in any::<u32>(), blocks in 1usize..4) {
        key[31] &= 0x7F;
        prop_assume!(hush_client_core::message::is_canonical_x25519(&key));
        let header = RatchetHeader { ratchet_key: key, previous_chain_length: pn, message_number: n };
        let mut bytes = header.encode().to_vec();
        bytes.extend(vec![0u8; 64 * blocks + 16]);
        let Ok(Message::Ratchet(m)) = Message::decode(&bytes) else { panic!("not a ratchet message") };
        prop_assert_eq!(m.header, header);
        prop_assert_eq!(m.header_bytes, &bytes[..HEADER_LEN]);
        prop_assert_eq!(m.ciphertext.len(), 64 * blocks);
    }

    #[test]
    fn ciphertext_not_a_whole_number_of_blocks_is_rejected(extra in 1usize..64) {
        let header = RatchetHeader { ratchet_key: [1; 32], previous_chain_length: 0, message_number: 0 };
        let mut bytes = header.encode().to_vec();
        bytes.extend(vec![0u8; 64 + extra + 16]);
        prop_assert!(matches!(Message::decode(&bytes), Err(MessageError::BadCiphertextLength(_))));
    }
}

#[test]
fn prekey_message_fields_round_trip() {
    for with_opk in [false, true] {
        let mut r = rng(51);
        let alice = Party::new("alice", &mut r);
        let mut bob = Party::new("bob", &mut r);
        let bundle = bob.bundle(&mut r, with_opk);
        let mut a = PeerSessions::new("alice", "bob");
        a.initiate(&mut r, &alice.identity, &bundle).unwrap();
        let ct = a.encrypt(&mut r, b"x").unwrap();
        let Ok(Message::Prekey(p)) = Message::decode(&ct) else {
            panic!("not a prekey message")
        };
        assert_eq!(p.initiator, alice.identity.public());
        assert_eq!(p.signed_prekey_id, bundle.signed_prekey.id);
        assert_eq!(p.one_time_prekey_id, bundle.one_time_prekey.map(|o| o.id));
        assert_eq!(&p.base_key, a.current().unwrap().base_key());
        assert_eq!(p.message.header.message_number, 0);
        assert_eq!(
            &p.message.header.ratchet_key,
            a.current().unwrap().ratchet_public()
        );
    }
}

#[test]
fn oversized_message_is_rejected_before_parsing() {
    let bytes = vec![1u8; hush_client_core::limits::MAX_MESSAGE_LEN + 1];
    assert!(matches!(
        Message::decode(&bytes),
        Err(MessageError::TooLong { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Junk that gets past the version and type bytes is refused with a
    /// typed error and leaves sessions and prekeys unchanged.
    #[test]
    fn decrypt_of_junk_is_an_error_and_changes_nothing(kind in 1u8..3, rest in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut p = common::pair(61, true);
        p.establish();
        let mut bytes = vec![1u8, kind];
        bytes.extend(rest);
        let sessions = p.b.pickle();
        let prekeys = p.bob.prekeys.pickle();
        prop_assert!(p.b_receives(&bytes).is_err());
        prop_assert!(sessions == p.b.pickle());
        prop_assert!(prekeys == p.bob.prekeys.pickle());
    }
}
