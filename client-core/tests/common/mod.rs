//! Helpers shared by the integration tests: seeded parties and bundles.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use hush_client_core::{IdentityKeyPair, PeerSessions, PrekeyBundle, PrekeyStore};
use rand::SeedableRng;
use rand::rngs::StdRng;

pub const NOW: u64 = 1_700_000_000_000;

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// One user: identity, prekeys, and their user id.
pub struct Party {
    pub user_id: String,
    pub identity: IdentityKeyPair,
    pub prekeys: PrekeyStore,
}

impl Party {
    pub fn new(user_id: &str, rng: &mut StdRng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let mut prekeys = PrekeyStore::new(rng, &identity, NOW);
        prekeys.generate_one_time(rng, 10).unwrap();
        Self {
            user_id: user_id.to_owned(),
            identity,
            prekeys,
        }
    }

    /// A bundle as the relay would hand it out, with a fresh OPK if `with_opk`.
    pub fn bundle(&mut self, rng: &mut StdRng, with_opk: bool) -> PrekeyBundle {
        let one_time_prekey = if with_opk {
            Some(self.prekeys.generate_one_time(rng, 1).unwrap()[0])
        } else {
            None
        };
        PrekeyBundle {
            identity: self.identity.public(),
            signed_prekey: self.prekeys.signed_prekey(),
            one_time_prekey,
        }
    }

    pub fn sessions_with(&self, other: &Party) -> PeerSessions {
        PeerSessions::new(self.user_id.clone(), other.user_id.clone())
    }

    pub fn decrypt(
        &mut self,
        sessions: &mut PeerSessions,
        bytes: &[u8],
    ) -> Result<Vec<u8>, hush_client_core::DecryptError> {
        sessions
            .decrypt(&self.identity, &mut self.prekeys, NOW, bytes)
            .map(|p| p.to_vec())
    }
}

/// Alice and Bob with sessions; Alice has initiated towards Bob.
pub struct Pair {
    pub alice: Party,
    pub bob: Party,
    pub a: PeerSessions,
    pub b: PeerSessions,
    pub rng: StdRng,
}

pub fn pair(seed: u64, with_opk: bool) -> Pair {
    let mut rng = rng(seed);
    let alice = Party::new("alice", &mut rng);
    let mut bob = Party::new("bob", &mut rng);
    let mut a = alice.sessions_with(&bob);
    let b = bob.sessions_with(&alice);
    let bundle = bob.bundle(&mut rng, with_opk);
    a.initiate(&mut rng, &alice.identity, &bundle).unwrap();
    Pair {
        alice,
        bob,
        a,
        b,
        rng,
    }
}

impl Pair {
    pub fn a_to_b(&mut self, pt: &[u8]) -> Vec<u8> {
        self.a.encrypt(&mut self.rng, pt).unwrap()
    }

    pub fn b_to_a(&mut self, pt: &[u8]) -> Vec<u8> {
        self.b.encrypt(&mut self.rng, pt).unwrap()
    }

    pub fn b_receives(&mut self, ct: &[u8]) -> Result<Vec<u8>, hush_client_core::DecryptError> {
        self.bob.decrypt(&mut self.b, ct)
    }

    pub fn a_receives(&mut self, ct: &[u8]) -> Result<Vec<u8>, hush_client_core::DecryptError> {
        self.alice.decrypt(&mut self.a, ct)
    }

    /// A full round trip so both sides have a DH-ratcheted session.
    pub fn establish(&mut self) {
        let m = self.a_to_b(b"hello");
        assert_eq!(self.b_receives(&m).unwrap(), b"hello");
        let r = self.b_to_a(b"hi");
        assert_eq!(self.a_receives(&r).unwrap(), b"hi");
    }
}
