//! Sessions per peer: previous sessions keep decrypting, re-initiation
//! switches, and simultaneous initiation converges deterministically.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::{Party, rng};
use hush_client_core::{Message, PeerSessions};

/// Both parties initiate at once; every message is delivered, in the given
/// interleaving. Returns the base keys of the current sessions on both sides
/// and checks that every message decrypted.
fn race(alice_id: &str, bob_id: &str, seed: u64, bob_first: bool) -> (bool, [u8; 32], [u8; 32]) {
    let mut r = rng(seed);
    let mut alice = Party::new(alice_id, &mut r);
    let mut bob = Party::new(bob_id, &mut r);
    let mut a = alice.sessions_with(&bob);
    let mut b = bob.sessions_with(&alice);
    let bundle_b = bob.bundle(&mut r, true);
    let bundle_a = alice.bundle(&mut r, true);
    a.initiate(&mut r, &alice.identity, &bundle_b).unwrap();
    b.initiate(&mut r, &bob.identity, &bundle_a).unwrap();
    let a1 = a.encrypt(&mut r, b"a1").unwrap();
    let b1 = b.encrypt(&mut r, b"b1").unwrap();
    assert!(matches!(Message::decode(&a1), Ok(Message::Prekey(_))));
    assert!(matches!(Message::decode(&b1), Ok(Message::Prekey(_))));
    if bob_first {
        assert_eq!(bob.decrypt(&mut b, &a1).unwrap(), b"a1");
        assert_eq!(alice.decrypt(&mut a, &b1).unwrap(), b"b1");
    } else {
        assert_eq!(alice.decrypt(&mut a, &b1).unwrap(), b"b1");
        assert_eq!(bob.decrypt(&mut b, &a1).unwrap(), b"a1");
    }
    // Each side also sends a second message before seeing any reply.
    let a2 = a.encrypt(&mut r, b"a2").unwrap();
    let b2 = b.encrypt(&mut r, b"b2").unwrap();
    assert_eq!(bob.decrypt(&mut b, &a2).unwrap(), b"a2");
    assert_eq!(alice.decrypt(&mut a, &b2).unwrap(), b"b2");
    // The conversation continues in both directions.
    for i in 0..5 {
        let m = a.encrypt(&mut r, format!("a{i}").as_bytes()).unwrap();
        assert_eq!(bob.decrypt(&mut b, &m).unwrap(), format!("a{i}").as_bytes());
        let m = b.encrypt(&mut r, format!("b{i}").as_bytes()).unwrap();
        assert_eq!(
            alice.decrypt(&mut a, &m).unwrap(),
            format!("b{i}").as_bytes()
        );
    }
    let a_base = *a.current().unwrap().base_key();
    let b_base = *b.current().unwrap().base_key();
    (a.current().unwrap().initiated_by_us(), a_base, b_base)
}

#[test]
fn simultaneous_initiation_converges_on_smaller_user_ids_session() {
    for seed in 0..4 {
        for bob_first in [false, true] {
            // "alice" < "bob": Alice's session wins on both sides.
            let (alice_initiated, a_base, b_base) = race("alice", "bob", seed, bob_first);
            assert_eq!(a_base, b_base, "both sides use the same session");
            assert!(alice_initiated);
            // "zed" > "bob": Bob's session wins on both sides.
            let (zed_initiated, a_base, b_base) = race("zed", "bob", seed, bob_first);
            assert_eq!(a_base, b_base, "both sides use the same session");
            assert!(!zed_initiated);
        }
    }
}

#[test]
fn new_prekey_message_from_peer_replaces_current_and_old_session_still_decrypts() {
    let mut r = rng(31);
    let mut alice = Party::new("alice", &mut r);
    let mut bob = Party::new("bob", &mut r);
    let mut a = alice.sessions_with(&bob);
    let mut b = bob.sessions_with(&alice);
    let bundle = bob.bundle(&mut r, true);
    a.initiate(&mut r, &alice.identity, &bundle).unwrap();
    let m = a.encrypt(&mut r, b"first session").unwrap();
    assert_eq!(bob.decrypt(&mut b, &m).unwrap(), b"first session");
    let reply = b.encrypt(&mut r, b"ok").unwrap();
    alice.decrypt(&mut a, &reply).unwrap();
    let late_old = a.encrypt(&mut r, b"late, old session").unwrap();

    // Alice loses her sessions and starts over.
    let mut a_new = alice.sessions_with(&bob);
    let bundle = bob.bundle(&mut r, false);
    a_new.initiate(&mut r, &alice.identity, &bundle).unwrap();
    let fresh = a_new.encrypt(&mut r, b"second session").unwrap();
    assert_eq!(bob.decrypt(&mut b, &fresh).unwrap(), b"second session");
    assert_eq!(b.previous_count(), 1);
    assert!(!b.current().unwrap().initiated_by_us());
    // Bob now answers in the new session, and still reads the old one.
    assert_eq!(
        bob.decrypt(&mut b, &late_old).unwrap(),
        b"late, old session"
    );
    let answer = b.encrypt(&mut r, b"new session reply").unwrap();
    assert_eq!(
        alice.decrypt(&mut a_new, &answer).unwrap(),
        b"new session reply"
    );
}

