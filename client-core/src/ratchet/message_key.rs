//! Message keys and the AEAD: each message key `MK` expands with
//! `HKDF-Expand-SHA256(PRK = MK, info = "Hush message keys v1", L = 44)`
//! into a ChaCha20-Poly1305 key (first 32 bytes) and nonce (last 12 bytes).
//! `MK` is already a uniformly random HMAC output, so the extract step is
//! skipped (RFC 5869 §3.3). The AEAD's associated data is
//! `X3DH_AD[128] || header[42]`.

use std::fmt;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::message::HEADER_LEN;
pub use crate::message::TAG_LEN;
use crate::x3dh::MAX_AD_LEN;

/// HKDF info string expanding a message key.
pub const MESSAGE_KEY_INFO: &[u8] = b"Hush message keys v1";

/// The AEAD rejected the ciphertext (wrong key, or modified bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuthFailed;

/// A single-use message key. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MessageKey {
    key: [u8; 32],
    #[zeroize(skip)]
    index: u32,
}

impl MessageKey {
    pub(crate) fn new(key: [u8; 32], index: u32) -> Self {
        Self { key, index }
    }

    /// Number of the message this key is for.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// Overwrites the key in place (unpickling into a boxed key).
    pub(crate) fn fill_from(&mut self, bytes: &[u8; 32]) {
        self.key.copy_from_slice(bytes);
    }

    /// The ChaCha20-Poly1305 key and nonce this message key expands to.
    pub(crate) fn expand(&self) -> Zeroizing<[u8; 44]> {
        let mut okm = Zeroizing::new([0u8; 44]);
        #[allow(clippy::expect_used)]
        let hk = Hkdf::<Sha256>::from_prk(&self.key)
            .expect("invariant: a 32-byte PRK is exactly SHA-256's output length");
        #[allow(clippy::expect_used)]
        hk.expand(MESSAGE_KEY_INFO, okm.as_mut())
            .expect("invariant: 44 bytes is within HKDF-SHA256's output limit");
        okm
    }

    fn cipher(okm: &[u8; 44]) -> (ChaCha20Poly1305, Nonce) {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&okm[..32]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&okm[32..]);
        (ChaCha20Poly1305::new(&(*key).into()), nonce.into())
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal(
        &self,
        ad: &[u8],
        header: &[u8; HEADER_LEN],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let okm = self.expand();
        let (cipher, nonce) = Self::cipher(&okm);
        let aad = aad(ad, header);
        #[allow(clippy::expect_used)]
        cipher
            .encrypt_inout_detached(&nonce, aad.as_slice(), buf.into())
            .expect("invariant: ChaCha20-Poly1305 only fails beyond 256 GiB; messages are bounded by MAX_PADDED_LEN")
            .into()
    }

    /// Decrypts `buf` in place after checking `tag` (in constant time).
    pub(crate) fn open(
        &self,
        ad: &[u8],
        header: &[u8; HEADER_LEN],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthFailed> {
        let okm = self.expand();
        let (cipher, nonce) = Self::cipher(&okm);
        let aad = aad(ad, header);
        let tag = Tag::from(*tag);
        cipher
            .decrypt_inout_detached(&nonce, aad.as_slice(), buf.into(), &tag)
            .map_err(|_| AuthFailed)
    }
}

/// `X3DH_AD || header` on the stack (the session's AD is 128 or 200
/// bytes, at most [`MAX_AD_LEN`]).
struct Aad {
    buf: [u8; MAX_AD_LEN + HEADER_LEN],
    len: usize,
}

impl Aad {
    fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&self.buf)
    }
}

fn aad(ad: &[u8], header: &[u8; HEADER_LEN]) -> Aad {
    let mut buf = [0u8; MAX_AD_LEN + HEADER_LEN];
    let len = ad.len().min(MAX_AD_LEN);
    let (head, tail) = buf.split_at_mut(len);
    head.copy_from_slice(ad.get(..len).unwrap_or_default());
    let (h, _) = tail.split_at_mut(HEADER_LEN);
    h.copy_from_slice(header);
    Aad {
        buf,
        len: len + HEADER_LEN,
    }
}

impl fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { key: _, index } = self;
        f.debug_struct("MessageKey")
            .field("index", index)
            .finish_non_exhaustive()
    }
}
