//! Whom a session is with, as far as the ratchet cares: an account (X3DH
//! v1, [`IdentityPublic`], 128-byte AD, pickle kind 3) or one device of an
//! account (X3DH v2, [`DevicePublic`], 200-byte AD, pickle kind 7). The
//! ratchet itself is the same for both.

use std::fmt;

use crate::devices::DevicePublic;
use crate::identity::IdentityPublic;
use crate::message::{Message, RatchetMessage};
use crate::pickle::{PickleError, Reader, Writer, kind};
use crate::x3dh::{AD_LEN, DEVICE_AD_LEN};

/// The fields of a prekey wrapper that identify an X3DH run, and the
/// ratchet message it carries.
#[derive(Debug)]
pub struct PrekeyRun<'m, 'a, P> {
    /// The initiator as the wrapper names it.
    pub initiator: P,
    /// `EK_A`.
    pub base_key: [u8; 32],
    /// Signed and one-time prekey ids.
    pub ids: (u32, Option<u32>),
    /// The inner ratchet message.
    pub message: &'m RatchetMessage<'a>,
}

/// The pickle side of a session peer, crate-private (and sealing
/// [`SessionPeer`]).
#[allow(private_interfaces)]
pub(super) mod sealed {
    use crate::pickle::{PickleError, Reader, Writer};

    pub trait Pickled: Sized {
        /// The session's associated data, as the pickle holds it.
        type Ad;
        /// Writes the peer into a session pickle.
        fn write(&self, w: &mut Writer);
        /// Reads a peer back from a session pickle.
        fn read(r: &mut Reader<'_>) -> Result<Self, PickleError>;
        /// Reads the associated data back from a session pickle.
        fn read_ad(r: &mut Reader<'_>) -> Result<Self::Ad, PickleError>;
    }
}

/// A kind of session peer (sealed: accounts and devices).
pub trait SessionPeer: Copy + Eq + fmt::Debug + sealed::Pickled<Ad = Self::SessionAd> {
    /// The session's associated data.
    type SessionAd: AsRef<[u8]> + Copy + Eq;
    /// Pickle kind of a standalone session with this kind of peer.
    const PICKLE_KIND: u8;
    /// Pickle kind of all sessions with one such peer
    /// ([`crate::peer_sessions::PeerSessions`]).
    const SESSIONS_PICKLE_KIND: u8;
    /// Whether `other` is the same peer with the same keys (an account's
    /// identity ignores the signature over its DH key, which is
    /// deterministic anyway).
    fn same_keys(&self, other: &Self) -> bool;
    /// What orders two peers of one user id in the tie-break of
    /// simultaneous initiation: `(0, IKsig)` for an account, `(device id,
    /// device signing key)` for a device.
    fn tie_key(&self) -> (u32, [u8; 32]);
    /// The X3DH run `message` belongs to, if it is this kind's prekey message.
    fn prekey_run<'m, 'a>(message: &'m Message<'a>) -> Option<PrekeyRun<'m, 'a, Self>>;
}

// `Pickled` lives in a module no one outside the crate can name.
#[allow(private_interfaces)]
impl sealed::Pickled for IdentityPublic {
    type Ad = [u8; AD_LEN];

    fn write(&self, w: &mut Writer) {
        w.bytes(&self.to_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, PickleError> {
        Ok(Self::from_bytes(&r.array()?))
    }

    fn read_ad(r: &mut Reader<'_>) -> Result<Self::Ad, PickleError> {
        r.array()
    }
}

impl SessionPeer for IdentityPublic {
    type SessionAd = [u8; AD_LEN];
    const PICKLE_KIND: u8 = kind::SESSION;
    const SESSIONS_PICKLE_KIND: u8 = kind::PEER_SESSIONS;

    fn same_keys(&self, other: &Self) -> bool {
        self.sig_pub == other.sig_pub && self.dh_pub == other.dh_pub
    }

    fn tie_key(&self) -> (u32, [u8; 32]) {
        (0, self.sig_pub)
    }

    fn prekey_run<'m, 'a>(message: &'m Message<'a>) -> Option<PrekeyRun<'m, 'a, Self>> {
        match message {
            Message::Prekey(p) => Some(PrekeyRun {
                initiator: p.initiator,
                base_key: p.base_key,
                ids: (p.signed_prekey_id, p.one_time_prekey_id),
                message: &p.message,
            }),
            Message::Ratchet(_) | Message::DevicePrekey(_) => None,
        }
    }
}

// `Pickled` lives in a module no one outside the crate can name.
#[allow(private_interfaces)]
impl sealed::Pickled for DevicePublic {
    type Ad = [u8; DEVICE_AD_LEN];

    fn write(&self, w: &mut Writer) {
        w.bytes(&self.to_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, PickleError> {
        let bytes: [u8; crate::devices::DEVICE_PUBLIC_LEN] = r.array()?;
        DevicePublic::take_from(&mut &bytes[..]).ok_or(PickleError::Truncated)
    }

    fn read_ad(r: &mut Reader<'_>) -> Result<Self::Ad, PickleError> {
        r.array()
    }
}

impl SessionPeer for DevicePublic {
    type SessionAd = [u8; DEVICE_AD_LEN];
    const PICKLE_KIND: u8 = kind::DEVICE_SESSION;
    const SESSIONS_PICKLE_KIND: u8 = kind::DEVICE_PEER_SESSIONS;

    fn same_keys(&self, other: &Self) -> bool {
        self == other
    }

    fn tie_key(&self) -> (u32, [u8; 32]) {
        (self.id, self.signing_key)
    }

    fn prekey_run<'m, 'a>(message: &'m Message<'a>) -> Option<PrekeyRun<'m, 'a, Self>> {
        match message {
            Message::DevicePrekey(p) => Some(PrekeyRun {
                initiator: p.initiator,
                base_key: p.base_key,
                ids: (p.signed_prekey_id, p.one_time_prekey_id),
                message: &p.message,
            }),
            Message::Ratchet(_) | Message::Prekey(_) => None,
        }
    }
}
