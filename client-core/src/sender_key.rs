//! Sender keys: one encryption per group message, whatever the group size.
//!
//! Each sending device of a group holds a **sender key**: a random 32-bit
//! key id, a chain key stepped exactly like the ratchet's (`MK =
//! HMAC-SHA256(CK, 0x01)`, `CK' = HMAC-SHA256(CK, 0x02)`), and an Ed25519
//! signing key. It hands the current state (without the signing secret) to
//! every other member device over the pairwise sessions as a
//! [`SenderKeyDistribution`]; each group message is then encrypted once
//! under the next message key and signed:
//!
//! ```text
//! key, nonce = HKDF-Expand-SHA256(PRK = MK, info = "Hush sender keys v1", L = 44)  (32 + 12)
//! header     = 0x01 || 0x03 || group_id[16] || u32be(key_id) || u32be(iteration)   (26 bytes)
//! message    = header || ChaCha20-Poly1305(key, nonce, ad = header, pad(plaintext)) || tag[16]
//!              || Ed25519-Sign(signing_key, header || ciphertext || tag)[64]
//! distribution = 0x01 || group_id[16] || u32be(key_id) || u32be(iteration)
//!                || chain_key[32] || signing_public[32]                            (89 bytes)
//! ```
//!
//! `pad` is the padding of direct messages (module `padding`). A receiver
//! checks the signature (`verify_strict`) before any decryption, so only the
//! holder of the signing secret, not every member who can derive message
//! keys, can write under a sender's key. Keys for skipped iterations are
//! kept (at most [`MAX_SKIPPED_SENDER_KEYS`] per key, oldest evicted) so
//! messages may arrive out of order; a jump of more than
//! [`MAX_SENDER_KEY_SKIP`] iterations is refused; an iteration already used
//! is a [`SenderKeyError::Duplicate`]. A receiver keeps the last
//! [`MAX_SENDER_KEY_STATES`] keys of each sender (a replaced key stays
//! readable for messages still in flight). A failed decryption changes
//! nothing.
//!
//! A new member receives the current chain state, so it cannot derive the
//! keys of earlier iterations (the chain only runs forward); a removed
//! member is cut off when every remaining member replaces its sender key
//! (a new key id, chain and signing key) and distributes it only to the
//! remaining members (the group layer's job).

use std::collections::VecDeque;
use std::fmt;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::limits::{
    MAX_MESSAGE_LEN, MAX_PLAINTEXT_LEN, MAX_SENDER_KEY_SKIP, MAX_SENDER_KEY_STATES,
    MAX_SKIPPED_SENDER_KEYS, PADDING_BLOCK,
};
use crate::message::{MESSAGE_VERSION, TAG_LEN};
use crate::padding::{pad, padded_len, unpadded_len};
use crate::pickle::{PickleError, Reader, Writer, kind};
use crate::ratchet::{ChainKey, MessageKey};

/// Type byte of a sender-key message.
pub const TYPE_SENDER_KEY: u8 = 3;
/// HKDF info expanding a sender-key message key.
pub const SENDER_KEY_INFO: &[u8] = b"Hush sender keys v1";
/// Length of a group id.
pub const GROUP_ID_LEN: usize = 16;
/// Length of a sender-key message header.
pub const SENDER_KEY_HEADER_LEN: usize = 2 + GROUP_ID_LEN + 4 + 4;
/// Length of the signature closing every sender-key message.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an encoded [`SenderKeyDistribution`].
pub const DISTRIBUTION_LEN: usize = 1 + GROUP_ID_LEN + 4 + 4 + 32 + 32;
const DISTRIBUTION_VERSION: u8 = 1;

/// A group id: 16 random bytes.
pub type GroupId = [u8; GROUP_ID_LEN];

