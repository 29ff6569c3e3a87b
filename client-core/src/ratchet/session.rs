//! One Double Ratchet session with one peer.
//!
//! Initiator A (after X3DH with `SK`): generates ratchet key `A1`,
//! `RK, CKs = KDF_RK(SK, DH(A1, SPK_B))`; every message it sends carries the
//! prekey wrapper until the first reply decrypts. Responder B: `RK = SK`,
//! its first ratchet key is `SPK_B`.
//!
//! Receiving a new ratchet key `X` performs the receiving half of the DH
//! step at once (`RK, CKr = KDF_RK(RK, DH(ours, X))`); the sending half (new
//! key pair, `RK, CKs = KDF_RK(RK, DH(new, X))`) happens at the next
//! encrypt. The resulting keys are those of Signal's spec; only the moment
//! the new pair is generated moves, so decrypting never needs randomness.
//!
//! Decryption is compute-then-commit: every new chain key, root key and
//! skipped key is computed on the side and written into the session only
//! after the AEAD tag and the padding have verified. A failed decryption
//! leaves the session byte-for-byte unchanged.
//!
//! Pickle (kind 3): `version || 3 || AD[128] || RK[32] || peer identity[128]
//! || base_key[32] || has_ids u8 [|| spk_id u32 || has_opk u8 [|| opk_id
//! u32]] || initiated_by_us u8 || received u8 || sending pair
//! (secret[32] || public[32]) || needs_ratchet u8 || previous_length u32 ||
//! has_chain u8 [|| CKs[32] || Ns u32] || has_prefix u8 [|| var prefix] ||
//! n_recv u32 || n × (ratchet[32] || CKr[32] || Nr u32) || n_retired u32 ||
//! n × (ratchet[32] || Nr u32) || n_skipped u32 || n × (ratchet[32] || N u32
//! || MK[32])`.

use std::collections::VecDeque;
use std::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::identity::{IdentityKeyPair, IdentityPublic};
use crate::keys::{DhKeyPair, short_hex};
use crate::limits::{MAX_PLAINTEXT_LEN, MAX_RECEIVING_CHAINS, MAX_RETIRED_CHAINS, MAX_SKIP};
use crate::message::{
    HEADER_LEN, Message, PrekeyMessage, RatchetHeader, RatchetMessage, encode_prekey_prefix,
};
use crate::padding::{pad, padded_len, unpadded_len};
use crate::pickle::{PickleError, Reader, Writer, kind};
use crate::prekey::{PrekeyBundle, PrekeyStore};
use crate::x3dh::{self, AD_LEN, X3dhError};

use super::chain_key::ChainKey;
pub use super::error::{DecryptError, EncryptError};
use super::message_key::{MessageKey, TAG_LEN};
use super::receiver_chain::{ReceiverChain, SkippedKeys, skip_to};
use super::root_key::RootKey;

/// Our side of the sending chain.
struct Sending {
    /// Our current ratchet key pair; its public half is cached.
    pair: DhKeyPair,
    /// `CKs`; `None` for a responder that has not sent yet.
    chain: Option<ChainKey>,
    /// A new ratchet key was received since we last generated ours: the next
    /// encrypt performs the sending half of the DH step first.
    needs_ratchet: bool,
    /// `PN`: length of our previous sending chain.
    previous_length: u32,
}

