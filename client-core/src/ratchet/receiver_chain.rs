//! Receiving chains and the bounded store of skipped message keys.
//!
//! A session keeps at most [`MAX_RECEIVING_CHAINS`] receiving chains (newest
//! first) and at most [`MAX_SKIPPED_KEYS`] skipped message keys over all
//! chains, in insertion order; the oldest key is evicted first. Keys are
//! boxed so the queue can grow without copying secrets.

use std::collections::VecDeque;
use std::fmt;

use crate::keys::short_hex;
use crate::limits::MAX_SKIPPED_KEYS;
use crate::pickle::{PickleError, Reader, Writer};

use super::chain_key::ChainKey;
use super::message_key::MessageKey;

/// A chain of the peer's messages under one of its ratchet public keys.
pub(crate) struct ReceiverChain {
    pub(crate) ratchet: [u8; 32],
    pub(crate) chain: ChainKey,
}

impl fmt::Debug for ReceiverChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { ratchet, chain } = self;
        f.debug_struct("ReceiverChain")
            .field("ratchet", &short_hex(ratchet))
            .field("chain", chain)
            .finish()
    }
}

impl ReceiverChain {
    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.ratchet);
        w.bytes(self.chain.as_bytes());
        w.u32(self.chain.index());
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, PickleError> {
        let ratchet = r.array()?;
        let key = r.secret32()?;
        let index = r.u32()?;
        Ok(Self {
            ratchet,
            chain: ChainKey::new(key, index),
        })
    }
}

/// A message key stored for a message that has not arrived yet.
pub(crate) struct SkippedKey {
    pub(crate) ratchet: [u8; 32],
    pub(crate) key: Box<MessageKey>,
}

/// Skipped message keys, oldest first.
#[derive(Default)]
pub(crate) struct SkippedKeys {
    keys: VecDeque<SkippedKey>,
}

impl fmt::Debug for SkippedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkippedKeys")
            .field("len", &self.keys.len())
            .finish()
    }
}

impl SkippedKeys {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn find(&self, ratchet: &[u8; 32], index: u32) -> Option<usize> {
        self.keys
            .iter()
            .position(|k| k.key.index() == index && &k.ratchet == ratchet)
    }

    pub(crate) fn get(&self, pos: usize) -> Option<&MessageKey> {
        self.keys.get(pos).map(|k| &*k.key)
    }

    pub(crate) fn remove(&mut self, pos: usize) {
        self.keys.remove(pos);
    }

    /// Drops up to `n` of the oldest keys; returns how many went.
    pub(crate) fn evict_oldest(&mut self, n: usize) -> usize {
        let n = n.min(self.keys.len());
        self.keys.drain(..n);
        n
    }

    /// Appends, evicting the oldest keys beyond [`MAX_SKIPPED_KEYS`].
    pub(crate) fn extend(&mut self, new: Vec<SkippedKey>) {
        for k in new {
            if self.keys.len() == MAX_SKIPPED_KEYS {
                self.keys.pop_front();
            }
            self.keys.push_back(k);
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        // Bounded by MAX_SKIPPED_KEYS.
        w.count(self.keys.len());
        for k in &self.keys {
            w.bytes(&k.ratchet);
            w.u32(k.key.index());
            w.bytes(k.key.as_bytes());
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, PickleError> {
        let n = r.count(MAX_SKIPPED_KEYS)?;
        let mut keys = VecDeque::with_capacity(n);
        for _ in 0..n {
            let ratchet = r.array()?;
            let index = r.u32()?;
            let mut key = Box::new(MessageKey::new([0u8; 32], index));
            key.fill_from(r.array_ref::<32>()?);
            keys.push_back(SkippedKey { ratchet, key });
        }
        Ok(Self { keys })
    }
}

/// Derives and collects the message keys of `chain` up to (excluding) `until`.
pub(crate) fn skip_to(
    chain: &mut ChainKey,
    ratchet: &[u8; 32],
    until: u32,
    out: &mut Vec<SkippedKey>,
) {
    while chain.index() < until {
        out.push(SkippedKey {
            ratchet: *ratchet,
            key: Box::new(chain.step()),
        });
    }
}
