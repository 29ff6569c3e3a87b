//! Conversions between the crypto core's key types and the relay
//! protocol's frames: a fetched `bundle` into a [`PrekeyBundle`], our keys
//! into a `publish_keys` request, a directory `identity` into an
//! [`IdentityPublic`]. Synchronous; shared by the async client and by
//! anything that speaks the protocol frame by frame (`hush bench`).

use hush_protocol::frame::{Bundle, Identity, OneTimePrekey, PublishKeys, SignedPrekey};
use hush_protocol::{PublicKeyBytes, SignatureBytes};

use crate::identity::IdentityPublic;
use crate::prekey::{OneTimePrekeyPublic, PrekeyBundle, SignedPrekeyPublic};

/// Converts a relay `bundle` frame into the crypto type.
pub fn bundle_from_frame(b: &Bundle) -> PrekeyBundle {
    PrekeyBundle {
        identity: IdentityPublic {
            sig_pub: b.identity_key.0,
            dh_pub: b.identity_dh.0,
            dh_sig: b.identity_dh_sig.0,
        },
        signed_prekey: SignedPrekeyPublic {
            id: b.signed_prekey.id,
            public: b.signed_prekey.key.0,
            signature: b.signed_prekey.signature.0,
        },
        one_time_prekey: b.one_time_prekey.as_ref().map(|k| OneTimePrekeyPublic {
            id: k.id,
            public: k.key.0,
        }),
    }
}

/// The identity a directory `identity` reply lists.
pub fn identity_from_frame(listed: &Identity) -> IdentityPublic {
    IdentityPublic {
        sig_pub: listed.identity_key.0,
        dh_pub: listed.identity_dh.0,
        dh_sig: listed.identity_dh_sig.0,
    }
}

/// The `publish_keys` request for `identity`'s DH key, the signed prekey
/// `spk` and the new one-time prekeys `one_time`.
pub fn publish_keys_frame(
    rid: u64,
    identity: &IdentityPublic,
    spk: &SignedPrekeyPublic,
    one_time: &[OneTimePrekeyPublic],
) -> PublishKeys {
    PublishKeys {
        rid,
        identity_dh: PublicKeyBytes(identity.dh_pub),
        identity_dh_sig: SignatureBytes(identity.dh_sig),
        signed_prekey: SignedPrekey {
            id: spk.id,
            key: PublicKeyBytes(spk.public),
            signature: SignatureBytes(spk.signature),
        },
        one_time_prekeys: one_time
            .iter()
            .map(|k| OneTimePrekey {
                id: k.id,
                key: PublicKeyBytes(k.public),
            })
            .collect(),
    }
}
