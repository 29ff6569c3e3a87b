//! Forward secrecy and post-compromise security, seen from outside: what a
//! copy of a party's whole state (its pickles) can and cannot decrypt.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::{NOW, pair};
use hush_client_core::{DecryptError, IdentityKeyPair, PeerSessions, PrekeyStore};

/// Everything Bob persists: identity, prekeys, sessions with Alice.
struct Snapshot {
    identity: IdentityKeyPair,
    prekeys: PrekeyStore,
    sessions: PeerSessions,
}

fn snapshot(
    identity: &IdentityKeyPair,
    prekeys: &PrekeyStore,
    sessions: &PeerSessions,
) -> Snapshot {
    Snapshot {
        identity: IdentityKeyPair::unpickle(&identity.pickle()).unwrap(),
        prekeys: PrekeyStore::unpickle(&prekeys.pickle()).unwrap(),
        sessions: PeerSessions::unpickle(&sessions.pickle()).unwrap(),
    }
}

impl Snapshot {
    fn decrypt(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DecryptError> {
        self.sessions
            .decrypt(&self.identity, &mut self.prekeys, NOW, bytes)
            .map(|p| p.to_vec())
    }

    /// Like `decrypt`, but from a state with the sessions forgotten, so the
    /// prekey path is tried again from scratch.
    fn decrypt_fresh(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let mut fresh = PeerSessions::new("bob", "alice");
        fresh
            .decrypt(&self.identity, &mut self.prekeys, NOW, bytes)
            .map(|p| p.to_vec())
    }
}

#[test]
fn state_copied_after_decryption_cannot_decrypt_the_message_again() {
    let mut p = pair(21, true);
    let first = p.a_to_b(b"first, via one-time prekey");
    p.b_receives(&first).unwrap();
    let second = p.a_to_b(b"second, same chain");
    let third = p.a_to_b(b"third");
    p.b_receives(&third).unwrap();
    p.b_receives(&second).unwrap();
    let reply = p.b_to_a(b"reply");
    p.a_receives(&reply).unwrap();
    let after_step = p.a_to_b(b"after a DH step");
    p.b_receives(&after_step).unwrap();

    let mut copy = snapshot(&p.bob.identity, &p.bob.prekeys, &p.b);
    for m in [&first, &second, &third, &after_step] {
        assert!(copy.decrypt(m).is_err());
        // Not even by re-running the handshake: the one-time prekey is gone.
        assert!(copy.decrypt_fresh(m).is_err());
    }
}

#[test]
fn compromised_state_cannot_decrypt_after_one_round_trip() {
    let mut p = pair(22, false);
    p.establish();
    // The attacker copies Alice's whole state.
    let mut stolen = Snapshot {
        identity: IdentityKeyPair::unpickle(&p.alice.identity.pickle()).unwrap(),
        prekeys: PrekeyStore::unpickle(&p.alice.prekeys.pickle()).unwrap(),
        sessions: PeerSessions::unpickle(&p.a.pickle()).unwrap(),
    };
    // The compromise is real: a message in the chain current at copy time
    // decrypts with the stolen state.
    let exposed = p.b_to_a(b"exposed");
    assert_eq!(stolen.decrypt(&exposed).unwrap(), b"exposed");
    p.a_receives(&exposed).unwrap();
    // One round trip: Alice sends with a fresh ratchet key, Bob answers with one.
    let a_msg = p.a_to_b(b"alice heals");
    p.b_receives(&a_msg).unwrap();
    let b_msg = p.b_to_a(b"bob heals");
    // The stolen state cannot follow.
    assert!(stolen.decrypt(&b_msg).is_err());
    assert_eq!(p.a_receives(&b_msg).unwrap(), b"bob heals");
    let later = p.b_to_a(b"later");
    assert!(stolen.decrypt(&later).is_err());
    assert_eq!(p.a_receives(&later).unwrap(), b"later");
}

#[test]
fn pickles_round_trip_and_sessions_continue() {
    let mut p = pair(23, true);
    p.establish();
    let identity = IdentityKeyPair::unpickle(&p.bob.identity.pickle()).unwrap();
    assert_eq!(identity.public(), p.bob.identity.public());
    let prekeys = PrekeyStore::unpickle(&p.bob.prekeys.pickle()).unwrap();
    assert_eq!(prekeys.signed_prekey(), p.bob.prekeys.signed_prekey());
    assert_eq!(prekeys.one_time_count(), p.bob.prekeys.one_time_count());
    assert!(p.b.pickle() == PeerSessions::unpickle(&p.b.pickle()).unwrap().pickle());
    p.b = PeerSessions::unpickle(&p.b.pickle()).unwrap();
    p.a = PeerSessions::unpickle(&p.a.pickle()).unwrap();
    let m = p.a_to_b(b"after restore");
    assert_eq!(p.b_receives(&m).unwrap(), b"after restore");
    let r = p.b_to_a(b"and back");
    assert_eq!(p.a_receives(&r).unwrap(), b"and back");
}

#[test]
fn corrupt_pickles_are_typed_errors() {
    use hush_client_core::PickleError;
    let mut p = pair(24, true);
    p.establish();
    let good = p.a.pickle();
    let mut bad = good.to_vec();
    bad[0] = 9;
    assert_eq!(
        PeerSessions::unpickle(&bad).unwrap_err(),
        PickleError::UnknownVersion(9)
    );
    assert!(matches!(
        IdentityKeyPair::unpickle(&good),
        Err(PickleError::WrongKind { .. })
    ));
    for len in 0..good.len() {
        assert!(PeerSessions::unpickle(&good[..len]).is_err());
    }
    let mut long = good.to_vec();
    long.push(0);
    assert_eq!(
        PeerSessions::unpickle(&long).unwrap_err(),
        PickleError::TrailingData(1)
    );
}
