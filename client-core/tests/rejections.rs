//! Every rejection the handshake and the ratchet must make, one named test each.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::{NOW, Party, pair, rng};
use hush_client_core::limits::{MAX_RECEIVING_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS};
use hush_client_core::{
    DecryptError, KeyError, Message, MessageError, PeerSessions, PrekeyError, Session, X3dhError,
};

#[test]
fn bad_signed_prekey_signature_is_rejected() {
    let mut r = rng(1);
    let alice = Party::new("alice", &mut r);
    let mut bob = Party::new("bob", &mut r);
    let mut bundle = bob.bundle(&mut r, true);
    bundle.signed_prekey.signature[5] ^= 1;
    let err = Session::initiate(&mut r, &alice.identity, &bundle).unwrap_err();
    assert!(matches!(
        err,
        X3dhError::Key(KeyError::BadSignedPrekeySignature { id }) if id == bundle.signed_prekey.id
    ));
    // A signature over another id does not transfer either.
    let mut bundle = bob.bundle(&mut r, true);
    bundle.signed_prekey.id += 1;
    assert!(matches!(
        Session::initiate(&mut r, &alice.identity, &bundle),
        Err(X3dhError::Key(KeyError::BadSignedPrekeySignature { .. }))
    ));
}

#[test]
fn bad_identity_dh_signature_is_rejected() {
    let mut r = rng(2);
    let alice = Party::new("alice", &mut r);
    let mut bob = Party::new("bob", &mut r);
    let mut bundle = bob.bundle(&mut r, false);
    bundle.identity.dh_sig[0] ^= 0x80;
    assert!(matches!(
        Session::initiate(&mut r, &alice.identity, &bundle),
        Err(X3dhError::Key(KeyError::BadIdentityDhSignature))
    ));
    // A DH key substituted under a genuine signature is rejected too.
    let mut bundle = bob.bundle(&mut r, false);
    bundle.identity.dh_pub = alice.identity.public().dh_pub;
    assert!(matches!(
        Session::initiate(&mut r, &alice.identity, &bundle),
        Err(X3dhError::Key(KeyError::BadIdentityDhSignature))
    ));
}

#[test]
fn bad_identity_dh_signature_in_prekey_message_is_rejected() {
    let mut p = pair(3, true);
    let mut ct = p.a_to_b(b"x");
    ct[66 + 10] ^= 1; // inside the initiator's dh_sig
    assert!(matches!(
        p.b_receives(&ct),
        Err(DecryptError::X3dh(X3dhError::Key(
            KeyError::BadIdentityDhSignature
        )))
    ));
}

/// Low-order X25519 points: all-zero, one, and the order-8 points.
fn low_order_points() -> Vec<[u8; 32]> {
    let mut one = [0u8; 32];
    one[0] = 1;
    let p8: [u8; 32] = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ];
    vec![[0u8; 32], one, p8]
}

#[test]
fn low_order_one_time_prekey_is_non_contributory() {
    let mut r = rng(4);
    let alice = Party::new("alice", &mut r);
    let mut bob = Party::new("bob", &mut r);
    for point in low_order_points() {
        let mut bundle = bob.bundle(&mut r, true);
        if let Some(opk) = bundle.one_time_prekey.as_mut() {
            opk.public = point;
        }
        assert!(matches!(
            Session::initiate(&mut r, &alice.identity, &bundle),
            Err(X3dhError::NonContributory(_))
        ));
    }
}

#[test]
fn all_zero_base_key_in_prekey_message_is_non_contributory() {
    for point in low_order_points() {
        let mut p = pair(5, false);
        let mut ct = p.a_to_b(b"x");
        ct[130..162].copy_from_slice(&point);
        assert!(matches!(
            p.b_receives(&ct),
            Err(DecryptError::X3dh(X3dhError::NonContributory(_)))
        ));
        assert!(!p.b.has_session());
    }
}

#[test]
fn low_order_ratchet_key_is_non_contributory() {
    let mut p = pair(6, false);
    p.establish();
    for point in low_order_points() {
        let mut ct = p.b_to_a(b"x");
        ct[2..34].copy_from_slice(&point);
        assert!(matches!(
            p.a_receives(&ct),
            Err(DecryptError::NonContributory(_))
        ));
    }
}

#[test]
fn skip_over_limit_is_rejected() {
    let mut p = pair(7, false);
    p.establish();
    let mut sent = Vec::new();
    for i in 0..=MAX_SKIP + 1 {
        sent.push(p.a_to_b(format!("m{i}").as_bytes()));
    }
    // Skipping MAX_SKIP + 1 keys in one chain is refused, state unchanged.
    let before = p.b.pickle();
    assert_eq!(
        p.b_receives(&sent[(MAX_SKIP + 1) as usize]),
        Err(DecryptError::SkipTooLarge {
            skip: MAX_SKIP + 1,
            max: MAX_SKIP
        })
    );
    assert!(before == p.b.pickle());
    // Skipping exactly MAX_SKIP is fine, and the skipped ones decrypt later.
    assert_eq!(
        p.b_receives(&sent[MAX_SKIP as usize]).unwrap(),
        format!("m{MAX_SKIP}").as_bytes()
    );
    assert_eq!(
        p.b.current().unwrap().skipped_key_count(),
        MAX_SKIP as usize
    );
    assert_eq!(p.b_receives(&sent[0]).unwrap(), b"m0");
    assert_eq!(
        p.b_receives(&sent[(MAX_SKIP + 1) as usize]).unwrap(),
        format!("m{}", MAX_SKIP + 1).as_bytes()
    );
}

