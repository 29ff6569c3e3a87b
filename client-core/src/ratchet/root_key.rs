//! Root key and `KDF_RK`:
//! `RK' || CK = HKDF-SHA256(salt = RK, ikm = DH_out, info = "Hush ratchet v1", L = 64)`.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::SharedSecret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::chain_key::ChainKey;

/// HKDF info string of `KDF_RK`.
pub const ROOT_KDF_INFO: &[u8] = b"Hush ratchet v1";

/// The ratchet's root key. Zeroized on drop, Debug prints nothing secret.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RootKey {
    key: Box<[u8; 32]>,
}

impl RootKey {
    pub(crate) fn new(key: Box<[u8; 32]>) -> Self {
        Self { key }
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// `KDF_RK(RK, dh)`: the next root key and a fresh chain key (index 0).
    pub(crate) fn advance(&self, dh: &SharedSecret) -> (RootKey, ChainKey) {
        Self::kdf(&self.key, dh.as_bytes())
    }

    pub(crate) fn kdf(root: &[u8; 32], dh: &[u8; 32]) -> (RootKey, ChainKey) {
        let hk = Hkdf::<Sha256>::new(Some(root), dh);
        let mut okm = Zeroizing::new([0u8; 64]);
        #[allow(clippy::expect_used)]
        hk.expand(ROOT_KDF_INFO, okm.as_mut())
            .expect("invariant: 64 bytes is within HKDF-SHA256's 8160-byte output limit");
        let mut rk = Box::new([0u8; 32]);
        let mut ck = Box::new([0u8; 32]);
        let okm: &[u8; 64] = &okm;
        rk.copy_from_slice(&okm[..32]);
        ck.copy_from_slice(&okm[32..]);
        (RootKey { key: rk }, ChainKey::new(ck, 0))
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { key: _ } = self;
        f.write_str("RootKey { .. }")
    }
}
