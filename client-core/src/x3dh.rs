//! X3DH key agreement (Signal's spec, with separate signing and DH identity keys).
//!
//! Initiator A, responder B, B's bundle `(IK_B, SPK_B, [OPK_B])`:
//!
//! 1. A verifies `IK_B.dh_sig` and `SPK_B.sig` with `verify_strict`
//!    before any DH, and requires every X25519 public key in the bundle to
//!    be canonically encoded (`u < 2^255 − 19`).
//! 2. A generates the ephemeral `EK_A` and computes
//!    `DH1 = DH(IKdh_A, SPK_B)`, `DH2 = DH(EK_A, IKdh_B)`,
//!    `DH3 = DH(EK_A, SPK_B)`, `DH4 = DH(EK_A, OPK_B)` (if an OPK was
//!    given); every output must be contributory.
//! 3. `SK = HKDF-SHA256(salt = 0^32, ikm = 0xFF^32 || DH1 || DH2 || DH3
//!    [|| DH4], info = "Hush X3DH v1", L = 32)`.
//! 4. `AD = IKsig_A || IKdh_A || IKsig_B || IKdh_B` (128 bytes, initiator
//!    first); it prefixes the associated data of every AEAD in the session.
//!
//! B does the mirror computation from the prekey message (after verifying
//! A's `dh_sig`), looking up its SPK by id (current, or previous within the
//! grace period) and its OPK by id; the OPK is only consumed once the first
//! ratchet message has decrypted (see `peer_sessions`).
//!
//! **Between devices** (accounts that publish device lists, see
//! [`crate::devices`]) the same computation runs with each side's
//! *device* keys: `IKdh` is the device's X25519 identity key, certified by
//! the account's verified device list (not by a `dh_sig`), and the signed
//! prekey is signed by the device signing key. Two things change:
//!
//! * `info = "Hush X3DH v2"`, so a device session never shares keys with
//!   an account session over the same DH outputs;
//! * `AD = D_A || D_B` (200 bytes), `D = account_key[32] || u32be(device
//!   id) || device signing key[32] || device IKdh[32]`
//!   ([`DevicePublic::to_bytes`]), binding both accounts and both devices.
//!
//! The initiator takes the responder's keys from the responder account's
//! [`VerifiedDeviceList`]; the responder accepts a device prekey message
//! only if it is addressed to its own device id and the initiator's
//! claimed device is exactly an entry of the initiator account's verified
//! list. A device of a profile from before devices is device 1 with the
//! account's own keys ([`DevicePublic::legacy`]).

use std::fmt;

use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use ed25519_dalek::VerifyingKey;

use crate::bytes::is_canonical_x25519;
use crate::devices::{DEVICE_PUBLIC_LEN, DevicePublic, VerifiedDeviceList};
use crate::identity::{IdentityKeyPair, IdentityPublic, KeyError};
use crate::keys::{DhKeyPair, NonContributory};
use crate::message::{DevicePrekeyMessage, PrekeyMessage};
use crate::prekey::{DeviceBundle, PrekeyBundle, PrekeyError, PrekeyStore};

/// HKDF info string of X3DH.
pub const X3DH_INFO: &[u8] = b"Hush X3DH v1";
/// HKDF info string of X3DH between devices.
pub const X3DH_DEVICE_INFO: &[u8] = b"Hush X3DH v2";
/// Length of the associated data X3DH produces.
pub const AD_LEN: usize = 128;
/// Length of the associated data X3DH between devices produces.
pub const DEVICE_AD_LEN: usize = 2 * DEVICE_PUBLIC_LEN;