/// A Double Ratchet session. Not `Clone`; secrets zeroize on drop.
pub struct Session {
    ad: [u8; AD_LEN],
    root: RootKey,
    sending: Sending,
    /// Newest first, at most [`MAX_RECEIVING_CHAINS`].
    receiving: VecDeque<ReceiverChain>,
    /// Public key and next index of forgotten receiving chains, to report late
    /// duplicates on them as duplicates.
    retired: VecDeque<([u8; 32], u32)>,
    skipped: SkippedKeys,
    /// Initiator only, until the first reply: the prekey wrapper put in front
    /// of every outgoing message so the responder can build the session from
    /// any of them.
    prekey_prefix: Option<Vec<u8>>,
    /// `EK_A`, identifying the X3DH run on both sides.
    base_key: [u8; 32],
    /// Responder only: the signed and one-time prekey ids of the prekey
    /// message that created the session; a later prekey message of the same
    /// run must carry exactly the same wrapper.
    prekey_ids: Option<(u32, Option<u32>)>,
    initiated_by_us: bool,
    /// Whether any message from the peer has decrypted in this session.
    received: bool,
    peer: IdentityPublic,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("base_key", &short_hex(&self.base_key))
            .field("initiated_by_us", &self.initiated_by_us)
            .field("received", &self.received)
            .field("sending_ratchet", &self.sending.pair)
            .field("sending_chain", &self.sending.chain)
            .field("receiving", &self.receiving)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

fn open(
    ad: &[u8; AD_LEN],
    mk: &MessageKey,
    msg: &RatchetMessage<'_>,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let mut buf = Zeroizing::new(msg.ciphertext.to_vec());
    mk.open(ad, msg.header_bytes, &mut buf, msg.tag)
        .map_err(|_| DecryptError::AuthFailed)?;
    let len = unpadded_len(&buf)?;
    buf.truncate(len);
    Ok(buf)
}

fn check_skip(from: u32, to: u32) -> Result<(), DecryptError> {
    let skip = to.saturating_sub(from);
    if skip > MAX_SKIP {
        Err(DecryptError::SkipTooLarge {
            skip,
            max: MAX_SKIP,
        })
    } else {
        Ok(())
    }
}

impl Session {
    /// Initiator: verifies `bundle` (both signatures, `verify_strict`), runs
    /// X3DH and the first sending DH step. Messages this session encrypts are
    /// prekey messages until the first reply decrypts.
    pub fn initiate<R: CryptoRng + ?Sized>(
        rng: &mut R,
        ours: &IdentityKeyPair,
        bundle: &PrekeyBundle,
    ) -> Result<Self, X3dhError> {
        let init = x3dh::initiate(rng, ours, bundle)?;
        let pair = DhKeyPair::generate(rng);
        let dh = pair.dh(&bundle.signed_prekey.public)?;
        let (root, chain) = RootKey::kdf(init.sk.as_bytes(), dh.as_bytes());
        Ok(Self {
            ad: init.ad,
            root,
            sending: Sending {
                pair,
                chain: Some(chain),
                needs_ratchet: false,
                previous_length: 0,
            },
            receiving: VecDeque::new(),
            retired: VecDeque::new(),
            skipped: SkippedKeys::default(),
            prekey_prefix: Some(encode_prekey_prefix(
                &ours.public(),
                &init.base_key,
                bundle.signed_prekey.id,
                bundle.one_time_prekey.map(|o| o.id),
            )),
            base_key: init.base_key,
            prekey_ids: None,
            initiated_by_us: true,
            received: false,
            peer: bundle.identity,
        })
    }

    /// Responder: runs X3DH for `msg` against our prekeys, decrypts its
    /// ratchet message, and only then consumes the one-time prekey. On any
    /// error nothing (prekeys included) has changed.
    pub fn respond(
        ours: &IdentityKeyPair,
        prekeys: &mut PrekeyStore,
        msg: &PrekeyMessage<'_>,
        now_ms: u64,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), DecryptError> {
        let r = x3dh::respond(ours, prekeys, msg, now_ms)?;
        let mut session = Self {
            ad: r.ad,
            root: RootKey::new(r.sk.into_box()),
            sending: Sending {
                pair: r.signed_prekey,
                chain: None,
                needs_ratchet: false,
                previous_length: 0,
            },
            receiving: VecDeque::new(),
            retired: VecDeque::new(),
            skipped: SkippedKeys::default(),
            prekey_prefix: None,
            base_key: msg.base_key,
            prekey_ids: Some((msg.signed_prekey_id, msg.one_time_prekey_id)),
            initiated_by_us: false,
            received: false,
            peer: msg.initiator,
        };
        let plaintext = session.decrypt_message(&msg.message)?;
        if let Some(id) = msg.one_time_prekey_id {
            prekeys.take_one_time(id)?;
        }
        Ok((session, plaintext))
    }

