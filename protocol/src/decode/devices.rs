//! Decoding of the multi-device client frames (`auth_device`,
//! `publish_device_list`, `fetch_devices`, `send_copies`), with the same
//! precise errors as the rest of [`super`]. Copies per send are bounded by
//! [`MAX_DEVICES`] here, before anything is allocated per copy beyond the
//! frame itself.

use std::borrow::Cow;

use serde::Deserialize;

use super::{Cx, FetchBundleWire, FrameError};
use crate::bytes::{Body, decode_b64};
use crate::devices::{DeviceEntry, MAX_DEVICES, SignedDeviceList};
use crate::frame::{
    AuthDevice, ClientFrame, DeviceCopy, FetchDeviceBundle, FetchDevices, PublishDeviceList,
    SendCopies,
};

#[derive(Deserialize)]
struct AuthDeviceWire<'a> {
    rid: u64,
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    device: u32,
    #[serde(borrow)]
    device_key: Cow<'a, str>,
    #[serde(borrow)]
    signature: Cow<'a, str>,
}

#[derive(Deserialize)]
struct FetchDeviceBundleWire<'a> {
    rid: u64,
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    device: u32,
}

#[derive(Deserialize)]
struct DeviceEntryWire<'a> {
    id: u32,
    #[serde(borrow)]
    signing_key: Cow<'a, str>,
    #[serde(borrow)]
    identity_dh: Cow<'a, str>,
}

#[derive(Deserialize)]
struct SignedDeviceListWire<'a> {
    version: u64,
    #[serde(borrow)]
    devices: Vec<DeviceEntryWire<'a>>,
    #[serde(borrow)]
    signature: Cow<'a, str>,
}

#[derive(Deserialize)]
struct PublishDeviceListWire<'a> {
    rid: u64,
    #[serde(borrow)]
    list: SignedDeviceListWire<'a>,
}

#[derive(Deserialize)]
struct DeviceCopyWire<'a> {
    device: u32,
    #[serde(borrow)]
    body: Cow<'a, str>,
}

#[derive(Deserialize)]
struct SendCopiesWire<'a> {
    rid: u64,
    #[serde(borrow)]
    to: Cow<'a, str>,
    #[serde(borrow)]
    copies: Vec<DeviceCopyWire<'a>>,
    #[serde(default, borrow)]
    self_copies: Vec<DeviceCopyWire<'a>>,
    #[serde(default)]
    ephemeral: bool,
}

/// Decodes a multi-device frame of type `ty`; `None` when `ty` is not one.
pub(super) fn decode(ty: &str, text: &str, cx: Cx) -> Option<Result<ClientFrame, FrameError>> {
    Some(match ty {
        "auth_device" => auth_device(text, cx),
        "publish_device_list" => publish_device_list(text, cx),
        "fetch_devices" => cx.wire::<FetchBundleWire<'_>>(text).and_then(|w| {
            Ok(ClientFrame::FetchDevices(FetchDevices {
                rid: w.rid,
                user_id: cx.user("user_id", w.user_id)?,
            }))
        }),
        "send_copies" => send_copies(text, cx),
        "fetch_device_bundle" => cx.wire::<FetchDeviceBundleWire<'_>>(text).and_then(|w| {
            Ok(ClientFrame::FetchDeviceBundle(FetchDeviceBundle {
                rid: w.rid,
                user_id: cx.user("user_id", w.user_id)?,
                device: w.device,
            }))
        }),
        _ => return None,
    })
}

fn auth_device(text: &str, cx: Cx) -> Result<ClientFrame, FrameError> {
    let w: AuthDeviceWire<'_> = cx.wire(text)?;
    Ok(ClientFrame::AuthDevice(AuthDevice {
        rid: w.rid,
        user_id: cx.user("user_id", w.user_id)?,
        device: w.device,
        device_key: cx.key("device_key", &w.device_key)?,
        signature: cx.sig("signature", &w.signature)?,
    }))
}