/// The longest associated data of any session.
pub const MAX_AD_LEN: usize = DEVICE_AD_LEN;

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum X3dhError {
    /// A key or signature in the bundle or prekey message is invalid.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The prekey message names a prekey we do not (or no longer) hold.
    #[error(transparent)]
    Prekey(#[from] PrekeyError),
    /// A DH output was not contributory (low-order public key).
    #[error(transparent)]
    NonContributory(#[from] NonContributory),
    /// The device is not in the account's verified device list, or its
    /// keys there differ from the ones claimed.
    #[error("device {id} is not in the account's device list with these keys")]
    UnknownDevice {
        /// The claimed device id.
        id: u32,
    },
    /// A device prekey message addressed to another device of our account.
    #[error("message addressed to device {addressed}, this is device {ours}")]
    WrongDevice {
        /// The device id the message names.
        addressed: u32,
        /// Our device id.
        ours: u32,
    },
    /// Our own device keys do not match the device we claim to be.
    #[error("our keys are not those of our device {id}")]
    NotOurDevice {
        /// Our claimed device id.
        id: u32,
    },
}

/// The X3DH shared secret `SK`. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedKey(Box<[u8; 32]>);

impl SharedKey {
    pub(crate) fn into_box(mut self) -> Box<[u8; 32]> {
        std::mem::replace(&mut self.0, Box::new([0u8; 32]))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKey { .. }")
    }
}

/// `D_A || D_B` between devices.
pub fn device_associated_data(
    initiator: &DevicePublic,
    responder: &DevicePublic,
) -> [u8; DEVICE_AD_LEN] {
    let mut ad = [0u8; DEVICE_AD_LEN];
    ad[..DEVICE_PUBLIC_LEN].copy_from_slice(&initiator.to_bytes());
    ad[DEVICE_PUBLIC_LEN..].copy_from_slice(&responder.to_bytes());
    ad
}

/// `IKsig_A || IKdh_A || IKsig_B || IKdh_B`.
pub fn associated_data(initiator: &IdentityPublic, responder: &IdentityPublic) -> [u8; AD_LEN] {
    let mut ad = [0u8; AD_LEN];
    ad[..32].copy_from_slice(&initiator.sig_pub);
    ad[32..64].copy_from_slice(&initiator.dh_pub);
    ad[64..96].copy_from_slice(&responder.sig_pub);
    ad[96..].copy_from_slice(&responder.dh_pub);
    ad
}

fn kdf(info: &[u8], dhs: &[&[u8; 32]]) -> SharedKey {
    // IKM = F || DH1 || ... || DHn, F = 32 bytes of 0xFF (X3DH §2.2).
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 * 5));
    ikm.extend_from_slice(&[0xFF; 32]);
    for dh in dhs {
        ikm.extend_from_slice(*dh);
    }
    let hk = Hkdf::<Sha256>::new(Some(&[0u8; 32]), &ikm);
    let mut sk = Box::new([0u8; 32]);
    #[allow(clippy::expect_used)]
    hk.expand(info, sk.as_mut())
        .expect("invariant: 32 bytes is within HKDF-SHA256's output limit");
    SharedKey(sk)
}

/// What the initiator knows after X3DH.
#[derive(Debug)]
pub(crate) struct Initiated<A> {
    pub(crate) sk: SharedKey,
    pub(crate) ad: A,
    pub(crate) base_key: [u8; 32],
}

/// The responder's keys an initiator needs, once checked.
struct Responder<'a> {
    identity_dh: &'a [u8; 32],
    signed_prekey: &'a [u8; 32],
    one_time_prekey: Option<&'a [u8; 32]>,
}

/// The initiator's half: canonical keys, `EK_A`, the three or four DHs.
fn agree_as_initiator<R: CryptoRng + ?Sized>(
    rng: &mut R,
    info: &[u8],
    ours: &DhKeyPair,
    theirs: &Responder<'_>,
) -> Result<(SharedKey, [u8; 32]), X3dhError> {
    let keys = [
        Some(theirs.identity_dh),
        Some(theirs.signed_prekey),
        theirs.one_time_prekey,
    ];
    if let Some(bad) = keys.into_iter().flatten().find(|k| !is_canonical_x25519(k)) {
        return Err(KeyError::NonCanonicalDhKey(*bad).into());
    }
    let ek = DhKeyPair::generate(rng);
    let dh1 = ours.dh(theirs.signed_prekey)?;
    let dh2 = ek.dh(theirs.identity_dh)?;
    let dh3 = ek.dh(theirs.signed_prekey)?;
    let sk = match theirs.one_time_prekey {
        Some(opk) => {
            let dh4 = ek.dh(opk)?;
            kdf(
                info,
                &[
                    dh1.as_bytes(),
                    dh2.as_bytes(),
                    dh3.as_bytes(),
                    dh4.as_bytes(),
                ],
            )
        }
        None => kdf(info, &[dh1.as_bytes(), dh2.as_bytes(), dh3.as_bytes()]),
    };
    Ok((sk, *ek.public()))
}

/// The responder's half: our prekeys by id, the mirrored DHs.
fn agree_as_responder<'p>(
    info: &[u8],
    ours: &DhKeyPair,
    prekeys: &'p PrekeyStore,
    ids: (u32, Option<u32>),
    initiator_dh: &[u8; 32],
    base_key: &[u8; 32],
    now_ms: u64,
) -> Result<(SharedKey, &'p DhKeyPair), X3dhError> {
    let spk = prekeys.find_signed(ids.0, now_ms)?.pair();
    let opk = match ids.1 {
        Some(id) => Some(prekeys.find_one_time(id)?),
        None => None,
    };
    let dh1 = spk.dh(initiator_dh)?;
    let dh2 = ours.dh(base_key)?;
    let dh3 = spk.dh(base_key)?;
    let sk = match opk {
        Some(opk) => {
            let dh4 = opk.pair().dh(base_key)?;
            kdf(
                info,
                &[
                    dh1.as_bytes(),
                    dh2.as_bytes(),
                    dh3.as_bytes(),
                    dh4.as_bytes(),
                ],
            )
        }
        None => kdf(info, &[dh1.as_bytes(), dh2.as_bytes(), dh3.as_bytes()]),
    };
    Ok((sk, spk))
}