/// Why a sender-key message or distribution was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SenderKeyError {
    /// Not a sender-key message or distribution of this version, or a
    /// length that no sender makes.
    #[error("malformed sender-key message: {0}")]
    Malformed(&'static str),
    /// The message is for another group than this record's.
    #[error("sender-key message for another group")]
    WrongGroup,
    /// No sender key with this id is known for the sender (not yet
    /// distributed to us, or evicted).
    #[error("unknown sender key {key_id}")]
    UnknownKey {
        /// The key id the message names.
        key_id: u32,
    },
    /// The signature does not verify under the sender key's signing key.
    #[error("sender-key message signature does not verify")]
    BadSignature,
    /// The iteration was already decrypted (a replay or duplicate).
    #[error("iteration {iteration} of sender key {key_id} was already received")]
    Duplicate {
        /// The key id.
        key_id: u32,
        /// The iteration.
        iteration: u32,
    },
    /// The iteration is more than [`MAX_SENDER_KEY_SKIP`] ahead.
    #[error("iteration {iteration} is too far ahead of {next}")]
    TooFarAhead {
        /// The iteration of the message.
        iteration: u32,
        /// The next iteration expected.
        next: u32,
    },
    /// The AEAD refused the ciphertext (it was altered after signing, or
    /// the distribution's chain key is not the sender's).
    #[error("sender-key message does not decrypt")]
    AuthFailed,
    /// The plaintext is larger than [`MAX_PLAINTEXT_LEN`].
    #[error("plaintext of {0} bytes is too large")]
    TooLarge(usize),
    /// The chain has produced 2^32 keys.
    #[error("sender key exhausted; replace it")]
    Exhausted,
}

/// A sender-key message's parts, borrowed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderKeyMessage<'a> {
    /// The group.
    pub group_id: &'a GroupId,
    /// The sender key's id.
    pub key_id: u32,
    /// The chain iteration that encrypted it.
    pub iteration: u32,
    /// The header bytes (the AEAD's associated data).
    pub header: &'a [u8; SENDER_KEY_HEADER_LEN],
    /// Ciphertext of the padded plaintext.
    pub ciphertext: &'a [u8],
    /// The Poly1305 tag.
    pub tag: &'a [u8; TAG_LEN],
    /// Everything the signature covers.
    pub signed: &'a [u8],
    /// The signature.
    pub signature: &'a [u8; SIGNATURE_LEN],
}

impl<'a> SenderKeyMessage<'a> {
    /// Reads the layout (no cryptography).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, SenderKeyError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(SenderKeyError::Malformed("too long"));
        }
        let short = SenderKeyError::Malformed("too short");
        let (signed, signature) = bytes
            .split_last_chunk::<SIGNATURE_LEN>()
            .ok_or(short.clone())?;
        let (header, rest) = signed
            .split_first_chunk::<SENDER_KEY_HEADER_LEN>()
            .ok_or(short.clone())?;
        let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(short.clone())?;
        let (&[version, ty], rest) = header.split_first_chunk::<2>().ok_or(short.clone())?;
        if version != MESSAGE_VERSION || ty != TYPE_SENDER_KEY {
            return Err(SenderKeyError::Malformed("version or type"));
        }
        if ciphertext.is_empty() || ciphertext.len() % PADDING_BLOCK != 0 {
            return Err(SenderKeyError::Malformed("ciphertext length"));
        }
        let (group_id, rest) = rest
            .split_first_chunk::<GROUP_ID_LEN>()
            .ok_or(short.clone())?;
        let (key_id, iteration) = rest.split_first_chunk::<4>().ok_or(short.clone())?;
        let iteration: &[u8; 4] = iteration.try_into().map_err(|_| short)?;
        Ok(Self {
            group_id,
            key_id: u32::from_be_bytes(*key_id),
            iteration: u32::from_be_bytes(*iteration),
            header,
            ciphertext,
            tag,
            signed,
            signature,
        })
    }
}

/// What a member hands the other member devices so they can read its group
/// messages from `iteration` on.
pub struct SenderKeyDistribution {
    /// The group.
    pub group_id: GroupId,
    /// The sender key's id.
    pub key_id: u32,
    /// The iteration `chain_key` is at.
    pub iteration: u32,
    /// The chain key at `iteration` (secret).
    pub chain_key: Zeroizing<[u8; 32]>,
    /// The sender key's Ed25519 public key.
    pub signing_public: [u8; 32],
}

impl fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("group_id", &hex::encode(self.group_id))
            .field("key_id", &self.key_id)
            .field("iteration", &self.iteration)
            .finish_non_exhaustive()
    }
}

