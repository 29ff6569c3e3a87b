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

use std::fmt;

use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::identity::{IdentityKeyPair, IdentityPublic, KeyError};
use crate::keys::{DhKeyPair, NonContributory};
use crate::message::{PrekeyMessage, is_canonical_x25519};
use crate::prekey::{PrekeyBundle, PrekeyError, PrekeyStore};

/// HKDF info string of X3DH.
pub const X3DH_INFO: &[u8] = b"Hush X3DH v1";
/// Length of the associated data X3DH produces.
pub const AD_LEN: usize = 128;

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

/// `IKsig_A || IKdh_A || IKsig_B || IKdh_B`.
pub fn associated_data(initiator: &IdentityPublic, responder: &IdentityPublic) -> [u8; AD_LEN] {
    let mut ad = [0u8; AD_LEN];
    ad[..32].copy_from_slice(&initiator.sig_pub);
    ad[32..64].copy_from_slice(&initiator.dh_pub);
    ad[64..96].copy_from_slice(&responder.sig_pub);
    ad[96..].copy_from_slice(&responder.dh_pub);
    ad
}

fn kdf(dhs: &[&[u8; 32]]) -> SharedKey {
    // IKM = F || DH1 || ... || DHn, F = 32 bytes of 0xFF (X3DH §2.2).
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 * 5));
    ikm.extend_from_slice(&[0xFF; 32]);
    for dh in dhs {
        ikm.extend_from_slice(*dh);
    }
    let hk = Hkdf::<Sha256>::new(Some(&[0u8; 32]), &ikm);
    let mut sk = Box::new([0u8; 32]);
    #[allow(clippy::expect_used)]
    hk.expand(X3DH_INFO, sk.as_mut())
        .expect("invariant: 32 bytes is within HKDF-SHA256's output limit");
    SharedKey(sk)
}

/// What the initiator knows after X3DH.
#[derive(Debug)]
pub(crate) struct Initiated {
    pub(crate) sk: SharedKey,
    pub(crate) ad: [u8; AD_LEN],
    pub(crate) base_key: [u8; 32],
}

/// Initiator side: verify the bundle, then derive `SK` and `AD`.
pub(crate) fn initiate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    ours: &IdentityKeyPair,
    bundle: &PrekeyBundle,
) -> Result<Initiated, X3dhError> {
    let their_sig = bundle.identity.verify()?;
    bundle.signed_prekey.verify(&their_sig)?;
    let keys = [
        Some(&bundle.identity.dh_pub),
        Some(&bundle.signed_prekey.public),
        bundle.one_time_prekey.as_ref().map(|o| &o.public),
    ];
    if let Some(bad) = keys.into_iter().flatten().find(|k| !is_canonical_x25519(k)) {
        return Err(KeyError::NonCanonicalDhKey(*bad).into());
    }
    let ek = DhKeyPair::generate(rng);
    let spk = &bundle.signed_prekey.public;
    let dh1 = ours.dh_pair().dh(spk)?;
    let dh2 = ek.dh(&bundle.identity.dh_pub)?;
    let dh3 = ek.dh(spk)?;
    let sk = match &bundle.one_time_prekey {
        Some(opk) => {
            let dh4 = ek.dh(&opk.public)?;
            kdf(&[
                dh1.as_bytes(),
                dh2.as_bytes(),
                dh3.as_bytes(),
                dh4.as_bytes(),
            ])
        }
        None => kdf(&[dh1.as_bytes(), dh2.as_bytes(), dh3.as_bytes()]),
    };
    Ok(Initiated {
        sk,
        ad: associated_data(&ours.public(), &bundle.identity),
        base_key: *ek.public(),
    })
}

/// What the responder knows after X3DH (nothing consumed yet).
#[derive(Debug)]
pub(crate) struct Responded {
    pub(crate) sk: SharedKey,
    pub(crate) ad: [u8; AD_LEN],
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
) -> Result<Responded, X3dhError> {
    msg.initiator.verify()?;
    let spk = prekeys.find_signed(msg.signed_prekey_id, now_ms)?.pair();
    let opk = match msg.one_time_prekey_id {
        Some(id) => Some(prekeys.find_one_time(id)?),
        None => None,
    };
    let dh1 = spk.dh(&msg.initiator.dh_pub)?;
    let dh2 = ours.dh_pair().dh(&msg.base_key)?;
    let dh3 = spk.dh(&msg.base_key)?;
    let sk = match opk {
        Some(opk) => {
            let dh4 = opk.pair().dh(&msg.base_key)?;
            kdf(&[
                dh1.as_bytes(),
                dh2.as_bytes(),
                dh3.as_bytes(),
                dh4.as_bytes(),
            ])
        }
        None => kdf(&[dh1.as_bytes(), dh2.as_bytes(), dh3.as_bytes()]),
    };
    Ok(Responded {
        sk,
        ad: associated_data(&msg.initiator, &ours.public()),
        signed_prekey: spk.duplicate(),
    })
}