#[test]
fn previous_sessions_are_bounded() {
    let mut r = rng(32);
    let mut alice = Party::new("alice", &mut r);
    let mut bob = Party::new("bob", &mut r);
    let mut b = bob.sessions_with(&alice);
    for i in 0..10 {
        let mut a = PeerSessions::new("alice", "bob");
        let bundle = bob.bundle(&mut r, i % 2 == 0);
        a.initiate(&mut r, &alice.identity, &bundle).unwrap();
        let m = a.encrypt(&mut r, b"x").unwrap();
        bob.decrypt(&mut b, &m).unwrap();
        assert!(b.previous_count() <= hush_client_core::limits::MAX_PREVIOUS_SESSIONS);
    }
    assert_eq!(
        b.previous_count(),
        hush_client_core::limits::MAX_PREVIOUS_SESSIONS
    );
    let _ = &mut alice;
}

#[test]
fn encrypt_without_session_is_an_error() {
    let mut r = rng(33);
    let mut s = PeerSessions::new("a", "b");
    assert_eq!(
        s.encrypt(&mut r, b"x"),
        Err(hush_client_core::EncryptError::NoSession)
    );
}

#[test]
fn replayed_prekey_message_of_a_forgotten_session_is_refused() {
    let mut r = rng(34);
    let alice = Party::new("alice", &mut r);
    let mut bob = Party::new("bob", &mut r);
    let mut b = bob.sessions_with(&alice);
    let mut first = None;
    for _ in 0..(hush_client_core::limits::MAX_PREVIOUS_SESSIONS + 2) {
        let mut a = PeerSessions::new("alice", "bob");
        let bundle = bob.bundle(&mut r, false);
        a.initiate(&mut r, &alice.identity, &bundle).unwrap();
        let m = a.encrypt(&mut r, b"x").unwrap();
        bob.decrypt(&mut b, &m).unwrap();
        first.get_or_insert(m);
    }
    let current = *b.current().unwrap().base_key();
    assert_eq!(
        bob.decrypt(&mut b, &first.unwrap()),
        Err(hush_client_core::DecryptError::SessionForgotten)
    );
    assert_eq!(b.current().unwrap().base_key(), &current);
}

mod race_model {
    use super::common::{Party, rng};
    use proptest::prelude::*;
    use std::collections::VecDeque;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

        /// Both sides initiate at once, then deliveries interleave at random
        /// (each direction in order, as the relay delivers) and either side
        /// may send at any time: every message decrypts, and both sides end
        /// on the same session.
        #[test]
        fn racing_initiations_converge_and_lose_nothing(
            seed in any::<u64>(),
            a_first in 1usize..4,
            b_first in 1usize..4,
            schedule in proptest::collection::vec((any::<bool>(), any::<bool>()), 4..40),
            smaller_is_alice in any::<bool>(),
        ) {
            let mut r = rng(seed);
            let (a_id, b_id) = if smaller_is_alice { ("alice", "bob") } else { ("zoe", "bob") };
            let mut alice = Party::new(a_id, &mut r);
            let mut bob = Party::new(b_id, &mut r);
            let mut a = alice.sessions_with(&bob);
            let mut b = bob.sessions_with(&alice);
            let bundle_b = bob.bundle(&mut r, true);
            let bundle_a = alice.bundle(&mut r, true);
            a.initiate(&mut r, &alice.identity, &bundle_b).unwrap();
            b.initiate(&mut r, &bob.identity, &bundle_a).unwrap();
            // Queues: [0] Alice -> Bob, [1] Bob -> Alice, each FIFO.
            let mut q: [VecDeque<(Vec<u8>, Vec<u8>)>; 2] = [VecDeque::new(), VecDeque::new()];
            let mut n = 0u32;
            let mut send = |s: &mut hush_client_core::PeerSessions, q: &mut VecDeque<(Vec<u8>, Vec<u8>)>, r: &mut rand::rngs::StdRng| {
                n += 1;
                let pt = n.to_be_bytes().to_vec();
                q.push_back((s.encrypt(r, &pt).unwrap(), pt));
            };
            for _ in 0..a_first { send(&mut a, &mut q[0], &mut r); }
            for _ in 0..b_first { send(&mut b, &mut q[1], &mut r); }
            for (to_bob, reply) in schedule {
                let dir = usize::from(!to_bob);
                let Some((ct, pt)) = q[dir].pop_front() else { continue };
                if to_bob {
                    prop_assert_eq!(bob.decrypt(&mut b, &ct).unwrap(), pt);
                    if reply { send(&mut b, &mut q[1], &mut r); }
                } else {
                    prop_assert_eq!(alice.decrypt(&mut a, &ct).unwrap(), pt);
                    if reply { send(&mut a, &mut q[0], &mut r); }
                }
            }
            while let Some((ct, pt)) = q[0].pop_front() {
                prop_assert_eq!(bob.decrypt(&mut b, &ct).unwrap(), pt);
            }
            while let Some((ct, pt)) = q[1].pop_front() {
                prop_assert_eq!(alice.decrypt(&mut a, &ct).unwrap(), pt);
            }
            // A final exchange in both directions.
            send(&mut a, &mut q[0], &mut r);
            let (ct, pt) = q[0].pop_front().unwrap();
            prop_assert_eq!(bob.decrypt(&mut b, &ct).unwrap(), pt);
            send(&mut b, &mut q[1], &mut r);
            let (ct, pt) = q[1].pop_front().unwrap();
            prop_assert_eq!(alice.decrypt(&mut a, &ct).unwrap(), pt);
            prop_assert_eq!(a.current().unwrap().base_key(), b.current().unwrap().base_key());
            // The winner is the session initiated by the smaller user id.
            prop_assert_eq!(a.current().unwrap().initiated_by_us(), a_id < b_id);
        }
    }
}
