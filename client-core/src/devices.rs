//! Device lists: which devices speak for an account, certified by the
//! account key (`IKsig`), and the rule that a list only moves forward.
//!
//! The shape and the signed bytes are `hush_protocol`'s
//! ([`SignedDeviceList`], [`hush_protocol::signing::device_list_message`]);
//! this module signs, verifies and compares:
//!
//! * [`sign`] certifies `user`'s devices at a version with the account key.
//! * [`verify`] checks a list against the account's public key: the shape
//!   (1 to [`MAX_DEVICES`] devices, ids non-zero and strictly ascending),
//!   every device signing key a valid, non-weak Ed25519 key, every device
//!   X25519 key canonical, and the signature under `verify_strict`. Only a
//!   [`VerifiedDeviceList`] can be compared or stored.
//! * [`advance`] compares a verified list with the one already known: an
//!   older version is a [`DeviceListError::Rollback`], the same version
//!   with other devices an [`DeviceListError::Equivocation`] (the account
//!   key signed two lists at one version: a compromised or misbehaving
//!   device, to be reported loudly), the same list [`Update::Unchanged`],
//!   a newer one an [`Update::Changed`] with the devices added and
//!   removed. A device id that comes back with other keys counts as removed
//!   and added.
//!
//! Adding or removing a device is not an identity change: the account key,
//! and so the safety number, stays the same.

use ed25519_dalek::{Signature, VerifyingKey};
use hush_protocol::UserId;
use hush_protocol::devices::check_shape;
use hush_protocol::signing::{FieldTooLong, device_list_message};

pub use hush_protocol::devices::{
    DeviceEntry, DeviceListShapeError, MAX_DEVICES, SignedDeviceList,
};

use crate::bytes::{is_canonical_x25519, take};
use crate::identity::{IdentityKeyPair, IdentityPublic};
use crate::keys::short_hex;

/// Why a device list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceListError {
    /// The list breaks a structural rule.
    #[error(transparent)]
    Shape(#[from] DeviceListShapeError),
    /// The account's public key is not a valid Ed25519 key.
    #[error("the account key is not a valid Ed25519 key")]
    InvalidAccountKey,
    /// A device's signing key is not a valid, non-weak Ed25519 key.
    #[error("device {id} has an invalid signing key")]
    InvalidDeviceKey {
        /// The device id.
        id: u32,
    },
    /// A device's X25519 identity key is not canonically encoded.
    #[error("device {id} has a non-canonical X25519 identity key")]
    NonCanonicalDeviceKey {
        /// The device id.
        id: u32,
    },
    /// The account key's signature does not verify.
    #[error("the device list's signature does not verify")]
    BadSignature,
    /// The user id is too long to be signed (never a valid [`UserId`]).
    #[error(transparent)]
    TooLong(#[from] FieldTooLong),
    /// An older list than the one already known.
    #[error("device list version {offered} is older than the known version {known}")]
    Rollback {
        /// The version already known.
        known: u64,
        /// The version offered.
        offered: u64,
    },
    /// Two different lists, both signed by the account key, at one version.
    #[error("two different device lists carry version {version}")]
    Equivocation {
        /// The version both lists carry.
        version: u64,
    },
}

/// A device list whose shape and signature were checked for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDeviceList {
    user: UserId,
    account_key: [u8; 32],
    list: SignedDeviceList,
}

impl VerifiedDeviceList {
    /// The account the list belongs to.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The account key the list was verified under.
    pub fn account_key(&self) -> &[u8; 32] {
        &self.account_key
    }

    /// Device `id` with its account key, as X3DH between devices binds it.
    pub fn device_public(&self, id: u32) -> Option<DevicePublic> {
        self.device(id).map(|d| DevicePublic {
            account_key: self.account_key,
            id: d.id,
            signing_key: d.signing_key.0,
            identity_dh: d.identity_dh.0,
        })
    }

    /// The list's version.
    pub fn version(&self) -> u64 {
        self.list.version
    }

    /// The devices, in ascending id order.
    pub fn devices(&self) -> &[DeviceEntry] {
        &self.list.devices
    }

    /// Device `id`, if the list names it.
    pub fn device(&self, id: u32) -> Option<&DeviceEntry> {
        self.list.devices.iter().find(|d| d.id == id)
    }

    /// The signed list, as it travels.
    pub fn signed(&self) -> &SignedDeviceList {
        &self.list
    }
}

/// Length of [`DevicePublic::to_bytes`].
pub const DEVICE_PUBLIC_LEN: usize = 100;

/// One device as a peer addresses it: the account key that certifies it
/// and the device's entry in that account's list. X3DH between devices
/// binds both sides' `DevicePublic` into its associated data.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevicePublic {
    /// The account key (`IKsig` of the account).
    pub account_key: [u8; 32],
    /// The device id within the account.
    pub id: u32,
    /// The device's Ed25519 signing key (it signs the device's prekeys).
    pub signing_key: [u8; 32],
    /// The device's X25519 identity key.
    pub identity_dh: [u8; 32],
}

