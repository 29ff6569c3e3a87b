//! The exact byte strings that get signed with a user's Ed25519 identity
//! signing key (`IKsig`). Relay and clients both build them from here, so the
//! two sides can never disagree about what a signature covers.
//!
//! Every message starts with a NUL-terminated ASCII domain-separation string,
//! so a signature made for one purpose is never valid for another. Variable
//! length fields are prefixed with their length as a big-endian `u16`.
//!
//! | purpose | bytes |
//! | --- | --- |
//! | authentication | `"HUSH-AUTH-V1\0" \|\| u16be(len(relay_id)) \|\| relay_id \|\| challenge[32] \|\| u16be(len(user_id)) \|\| user_id` |
//! | device authentication | `"HUSH-AUTH-V2\0" \|\| u16be(len(relay_id)) \|\| relay_id \|\| challenge[32] \|\| u16be(len(user_id)) \|\| user_id \|\| u32be(device)` |
//! | identity DH key | `"HUSH-IKDH-V1\0" \|\| IKdh_pub[32]` |
//! | signed prekey | `"HUSH-SPK-V1\0" \|\| u32be(spk_id) \|\| SPK_pub[32]` |
//! | device list | `"HUSH-DEVICES-V1\0" \|\| u16be(len(user_id)) \|\| user_id \|\| u64be(version) \|\| u16be(n) \|\| n × (u32be(id) \|\| signing_key[32] \|\| identity_dh[32])` |

use crate::devices::DeviceEntry;

/// Domain separation string for the authentication signature.
pub const AUTH_DOMAIN: &[u8] = b"HUSH-AUTH-V1\0";
/// Domain separation string for a device's authentication signature
/// (`auth_device`, signed by the device's signing key).
pub const AUTH_V2_DOMAIN: &[u8] = b"HUSH-AUTH-V2\0";
/// Domain separation string for the signature over the identity DH key.
pub const IDENTITY_DH_DOMAIN: &[u8] = b"HUSH-IKDH-V1\0";
/// Domain separation string for the signature over a signed prekey.
pub const SIGNED_PREKEY_DOMAIN: &[u8] = b"HUSH-SPK-V1\0";

/// Domain separation string for the account key's signature over a device
/// list.
pub const DEVICE_LIST_DOMAIN: &[u8] = b"HUSH-DEVICES-V1\0";

/// Length of the relay's authentication challenge, in bytes.
pub const CHALLENGE_LEN: usize = 32;

/// Error for a field too long to be length-prefixed with a `u16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field} is {len} bytes; at most 65535 can be signed")]
pub struct FieldTooLong {
    /// Which field was too long.
    pub field: &'static str,
    /// Its length in bytes.
    pub len: usize,
}

