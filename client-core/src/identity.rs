//! Long-term identity: an Ed25519 signing key `IKsig` and an X25519 key
//! `IKdh`, with `IKdh` certified by `IKsig`:
//! `dh_sig = Ed25519_sign(IKsig, "HUSH-IKDH-V1\0" || IKdh_pub)` (bytes from
//! [`hush_protocol::signing::identity_dh_message`]).
//!
//! The public form [`IdentityPublic`] is exactly what the relay stores:
//! `{sig_pub[32], dh_pub[32], dh_sig[64]}`.
//!
//! Pickle (kind 1): `version || 1 || IKsig_secret[32] || IKdh_secret[32]`;
//! both public keys and the signature are recomputed (Ed25519 signing is
//! deterministic) on unpickle.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hush_protocol::signing::identity_dh_message;
use rand_core::CryptoRng;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::keys::{DhKeyPair, short_hex};
use crate::pickle::{PickleError, Reader, Writer, kind};

/// Why a public key or a signature made with it was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The Ed25519 public key is not a valid (canonical, non-weak) point.
    #[error("invalid Ed25519 identity key {}", short_hex(.0))]
    InvalidSigningKey([u8; 32]),
    /// The signature over the identity DH key does not verify.
    #[error("identity DH key signature does not verify")]
    BadIdentityDhSignature,
    /// An X25519 public key is not canonically encoded (`u ≥ 2^255 − 19`).
    #[error("non-canonical X25519 public key {}", short_hex(.0))]
    NonCanonicalDhKey([u8; 32]),
    /// The signature over a signed prekey does not verify.
    #[error("signature over signed prekey {id} does not verify")]
    BadSignedPrekeySignature {
        /// Id of the signed prekey.
        id: u32,
    },
}

/// Public half of an identity, 1:1 with what the relay stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityPublic {
    /// Ed25519 public key `IKsig`.
    pub sig_pub: [u8; 32],
    /// X25519 public key `IKdh`.
    pub dh_pub: [u8; 32],
    /// `IKsig`'s signature over `identity_dh_message(dh_pub)`.
    pub dh_sig: [u8; 64],
}

impl fmt::Debug for IdentityPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityPublic")
            .field("sig_pub", &short_hex(&self.sig_pub))
            .field("dh_pub", &short_hex(&self.dh_pub))
            .finish_non_exhaustive()
    }
}

impl IdentityPublic {
    /// Parses `sig_pub` and checks `dh_sig` with `verify_strict`; returns the
    /// parsed key so further signatures can be checked without re-parsing.
    pub fn verify(&self) -> Result<VerifyingKey, KeyError> {
        let key = VerifyingKey::from_bytes(&self.sig_pub)
            .map_err(|_| KeyError::InvalidSigningKey(self.sig_pub))?;
        if key.is_weak() {
            return Err(KeyError::InvalidSigningKey(self.sig_pub));
        }
        key.verify_strict(
            &identity_dh_message(&self.dh_pub),
            &Signature::from_bytes(&self.dh_sig),
        )
        .map_err(|_| KeyError::BadIdentityDhSignature)?;
        Ok(key)
    }

    /// The 128 bytes `sig_pub || dh_pub || dh_sig`, in that order.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut out = [0u8; 128];
        out[..32].copy_from_slice(&self.sig_pub);
        out[32..64].copy_from_slice(&self.dh_pub);
        out[64..].copy_from_slice(&self.dh_sig);
        out
    }

    /// Inverse of [`IdentityPublic::to_bytes`] (no verification).
    pub fn from_bytes(bytes: &[u8; 128]) -> Self {
        let mut sig_pub = [0u8; 32];
        let mut dh_pub = [0u8; 32];
        let mut dh_sig = [0u8; 64];
        sig_pub.copy_from_slice(&bytes[..32]);
        dh_pub.copy_from_slice(&bytes[32..64]);
        dh_sig.copy_from_slice(&bytes[64..]);
        Self {
            sig_pub,
            dh_pub,
            dh_sig,
        }
    }
}

/// A user's long-term identity secrets. Not `Clone`; zeroized on drop.
pub struct IdentityKeyPair {
    /// `IKsig`; boxed so moves never copy the secret.
    signing: Box<SigningKey>,
    /// `IKdh`.
    dh: DhKeyPair,
    /// Cached public form (sig_pub, dh_pub and the signature over dh_pub).
    public: IdentityPublic,
}

impl ZeroizeOnDrop for IdentityKeyPair {}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            signing: _,
            dh: _,
            public,
        } = self;
        f.debug_struct("IdentityKeyPair")
            .field("public", public)
            .finish_non_exhaustive()
    }
}

impl IdentityKeyPair {
    /// The Ed25519 secret (RFC 8032 seed) of `IKsig`: only for handing the
    /// account key to a device being linked ([`crate::linking`]).
    pub(crate) fn signing_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// Generates a fresh identity.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut sig = Zeroizing::new([0u8; 32]);
        let mut dh = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(sig.as_mut());
        rng.fill_bytes(dh.as_mut());
        Self::from_secret_bytes(&sig, &dh)
    }

    /// Builds an identity from its two 32-byte secrets (test vectors, unpickle).
    pub fn from_secret_bytes(signing_secret: &[u8; 32], dh_secret: &[u8; 32]) -> Self {
        let signing = Box::new(SigningKey::from_bytes(signing_secret));
        let dh = DhKeyPair::from_secret_bytes(dh_secret);
        let dh_sig = signing.sign(&identity_dh_message(dh.public())).to_bytes();
        let public = IdentityPublic {
            sig_pub: signing.verifying_key().to_bytes(),
            dh_pub: *dh.public(),
            dh_sig,
        };
        Self {
            signing,
            dh,
            public,
        }
    }

    /// The public form to publish and to put into prekey messages.
    pub fn public(&self) -> IdentityPublic {
        self.public
    }

    /// Signs `message` with `IKsig` (used for relay authentication with
    /// `hush_protocol::signing::auth_message` and for signed prekeys).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    pub(crate) fn dh_pair(&self) -> &DhKeyPair {
        &self.dh
    }

    /// Secret-bearing serialisation for the local store.
    pub fn pickle(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(kind::IDENTITY, 66);
        let sig = Zeroizing::new(self.signing.to_bytes());
        w.bytes(sig.as_ref());
        w.bytes(self.dh.secret_bytes());
        w.finish()
    }

    /// Reads back what [`IdentityKeyPair::pickle`] wrote.
    pub fn unpickle(bytes: &[u8]) -> Result<Self, PickleError> {
        let mut r = Reader::open(bytes, kind::IDENTITY)?;
        let sig = r.secret()?;
        let dh = r.secret()?;
        r.finish()?;
        Ok(Self::from_secret_bytes(&sig, &dh))
    }
}
