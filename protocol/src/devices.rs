//! An account's device list: which devices may speak for a user, as the
//! account key (`IKsig`) certifies them.
//!
//! A list is a version (`u64`, only ever grows) and 1 to
//! [`MAX_DEVICES`] entries in strictly ascending id order; each entry is a
//! device id (`u32`, never 0), the device's Ed25519 signing key (it
//! authenticates the device to relays) and its X25519 identity key (its
//! `IKdh` in X3DH). The account key signs
//! [`crate::signing::device_list_message`] over the user id, the version
//! and the entries, so neither a relay nor another account can alter,
//! reorder or transplant a list.
//!
//! This module holds the shape and its structural rules, shared by relays
//! and clients; verifying the signature and refusing rollbacks is
//! `hush_client_core::devices`.

use serde::{Deserialize, Serialize};

use crate::bytes::{PublicKeyBytes, SignatureBytes};

/// Most devices one account can have: the primary and the devices linked
/// to it. Bounds every list a peer sends and every per-device fan-out.
pub const MAX_DEVICES: usize = 16;

/// One device of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceEntry {
    /// The device id, unique within the account, never 0 (a profile that
    /// predates devices is device 1).
    pub id: u32,
    /// The device's Ed25519 signing key.
    pub signing_key: PublicKeyBytes,
    /// The device's X25519 identity key.
    pub identity_dh: PublicKeyBytes,
}

/// A device list with the account key's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDeviceList {
    /// Grows with every change; a list is only ever replaced by a newer one.
    pub version: u64,
    /// The devices, in strictly ascending id order.
    pub devices: Vec<DeviceEntry>,
    /// `Sign(IKsig, device_list_message(user, version, devices))`.
    pub signature: SignatureBytes,
}

/// Why a device list is malformed (before any signature is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceListShapeError {
    /// No device at all: an account always has at least one.
    #[error("a device list names at least one device")]
    Empty,
    /// More than [`MAX_DEVICES`] devices.
    #[error("a device list names at most {MAX_DEVICES} devices, this one {0}")]
    TooMany(usize),
    /// Device id 0.
    #[error("device id 0 is not allowed")]
    ZeroId,
    /// Ids not in strictly ascending order (a duplicate, or out of order).
    #[error("device ids must be strictly ascending; {0} follows {1}")]
    Unordered(u32, u32),
}

/// Checks the structural rules of a list of device entries: 1 to
/// [`MAX_DEVICES`] entries, ids non-zero and strictly ascending.
pub fn check_shape(devices: &[DeviceEntry]) -> Result<(), DeviceListShapeError> {
    if devices.is_empty() {
        return Err(DeviceListShapeError::Empty);
    }
    if devices.len() > MAX_DEVICES {
        return Err(DeviceListShapeError::TooMany(devices.len()));
    }
    let mut previous = 0u32;
    for d in devices {
        if d.id == 0 {
            return Err(DeviceListShapeError::ZeroId);
        }
        if d.id <= previous {
            return Err(DeviceListShapeError::Unordered(d.id, previous));
        }
        previous = d.id;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32) -> DeviceEntry {
        DeviceEntry {
            id,
            signing_key: PublicKeyBytes([1; 32]),
            identity_dh: PublicKeyBytes([2; 32]),
        }
    }

    #[test]
    fn shape_rules() {
        assert_eq!(check_shape(&[]), Err(DeviceListShapeError::Empty));
        assert_eq!(check_shape(&[entry(0)]), Err(DeviceListShapeError::ZeroId));
        assert_eq!(
            check_shape(&[entry(2), entry(2)]),
            Err(DeviceListShapeError::Unordered(2, 2))
        );
        assert_eq!(
            check_shape(&[entry(3), entry(1)]),
            Err(DeviceListShapeError::Unordered(1, 3))
        );
        let max: Vec<_> = (1..=MAX_DEVICES as u32).map(entry).collect();
        assert_eq!(check_shape(&max), Ok(()));
        let over: Vec<_> = (1..=MAX_DEVICES as u32 + 1).map(entry).collect();
        assert_eq!(
            check_shape(&over),
            Err(DeviceListShapeError::TooMany(MAX_DEVICES + 1))
        );
        assert_eq!(check_shape(&[entry(1), entry(7)]), Ok(()));
    }

    #[test]
    fn json_form_is_stable() {
        let list = SignedDeviceList {
            version: 3,
            devices: vec![entry(1)],
            signature: SignatureBytes([0; 64]),
        };
        let json = serde_json::to_string(&list).unwrap();
        assert!(
            json.starts_with(r#"{"version":3,"devices":[{"id":1,"signing_key":""#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<SignedDeviceList>(&json).unwrap(),
            list
        );
    }
}
