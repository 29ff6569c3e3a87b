//! X3DH + first message: agreement, tamper resistance, third parties.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::{NOW, Party, pair, rng};
use hush_client_core::{DecryptError, Message, PeerSessions};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Both sides derive the same keys: the first message decrypts, the reply
    /// decrypts, with and without a one-time prekey.
    #[test]
    fn both_sides_agree_and_first_message_decrypts(seed in any::<u64>(), with_opk in any::<bool>(), msg in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut p = pair(seed, with_opk);
        let ct = p.a_to_b(&msg);
        prop_assert!(matches!(Message::decode(&ct), Ok(Message::Prekey(_))));
        prop_assert_eq!(p.b_receives(&ct).unwrap(), msg.clone());
        let reply = p.b_to_a(&msg);
        prop_assert!(matches!(Message::decode(&reply), Ok(Message::Ratchet(_))));
        prop_assert_eq!(p.a_receives(&reply).unwrap(), msg);
        // Once a reply arrived, Alice stops sending prekey messages.
        let next = p.a_to_b(b"x");
        prop_assert!(matches!(Message::decode(&next), Ok(Message::Ratchet(_))));
        prop_assert_eq!(p.b_receives(&next).unwrap(), b"x".to_vec());
    }

    /// Flipping any bit of a prekey message (wrapper fields, header, body)
    /// makes decryption fail and changes nothing: the genuine message still
    /// decrypts afterwards and the one-time prekey was not consumed.
    #[test]
    fn flipped_bit_in_prekey_message_fails_and_leaves_state_unchanged(seed in any::<u64>(), with_opk in any::<bool>(), bit in any::<prop::sample::Index>()) {
        let mut p = pair(seed, with_opk);
        let ct = p.a_to_b(b"genuine first message");
        let opks = p.bob.prekeys.one_time_count();
        let prekeys_before = p.bob.prekeys.pickle();
        let mut bad = ct.clone();
        let i = bit.index(bad.len() * 8);
        bad[i / 8] ^= 1 << (i % 8);
        prop_assert!(p.b_receives(&bad).is_err());
        prop_assert!(prekeys_before == p.bob.prekeys.pickle(), "failed decryption changed the prekeys");
        prop_assert!(!p.b.has_session());
        prop_assert_eq!(p.bob.prekeys.one_time_count(), opks);
        prop_assert_eq!(p.b_receives(&ct).unwrap(), b"genuine first message".to_vec());
    }

    /// Flipping any bit of a ratchet message (header or body) in an
    /// established session fails, and the genuine message still decrypts.
    #[test]
    fn flipped_bit_in_ratchet_message_fails_and_leaves_state_unchanged(seed in any::<u64>(), bit in any::<prop::sample::Index>(), ratchet_step in any::<bool>()) {
        let mut p = pair(seed, true);
        p.establish();
        let ct = if ratchet_step { p.b_to_a(b"reply with new ratchet key") } else { p.a_to_b(b"same chain") };
        let mut bad = ct.clone();
        let i = bit.index(bad.len() * 8);
        bad[i / 8] ^= 1 << (i % 8);
        let before = if ratchet_step { p.a.pickle() } else { p.b.pickle() };
        let res_bad = if ratchet_step { p.a_receives(&bad) } else { p.b_receives(&bad) };
        let after = if ratchet_step { p.a.pickle() } else { p.b.pickle() };
        prop_assert!(res_bad.is_err());
        prop_assert!(before == after, "failed decryption changed the session state");
        let res_good = if ratchet_step { p.a_receives(&ct) } else { p.b_receives(&ct) };
        prop_assert!(res_good.is_ok());
    }

    /// A third party with its own keys, even one holding a session with Bob,
    /// cannot decrypt what Alice sends Bob.
    #[test]
    fn third_party_cannot_decrypt(seed in any::<u64>(), with_opk in any::<bool>()) {
        let mut p = pair(seed, with_opk);
        let mut r = rng(seed ^ 0x5555);
        let mut eve = Party::new("eve", &mut r);
        let first = p.a_to_b(b"for bob only");
        let mut eve_sessions = PeerSessions::new("eve", "alice");
        prop_assert!(eve.decrypt(&mut eve_sessions, &first).is_err());
        // Eve with her own session towards Bob's keys.
        let bundle = p.bob.bundle(&mut r, false);
        let mut eve_to_bob = PeerSessions::new("eve", "bob");
        eve_to_bob.initiate(&mut r, &eve.identity, &bundle).unwrap();
        prop_assert!(eve.decrypt(&mut eve_to_bob, &first).is_err());
        p.b_receives(&first).unwrap();
        let reply = p.b_to_a(b"secret reply");
        prop_assert!(eve.decrypt(&mut eve_to_bob, &reply).is_err());
        prop_assert!(eve.decrypt(&mut eve_sessions, &reply).is_err());
    }
}

