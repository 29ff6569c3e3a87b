//! The frames of multi-device accounts (protocol section 16): a device's
//! authentication, the signed device list (publish, fetch, push) and the
//! per-device send with one ciphertext per device.
//!
//! | frame | direction | reply |
//! | --- | --- | --- |
//! | [`AuthDevice`] `auth_device` | client | `auth_ok` |
//! | [`PublishDeviceList`] `publish_device_list` | client | [`DeviceListPublished`] |
//! | [`FetchDevices`] `fetch_devices` | client | [`Devices`] |
//! | [`SendCopies`] `send_copies` | client | [`CopiesAccepted`] |
//! | [`FetchDeviceBundle`] `fetch_device_bundle` | client | `bundle` |
//! | [`DeviceListPush`] `device_list` | relay, unsolicited | |

use serde::{Deserialize, Serialize};

use crate::bytes::{Body, PublicKeyBytes, SignatureBytes};
use crate::devices::SignedDeviceList;
use crate::user_id::UserId;

/// `auth_device`: answers the relay's challenge as one device of an
/// account, signed by that device's signing key over
/// [`crate::signing::auth_message_v2`]. The device must be in the account's
/// current list (an account without a published list has device 1, whose
/// signing key is the account key). Never registers an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthDevice {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The account.
    pub user_id: UserId,
    /// The device id in the account's list.
    pub device: u32,
    /// The device's Ed25519 signing key, as listed.
    pub device_key: PublicKeyBytes,
    /// The device key's signature over [`crate::signing::auth_message_v2`].
    pub signature: SignatureBytes,
}

/// `publish_device_list`: replaces the account's device list with a newer
/// one signed by the account key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishDeviceList {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The new list; its version must exceed the stored one.
    pub list: SignedDeviceList,
}

/// `fetch_devices`: asks for an account's current device list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchDevices {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// Whose list.
    pub user_id: UserId,
}

/// `fetch_device_bundle`: asks for one device's prekey bundle (taking one
/// of its one-time prekeys, like `fetch_bundle`, which is device 1's). The
/// reply is a `bundle` whose `identity_key` is the device's signing key,
/// which signed its `identity_dh` and signed prekey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchDeviceBundle {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The account.
    pub user_id: UserId,
    /// The device.
    pub device: u32,
}

/// One device's ciphertext in a [`SendCopies`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCopy {
    /// The device it is for.
    pub device: u32,
    /// Opaque ciphertext for that device.
    pub body: Body,
}

/// `send_copies`: one message as one ciphertext per device of the
/// recipient (`copies`) and one per other device of the sender
/// (`self_copies`, the sent-message transcripts). Refused with
/// `device_list_mismatch` unless the devices named are exactly the current
/// ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCopies {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The recipient account.
    pub to: UserId,
    /// One per device of `to` (without the sending device when `to` is
    /// the sender's own account), in any order, each device once.
    pub copies: Vec<DeviceCopy>,
    /// One per device of the sender's account other than the sending one;
    /// empty when `to` is the sender's own account.
    #[serde(default)]
    pub self_copies: Vec<DeviceCopy>,
    /// Forward only to online devices, never store (typing indicators).
    #[serde(default)]
    pub ephemeral: bool,
}

/// `device_list_published`: `publish_device_list` succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceListPublished {
    /// The request's id.
    pub rid: u64,
    /// The version now stored.
    pub version: u64,
}

/// An account's current device list: `None` for an account that never
/// published one (a *legacy* account: one device, id 1, whose signing key
/// is the account key `IKsig` and whose identity DH key is the account's
/// published `IKdh`, see `lookup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDevices {
    /// The account.
    pub user_id: UserId,
    /// Its signed list, or `null` for a legacy account.
    pub list: Option<SignedDeviceList>,
}

/// `devices`: the reply to `fetch_devices`. Flattened: `{"type":"devices",
/// "rid":R,"user_id":U,"list":L|null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Devices {
    /// The request's id.
    pub rid: u64,
    /// The account and its list.
    #[serde(flatten)]
    pub account: AccountDevices,
}

/// `device_list`: unsolicited, pushed to every connected device of an
/// account when its list changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceListPush {
    /// The account.
    pub user_id: UserId,
    /// The new list.
    pub list: SignedDeviceList,
}

/// Where one copy was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyId {
    /// The device whose mailbox holds it.
    pub device: u32,
    /// Its envelope id in that device's mailbox.
    pub id: u64,
}

/// `copies_accepted`: a `send_copies` was taken; every copy is durably
/// stored (empty lists for an ephemeral send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiesAccepted {
    /// The request's id.
    pub rid: u64,
    /// One per copy, in device id order.
    pub copies: Vec<CopyId>,
    /// One per self copy, in device id order.
    pub self_copies: Vec<CopyId>,
}

#[cfg(test)]
mod tests {
    use crate::ServerFrame;

    const LIST: &str = r#"{"version":3,"devices":[{"id":1,"signing_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","identity_dh":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}],"signature":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}"#;

    #[test]
    fn server_frames_decode_and_encode_exactly() {
        for text in [
            r#"{"type":"device_list_published","rid":2,"version":3}"#.to_owned(),
            r#"{"type":"devices","rid":3,"user_id":"bob","list":null}"#.to_owned(),
            format!(r#"{{"type":"devices","rid":3,"user_id":"bob","list":{LIST}}}"#),
            format!(r#"{{"type":"device_list","user_id":"alice","list":{LIST}}}"#),
            r#"{"type":"copies_accepted","rid":5,"copies":[{"device":1,"id":41}],"self_copies":[]}"#
                .to_owned(),
            r#"{"type":"envelope","id":41,"from":"alice","from_device":2,"accepted_at":1,"body":"AQID"}"#
                .to_owned(),
            format!(
                r#"{{"type":"error","rid":5,"code":"device_list_mismatch","message":"m","lists":[{{"user_id":"bob","list":null}},{{"user_id":"alice","list":{LIST}}}]}}"#
            ),
        ] {
            let frame = ServerFrame::decode(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(frame.encode(), text);
        }
    }
}
