//! Signed prekeys (SPK) and one-time prekeys (OPK), and the bundle a relay
//! hands to an initiator.
//!
//! * SPK: X25519, `u32` id, `sig = Ed25519_sign(IKsig, "HUSH-SPK-V1\0" ||
//!   u32be(id) || SPK_pub)` ([`hush_protocol::signing::signed_prekey_message`]).
//!   Rotated every [`SIGNED_PREKEY_ROTATION_MS`] by default; the previous
//!   one keeps answering for [`SIGNED_PREKEY_GRACE_MS`] after its retirement.
//! * OPK: X25519, `u32` id, generated in batches of at most
//!   [`MAX_ONE_TIME_PREKEYS_PER_BATCH`], each usable once. At most
//!   [`MAX_ONE_TIME_PREKEYS_HELD`] secrets are held: generating more evicts
//!   the oldest unused ones (lowest ids), so only the last 1,000 generated
//!   can be redeemed. Handing out prekeys (bundle fetches) therefore never
//!   makes generation fail, whoever fetches them.
//!
//! Ids are allocated from counters that only grow, so a consumed OPK id can be
//! told apart from one that never existed.
//!
//! Pickle (kind 2): `version || 2 || rotation_ms u64 || grace_ms u64 ||
//! next_spk_id u32 || next_opk_id u32 || current SPK || has_previous u8
//! [|| previous SPK || retired_at_ms u64] || n_opk u32 || n × (id u32 ||
//! secret[32] || pub[32])`, where an SPK is `id u32 || secret[32] || pub[32]
//! || sig[64] || created_at_ms u64`.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use hush_protocol::signing::signed_prekey_message;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::identity::{IdentityKeyPair, IdentityPublic, KeyError};
use crate::keys::{DhKeyPair, short_hex};
use crate::limits::{
    MAX_ONE_TIME_PREKEYS_HELD, MAX_ONE_TIME_PREKEYS_PER_BATCH, SIGNED_PREKEY_GRACE_MS,
    SIGNED_PREKEY_ROTATION_MS,
};
use crate::pickle::{PickleError, Reader, Writer, kind};

/// Errors about the local prekey state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrekeyError {
    /// No signed prekey with this id (never existed, or its grace period ended).
    #[error("unknown signed prekey {id}")]
    UnknownSignedPrekey {
        /// Requested id.
        id: u32,
    },
    /// No one-time prekey with this id was ever generated here.
    #[error("unknown one-time prekey {id}")]
    UnknownOneTimePrekey {
        /// Requested id.
        id: u32,
    },
    /// This one-time prekey was already consumed, or evicted as one of the
    /// oldest beyond [`MAX_ONE_TIME_PREKEYS_HELD`].
    #[error("one-time prekey {id} was already used or has expired")]
    OneTimePrekeyAlreadyUsed {
        /// Requested id.
        id: u32,
    },
    /// A batch larger than [`MAX_ONE_TIME_PREKEYS_PER_BATCH`] was requested.
    #[error("batch of {requested} one-time prekeys exceeds the limit of {max}")]
    BatchTooLarge {
        /// Requested batch size.
        requested: usize,
        /// The limit.
        max: usize,
    },
    /// The id counter is exhausted (after 2^32 keys).
    #[error("prekey id space exhausted")]
    IdsExhausted,
}

/// Public signed prekey, 1:1 with what the relay stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignedPrekeyPublic {
    /// Id chosen by the owner; the prekey message names it.
    pub id: u32,
    /// X25519 public key.
    pub public: [u8; 32],
    /// `IKsig` signature over `signed_prekey_message(id, public)`.
    pub signature: [u8; 64],
}

impl fmt::Debug for SignedPrekeyPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedPrekeyPublic")
            .field("id", &self.id)
            .field("public", &short_hex(&self.public))
            .finish_non_exhaustive()
    }
}

impl SignedPrekeyPublic {
    /// Checks the signature with `verify_strict` against the owner's `IKsig`.
    pub fn verify(&self, owner: &VerifyingKey) -> Result<(), KeyError> {
        owner
            .verify_strict(
                &signed_prekey_message(self.id, &self.public),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| KeyError::BadSignedPrekeySignature { id: self.id })
    }
}