    /// The peer's identity in this session.
    pub fn peer_identity(&self) -> &IdentityPublic {
        &self.peer
    }

    /// The initiator's ephemeral key `EK_A`, which identifies the X3DH run.
    pub fn base_key(&self) -> &[u8; 32] {
        &self.base_key
    }

    /// Whether `msg` is a (further) prekey message of the X3DH run that
    /// created this inbound session: same base key, initiator identity and
    /// prekey ids.
    pub fn is_same_prekey_run(&self, msg: &PrekeyMessage<'_>) -> bool {
        !self.initiated_by_us
            && msg.base_key == self.base_key
            && msg.initiator == self.peer
            && self.prekey_ids == Some((msg.signed_prekey_id, msg.one_time_prekey_id))
    }

    /// Whether we initiated this session.
    pub fn initiated_by_us(&self) -> bool {
        self.initiated_by_us
    }

    /// Whether a message from the peer has decrypted in this session.
    pub fn has_received(&self) -> bool {
        self.received
    }

    /// Number of stored skipped message keys.
    pub fn skipped_key_count(&self) -> usize {
        self.skipped.len()
    }

    /// Evicts up to `n` of the oldest skipped message keys; returns how many
    /// went.
    pub(crate) fn evict_skipped(&mut self, n: usize) -> usize {
        self.skipped.evict_oldest(n)
    }

    /// Number of receiving chains kept.
    pub fn receiving_chain_count(&self) -> usize {
        self.receiving.len()
    }

    /// Our current ratchet public key.
    pub fn ratchet_public(&self) -> &[u8; 32] {
        self.sending.pair.public()
    }