/// Initiator side: verify the bundle, then derive `SK` and `AD`.
pub(crate) fn initiate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    ours: &IdentityKeyPair,
    bundle: &PrekeyBundle,
) -> Result<Initiated<[u8; AD_LEN]>, X3dhError> {
    let their_sig = bundle.identity.verify()?;
    bundle.signed_prekey.verify(&their_sig)?;
    let responder = Responder {
        identity_dh: &bundle.identity.dh_pub,
        signed_prekey: &bundle.signed_prekey.public,
        one_time_prekey: bundle.one_time_prekey.as_ref().map(|o| &o.public),
    };
    let (sk, base_key) = agree_as_initiator(rng, X3DH_INFO, ours.dh_pair(), &responder)?;
    Ok(Initiated {
        sk,
        ad: associated_data(&ours.public(), &bundle.identity),
        base_key,
    })
}

/// Initiator side between devices: `ours` are our device's keys, which
/// must be those of `our_device`; the responder device's keys come from
/// its account's verified list, and its signed prekey must verify under
/// the device signing key there.
pub(crate) fn initiate_device<R: CryptoRng + ?Sized>(
    rng: &mut R,
    ours: &IdentityKeyPair,
    our_device: &DevicePublic,
    their_list: &VerifiedDeviceList,
    bundle: &DeviceBundle,
) -> Result<(Initiated<[u8; DEVICE_AD_LEN]>, DevicePublic), X3dhError> {
    if !our_device.is_held_by(ours) {
        return Err(X3dhError::NotOurDevice { id: our_device.id });
    }
    let their_device =
        their_list
            .device_public(bundle.device_id)
            .ok_or(X3dhError::UnknownDevice {
                id: bundle.device_id,
            })?;
    let their_sig = VerifyingKey::from_bytes(&their_device.signing_key)
        .map_err(|_| KeyError::InvalidSigningKey(their_device.signing_key))?;
    bundle.signed_prekey.verify(&their_sig)?;
    let responder = Responder {
        identity_dh: &their_device.identity_dh,
        signed_prekey: &bundle.signed_prekey.public,
        one_time_prekey: bundle.one_time_prekey.as_ref().map(|o| &o.public),
    };
    let (sk, base_key) = agree_as_initiator(rng, X3DH_DEVICE_INFO, ours.dh_pair(), &responder)?;
    let initiated = Initiated {
        sk,
        ad: device_associated_data(our_device, &their_device),
        base_key,
    };
    Ok((initiated, their_device))
}

/// What the responder knows after X3DH (nothing consumed yet).
#[derive(Debug)]
pub(crate) struct Responded<A> {
    pub(crate) sk: SharedKey,
    pub(crate) ad: A,
    /// The signed prekey, which is also the responder's first ratchet key.
    pub(crate) signed_prekey: DhKeyPair,
}

/// Responder side: verify the initiator's identity, find our prekeys and
/// derive `SK`. The one-time prekey is looked up, not consumed.
pub(crate) fn respond(
    ours: &IdentityKeyPair,
    prekeys: &PrekeyStore,
    msg: &PrekeyMessage<'_>,
    now_ms: u64,
) -> Result<Responded<[u8; AD_LEN]>, X3dhError> {
    msg.initiator.verify()?;
    let (sk, spk) = agree_as_responder(
        X3DH_INFO,
        ours.dh_pair(),
        prekeys,
        (msg.signed_prekey_id, msg.one_time_prekey_id),
        &msg.initiator.dh_pub,
        &msg.base_key,
        now_ms,
    )?;
    Ok(Responded {
        sk,
        ad: associated_data(&msg.initiator, &ours.public()),
        signed_prekey: spk.duplicate(),
    })
}

/// Responder side between devices: the message must be addressed to
/// `our_device` (whose keys `ours` must be) and its initiator must be an
/// entry, keys and all, of `initiator_list`, the initiator account's
/// verified device list.
pub(crate) fn respond_device(
    ours: &IdentityKeyPair,
    our_device: &DevicePublic,
    prekeys: &PrekeyStore,
    msg: &DevicePrekeyMessage<'_>,
    initiator_list: &VerifiedDeviceList,
    now_ms: u64,
) -> Result<Responded<[u8; DEVICE_AD_LEN]>, X3dhError> {
    if !our_device.is_held_by(ours) {
        return Err(X3dhError::NotOurDevice { id: our_device.id });
    }
    if msg.responder_device != our_device.id {
        return Err(X3dhError::WrongDevice {
            addressed: msg.responder_device,
            ours: our_device.id,
        });
    }
    if initiator_list.device_public(msg.initiator.id) != Some(msg.initiator) {
        return Err(X3dhError::UnknownDevice {
            id: msg.initiator.id,
        });
    }
    let (sk, spk) = agree_as_responder(
        X3DH_DEVICE_INFO,
        ours.dh_pair(),
        prekeys,
        (msg.signed_prekey_id, msg.one_time_prekey_id),
        &msg.initiator.identity_dh,
        &msg.base_key,
        now_ms,
    )?;
    Ok(Responded {
        sk,
        ad: device_associated_data(&msg.initiator, our_device),
        signed_prekey: spk.duplicate(),
    })
}