/// Public one-time prekey, 1:1 with what the relay stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OneTimePrekeyPublic {
    /// Id chosen by the owner; the prekey message names it.
    pub id: u32,
    /// X25519 public key.
    pub public: [u8; 32],
}

impl fmt::Debug for OneTimePrekeyPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneTimePrekeyPublic")
            .field("id", &self.id)
            .field("public", &short_hex(&self.public))
            .finish()
    }
}

/// What an initiator fetches from the relay to start a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrekeyBundle {
    /// The responder's identity.
    pub identity: IdentityPublic,
    /// The responder's current signed prekey.
    pub signed_prekey: SignedPrekeyPublic,
    /// One of the responder's one-time prekeys, if the relay had any left.
    pub one_time_prekey: Option<OneTimePrekeyPublic>,
}

/// What an initiator fetches to start a session with one device: its
/// prekeys, signed by the device signing key. The device's identity keys
/// come from its account's verified device list, not from the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceBundle {
    /// The device the prekeys belong to.
    pub device_id: u32,
    /// The device's current signed prekey.
    pub signed_prekey: SignedPrekeyPublic,
    /// One of the device's one-time prekeys, if the relay had any left.
    pub one_time_prekey: Option<OneTimePrekeyPublic>,
}

/// A signed prekey with its secret.
pub(crate) struct SignedPrekey {
    id: u32,
    pair: DhKeyPair,
    signature: [u8; 64],
    created_at_ms: u64,
}

impl SignedPrekey {
    pub(crate) fn pair(&self) -> &DhKeyPair {
        &self.pair
    }

    fn public(&self) -> SignedPrekeyPublic {
        SignedPrekeyPublic {
            id: self.id,
            public: *self.pair.public(),
            signature: self.signature,
        }
    }

    fn write(&self, w: &mut Writer) {
        w.u32(self.id);
        w.bytes(self.pair.secret_bytes());
        w.bytes(self.pair.public());
        w.bytes(&self.signature);
        w.u64(self.created_at_ms);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, PickleError> {
        let id = r.u32()?;
        let secret = r.secret()?;
        let public = r.array()?;
        let signature = r.array()?;
        let created_at_ms = r.u64()?;
        Ok(Self {
            id,
            pair: DhKeyPair::from_parts(&secret, public),
            signature,
            created_at_ms,
        })
    }
}

impl fmt::Debug for SignedPrekey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            id,
            pair,
            signature: _,
            created_at_ms,
        } = self;
        f.debug_struct("SignedPrekey")
            .field("id", id)
            .field("pair", pair)
            .field("created_at_ms", created_at_ms)
            .finish_non_exhaustive()
    }
}

/// Secret half of a consumed one-time prekey, returned by
/// [`PrekeyStore::take_one_time`]. Zeroized on drop.
pub struct OneTimePrekey {
    id: u32,
    pair: DhKeyPair,
}

impl OneTimePrekey {
    /// Its id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Its public form.
    pub fn public(&self) -> OneTimePrekeyPublic {
        OneTimePrekeyPublic {
            id: self.id,
            public: *self.pair.public(),
        }
    }

    pub(crate) fn pair(&self) -> &DhKeyPair {
        &self.pair
    }
}

impl fmt::Debug for OneTimePrekey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { id, pair } = self;
        f.debug_struct("OneTimePrekey")
            .field("id", id)
            .field("pair", pair)
            .finish()
    }
}

/// The owner's prekey secrets: current and previous SPK, unused OPKs.
pub struct PrekeyStore {
    current: SignedPrekey,
    /// The SPK replaced by the last rotation and when it was retired; it
    /// still answers prekey messages during the grace period.
    previous: Option<(SignedPrekey, u64)>,
    one_time: BTreeMap<u32, OneTimePrekey>,
    next_spk_id: u32,
    next_opk_id: u32,
    rotation_ms: u64,
    grace_ms: u64,
}