impl SenderKeyDistribution {
    /// The 89 bytes of the module docs.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(DISTRIBUTION_LEN));
        out.push(DISTRIBUTION_VERSION);
        out.extend_from_slice(&self.group_id);
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&self.iteration.to_be_bytes());
        out.extend_from_slice(self.chain_key.as_ref());
        out.extend_from_slice(&self.signing_public);
        out
    }

    /// Reads [`SenderKeyDistribution::encode`]'s bytes; the signing key must
    /// be a valid, non-weak Ed25519 key.
    pub fn decode(bytes: &[u8]) -> Result<Self, SenderKeyError> {
        let bad = SenderKeyError::Malformed("distribution");
        let bytes: &[u8; DISTRIBUTION_LEN] = bytes.try_into().map_err(|_| bad.clone())?;
        let (&[version], rest) = bytes.split_first_chunk::<1>().ok_or(bad.clone())?;
        let (group_id, rest) = rest
            .split_first_chunk::<GROUP_ID_LEN>()
            .ok_or(bad.clone())?;
        let (key_id, rest) = rest.split_first_chunk::<4>().ok_or(bad.clone())?;
        let (iteration, rest) = rest.split_first_chunk::<4>().ok_or(bad.clone())?;
        let (chain_key, signing_public) = rest.split_first_chunk::<32>().ok_or(bad.clone())?;
        let signing_public: &[u8; 32] = signing_public.try_into().map_err(|_| bad.clone())?;
        if version != DISTRIBUTION_VERSION || !valid_signing_key(signing_public) {
            return Err(bad);
        }
        Ok(Self {
            group_id: *group_id,
            key_id: u32::from_be_bytes(*key_id),
            iteration: u32::from_be_bytes(*iteration),
            chain_key: Zeroizing::new(*chain_key),
            signing_public: *signing_public,
        })
    }
}

fn valid_signing_key(key: &[u8; 32]) -> bool {
    VerifyingKey::from_bytes(key).is_ok_and(|k| !k.is_weak())
}

fn cipher(mk: &MessageKey) -> (ChaCha20Poly1305, Nonce) {
    let mut okm = Zeroizing::new([0u8; 44]);
    #[allow(clippy::expect_used)]
    Hkdf::<Sha256>::from_prk(mk.as_bytes())
        .expect("invariant: a 32-byte PRK is exactly SHA-256's output length")
        .expand(SENDER_KEY_INFO, okm.as_mut())
        .expect("invariant: 44 bytes is within HKDF-SHA256's output limit");
    let (key, nonce) = okm.split_at(32);
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(key);
    let mut n = [0u8; 12];
    n.copy_from_slice(nonce);
    (ChaCha20Poly1305::new(&(*k).into()), n.into())
}

/// Our own sender key in one group: encrypts and signs.
pub struct OwnSenderKey {
    group_id: GroupId,
    key_id: u32,
    chain: ChainKey,
    signing: Box<SigningKey>,
}

impl fmt::Debug for OwnSenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnSenderKey")
            .field("group_id", &hex::encode(self.group_id))
            .field("key_id", &self.key_id)
            .field("iteration", &self.chain.index())
            .finish_non_exhaustive()
    }
}

impl OwnSenderKey {
    /// A fresh sender key for `group_id`: random key id, chain key and
    /// signing key, at iteration 0.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, group_id: GroupId) -> Self {
        let mut chain = Box::new([0u8; 32]);
        rng.fill_bytes(chain.as_mut());
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self {
            group_id,
            key_id: rng.next_u32(),
            chain: ChainKey::new(chain, 0),
            signing: Box::new(SigningKey::from_bytes(&seed)),
        }
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The next iteration to be used.
    pub fn iteration(&self) -> u32 {
        self.chain.index()
    }

    /// The current state for other member devices (they can read from the
    /// next message on, none before).
    pub fn distribution(&self) -> SenderKeyDistribution {
        SenderKeyDistribution {
            group_id: self.group_id,
            key_id: self.key_id,
            iteration: self.chain.index(),
            chain_key: Zeroizing::new(*self.chain.as_bytes()),
            signing_public: self.signing.verifying_key().to_bytes(),
        }
    }