    /// Encrypts one message; the output starts with the version byte (and is
    /// a prekey message while no reply has arrived in a session we initiated).
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EncryptError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(EncryptError::PlaintextTooLong {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        if self.sending.needs_ratchet || self.sending.chain.is_none() {
            self.ratchet_sending(rng)?;
        }
        let chain = self.sending.chain.as_mut().ok_or(EncryptError::NoSession)?;
        if chain.index() == u32::MAX {
            return Err(EncryptError::ChainExhausted);
        }
        let header = RatchetHeader {
            ratchet_key: *self.sending.pair.public(),
            previous_chain_length: self.sending.previous_length,
            message_number: chain.index(),
        }
        .encode();
        let mk = chain.step();
        let prefix: &[u8] = self.prekey_prefix.as_deref().unwrap_or(&[]);
        let mut out =
            Vec::with_capacity(prefix.len() + HEADER_LEN + padded_len(plaintext.len()) + TAG_LEN);
        out.extend_from_slice(prefix);
        out.extend_from_slice(&header);
        let body = out.len();
        out.extend_from_slice(plaintext);
        pad(&mut out, body);
        // `body` is the length `out` had before the plaintext was appended.
        #[allow(clippy::indexing_slicing)]
        let tag = mk.seal(&self.ad, &header, &mut out[body..]);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// The sending half of a DH ratchet step.
    fn ratchet_sending<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<(), EncryptError> {
        let their = match self.receiving.front() {
            Some(c) => c.ratchet,
            None => return Err(EncryptError::NoSession),
        };
        let pair = DhKeyPair::generate(rng);
        let dh = pair.dh(&their)?;
        let (root, chain) = self.root.advance(&dh);
        self.sending.previous_length = self.sending.chain.as_ref().map_or(0, ChainKey::index);
        self.sending.pair = pair;
        self.sending.chain = Some(chain);
        self.sending.needs_ratchet = false;
        self.root = root;
        Ok(())
    }

    /// Decodes and decrypts `bytes`: a ratchet message, or a prekey message of
    /// this session's X3DH run (same base key).
    pub fn decrypt(&mut self, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        match Message::decode(bytes)? {
            Message::Ratchet(m) => self.decrypt_message(&m),
            Message::Prekey(p) if self.is_same_prekey_run(&p) => self.decrypt_message(&p.message),
            Message::Prekey(_) => Err(DecryptError::WrongSession),
        }
    }

    /// Decrypts a parsed ratchet message (compute, verify, then commit).
    pub fn decrypt_message(
        &mut self,
        msg: &RatchetMessage<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let h = msg.header;
        let n = h.message_number;
        if let Some(current) = self
            .receiving
            .iter_mut()
            .find(|c| c.ratchet == h.ratchet_key)
        {
            let index = current.chain.index();
            if n < index {
                return self
                    .decrypt_skipped(msg)
                    .unwrap_or(Err(DecryptError::Duplicate { message_number: n }));
            }
            check_skip(index, n)?;
            let pt = if n == index {
                // In-order message: no allocation beyond the plaintext.
                let (mk, next) = current.chain.peek();
                let pt = open(&self.ad, &mk, msg)?;
                current.chain.commit(&next);
                pt
            } else {
                let mut chain = current.chain.duplicate();
                let mut skipped = Vec::with_capacity((n - index) as usize);
                skip_to(&mut chain, &h.ratchet_key, n, &mut skipped);
                let mk = chain.step();
                let pt = open(&self.ad, &mk, msg)?;
                current.chain = chain;
                self.skipped.extend(skipped);
                pt
            };
            self.mark_received();
            return Ok(pt);
        }
        if let Some(result) = self.decrypt_skipped(msg) {
            return result;
        }
        if let Some((_, next)) = self.retired.iter().find(|(k, _)| k == &h.ratchet_key) {
            return Err(if n < *next {
                DecryptError::Duplicate { message_number: n }
            } else {
                DecryptError::ChainForgotten { message_number: n }
            });
        }
        self.decrypt_with_ratchet_step(msg)
    }

    /// A message under a new ratchet key: skip the current receiving chain to
    /// `PN`, do the receiving half of the DH step, skip to `N`, decrypt.
    fn decrypt_with_ratchet_step(
        &mut self,
        msg: &RatchetMessage<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let h = msg.header;
        check_skip(0, h.message_number)?;
        let mut skipped = Vec::new();
        let mut old_chain = None;
        if let Some(current) = self.receiving.front() {
            let index = current.chain.index();
            if h.previous_chain_length > index {
                check_skip(index, h.previous_chain_length)?;
                let mut chain = current.chain.duplicate();
                skip_to(
                    &mut chain,
                    &current.ratchet,
                    h.previous_chain_length,
                    &mut skipped,
                );
                old_chain = Some(chain);
            }
        }
        let dh = self.sending.pair.dh(&h.ratchet_key)?;
        let (root, mut chain) = self.root.advance(&dh);
        skip_to(&mut chain, &h.ratchet_key, h.message_number, &mut skipped);
        let mk = chain.step();
        let pt = open(&self.ad, &mk, msg)?;

        // Commit.
        if let (Some(chain), Some(current)) = (old_chain, self.receiving.front_mut()) {
            current.chain = chain;
        }
        self.receiving.push_front(ReceiverChain {
            ratchet: h.ratchet_key,
            chain,
        });
        while self.receiving.len() > MAX_RECEIVING_CHAINS {
            if let Some(old) = self.receiving.pop_back() {
                self.retired.push_front((old.ratchet, old.chain.index()));
            }
        }
        self.retired.truncate(MAX_RETIRED_CHAINS);
        self.root = root;
        self.sending.needs_ratchet = true;
        self.skipped.extend(skipped);
        self.mark_received();
        Ok(pt)
    }

    fn decrypt_skipped(
        &mut self,
        msg: &RatchetMessage<'_>,
    ) -> Option<Result<Zeroizing<Vec<u8>>, DecryptError>> {
        let pos = self
            .skipped
            .find(&msg.header.ratchet_key, msg.header.message_number)?;
        let mk = self.skipped.get(pos)?;
        Some(open(&self.ad, mk, msg).inspect(|_| {
            self.skipped.remove(pos);
            self.mark_received();
        }))
    }

    fn mark_received(&mut self) {
        self.received = true;
        self.prekey_prefix = None;
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.ad);
        w.bytes(self.root.as_bytes());
        w.bytes(&self.peer.to_bytes());
        w.bytes(&self.base_key);
        match self.prekey_ids {
            Some((spk, opk)) => {
                w.bool(true);
                w.u32(spk);
                match opk {
                    Some(id) => {
                        w.bool(true);
                        w.u32(id);
                    }
                    None => w.bool(false),
                }
            }
            None => w.bool(false),
        }
        w.bool(self.initiated_by_us);
        w.bool(self.received);
        w.bytes(self.sending.pair.secret_bytes());
        w.bytes(self.sending.pair.public());
        w.bool(self.sending.needs_ratchet);
        w.u32(self.sending.previous_length);
        match &self.sending.chain {
            Some(c) => {
                w.bool(true);
                w.bytes(c.as_bytes());
                w.u32(c.index());
            }
            None => w.bool(false),
        }
        match &self.prekey_prefix {
            Some(p) => {
                w.bool(true);
                w.var(p);
            }
            None => w.bool(false),
        }
        w.count(self.receiving.len());
        for c in &self.receiving {
            c.write(w);
        }
        w.count(self.retired.len());
        for (k, n) in &self.retired {
            w.bytes(k);
            w.u32(*n);
        }
        self.skipped.write(w);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, PickleError> {
        let ad = r.array()?;
        let root = RootKey::new(r.secret32()?);
        let peer = IdentityPublic::from_bytes(&r.array()?);
        let base_key = r.array()?;
        let prekey_ids = if r.bool()? {
            let spk = r.u32()?;
            let opk = if r.bool()? { Some(r.u32()?) } else { None };
            Some((spk, opk))
        } else {
            None
        };
        let initiated_by_us = r.bool()?;
        let received = r.bool()?;
        let secret = r.secret()?;
        let public = r.array()?;
        let needs_ratchet = r.bool()?;
        let previous_length = r.u32()?;
        let chain = if r.bool()? {
            let key = r.secret32()?;
            Some(ChainKey::new(key, r.u32()?))
        } else {
            None
        };
        let prekey_prefix = if r.bool()? {
            let p = r.var()?;
            if p.len() > 256 {
                return Err(PickleError::Invalid("prekey prefix too long"));
            }
            Some(p.to_vec())
        } else {
            None
        };
        let n = r.count(MAX_RECEIVING_CHAINS)?;
        let mut receiving = VecDeque::with_capacity(n);
        for _ in 0..n {
            receiving.push_back(ReceiverChain::read(r)?);
        }
        let n = r.count(MAX_RETIRED_CHAINS)?;
        let mut retired = VecDeque::with_capacity(n);
        for _ in 0..n {
            let k = r.array()?;
            retired.push_back((k, r.u32()?));
        }
        let skipped = SkippedKeys::read(r)?;
        Ok(Self {
            ad,
            root,
            sending: Sending {
                pair: DhKeyPair::from_parts(&secret, public),
                chain,
                needs_ratchet,
                previous_length,
            },
            receiving,
            retired,
            skipped,
            prekey_prefix,
            base_key,
            prekey_ids,
            initiated_by_us,
            received,
            peer,
        })
    }

    /// Secret-bearing serialisation for the local store.
    pub fn pickle(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(kind::SESSION, 1024 + self.skipped.len() * 68);
        self.write(&mut w);
        w.finish()
    }

    /// Reads back what [`Session::pickle`] wrote.
    pub fn unpickle(bytes: &[u8]) -> Result<Self, PickleError> {
        let mut r = Reader::open(bytes, kind::SESSION)?;
        let s = Self::read(&mut r)?;
        r.finish()?;
        Ok(s)
    }

    #[cfg(test)]
    pub(crate) fn root_key(&self) -> &RootKey {
        &self.root
    }

    #[cfg(test)]
    pub(crate) fn sending_chain(&self) -> Option<&ChainKey> {
        self.sending.chain.as_ref()
    }

    #[cfg(test)]
    pub(crate) fn receiving_chain(&self) -> Option<&ChainKey> {
        self.receiving.front().map(|c| &c.chain)
    }

    #[cfg(test)]
    pub(crate) fn ad(&self) -> &[u8; AD_LEN] {
        &self.ad
    }
}