fn publish_device_list(text: &str, cx: Cx) -> Result<ClientFrame, FrameError> {
    let w: PublishDeviceListWire<'_> = cx.wire(text)?;
    let devices = w
        .list
        .devices
        .iter()
        .map(|d| {
            Ok(DeviceEntry {
                id: d.id,
                signing_key: cx.key("list.devices.signing_key", &d.signing_key)?,
                identity_dh: cx.key("list.devices.identity_dh", &d.identity_dh)?,
            })
        })
        .collect::<Result<Vec<_>, FrameError>>()?;
    Ok(ClientFrame::PublishDeviceList(PublishDeviceList {
        rid: w.rid,
        list: SignedDeviceList {
            version: w.list.version,
            devices,
            signature: cx.sig("list.signature", &w.list.signature)?,
        },
    }))
}

fn copies(
    cx: Cx,
    field: &'static str,
    max: usize,
    v: &[DeviceCopyWire<'_>],
) -> Result<Vec<DeviceCopy>, FrameError> {
    if v.len() > max {
        return Err(FrameError::BadField {
            rid: cx.rid,
            detail: format!("`{field}` has {} entries; at most {max}", v.len()),
        });
    }
    v.iter()
        .map(|c| {
            Ok(DeviceCopy {
                device: c.device,
                body: Body(decode_b64(&c.body).map_err(|e| cx.bytes_err(field, e))?),
            })
        })
        .collect()
}

fn send_copies(text: &str, cx: Cx) -> Result<ClientFrame, FrameError> {
    let w: SendCopiesWire<'_> = cx.wire(text)?;
    Ok(ClientFrame::SendCopies(SendCopies {
        rid: w.rid,
        to: cx.user("to", w.to)?,
        copies: copies(cx, "copies.body", MAX_DEVICES, &w.copies)?,
        self_copies: copies(cx, "self_copies.body", MAX_DEVICES - 1, &w.self_copies)?,
        ephemeral: w.ephemeral,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::encode_b64;
    use crate::error_code::ErrorCode;

    fn b64(n: usize) -> String {
        encode_b64(&vec![7u8; n])
    }

    #[test]
    fn auth_device_decodes_and_names_bad_fields() {
        let text = format!(
            r#"{{"type":"auth_device","rid":3,"user_id":"alice","device":2,"device_key":"{}","signature":"{}"}}"#,
            b64(32),
            b64(64)
        );
        let f = ClientFrame::decode(&text).unwrap();
        let ClientFrame::AuthDevice(a) = f else {
            panic!("{f:?}")
        };
        assert_eq!((a.rid, a.device), (3, 2));
        let bad = text.replace(&b64(32), &b64(31));
        let e = ClientFrame::decode(&bad).unwrap_err();
        assert_eq!((e.code(), e.rid()), (ErrorCode::BadSize, Some(3)));
    }

    #[test]
    fn publish_device_list_round_trips() {
        let list = SignedDeviceList {
            version: 4,
            devices: vec![DeviceEntry {
                id: 1,
                signing_key: crate::PublicKeyBytes([1; 32]),
                identity_dh: crate::PublicKeyBytes([2; 32]),
            }],
            signature: crate::SignatureBytes([3; 64]),
        };
        let f = ClientFrame::PublishDeviceList(PublishDeviceList { rid: 9, list });
        assert_eq!(ClientFrame::decode(&f.encode()).unwrap(), f);
    }

    #[test]
    fn send_copies_round_trips_and_is_bounded() {
        let copy = |device| DeviceCopy {
            device,
            body: Body(vec![device as u8; 3]),
        };
        let f = ClientFrame::SendCopies(SendCopies {
            rid: 1,
            to: crate::UserId::try_from("bob").unwrap(),
            copies: vec![copy(1), copy(2)],
            self_copies: vec![copy(3)],
            ephemeral: false,
        });
        assert_eq!(ClientFrame::decode(&f.encode()).unwrap(), f);
        let many = ClientFrame::SendCopies(SendCopies {
            rid: 2,
            to: crate::UserId::try_from("bob").unwrap(),
            copies: (1..=MAX_DEVICES as u32 + 1).map(copy).collect(),
            self_copies: vec![],
            ephemeral: false,
        });
        let e = ClientFrame::decode(&many.encode()).unwrap_err();
        assert_eq!((e.code(), e.rid()), (ErrorCode::BadFrame, Some(2)));
        let e = ClientFrame::decode(
            r#"{"type":"send_copies","rid":5,"to":"bob","copies":[{"device":1,"body":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            FrameError::BadBase64 {
                rid: Some(5),
                field: "copies.body"
            }
        );
    }
}
