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

use crate::identity::IdentityKeyPair;
use crate::message::is_canonical_x25519;

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
    list: SignedDeviceList,
}

impl VerifiedDeviceList {
    /// The account the list belongs to.
    pub fn user(&self) -> &UserId {
        &self.user
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