    /// Encrypts and signs one group message.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SenderKeyError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(SenderKeyError::TooLarge(plaintext.len()));
        }
        let iteration = self.chain.index();
        if iteration == u32::MAX {
            return Err(SenderKeyError::Exhausted);
        }
        let mk = self.chain.step();
        let mut out = Vec::with_capacity(
            SENDER_KEY_HEADER_LEN + padded_len(plaintext.len()) + TAG_LEN + SIGNATURE_LEN,
        );
        out.extend_from_slice(&[MESSAGE_VERSION, TYPE_SENDER_KEY]);
        out.extend_from_slice(&self.group_id);
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&iteration.to_be_bytes());
        let mut body = plaintext.to_vec();
        pad(&mut body, 0);
        let (aead, nonce) = cipher(&mk);
        #[allow(clippy::expect_used)]
        let tag = aead
            .encrypt_inout_detached(&nonce, &out, body.as_mut_slice().into())
            .expect("invariant: a padded plaintext is far below the AEAD's 256 GiB limit");
        out.extend_from_slice(&body);
        out.extend_from_slice(&tag);
        let signature = self.signing.sign(&out);
        out.extend_from_slice(&signature.to_bytes());
        Ok(out)
    }

    /// Serialises the key for the store (kind 5): `group_id[16] ||
    /// u32(key_id) || u32(iteration) || chain_key[32] || signing_seed[32]`.
    pub fn pickle(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(kind::OWN_SENDER_KEY, 96);
        w.bytes(&self.group_id);
        w.u32(self.key_id);
        w.u32(self.chain.index());
        w.bytes(self.chain.as_bytes());
        w.bytes(Zeroizing::new(self.signing.to_bytes()).as_ref());
        w.finish()
    }

    /// Reads back [`OwnSenderKey::pickle`].
    pub fn unpickle(bytes: &[u8]) -> Result<Self, PickleError> {
        let mut r = Reader::open(bytes, kind::OWN_SENDER_KEY)?;
        let group_id = r.array()?;
        let key_id = r.u32()?;
        let iteration = r.u32()?;
        let chain = ChainKey::new(r.secret32()?, iteration);
        let seed = r.secret()?;
        r.finish()?;
        Ok(Self {
            group_id,
            key_id,
            chain,
            signing: Box::new(SigningKey::from_bytes(&seed)),
        })
    }
}

/// A received key's chain and skipped keys after a message, not yet
/// committed.
type Advanced = (ChainKey, VecDeque<MessageKey>);

/// One sender key of another member device, as distributed to us.
struct ReceivedKey {
    key_id: u32,
    chain: ChainKey,
    signing: VerifyingKey,
    /// Keys of skipped iterations, oldest first.
    skipped: VecDeque<MessageKey>,
}

impl ReceivedKey {
    /// The message key for `iteration` and the state after using it,
    /// computed on copies (nothing changes until [`Self::commit`]).
    fn key_for(&self, iteration: u32) -> Result<(MessageKey, Option<Advanced>), SenderKeyError> {
        let next = self.chain.index();
        // A sender stops before the last index (see `OwnSenderKey::encrypt`);
        // accepting it would wrap the chain's counter and reopen old
        // iterations.
        if iteration == u32::MAX {
            return Err(SenderKeyError::Exhausted);
        }
        if iteration < next {
            return self
                .skipped
                .iter()
                .find(|k| k.index() == iteration)
                .map(|k| (MessageKey::new(*k.as_bytes(), iteration), None))
                .ok_or(SenderKeyError::Duplicate {
                    key_id: self.key_id,
                    iteration,
                });
        }
        if iteration - next > MAX_SENDER_KEY_SKIP {
            return Err(SenderKeyError::TooFarAhead { iteration, next });
        }
        let mut chain = self.chain.duplicate();
        let mut skipped: VecDeque<MessageKey> = self
            .skipped
            .iter()
            .map(|k| MessageKey::new(*k.as_bytes(), k.index()))
            .collect();
        while chain.index() < iteration {
            skipped.push_back(chain.step());
            if skipped.len() > MAX_SKIPPED_SENDER_KEYS {
                skipped.pop_front();
            }
        }
        let mk = chain.step();
        Ok((mk, Some((chain, skipped))))
    }
}

/// The sender keys of one member device in one group, as received.
pub struct SenderKeyRecord {
    group_id: GroupId,
    /// Newest last; at most [`MAX_SENDER_KEY_STATES`].
    keys: VecDeque<ReceivedKey>,
}