fn push_len_prefixed(
    out: &mut Vec<u8>,
    field: &'static str,
    bytes: &[u8],
) -> Result<(), FieldTooLong> {
    let len = u16::try_from(bytes.len()).map_err(|_| FieldTooLong {
        field,
        len: bytes.len(),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// The bytes a client signs to answer the relay's challenge.
pub fn auth_message(
    relay_id: &str,
    challenge: &[u8; CHALLENGE_LEN],
    user_id: &str,
) -> Result<Vec<u8>, FieldTooLong> {
    let mut out =
        Vec::with_capacity(AUTH_DOMAIN.len() + 4 + relay_id.len() + CHALLENGE_LEN + user_id.len());
    out.extend_from_slice(AUTH_DOMAIN);
    push_len_prefixed(&mut out, "relay_id", relay_id.as_bytes())?;
    out.extend_from_slice(challenge);
    push_len_prefixed(&mut out, "user_id", user_id.as_bytes())?;
    Ok(out)
}

/// The bytes a device signs with its device signing key to answer the
/// relay's challenge as device `device` of `user_id` (`auth_device`).
pub fn auth_message_v2(
    relay_id: &str,
    challenge: &[u8; CHALLENGE_LEN],
    user_id: &str,
    device: u32,
) -> Result<Vec<u8>, FieldTooLong> {
    let mut out = Vec::with_capacity(
        AUTH_V2_DOMAIN.len() + 8 + relay_id.len() + CHALLENGE_LEN + user_id.len(),
    );
    out.extend_from_slice(AUTH_V2_DOMAIN);
    push_len_prefixed(&mut out, "relay_id", relay_id.as_bytes())?;
    out.extend_from_slice(challenge);
    push_len_prefixed(&mut out, "user_id", user_id.as_bytes())?;
    out.extend_from_slice(&device.to_be_bytes());
    Ok(out)
}

/// The bytes signed by `IKsig` to certify the identity DH key `IKdh`.
pub fn identity_dh_message(identity_dh_public: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(IDENTITY_DH_DOMAIN.len() + 32);
    out.extend_from_slice(IDENTITY_DH_DOMAIN);
    out.extend_from_slice(identity_dh_public);
    out
}

/// The bytes signed by `IKsig` to certify signed prekey `spk_id`.
pub fn signed_prekey_message(spk_id: u32, signed_prekey_public: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNED_PREKEY_DOMAIN.len() + 4 + 32);
    out.extend_from_slice(SIGNED_PREKEY_DOMAIN);
    out.extend_from_slice(&spk_id.to_be_bytes());
    out.extend_from_slice(signed_prekey_public);
    out
}

/// The bytes signed by the account key `IKsig` to certify `user`'s device
/// list at `version`. `devices` are taken in the order given (a valid list
/// is in ascending id order, see [`crate::devices::check_shape`]); more than
/// 65,535 entries is an error.
pub fn device_list_message(
    user_id: &str,
    version: u64,
    devices: &[DeviceEntry],
) -> Result<Vec<u8>, FieldTooLong> {
    let mut out = Vec::with_capacity(
        DEVICE_LIST_DOMAIN.len() + 2 + user_id.len() + 8 + 2 + devices.len() * 68,
    );
    out.extend_from_slice(DEVICE_LIST_DOMAIN);
    push_len_prefixed(&mut out, "user_id", user_id.as_bytes())?;
    out.extend_from_slice(&version.to_be_bytes());
    let n = u16::try_from(devices.len()).map_err(|_| FieldTooLong {
        field: "devices",
        len: devices.len(),
    })?;
    out.extend_from_slice(&n.to_be_bytes());
    for d in devices {
        out.extend_from_slice(&d.id.to_be_bytes());
        out.extend_from_slice(&d.signing_key.0);
        out.extend_from_slice(&d.identity_dh.0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_message_layout_is_exact() {
        let challenge = [7u8; CHALLENGE_LEN];
        let m = auth_message("r1", &challenge, "alice").unwrap();
        let mut want = b"HUSH-AUTH-V1\0".to_vec();
        want.extend_from_slice(&[0, 2]);
        want.extend_from_slice(b"r1");
        want.extend_from_slice(&challenge);
        want.extend_from_slice(&[0, 5]);
        want.extend_from_slice(b"alice");
        assert_eq!(m, want);
    }

    #[test]
    fn auth_message_v2_layout_is_exact() {
        let challenge = [7u8; CHALLENGE_LEN];
        let m = auth_message_v2("r1", &challenge, "alice", 0x0102_0304).unwrap();
        let mut want = b"HUSH-AUTH-V2\0".to_vec();
        want.extend_from_slice(&[0, 2]);
        want.extend_from_slice(b"r1");
        want.extend_from_slice(&challenge);
        want.extend_from_slice(&[0, 5]);
        want.extend_from_slice(b"alice");
        want.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(m, want);
        assert_ne!(
            auth_message_v2("r1", &challenge, "alice", 1).unwrap()[..13],
            auth_message("r1", &challenge, "alice").unwrap()[..13]
        );
    }

    #[test]
    fn length_prefix_separates_relay_and_user_ids() {
        let c = [0u8; CHALLENGE_LEN];
        assert_ne!(
            auth_message("ab", &c, "c").unwrap(),
            auth_message("a", &c, "bc").unwrap()
        );
    }

    #[test]
    fn overlong_field_is_an_error() {
        let long = "x".repeat(70_000);
        let err = auth_message(&long, &[0; CHALLENGE_LEN], "a").unwrap_err();
        assert_eq!(err.field, "relay_id");
    }

    #[test]
    fn device_list_message_layout_is_exact() {
        let d = DeviceEntry {
            id: 0x0102_0304,
            signing_key: crate::PublicKeyBytes([5; 32]),
            identity_dh: crate::PublicKeyBytes([6; 32]),
        };
        let m = device_list_message("al", 0x1122_3344_5566_7788, &[d]).unwrap();
        let mut want = b"HUSH-DEVICES-V1\0".to_vec();
        want.extend_from_slice(&[0, 2]);
        want.extend_from_slice(b"al");
        want.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
        want.extend_from_slice(&[0, 1, 1, 2, 3, 4]);
        want.extend_from_slice(&[5; 32]);
        want.extend_from_slice(&[6; 32]);
        assert_eq!(m, want);
    }

    #[test]
    fn prekey_messages_are_domain_separated() {
        let k = [9u8; 32];
        assert_ne!(
            identity_dh_message(&k),
            signed_prekey_message(0, &k)[..45].to_vec()
        );
        assert!(
            signed_prekey_message(0x01020304, &k).starts_with(b"HUSH-SPK-V1\0\x01\x02\x03\x04")
        );
    }
}