#[test]
fn skipped_keys_are_capped_and_oldest_evicted() {
    let mut p = pair(8, false);
    p.establish();
    // Three chains of MAX_SKIP + 1 messages each, only the last of each delivered.
    let mut first_of_chain = Vec::new();
    for round in 0..3 {
        let mut last = None;
        for i in 0..=MAX_SKIP {
            let m = p.a_to_b(format!("r{round} m{i}").as_bytes());
            if i == 0 {
                first_of_chain.push(m.clone());
            }
            last = Some(m);
        }
        p.b_receives(&last.unwrap()).unwrap();
        let back = p.b_to_a(b"ack");
        p.a_receives(&back).unwrap();
        assert!(p.b.current().unwrap().skipped_key_count() <= MAX_SKIPPED_KEYS);
    }
    assert_eq!(p.b.current().unwrap().skipped_key_count(), MAX_SKIPPED_KEYS);
    // The first chain's keys were evicted; the last chain's still work.
    assert!(p.b_receives(&first_of_chain[0]).is_err());
    assert_eq!(p.b_receives(&first_of_chain[2]).unwrap(), b"r2 m0");
}

#[test]
fn reused_one_time_prekey_is_rejected() {
    let mut r = rng(9);
    let alice = Party::new("alice", &mut r);
    let carol = Party::new("carol", &mut r);
    let mut bob = Party::new("bob", &mut r);
    let bundle = bob.bundle(&mut r, true);
    let opk = bundle.one_time_prekey.unwrap().id;
    // Two initiators get the same OPK (a misbehaving relay).
    let mut a = alice.sessions_with(&bob);
    a.initiate(&mut r, &alice.identity, &bundle).unwrap();
    let mut c = carol.sessions_with(&bob);
    c.initiate(&mut r, &carol.identity, &bundle).unwrap();
    let from_a = a.encrypt(&mut r, b"first").unwrap();
    let from_c = c.encrypt(&mut r, b"second").unwrap();
    let mut b_a = bob.sessions_with(&alice);
    assert_eq!(bob.decrypt(&mut b_a, &from_a).unwrap(), b"first");
    let mut b_c = bob.sessions_with(&carol);
    assert_eq!(
        bob.decrypt(&mut b_c, &from_c),
        Err(DecryptError::X3dh(X3dhError::Prekey(
            PrekeyError::OneTimePrekeyAlreadyUsed { id: opk }
        )))
    );
    // A never-issued id is a different error.
    assert_eq!(
        bob.prekeys.take_one_time(999_999).unwrap_err(),
        PrekeyError::UnknownOneTimePrekey { id: 999_999 }
    );
}

#[test]
fn unknown_version_byte_is_rejected() {
    let mut p = pair(10, false);
    let mut ct = p.a_to_b(b"x");
    for v in [0u8, 2, 0xFF] {
        ct[0] = v;
        assert_eq!(Message::decode(&ct), Err(MessageError::UnknownVersion(v)));
        assert_eq!(
            p.b_receives(&ct),
            Err(DecryptError::Message(MessageError::UnknownVersion(v)))
        );
    }
    let mut ct = p.a_to_b(b"x");
    ct[1] = 9;
    assert_eq!(Message::decode(&ct), Err(MessageError::UnknownType(9)));
}

#[test]
fn truncated_message_is_rejected() {
    let mut p = pair(11, true);
    let prekey_msg = p.a_to_b(b"hello");
    for len in 0..prekey_msg.len() {
        let r = p.b_receives(&prekey_msg[..len]);
        assert!(
            matches!(r, Err(DecryptError::Message(_))),
            "prefix of {len} bytes gave {r:?}"
        );
    }
    assert_eq!(p.b_receives(&prekey_msg).unwrap(), b"hello");
    let reply = p.b_to_a(b"world");
    for len in 0..reply.len() {
        let r = p.a_receives(&reply[..len]);
        assert!(
            matches!(r, Err(DecryptError::Message(_))),
            "prefix of {len} bytes gave {r:?}"
        );
    }
    assert_eq!(p.a_receives(&reply).unwrap(), b"world");
}

