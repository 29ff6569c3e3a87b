//! Sessions between two devices (X3DH v2, see [`crate::x3dh`]): the same
//! Double Ratchet, keyed by device keys and bound to both accounts and both
//! device ids through its 200-byte associated data. Messages are device
//! prekey messages (type 4) until the first reply.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::devices::{DevicePublic, VerifiedDeviceList};
use crate::identity::IdentityKeyPair;
use crate::message::{DevicePrekeyMessage, encode_device_prekey_prefix};
use crate::prekey::{DeviceBundle, PrekeyStore};
use crate::x3dh::{self, X3dhError};

use super::peer::PrekeyRun;
use super::session::{DecryptError, Session};

/// A session with one device of another account (or of our own).
pub type DeviceSession = Session<DevicePublic>;

impl Session<DevicePublic> {
    /// Initiator: `ours` are our device's keys (those of `our_device`);
    /// the responder device's keys come from `their_list`, the responder
    /// account's verified device list, and `bundle`'s signed prekey must
    /// verify under that device's signing key.
    pub fn initiate_device<R: CryptoRng + ?Sized>(
        rng: &mut R,
        ours: &IdentityKeyPair,
        our_device: &DevicePublic,
        their_list: &VerifiedDeviceList,
        bundle: &DeviceBundle,
    ) -> Result<Self, X3dhError> {
        let (init, their_device) =
            x3dh::initiate_device(rng, ours, our_device, their_list, bundle)?;
        let prefix = encode_device_prekey_prefix(
            our_device,
            their_device.id,
            &init.base_key,
            bundle.signed_prekey.id,
            bundle.one_time_prekey.map(|o| o.id),
        );
        Self::initiated(
            rng,
            init,
            &bundle.signed_prekey.public,
            prefix,
            their_device,
        )
    }

    /// Responder: `msg` must be addressed to `our_device` and come from a
    /// device of `initiator_list` (the initiator account's verified list)
    /// with exactly the keys listed there. Decrypts the first message and
    /// only then consumes the one-time prekey; on any error nothing has
    /// changed.
    pub fn respond_device(
        ours: &IdentityKeyPair,
        our_device: &DevicePublic,
        prekeys: &mut PrekeyStore,
        msg: &DevicePrekeyMessage<'_>,
        initiator_list: &VerifiedDeviceList,
        now_ms: u64,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), DecryptError> {
        let r = x3dh::respond_device(ours, our_device, prekeys, msg, initiator_list, now_ms)?;
        let run = PrekeyRun {
            initiator: msg.initiator,
            base_key: msg.base_key,
            ids: (msg.signed_prekey_id, msg.one_time_prekey_id),
            message: &msg.message,
        };
        Self::responded(r, prekeys, &run)
    }

    /// Whether `msg` is a (further) device prekey message of the X3DH run
    /// that created this inbound session.
    pub fn is_same_device_prekey_run(&self, msg: &DevicePrekeyMessage<'_>) -> bool {
        self.is_same_run(
            msg.base_key,
            &msg.initiator,
            msg.signed_prekey_id,
            msg.one_time_prekey_id,
        )
    }
}

#[cfg(test)]
mod tests;