impl fmt::Debug for PrekeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrekeyStore")
            .field("current", &self.current)
            .field("previous", &self.previous)
            .field("one_time_count", &self.one_time.len())
            .field("next_spk_id", &self.next_spk_id)
            .field("next_opk_id", &self.next_opk_id)
            .finish_non_exhaustive()
    }
}

fn new_signed_prekey<R: CryptoRng + ?Sized>(
    rng: &mut R,
    identity: &IdentityKeyPair,
    id: u32,
    now_ms: u64,
) -> SignedPrekey {
    let pair = DhKeyPair::generate(rng);
    let signature = identity.sign(&signed_prekey_message(id, pair.public()));
    SignedPrekey {
        id,
        pair,
        signature,
        created_at_ms: now_ms,
    }
}

impl PrekeyStore {
    /// A fresh store with signed prekey id 1 created at `now_ms`, no OPKs, and
    /// the default rotation and grace periods.
    pub fn new<R: CryptoRng + ?Sized>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        now_ms: u64,
    ) -> Self {
        Self::with_periods(
            rng,
            identity,
            now_ms,
            SIGNED_PREKEY_ROTATION_MS,
            SIGNED_PREKEY_GRACE_MS,
        )
    }

    /// Like [`PrekeyStore::new`] with explicit rotation and grace periods (ms).
    pub fn with_periods<R: CryptoRng + ?Sized>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        now_ms: u64,
        rotation_ms: u64,
        grace_ms: u64,
    ) -> Self {
        Self {
            current: new_signed_prekey(rng, identity, 1, now_ms),
            previous: None,
            one_time: BTreeMap::new(),
            next_spk_id: 2,
            next_opk_id: 1,
            rotation_ms,
            grace_ms,
        }
    }

    /// The current signed prekey, to upload.
    pub fn signed_prekey(&self) -> SignedPrekeyPublic {
        self.current.public()
    }

    /// True once the current signed prekey is at least one rotation period old.
    pub fn needs_rotation(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.current.created_at_ms) >= self.rotation_ms
    }

    /// Replaces the current signed prekey by a fresh one; the old one becomes
    /// the previous one (dropping any older previous). Returns the new public
    /// prekey to upload.
    pub fn rotate_signed_prekey<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &IdentityKeyPair,
        now_ms: u64,
    ) -> Result<SignedPrekeyPublic, PrekeyError> {
        let id = self.next_spk_id;
        self.next_spk_id = id.checked_add(1).ok_or(PrekeyError::IdsExhausted)?;
        let fresh = new_signed_prekey(rng, identity, id, now_ms);
        let old = std::mem::replace(&mut self.current, fresh);
        self.previous = Some((old, now_ms));
        Ok(self.current.public())
    }

    /// The signed prekey with this id: the current one, or the previous one
    /// while `now_ms` is within its grace period.
    pub(crate) fn find_signed(&self, id: u32, now_ms: u64) -> Result<&SignedPrekey, PrekeyError> {
        if self.current.id == id {
            return Ok(&self.current);
        }
        match &self.previous {
            Some((spk, retired))
                if spk.id == id && now_ms.saturating_sub(*retired) < self.grace_ms =>
            {
                Ok(spk)
            }
            _ => Err(PrekeyError::UnknownSignedPrekey { id }),
        }
    }

    /// Whether a signed prekey with this id still answers at `now_ms`.
    pub fn has_signed_prekey(&self, id: u32, now_ms: u64) -> bool {
        self.find_signed(id, now_ms).is_ok()
    }

    /// Forgets the previous signed prekey once its grace period is over.
    /// Returns true if something was dropped (the caller should persist).
    pub fn expire_previous(&mut self, now_ms: u64) -> bool {
        match &self.previous {
            Some((_, retired)) if now_ms.saturating_sub(*retired) >= self.grace_ms => {
                self.previous = None;
                true
            }
            _ => false,
        }
    }

    /// Generates `n` (at most [`MAX_ONE_TIME_PREKEYS_PER_BATCH`]) one-time
    /// prekeys and returns their public forms for upload. Beyond
    /// [`MAX_ONE_TIME_PREKEYS_HELD`] held, the oldest unused secrets are
    /// evicted.
    pub fn generate_one_time<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        n: usize,
    ) -> Result<Vec<OneTimePrekeyPublic>, PrekeyError> {
        if n > MAX_ONE_TIME_PREKEYS_PER_BATCH {
            return Err(PrekeyError::BatchTooLarge {
                requested: n,
                max: MAX_ONE_TIME_PREKEYS_PER_BATCH,
            });
        }
        let n32 = u32::try_from(n).map_err(|_| PrekeyError::IdsExhausted)?;
        self.next_opk_id
            .checked_add(n32)
            .ok_or(PrekeyError::IdsExhausted)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.next_opk_id;
            self.next_opk_id += 1;
            let key = OneTimePrekey {
                id,
                pair: DhKeyPair::generate(rng),
            };
            out.push(key.public());
            self.one_time.insert(id, key);
        }
        // The oldest unused secrets go (ids only grow, so the lowest are the
        // oldest); their prekey messages will fail as already used.
        while self.one_time.len() > MAX_ONE_TIME_PREKEYS_HELD {
            self.one_time.pop_first();
        }
        Ok(out)
    }

    /// Number of unused one-time prekeys held.
    pub fn one_time_count(&self) -> usize {
        self.one_time.len()
    }

    /// Looks up an unused one-time prekey without consuming it.
    pub(crate) fn find_one_time(&self, id: u32) -> Result<&OneTimePrekey, PrekeyError> {
        self.one_time
            .get(&id)
            .ok_or(if id < self.next_opk_id && id != 0 {
                PrekeyError::OneTimePrekeyAlreadyUsed { id }
            } else {
                PrekeyError::UnknownOneTimePrekey { id }
            })
    }

    /// Consumes a one-time prekey: it can never be used again.
    pub fn take_one_time(&mut self, id: u32) -> Result<OneTimePrekey, PrekeyError> {
        self.find_one_time(id)?;
        self.one_time
            .remove(&id)
            .ok_or(PrekeyError::UnknownOneTimePrekey { id })
    }

    /// Secret-bearing serialisation for the local store.
    pub fn pickle(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(kind::PREKEYS, 64 + 2 * 150 + self.one_time.len() * 68);
        w.u64(self.rotation_ms);
        w.u64(self.grace_ms);
        w.u32(self.next_spk_id);
        w.u32(self.next_opk_id);
        self.current.write(&mut w);
        match &self.previous {
            Some((spk, retired)) => {
                w.bool(true);
                spk.write(&mut w);
                w.u64(*retired);
            }
            None => w.bool(false),
        }
        // Bounded by MAX_ONE_TIME_PREKEYS_HELD.
        w.count(self.one_time.len());
        for key in self.one_time.values() {
            w.u32(key.id);
            w.bytes(key.pair.secret_bytes());
            w.bytes(key.pair.public());
        }
        w.finish()
    }

    /// Reads back what [`PrekeyStore::pickle`] wrote.
    pub fn unpickle(bytes: &[u8]) -> Result<Self, PickleError> {
        let mut r = Reader::open(bytes, kind::PREKEYS)?;
        let rotation_ms = r.u64()?;
        let grace_ms = r.u64()?;
        let next_spk_id = r.u32()?;
        let next_opk_id = r.u32()?;
        let current = SignedPrekey::read(&mut r)?;
        let previous = if r.bool()? {
            let spk = SignedPrekey::read(&mut r)?;
            Some((spk, r.u64()?))
        } else {
            None
        };
        let n = r.count(MAX_ONE_TIME_PREKEYS_HELD)?;
        let mut one_time = BTreeMap::new();
        for _ in 0..n {
            let id = r.u32()?;
            let secret = r.secret()?;
            let public = r.array()?;
            if id >= next_opk_id {
                return Err(PickleError::Invalid("one-time prekey id beyond counter"));
            }
            one_time.insert(
                id,
                OneTimePrekey {
                    id,
                    pair: DhKeyPair::from_parts(&secret, public),
                },
            );
        }
        r.finish()?;
        Ok(Self {
            current,
            previous,
            one_time,
            next_spk_id,
            next_opk_id,
            rotation_ms,
            grace_ms,
        })
    }
}