#[test]
fn several_prekey_messages_before_reply_all_decrypt_in_any_order() {
    let mut p = pair(7, true);
    let m0 = p.a_to_b(b"zero");
    let m1 = p.a_to_b(b"one");
    let m2 = p.a_to_b(b"two");
    for m in [&m0, &m1, &m2] {
        assert!(matches!(Message::decode(m), Ok(Message::Prekey(_))));
    }
    assert_eq!(p.b_receives(&m2).unwrap(), b"two");
    assert_eq!(p.b_receives(&m0).unwrap(), b"zero");
    assert_eq!(p.b_receives(&m1).unwrap(), b"one");
    assert_eq!(p.b.previous_count(), 0, "one X3DH run, one session");
    assert!(matches!(
        p.b_receives(&m1),
        Err(DecryptError::Duplicate { message_number: 1 })
    ));
}

#[test]
fn prekey_message_reveals_initiator_identity_before_commit() {
    let mut p = pair(8, false);
    let ct = p.a_to_b(b"hi");
    let msg = Message::decode(&ct).unwrap();
    assert_eq!(msg.initiator(), Some(p.alice.identity.public()));
    assert!(!p.b.has_session());
}

#[test]
fn previous_signed_prekey_answers_within_grace_period_only() {
    let mut r = rng(9);
    let alice = Party::new("alice", &mut r);
    let mut bob = Party::new("bob", &mut r);
    let bundle = bob.bundle(&mut r, false);
    let mut a = alice.sessions_with(&bob);
    a.initiate(&mut r, &alice.identity, &bundle).unwrap();
    let ct = a.encrypt(&mut r, b"sent before rotation").unwrap();
    let week = hush_client_core::limits::SIGNED_PREKEY_ROTATION_MS;
    assert!(!bob.prekeys.needs_rotation(NOW + week - 1));
    assert!(bob.prekeys.needs_rotation(NOW + week));
    let new = bob
        .prekeys
        .rotate_signed_prekey(&mut r, &bob.identity, NOW + week)
        .unwrap();
    assert_ne!(new.id, bundle.signed_prekey.id);
    assert!(!bob.prekeys.needs_rotation(NOW + week));
    let grace = hush_client_core::limits::SIGNED_PREKEY_GRACE_MS;
    // After the grace period the old SPK is gone.
    let mut b_late = bob.sessions_with(&alice);
    assert!(matches!(
        b_late.decrypt(&bob.identity, &mut bob.prekeys, NOW + week + grace, &ct),
        Err(DecryptError::X3dh(hush_client_core::X3dhError::Prekey(
            hush_client_core::PrekeyError::UnknownSignedPrekey { .. }
        )))
    ));
    // Within it, the message decrypts.
    let mut b = bob.sessions_with(&alice);
    let pt = b
        .decrypt(&bob.identity, &mut bob.prekeys, NOW + week + grace - 1, &ct)
        .unwrap();
    assert_eq!(&pt[..], b"sent before rotation");
    assert!(bob.prekeys.expire_previous(NOW + week + grace));
    assert!(
        !bob.prekeys
            .has_signed_prekey(bundle.signed_prekey.id, NOW + week)
    );
}

/// Exhaustive version of the property tests: every single bit of a prekey
/// message, of a same-chain message and of a DH-step message.
#[test]
fn every_single_bit_flip_is_rejected_without_state_change() {
    let mut p = pair(10, true);
    let first = p.a_to_b(b"first");
    let prekeys_before = p.bob.prekeys.pickle();
    for i in 0..first.len() * 8 {
        let mut bad = first.clone();
        bad[i / 8] ^= 1 << (i % 8);
        assert!(p.b_receives(&bad).is_err(), "bit {i} of the prekey message");
        assert!(!p.b.has_session());
    }
    assert!(prekeys_before == p.bob.prekeys.pickle());
    assert_eq!(p.b_receives(&first).unwrap(), b"first");

    let same_chain = p.a_to_b(b"same chain");
    let step = p.b_to_a(b"dh step");
    for (ct, to_bob) in [(&same_chain, true), (&step, false)] {
        let before = if to_bob { p.b.pickle() } else { p.a.pickle() };
        for i in 0..ct.len() * 8 {
            let mut bad = ct.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let r = if to_bob {
                p.b_receives(&bad)
            } else {
                p.a_receives(&bad)
            };
            assert!(r.is_err(), "bit {i}");
        }
        let after = if to_bob { p.b.pickle() } else { p.a.pickle() };
        assert!(before == after);
    }
    assert_eq!(p.b_receives(&same_chain).unwrap(), b"same chain");
    assert_eq!(p.a_receives(&step).unwrap(), b"dh step");
}