impl std::fmt::Debug for DevicePublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicePublic")
            .field("account_key", &short_hex(&self.account_key))
            .field("id", &self.id)
            .field("signing_key", &short_hex(&self.signing_key))
            .finish_non_exhaustive()
    }
}

impl DevicePublic {
    /// The device of a profile from before devices: id 1, whose keys are
    /// the account's own `IKsig` and `IKdh`.
    pub fn legacy(account: &IdentityPublic) -> Self {
        Self {
            account_key: account.sig_pub,
            id: 1,
            signing_key: account.sig_pub,
            identity_dh: account.dh_pub,
        }
    }

    /// `account_key[32] || u32be(id) || signing_key[32] || identity_dh[32]`.
    pub fn to_bytes(&self) -> [u8; DEVICE_PUBLIC_LEN] {
        let mut out = [0u8; DEVICE_PUBLIC_LEN];
        out[..32].copy_from_slice(&self.account_key);
        out[32..36].copy_from_slice(&self.id.to_be_bytes());
        out[36..68].copy_from_slice(&self.signing_key);
        out[68..].copy_from_slice(&self.identity_dh);
        out
    }

    /// Reads the [`DevicePublic::to_bytes`] layout off the front of
    /// `input` (no verification); `None` if it is too short.
    pub(crate) fn take_from(input: &mut &[u8]) -> Option<Self> {
        Some(Self {
            account_key: *take::<32>(input)?,
            id: u32::from_be_bytes(*take::<4>(input)?),
            signing_key: *take::<32>(input)?,
            identity_dh: *take::<32>(input)?,
        })
    }

    /// Whether `keys` are this device's keys (its signing and X25519 keys).
    pub fn is_held_by(&self, keys: &IdentityKeyPair) -> bool {
        let public = keys.public();
        public.sig_pub == self.signing_key && public.dh_pub == self.identity_dh
    }
}

/// What a newer (or the same) list changes against the one known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// The very list already known.
    Unchanged,
    /// A newer list (or the first one seen for the account).
    Changed {
        /// Devices in the new list and not (with these keys) in the old.
        added: Vec<DeviceEntry>,
        /// Devices in the old list and not (with these keys) in the new.
        removed: Vec<DeviceEntry>,
    },
}

/// Signs `devices` as `user`'s device list at `version` with the account
/// key. The devices must obey the shape rules (sorted by id).
pub fn sign(
    account: &IdentityKeyPair,
    user: &UserId,
    version: u64,
    devices: Vec<DeviceEntry>,
) -> Result<SignedDeviceList, DeviceListError> {
    check_shape(&devices)?;
    let message = device_list_message(user.as_str(), version, &devices)?;
    Ok(SignedDeviceList {
        version,
        devices,
        signature: hush_protocol::SignatureBytes(account.sign(&message)),
    })
}

/// Checks `list` as `user`'s device list under the account key
/// `account_key` (the account's `IKsig` public key).
pub fn verify(
    account_key: &[u8; 32],
    user: &UserId,
    list: SignedDeviceList,
) -> Result<VerifiedDeviceList, DeviceListError> {
    check_shape(&list.devices)?;
    let key = VerifyingKey::from_bytes(account_key)
        .ok()
        .filter(|k| !k.is_weak())
        .ok_or(DeviceListError::InvalidAccountKey)?;
    for d in &list.devices {
        let valid = VerifyingKey::from_bytes(&d.signing_key.0).is_ok_and(|k| !k.is_weak());
        if !valid {
            return Err(DeviceListError::InvalidDeviceKey { id: d.id });
        }
        if !is_canonical_x25519(&d.identity_dh.0) {
            return Err(DeviceListError::NonCanonicalDeviceKey { id: d.id });
        }
    }
    let message = device_list_message(user.as_str(), list.version, &list.devices)?;
    key.verify_strict(&message, &Signature::from_bytes(&list.signature.0))
        .map_err(|_| DeviceListError::BadSignature)?;
    Ok(VerifiedDeviceList {
        user: user.clone(),
        account_key: *account_key,
        list,
    })
}

/// Compares `offered` with the list already `known` for the same account
/// (see the module docs). The caller stores `offered` only on
/// [`Update::Changed`].
pub fn advance(
    known: Option<&VerifiedDeviceList>,
    offered: &VerifiedDeviceList,
) -> Result<Update, DeviceListError> {
    let Some(known) = known else {
        return Ok(Update::Changed {
            added: offered.devices().to_vec(),
            removed: Vec::new(),
        });
    };
    let (k, o) = (known.version(), offered.version());
    if o < k {
        return Err(DeviceListError::Rollback {
            known: k,
            offered: o,
        });
    }
    if o == k {
        return if known.devices() == offered.devices() {
            Ok(Update::Unchanged)
        } else {
            Err(DeviceListError::Equivocation { version: o })
        };
    }
    let missing_from = |a: &[DeviceEntry], b: &[DeviceEntry]| {
        a.iter().filter(|d| !b.contains(d)).copied().collect()
    };
    Ok(Update::Changed {
        added: missing_from(offered.devices(), known.devices()),
        removed: missing_from(known.devices(), offered.devices()),
    })
}

#[cfg(test)]
mod tests;
