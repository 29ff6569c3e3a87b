//! Chain keys and `KDF_CK`: `MK = HMAC-SHA256(CK, 0x01)`,
//! `CK' = HMAC-SHA256(CK, 0x02)`. The HMAC is keyed once per step and the
//! keyed state cloned for the second output.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::message_key::MessageKey;

/// HMAC input deriving the message key.
pub const MESSAGE_KEY_SEED: u8 = 0x01;
/// HMAC input deriving the next chain key.
pub const CHAIN_KEY_SEED: u8 = 0x02;

/// HMAC-SHA256 keyed with a 32-byte key. HMAC pads keys shorter than the
/// 64-byte block with zeros, so keying with the zero-padded block is the
/// same function, without a fallible length check.
pub(crate) fn hmac_sha256(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = Zeroizing::new([0u8; 64]);
    let bytes: &mut [u8; 64] = &mut block;
    bytes[..32].copy_from_slice(key);
    <Hmac<Sha256> as KeyInit>::new(&(*block).into())
}

/// A sending or receiving chain key with the number of the next message
/// it will produce. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ChainKey {
    key: Box<[u8; 32]>,
    #[zeroize(skip)]
    index: u32,
}

/// The chain key that follows a step, kept on the stack until committed.
pub(crate) type NextChainKey = Zeroizing<[u8; 32]>;

impl ChainKey {
    pub(crate) fn new(key: Box<[u8; 32]>, index: u32) -> Self {
        Self { key, index }
    }

    /// Number of the next message key this chain will produce.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// `KDF_CK` without changing `self`: the message key for `index` and the
    /// following chain key. Commit the latter with [`ChainKey::commit`].
    pub(crate) fn peek(&self) -> (MessageKey, NextChainKey) {
        let mac = hmac_sha256(&self.key);
        let mut mk = mac.clone();
        mk.update(&[MESSAGE_KEY_SEED]);
        let mut next = mac;
        next.update(&[CHAIN_KEY_SEED]);
        let mk: [u8; 32] = mk.finalize().into_bytes().into();
        let next: [u8; 32] = next.finalize().into_bytes().into();
        (MessageKey::new(mk, self.index), Zeroizing::new(next))
    }

    /// Replaces the key by `next` (from [`ChainKey::peek`]) and counts the step.
    pub(crate) fn commit(&mut self, next: &NextChainKey) {
        self.key.copy_from_slice(next.as_ref());
        self.index = self.index.wrapping_add(1);
    }

    /// Derives the current message key and advances.
    pub(crate) fn step(&mut self) -> MessageKey {
        let (mk, next) = self.peek();
        self.commit(&next);
        mk
    }

    /// An independent copy, for computing on scratch state.
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            key: Box::new(*self.key),
            index: self.index,
        }
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { key: _, index } = self;
        f.debug_struct("ChainKey")
            .field("index", index)
            .finish_non_exhaustive()
    }
}