#[test]
fn duplicate_message_is_rejected() {
    let mut p = pair(12, false);
    let m = p.a_to_b(b"once");
    assert_eq!(p.b_receives(&m).unwrap(), b"once");
    assert_eq!(
        p.b_receives(&m),
        Err(DecryptError::Duplicate { message_number: 0 })
    );
    let m1 = p.a_to_b(b"skipped");
    let m2 = p.a_to_b(b"ahead");
    assert_eq!(p.b_receives(&m2).unwrap(), b"ahead");
    assert_eq!(p.b_receives(&m1).unwrap(), b"skipped");
    assert_eq!(
        p.b_receives(&m1),
        Err(DecryptError::Duplicate { message_number: 1 })
    );
    assert_eq!(
        p.b_receives(&m2),
        Err(DecryptError::Duplicate { message_number: 2 })
    );
    // A duplicate is not an authentication failure.
    assert_ne!(p.b_receives(&m2), Err(DecryptError::AuthFailed));
}

#[test]
fn too_many_receiving_chains_are_handled_within_bound() {
    let mut p = pair(13, false);
    p.establish();
    // One message held back from each of many of Alice's chains.
    let mut held = Vec::new();
    for round in 0..(MAX_RECEIVING_CHAINS * 3) {
        let skipped = p.a_to_b(format!("late {round}").as_bytes());
        let m = p.a_to_b(b"ping");
        p.b_receives(&m).unwrap();
        let r = p.b_to_a(b"pong");
        p.a_receives(&r).unwrap();
        held.push((round, skipped.clone()));
        assert!(p.b.current().unwrap().receiving_chain_count() <= MAX_RECEIVING_CHAINS);
        assert!(p.a.current().unwrap().receiving_chain_count() <= MAX_RECEIVING_CHAINS);
        // A message in the current chain decrypted twice is still a duplicate.
        assert!(matches!(
            p.b_receives(&m),
            Err(DecryptError::Duplicate { .. })
        ));
    }
    assert_eq!(
        p.b.current().unwrap().receiving_chain_count(),
        MAX_RECEIVING_CHAINS
    );
    // Held-back messages of forgotten chains still decrypt from their stored keys.
    for (round, m) in held {
        assert_eq!(
            p.b_receives(&m).unwrap(),
            format!("late {round}").as_bytes()
        );
        assert!(matches!(
            p.b_receives(&m),
            Err(DecryptError::Duplicate { .. })
        ));
    }
}

#[test]
fn ratchet_message_without_session_is_rejected() {
    let mut p = pair(14, false);
    p.establish();
    let m = p.a_to_b(b"x");
    let mut r = rng(99);
    let mut stranger = Party::new("stranger", &mut r);
    let mut s = PeerSessions::new("stranger", "alice");
    assert_eq!(stranger.decrypt(&mut s, &m), Err(DecryptError::NoSession));
    let _ = NOW;
}

#[test]
fn oversized_plaintext_is_rejected() {
    let mut p = pair(15, false);
    let big = vec![0u8; hush_client_core::limits::MAX_PLAINTEXT_LEN + 1];
    assert!(matches!(
        p.a.encrypt(&mut p.rng, &big),
        Err(hush_client_core::EncryptError::PlaintextTooLong { .. })
    ));
    let max = vec![7u8; hush_client_core::limits::MAX_PLAINTEXT_LEN];
    let ct = p.a_to_b(&max);
    assert_eq!(p.b_receives(&ct).unwrap(), max);
}

#[test]
fn non_canonical_x25519_keys_are_rejected() {
    // X25519 ignores the top bit: a flipped top bit must not yield a second
    // valid encoding of the same key anywhere.
    let mut p = pair(16, true);
    let mut ct = p.a_to_b(b"x");
    ct[161] ^= 0x80; // top bit of the base key
    assert_eq!(
        p.b_receives(&ct),
        Err(DecryptError::Message(MessageError::NonCanonicalKey))
    );
    ct[161] ^= 0x80;
    ct[65] ^= 0x80; // top bit of the initiator's IKdh
    assert_eq!(
        p.b_receives(&ct),
        Err(DecryptError::Message(MessageError::NonCanonicalKey))
    );
    ct[65] ^= 0x80;
    assert_eq!(p.b_receives(&ct).unwrap(), b"x");

    let mut r = rng(17);
    let alice = Party::new("alice", &mut r);
    let mut bob = Party::new("bob", &mut r);
    let mut bundle = bob.bundle(&mut r, true);
    if let Some(opk) = bundle.one_time_prekey.as_mut() {
        opk.public[31] |= 0x80;
    }
    assert!(matches!(
        Session::initiate(&mut r, &alice.identity, &bundle),
        Err(X3dhError::Key(KeyError::NonCanonicalDhKey(_)))
    ));
    assert!(hush_client_core::message::is_canonical_x25519(&[0u8; 32]));
    let mut p_minus_1 = [0xFFu8; 32];
    p_minus_1[0] = 0xEC;
    p_minus_1[31] = 0x7F;
    assert!(hush_client_core::message::is_canonical_x25519(&p_minus_1));
    p_minus_1[0] = 0xED; // p itself
    assert!(!hush_client_core::message::is_canonical_x25519(&p_minus_1));
}