impl fmt::Debug for SenderKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyRecord")
            .field("group_id", &hex::encode(self.group_id))
            .field(
                "key_ids",
                &self.keys.iter().map(|k| k.key_id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SenderKeyRecord {
    /// An empty record for one sender device in `group_id`.
    pub fn new(group_id: GroupId) -> Self {
        Self {
            group_id,
            keys: VecDeque::new(),
        }
    }

    /// Key ids held, oldest first.
    pub fn key_ids(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.key_id).collect()
    }

    /// Keys of skipped iterations held for `key_id`.
    pub fn skipped_count(&self, key_id: u32) -> usize {
        self.keys
            .iter()
            .find(|k| k.key_id == key_id)
            .map_or(0, |k| k.skipped.len())
    }

    /// Takes in a distribution. A key id already held keeps its state (a
    /// chain never moves back); a new one becomes the newest, evicting the
    /// oldest beyond [`MAX_SENDER_KEY_STATES`].
    pub fn add(&mut self, d: &SenderKeyDistribution) -> Result<(), SenderKeyError> {
        if d.group_id != self.group_id {
            return Err(SenderKeyError::WrongGroup);
        }
        if self.keys.iter().any(|k| k.key_id == d.key_id) {
            return Ok(());
        }
        let signing = VerifyingKey::from_bytes(&d.signing_public)
            .ok()
            .filter(|k| !k.is_weak())
            .ok_or(SenderKeyError::Malformed("distribution signing key"))?;
        self.keys.push_back(ReceivedKey {
            key_id: d.key_id,
            chain: ChainKey::new(Box::new(*d.chain_key), d.iteration),
            signing,
            skipped: VecDeque::new(),
        });
        while self.keys.len() > MAX_SENDER_KEY_STATES {
            self.keys.pop_front();
        }
        Ok(())
    }

    /// Verifies and decrypts one group message of this sender.
    pub fn decrypt(&mut self, bytes: &[u8]) -> Result<Vec<u8>, SenderKeyError> {
        let m = SenderKeyMessage::decode(bytes)?;
        if *m.group_id != self.group_id {
            return Err(SenderKeyError::WrongGroup);
        }
        let key = self
            .keys
            .iter_mut()
            .find(|k| k.key_id == m.key_id)
            .ok_or(SenderKeyError::UnknownKey { key_id: m.key_id })?;
        key.signing
            .verify_strict(m.signed, &Signature::from_bytes(m.signature))
            .map_err(|_| SenderKeyError::BadSignature)?;
        let (mk, advanced) = key.key_for(m.iteration)?;
        let (aead, nonce) = cipher(&mk);
        let mut buf = m.ciphertext.to_vec();
        aead.decrypt_inout_detached(
            &nonce,
            m.header,
            buf.as_mut_slice().into(),
            &Tag::from(*m.tag),
        )
        .map_err(|_| SenderKeyError::AuthFailed)?;
        let len = unpadded_len(&buf).map_err(|_| SenderKeyError::Malformed("padding"))?;
        buf.truncate(len);
        match advanced {
            Some((chain, skipped)) => {
                key.chain = chain;
                key.skipped = skipped;
            }
            None => key.skipped.retain(|k| k.index() != m.iteration),
        }
        Ok(buf)
    }

    /// Serialises the record for the store (kind 6): `group_id[16] ||
    /// count || per key: u32(key_id) || u32(iteration) || chain_key[32] ||
    /// signing_public[32] || count || per skipped key: u32(iteration) ||
    /// key[32]`.
    pub fn pickle(&self) -> Zeroizing<Vec<u8>> {
        let skipped: usize = self.keys.iter().map(|k| k.skipped.len()).sum();
        let mut w = Writer::new(
            kind::SENDER_KEY_RECORD,
            32 + self.keys.len() * 80 + skipped * 36,
        );
        w.bytes(&self.group_id);
        w.count(self.keys.len());
        for k in &self.keys {
            w.u32(k.key_id);
            w.u32(k.chain.index());
            w.bytes(k.chain.as_bytes());
            w.bytes(k.signing.as_bytes());
            w.count(k.skipped.len());
            for s in &k.skipped {
                w.u32(s.index());
                w.bytes(s.as_bytes());
            }
        }
        w.finish()
    }

    /// Reads back [`SenderKeyRecord::pickle`], within the bounds.
    pub fn unpickle(bytes: &[u8]) -> Result<Self, PickleError> {
        let mut r = Reader::open(bytes, kind::SENDER_KEY_RECORD)?;
        let group_id = r.array()?;
        let n = r.count(MAX_SENDER_KEY_STATES)?;
        let mut keys = VecDeque::with_capacity(n);
        for _ in 0..n {
            let key_id = r.u32()?;
            let iteration = r.u32()?;
            let chain = ChainKey::new(r.secret32()?, iteration);
            let signing = VerifyingKey::from_bytes(&r.array()?)
                .ok()
                .filter(|k| !k.is_weak())
                .ok_or(PickleError::Invalid("sender signing key"))?;
            let m = r.count(MAX_SKIPPED_SENDER_KEYS)?;
            let mut skipped = VecDeque::with_capacity(m);
            for _ in 0..m {
                let index = r.u32()?;
                skipped.push_back(MessageKey::new(*r.secret()?, index));
            }
            keys.push_back(ReceivedKey {
                key_id,
                chain,
                signing,
                skipped,
            });
        }
        r.finish()?;
        Ok(Self { group_id, keys })
    }
}

#[cfg(test)]
mod tests;
