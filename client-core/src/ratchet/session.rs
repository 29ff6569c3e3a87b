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
//! Pickle (kind 3 with an account, kind 7 with a device): `version || kind
//! || AD[128 or 200] || RK[32] || peer identity[128] or peer device[100]
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
use crate::prekey::{PrekeyBundle, PrekeyStore};
use crate::x3dh::{self, Initiated, Responded, X3dhError};

use super::chain_key::ChainKey;
pub use super::error::{DecryptError, EncryptError};

mod pickled;
use super::message_key::{MessageKey, TAG_LEN};
use super::peer::{PrekeyRun, SessionPeer};
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

/// A Double Ratchet session with an account (`P = IdentityPublic`, X3DH
/// v1) or with one device (`P = DevicePublic`, X3DH v2; see
/// [`super::device_session`]). Not `Clone`; secrets zeroize on drop.
pub struct Session<P: SessionPeer = IdentityPublic> {
    ad: P::SessionAd,
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
    peer: P,
}

impl<P: SessionPeer> fmt::Debug for Session<P> {
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
    ad: &[u8],
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
        let prefix = encode_prekey_prefix(
            &ours.public(),
            &init.base_key,
            bundle.signed_prekey.id,
            bundle.one_time_prekey.map(|o| o.id),
        );
        Self::initiated(
            rng,
            init,
            &bundle.signed_prekey.public,
            prefix,
            bundle.identity,
        )
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
        let run = PrekeyRun {
            initiator: msg.initiator,
            base_key: msg.base_key,
            ids: (msg.signed_prekey_id, msg.one_time_prekey_id),
            message: &msg.message,
        };
        Self::responded(r, prekeys, &run)
    }

    /// The peer's identity in this session.
    pub fn peer_identity(&self) -> &IdentityPublic {
        &self.peer
    }

    /// Whether `msg` is a (further) prekey message of the X3DH run that
    /// created this inbound session: same base key, initiator identity and
    /// prekey ids.
    pub fn is_same_prekey_run(&self, msg: &PrekeyMessage<'_>) -> bool {
        self.is_same_run(
            msg.base_key,
            &msg.initiator,
            msg.signed_prekey_id,
            msg.one_time_prekey_id,
        )
    }
}

impl<P: SessionPeer> Session<P> {
    /// The initiator's session after X3DH: the first sending DH step
    /// against the responder's signed prekey; `prefix` is the prekey
    /// wrapper sent until the first reply.
    pub(super) fn initiated<R: CryptoRng + ?Sized>(
        rng: &mut R,
        init: Initiated<P::SessionAd>,
        their_signed_prekey: &[u8; 32],
        prefix: Vec<u8>,
        peer: P,
    ) -> Result<Self, X3dhError> {
        let pair = DhKeyPair::generate(rng);
        let dh = pair.dh(their_signed_prekey)?;
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
            prekey_prefix: Some(prefix),
            base_key: init.base_key,
            prekey_ids: None,
            initiated_by_us: true,
            received: false,
            peer,
        })
    }

    /// The responder's session after X3DH: decrypts the run's first
    /// message, and only then consumes the one-time prekey.
    pub(super) fn responded(
        r: Responded<P::SessionAd>,
        prekeys: &mut PrekeyStore,
        run: &PrekeyRun<'_, '_, P>,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), DecryptError> {
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
            base_key: run.base_key,
            prekey_ids: Some(run.ids),
            initiated_by_us: false,
            received: false,
            peer: run.initiator,
        };
        let plaintext = session.decrypt_message(run.message)?;
        if let Some(id) = run.ids.1 {
            prekeys.take_one_time(id)?;
        }
        Ok((session, plaintext))
    }

    /// The peer this session is with.
    pub fn peer(&self) -> &P {
        &self.peer
    }

    /// Whether a prekey wrapper with these fields belongs to the X3DH run
    /// that created this inbound session.
    pub(crate) fn is_same_run(
        &self,
        base_key: [u8; 32],
        initiator: &P,
        signed_prekey_id: u32,
        one_time_prekey_id: Option<u32>,
    ) -> bool {
        !self.initiated_by_us
            && base_key == self.base_key
            && *initiator == self.peer
            && self.prekey_ids == Some((signed_prekey_id, one_time_prekey_id))
    }

    /// The initiator's ephemeral key `EK_A`, which identifies the X3DH run.
    pub fn base_key(&self) -> &[u8; 32] {
        &self.base_key
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
        let tag = mk.seal(self.ad.as_ref(), &header, &mut out[body..]);
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
        let message = Message::decode(bytes)?;
        if let Message::Ratchet(m) = message {
            return self.decrypt_message(&m);
        }
        match P::prekey_run(&message) {
            Some(run) if self.is_same_run(run.base_key, &run.initiator, run.ids.0, run.ids.1) => {
                self.decrypt_message(run.message)
            }
            _ => Err(DecryptError::WrongSession),
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
                let pt = open(self.ad.as_ref(), &mk, msg)?;
                current.chain.commit(&next);
                pt
            } else {
                let mut chain = current.chain.duplicate();
                let mut skipped = Vec::with_capacity((n - index) as usize);
                skip_to(&mut chain, &h.ratchet_key, n, &mut skipped);
                let mk = chain.step();
                let pt = open(self.ad.as_ref(), &mk, msg)?;
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
        let pt = open(self.ad.as_ref(), &mk, msg)?;

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
        Some(open(self.ad.as_ref(), mk, msg).inspect(|_| {
            self.skipped.remove(pos);
            self.mark_received();
        }))
    }

    fn mark_received(&mut self) {
        self.received = true;
        self.prekey_prefix = None;
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
    pub(crate) fn ad(&self) -> &P::SessionAd {
        &self.ad
    }
}
