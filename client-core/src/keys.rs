//! X25519 key pairs and the one Diffie-Hellman function every other module
//! uses. A DH whose output is not contributory (the peer's public key is of
//! low order, e.g. all zero) is an error, never a silent all-zero secret.

use std::fmt;

use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, SharedSecret, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The peer's X25519 public key is of low order: the DH output would not
/// depend on our secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("non-contributory Diffie-Hellman with public key {}", crate::keys::short_hex(.0))]
pub struct NonContributory(pub [u8; 32]);

/// X25519 key pair; the secret lives in a box so moves never copy it, and
/// the public key is computed once at creation.
pub(crate) struct DhKeyPair {
    secret: Box<StaticSecret>,
    public: [u8; 32],
}

impl DhKeyPair {
    pub(crate) fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_secret_bytes(&bytes)
    }

    pub(crate) fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        let secret = Box::new(StaticSecret::from(*bytes));
        let public = PublicKey::from(&*secret).to_bytes();
        Self { secret, public }
    }

    /// Rebuilds a pair whose public half is already known (unpickling);
    /// avoids a scalar multiplication per key.
    pub(crate) fn from_parts(secret: &[u8; 32], public: [u8; 32]) -> Self {
        let secret = Box::new(StaticSecret::from(*secret));
        Self { secret, public }
    }

    pub(crate) fn public(&self) -> &[u8; 32] {
        &self.public
    }

    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        self.secret.as_bytes()
    }

    /// `DH(self, their_public)`, rejecting non-contributory outputs.
    pub(crate) fn dh(&self, their_public: &[u8; 32]) -> Result<SharedSecret, NonContributory> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*their_public));
        if shared.was_contributory() {
            Ok(shared)
        } else {
            Err(NonContributory(*their_public))
        }
    }

    pub(crate) fn duplicate(&self) -> Self {
        Self::from_parts(self.secret.as_bytes(), self.public)
    }
}

impl Zeroize for DhKeyPair {
    fn zeroize(&mut self) {
        // StaticSecret zeroizes itself on drop; overwrite it now as well.
        *self.secret = StaticSecret::from([0u8; 32]);
    }
}

impl ZeroizeOnDrop for DhKeyPair {}

impl fmt::Debug for DhKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { secret: _, public } = self;
        f.debug_struct("DhKeyPair")
            .field("public", &short_hex(public))
            .finish_non_exhaustive()
    }
}

/// First 8 bytes of a public value in hex, for logs and Debug output.
pub(crate) fn short_hex(bytes: &[u8]) -> String {
    let mut s = hex::encode(bytes.get(..8).unwrap_or(bytes));
    if bytes.len() > 8 {
        s.push('…');
    }
    s
}
